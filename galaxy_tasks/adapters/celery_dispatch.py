"""Sending work to the worker pools through the Celery broker: every port that is a message.

* :class:`CeleryEntryDispatcher` — a bridge's entries, one message each or in
  ordered chunks.  ``send_task`` returns once the broker accepted the message
  (with RabbitMQ, publisher confirms are switched on in ``celeryconfig``),
  which is the moment the bridge may move its offset.  Per-event messages
  carry no ``expires``: dropping one would lose an event.
* :class:`CeleryTurnForwarder` — a game's job turn, to its Docker host's queue.
* :class:`CeleryFollowUps` — inspects, probes and relists a sweep or the events
  listener asks a Docker host's workers for.

An unreachable broker is :class:`~galaxy_tasks.domain.errors.BackendUnavailable`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import kombu.exceptions
import redis.exceptions
from celery import Celery

from galaxy_tasks.domain.errors import BrokerUnavailable
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.ports.rtmanager import FollowUp, FollowUpTask
from galaxy_tasks.queues import Queue, on_docker_host
from galaxy_tasks.task_names import ROUTES, TaskName


@contextmanager
def _broker_errors() -> Iterator[None]:
    """The broker unreachable (after kombu's own publish retries) is a transient failure."""
    try:
        yield
    except (
        kombu.exceptions.OperationalError,
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        ConnectionError,
        OSError,
    ) as exc:
        raise BrokerUnavailable(str(exc)) from exc


class CeleryEntryDispatcher:
    def __init__(self, app: Celery, *, entry_task: str, chunk_task: str | None) -> None:
        self._app = app
        self._entry_task = entry_task
        self._chunk_task = chunk_task
        self._queue = ROUTES[TaskName(entry_task)].value

    def send_each(self, handoffs: Sequence[Handoff]) -> None:
        with _broker_errors(), self._app.producer_or_acquire() as producer:
            for handoff in handoffs:
                self._app.send_task(self._entry_task, args=handoff.as_args(), producer=producer, ignore_result=True)

    def waiting(self) -> int:
        with _broker_errors(), self._app.pool.acquire(block=True, timeout=10) as connection:
            try:
                declared = connection.default_channel.queue_declare(queue=self._queue, passive=True)
            except connection.channel_errors:
                return 0  # not declared yet: nothing was sent
        return int(declared.message_count)

    def send_chunks(self, chunks: Sequence[Sequence[Handoff]]) -> None:
        if self._chunk_task is None:
            raise ValueError("this stream's entries are handed on one by one (no chunk task)")
        chunk_task = self._chunk_task
        with _broker_errors(), self._app.producer_or_acquire() as producer:
            for chunk in chunks:
                self._app.send_task(
                    chunk_task,
                    args=[[h.as_args() for h in chunk]],
                    argsrepr=chunk_summary(chunk),
                    kwargsrepr="{}",
                    producer=producer,
                    ignore_result=True,
                )


def chunk_summary(chunk: Sequence[Handoff]) -> str:
    """What Flower and the worker's log show of a chunk's arguments: how many entries, which ids.

    Given to Celery as the message's ``argsrepr``: otherwise it walks the whole
    chunk to build a truncated repr of it, which cost the bridge a third of its
    CPU at a few thousand entries a second.
    """
    if not chunk:
        return "[0 entries]"
    return f"[{len(chunk)} entries {chunk[0].entry_id} .. {chunk[-1].entry_id}]"


def queue_depth(app: Celery, queue: str) -> int:
    """Messages waiting in ``queue`` (not counting those already with a worker).

    An empty queue may not exist at all on Redis (its list key is gone), which
    a passive declare reports as "not found": that is zero messages.
    """
    with _broker_errors(), app.connection_for_write() as connection:
        try:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        except connection.channel_errors:
            return 0
    return int(declared.message_count)


class CeleryTurnForwarder:
    """The ``Forwarder`` of jobs: ``rtmanager.run_game_jobs(game_id)`` on the Docker host's job queue."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def send_turn(self, game_id: str, host: str) -> None:
        queue = on_docker_host(Queue.RTM_JOBS, host)
        with _broker_errors():
            self._app.send_task(TaskName.RTM_RUN_GAME_JOBS.value, args=[game_id], queue=queue, ignore_result=True)


class CeleryFollowUps:
    """The ``FollowUps`` of one Docker host: its inspect, probe and reconcile tasks on its Docker queue."""

    TASKS = {
        FollowUpTask.INSPECT: TaskName.RTM_INSPECT_CONTAINER,
        FollowUpTask.PROBE: TaskName.RTM_PROBE_ENGINE,
        FollowUpTask.RECONCILE: TaskName.RTM_RECONCILE,
    }

    def __init__(self, app: Celery, queue: str) -> None:
        self._app = app
        self._queue = queue

    def send(self, follow_up: FollowUp) -> None:
        options: dict[str, object] = {"args": list(follow_up.args), "expires": follow_up.expires_seconds}
        if follow_up.down_seq:
            options["kwargs"] = {"down_seq": follow_up.down_seq}
        if follow_up.delay_seconds:
            options["countdown"] = follow_up.delay_seconds
        with _broker_errors():
            self._app.send_task(self.TASKS[follow_up.task].value, queue=self._queue, **options)
