"""Game Master runtime statuses and the transitions the health consumer may make.

The health consumer owns exactly two edges of the status graph (SPEC §4,
seed ``004`` D1/D2).  Every other status belongs to another flow (turn
generation, admin operations) and is never overwritten here: a planned
transition whose source status does not match is a CAS conflict, and the
consumer falls back to a summary-only update.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class RuntimeStatus(StrEnum):
    """Statuses a ``gamemaster.runtime_records`` row may hold.

    Only ``RUNNING`` and ``ENGINE_UNREACHABLE`` are moved by the health consumer;
    the rest are listed so operators and tests can name them.
    """

    STARTING = "starting"
    RUNNING = "running"
    ENGINE_UNREACHABLE = "engine_unreachable"
    GENERATION_IN_PROGRESS = "generation_in_progress"
    GENERATION_FAILED = "generation_failed"
    STOPPED = "stopped"
    FINISHED = "finished"


class Transition(NamedTuple):
    """One allowed compare-and-swap edge."""

    source: RuntimeStatus
    target: RuntimeStatus


ENGINE_LOST = Transition(RuntimeStatus.RUNNING, RuntimeStatus.ENGINE_UNREACHABLE)
ENGINE_RECOVERED = Transition(RuntimeStatus.ENGINE_UNREACHABLE, RuntimeStatus.RUNNING)

HEALTH_CONSUMER_TRANSITIONS: frozenset[Transition] = frozenset({ENGINE_LOST, ENGINE_RECOVERED})


def is_allowed(source: str, target: str) -> bool:
    """Whether the health consumer may move a record from ``source`` to ``target``."""
    return any(t.source == source and t.target == target for t in HEALTH_CONSUMER_TRANSITIONS)
