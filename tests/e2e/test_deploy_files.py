"""deploy/: the compose file passes ``docker-compose config``, the systemd units ``systemd-analyze verify``."""

from __future__ import annotations

import re
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
TEMPLATE_INSTANCES = ("events",)
"""The instances of ``galaxy-tasks-worker@.service`` the target wants (the RTM worker has its own unit)."""


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is missing: bash scripts/test-tools.sh installs it"
    return path


def test_the_compose_file_is_valid_and_runs_every_process_of_the_system(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FLOWER_BASIC_AUTH": "operator:pw"}
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
    assert services["redis"]["command"][-2:] == ["--aclfile", "/run/secrets/redis-users.acl"]
    commands = {name: " ".join(map(str, s.get("command") or [])) for name, s in services.items()}
    assert "-Q gamemaster.health_events " in commands["worker-events"]
    assert "-Q rtmanager.docker,rtmanager.jobs" in commands["worker-rtm"]
    assert "-Q galaxy.long_running,galaxy.periodic -P threads" in commands["worker-long-running"]
    assert services["beat"]["deploy"]["replicas"] == 2
    assert services["beat"]["environment"]["GALAXY_BEAT_SCHEDULER"] == "redbeat"
    assert services["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "operator:pw"
    assert all("pw" not in command for command in commands.values()), commands
    workers = [name for name in services if name.startswith("worker-")]
    assert {services[name]["stop_grace_period"] for name in workers} <= {"30s", "1m0s", "60s"}
    assert services["worker-events"]["stop_grace_period"] in ("60s", "1m0s")


def test_the_compose_file_refuses_to_start_without_flower_credentials() -> None:
    done = subprocess.run(
        [tool("docker-compose"), "-f", str(DEPLOY / "docker-compose.yml"), "config"],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "FLOWER_BASIC_AUTH" in done.stderr


def test_every_password_of_the_compose_file_is_a_secret_file_with_an_example_and_none_is_in_an_environment() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name, secret in compose["secrets"].items():
        assert (DEPLOY / (secret["file"] + ".example")).is_file(), name
    environments = [service.get("environment") or {} for service in compose["services"].values()]
    variables = {key: str(value) for environment in environments for key, value in environment.items()}
    assert [key for key in variables if key.endswith(("PASSWORD", "_URL"))] == []  # their *_FILE forms only
    assert [key for key, value in variables.items() if re.search(r"://[^/]*@", value)] == []  # no credentials
    acl = (DEPLOY / "secrets" / "redis-users.acl.example").read_text().splitlines()
    assert "user default off" in acl


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    units = sorted((DEPLOY / "systemd").iterdir())
    assert {u.name for u in units} >= {"galaxy-tasks.target", "galaxy-tasks-worker@.service"}
    for unit in units:  # installed under /opt/galaxy-tasks/venv; here: this checkout's venv
        (tmp_path / unit.name).write_text(unit.read_text().replace("/opt/galaxy-tasks/venv", str(VENV)))
    for group in TEMPLATE_INSTANCES:
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


def unit_lines(name: str) -> list[str]:
    return [line.strip() for line in (DEPLOY / "systemd" / name).read_text().splitlines()]


def test_only_the_units_that_talk_to_docker_join_the_docker_group() -> None:
    in_group = sorted(
        unit.name
        for unit in (DEPLOY / "systemd").iterdir()
        if any(line.startswith("SupplementaryGroups=") and "docker" in line for line in unit_lines(unit.name))
    )
    assert in_group == ["galaxy-tasks-long-running.service", "galaxy-tasks-worker-rtm.service"]


def test_the_workers_of_one_host_serve_metrics_on_ports_of_their_own() -> None:
    ports: dict[str, str] = {}
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        for line in unit_lines(unit.name):
            if line.startswith("Environment=") and "GALAXY_METRICS_SERVE=1" in line:
                port = dict(item.split("=", 1) for item in line.removeprefix("Environment=").split())
                ports[unit.name] = port.get("GALAXY_METRICS_PORT", "9808")
    assert len(ports) == 3, ports
    assert len(set(ports.values())) == len(ports), ports


def test_no_unit_puts_a_password_or_its_variable_on_a_command_line() -> None:
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        exec_lines = [line for line in unit_lines(unit.name) if line.startswith("ExecStart=")]
        assert all("AUTH" not in line and "PASSWORD" not in line and "URL" not in line for line in exec_lines), unit


def test_every_service_unit_is_sandboxed() -> None:
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        lines = unit_lines(unit.name)
        assert {"NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "CapabilityBoundingSet="} <= set(
            lines
        ), unit.name
