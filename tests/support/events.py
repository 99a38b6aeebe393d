"""Seeded streams of health entries for the fault-injection tests."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence

from tests.support.pipeline import Pipeline, now_ms

EVENT_TYPES = (
    "container_started",
    "container_exited",
    "container_oom",
    "container_disappeared",
    "inspect_unhealthy",
    "probe_failed",
    "probe_recovered",
)


def random_entries(rng: random.Random, game_ids: Sequence[str], count: int) -> list[dict[str, str]]:
    """Mostly valid entries of all seven types, with a sprinkle of malformed ones."""
    entries: list[dict[str, str]] = []
    for _ in range(count):
        game_id = rng.choice(game_ids)
        fields = {
            "game_id": game_id,
            "container_id": f"c-{game_id}",
            "event_type": rng.choice(EVENT_TYPES),
            "occurred_at_ms": str(now_ms()),
            "details": "{}",
        }
        roll = rng.random()
        if roll < 0.02:
            del fields["game_id"]
        elif roll < 0.04:
            fields["occurred_at_ms"] = "-1"
        elif roll < 0.05:
            fields["event_type"] = "container_paused"
        entries.append(fields)
    return entries


class Feeder(threading.Thread):
    """XADDs ``entries`` in small batches with a pause between them, like a live producer."""

    def __init__(self, pipe: Pipeline, entries: list[dict[str, str]], batch: int = 10, pause: float = 0.01) -> None:
        super().__init__(daemon=True)
        self._pipe = pipe
        self._entries = entries
        self._batch = batch
        self._pause = pause
        self.entry_ids: list[str] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for start in range(0, len(self._entries), self._batch):
                self.entry_ids.extend(self._pipe.xadd_health(self._entries[start : start + self._batch]))
                time.sleep(self._pause)
        except BaseException as exc:  # noqa: BLE001 - reported by the test after join()
            self.error = exc

    def finish(self, timeout: float = 120) -> list[str]:
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the feeder did not finish")
        if self.error is not None:
            raise AssertionError(f"the feeder failed: {self.error!r}")
        return self.entry_ids


def last_entry_by_game(entry_ids: Sequence[str], entries: Sequence[dict[str, str]]) -> dict[str, str]:
    return {f["game_id"]: e for e, f in zip(entry_ids, entries, strict=True) if f.get("game_id")}
