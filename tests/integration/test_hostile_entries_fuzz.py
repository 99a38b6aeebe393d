"""Fuzzing the Game Master pipeline with what any producer may write (SPEC §5 "Bad input", issue 11).

Seeded random streams: valid entries of every type over a few games, interleaved with
hostile ones — field names and values of arbitrary bytes, UTF-8 cut mid-character,
NULs in known fields, game ids of kilobytes, values of 100 kB, unknown games and event
types.  They go through the real bridge into real worker processes (both brokers).
Every valid entry must end as the one-at-a-time reference says (rows and each game's
Lobby snapshots), the offset must reach the end, and the bridge must never restart.
The reference sees each entry as the readers decode it, and skips what the decoder
calls malformed, so it does not share the pipeline's code beyond that decoding.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from galaxy_tasks.contract import HEALTH_EVENTS_STREAM
from galaxy_tasks.domain.errors import MalformedEntry
from galaxy_tasks.domain.gamemaster.entries import decode_health_entry
from galaxy_tasks.domain.health_events import HEALTH_EVENT_FIELDS
from galaxy_tasks.domain.stream_fields import decode_entry_fields
from galaxy_tasks.testing.cluster import Cluster, wait_until
from galaxy_tasks.testing.seed001 import ReferenceGameMaster, RefRecord
from tests.support.brokers import ON_BOTH_BROKERS
from tests.support.events import random_entries
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

GAMES = [f"f{n}" for n in range(8)]


def _junk(rng: random.Random, size: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(size))


def hostile(rng: random.Random, valid: dict[str, str]) -> dict[Any, Any]:
    """A damaged copy of ``valid``: one of the ways a producer's bytes can go wrong."""
    fields: dict[Any, Any] = dict(valid)
    known = sorted(HEALTH_EVENT_FIELDS)
    roll = rng.randrange(9)
    if roll == 0:
        fields[_junk(rng, rng.randint(1, 8))] = _junk(rng, rng.randint(0, 64))  # unknown field, any bytes
    elif roll == 1:
        fields[rng.choice(known)] = _junk(rng, rng.randint(1, 32))  # a known field of random bytes
    elif roll == 2:
        name = rng.choice(known)
        fields[name] = fields.get(name, "x").encode() + b"\xe2\x82"  # UTF-8 cut mid-character
    elif roll == 3:
        name = rng.choice(known)
        fields[name] = fields.get(name, "") + "\x00"
    elif roll == 4:
        fields["game_id"] = "g" * rng.choice([2049, 5000])
    elif roll == 5:
        fields["details"] = "x" * 100_000
    elif roll == 6:
        fields["galaxy:unusable_fields"] = "game_id"  # a forged marker: just an unknown field
    elif roll == 7:
        fields["game_id"] = rng.choice(["", " ", "nobody-knows-me", "ünïcödé-✓"])
    else:
        fields.pop(rng.choice(known), None)
    return fields


def _reference(entries: list[dict[Any, Any]]) -> ReferenceGameMaster:
    reference = ReferenceGameMaster(records={g: RefRecord("running") for g in GAMES})
    for raw in entries:
        fields = decode_entry_fields(raw, HEALTH_EVENT_FIELDS)
        try:
            decode_health_entry(fields)
        except MalformedEntry:
            reference.skipped += 1
            continue
        reference.handle(fields)
    return reference


@ON_BOTH_BROKERS
@pytest.mark.parametrize("seed", [11, 12])
def test_arbitrary_bytes_in_any_field_never_stop_the_pipeline_and_valid_entries_end_as_one_at_a_time(
    pipeline: Pipeline, cluster: Cluster, seed: int
) -> None:
    rng = random.Random(seed)
    pipeline.add_games(dict.fromkeys(GAMES, "running"))
    entries: list[dict[Any, Any]] = []
    for fields in random_entries(rng, GAMES, 400):
        entries.append(hostile(rng, fields) if rng.random() < 0.3 else fields)
    cluster.pool_worker("pool", concurrency=2)
    bridge = cluster.long_running_worker()
    cluster.beat()
    entry_ids = pipeline.xadd_health(entries)

    reference = _reference(entries)
    last_valid: dict[str, str] = {}
    for entry_id, raw in zip(entry_ids, entries, strict=True):
        game = decode_entry_fields(raw, HEALTH_EVENT_FIELDS).get("game_id")
        if game in GAMES:
            last_valid[game] = entry_id
    pipeline.wait_settled(entry_ids, last_valid, timeout=120)
    assert pipeline.rows(GAMES) == {
        g: (r.status, r.engine_health, r.current_turn) for g, r in reference.records.items()
    }
    assert pipeline.lobby_snapshots(GAMES) == {g: s for g, s in reference.snapshots.items() if s}
    resumed = [
        line for line in bridge.log_text().splitlines() if "bridge_resumed" in line and HEALTH_EVENTS_STREAM in line
    ]
    assert len(resumed) == 1, "the bridge restarted on an entry"
    wait_until(
        lambda: pipeline.metric("galaxy_gm_health_events_consumed_total") == len(entries),
        timeout=30,
        what="every entry to be applied or counted and skipped",
    )
