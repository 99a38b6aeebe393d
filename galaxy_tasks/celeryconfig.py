"""Celery configuration of galaxy_tasks, derived from the environment (``galaxy_tasks.config``).

One flat module, as Celery expects: JSON only, late acks with redelivery on a
lost worker (every per-event task is idempotent), prefetch from
``GALAXY_WORKER_PREFETCH_MULTIPLIER``, an explicit Redis visibility timeout,
publisher confirms on RabbitMQ, and queues routed by task name.

It lives inside the package and the app loads it by its full name
(``galaxy_tasks.celeryconfig``): a top-level ``celeryconfig`` module would be
shadowed by any ``celeryconfig.py`` in a worker's current directory, which
Python's path puts first.
"""

from __future__ import annotations

from kombu.entity import Exchange
from kombu.entity import Queue as KombuQueue

from galaxy_tasks.config import get_settings
from galaxy_tasks.queues import HOST_BOUND, Queue, on_docker_host
from galaxy_tasks.schedule import beat_schedule as _beat_schedule
from galaxy_tasks.task_names import ROUTES

_settings = get_settings()

broker_url = _settings.broker_url
result_backend = _settings.redis_url
result_expires = 3600
result_extended = True

task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

include = ["galaxy_tasks.tasks.gamemaster", "galaxy_tasks.tasks.control"]

_exchange = Exchange("galaxy", type="direct")  # type: ignore[no-untyped-call]
_queue_names = [q.value for q in Queue] + [
    on_docker_host(q, host) for host in _settings.docker_host_names() for q in HOST_BOUND
]  # several Docker hosts: each host's own RTM queues too
task_queues = [KombuQueue(name, _exchange, routing_key=name) for name in _queue_names]  # type: ignore[no-untyped-call]
task_default_queue = Queue.PERIODIC.value
task_default_exchange = "galaxy"
task_default_routing_key = Queue.PERIODIC.value
# Routes name only the queue: its declaration above gives exchange and routing key, so a task sent
# with an explicit queue (a Docker host's own, rtmanager.docker.<host>) really goes there.
task_routes = {name.value: {"queue": queue.value} for name, queue in ROUTES.items()}

# Time limits are set per task (galaxy_tasks/tasks/_base.py): a global one would also bound the
# long-running singletons and the start/stop jobs, which the pool's default cannot exempt.
task_acks_late = True
task_reject_on_worker_lost = True
task_track_started = True
# Task events cost ~1 ms of CPU per task (bench/README.md); Flower switches worker events on
# at runtime when it runs, and GALAXY_TASK_EVENTS=1 turns them on from the start.
task_send_sent_event = _settings.task_events
worker_send_task_events = _settings.task_events
worker_prefetch_multiplier = _settings.worker_prefetch_multiplier
worker_cancel_long_running_tasks_on_connection_loss = False

broker_connection_retry_on_startup = True
broker_transport_options: dict[str, object] = {
    "visibility_timeout": _settings.broker_visibility_timeout_seconds,
    # kombu sweeps for abandoned (unacked, past the visibility timeout) messages only every
    # interval x throttle seconds (100 s by default); a crashed worker's messages should come
    # back soon after the visibility timeout instead.
    "unacked_restore_interval": _settings.broker_restore_interval_seconds,
    "unacked_restore_throttle": 1,
    # The sweep's mutex lives 300 s by default; a worker that loses Redis while holding it
    # (a restart with AOF keeps the key) would block every sweep for five minutes.
    "unacked_mutex_expire": _settings.broker_visibility_timeout_seconds,
    "socket_timeout": _settings.redis_socket_timeout_seconds,
    "socket_connect_timeout": _settings.redis_socket_timeout_seconds,
}
if _settings.broker_url.startswith(("amqp", "pyamqp")):
    broker_transport_options = {"confirm_publish": True}
result_backend_transport_options = {"retry_policy": {"timeout": 5.0}}

beat_schedule = _beat_schedule(_settings)

# GALAXY_BEAT_SCHEDULER=redbeat: the schedule lives in Redis and one beat at a time holds its lock,
# so a second beat is a hot standby that takes over within redbeat_lock_timeout of the first dying.
if _settings.beat_scheduler == "redbeat":
    beat_scheduler = "redbeat.RedBeatScheduler"
    redbeat_redis_url = _settings.redis_url
    redbeat_key_prefix = "galaxy:redbeat:"
    redbeat_lock_timeout = _settings.beat_lock_timeout_seconds
    beat_max_loop_interval = max(1, _settings.beat_lock_timeout_seconds // 5)
