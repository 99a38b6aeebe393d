"""Group commit: tasks running at the same time in one worker process share one transaction.

Each ``gamemaster.apply_health_event`` alone costs a PostgreSQL transaction (two round trips
and a WAL flush), more than Celery's own work for the task.  In a worker with a thread pool
several of them run at once, so whichever arrive while a transaction is in flight wait for the
next one and go in together: a leader/follower queue, as databases do for their own commits.
A task arriving at an idle process is committed at once, so nothing waits for a timer, and a
prefork child (one task at a time) always commits alone, exactly as without this.

Every task keeps its own broker message and is acknowledged only when its batch committed
(``acks_late``): a crash redelivers it and the game's cursor makes the redelivery a
duplicate.  A batch that fails is retried item by item, so one entry that breaks the code
fails alone instead of taking its batch mates down with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Slot(Generic[T, R]):
    item: T
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    lead: bool = False
    result: R | None = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """``submit(item)`` runs ``run_batch`` over ``item`` and whatever else is submitted meanwhile.

    ``run_batch`` gets up to ``max_batch`` items in submission order and returns one result
    per item, in the same order.
    """

    def __init__(self, run_batch: Callable[[list[T]], Sequence[R]], *, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Slot[T, R]] = []
        self._leading = False
        self.batches = 0
        """Batches run so far (for tests and the curious)."""

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._lock:
            self._queue.append(slot)
            slot.lead = not self._leading
            self._leading = True
        if not slot.lead:
            slot.wake.wait()
        if not slot.done:  # leader from the start, or promoted by the previous leader
            self._lead(slot)
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]  # set with done, R may include None

    def _lead(self, own: _Slot[T, R]) -> None:
        """Run batches until ``own`` is done, then hand the lead to the next waiting item."""
        try:
            while not own.done:
                with self._lock:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                self._run(batch)
        finally:
            with self._lock:
                if self._queue:
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._leading = False

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        self.batches += 1
        try:
            results = self._run_batch([slot.item for slot in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} items")
        except Exception as exc:  # noqa: BLE001 - handed to the task that submitted the item
            if len(batch) > 1:
                for slot in batch:  # isolate the item that fails from its batch mates
                    self._run([slot])
                return
            batch[0].error = exc
        except BaseException as exc:  # shutdown of the thread: nobody may be left waiting
            for slot in batch:
                slot.error = exc
            self._finish(batch)
            raise
        else:
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
        self._finish(batch)

    @staticmethod
    def _finish(batch: list[_Slot[T, R]]) -> None:
        for slot in batch:
            slot.done = True
            slot.wake.set()
