"""deploy/: the compose file passes ``docker-compose config``, the systemd units ``systemd-analyze verify``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from galaxy_tasks.testing.cluster import REPO

pytestmark = pytest.mark.e2e

DEPLOY = REPO / "deploy"
VENV = Path(sys.executable).parent.parent
QUEUE_GROUPS = {"events": "gamemaster.health_events", "rtm": "rtmanager.docker,rtmanager.jobs"}


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is missing: bash scripts/test-tools.sh installs it"
    return path


def test_the_compose_file_is_valid_and_runs_every_process_of_the_system(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "pw", "FLOWER_BASIC_AUTH": "operator:pw"}
    done = subprocess.run(
        [tool("docker-compose"), "-f", str(DEPLOY / "docker-compose.yml"), "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) >= {"redis", "postgres", "migrate", "worker-events", "worker-rtm", "worker-long-running"}
    assert {"beat", "flower"} <= set(services)
    assert "noeviction" in services["redis"]["command"]
    assert "--appendonly" in services["redis"]["command"]
    commands = {name: " ".join(map(str, s.get("command") or [])) for name, s in services.items()}
    assert "-Q gamemaster.health_events " in commands["worker-events"]
    assert "-Q rtmanager.docker,rtmanager.jobs" in commands["worker-rtm"]
    assert "-Q galaxy.long_running,galaxy.periodic -P threads" in commands["worker-long-running"]
    assert services["beat"]["deploy"]["replicas"] == 2
    assert services["beat"]["environment"]["GALAXY_BEAT_SCHEDULER"] == "redbeat"
    assert "--basic-auth=operator:pw" in commands["flower"]


def test_the_compose_file_refuses_to_start_without_a_database_password_or_flower_credentials() -> None:
    done = subprocess.run(
        [tool("docker-compose"), "-f", str(DEPLOY / "docker-compose.yml"), "config"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "POSTGRES_PASSWORD" in done.stderr or "FLOWER_BASIC_AUTH" in done.stderr


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} >= {"galaxy-tasks.target", "galaxy-tasks-worker@.service"}
    for unit in units:  # installed under /opt/galaxy-tasks/venv; here: this checkout's venv
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/galaxy-tasks/venv", str(VENV)))
    for group in QUEUE_GROUPS:
        template = (tmp_path / "galaxy-tasks-worker@.service").read_text()
        (tmp_path / f"galaxy-tasks-worker@{group}.service").write_text(template)
    checked = [p.name for p in sorted(tmp_path.iterdir()) if "@." not in p.name]
    done = subprocess.run(
        [tool("systemd-analyze"), "verify", "--man=no", *checked],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Unknown key" not in done.stderr, done.stderr
