"""The cluster's state as Prometheus series, computed at scrape time: ``galaxy-tasks metrics --cluster``.

The per-process metrics count what each process did; the state of the
cluster — how far each bridge is behind, how deep the queues are, whether each
singleton is held — is not any one process's to report: a gauge set by the
process that last ran the bridge keeps its last value after that process died
or the work moved elsewhere. So these series are read, at every scrape, from
where the state lives (Redis, PostgreSQL, the broker), as ``galaxy-tasks status``
reads it; any node (or several) may serve them and all give the same answer.
Lag in seconds is on one clock: Redis's ``TIME`` against the stream ids Redis
stamped, never a producer's clock.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
from celery import Celery
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text

from galaxy_tasks.adapters.celery_dispatch import queue_depth
from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors
from galaxy_tasks.bootstrap import Resources
from galaxy_tasks.cli.status import BRIDGES, STREAMS
from galaxy_tasks.contract import HEALTH_EVENT_OUTBOX, JOB_RESULT_OUTBOX, LOBBY_OUTBOX
from galaxy_tasks.domain.errors import GalaxyError
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.logs import get_logger
from galaxy_tasks.long_running import registry

log = get_logger(__name__)

_LAG_COUNT_LIMIT = 100_000
"""A bridge that never saved how many entries its offset covers: count at most this many after it."""


def build_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("galaxy_tasks")
    except PackageNotFoundError:
        return "unknown"


class ClusterCollector(Collector):
    """Every series is read from the stores at ``collect()``; ``galaxy_cluster_up`` says whether that worked."""

    def __init__(self, resources: Callable[[], Resources], app: Celery) -> None:
        self._resources = resources
        self._app = app

    def collect(self) -> Iterator[Any]:
        info = InfoMetricFamily("galaxy_build", "the galaxy_tasks release and the Python it runs on")
        info.add_metric([], {"version": build_version(), "python": platform.python_version()})
        yield info
        up = GaugeMetricFamily(
            "galaxy_cluster_up",
            "1 when this scrape read Redis, PostgreSQL and the broker; 0 when one failed (the cluster series "
            "are then left out rather than shown stale)",
        )
        started = time.monotonic()
        try:
            families = list(self._families(self._resources()))
        except (GalaxyError, OSError, redis.RedisError, ValueError) as exc:
            # A store down, or answering what cannot be read (an offset set by hand that is no entry id,
            # bytes that are not text): no series rather than a failed scrape or a guess.
            log.warning("cluster_metrics_unavailable", error=str(exc))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families
        took = GaugeMetricFamily("galaxy_cluster_scrape_seconds", "how long reading the cluster's state took")
        took.add_metric([], time.monotonic() - started)
        yield took

    def _families(self, res: Resources) -> Iterator[GaugeMetricFamily]:
        yield from self._streams_and_bridges(res)
        depth = GaugeMetricFamily(
            "galaxy_cluster_queue_depth", "messages waiting in a Celery queue (not yet with a worker)", labels=["queue"]
        )
        for queue in sorted(q.name for q in self._app.conf.task_queues or []):
            depth.add_metric([queue], queue_depth(self._app, queue))
        yield depth
        held = GaugeMetricFamily(
            "galaxy_cluster_singleton_held",
            "1 while a long-running singleton's lease has a holder (its loop runs somewhere)",
            labels=["singleton"],
        )
        with redis_errors(res.settings.redis_url):
            for singleton in registry(res.settings.docker_host_names()):
                held.add_metric([singleton.name], 1 if res.redis.exists(singleton.lease_key) else 0)
        yield held
        backlog = GaugeMetricFamily(
            "galaxy_cluster_outbox_backlog",
            "outbox rows committed but not appended to their stream yet",
            labels=["outbox"],
        )
        for spec, outbox in (
            (LOBBY_OUTBOX, res.lobby_outbox),
            (HEALTH_EVENT_OUTBOX, res.health_events_outbox),
            (JOB_RESULT_OUTBOX, res.job_results_outbox),
        ):
            backlog.add_metric([spec.label], outbox.backlog())
        yield backlog
        with pg_errors(res.settings.database_url), res.engine.connect() as conn:
            parked = conn.execute(text("SELECT count(*) FROM gamemaster.health_event_parked")).scalar_one()
            revisions = [str(row[0]) for row in conn.execute(text("SELECT version_num FROM public.alembic_version"))]
        yield _gauge("galaxy_cluster_parked_entries", "health entries parked until their game's earlier entry", parked)
        report = res.orphan_report.load()
        orphans = 0 if report is None else len(report.get("containers", []))
        yield _gauge("galaxy_cluster_orphan_containers", "engine containers no record claims (last reconcile)", orphans)
        schema = GaugeMetricFamily(
            "galaxy_cluster_schema_revision", "the database's Alembic revision", labels=["revision"]
        )
        for revision in revisions:
            schema.add_metric([revision], 1)
        yield schema

    def _streams_and_bridges(self, res: Resources) -> Iterator[GaugeMetricFamily]:
        r = res.redis
        length = GaugeMetricFamily("galaxy_cluster_stream_length", "entries in a stream", labels=["stream"])
        lag = GaugeMetricFamily(
            "galaxy_cluster_bridge_lag_entries", "entries after a bridge's stored offset", labels=["stream"]
        )
        lag_seconds = GaugeMetricFamily(
            "galaxy_cluster_bridge_lag_seconds",
            "age of the oldest entry after a bridge's offset (Redis's clock against its stream ids; 0: none)",
            labels=["stream"],
        )
        with redis_errors(res.settings.redis_url):
            seconds, micros = r.time()
            now_ms = int(seconds) * 1000 + int(micros) // 1000
            added: dict[str, int | None] = {}
            for stream in STREAMS:
                info = _stream_info(r, stream)
                length.add_metric([stream], int(info.get("length", 0)))
                added[stream] = int(info["entries-added"]) if "entries-added" in info else None
            for stream, keys in BRIDGES:
                offset = str(r.get(keys.offset) or "0-0")
                through = r.hget(keys.progress, "entries_through_offset")
                entries_added = added[stream]
                if entries_added is not None and through is not None and str(through).isdigit():
                    behind = max(entries_added - int(through), 0)
                else:
                    behind = len(r.xrange(stream, f"({offset}", "+", count=_LAG_COUNT_LIMIT) or [])
                lag.add_metric([stream], behind)
                first = r.xrange(stream, f"({offset}", "+", count=1)
                oldest_ms = StreamId.parse(str(first[0][0])).ms if first else None
                lag_seconds.add_metric([stream], 0.0 if oldest_ms is None else max(now_ms - oldest_ms, 0) / 1000)
        yield length
        yield lag
        yield lag_seconds


def _stream_info(r: Any, stream: str) -> dict[str, Any]:
    if not r.exists(stream):
        return {"length": 0, "entries-added": 0}
    info: dict[str, Any] = r.xinfo_stream(stream)
    return info


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family
