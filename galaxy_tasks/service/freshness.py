"""The Lobby's freshness, measured where it is made: how old a health entry is when the Game Master
commits it, and when the Lobby entry it caused is appended.

Both ages are on Redis's clock — the entry's stream id against Redis's time at the
commit or the append — never a producer's or a worker's clock, so a Docker host a few
seconds off changes nothing. An entry handed in with an id that is not a stream id (a
call from a shell) is not measured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from galaxy_tasks import metrics
from galaxy_tasks.domain.stream_ids import StreamId
from galaxy_tasks.ports.outbox import OutboxEntry


def _age_seconds(entry_id: str, at_ms: int) -> float | None:
    try:
        appended_ms = StreamId.parse(entry_id).ms
    except ValueError:
        return None
    return max(at_ms - appended_ms, 0) / 1000


def observe_commits(entry_ids: Iterable[str], committed_at_ms: int) -> None:
    """Entries the Game Master's transaction just committed (applied or skipped)."""
    for entry_id in entry_ids:
        age = _age_seconds(entry_id, committed_at_ms)
        if age is not None:
            metrics.HEALTH_ENTRY_COMMIT_SECONDS.observe(age)


def observe_lobby_appends(entries: Sequence[OutboxEntry], appended_at_ms: int) -> None:
    """Lobby entries just appended (right after their commit, or later by the relay)."""
    for entry in entries:
        if entry.source_entry_id:
            age = _age_seconds(entry.source_entry_id, appended_at_ms)
            if age is not None:
                metrics.LOBBY_ENTRY_FRESHNESS_SECONDS.observe(age)
