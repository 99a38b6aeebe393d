"""``GroupCommit``: tasks submitted while a batch runs go into the next batch together."""

from __future__ import annotations

import threading
import time

import pytest

from galaxy_tasks.service.group_commit import GroupCommit


class _GatedBatches:
    """A ``run_batch`` whose first call blocks until released, recording every batch."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.batches: list[list[str]] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.first_started.set()
            assert self.release.wait(5)
        if self.fail_on in items:
            raise ValueError(f"cannot apply {self.fail_on}")
        return [item.upper() for item in items]


def _submit_in_threads(
    group: GroupCommit[str, str], items: list[str]
) -> tuple[list[threading.Thread], dict[str, object]]:
    outcomes: dict[str, object] = {}

    def run(item: str) -> None:
        try:
            outcomes[item] = group.submit(item)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertions
            outcomes[item] = exc

    threads = [threading.Thread(target=run, args=(item,)) for item in items]
    for thread in threads:
        thread.start()
    return threads, outcomes


def _wait_queued(group: GroupCommit[str, str], count: int) -> None:
    deadline = time.monotonic() + 5
    while len(group._queue) < count:
        assert time.monotonic() < deadline, "submitters did not queue up"
        time.sleep(0.005)


def test_a_lone_submit_runs_at_once_as_a_batch_of_one() -> None:
    calls: list[list[str]] = []

    def run(items: list[str]) -> list[str]:
        calls.append(items)
        return [item * 2 for item in items]

    group: GroupCommit[str, str] = GroupCommit(run, max_batch=10)
    assert group.submit("a") == "aa"
    assert calls == [["a"]]


def test_items_submitted_while_a_batch_runs_share_the_next_batch() -> None:
    run = _GatedBatches()
    group: GroupCommit[str, str] = GroupCommit(run, max_batch=10)
    first, first_out = _submit_in_threads(group, ["a"])
    assert run.first_started.wait(5)
    rest, rest_out = _submit_in_threads(group, ["b", "c", "d"])
    _wait_queued(group, 3)
    run.release.set()
    for thread in first + rest:
        thread.join(5)
    assert run.batches[0] == ["a"]
    assert sorted(run.batches[1]) == ["b", "c", "d"]
    assert len(run.batches) == 2
    assert {**first_out, **rest_out} == {"a": "A", "b": "B", "c": "C", "d": "D"}


def test_batches_never_exceed_max_batch_and_every_item_gets_its_result() -> None:
    run = _GatedBatches()
    group: GroupCommit[str, str] = GroupCommit(run, max_batch=2)
    first, _ = _submit_in_threads(group, ["a"])
    assert run.first_started.wait(5)
    items = [f"x{n}" for n in range(5)]
    rest, outcomes = _submit_in_threads(group, items)
    _wait_queued(group, 5)
    run.release.set()
    for thread in first + rest:
        thread.join(5)
    assert all(len(batch) <= 2 for batch in run.batches)
    assert outcomes == {item: item.upper() for item in items}
    assert not group._leading


def test_an_item_that_fails_fails_alone_and_its_batch_mates_succeed() -> None:
    run = _GatedBatches(fail_on="bad")
    group: GroupCommit[str, str] = GroupCommit(run, max_batch=10)
    first, _ = _submit_in_threads(group, ["a"])
    assert run.first_started.wait(5)
    rest, outcomes = _submit_in_threads(group, ["b", "bad", "c"])
    _wait_queued(group, 3)
    run.release.set()
    for thread in first + rest:
        thread.join(5)
    assert outcomes["b"] == "B"
    assert outcomes["c"] == "C"
    assert isinstance(outcomes["bad"], ValueError)


def test_a_failing_lone_item_raises_to_its_submitter_and_the_next_submit_still_runs() -> None:
    group: GroupCommit[str, str] = GroupCommit(lambda items: [1 / 0 for _ in items], max_batch=10)  # type: ignore[misc]
    with pytest.raises(ZeroDivisionError):
        group.submit("a")
    with pytest.raises(ZeroDivisionError):
        group.submit("b")
    assert group.batches == 2


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(lambda items: items, max_batch=0)
