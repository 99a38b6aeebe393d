"""Engine containers on a real Docker Engine as the tests and bench run them: host networking, no pulls.

No registry is reachable where the tests run, so an engine image is never
pulled (it is built locally, :mod:`galaxy_tasks.demo.engine_image`), and
engines use the host's network so a test reaches them on a loopback port.
The same settings in two shapes: for a job service built in-process, and as
the environment of ``celery`` processes (``bench/jobs.py`` uses them too).
"""

from __future__ import annotations

from galaxy_tasks.service.jobs import EngineSettings

LOOPBACK_ENGINE_SETTINGS = EngineSettings(
    endpoint_template="http://127.0.0.1:8080/{game_id}",
    network="host",
    memory_limit="64m",
    cpus=0.5,
    restart_policy={"Name": "no"},
    pull_missing_image=False,  # no registry here: never send a pull anywhere
    stop_timeout_seconds=5,
)
"""Engine containers as the tests run them: host networking, no pulls."""

TEST_ENGINE_ENV: dict[str, str] = {
    "GALAXY_ENGINE_ENDPOINT_TEMPLATE": LOOPBACK_ENGINE_SETTINGS.endpoint_template,
    "GALAXY_ENGINE_NETWORK": "host",
    "GALAXY_ENGINE_MEMORY_LIMIT": "64m",
    "GALAXY_ENGINE_CPUS": "0.5",
    "GALAXY_ENGINE_RESTART_POLICY": "no",
    "GALAXY_ENGINE_IMAGE_PULL": "never",
    "GALAXY_STOP_TIMEOUT_SECONDS": "5",
}
"""The same settings for celery processes."""
