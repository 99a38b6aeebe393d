"""The bridge's plan: each handoff names the previous entry of its game; chunks keep games apart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from galaxy_tasks.domain.gamemaster.entries import game_id_of
from galaxy_tasks.domain.handoffs import Handoff, StreamEntry, chunk_by_partition, plan_handoffs


def _entry(entry_id: str, game_id: str | None) -> StreamEntry:
    fields = {"event_type": "probe_failed", "occurred_at_ms": "1"}
    if game_id is not None:
        fields["game_id"] = game_id
    return StreamEntry(entry_id, fields)


def _prevs(handoffs: list[Handoff]) -> list[tuple[str, str | None]]:
    return [(h.entry_id, h.prev_entry_id) for h in handoffs]


def _game(fields: Mapping[str, str]) -> str | None:
    return game_id_of(fields)


def test_plan_names_the_previous_entry_of_the_same_game() -> None:
    entries = [_entry("1-0", "g1"), _entry("2-0", "g2"), _entry("3-0", "g1"), _entry("4-0", "g1")]
    handoffs, moved = plan_handoffs(entries, {}, _game)
    assert _prevs(handoffs) == [("1-0", None), ("2-0", None), ("3-0", "1-0"), ("4-0", "3-0")]
    assert moved == {"g1": "4-0", "g2": "2-0"}


def test_plan_continues_from_the_stored_last_entry_per_game() -> None:
    entries = [_entry("7-0", "g1"), _entry("8-0", "g3")]
    handoffs, moved = plan_handoffs(entries, {"g1": "5-0", "g2": "6-0"}, _game)
    assert _prevs(handoffs) == [("7-0", "5-0"), ("8-0", None)]
    assert moved == {"g1": "7-0", "g3": "8-0"}


def test_plan_gives_entries_without_a_game_no_predecessor_and_moves_nothing_for_them() -> None:
    entries = [_entry("1-0", None), _entry("2-0", "   "), _entry("3-0", "g1")]
    handoffs, moved = plan_handoffs(entries, {}, _game)
    assert _prevs(handoffs) == [("1-0", None), ("2-0", None), ("3-0", None)]
    assert moved == {"g1": "3-0"}


def test_plan_keeps_fields_and_stream_order() -> None:
    entries = [_entry("1-0", "g1"), _entry("2-0", None)]
    handoffs, _ = plan_handoffs(entries, {}, _game)
    assert [(h.entry_id, h.fields) for h in handoffs] == [(e.entry_id, e.fields) for e in entries]


def test_plan_is_a_pure_function_of_entries_and_stored_map() -> None:
    entries = [_entry("3-0", "g1"), _entry("4-0", "g2"), _entry("5-0", "g1")]
    stored = {"g1": "1-0"}
    first = plan_handoffs(entries, stored, _game)
    second = plan_handoffs(entries, stored, _game)
    assert first == second
    assert stored == {"g1": "1-0"}


def test_handoff_as_args_is_the_task_argument_list() -> None:
    handoff = Handoff("3-0", {"game_id": "g1"}, "1-0")
    assert handoff.as_args() == ["3-0", {"game_id": "g1"}, "1-0"]


def _handoffs(games: Sequence[str | None]) -> list[Handoff]:
    entries = [_entry(f"{i}-0", g) for i, g in enumerate(games, start=1)]
    return plan_handoffs(entries, {}, _game)[0]


def test_chunks_hold_every_handoff_exactly_once() -> None:
    handoffs = _handoffs(["g1", "g2", None, "g3", "g1", "g4", "g2", None, "g5"])
    chunks = chunk_by_partition(handoffs, _game, partitions=3, chunk_size=4)
    flat = [h.entry_id for chunk in chunks for h in chunk]
    assert sorted(flat) == sorted(h.entry_id for h in handoffs)
    assert len(flat) == len(handoffs)


def test_chunks_keep_stream_order_within_each_game() -> None:
    handoffs = _handoffs(["g1", "g2", "g1", "g3", "g2", "g1", "g4", "g1"])
    chunks = chunk_by_partition(handoffs, _game, partitions=2, chunk_size=100)
    for chunk in chunks:
        for game in {game_id_of(h.fields) for h in chunk}:
            ids = [h.entry_id for h in chunk if game_id_of(h.fields) == game]
            assert ids == sorted(ids, key=lambda i: int(i.split("-")[0]))


def test_chunks_respect_the_partition_count_when_nothing_is_split() -> None:
    handoffs = _handoffs([f"g{i}" for i in range(40)])
    chunks = chunk_by_partition(handoffs, _game, partitions=4, chunk_size=1000)
    assert len(chunks) <= 4


def test_chunk_by_partition_never_puts_one_game_in_two_chunks() -> None:
    # A backlog dominated by one game: 8 entries of g1 and one of g2, chunk_size 3.
    # Chunks of one batch run in parallel; a game split over two chunks makes the
    # second wait on the first (the docstring promises "no two chunks share a game").
    handoffs = _handoffs(["g1"] * 8 + ["g2"])
    chunks = chunk_by_partition(handoffs, _game, partitions=4, chunk_size=3)
    owners: dict[str | None, int] = {}
    for index, chunk in enumerate(chunks):
        for handoff in chunk:
            game = game_id_of(handoff.fields)
            assert owners.setdefault(game, index) == index, f"{game} is in chunks {owners[game]} and {index}"


def test_small_games_are_packed_into_chunks_of_about_chunk_size() -> None:
    handoffs = _handoffs([f"g{i}" for i in range(20)])
    chunks = chunk_by_partition(handoffs, _game, partitions=1, chunk_size=5)
    assert [len(chunk) for chunk in chunks] == [5, 5, 5, 5]


def test_a_game_bigger_than_chunk_size_gets_one_bigger_chunk() -> None:
    handoffs = _handoffs(["g1"] * 7)
    chunks = chunk_by_partition(handoffs, _game, partitions=2, chunk_size=3)
    assert [[h.entry_id for h in chunk] for chunk in chunks] == [[f"{i}-0" for i in range(1, 8)]]
