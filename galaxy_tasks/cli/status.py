"""``galaxy-tasks status``: what an operator looks at first (SPEC §6)."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from sqlalchemy import text

from galaxy_tasks.adapters.postgres.engine import translated_errors as pg_errors
from galaxy_tasks.adapters.redis.client import translated_errors as redis_errors
from galaxy_tasks.bootstrap import Resources, resources
from galaxy_tasks.config import Settings
from galaxy_tasks.contract import (
    HEALTH_EVENT_OUTBOX,
    HEALTH_EVENTS_BRIDGE_KEYS,
    HEALTH_EVENTS_STREAM,
    JOB_RESULT_OUTBOX,
    JOB_RESULTS_STREAM,
    LOBBY_OUTBOX,
    LOBBY_STREAM,
    START_JOBS_BRIDGE_KEYS,
    START_JOBS_STREAM,
    STOP_JOBS_BRIDGE_KEYS,
    STOP_JOBS_STREAM,
)
from galaxy_tasks.long_running import registry

STREAMS = (HEALTH_EVENTS_STREAM, LOBBY_STREAM, START_JOBS_STREAM, STOP_JOBS_STREAM, JOB_RESULTS_STREAM)
BRIDGES = (
    (HEALTH_EVENTS_STREAM, HEALTH_EVENTS_BRIDGE_KEYS),
    (START_JOBS_STREAM, START_JOBS_BRIDGE_KEYS),
    (STOP_JOBS_STREAM, STOP_JOBS_BRIDGE_KEYS),
)


def gather_status(res: Resources) -> dict[str, Any]:
    r = res.redis
    now_ms = int(time.time() * 1000)
    status: dict[str, Any] = {
        "streams": {},
        "bridges": {},
        "long_running": {},
        "outboxes": {},
        "orphan_containers": None,
        "jobs_in_transition": [],
        "games": {},
    }
    with redis_errors(res.settings.redis_url):
        for stream in STREAMS:
            status["streams"][stream] = {"length": int(r.xlen(stream))}
        for stream, keys in BRIDGES:
            progress: Any = r.hgetall(keys.progress)
            updated = int(progress.get("updated_at_ms", 0) or 0)
            status["bridges"][stream] = {
                "offset_key": keys.offset,
                "offset": r.get(keys.offset) or "0-0",
                "lag": int(progress["lag"]) if "lag" in progress else None,
                "lag_reported_ms_ago": now_ms - updated if updated else None,
            }
        for singleton in registry(res.settings.docker_host_names()):
            holder = r.get(singleton.lease_key)
            ttl_ms = int(r.pttl(singleton.lease_key))
            status["long_running"][singleton.name] = {
                "holder": holder,
                "lease_expires_in_ms": ttl_ms if ttl_ms > 0 else None,
            }
    status["outboxes"][LOBBY_OUTBOX.label] = res.lobby_outbox.backlog()
    status["outboxes"][HEALTH_EVENT_OUTBOX.label] = res.health_events_outbox.backlog()
    status["outboxes"][JOB_RESULT_OUTBOX.label] = res.job_results_outbox.backlog()
    status["orphan_containers"] = res.orphan_report.load()
    status["jobs_in_transition"] = [
        {
            "game_id": row.game_id,
            "status": row.status,
            "job_id": row.job_id,
            "claimed_ms_ago": None if row.claimed_ms is None else now_ms - row.claimed_ms,
        }
        for row in res.job_context.queue.transitional()
    ]
    with pg_errors(res.settings.database_url), res.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT status, engine_health, count(*) AS n FROM gamemaster.runtime_records "
                "GROUP BY status, engine_health ORDER BY status, engine_health"
            )
        )
        status["games"] = [{"status": row.status, "engine_health": row.engine_health, "games": row.n} for row in rows]
    return status


def render(status: dict[str, Any]) -> str:
    lines = ["STREAMS"]
    lines += [f"  {name:<28} {info['length']:>10} entries" for name, info in status["streams"].items()]
    lines.append("BRIDGES")
    for stream, info in status["bridges"].items():
        lag = "unknown" if info["lag"] is None else str(info["lag"])
        lines.append(f"  {stream:<28} offset {info['offset']:<22} lag {lag}")
    lines.append("LONG-RUNNING")
    for name, info in status["long_running"].items():
        holder = info["holder"] or "NOBODY (the supervisor will start one)"
        expires = "" if info["lease_expires_in_ms"] is None else f"  lease {info['lease_expires_in_ms'] / 1000:.1f}s"
        lines.append(f"  {name:<40} {holder}{expires}")
    lines.append("OUTBOXES")
    lines += [f"  {name:<40} {count:>8} pending" for name, count in status["outboxes"].items()]
    orphans = status.get("orphan_containers")
    lines.append("ORPHAN CONTAINERS (managed, no game's current container; last reconcile)")
    if orphans is None:
        lines.append("  not reconciled yet")
    elif not orphans["containers"]:
        lines.append("  none")
    for orphan in (orphans or {}).get("containers", []):
        lines.append(f"  {orphan['container_id'][:12]:<14} game {orphan['game_id'] or '-':<24} {orphan['state']}")
    lines.append(
        "RUNTIME RECORDS IN TRANSITION (a start or stop job holds them; settled after GALAXY_JOB_CLAIM_SECONDS)"
    )
    if not status["jobs_in_transition"]:
        lines.append("  none")
    for row in status["jobs_in_transition"]:
        age = "no claim" if row["claimed_ms_ago"] is None else f"claimed {row['claimed_ms_ago'] / 1000:.1f}s ago"
        lines.append(f"  {row['game_id']:<28} {row['status']:<10} job {row['job_id'] or '-'}  {age}")
    lines.append("GAMES (gamemaster.runtime_records)")
    if not status["games"]:
        lines.append("  none")
    for row in status["games"]:
        lines.append(f"  {row['status']:<24} {row['engine_health'] or '-':<20} {row['games']:>8}")
    return "\n".join(lines)


def needs_attention(status: dict[str, Any], settings: Settings) -> list[str]:
    """What ``status --check`` reports: each a reason for exit code 1."""
    problems = [
        f"long-running {name}: nobody holds its lease"
        for name, info in status["long_running"].items()
        if not info["holder"]
    ]
    claim_ms = settings.job_claim_seconds * 1000
    problems += [
        f"game {row['game_id']}: {row['status']} for {row['claimed_ms_ago'] / 1000:.0f} s,"
        " past GALAXY_JOB_CLAIM_SECONDS"
        for row in status["jobs_in_transition"]
        if row["claimed_ms_ago"] is not None and row["claimed_ms_ago"] > claim_ms
    ]
    problems += [
        f"bridge of {stream}: lag {info['lag']} entries, past GALAXY_BACKLOG_THRESHOLD"
        for stream, info in status["bridges"].items()
        if info["lag"] is not None and info["lag"] > settings.backlog_threshold
    ]
    return problems


def status_command(*, as_json: bool, check: bool = False) -> int:
    """Print the status; with ``check``, exit 1 when :func:`needs_attention` finds anything (listed on stderr)."""
    res = resources()
    status = gather_status(res)
    print(json.dumps(status, indent=2) if as_json else render(status))
    if not check:
        return 0
    problems = needs_attention(status, res.settings)
    for problem in problems:
        print(f"galaxy-tasks status: {problem}", file=sys.stderr)
    return 1 if problems else 0
