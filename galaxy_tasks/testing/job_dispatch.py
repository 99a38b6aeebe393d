"""In-memory fakes of the job dispatch's ports: where a game's jobs run, and the turns sent there.

:class:`FakePlacement` reads the records of a
:class:`~galaxy_tasks.testing.jobs.FakeJobQueue` as ``PostgresPlacement``
reads ``rtmanager.runtime_records`` (the game's host; running games per
host), so a job that starts a game moves the placement of the next one, as in
PostgreSQL.  :class:`FakeForwarder` records every turn sent and, when told to,
takes it at once on that host (a worker that is up), or drops it (a message
lost).
"""

from __future__ import annotations

from collections.abc import Callable

from galaxy_tasks.domain.rtmanager.jobs import RecordStatus
from galaxy_tasks.testing.jobs import FakeJobQueue


class FakePlacement:
    """``Placement`` over the fake queue's records."""

    def __init__(self, queue: FakeJobQueue) -> None:
        self._queue = queue

    def host_of(self, game_id: str) -> str:
        record = self._queue.records.get(game_id)
        return "" if record is None else record.docker_host

    def running_by_host(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self._queue.records.values():
            if record.status == RecordStatus.RUNNING:
                counts[record.docker_host] = counts.get(record.docker_host, 0) + 1
        return counts


class FakeForwarder:
    """``Forwarder`` that logs each turn as ``(game_id, host)``; :meth:`deliver_to` makes a host take them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self._workers: dict[str, Callable[[str], object]] = {}

    def deliver_to(self, host: str, take_turn: Callable[[str], object]) -> None:
        """Turns sent to ``host`` from now on are taken at once by ``take_turn`` (that host's worker)."""
        self._workers[host] = take_turn

    def send_turn(self, game_id: str, host: str) -> None:
        self.sent.append((game_id, host))
        worker = self._workers.get(host)
        if worker is not None:
            worker(game_id)
