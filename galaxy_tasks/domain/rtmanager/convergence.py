"""Convergence to Docker's truth (SPEC §5 "RTM: convergence"): deaths, down periods, recoveries, bounds.

Docker's event stream is the fast path; any of its events can be missed (the
listener was down, Docker's 256-event buffer overflowed, dockerd restarted).
What makes the health view true anyway is level-triggered, as kubelet's PLEG
relist is: the reconciler and the inspect sweep look at the containers as they
*are* and report what the stream should have said.  Two rules make that safe
to do from several places at once:

* a death *for good* is reported by whoever moves the record ``running →
  exited`` for that very container (one compare-and-swap), so the listener,
  the reconciler and the inspect task never report one death twice;
* a game that went *down* (any down event committed) is *healthy again* only
  when an inspect and ``success_threshold`` consecutive probes of its current
  container, all started after that commit, agree — then exactly one
  ``probe_recovered`` ends the down period.  Observations carry the down period
  they started in (its ``down_seq``), so no clock is compared.

Pure: no I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass

from galaxy_tasks.domain.health_events import HealthEventType
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import DOCKER_HEALTH_UNHEALTHY, DOCKER_STATE_RUNNING, InspectObservation

DEAD_STATES = frozenset({"exited", "dead"})
"""Docker ``State.Status`` values of a container that will not run again by itself.

``restarting`` is not one: Docker's restart policy is bringing it back.
"""

OOM_EXIT_CODE = 137

DOWN_EVENTS = frozenset(
    {
        HealthEventType.CONTAINER_EXITED,
        HealthEventType.CONTAINER_OOM,
        HealthEventType.CONTAINER_DISAPPEARED,
        HealthEventType.PROBE_FAILED,
        HealthEventType.INSPECT_UNHEALTHY,
    }
)
"""Events whose commit starts (or restarts) a game's down period.

SPEC §5 names the first four; ``container_disappeared`` moves the Game Master
to ``engine_unreachable`` too, so the start job that replaces the lost
container must end its down period the same way (inspect and probes).
"""


def is_dead_for_good(observation: InspectObservation) -> bool:
    """Docker shows the container stopped and its restart policy is not bringing it back."""
    return observation.state in DEAD_STATES


def death_event(game_id: str, observation: InspectObservation, at_ms: int) -> HealthEvent:
    """The one event of a death: ``container_oom`` when Docker says OOMKilled with 137, else ``container_exited``."""
    if observation.oom_killed and observation.exit_code == OOM_EXIT_CODE:
        return HealthEvent.container_oom(game_id, observation.container_id, at_ms, exit_code=observation.exit_code)
    return HealthEvent.container_exited(game_id, observation.container_id, at_ms, exit_code=observation.exit_code)


def is_down_event(event_type: HealthEventType) -> bool:
    return event_type in DOWN_EVENTS


def shows_healthy(observation: InspectObservation) -> bool:
    """An inspect that vouches for recovery: running, and Docker's HEALTHCHECK (if any) not unhealthy."""
    return observation.state == DOCKER_STATE_RUNNING and observation.health != DOCKER_HEALTH_UNHEALTHY


@dataclass(frozen=True)
class RecoveryEvidence:
    """What the observations of the current down period said so far about one container.

    Kept with the game's snapshot row (shared, durable).  Any observation of
    another container starts the evidence over: recovery is about the game's
    *current* container, across replacement.
    """

    container_id: str = ""
    inspected_healthy: bool = False
    probe_successes: int = 0
    """Consecutive successful probes of ``container_id`` in this down period."""
    probe_failures: int = 0
    """Length of the latest failure streak seen (``prior_failures`` of the recovery)."""

    def with_inspect(self, container_id: str, *, healthy: bool) -> RecoveryEvidence:
        base = self if container_id == self.container_id else RecoveryEvidence(container_id)
        return RecoveryEvidence(container_id, healthy, base.probe_successes, base.probe_failures)

    def with_probe(self, container_id: str, *, ok: bool, failures: int = 0) -> RecoveryEvidence:
        base = self if container_id == self.container_id else RecoveryEvidence(container_id)
        if ok:
            return RecoveryEvidence(container_id, base.inspected_healthy, base.probe_successes + 1, base.probe_failures)
        return RecoveryEvidence(container_id, base.inspected_healthy, 0, max(failures, base.probe_failures))

    def complete(self, success_threshold: int) -> bool:
        return bool(self.container_id) and self.inspected_healthy and self.probe_successes >= success_threshold


GAME_MASTER_SLACK_SECONDS = 2.0
"""Time for a stream entry to reach the Game Master's row: the bridge's read, the broker, the CAS task.

Not a setting: measured at under 0.1 s p99 even under load (``bench/``); two
seconds leave room for a busy machine.
"""


@dataclass(frozen=True)
class ConvergenceBounds:
    """How long the health view may disagree with Docker, from the settings (docs/architecture.md, "Convergence")."""

    missed_death_seconds: float
    """A death no event reported: the next reconcile finds it, the Game Master applies it."""
    recovery_seconds: float
    """From the commit of a down event of a game whose container serves again to the Game Master at ``running``."""


def convergence_bounds(
    *,
    reconcile_interval: float,
    inspect_interval: float,
    probe_interval: float,
    probe_startup_grace: float,
    probe_success_threshold: int,
    relay_interval: float,
    probe_timeout: float,
    docker_timeout: float,
) -> ConvergenceBounds:
    """The bounds as formulas of the settings (all in seconds).

    * missed death <= reconcile interval + Docker timeout (one list, one inspect)
      + relay interval (the outbox relay, if the append right after commit failed)
      + the Game Master's slack;
    * recovery <= max(inspect interval + Docker timeout,
      start-up grace + (success threshold + 1) * probe interval + probe timeout)
      + relay interval + the Game Master's slack: the sweeps look at the game
      again within one interval, a restarted engine is probed only after its
      grace, the sweep spreads the probes over half an interval, and every
      probe must start after the commit of the down event.
    """
    tail = relay_interval + GAME_MASTER_SLACK_SECONDS
    missed_death = reconcile_interval + docker_timeout + tail
    probes = probe_startup_grace + (probe_success_threshold + 1) * probe_interval + probe_timeout
    recovery = max(inspect_interval + docker_timeout, probes) + tail
    return ConvergenceBounds(missed_death, recovery)
