"""Running a pipeline test on both brokers Celery is deployed with here."""

from __future__ import annotations

import pytest

from tests.support.pipeline import Pipeline

ON_BOTH_BROKERS = pytest.mark.parametrize("pipeline", ["redis", "rabbitmq"], indirect=True)
"""Parametrizes the ``pipeline`` fixture: Redis as broker (the default), then RabbitMQ (a vhost of the test alone)."""


def queued(pipeline: Pipeline, queue: str) -> int:
    """Messages waiting in ``queue`` of the pipeline's broker (not those a worker reserved)."""
    if not pipeline.broker_url.startswith("amqp"):
        return int(pipeline.r.llen(queue))
    from galaxy_tasks.celery_app import app

    with app.connection_for_write(pipeline.broker_url) as connection:
        try:
            declared = connection.default_channel.queue_declare(queue=queue, passive=True)
        except connection.channel_errors:
            return 0  # not declared yet: nothing was sent
        return int(declared.message_count)


def lose_one(pipeline: Pipeline, queue: str) -> bool:
    """Take one message out of ``queue`` and drop it, as a broker that lost it would."""
    if not pipeline.broker_url.startswith("amqp"):
        return pipeline.r.rpop(queue) is not None
    from galaxy_tasks.celery_app import app

    with app.connection_for_write(pipeline.broker_url) as connection:
        return connection.default_channel.basic_get(queue, no_ack=True) is not None
