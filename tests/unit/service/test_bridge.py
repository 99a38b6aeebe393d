"""``StreamBridge.run`` with in-memory stream, state, lease and broker."""

from __future__ import annotations

import itertools

import pytest
from prometheus_client import REGISTRY

from galaxy_tasks.domain.gamemaster.entries import game_id_of
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.domain.stream_ids import StreamId, just_before
from galaxy_tasks.service.bridge import BridgeReport, BridgeTuning, StreamBridge
from galaxy_tasks.testing.bridge import FakeBridgeStateStore, FakeEntryDispatcher, FakeLease, FakeStreamReader

_stream_names = itertools.count()


class StopAfter:
    """``should_stop`` that lets the loop run ``iterations`` times, then asks it to stop."""

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls > self.iterations


class Rig:
    """A bridge wired to fakes; each rig reads its own stream name so metrics do not mix."""

    def __init__(
        self,
        *,
        batch_size: int = 100,
        backlog_threshold: int = 1000,
        backlog_batch_size: int = 1000,
        backlog_partitions: int = 4,
        reader: FakeStreamReader | None = None,
        state: FakeBridgeStateStore | None = None,
        lease: FakeLease | None = None,
        dispatcher: FakeEntryDispatcher | None = None,
        dispatch_window: int = 0,
        forget_after_ms: int = BridgeTuning.forget_after_ms,
        forget_check_seconds: float = BridgeTuning.forget_check_seconds,
        renew_every_seconds: float = 0.0,
    ) -> None:
        self.stream = f"test:stream:{next(_stream_names)}"
        self.reader = reader or FakeStreamReader()
        self.lease = lease or FakeLease()
        self.state = state or FakeBridgeStateStore(lease=self.lease)
        self.dispatcher = dispatcher or FakeEntryDispatcher()
        self.sleeps: list[float] = []
        self.offsets_at_sleep: list[str] = []
        self.now = 0.0
        """The bridge's clock: it moves only when the bridge sleeps."""
        self.tuning = BridgeTuning(
            batch_size=batch_size,
            block_ms=1,
            backlog_threshold=backlog_threshold,
            backlog_batch_size=backlog_batch_size,
            backlog_partitions=backlog_partitions,
            error_backoff_seconds=0.25,
            forget_after_ms=forget_after_ms,
            forget_check_seconds=forget_check_seconds,
            dispatch_window=dispatch_window,
            hold_seconds=0.01,
            renew_every_seconds=renew_every_seconds,
        )
        self.bridge = StreamBridge(
            stream=self.stream,
            partition_of=game_id_of,
            reader=self.reader,
            state=self.state,
            lease=self.lease,
            dispatcher=self.dispatcher,
            tuning=self.tuning,
            sleep=self._sleep,
            clock=lambda: self.now,
        )

    def _sleep(self, seconds: float) -> None:
        self.now += seconds
        self.sleeps.append(seconds)
        self.offsets_at_sleep.append(self.state.offset)

    def add(self, *games: str | None) -> list[str]:
        ids = []
        for game in games:
            fields = {"event_type": "probe_failed", "occurred_at_ms": "1700000000000", "container_id": "c"}
            if game is not None:
                fields["game_id"] = game
            ids.append(self.reader.append(fields))
        return ids

    def run(self, iterations: int) -> BridgeReport:
        return self.bridge.run(StopAfter(iterations))

    def metric(self, name: str) -> float:
        return REGISTRY.get_sample_value(name, {"stream": self.stream}) or 0.0


def _prevs(handoffs: list[Handoff]) -> list[tuple[str, str | None]]:
    return [(h.entry_id, h.prev_entry_id) for h in handoffs]


def _id_key(entry_id: str) -> StreamId:
    return StreamId.parse(entry_id)


# --------------------------------------------------------------------------- handing on


def test_bridge_hands_on_every_entry_in_order_with_the_previous_entry_of_its_game() -> None:
    rig = Rig(batch_size=3)
    rig.add("g1", "g2", "g1", None, "g2", "g1", "g3", "g1", "g1", "g2", "g1")
    report = rig.run(10)
    assert _prevs(rig.dispatcher.delivered) == [
        ("1-0", None),
        ("2-0", None),
        ("3-0", "1-0"),
        ("4-0", None),
        ("5-0", "2-0"),
        ("6-0", "3-0"),
        ("7-0", None),
        ("8-0", "6-0"),
        ("9-0", "8-0"),
        ("10-0", "5-0"),
        ("11-0", "9-0"),
    ]
    assert set(rig.dispatcher.modes) == {"each"}
    assert (report.entries, report.offset, report.lag, report.exit_reason) == (11, "11-0", 0, "shutdown")
    assert rig.state.offset == "11-0"
    assert rig.state.last_by_partition == {"g1": "11-0", "g2": "10-0", "g3": "7-0"}


def test_bridge_reads_in_batches_of_the_configured_size_from_the_saved_offset() -> None:
    rig = Rig(batch_size=2)
    rig.add("g1", "g1", "g1", "g1", "g1")
    rig.run(4)
    assert rig.reader.reads[:3] == [("0-0", 2), ("2-0", 2), ("4-0", 2)]
    assert [offset for offset, _, _ in rig.state.saves] == ["2-0", "4-0", "5-0"]


def test_bridge_resumes_from_the_stored_offset_and_last_entry_per_game() -> None:
    lease = FakeLease()
    state = FakeBridgeStateStore(offset="2-0", last_by_partition={"g1": "1-0", "g2": "2-0"}, lease=lease)
    rig = Rig(lease=lease, state=state)
    rig.add("g1", "g2", "g1", "g3", "g2")
    rig.run(2)
    assert _prevs(rig.dispatcher.delivered) == [("3-0", "1-0"), ("4-0", None), ("5-0", "2-0")]


def test_bridge_saves_the_offset_only_after_the_broker_holds_the_entries() -> None:
    seen_at_save: list[tuple[str, list[str]]] = []
    lease = FakeLease()
    rig = Rig(batch_size=2, lease=lease)
    rig.state.on_save = lambda offset: seen_at_save.append((offset, rig.dispatcher.delivered_ids))
    rig.add("g1", "g2", "g1")
    rig.run(3)
    assert seen_at_save == [("2-0", ["1-0", "2-0"]), ("3-0", ["1-0", "2-0", "3-0"])]


def test_bridge_keeps_the_offset_when_dispatch_fails_and_resends_the_same_handoffs() -> None:
    rig = Rig(batch_size=2, dispatcher=FakeEntryDispatcher())
    rig.add("g1", "g2", "g1", "g2")
    rig.run(1)
    assert rig.state.offset == "2-0"

    rig.dispatcher.fail_times = 1
    rig.add("g1")
    rig.run(4)
    failed, retried = rig.dispatcher.attempts[1], rig.dispatcher.attempts[2]
    assert rig.offsets_at_sleep == ["2-0"]
    assert _prevs(failed) == [("3-0", "1-0"), ("4-0", "2-0")]
    assert _prevs(retried) == _prevs(failed)
    assert [h.fields for h in retried] == [h.fields for h in failed]
    assert rig.state.offset == "5-0"
    assert rig.sleeps == [0.25]


def test_bridge_resends_the_same_handoffs_after_a_restart_that_lost_the_save() -> None:
    first = Rig(batch_size=10)
    first.add("g1", "g2", "g1")
    first.run(1)
    plan_before = _prevs(first.dispatcher.delivered)

    # A second bridge restarting from the state stored before that batch.
    lease = FakeLease("other")
    again = Rig(
        batch_size=10,
        reader=first.reader,
        lease=lease,
        state=FakeBridgeStateStore(lease=lease),
    )
    again.run(1)
    assert _prevs(again.dispatcher.delivered) == plan_before


def test_bridge_retries_after_a_stream_read_error() -> None:
    rig = Rig()
    rig.add("g1", "g2")
    rig.reader.fail_reads = 1
    report = rig.run(3)
    assert rig.dispatcher.delivered_ids == ["1-0", "2-0"]
    assert rig.sleeps == [0.25]
    assert report.exit_reason == "shutdown"


def test_bridge_with_nothing_to_read_moves_nothing() -> None:
    rig = Rig()
    report = rig.run(3)
    assert rig.dispatcher.attempts == []
    assert rig.state.saves == []
    assert (report.entries, report.exit_reason) == (0, "shutdown")


def test_bridge_waits_for_a_stream_that_does_not_exist_yet() -> None:
    rig = Rig(reader=FakeStreamReader(exists=False))
    assert rig.run(2).entries == 0
    rig.add("g1")
    assert rig.run(2).entries == 1
    assert rig.dispatcher.delivered_ids == ["1-0"]


# --------------------------------------------------------------------------- lease


def test_bridge_stops_when_the_lease_cannot_be_renewed() -> None:
    lease = FakeLease(renewals_before_loss=1)
    rig = Rig(batch_size=2, lease=lease)
    rig.add("g1", "g2", "g1", "g2")
    report = rig.run(100)
    assert report.exit_reason == "lease_lost"
    assert rig.dispatcher.delivered_ids == ["1-0", "2-0"]
    assert rig.state.offset == "2-0"


def test_bridge_stops_without_moving_the_offset_when_the_lease_is_lost_during_dispatch() -> None:
    lease = FakeLease()
    rig = Rig(lease=lease, dispatcher=FakeEntryDispatcher(on_send=lease.lose))
    rig.add("g1", "g2")
    report = rig.run(100)
    assert report.exit_reason == "lease_lost"
    assert rig.state.offset == "0-0"
    assert rig.state.refused_saves == 1
    assert report.entries == 0
    assert len(rig.dispatcher.attempts) == 1


def test_bridge_returns_lease_held_elsewhere_without_reading_or_releasing() -> None:
    rig = Rig(lease=FakeLease(held_elsewhere=True))
    rig.add("g1")
    report = rig.run(100)
    assert report.exit_reason == "lease_held_elsewhere"
    assert report.holder == rig.lease.holder
    assert rig.reader.reads == []
    assert rig.state.loads == 0
    assert rig.dispatcher.attempts == []
    assert rig.lease.releases == 0


def test_bridge_releases_its_lease_when_it_stops() -> None:
    rig = Rig()
    rig.add("g1")
    rig.run(2)
    assert rig.lease.releases == 1
    assert not rig.lease.held


def test_bridge_releases_its_lease_when_an_unexpected_error_escapes() -> None:
    def explode() -> None:
        raise RuntimeError("bug")

    rig = Rig(dispatcher=FakeEntryDispatcher(on_send=explode))
    rig.add("g1")
    with pytest.raises(RuntimeError, match="bug"):
        rig.run(5)
    assert rig.lease.releases == 1
    assert rig.state.offset == "0-0"


def test_bridge_stops_at_once_when_should_stop_is_already_true() -> None:
    rig = Rig()
    rig.add("g1")
    report = rig.run(0)
    assert report.exit_reason == "shutdown"
    assert rig.reader.reads == []
    assert rig.dispatcher.attempts == []
    assert rig.lease.releases == 1


def test_bridge_checks_should_stop_before_every_iteration() -> None:
    rig = Rig(batch_size=1)
    rig.add("g1", "g1", "g1", "g1")
    stop = StopAfter(2)
    report = rig.bridge.run(stop)
    assert report.entries == 2
    assert stop.calls == 3


# --------------------------------------------------------------------------- backlog mode


def test_bridge_switches_to_chunk_mode_when_lag_reaches_the_backlog_threshold() -> None:
    rig = Rig(batch_size=2, backlog_threshold=6, backlog_batch_size=50, backlog_partitions=3)
    rig.add("g1", "g2", "g3", "g1", "g2", "g3")
    report = rig.run(1)
    assert rig.dispatcher.modes == ["chunks"]
    assert rig.reader.reads[0] == ("0-0", 50)
    assert report.chunks == len(rig.dispatcher.chunks)
    assert sorted(rig.dispatcher.delivered_ids, key=_id_key) == [f"{i}-0" for i in range(1, 7)]
    assert rig.state.offset == "6-0"


def test_bridge_stays_in_event_mode_below_the_backlog_threshold() -> None:
    rig = Rig(batch_size=2, backlog_threshold=7, backlog_batch_size=50)
    rig.add("g1", "g2", "g3", "g1", "g2", "g3")
    rig.run(1)
    assert rig.dispatcher.modes == ["each"]
    assert rig.reader.reads[0] == ("0-0", 2)


def test_bridge_returns_to_event_mode_once_caught_up() -> None:
    rig = Rig(batch_size=5, backlog_threshold=4, backlog_batch_size=100)
    rig.add(*[f"g{i % 3}" for i in range(10)])
    rig.run(2)
    rig.add("g1", "g2")
    rig.run(2)
    assert rig.dispatcher.modes == ["chunks", "each"]
    assert rig.dispatcher.delivered_ids[-2:] == ["11-0", "12-0"]


def test_backlog_chunks_keep_stream_order_and_predecessors_per_game() -> None:
    rig = Rig(backlog_threshold=1, backlog_batch_size=100, backlog_partitions=4)
    games = ["g1", "g2", "g3", "g4", "g5", "g1", "g2", None, "g3", "g1", "g5", "g6"]
    rig.add(*games)
    rig.run(1)
    per_game: dict[str | None, list[Handoff]] = {}
    for chunk in rig.dispatcher.chunks:
        for handoff in chunk:
            per_game.setdefault(game_id_of(handoff.fields), []).append(handoff)
    for game, handoffs in per_game.items():
        ids = [h.entry_id for h in handoffs]
        assert ids == sorted(ids, key=_id_key), game
        if game is not None:
            assert [h.prev_entry_id for h in handoffs] == [None, *ids[:-1]], game


def test_backlog_chunks_never_share_a_game() -> None:
    # After an outage the backlog is dominated by one flapping game.
    rig = Rig(backlog_threshold=1, backlog_batch_size=100, backlog_partitions=4)
    rig.add(*(["g1"] * 12 + ["g2", "g3", "g4", "g5"]))
    rig.run(1)
    owners: dict[str | None, int] = {}
    for index, chunk in enumerate(rig.dispatcher.chunks):
        for handoff in chunk:
            game = game_id_of(handoff.fields)
            assert owners.setdefault(game, index) == index, f"{game} is in chunks {owners[game]} and {index}"


# --------------------------------------------------------------------------- lag and trimming


def test_bridge_reports_the_remaining_lag() -> None:
    rig = Rig(batch_size=3)
    rig.add("g1", "g2", "g3", "g4", "g5")
    report = rig.run(1)
    assert report.lag == 2
    assert rig.state.lag == 2
    assert rig.metric("galaxy_bridge_lag_entries") == 2
    rig.run(3)
    assert rig.state.lag == 0


def test_bridge_counts_lag_from_a_resumed_offset_without_saved_count() -> None:
    lease = FakeLease()
    rig = Rig(lease=lease, state=FakeBridgeStateStore(offset="3-0", lease=lease), batch_size=1)
    rig.add("g1", "g1", "g1", "g1", "g1")
    report = rig.run(1)
    assert (report.offset, report.lag) == ("4-0", 1)


def test_bridge_saves_how_many_entries_the_stream_had_through_the_offset() -> None:
    rig = Rig(batch_size=2)
    rig.add("g1", "g2", "g1")
    rig.run(2)
    assert (rig.state.offset, rig.state.entries_through_offset) == ("3-0", 3)


def test_bridge_measures_lag_from_the_saved_entry_count() -> None:
    lease = FakeLease()
    state = FakeBridgeStateStore(offset="3-0", entries_through_offset=3, lease=lease)
    rig = Rig(batch_size=1, lease=lease, state=state)
    rig.add("g1", "g1", "g1", "g1", "g1", "g1")
    rig.reader.trim(3)  # entries already handed on; the lag is still 6 - 3
    report = rig.run(1)
    assert (report.offset, report.lag) == ("4-0", 2)


def test_bridge_recounts_lag_when_the_offset_was_moved_by_hand() -> None:
    lease = FakeLease()
    state = FakeBridgeStateStore(offset="2-0", entries_through_offset=2, lease=lease)
    rig = Rig(batch_size=1, lease=lease, state=state)
    rig.add("g1", "g1", "g1", "g1", "g1", "g1")
    state.move_offset_by_hand("4-0")
    report = rig.run(1)
    assert (report.offset, report.lag) == ("5-0", 1)


def test_bridge_reports_a_trim_past_its_offset_once() -> None:
    rig = Rig()
    rig.add("g1", "g1", "g1")
    rig.run(1)
    rig.add("g1", "g1", "g1", "g1", "g1")
    rig.reader.trim(2)  # 1-0 … 6-0 gone: 4-0, 5-0, 6-0 were never handed on
    before = rig.metric("galaxy_bridge_trim_gaps_total")
    rig.run(3)
    assert rig.metric("galaxy_bridge_trim_gaps_total") - before == 1
    assert rig.dispatcher.delivered_ids == ["1-0", "2-0", "3-0", "7-0", "8-0"]
    rig.add("g1")
    rig.run(2)
    assert rig.metric("galaxy_bridge_trim_gaps_total") - before == 1


def test_bridge_reports_a_trim_that_happened_while_it_was_down() -> None:
    lease = FakeLease()
    rig = Rig(lease=lease, state=FakeBridgeStateStore(offset="3-0", entries_through_offset=3, lease=lease))
    rig.add("g1", "g1", "g1", "g1", "g1", "g1", "g1", "g1")
    rig.reader.trim(2)
    before = rig.metric("galaxy_bridge_trim_gaps_total")
    rig.run(2)
    assert rig.metric("galaxy_bridge_trim_gaps_total") - before == 1
    assert rig.dispatcher.delivered_ids == ["7-0", "8-0"]


def test_bridge_reports_a_trim_before_its_first_run() -> None:
    rig = Rig()
    rig.add("g1", "g2", "g1", "g2", "g1")
    rig.reader.trim(2)
    before = rig.metric("galaxy_bridge_trim_gaps_total")
    rig.run(3)
    assert rig.metric("galaxy_bridge_trim_gaps_total") - before == 1
    assert rig.dispatcher.delivered_ids == ["4-0", "5-0"]


def test_bridge_reports_an_entry_deleted_after_its_offset() -> None:
    rig = Rig()
    rig.add("g1", "g1")
    rig.run(1)
    rig.add("g1", "g1", "g1")
    rig.reader.delete("4-0")
    before = rig.metric("galaxy_bridge_trim_gaps_total")
    rig.run(3)
    assert rig.metric("galaxy_bridge_trim_gaps_total") - before == 1
    assert rig.dispatcher.delivered_ids == ["1-0", "2-0", "3-0", "5-0"]
    assert [h.prev_entry_id for h in rig.dispatcher.delivered][-2:] == ["2-0", "3-0"]


def test_bridge_does_not_report_trimming_of_entries_already_handed_on() -> None:
    rig = Rig()
    rig.add("g1", "g1", "g1")
    rig.run(1)
    rig.reader.trim(1)
    rig.reader.delete("3-0")
    rig.add("g1")
    rig.run(2)
    assert rig.metric("galaxy_bridge_trim_gaps_total") == 0
    assert rig.dispatcher.delivered_ids == ["1-0", "2-0", "3-0", "4-0"]


# --------------------------------------------------------------------------- replay


def test_a_replay_hands_entries_on_again_naming_each_games_true_predecessor_in_the_stream() -> None:
    """Naming none would let a replayed entry overtake its game's entries still in flight (issue 11, item 5)."""
    rig = Rig(batch_size=10)
    rig.add("g1", "g2", "g1", "g2")
    rig.run(2)
    assert rig.state.offset == "4-0"
    rig.state.replay_request = just_before("2-0")
    rig.run(2)
    # g1's last entry before the replay is 1-0 (read back from the stream); g2 has none before 2-0
    assert _prevs(rig.dispatcher.delivered[4:]) == [("2-0", None), ("3-0", "1-0"), ("4-0", "2-0")]
    assert rig.state.offset == "4-0"
    assert rig.state.replay_request is None
    assert rig.metric("galaxy_bridge_replays_total") == 1


def test_replay_requests_are_looked_for_once_a_second_not_once_a_batch() -> None:
    rig = Rig(batch_size=1)
    rig.add(*["g1"] * 20)
    rig.run(20)  # twenty batches well within a second
    assert len(rig.dispatcher.delivered) == 20
    assert rig.state.replay_checks == 1


def test_just_before_an_entry_is_the_offset_from_which_that_entry_is_read_next() -> None:
    assert just_before("5-3") == "5-2"
    assert just_before("5-0") == "4-18446744073709551615"
    assert just_before("0-0") == "0-0"


# --------------------------------------------------------------------------- forgetting finished partitions


def test_a_partition_whose_last_entry_was_trimmed_long_ago_is_forgotten_and_its_next_entry_names_none() -> None:
    rig = Rig(forget_after_ms=10, forget_check_seconds=0)
    rig.add("old", *["busy"] * 12, "recent", *["busy"] * 6)  # ms 1, 2-13, 14, 15-20
    rig.run(3)
    assert set(rig.state.last_by_partition) == {"old", "busy", "recent"}
    rig.reader.trim(5)  # 16..20 left: "old" (ms 1) and "recent" (ms 14) are trimmed away
    rig.run(2)
    assert set(rig.state.last_by_partition) == {"busy", "recent"}, "only what is older than the horizon goes"
    assert rig.metric("galaxy_bridge_partitions") == 2
    (again,) = rig.add("old")
    rig.run(3)
    assert (again, None) in _prevs(rig.dispatcher.delivered), "nothing of it is left to wait for"


def test_partitions_are_kept_while_their_last_entry_is_still_in_the_stream() -> None:
    rig = Rig(forget_after_ms=0, forget_check_seconds=0)
    rig.add("g1", "g2", "g1")
    rig.run(3)
    assert set(rig.state.last_by_partition) == {"g1", "g2"}


def test_a_bridge_that_lost_its_lease_forgets_nothing() -> None:
    rig = Rig(forget_after_ms=0, forget_check_seconds=0)
    rig.add("g1", "g2", "g2")
    rig.run(2)
    rig.reader.trim(1)
    rig.lease.held = False
    assert not rig.state.forget({"g1": "1-0"})
    assert "g1" in rig.state.last_by_partition


# --------------------------------------------------------------------------- flow control


def test_a_trickle_goes_per_event_while_the_pools_keep_up() -> None:
    rig = Rig(dispatch_window=4, backlog_threshold=10**9)
    rig.add("g1", "g2", "g1")
    rig.run(3)
    assert set(rig.dispatcher.modes) == {"each"}
    assert _prevs(rig.dispatcher.delivered) == [("1-0", None), ("2-0", None), ("3-0", "1-0")]


def test_while_the_window_is_full_nothing_is_handed_on_and_what_waited_then_goes_in_ordered_chunks() -> None:
    rig = Rig(dispatch_window=4, backlog_threshold=10**9, backlog_partitions=2)
    rig.dispatcher.queued = [4, 7, 5]  # three looks at a broker still holding the window or more
    rig.add(*[f"g{n % 5}" for n in range(20)])
    rig.run(5)
    assert rig.sleeps[:3] == [0.01, 0.01, 0.01], "held while the pools were behind"
    assert set(rig.dispatcher.modes) == {"chunks"}, "20 entries waited: more than twice the window"
    handed = {h.entry_id: h.prev_entry_id for chunk in rig.dispatcher.chunks for h in chunk}
    assert handed["6-0"] == "1-0", "each game's entries still name their predecessor"
    assert handed["20-0"] == "15-0"
    assert rig.state.offset == "20-0"


def test_a_bridge_that_starts_while_the_window_is_full_hands_nothing_on_until_it_frees() -> None:
    rig = Rig(dispatch_window=2, backlog_threshold=10**9)
    rig.dispatcher.queued = [2, 3]
    rig.add("g1", "g2")
    rig.run(2)
    assert rig.dispatcher.delivered == []
    assert rig.sleeps == [0.01, 0.01]
    rig.run(1)
    assert [h.entry_id for h in rig.dispatcher.delivered] == ["1-0", "2-0"]


def test_while_the_window_stays_full_the_lease_is_renewed_only_every_renewal_interval() -> None:
    rig = Rig(dispatch_window=1, backlog_threshold=10**9, renew_every_seconds=0.25)
    rig.dispatcher.queued = [1] * 100
    rig.run(100)  # one second of looks at the broker, 10 ms apart
    assert rig.dispatcher.waiting_checks == 100
    assert rig.lease.renewals == 4, "once per 0.25 s, not at every look"


def test_without_a_window_only_the_lag_threshold_switches_to_chunks() -> None:
    rig = Rig(dispatch_window=0, backlog_threshold=10**9, batch_size=100)
    rig.dispatcher.queued = [100]
    rig.add(*[f"g{n % 5}" for n in range(20)])
    rig.run(2)
    assert set(rig.dispatcher.modes) == {"each"}
    assert rig.dispatcher.waiting_checks == 0, "the broker is not even asked"
