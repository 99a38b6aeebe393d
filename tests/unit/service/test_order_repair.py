"""The order repair: a stalled game's entries re-read from the stream and applied in order, chained from its cursor."""

from __future__ import annotations

from prometheus_client import REGISTRY

from galaxy_tasks.domain.gamemaster.consumer import Outcome
from galaxy_tasks.domain.gamemaster.records import ConsumerCursor, GameRecord
from galaxy_tasks.domain.handoffs import Handoff, StreamEntry
from galaxy_tasks.ports.gamemaster import StalledGame
from galaxy_tasks.service.health_consumer import BatchResult, apply_entries
from galaxy_tasks.service.order_repair import rechain, repair_stalled_games
from galaxy_tasks.testing.bridge import FakeStreamReader
from galaxy_tasks.testing.gamemaster import FakeDatabase, FakeHealthConsumerUnitOfWork
from galaxy_tasks.testing.order_repair import FakeOrderRepairStore
from tests.unit.service.seed001_checks import bridge_handoffs, has_game, observed_snapshots, reference_model

NOW_MS = 1700000100000
REPAIR_AFTER_MS = 30000
CUTOFF_MS = NOW_MS - REPAIR_AFTER_MS


def _fields(game_id: str, event_type: str) -> dict[str, str]:
    return {
        "game_id": game_id,
        "container_id": "c",
        "event_type": event_type,
        "occurred_at_ms": "1700000000000",
        "details": "{}",
    }


def _repairs() -> float:
    return REGISTRY.get_sample_value("galaxy_gm_health_events_order_repairs_total") or 0.0


class Rig:
    """A stream of health entries, the bridge's handoffs of them, a database, and the repair store over both.

    The database's ``now()`` starts well before the cutoff, so whatever it
    parks or saves is old enough to repair unless a test says otherwise.
    """

    def __init__(self, entries: list[tuple[str, str, str]], **statuses: str) -> None:
        self.db = FakeDatabase()
        for game_id, status in statuses.items():
            self.db.add_record(game_id, status, "healthy", 7)
        self.stream = FakeStreamReader()
        self.entries = [(entry_id, _fields(game_id, event_type)) for entry_id, game_id, event_type in entries]
        for entry_id, fields in self.entries:
            self.stream.append(fields, entry_id)
        self.handoffs = {h.entry_id: h for h in bridge_handoffs(self.entries)}
        handed_on = {h.fields["game_id"]: h.entry_id for h in self.handoffs.values() if has_game(h.fields)}
        self.store = FakeOrderRepairStore(self.db, self.stream, handed_on)
        self.initial_records = dict(self.db.records)
        self.uows: list[FakeHealthConsumerUnitOfWork] = []

    def deliver(self, *entry_ids: str) -> list[BatchResult]:
        """What the broker did deliver: one task per entry."""
        return [
            apply_entries(FakeHealthConsumerUnitOfWork(self.db), [self.handoffs[e]], now_ms=NOW_MS - 60000)
            for e in entry_ids
        ]

    def new_uow(self) -> FakeHealthConsumerUnitOfWork:
        uow = FakeHealthConsumerUnitOfWork(self.db)
        self.uows.append(uow)
        return uow

    def repair(self, *, now_ms: int = NOW_MS, max_games: int = 10) -> list[dict[str, object]]:
        return repair_stalled_games(
            self.store, self.new_uow, now_ms=now_ms, repair_after_ms=REPAIR_AFTER_MS, max_games=max_games
        )

    def assert_as_seed_001(self, *, without: tuple[str, ...] = ()) -> None:
        """The state is the reference model over the whole stream (less the entries named)."""
        expected = reference_model(self.initial_records, [(e, f) for e, f in self.entries if e not in without])
        assert self.db.records == expected.records
        assert self.db.cursors == expected.cursors
        assert observed_snapshots(self.db) == expected.snapshots
        assert self.db.parked == {}


# --------------------------------------------------------------------------- rechain


def _entry(entry_id: str, event_type: str = "probe_failed") -> StreamEntry:
    return StreamEntry(entry_id, _fields("g1", event_type))


def _chain(handoffs: list[Handoff]) -> list[tuple[str, str | None]]:
    return [(h.entry_id, h.prev_entry_id) for h in handoffs]


def test_rechain_orders_entries_by_stream_id_not_by_text_and_starts_without_a_predecessor() -> None:
    handoffs = rechain("g1", None, [_entry("10-0"), _entry("9-0"), _entry("2-0")], [])
    assert _chain(handoffs) == [("2-0", None), ("9-0", "2-0"), ("10-0", "9-0")]


def test_rechain_skips_entries_at_or_before_the_cursor_comparing_ids_as_numbers() -> None:
    entries = [_entry("8-5"), _entry("9-0"), _entry("9-1"), _entry("10-0")]
    assert _chain(rechain("g1", "9-0", entries, [])) == [("9-1", "9-0"), ("10-0", "9-1")]


def test_rechain_chains_the_first_entry_after_the_cursor_to_the_cursor() -> None:
    handoffs = rechain("g1", "1-0", [_entry("3-0"), _entry("5-0")], [])
    assert _chain(handoffs) == [("3-0", "1-0"), ("5-0", "3-0")]


def test_rechain_merges_parked_entries_the_stream_no_longer_holds_into_the_chain() -> None:
    parked = [Handoff("7-0", _fields("g1", "container_oom"), "6-0")]
    handoffs = rechain("g1", "1-0", [_entry("3-0"), _entry("5-0")], parked)
    assert _chain(handoffs) == [("3-0", "1-0"), ("5-0", "3-0"), ("7-0", "5-0")]
    assert handoffs[2].fields == _fields("g1", "container_oom")


def test_rechain_prefers_the_stream_copy_of_an_entry_that_is_also_parked() -> None:
    parked = [Handoff("5-0", _fields("g1", "probe_failed"), "4-0")]
    handoffs = rechain("g1", "1-0", [_entry("5-0", "container_oom")], parked)
    assert handoffs == [Handoff("5-0", _fields("g1", "container_oom"), "1-0")]


def test_rechain_drops_parked_entries_at_or_before_the_cursor() -> None:
    parked = [Handoff("3-0", _fields("g1", "container_oom"), "2-0")]
    assert rechain("g1", "3-0", [_entry("2-0")], parked) == []


def test_rechain_hands_out_copies_of_the_fields() -> None:
    entry = _entry("3-0")
    handoffs = rechain("g1", None, [entry], [])
    handoffs[0].fields["event_type"] = "changed"
    assert entry.fields["event_type"] == "probe_failed"


# --------------------------------------------------------------------------- repair_stalled_games


def test_a_game_whose_lost_predecessor_left_its_successors_parked_is_repaired_from_the_stream() -> None:
    rig = Rig(
        [
            ("1-0", "g1", "probe_failed"),
            ("2-0", "g2", "probe_failed"),
            ("3-0", "g1", "container_exited"),
            ("4-0", "g1", "probe_recovered"),
            ("5-0", "g1", "container_oom"),
        ],
        g1="running",
        g2="running",
    )
    rig.deliver("1-0", "2-0", "5-0", "4-0")  # 3-0 is lost
    assert rig.db.parked_ids("g1") == ["4-0", "5-0"]

    assert rig.repair() == [{"game_id": "g1", "reason": "parked", "applied": 3}]

    assert rig.store.entries_calls == [("g1", "1-0", "5-0")]
    rig.assert_as_seed_001()
    assert [row.stream_entry_id for row in rig.db.outbox_of("g1")] == ["1-0", "3-0", "4-0", "5-0"]
    assert [uow.commits for uow in rig.uows] == [1]


def test_a_game_whose_last_handed_on_entry_never_arrived_gets_it_applied() -> None:
    rig = Rig([("1-0", "g1", "probe_failed"), ("2-0", "g1", "container_oom")], g1="running")
    rig.deliver("1-0")  # 2-0 is lost, and nothing after it waits
    assert rig.db.parked == {}

    assert rig.repair() == [{"game_id": "g1", "reason": "behind", "applied": 1}]

    assert rig.store.entries_calls == [("g1", "1-0", "2-0")]
    rig.assert_as_seed_001()
    assert rig.db.records["g1"] == GameRecord("g1", "engine_unreachable", "oom", 7)


def test_a_game_none_of_whose_entries_arrived_is_repaired_from_its_first_entry() -> None:
    rig = Rig(
        [("1-0", "g1", "container_oom"), ("2-0", "g2", "probe_failed"), ("3-0", "g1", "probe_recovered")], g1="running"
    )
    rig.deliver("2-0")

    assert rig.repair() == [{"game_id": "g1", "reason": "behind", "applied": 2}]

    assert rig.store.entries_calls == [("g1", None, "3-0")]
    rig.assert_as_seed_001()


def test_an_entry_the_broker_delivers_after_its_repair_is_a_duplicate() -> None:
    rig = Rig(
        [("1-0", "g1", "probe_failed"), ("2-0", "g1", "container_exited"), ("3-0", "g1", "probe_recovered")],
        g1="running",
    )
    rig.deliver("1-0", "3-0")
    rig.repair()
    before = rig.db.state()

    uow = FakeHealthConsumerUnitOfWork(rig.db)
    late = apply_entries(uow, [rig.handoffs["2-0"]], now_ms=NOW_MS + 1)

    assert [(r.entry_id, r.outcome) for r in late.results] == [("2-0", Outcome.DUPLICATE)]
    assert late.released == []
    assert uow.committed_writes == []
    assert rig.db.state() == before
    rig.assert_as_seed_001()


def test_a_game_whose_lost_entry_is_gone_from_the_stream_is_repaired_with_what_the_stream_and_parking_hold() -> None:
    rig = Rig(
        [("1-0", "g1", "probe_failed"), ("2-0", "g1", "container_oom"), ("3-0", "g1", "inspect_unhealthy")],
        g1="running",
    )
    rig.deliver("1-0", "3-0")
    rig.stream.delete("2-0")
    rig.stream.delete("3-0")

    assert rig.repair() == [{"game_id": "g1", "reason": "parked", "applied": 1}]

    rig.assert_as_seed_001(without=("2-0",))
    assert rig.db.cursors["g1"] == ConsumerCursor("g1", "3-0", "inspect_unhealthy", lobby_seq=2)


def test_each_repaired_game_counts_once_in_the_order_repairs_metric() -> None:
    rig = Rig(
        [
            ("1-0", "g1", "probe_failed"),
            ("2-0", "g2", "probe_failed"),
            ("3-0", "g1", "container_oom"),
            ("4-0", "g1", "probe_recovered"),
            ("5-0", "g2", "container_oom"),
        ],
        g1="running",
        g2="running",
    )
    rig.deliver("1-0", "2-0", "4-0")  # g1 parked (3-0 lost), g2 behind (5-0 lost)
    before = _repairs()

    assert [(r["game_id"], r["reason"]) for r in rig.repair()] == [("g1", "parked"), ("g2", "behind")]
    assert _repairs() - before == 2

    assert rig.repair() == []
    assert _repairs() - before == 2
    rig.assert_as_seed_001()


def test_games_stalled_for_less_than_the_repair_delay_are_left_alone() -> None:
    rig = Rig([("1-0", "g1", "probe_failed"), ("2-0", "g1", "container_oom")], g1="running")
    rig.db.now_ms = NOW_MS - REPAIR_AFTER_MS // 2
    rig.deliver("2-0")  # parked just now; 1-0 is lost
    before = _repairs()

    assert rig.repair(max_games=7) == []
    assert rig.store.stalled_calls == [(CUTOFF_MS, 7)]
    assert rig.db.parked_ids("g1") == ["2-0"]
    assert rig.uows == []
    assert _repairs() == before

    later = NOW_MS + REPAIR_AFTER_MS
    assert rig.repair(now_ms=later, max_games=7) == [{"game_id": "g1", "reason": "parked", "applied": 2}]
    assert rig.store.stalled_calls[-1] == (later - REPAIR_AFTER_MS, 7)
    rig.assert_as_seed_001()


def test_a_run_repairs_at_most_max_games_and_the_next_run_the_rest() -> None:
    rig = Rig(
        [("1-0", "g1", "container_oom"), ("2-0", "g2", "container_oom"), ("3-0", "g3", "container_oom")],
        g1="running",
        g2="running",
        g3="running",
    )
    assert [r["game_id"] for r in rig.repair(max_games=2)] == ["g1", "g2"]
    assert rig.db.records["g3"].status == "running"
    assert [r["game_id"] for r in rig.repair(max_games=2)] == ["g3"]
    rig.assert_as_seed_001()


def test_each_game_is_repaired_in_a_transaction_of_its_own() -> None:
    rig = Rig([("1-0", "g1", "container_oom"), ("2-0", "g2", "container_oom")], g1="running", g2="running")
    rig.repair()
    assert [uow.lock_requests[0] for uow in rig.uows] == [("g1",), ("g2",)]
    assert [uow.commits for uow in rig.uows] == [1, 1]


def test_the_fake_store_reports_stalled_games_with_their_cursor_and_target() -> None:
    rig = Rig(
        [("1-0", "g1", "probe_failed"), ("3-0", "g1", "container_oom"), ("4-0", "g2", "probe_failed")],
        g1="running",
        g2="running",
    )
    rig.deliver("1-0", "3-0")
    rig.db.add_parked(Handoff("9-0", _fields("g1", "probe_failed"), "8-0"))
    rig.db.add_parked(Handoff("10-0", _fields("g1", "probe_failed"), "9-0"))
    assert rig.store.stalled_games(CUTOFF_MS, 10) == [
        StalledGame("g1", "3-0", "10-0", "parked"),
        StalledGame("g2", None, "4-0", "behind"),
    ]


# --------------------------------------------------------------------------- gaps and the trim floor


def _gaps() -> float:
    return REGISTRY.get_sample_value("galaxy_gm_health_event_gaps_total") or 0.0


def test_parked_entries_whose_predecessor_was_trimmed_are_applied_over_the_gap_with_an_alarm() -> None:
    rig = Rig(
        [("1-0", "g1", "probe_failed"), ("2-0", "g1", "container_oom"), ("3-0", "g2", "probe_failed")],
        g1="running",
        g2="running",
    )
    rig.deliver("2-0", "3-0")  # 1-0 is lost: 2-0 waits for it
    rig.stream.trim(2)  # and 1-0 is trimmed before any repair
    gaps = _gaps()

    assert rig.repair() == [{"game_id": "g1", "reason": "parked", "applied": 1}]

    assert _gaps() == gaps + 1
    assert rig.db.cursors["g1"].last_entry_id == "2-0"
    assert rig.db.records["g1"] == GameRecord("g1", "engine_unreachable", "oom", 7)


def test_a_game_whose_every_handed_on_entry_was_trimmed_moves_past_them_once_with_an_alarm() -> None:
    rig = Rig([("1-0", "g1", "container_oom"), ("2-0", "g2", "probe_failed")], g1="running", g2="running")
    rig.deliver("2-0")  # 1-0 is lost
    rig.stream.trim(1)  # and gone
    gaps = _gaps()

    assert rig.repair() == [{"game_id": "g1", "reason": "behind", "applied": 1}]

    assert _gaps() == gaps + 1
    assert rig.db.cursors["g1"].last_entry_id == "1-0", "its cursor moved past the gone entry"
    assert rig.db.records["g1"] == GameRecord("g1", "running", "healthy", 7), "of which nothing is known"
    assert rig.repair() == [], "not behind any more: one alarm, not one per run"
    assert _gaps() == gaps + 1


def test_a_lost_entry_still_in_the_stream_is_no_gap() -> None:
    rig = Rig([("1-0", "g1", "probe_failed"), ("2-0", "g1", "container_oom")], g1="running")
    rig.deliver("2-0")
    gaps = _gaps()
    rig.repair()
    assert _gaps() == gaps
    rig.assert_as_seed_001()


def test_the_trim_floor_is_the_oldest_entry_a_repair_may_reread() -> None:
    rig = Rig(
        [
            ("1-0", "g1", "probe_failed"),
            ("2-0", "g2", "probe_failed"),
            ("3-0", "g1", "container_oom"),
            ("4-0", "g3", "probe_failed"),
            ("5-0", "g3", "container_oom"),
        ],
        g1="running",
        g2="running",
        g3="running",
    )
    rig.deliver("1-0", "2-0", "4-0", "5-0")  # g1's 3-0 is in flight (or lost): g1 may need what follows 1-0
    assert rig.store.protect_unapplied() == "1-0"
    rig.deliver("3-0")
    assert rig.store.protect_unapplied() is None, "everyone caught up: nothing to protect beyond the offset"
    rig.store.handed_on["g4"] = "6-0"  # a game without a cursor yet: its first entry in flight
    assert rig.store.protect_unapplied() == "6-0"
