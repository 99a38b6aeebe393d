"""The Runtime Manager's stores in memory: records, snapshots with down periods, the health stream.

:class:`FakeRuntimeStore` is ``HealthEventStore``, ``RunningRecords`` and the
reconciler's ``CurrentContainers`` at once, as the ``rtmanager`` schema is:
the compare-and-swap on the record, the snapshot numbering, the down period
and its evidence behave as the statements in
``adapters/postgres/health_events.py`` do.  :class:`FakeHealthStream` is the
outbox and the stream behind it: a committed entry is on the stream at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from galaxy_tasks.contract import HEALTH_EVENT_OUTBOX
from galaxy_tasks.domain.health_events import HealthEventType
from galaxy_tasks.domain.rtmanager.convergence import RecoveryEvidence, is_down_event
from galaxy_tasks.domain.rtmanager.health import HealthEvent, HealthSnapshot
from galaxy_tasks.domain.rtmanager.inspect import InspectBaseline
from galaxy_tasks.domain.rtmanager.probe import ProbeState
from galaxy_tasks.ports.outbox import OutboxEntry, OutboxPage, RetentionReport
from galaxy_tasks.ports.rtmanager import ListedContainer, RunningRecord


@dataclass
class FakeRecord:
    """A ``rtmanager.runtime_records`` row."""

    status: str
    container_id: str
    engine_endpoint: str = ""


@dataclass
class FakeSnapshotRow:
    """A ``rtmanager.health_snapshots`` row with its down period."""

    snapshot: HealthSnapshot
    event_seq: int = 1
    down_seq: int = 0
    evidence: RecoveryEvidence = field(default_factory=RecoveryEvidence)


class FakeRuntimeStore:
    def __init__(self) -> None:
        self.records: dict[str, FakeRecord] = {}
        self.snapshots: dict[str, FakeSnapshotRow] = {}
        self.keys: set[str] = set()
        self.events: list[HealthEvent] = []
        """Every recorded event, in commit order."""

    # --- what the jobs write ----------------------------------------------------------------
    def put_record(self, game_id: str, status: str, container_id: str, engine_endpoint: str = "") -> None:
        self.records[game_id] = FakeRecord(status, container_id, engine_endpoint)

    def mark(self, game_id: str, status: str) -> None:
        self.records[game_id].status = status

    # --- HealthEventStore -------------------------------------------------------------------
    def record(self, event: HealthEvent) -> OutboxEntry:
        row = self.snapshots.get(event.game_id)
        down = is_down_event(event.event_type)
        if row is None:
            row = FakeSnapshotRow(event.snapshot(), 1, 1 if down else 0)
            self.snapshots[event.game_id] = row
        else:
            row.snapshot, row.event_seq = event.snapshot(), row.event_seq + 1
            if down:
                row.down_seq, row.evidence = row.event_seq, RecoveryEvidence()
            elif event.event_type is HealthEventType.PROBE_RECOVERED:
                row.down_seq, row.evidence = 0, RecoveryEvidence()
        if down and event.event_type is HealthEventType.PROBE_FAILED:
            row.evidence = RecoveryEvidence(probe_failures=int(event.details["consecutive_failures"]))
        self.events.append(event)
        return OutboxEntry(event.game_id, row.event_seq, event.to_fields())

    def record_once(self, event: HealthEvent, key: str) -> OutboxEntry | None:
        if key in self.keys:
            return None
        self.keys.add(key)
        return self.record(event)

    def record_loss(self, event: HealthEvent) -> OutboxEntry | None:
        return self._transition(event, "disappeared")

    def record_death(self, event: HealthEvent) -> OutboxEntry | None:
        return self._transition(event, "exited")

    def record_revival(self, game_id: str, container_id: str) -> bool:
        record = self.records.get(game_id)
        if record is None or record.status != "exited" or record.container_id != container_id:
            return False
        record.status = "running"
        return True

    def prune_keys(self, before_ms: int) -> int:
        return 0

    def advance_recovery(
        self,
        game_id: str,
        down_seq: int,
        fold: Callable[[RecoveryEvidence], RecoveryEvidence],
        recovery: Callable[[RecoveryEvidence], HealthEvent | None],
    ) -> OutboxEntry | None:
        row = self.snapshots.get(game_id)
        if row is None or row.down_seq == 0 or row.down_seq != down_seq:
            return None
        evidence = fold(row.evidence)
        event = recovery(evidence)
        if event is not None:
            return self.record(event)
        row.evidence = evidence
        return None

    def _transition(self, event: HealthEvent, status: str) -> OutboxEntry | None:
        record = self.records.get(event.game_id)
        if record is None or record.status != "running" or record.container_id != event.container_id:
            return None
        record.status = status
        return self.record(event)

    # --- RunningRecords and the reconciler's CurrentContainers ------------------------------
    def running(self) -> list[RunningRecord]:
        return [
            RunningRecord(game_id, r.container_id, r.engine_endpoint, self._down_seq(game_id))
            for game_id, r in sorted(self.records.items())
            if r.status == "running"
        ]

    def exited(self) -> list[RunningRecord]:
        return [
            RunningRecord(game_id, r.container_id, r.engine_endpoint, death_exit_code=self._death_exit_code(game_id))
            for game_id, r in sorted(self.records.items())
            if r.status == "exited"
        ]

    def _death_exit_code(self, game_id: str) -> int | None:
        row = self.snapshots.get(game_id)
        code = None if row is None else row.snapshot.details.get("exit_code")
        return code if isinstance(code, int) else None

    def running_container(self, game_id: str) -> str | None:
        record = self.records.get(game_id)
        return record.container_id if record is not None and record.status == "running" else None

    def current_container_ids(self) -> set[str]:
        return {r.container_id for r in self.records.values() if r.container_id}

    def _down_seq(self, game_id: str) -> int:
        row = self.snapshots.get(game_id)
        return 0 if row is None else row.down_seq


class FakeHealthStream:
    """``StreamOutbox`` whose committed entries are on the stream at once (``entries``)."""

    def __init__(self, label: str = HEALTH_EVENT_OUTBOX.label) -> None:
        self.label = label
        self.entries: list[dict[str, str]] = []
        self.once_keys: set[str] = set()

    def publish_committed(self, entries: Sequence[OutboxEntry]) -> tuple[int, list[str]]:
        self.entries.extend(dict(e.fields) for e in entries)
        return len(entries), []

    def relay_games(self, game_ids: Sequence[str], *, wait_for_locks: bool) -> int:
        return 0

    def scan_page(self, after: int, limit: int) -> OutboxPage:
        return OutboxPage([], 0, 0)

    def backlog(self) -> int:
        return 0

    def forget_idle_games(self, idle_ms: int, batch: int) -> int:
        return 0  # it keeps no marks

    def append_once(self, key: str, fields: Mapping[str, str]) -> bool:
        if key in self.once_keys:
            return False
        self.once_keys.add(key)
        self.entries.append(dict(fields))
        return True

    def enforce_retention(self) -> RetentionReport | None:
        return None  # kept whole, like runtime:health_events (trimmed by length as it is appended)

    def of_game(self, game_id: str) -> list[tuple[str, dict[str, object]]]:
        """``(event_type, details)`` of the game's entries, in stream order."""
        return [(e["event_type"], json.loads(e["details"])) for e in self.entries if e["game_id"] == game_id]


class FakeInspectBaselines:
    """``InspectBaselineStore`` in dicts."""

    def __init__(self, **known: InspectBaseline) -> None:
        self.known = dict(known)
        self.acked: dict[str, int] = {}

    def get(self, game_id: str) -> InspectBaseline | None:
        return self.known.get(game_id)

    def all(self) -> dict[str, InspectBaseline]:
        return dict(self.known)

    def put(self, game_id: str, baseline: InspectBaseline) -> None:
        self.known[game_id] = baseline

    def drop(self, game_ids: Iterable[str]) -> int:
        gone = [g for g in game_ids if self.known.pop(g, None) is not None]
        return len(gone)

    def ack_restart(self, container_id: str) -> None:
        self.acked[container_id] = self.acked.get(container_id, 0) + 1

    def acked_restarts(self, container_id: str) -> int:
        return self.acked.get(container_id, 0)


class FakeProbeStates:
    """``ProbeStateStore`` in a dict."""

    def __init__(self, **known: ProbeState) -> None:
        self.known = dict(known)

    def get(self, game_id: str) -> ProbeState | None:
        return self.known.get(game_id)

    def put(self, game_id: str, state: ProbeState) -> None:
        self.known[game_id] = state

    def prune(self, keep: list[str]) -> int:
        stale = [g for g in self.known if g not in keep]
        for game_id in stale:
            del self.known[game_id]
        return len(stale)


class FakeOrphanReport:
    """The reconciler's ``OrphanReport`` in memory."""

    def __init__(self) -> None:
        self.orphans: list[ListedContainer] = []
        self._suspects: set[str] = set()

    def save(self, orphans: list[ListedContainer], *, suspects: list[str], now_ms: int) -> None:
        self.orphans, self._suspects = list(orphans), set(suspects)

    def suspects(self) -> set[str]:
        return set(self._suspects)
