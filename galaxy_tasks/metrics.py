"""Prometheus counters and gauges of galaxy_tasks, correct under Celery's prefork pool.

Prefork children are separate processes, so each keeps its own values; when
``GALAXY_METRICS_DIR`` is set, prometheus-client's multiprocess mode writes
them to files in that folder and one exporter (``galaxy-tasks metrics`` or
the ``run`` supervisor) adds them up.  The directory must be known before
prometheus-client is first imported, so the package's ``__init__`` exports it
as ``PROMETHEUS_MULTIPROC_DIR`` before anything else runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram


def reset_metrics_dir(metrics_dir: str) -> None:
    """Empty the folder before a fresh start so dead processes' values do not linger."""
    shutil.rmtree(metrics_dir, ignore_errors=True)
    Path(metrics_dir).mkdir(parents=True, exist_ok=True)


HEALTH_EVENTS_CONSUMED = Counter(
    "galaxy_gm_health_events_consumed",
    "runtime:health_events entries the Game Master is done with (applied or skipped).",
)
HEALTH_EVENTS_SKIPPED = Counter(
    "galaxy_gm_health_events_skipped",
    "Entries counted and skipped, by reason (malformed, unknown_event_type, unknown_game).",
    ["reason"],
)
HEALTH_EVENTS_DUPLICATE = Counter(
    "galaxy_gm_health_events_duplicate",
    "Entries handed on again after their effect was committed; nothing was changed.",
)
HEALTH_EVENTS_PUBLISHED = Counter(
    "galaxy_rtm_health_events_published",
    "Health events the Runtime Manager committed for runtime:health_events, by event type.",
    ["event_type"],
)
ORPHAN_CONTAINERS = Gauge(
    "galaxy_rtm_orphan_containers",
    "Managed containers (label galaxy.game_id) that are no game's current container, at the last reconcile.",
    multiprocess_mode="mostrecent",
)
HEALTH_EVENT_BATCH_ENTRIES = Histogram(
    "galaxy_gm_health_event_batch_entries",
    "Per-event tasks committed together by one transaction (the group commit of a thread-pool worker).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
FRESHNESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
HEALTH_ENTRY_COMMIT_SECONDS = Histogram(
    "galaxy_gm_health_entry_commit_seconds",
    "Health entry appended to runtime:health_events -> its transaction committed by the Game Master "
    "(Redis's clock at both ends: the entry's id, TIME right after the commit).",
    buckets=FRESHNESS_BUCKETS,
)
LOBBY_ENTRY_FRESHNESS_SECONDS = Histogram(
    "galaxy_gm_lobby_entry_freshness_seconds",
    "Health entry appended to runtime:health_events -> the gm:lobby_events entry it caused appended "
    "(Redis's clock at both ends): how stale the Lobby's view is.",
    buckets=FRESHNESS_BUCKETS,
)
HEALTH_EVENTS_PARKED = Counter(
    "galaxy_gm_health_events_parked",
    "Entries parked because the previous entry of their game was not applied yet.",
)
ORDER_REPAIRS = Counter(
    "galaxy_gm_health_events_order_repairs",
    "Games whose entries were re-read from the stream because a handed-on entry never arrived.",
)
ORDER_REPAIR_GAMES_CHECKED = Counter(
    "galaxy_gm_order_repair_games_checked",
    "Games the order repair checked against their cursors: those handed on since its last run and those it "
    "found behind then (survey=incremental), or every game in the bridge's map (survey=full: a first run, "
    "after a replay, or after entries were trimmed before a run read them).",
    ["survey"],
)
STATUS_TRANSITIONS = Counter(
    "galaxy_gm_status_transitions",
    "Runtime status CAS transitions made by the health consumer.",
    ["from_status", "to_status"],
)
LOBBY_EVENTS_PUBLISHED = Counter(
    "galaxy_gm_lobby_events_published",
    "runtime_snapshot_update entries appended to gm:lobby_events.",
)
BRIDGE_ENTRIES_DISPATCHED = Counter(
    "galaxy_bridge_entries_dispatched",
    "Stream entries handed on to the broker by a stream bridge, by mode (event or chunk).",
    ["stream", "mode"],
)
BRIDGE_LAG = Gauge(
    "galaxy_bridge_lag_entries",
    "Entries between a bridge's stored offset and the end of its stream.",
    ["stream"],
    multiprocess_mode="mostrecent",
)
BRIDGE_TRIM_GAPS = Counter(
    "galaxy_bridge_trim_gaps",
    "Times a bridge found its stream trimmed past its stored offset (entries never handed on).",
    ["stream"],
)
HEALTH_EVENT_GAPS = Counter(
    "galaxy_gm_health_event_gaps",
    "Games found with runtime:health_events entries handed on to them but trimmed from the stream "
    "before they were applied: what is left was applied over the gap (alert on any).",
)
BRIDGE_PARTITIONS = Gauge(
    "galaxy_bridge_partitions",
    "Partitions (games) a bridge remembers the last entry handed on of (partitions trimmed away long ago "
    "are forgotten).",
    ["stream"],
    multiprocess_mode="mostrecent",
)
OUTBOX_NEW_GENERATIONS = Counter(
    "galaxy_outbox_new_generations",
    "Games whose outbox rows were of another generation of the database than their stream's mark "
    "(a restore, a failover, a downgrade): all their rows were appended, some perhaps a second time.",
    ["stream"],
)
STREAM_TRIMMED_BY_AGE = Counter(
    "galaxy_stream_trimmed_by_age",
    "Entries dropped from a stream kept for a retention period (gm:lobby_events, runtime:job_results).",
    ["stream"],
)
STREAM_OLDEST_ENTRY_AGE = Gauge(
    "galaxy_stream_oldest_entry_age_seconds",
    "How far back a stream kept for a retention period goes.",
    ["stream"],
    multiprocess_mode="mostrecent",
)
STREAM_UNREAD_AT_RISK = Gauge(
    "galaxy_stream_unread_at_risk",
    "Consumer groups of a stream whose oldest unread entry is older than 80% of its retention: "
    "the stream keeps it (it grows), but the consumer is that far behind (alert on any).",
    ["stream"],
    multiprocess_mode="mostrecent",
)
OUTBOX_BACKLOG = Gauge(
    "galaxy_outbox_backlog",
    "Rows waiting in an outbox for the relay.",
    ["outbox"],
    multiprocess_mode="mostrecent",
)
JOBS_FINISHED = Counter(
    "galaxy_rtm_jobs_finished",
    "Start/stop jobs finished, by job, outcome and error code (empty for a fresh success).",
    ["job", "outcome", "error_code"],
)
JOB_DURATION = Histogram(
    "galaxy_rtm_job_duration_seconds",
    "Time from a job taking its game to its commit (Docker calls and retries included).",
    ["job"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
JOB_ENTRIES_SKIPPED = Counter(
    "galaxy_rtm_job_entries_skipped",
    "Job stream entries skipped because they name no game (no result can be addressed).",
    ["stream"],
)
JOB_REPAIRS = Counter(
    "galaxy_rtm_job_repairs",
    "Jobs' periodic pass: expired claims settled from Docker (claim_finished, claim_reverted), "
    "and games whose queued jobs nobody ran handed on again (redispatched).",
    ["kind"],
)
PROBES = Counter(
    "galaxy_rtm_probes",
    "HTTP probes of engines, by result (ok or failed).",
    ["result"],
)
INSPECTIONS = Counter(
    "galaxy_rtm_inspections",
    "Inspect-sweep judgements per running game: vouched (the list alone), healthy or unhealthy "
    "(a full inspect), missing (left to the reconciler).",
    ["result"],
)
RELIST_FINDINGS = Counter(
    "galaxy_rtm_relist_findings",
    "What a level-triggered look (reconciler or inspect) reported because no event had: died (a death "
    "for good), disappeared (a lost container), revived (an exited record whose container runs again).",
    ["finding", "by"],
)
RECOVERIES = Counter(
    "galaxy_rtm_recoveries",
    "Down periods ended by probe_recovered (an inspect and the probe success threshold agreed).",
)
BRIDGE_REPLAYS = Counter(
    "galaxy_bridge_replays",
    "Replays (galaxy-tasks replay) a stream bridge applied: its offset moved back on request.",
    ["stream"],
)
