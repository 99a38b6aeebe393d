"""A real worker's liveness and readiness files: ready once consuming, alive while its event loop runs;
a SIGSTOPped worker turns unhealthy within three intervals and healthy again on SIGCONT; a warm
shutdown takes readiness away first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from galaxy_tasks.testing.cluster import REPO, Cluster, wait_until
from tests.support.pipeline import Pipeline

pytestmark = pytest.mark.integration

INTERVAL = 0.5


def healthcheck(directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("galaxy-tasks")), "healthcheck", "--dir", str(directory), *extra],
        cwd=REPO,
        env={**os.environ, "GALAXY_HEALTH_INTERVAL_SECONDS": str(INTERVAL)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_frozen_worker_fails_its_healthcheck_and_a_thawed_one_passes_again(
    pipeline: Pipeline, cluster: Cluster, tmp_path: Path, pool: str
) -> None:
    health = tmp_path / "health"
    worker = cluster.pool_worker(
        pool=pool,
        environment={"GALAXY_HEALTH_DIR": str(health), "GALAXY_HEALTH_INTERVAL_SECONDS": str(INTERVAL)},
    )
    wait_until(lambda: healthcheck(health, "--ready").returncode == 0, timeout=20, what="the worker to be ready")

    os.kill(worker.pid, signal.SIGSTOP)
    try:
        time.sleep(3 * INTERVAL + 1.0)
        frozen = healthcheck(health)
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    assert frozen.returncode == 1
    assert "stuck or frozen" in frozen.stderr
    wait_until(lambda: healthcheck(health, "--ready").returncode == 0, timeout=20, what="the thawed worker")

    worker.popen.send_signal(signal.SIGTERM)
    worker.popen.wait(timeout=30)
    assert not (health / "ready").exists()  # taken away when the warm shutdown began
    assert healthcheck(health, "--ready").returncode == 1


def test_healthcheck_without_a_folder_says_how_to_name_one() -> None:
    env = {k: v for k, v in os.environ.items() if k != "GALAXY_HEALTH_DIR"}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("galaxy-tasks")), "healthcheck"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "GALAXY_HEALTH_DIR" in done.stderr
