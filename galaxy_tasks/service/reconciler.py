"""The reconciler: Docker's containers against ``rtmanager.runtime_records`` (SPEC §5 "RTM").

* A running record whose container no longer exists → ``container_disappeared``
  and the record leaves ``running``, through the one CAS the Docker events
  listener uses too, so the loss is reported once whoever sees it first.
* A managed container (label ``galaxy.game_id``) that is no game's current
  container at two reconciles in a row is reported: log, gauge, and the list
  ``galaxy-tasks status`` shows.  One sighting is not enough: a start job's new
  container is no game's current one until the job commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from galaxy_tasks import metrics
from galaxy_tasks.domain.rtmanager.health import HealthEvent
from galaxy_tasks.logs import get_logger
from galaxy_tasks.ports import ContainerRuntime, ListedContainer, RunningRecords

log = get_logger(__name__)

RECONCILER_REASON = "reconciler: the container of a running record no longer exists"


class CurrentContainers(Protocol):
    def current_container_ids(self) -> set[str]:
        """Every game's ``current_container_id``, whatever the record's status."""
        ...


class OrphanReport(Protocol):
    def save(self, orphans: list[ListedContainer], *, suspects: list[str], now_ms: int) -> None:
        """Store the confirmed orphans, and the ids seen unclaimed this time (confirmed if seen again)."""
        ...

    def suspects(self) -> set[str]:
        """Container ids the previous reconcile saw unclaimed."""
        ...


@dataclass
class Reconciliation:
    disappeared: list[str] = field(default_factory=list)
    """Games this run reported ``container_disappeared`` for."""
    already_reported: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    """Managed containers that are no game's current container."""

    def as_dict(self) -> dict[str, object]:
        return {"disappeared": self.disappeared, "already_reported": self.already_reported, "orphans": self.orphans}


def reconcile(
    records: RunningRecords,
    current: CurrentContainers,
    runtime: ContainerRuntime,
    report: OrphanReport,
    publish_loss: Callable[[HealthEvent], object | None],
    *,
    now_ms: int,
) -> Reconciliation:
    listed = runtime.list_managed()
    result = Reconciliation()
    for record in records.running():
        if record.container_id and record.container_id in listed:
            continue
        event = HealthEvent.container_disappeared(record.game_id, record.container_id, now_ms, reason=RECONCILER_REASON)
        if publish_loss(event) is None:
            result.already_reported.append(record.game_id)
        else:
            result.disappeared.append(record.game_id)
            log.warning("container_disappeared", game_id=record.game_id, container_id=record.container_id)
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
