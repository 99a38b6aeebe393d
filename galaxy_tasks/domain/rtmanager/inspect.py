"""Judging one Docker inspect of a running game's container (seed ``003``, SPEC §5 "No repeated noise").

``inspect_unhealthy`` when the restart count grew since the previous
observation of the *same* container, the state is not ``running``, or the
Docker HEALTHCHECK says ``unhealthy``.  The baseline is per game and tied to
the container id: a new container, or a restart count smaller than the
baseline's (Docker re-created it), only records a new baseline — the seed's
"first observation only records the baseline" rule, applied to each container's life.

Two rules beyond the seed keep the Lobby's summary meaningful:

* a judgement (container, state, health, restart count) is published only
  when it differs from the previous sweep's (a healthy one resets it), so an
  unchanged problem is said once, not every sweep;
* a restart the events listener already published as a crash is not one to
  report again: the listener counts the crashes it published per container
  (``acked_restarts``) and the judgement takes them off the restart growth.

A sweep lists the managed containers in one API call and inspects only those
the list cannot vouch for (:func:`needs_inspect`): not running, unhealthy, no
baseline, another container, a problem reported last time, a game that is
down (its recovery needs an inspect), or an uptime too short for the start
the baseline remembers — a restart since.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_STATE_RUNNING = "running"
DOCKER_STATE_RESTARTING = "restarting"
DOCKER_HEALTH_UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class InspectBaseline:
    """What the previous inspect of a game saw; shared by every worker."""

    container_id: str
    restart_count: int
    started_at_ms: int = 0
    """Docker ``State.StartedAt`` at that inspect: a later start means a restart."""
    acked_restarts: int = 0
    """How many of the listener's published crashes of this container the restart count already covers."""
    reported: str = ""
    """The judgement key last published for the game; empty after a healthy judgement."""


@dataclass(frozen=True)
class InspectObservation:
    container_id: str
    state: str
    """Docker ``State.Status``: ``running``, ``restarting``, ``exited`` …"""
    restart_count: int
    health: str = ""
    """Docker ``State.Health.Status`` (``healthy``, ``unhealthy``, ``starting``); empty without a HEALTHCHECK."""
    started_at_ms: int = 0
    oom_killed: bool = False
    exit_code: int = 0


@dataclass(frozen=True)
class InspectJudgement:
    baseline: InspectBaseline
    """The baseline to store for the next inspect."""
    unhealthy: bool
    reasons: tuple[str, ...] = ()
    publish: bool = False
    """Unhealthy, and not the judgement published last time: say it (once)."""


def judgement_key(observation: InspectObservation) -> str:
    """What makes two unhealthy judgements the same: container, state, health, restart count."""
    return f"{observation.container_id}|{observation.state}|{observation.health}|{observation.restart_count}"


def judge_inspect(
    observation: InspectObservation, baseline: InspectBaseline | None, *, acked_restarts: int = 0
) -> InspectJudgement:
    """Compare ``observation`` with the game's stored ``baseline`` (``None``: never seen).

    ``acked_restarts`` is the number of crashes of this container the events
    listener has published so far; those restarts are not reported again.
    """
    pending = 1 if observation.state == DOCKER_STATE_RESTARTING else 0
    same_life = (
        baseline is not None
        and baseline.container_id == observation.container_id
        and observation.restart_count >= baseline.restart_count
    )
    reasons: list[str] = []
    if same_life and baseline is not None:
        growth = observation.restart_count - baseline.restart_count
        new_acks = max(0, acked_restarts - baseline.acked_restarts)
        explained = min(new_acks, growth)
        consumed = baseline.acked_restarts + explained
        crash_pending = pending > 0 and new_acks - explained >= 1
        if growth > explained:
            reasons.append(f"restart_count {baseline.restart_count} -> {observation.restart_count}")
    else:  # a first look only records the baseline; a crash the listener published may still be restarting
        consumed = max(0, acked_restarts - pending)
        crash_pending = pending > 0 and acked_restarts >= 1
    if observation.state != DOCKER_STATE_RUNNING and not crash_pending:
        reasons.append(f"state {observation.state}")
    if observation.health == DOCKER_HEALTH_UNHEALTHY:
        reasons.append("health unhealthy")
    unhealthy = bool(reasons)
    key = judgement_key(observation) if unhealthy else ""
    previous = baseline.reported if baseline is not None else ""
    new_baseline = InspectBaseline(
        observation.container_id, observation.restart_count, observation.started_at_ms, consumed, key
    )
    return InspectJudgement(new_baseline, unhealthy, tuple(reasons), publish=unhealthy and key != previous)


# Docker's list "Status" of a running container: "Up " + go-units HumanDuration, then maybe a
# health suffix.  Upper bounds (seconds) of each wording, so a start later than the baseline's is
# never missed; anything else makes the sweep inspect.
_SECOND, _MINUTE, _HOUR, _DAY = 1, 60, 3600, 86400
_UP = re.compile(r"^Up (?P<amount>Less than a second|About a minute|About an hour|\d+ \w+)")
_UNITS = {
    "second": (_SECOND, _SECOND),
    "seconds": (_SECOND, _SECOND),
    "minutes": (_MINUTE, _MINUTE),
    "hours": (_HOUR, _HOUR / 2),
    "days": (_DAY, _DAY),
    "weeks": (7 * _DAY, 7 * _DAY),
    "months": (30 * _DAY, 31 * _DAY),
    "years": (365 * _DAY, 366 * _DAY),
}
_FIXED = {"Less than a second": 1.0, "About a minute": 2.0 * _MINUTE, "About an hour": 1.5 * _HOUR}


def uptime_upper_bound_seconds(status: str) -> float | None:
    """The longest uptime Docker's ``Up …`` status can stand for; ``None`` if it is not one."""
    match = _UP.match(status)
    if match is None:
        return None
    amount = match.group("amount")
    if amount in _FIXED:
        return _FIXED[amount]
    number, unit = amount.split(" ", 1)
    if unit not in _UNITS:
        return None
    size, slack = _UNITS[unit]
    return int(number) * size + slack


def needs_inspect(
    *, container_id: str, state: str, status: str, baseline: InspectBaseline | None, now_ms: int, down: bool = False
) -> bool:
    """Whether a listed container needs a full inspect, judging from the list row alone.

    ``down``: the game is in a down period, which only an inspect (with probes) can end.
    """
    if down or baseline is None or baseline.container_id != container_id or baseline.started_at_ms <= 0:
        return True
    if baseline.reported:
        return True
    if state != DOCKER_STATE_RUNNING or "unhealthy" in status:
        return True
    uptime = uptime_upper_bound_seconds(status)
    if uptime is None:
        return True
    earliest_start_ms = now_ms - uptime * 1000
    return earliest_start_ms > baseline.started_at_ms + 1000  # started again since the baseline
