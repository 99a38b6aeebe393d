"""Stream entries decoded field by field: never an exception, known fields text or named unusable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from galaxy_tasks.domain.stream_fields import (
    UNUSABLE_FIELDS,
    decode_entry_fields,
    decode_for_display,
    first_unusable,
    unusable_fields,
)

KNOWN = frozenset({"game_id", "event_type", "details"})
names = st.one_of(st.sampled_from(sorted(KNOWN)), st.binary(max_size=12), st.text(max_size=12))
values = st.one_of(st.binary(max_size=64), st.text(max_size=64))


@given(raw=st.dictionaries(names, values, max_size=8))
def test_any_bytes_decode_to_known_text_fields_and_the_names_of_the_unusable_ones(
    raw: dict[str | bytes, str | bytes],
) -> None:
    fields = decode_entry_fields(raw, KNOWN)
    bad = unusable_fields(fields)
    assert set(fields) - {UNUSABLE_FIELDS} <= KNOWN
    assert bad <= KNOWN
    for name, value in fields.items():
        if name != UNUSABLE_FIELDS:
            assert "\x00" not in value
            assert name not in bad
    decode_for_display(raw)  # never raises either


def test_a_value_that_is_not_utf8_or_holds_a_nul_is_dropped_and_named() -> None:
    fields = decode_entry_fields(
        {b"game_id": b"g1", b"details": b"\xe2\x82", "event_type": "x\x00", b"note": b"\xff"}, KNOWN
    )
    assert fields == {"game_id": "g1", UNUSABLE_FIELDS: "details,event_type"}
    assert first_unusable(fields, ["game_id", "event_type", "details"]) == "event_type"


def test_unknown_fields_are_ignored_whatever_their_names_or_bytes_even_a_forged_marker() -> None:
    fields = decode_entry_fields({b"\xff": b"\xff", UNUSABLE_FIELDS: "game_id", "game_id": "g1"}, KNOWN)
    assert fields == {"game_id": "g1"}


def test_watch_shows_bytes_that_are_not_text_as_escapes() -> None:
    assert decode_for_display({b"note": b"a\xffb"}) == {"note": "a\\xffb"}
