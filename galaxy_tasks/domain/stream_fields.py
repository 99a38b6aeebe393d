"""Stream entries as bytes, decoded field by field (SPEC §5 "Bad input").

Redis stream values are bytes, and a producer may write anything: a client
that decodes whole replies dies on the first byte that is not UTF-8 — and a
bridge reading that entry would die on it at every try, stopping the stream.
So the readers take bytes and decode here, per field:

* only the fields the stream's contract knows are kept; every other field is
  ignored whatever its name or bytes (SPEC §3: consumers ignore fields they
  do not know);
* a known field whose value is not UTF-8, or holds a NUL (which no
  PostgreSQL text column can store), is dropped and named in the entry's
  :data:`UNUSABLE_FIELDS` field, so the consumer skips the entry as malformed
  with the right reason instead of failing on it later.

The marker travels with the fields (task arguments, the parking table), so
no signature has to know about it; a producer's own field of that name is
ignored like any unknown field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

MAX_GAME_ID_BYTES = 2048
"""No record can have a longer game id (PostgreSQL's index keys hold about 2,700 bytes): the
Game Master, the jobs' readers and the Docker events listener treat longer ones as nobody's."""

UNUSABLE_FIELDS = "galaxy:unusable_fields"
"""Comma-separated names of the known fields whose values were dropped (not UTF-8 text)."""
CANNOT_APPLY = "galaxy:cannot_apply"
"""Set (to why) on an entry the consumer cannot apply although it was read: its values were refused by
the database, or it was trimmed from the stream before it was applied.  The consumer skips it as
malformed, so its game's cursor moves past it.  Like :data:`UNUSABLE_FIELDS` no producer can set it:
only known fields are kept from a stream."""


def decode_entry_fields(raw: Mapping[Any, Any], known: frozenset[str]) -> dict[str, str]:
    """The entry's known fields as text, with :data:`UNUSABLE_FIELDS` naming those that are not."""
    fields: dict[str, str] = {}
    unusable: list[str] = []
    for raw_name, raw_value in raw.items():
        name = _text(raw_name)
        if name is None or name not in known:
            continue
        value = _text(raw_value)
        if value is None or "\x00" in value:
            unusable.append(name)
            continue
        fields[name] = value
    if unusable:  # a name given twice (as text and as bytes) with one unusable value is unusable
        for name in unusable:
            fields.pop(name, None)
        fields[UNUSABLE_FIELDS] = ",".join(sorted(set(unusable)))
    return fields


def decode_for_display(raw: Mapping[Any, Any]) -> dict[str, str]:
    """Every field, with bytes that are not UTF-8 shown as ``\\xNN`` (for ``galaxy-tasks watch``)."""
    return {_shown(name): _shown(value) for name, value in raw.items()}


def unusable_fields(fields: Mapping[str, str]) -> frozenset[str]:
    """The known fields of the entry whose values were not UTF-8 text."""
    listed = fields.get(UNUSABLE_FIELDS, "")
    return frozenset(name for name in listed.split(",") if name)


def first_unusable(fields: Mapping[str, str], names: Iterable[str]) -> str | None:
    """The first of ``names`` the entry could not carry as text, if any."""
    bad = unusable_fields(fields)
    return next((name for name in names if name in bad), None)


def _text(value: str | bytes) -> str | None:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _shown(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode("utf-8", errors="backslashreplace")
