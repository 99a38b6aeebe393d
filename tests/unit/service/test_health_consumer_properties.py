"""Whatever the delivery (chunks, duplicates, order), the result is seed 001 applied one entry at a time.

The reference model below is written straight from seed 001's
``HandleMessage`` (decode, planFor, CAS with fall-back, debounce on the last
*published* summary, snapshot from the row after the write) with the debounce
map kept in memory as the seed does.  It shares no code with
``galaxy_tasks.domain.gamemaster.consumer``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from galaxy_tasks.domain.gamemaster.consumer import Outcome
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord
from galaxy_tasks.ports import Handoff
from galaxy_tasks.service.health_consumer import apply_entries
from tests.fakes import FakeDatabase, FakeHealthConsumerUnitOfWork

# --------------------------------------------------------------------------- the reference model (seed 001)

_SEED_PLANS: dict[str, tuple[str, tuple[str, str] | None]] = {
    "container_started": ("healthy", None),
    "probe_recovered": ("healthy", ("engine_unreachable", "running")),
    "probe_failed": ("probe_failed", None),
    "inspect_unhealthy": ("inspect_unhealthy", None),
    "container_exited": ("exited", ("running", "engine_unreachable")),
    "container_oom": ("oom", ("running", "engine_unreachable")),
    "container_disappeared": ("disappeared", ("running", "engine_unreachable")),
}
_GO_INT = re.compile(r"[+-]?[0-9]+")


def _go_parse_int64(raw: str) -> int | None:
    """``strconv.ParseInt(raw, 10, 64)``; ``None`` where Go returns an error."""
    if not _GO_INT.fullmatch(raw):
        return None
    value = int(raw)
    return value if -(2**63) <= value < 2**63 else None


def _seed_decode(fields: dict[str, str]) -> tuple[str, str] | None:
    """``decodeEvent``: the game id and event type, or ``None`` for a malformed entry."""
    game_id = fields.get("game_id", "")
    event_type = fields.get("event_type", "")
    raw_ms = fields.get("occurred_at_ms", "")
    if not game_id.strip() or not event_type.strip() or not raw_ms.strip():
        return None
    occurred_at_ms = _go_parse_int64(raw_ms)
    if occurred_at_ms is None or occurred_at_ms <= 0:
        return None
    return game_id, event_type


@dataclass
class Expected:
    records: dict[str, GameRecord]
    cursors: dict[str, ConsumerCursor] = field(default_factory=dict)
    snapshots: dict[str, list[tuple[str, dict[str, str]]]] = field(default_factory=dict)


def reference_model(records: dict[str, GameRecord], entries: list[tuple[str, dict[str, str]]]) -> Expected:
    """Apply ``entries`` one at a time, in stream order, as the seed's worker does."""
    expected = Expected(records=dict(records))
    last_emitted: dict[str, str] = {}
    last_entry: dict[str, str] = {}
    for entry_id, fields in entries:
        raw_game = fields.get("game_id", "")
        if raw_game.strip():
            last_entry[raw_game] = entry_id  # the entry is observed: the game's cursor moves past it
        decoded = _seed_decode(fields)
        if decoded is None:
            continue
        game_id, event_type = decoded
        plan = _SEED_PLANS.get(event_type)
        current = expected.records.get(game_id)
        if plan is None or current is None:
            continue
        summary, transition = plan
        status_changed = transition is not None and current.status == transition[0]
        if transition is not None and status_changed:
            written = replace(current, status=transition[1], engine_health=summary)
        else:
            written = replace(current, engine_health=summary)
        expected.records[game_id] = written
        if status_changed or last_emitted.get(game_id) != summary:
            expected.snapshots.setdefault(game_id, []).append(
                (
                    entry_id,
                    {
                        "event_type": "runtime_snapshot_update",
                        "game_id": written.game_id,
                        "current_turn": str(written.current_turn),
                        "runtime_status": written.status,
                        "engine_health_summary": written.engine_health,
                        "player_turn_stats": "[]",
                    },
                )
            )
            last_emitted[game_id] = summary
    expected.cursors = {g: ConsumerCursor(g, e, last_emitted.get(g)) for g, e in last_entry.items()}
    return expected


# --------------------------------------------------------------------------- generated streams

KNOWN_GAMES = ("g1", "g2", "g10")
UNKNOWN_GAMES = ("g9",)
STATUSES = (
    "running",
    "engine_unreachable",
    "generation_in_progress",
    "generation_failed",
    "stopped",
    "finished",
    "starting",
)
SUMMARIES = ("", "healthy", "probe_failed", "inspect_unhealthy", "exited", "oom", "disappeared")
SEVEN_TYPES = tuple(_SEED_PLANS)
UNKNOWN_TYPES = ("container_paused", "CONTAINER_OOM", " probe_failed", "runtime_snapshot_update")
BAD_MS = ("", "  ", "0", "-5", "5.0", " 5", "abc", "9223372036854775808", "1e3")
GOOD_MS = ("1700000000000", "+5", "007")

records_strategy = st.fixed_dictionaries(
    {
        game: st.builds(
            GameRecord,
            st.just(game),
            st.sampled_from(STATUSES),
            st.sampled_from(SUMMARIES),
            st.integers(0, 50),
        )
        for game in KNOWN_GAMES
    }
)


@st.composite
def entry_fields(draw: st.DrawFn) -> dict[str, str]:
    fields = {
        "game_id": draw(st.sampled_from(KNOWN_GAMES + UNKNOWN_GAMES)),
        "container_id": "c",
        "event_type": draw(st.sampled_from(SEVEN_TYPES)),
        "occurred_at_ms": draw(st.sampled_from(GOOD_MS)),
        "details": "{}",
    }
    kind = draw(st.sampled_from(["valid"] * 6 + ["unknown_type", "bad_ms", "no_type", "no_game", "blank_game"]))
    if kind == "unknown_type":
        fields["event_type"] = draw(st.sampled_from(UNKNOWN_TYPES))
    elif kind == "bad_ms":
        fields["occurred_at_ms"] = draw(st.sampled_from(BAD_MS))
    elif kind == "no_type":
        fields["event_type"] = draw(st.sampled_from(["", "   "]))
    elif kind == "no_game":
        del fields["game_id"]
    elif kind == "blank_game":
        fields["game_id"] = draw(st.sampled_from(["", " ", "\t"]))
    return fields


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[str, dict[str, str]]]:
    """Entries with ids that cross digit boundaries (``9-0`` → ``10-0``, ``8-9`` → ``8-10``)."""
    all_fields = draw(st.lists(entry_fields(), min_size=1, max_size=30))
    ms, seq = 8, 0
    entries = []
    for fields in all_fields:
        entries.append((f"{ms}-{seq}", fields))
        step = draw(st.integers(0, 2))
        ms, seq = (ms, seq + 1) if step == 0 else (ms + step, 0)
    return entries


def _handoffs(entries: list[tuple[str, dict[str, str]]]) -> list[Handoff]:
    """What the bridge hands on: each entry with the previous entry of the same game."""
    last: dict[str, str] = {}
    handoffs = []
    for entry_id, fields in entries:
        game = fields.get("game_id", "")
        prev = None
        if game.strip():
            prev = last.get(game)
            last[game] = entry_id
        handoffs.append(Handoff(entry_id, fields, prev))
    return handoffs


# --------------------------------------------------------------------------- delivering through apply_entries


def _stream_key(handoff: Handoff) -> tuple[int, int]:
    ms, seq = handoff.entry_id.split("-")
    return int(ms), int(seq)


def _deliver_round(db: FakeDatabase, deliveries: list[Handoff], rnd: random.Random, now: list[int]) -> set[str]:
    """Deliver in random chunks (each in stream order, as the bridge makes them); return what still waits."""
    waiting: set[str] = set()
    done: set[str] = set()
    index = 0
    while index < len(deliveries):
        size = rnd.randint(1, 5)
        chunk = {h.entry_id: h for h in deliveries[index : index + size]}
        index += size
        now[0] += 1
        result = apply_entries(FakeHealthConsumerUnitOfWork(db), sorted(chunk.values(), key=_stream_key), now_ms=now[0])
        for item in result.results:
            (waiting if item.outcome is Outcome.WAITING else done).add(item.entry_id)
    return waiting - done


def _observed(db: FakeDatabase) -> dict[str, list[tuple[str, dict[str, str]]]]:
    snapshots: dict[str, list[tuple[str, dict[str, str]]]] = {}
    for row in sorted(db.outbox, key=lambda r: r.id):
        fields = row.snapshot.to_fields()
        del fields["occurred_at_ms"]
        snapshots.setdefault(row.game_id, []).append((row.stream_entry_id, fields))
    return snapshots


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_strategy, entries=streams(), rnd=st.randoms(use_true_random=False))
def test_any_delivery_ends_exactly_as_seed_001_applied_one_at_a_time(
    records: dict[str, GameRecord], entries: list[tuple[str, dict[str, str]]], rnd: random.Random
) -> None:
    expected = reference_model(records, entries)

    db = FakeDatabase(records=dict(records))
    handoffs = _handoffs(entries)
    by_id = {h.entry_id: h for h in handoffs}
    deliveries = [h for h in handoffs for _ in range(rnd.choice([1, 1, 1, 2, 3]))]
    rnd.shuffle(deliveries)
    now = [1700000000000]
    waiting = _deliver_round(db, deliveries, rnd, now)
    while waiting:
        # Retry what waits (a task retry), mixed with stray re-deliveries of finished entries.
        retry = [by_id[e] for e in waiting] + rnd.sample(handoffs, k=min(2, len(handoffs)))
        rnd.shuffle(retry)
        still = _deliver_round(db, retry, rnd, now)
        assert len(still) < len(waiting), "no progress: the oldest waiting entry must be ready"
        waiting = still

    assert db.records == expected.records
    assert db.cursors == expected.cursors
    assert _observed(db) == expected.snapshots

    # A bridge restart re-sends a tail of the stream: nothing changes any more.
    before = db.state()
    tail = handoffs[rnd.randrange(len(handoffs)) :]
    assert _deliver_round(db, tail, rnd, now) == set()
    assert db.state() == before
