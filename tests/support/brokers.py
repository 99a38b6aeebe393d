"""Running a pipeline test on both brokers Celery is deployed with here."""

from __future__ import annotations

import pytest

ON_BOTH_BROKERS = pytest.mark.parametrize("pipeline", ["redis", "rabbitmq"], indirect=True)
"""Parametrizes the ``pipeline`` fixture: Redis as broker (the default), then RabbitMQ (a vhost of the test alone)."""
