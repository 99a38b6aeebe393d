"""Decoding health entries exactly as seed 001's ``decodeEvent`` does."""

from __future__ import annotations

import pytest

from galaxy_tasks.domain.errors import MalformedEntry, PermanentError
from galaxy_tasks.domain.gamemaster.entries import HealthEntry, decode_health_entry, game_id_of
from galaxy_tasks.domain.stream_fields import MAX_GAME_ID_BYTES, UNUSABLE_FIELDS

VALID = {
    "game_id": "g-17",
    "container_id": "c0ffee",
    "event_type": "container_exited",
    "occurred_at_ms": "1700000000000",
    "details": '{"exit_code": 137}',
}


def _fields(**overrides: str | None) -> dict[str, str]:
    fields = {
        "game_id": "g-17",
        "container_id": "c0ffee",
        "event_type": "container_exited",
        "occurred_at_ms": "1700000000000",
        "details": '{"exit_code": 137}',
    }
    for key, value in overrides.items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


def test_decode_returns_the_three_fields_the_consumer_acts_on() -> None:
    assert decode_health_entry(_fields()) == HealthEntry("g-17", "container_exited", 1700000000000)


def test_decode_ignores_unknown_extra_fields() -> None:
    assert decode_health_entry(_fields(event_id="e-1", anything="x")).game_id == "g-17"


def test_decode_does_not_require_container_id_or_details() -> None:
    assert decode_health_entry(_fields(container_id=None, details=None)).event_type == "container_exited"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"game_id": None}, "missing game_id"),
        ({"game_id": ""}, "missing game_id"),
        ({"game_id": " \t "}, "missing game_id"),
        ({"event_type": None}, "missing event_type"),
        ({"event_type": ""}, "missing event_type"),
        ({"event_type": "   "}, "missing event_type"),
        ({"occurred_at_ms": None}, "missing occurred_at_ms"),
        ({"occurred_at_ms": ""}, "missing occurred_at_ms"),
        ({"occurred_at_ms": "  "}, "missing occurred_at_ms"),
    ],
)
def test_decode_rejects_missing_or_blank_required_fields(overrides: dict[str, str | None], message: str) -> None:
    with pytest.raises(MalformedEntry, match=message):
        decode_health_entry(_fields(**overrides))


def test_missing_fields_are_checked_in_seed_order() -> None:
    with pytest.raises(MalformedEntry, match="missing game_id"):
        decode_health_entry({})
    with pytest.raises(MalformedEntry, match="missing event_type"):
        decode_health_entry({"game_id": "g1"})


@pytest.mark.parametrize(
    "raw",
    [
        "abc",
        "5.0",
        "1e3",
        " 5",
        "5 ",
        "0x10",
        "1_000",
        "+",
        "-",
        "++5",
        "5\n",
        "\u0665",  # ARABIC-INDIC DIGIT FIVE: Python's int() takes it, Go's ParseInt does not
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
    ],
)
def test_occurred_at_ms_must_parse_like_go_parseint(raw: str) -> None:
    with pytest.raises(MalformedEntry, match="invalid occurred_at_ms"):
        decode_health_entry(_fields(occurred_at_ms=raw))


@pytest.mark.parametrize(("raw", "value"), [("+5", 5), ("0042", 42), ("9223372036854775807", 2**63 - 1)])
def test_occurred_at_ms_accepts_what_go_parseint_accepts(raw: str, value: int) -> None:
    assert decode_health_entry(_fields(occurred_at_ms=raw)).occurred_at_ms == value


@pytest.mark.parametrize("raw", ["0", "-0", "+0", "-1", "-1700000000000", "-9223372036854775808"])
def test_occurred_at_ms_must_be_positive(raw: str) -> None:
    with pytest.raises(MalformedEntry, match="must be positive"):
        decode_health_entry(_fields(occurred_at_ms=raw))


def test_malformed_entry_is_a_permanent_error() -> None:
    with pytest.raises(PermanentError):
        decode_health_entry(_fields(game_id=None))


def test_decode_keeps_the_game_id_and_event_type_verbatim() -> None:
    event = decode_health_entry(_fields(game_id=" g1 ", event_type="Container_OOM"))
    assert (event.game_id, event.event_type) == (" g1 ", "Container_OOM")


@pytest.mark.parametrize(("fields", "expected"), [({"game_id": "g1"}, "g1"), ({"game_id": " g1"}, " g1")])
def test_game_id_of_returns_a_usable_game_id(fields: dict[str, str], expected: str) -> None:
    assert game_id_of(fields) == expected


@pytest.mark.parametrize("fields", [{}, {"game_id": ""}, {"game_id": "  "}, {"game_id": "\t\n"}])
def test_game_id_of_returns_none_when_decode_would_reject_the_game_id(fields: dict[str, str]) -> None:
    assert game_id_of(fields) is None
    with pytest.raises(MalformedEntry, match="missing game_id"):
        decode_health_entry({**fields, "event_type": "probe_failed", "occurred_at_ms": "1"})


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({**VALID, UNUSABLE_FIELDS: "game_id"}, "game_id is not UTF-8 text"),
        ({**VALID, UNUSABLE_FIELDS: "details"}, "details is not UTF-8 text"),
        ({**VALID, UNUSABLE_FIELDS: "container_id,event_type"}, "event_type is not UTF-8 text"),
        ({**VALID, "game_id": "g" * (MAX_GAME_ID_BYTES + 1)}, f"game_id longer than {MAX_GAME_ID_BYTES} bytes"),
    ],
)
def test_an_entry_whose_known_fields_are_not_usable_text_is_malformed_with_the_reason(
    fields: dict[str, str], reason: str
) -> None:
    with pytest.raises(MalformedEntry, match=reason):
        decode_health_entry(fields)
    if "game_id" in reason:
        assert game_id_of(fields) is None
