"""Stream entry ids compare as numbers, never as strings."""

from __future__ import annotations

import pytest

from galaxy_tasks.domain.stream_ids import BEGINNING, StreamId, is_after


def test_parse_splits_milliseconds_and_sequence() -> None:
    assert StreamId.parse("1700000000000-3") == StreamId(1700000000000, 3)


def test_parse_reads_an_id_without_sequence_as_sequence_zero() -> None:
    assert StreamId.parse("42") == StreamId(42, 0)


def test_str_renders_the_redis_form() -> None:
    assert str(StreamId(17, 4)) == "17-4"
    assert str(StreamId.parse("9-12")) == "9-12"


def test_beginning_is_the_redis_start_id() -> None:
    assert BEGINNING == "0-0"
    assert StreamId.parse(BEGINNING) == StreamId(0, 0)


@pytest.mark.parametrize("raw", ["", "abc", "1-x", "x-1", "1-2-3", "-1-0", "1--1", "1.5-0"])
def test_parse_rejects_text_that_is_not_an_entry_id(raw: str) -> None:
    with pytest.raises(ValueError, match="not a stream entry id"):
        StreamId.parse(raw)


@pytest.mark.parametrize(
    ("candidate", "reference"),
    [
        ("10-0", "9-0"),
        ("9-10", "9-9"),
        ("1700000000001-0", "1700000000000-99"),
        ("1-0", BEGINNING),
        ("0-1", BEGINNING),
    ],
)
def test_is_after_orders_ids_numerically(candidate: str, reference: str) -> None:
    assert is_after(candidate, reference)
    assert not is_after(reference, candidate)


def test_is_after_is_strict() -> None:
    assert not is_after("5-3", "5-3")


def test_ids_sort_in_stream_order_not_string_order() -> None:
    raw = ["10-0", "9-0", "9-10", "9-2", "100-0"]
    assert [str(i) for i in sorted(StreamId.parse(r) for r in raw)] == ["9-0", "9-2", "9-10", "10-0", "100-0"]
