"""Whatever the delivery (chunks, duplicates, order, losses), the result is seed 001 applied one entry at a time.

Entries whose predecessor is not applied yet are parked, so delivering every
entry once — in any order, in any chunking, with any duplicates — must leave
the database exactly as :func:`~tests.unit.service.seed001_checks.reference_model`
says and the parking empty; no retry is needed.  Entries the broker loses are
re-read from the stream by the order repair, with the same end result.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from galaxy_tasks.domain.gamemaster.consumer import Outcome
from galaxy_tasks.domain.gamemaster.records import GameRecord
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.service.health_consumer import EntryResult, apply_entries
from galaxy_tasks.service.order_repair import repair_stalled_games
from galaxy_tasks.testing.bridge import FakeStreamReader
from galaxy_tasks.testing.gamemaster import FakeDatabase, FakeHealthConsumerUnitOfWork
from galaxy_tasks.testing.order_repair import FakeOrderRepairStore
from tests.unit.service.seed001_checks import (
    SEED_EVENT_TYPES,
    applied_cursors,
    bridge_handoffs,
    has_game,
    observed_snapshots,
    reference_model,
    stream_key,
)

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
SEVEN_TYPES = SEED_EVENT_TYPES
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


# --------------------------------------------------------------------------- delivering through apply_entries

Entries = list[tuple[str, dict[str, str]]]
REPAIR_NOW_MS = 1700000100000
REPAIR_AFTER_MS = 30000


def _check_every_delivered_entry_is_applied_or_parked(
    db: FakeDatabase, records: dict[str, GameRecord], entries: Entries, delivered: set[str]
) -> None:
    """Per game, the state is the reference over the entries up to the cursor; what was delivered after it is parked."""
    cursors = {game: stream_key(c.last_entry_id) for game, c in applied_cursors(db).items() if c.last_entry_id}
    applied = [
        (entry_id, fields)
        for entry_id, fields in entries
        if has_game(fields) and stream_key(entry_id) <= cursors.get(fields["game_id"], (-1, -1))
    ]
    expected = reference_model(records, applied)
    assert db.records == expected.records
    assert applied_cursors(db) == expected.cursors
    assert observed_snapshots(db) == expected.snapshots
    waiting = {
        (fields["game_id"], entry_id)
        for entry_id, fields in entries
        if has_game(fields)
        and entry_id in delivered
        and stream_key(entry_id) > cursors.get(fields["game_id"], (-1, -1))
    }
    assert set(db.parked) == waiting


def _deliver(
    db: FakeDatabase, deliveries: list[Handoff], rnd: random.Random, now: list[int], check: Callable[[set[str]], None]
) -> list[EntryResult]:
    """Deliver in random chunks and return every result reported (handed-in and released).

    Some chunks are in stream order (as the bridge makes them), some scrambled
    (retries, redeliveries); ``check`` sees what was delivered so far after
    each call.
    """
    reported: list[EntryResult] = []
    delivered: set[str] = set()
    index = 0
    while index < len(deliveries):
        size = rnd.randint(1, 5)
        chunk = deliveries[index : index + size]
        index += size
        if rnd.random() < 0.5:
            chunk = sorted(chunk, key=lambda h: stream_key(h.entry_id))
        now[0] += 1
        batch = apply_entries(FakeHealthConsumerUnitOfWork(db), chunk, now_ms=now[0])
        reported.extend(batch.results)
        reported.extend(batch.released)
        delivered.update(h.entry_id for h in chunk)
        check(delivered)
    return reported


def _scrambled(handoffs: list[Handoff], rnd: random.Random) -> list[Handoff]:
    """Each entry one to three times, in random order."""
    deliveries = [h for h in handoffs for _ in range(rnd.choice([1, 1, 1, 2, 3]))]
    rnd.shuffle(deliveries)
    return deliveries


def _done_once_each(reported: list[EntryResult], entries: Entries) -> None:
    """Exactly once: every entry of a game is applied or skipped exactly once over all the reports."""
    done = Counter(
        r.entry_id for r in reported if r.game_id is not None and r.outcome not in (Outcome.DUPLICATE, Outcome.PARKED)
    )
    assert done == Counter(entry_id for entry_id, fields in entries if has_game(fields))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_strategy, entries=streams(), rnd=st.randoms(use_true_random=False))
def test_any_delivery_ends_exactly_as_seed_001_applied_one_at_a_time_with_nothing_left_parked(
    records: dict[str, GameRecord], entries: Entries, rnd: random.Random
) -> None:
    expected = reference_model(records, entries)
    db = FakeDatabase(records=dict(records))
    handoffs = bridge_handoffs(entries)
    now = [1700000000000]

    def check(delivered: set[str]) -> None:
        _check_every_delivered_entry_is_applied_or_parked(db, records, entries, delivered)

    reported = _deliver(db, _scrambled(handoffs, rnd), rnd, now, check)

    assert db.parked == {}
    assert db.records == expected.records
    assert db.cursors == expected.cursors
    assert observed_snapshots(db) == expected.snapshots
    _done_once_each(reported, entries)

    # A bridge restart re-sends a tail of the stream: nothing changes any more.
    before = db.state()
    tail = _deliver(db, handoffs[rnd.randrange(len(handoffs)) :], rnd, now, check)
    assert {r.outcome for r in tail if r.game_id is not None} <= {Outcome.DUPLICATE}
    assert db.state() == before


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=records_strategy, entries=streams(), rnd=st.randoms(use_true_random=False))
def test_entries_the_broker_lost_are_repaired_from_the_stream_to_exactly_seed_001(
    records: dict[str, GameRecord], entries: Entries, rnd: random.Random
) -> None:
    expected = reference_model(records, entries)
    db = FakeDatabase(records=dict(records))
    handoffs = bridge_handoffs(entries)
    lost = [h for h in handoffs if rnd.random() < 0.3]
    arrived = [h for h in handoffs if h not in lost]
    now = [1700000000000]

    def check(delivered: set[str]) -> None:
        _check_every_delivered_entry_is_applied_or_parked(db, records, entries, delivered)

    _deliver(db, _scrambled(arrived, rnd), rnd, now, check)

    stream = FakeStreamReader()
    for entry_id, fields in entries:
        stream.append(fields, entry_id)
    handed_on = {h.fields["game_id"]: h.entry_id for h in handoffs if has_game(h.fields)}
    store = FakeOrderRepairStore(db, stream, handed_on)
    max_games = rnd.randint(1, 4)
    for _ in range(4 * len(handed_on) + 1):
        repaired = repair_stalled_games(
            store,
            lambda: FakeHealthConsumerUnitOfWork(db),
            now_ms=REPAIR_NOW_MS,
            repair_after_ms=REPAIR_AFTER_MS,
            max_games=max_games,
        )
        for item in repaired:
            event(f"a game repaired as {item['reason']}")
        if not repaired:
            break
    assert store.stalled_games(REPAIR_NOW_MS - REPAIR_AFTER_MS, 100) == []

    assert db.parked == {}
    assert db.records == expected.records
    assert db.cursors == expected.cursors
    assert observed_snapshots(db) == expected.snapshots

    # The broker delivers the lost entries after all: nothing changes.
    before = db.state()
    late = _deliver(db, _scrambled(lost, rnd), rnd, now, check)
    assert {r.outcome for r in late if r.game_id is not None} <= {Outcome.DUPLICATE}
    assert db.state() == before
