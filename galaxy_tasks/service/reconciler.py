"""The reconciler: Docker's containers against ``rtmanager.runtime_records`` (SPEC §5 "RTM: convergence").

The level-triggered relist behind the event stream (kubelet's PLEG): whatever
events were missed, it finds what they should have said.  It reads the records
*before* it lists Docker, so a start job that commits in between is never
mistaken for a loss (its new container would be missing from an older list).

* A running record whose container no longer exists → ``container_disappeared``
  and the record leaves ``running``, through the one CAS the Docker events
  listener uses too, so the loss is reported once whoever sees it first.
* A running record whose container died for good (``exited``/``dead``, not
  restarting) → the record goes ``running → exited`` in one CAS on (game,
  container) and the winner publishes the death: ``container_oom`` when
  OOMKilled with 137, else ``container_exited`` with the observed exit code.
* An ``exited`` record whose container Docker runs again (a daemon restart
  starts ``always`` containers anew) goes back to ``running`` in one CAS; the
  game stays down until an inspect and the probes see it healthy.  One whose
  container shows another exit code than the recorded death ran and died again
  unseen: revived, then its new death reported, through the same two CASes.
* A managed container (label ``galaxy.game_id``) that is no game's current
  container at two reconciles in a row is reported: log, gauge, and the list
  ``galaxy-tasks status`` shows.  One sighting is not enough: a start job's new
  container is no game's current one until the job commits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from galaxy_tasks import metrics
from galaxy_tasks.domain.rtmanager.convergence import DEAD_STATES, death_event, is_dead_for_good
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.domain.rtmanager.inspect import DOCKER_STATE_RUNNING, InspectObservation
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports.rtmanager import (
    ContainerRuntime,
    CurrentContainers,
    ListedContainer,
    OrphanReport,
    RunningRecord,
    RunningRecords,
)
from galaxy_tasks.service.health_publisher import HealthPublisher

log = get_logger(__name__)

RECONCILER_REASON = "reconciler: the container of a running record no longer exists"


@dataclass
class Reconciliation:
    disappeared: list[str] = field(default_factory=list)
    """Games this run reported ``container_disappeared`` for."""
    revived: list[str] = field(default_factory=list)
    """Exited games whose container Docker runs again: back to ``running`` (and down until recovered)."""
    died: list[str] = field(default_factory=list)
    """Games this run reported a death for good of (``container_exited`` / ``container_oom``)."""
    already_reported: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    """Managed containers that are no game's current container."""

    def as_dict(self) -> dict[str, object]:
        return {
            "disappeared": self.disappeared,
            "died": self.died,
            "revived": self.revived,
            "already_reported": self.already_reported,
            "orphans": self.orphans,
        }


def reconcile(
    records: RunningRecords,
    current: CurrentContainers,
    runtime: ContainerRuntime,
    report: OrphanReport,
    publisher: HealthPublisher,
    *,
    now_ms: int,
) -> Reconciliation:
    running = records.running()  # before the list: see the module docstring
    exited = records.exited()
    listed = runtime.list_managed()
    result = Reconciliation()
    for record in running:
        row = listed.get(record.container_id) if record.container_id else None
        if row is None:
            _report_loss(record.game_id, record.container_id, publisher, result, now_ms)
        elif row.state in DEAD_STATES:
            _report_death(record, runtime, publisher, result, now_ms=now_ms)
    for record in exited:
        row = listed.get(record.container_id) if record.container_id else None
        if row is None:
            continue
        if row.state == DOCKER_STATE_RUNNING and publisher.store.record_revival(record.game_id, record.container_id):
            result.revived.append(record.game_id)
            metrics.RELIST_FINDINGS.labels("revived", "reconciler").inc()
            log.warning("container_running_again", game_id=record.game_id, container_id=record.container_id)
        elif row.state in DEAD_STATES and died_again(record, row):
            _report_death_again(record, runtime, publisher, result, now_ms=now_ms)
    known = current.current_container_ids()
    unclaimed = [row for row in listed.values() if row.container_id not in known]
    seen_before = report.suspects()
    orphans = [row for row in unclaimed if row.container_id in seen_before]
    for row in orphans:
        log.warning("orphan_container", game_id=row.game_id, container_id=row.container_id, state=row.state)
    result.orphans = sorted(row.container_id for row in orphans)
    metrics.ORPHAN_CONTAINERS.set(len(orphans))
    report.save(orphans, suspects=sorted(row.container_id for row in unclaimed), now_ms=now_ms)
    return result


def _report_loss(
    game_id: str, container_id: str, publisher: HealthPublisher, result: Reconciliation, now_ms: int
) -> None:
    event = HealthEvent.container_disappeared(game_id, container_id, now_ms, reason=RECONCILER_REASON)
    if publisher.publish_loss(event) is None:
        result.already_reported.append(game_id)
    else:
        result.disappeared.append(game_id)
        metrics.RELIST_FINDINGS.labels("disappeared", "reconciler").inc()
        log.warning("container_disappeared", game_id=game_id, container_id=container_id)


def _report_death(
    record: RunningRecord, runtime: ContainerRuntime, publisher: HealthPublisher, result: Reconciliation, *, now_ms: int
) -> None:
    """The list says stopped: the inspect tells the exit code and OOMKilled (and whether it restarts after all)."""
    observation = runtime.inspect(record.container_id)
    if observation is None:  # removed between the list and the inspect
        _report_loss(record.game_id, record.container_id, publisher, result, now_ms)
        return
    if is_dead_for_good(observation):
        _publish_death(record, observation, publisher, result, now_ms=now_ms)


def _publish_death(
    record: RunningRecord,
    observation: InspectObservation,
    publisher: HealthPublisher,
    result: Reconciliation,
    *,
    now_ms: int,
) -> None:
    game_id, container_id = record.game_id, record.container_id
    if publisher.publish_death(death_event(game_id, observation, now_ms)) is None:
        result.already_reported.append(game_id)
    else:
        result.died.append(game_id)
        metrics.RELIST_FINDINGS.labels("died", "reconciler").inc()
        log.warning(
            "container_died_unreported",
            game_id=game_id,
            container_id=container_id,
            exit_code=observation.exit_code,
            oom_killed=observation.oom_killed,
        )


_EXIT_CODE_IN_STATUS = re.compile(r"^Exited \((-?[0-9]+)\)")


def died_again(record: RunningRecord, row: ListedContainer) -> bool:
    """The list shows another exit code than the death recorded: Docker ran it again and it died again.

    Every event of that run may have been missed (a revival and a death
    between two reconciles); the same exit code again tells nothing new.
    """
    match = _EXIT_CODE_IN_STATUS.match(row.status)
    return match is not None and record.death_exit_code is not None and int(match[1]) != record.death_exit_code


def _report_death_again(
    record: RunningRecord, runtime: ContainerRuntime, publisher: HealthPublisher, result: Reconciliation, *, now_ms: int
) -> None:
    """The revival nobody saw, then the death, through the same two compare-and-swaps as when they are seen."""
    observation = runtime.inspect(record.container_id)
    if observation is None or not is_dead_for_good(observation) or observation.exit_code == record.death_exit_code:
        return
    if publisher.store.record_revival(record.game_id, record.container_id):
        result.revived.append(record.game_id)
        metrics.RELIST_FINDINGS.labels("revived", "reconciler").inc()
        _publish_death(record, observation, publisher, result, now_ms=now_ms)
