"""Chunk messages name their entries in a short summary, and still carry every entry whole."""

from __future__ import annotations

from typing import Any

from celery import Celery

from galaxy_tasks.adapters.celery_dispatch import CeleryEntryDispatcher, chunk_summary
from galaxy_tasks.domain.handoffs import Handoff
from galaxy_tasks.task_names import TaskName

BIG = {"game_id": "g" * 5000, "details": "x" * 5000}


def chunk(n: int) -> list[Handoff]:
    return [Handoff(f"1700000000000-{i}", dict(BIG), None if i == 0 else f"1700000000000-{i - 1}") for i in range(n)]


def test_a_chunk_is_summarised_by_its_size_and_its_first_and_last_entry() -> None:
    assert chunk_summary(chunk(3)) == "[3 entries 1700000000000-0 .. 1700000000000-2]"
    assert chunk_summary([]) == "[0 entries]"


def test_a_chunk_message_carries_the_summary_as_its_argsrepr_and_every_entry_in_its_body() -> None:
    app = Celery("dispatch-test", broker="memory://", set_as_current=False)
    dispatcher = CeleryEntryDispatcher(
        app,
        entry_task=TaskName.GM_APPLY_HEALTH_EVENT.value,
        chunk_task=TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK.value,
    )
    sent = chunk(40)
    dispatcher.send_chunks([sent])
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue("celery")  # no routes on this bare app: the default queue
        message = queue.get(timeout=5)
        headers: dict[str, Any] = message.headers
        body: Any = message.decode()
        message.ack()
        queue.close()
    assert headers["task"] == TaskName.GM_APPLY_HEALTH_EVENTS_CHUNK.value
    assert headers["argsrepr"] == chunk_summary(sent)
    assert headers["kwargsrepr"] == "{}"
    assert body[0] == [[h.as_args() for h in sent]]
