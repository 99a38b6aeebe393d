"""The processes ``deploy/`` describes, read from its files as an operator's tools would read them.

* **compose**: ``docker-compose config`` renders ``deploy/docker-compose.yml`` (anchors merged,
  ``${VAR}`` filled in from the environment given); every service built from ``deploy/Dockerfile``
  is a process: the image's ``ENTRYPOINT`` (or the service's ``entrypoint``) plus its ``command``
  (or the image's ``CMD``), its environment, whether it sees the Docker host (a Docker socket it
  mounts with the socket's group added, or a remote engine), its replicas and stop grace;
* **systemd**: the units ``galaxy-tasks.target`` wants, template instances included, with the
  environment systemd gives them — ``Environment=`` first, then the ``EnvironmentFile=`` files in
  order (a file's value wins), the files being those ``deploy/README.md`` tells operators to write
  (``/etc/galaxy-tasks/galaxy.env`` is ``galaxy.env.example``) — and ``ExecStart`` expanded with it.

Nothing here restates the layout: the e2e tests that check routing
(``test_deploy_layout_reaches_docker``) and the one that runs the layout as local processes
(``test_deployment_runs``) both start from these readers.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from galaxy_tasks.testing.cluster import REPO

DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
DOCKER_SDK_DEFAULT_HOST = "unix:///var/run/docker.sock"
"""Where the Docker SDK (``docker.from_env``) connects when ``DOCKER_HOST`` is unset."""

COMPOSE_TEST_ENV = {"FLOWER_BASIC_AUTH": "operator:flower-pw"}
"""The variables the compose file refuses to render without, as an operator's env file sets them."""


@dataclass(frozen=True)
class DeployedProcess:
    name: str
    argv: tuple[str, ...]
    """The command as the layout runs it: ``celery -A galaxy_tasks …`` or ``galaxy-tasks migrate``."""
    environment: Mapping[str, str]
    sees_docker: bool
    replicas: int = 1
    oneshot: bool = False
    """Runs once before the others and exits (``galaxy-tasks migrate``)."""
    stop_grace_seconds: float | None = None
    file_env: Mapping[str, str] = field(default_factory=dict)
    healthcheck: tuple[str, ...] | None = None
    """The command the layout runs to judge the process healthy (compose ``healthcheck: test: [CMD, …]``)."""

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name

    @property
    def celery_command(self) -> str | None:
        """``worker``, ``beat``, ``flower`` … for a ``celery`` process, else ``None``."""
        if self.program != "celery":
            return None
        args = list(self.argv[1:])
        while args and args[0].startswith("-"):
            args = args[2:] if args[0] in ("-A", "--app") else args[1:]
        return args[0] if args else None

    @property
    def queues(self) -> frozenset[str] | None:
        return worker_queues(self.argv)


def worker_queues(argv: Sequence[str]) -> frozenset[str] | None:
    """The ``-Q`` queues of a ``celery … worker`` command line; ``None`` for any other process."""
    if not any(Path(arg).name == "celery" for arg in argv) or "worker" not in argv:
        return None
    for index, arg in enumerate(argv):
        if arg in ("-Q", "--queues"):
            return frozenset(argv[index + 1].split(","))
        if arg.startswith("--queues="):
            return frozenset(arg.removeprefix("--queues=").split(","))
    raise AssertionError(f"a worker that names no queues consumes every declared queue: {shlex.join(argv)}")


def env_assignments(tokens: Iterable[str]) -> dict[str, str]:
    return dict(token.split("=", 1) for token in tokens)


def split_env_prefix(tokens: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """``A=1 B=2 celery …`` -> ({A: 1, B: 2}, [celery, …])."""
    index = 0
    while index < len(tokens) and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[index]):
        index += 1
    return env_assignments(tokens[:index]), list(tokens[index:])


def section(markdown: str, title: str) -> str:
    """The text under the ``## title`` heading, up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(title)}\b.*?$(.*?)(?=^## |\Z)", markdown, re.MULTILINE | re.DOTALL)
    assert match is not None, f"deploy/README.md has no section {title!r}"
    return match.group(1)


def shell_blocks(markdown: str) -> list[list[str]]:
    """The ``sh`` blocks of a Markdown text, as logical lines (backslash continuations joined)."""
    blocks = re.findall(r"^```sh\n(.*?)^```", markdown, re.MULTILINE | re.DOTALL)
    return [block.replace("\\\n", " ").splitlines() for block in blocks]


# --- compose -----------------------------------------------------------------------------------------


def dockerfile_instruction(name: str) -> list[str]:
    match = re.search(rf"^{name} (\[.*\])$", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert match is not None, f"deploy/Dockerfile has no exec-form {name}"
    value: list[str] = json.loads(match.group(1))
    return value


def rendered_compose(env: Mapping[str, str] = COMPOSE_TEST_ENV) -> dict[str, Any]:
    """``docker-compose config`` of the deploy file: what ``docker compose up`` would run."""
    tool = shutil.which("docker-compose")
    assert tool is not None, "docker-compose is missing: bash scripts/test-tools.sh installs it"
    done = subprocess.run(
        [tool, "-f", str(DEPLOY / "docker-compose.yml"), "config"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rendered: dict[str, Any] = yaml.safe_load(done.stdout)
    return rendered


def compose_environment(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return env_assignments(environment)
    return {key: "" if value is None else str(value) for key, value in environment.items()}


def mount_targets(service: Mapping[str, Any]) -> set[str]:
    targets = set()
    for volume in service.get("volumes") or []:
        targets.add(str(volume["target"]) if isinstance(volume, dict) else str(volume).split(":")[1])
    return targets


def compose_sees_docker(service: Mapping[str, Any], environment: Mapping[str, str]) -> bool:
    url = environment.get("DOCKER_HOST") or DOCKER_SDK_DEFAULT_HOST
    if not url.startswith("unix://"):
        return True  # a remote engine, reached over the network
    return url.removeprefix("unix://") in mount_targets(service) and bool(service.get("group_add"))


def duration_seconds(text: str | None) -> float | None:
    """Compose's durations (``1m0s``, ``30s``, ``1m30s``) in seconds."""
    if not text:
        return None
    total = 0.0
    for amount, unit in re.findall(r"([0-9.]+)(h|ms|m|s)", text):
        total += float(amount) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def compose_processes(env: Mapping[str, str] = COMPOSE_TEST_ENV) -> list[DeployedProcess]:
    processes = []
    for name, service in rendered_compose(env)["services"].items():
        if not str((service.get("build") or {}).get("dockerfile", "")).endswith("Dockerfile"):
            continue  # redis, postgres: the machine's own here
        entrypoint = service.get("entrypoint") or dockerfile_instruction("ENTRYPOINT")
        command = service["command"] if service.get("command") is not None else dockerfile_instruction("CMD")
        if isinstance(command, str):
            command = shlex.split(command)
        if isinstance(entrypoint, str):
            entrypoint = shlex.split(entrypoint)
        environment = compose_environment(service)
        processes.append(
            DeployedProcess(
                name=f"compose {name}",
                argv=tuple(str(arg) for arg in [*entrypoint, *command]),
                environment=environment,
                sees_docker=compose_sees_docker(service, environment),
                replicas=int((service.get("deploy") or {}).get("replicas", 1)),
                oneshot=str(service.get("restart", "")) == "no",
                stop_grace_seconds=duration_seconds(service.get("stop_grace_period")),
                healthcheck=compose_healthcheck(service),
            )
        )
    return processes


def compose_healthcheck(service: Mapping[str, Any]) -> tuple[str, ...] | None:
    test = (service.get("healthcheck") or {}).get("test")
    if not test:
        return None
    if isinstance(test, str):
        return ("sh", "-c", test)
    kind, *command = [str(part) for part in test]
    if kind == "CMD-SHELL":
        return ("sh", "-c", " ".join(command))
    assert kind == "CMD", f"healthcheck test {test!r}"
    return tuple(command)


# --- systemd -----------------------------------------------------------------------------------------


def unit_settings(path: Path) -> dict[str, list[str]]:
    """A unit file's ``Key=value`` lines (a key may repeat), all sections together."""
    settings: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def env_file(lines: Iterable[str]) -> dict[str, str]:
    return env_assignments(
        line.strip() for line in lines if line.strip() and not line.strip().startswith("#") and "=" in line
    )


def documented_env_files() -> dict[str, dict[str, str]]:
    """The files under /etc/galaxy-tasks that the docs tell operators to write, with their variables."""
    example = DEPLOY / "galaxy.env.example"
    header = re.search(r"(/etc/galaxy-tasks/\S+\.env)", example.read_text().splitlines()[0])
    assert header is not None, "galaxy.env.example no longer says which file it is"
    files = {header.group(1): env_file(example.read_text().splitlines())}
    readme = (DEPLOY / "README.md").read_text()
    for block in shell_blocks(section(readme, "systemd")):
        current: str | None = None
        for line in block:
            opened = re.fullmatch(r"# (/etc/galaxy-tasks/\S+\.env)\b.*", line.strip())
            if opened:
                current = opened.group(1)
                files[current] = {}
            elif current is not None:
                files[current].update(env_file([line]))
    return files


def expand(exec_start: str, environment: Mapping[str, str], instance: str) -> list[str]:
    """``ExecStart`` as systemd runs it: ``${VAR}`` from the environment, ``%i`` the instance."""

    def variable(match: re.Match[str]) -> str:
        assert match.group(1) in environment, f"ExecStart uses ${{{match.group(1)}}}, which nothing documented sets"
        return environment[match.group(1)]

    text = re.sub(r"\$\{(\w+)\}", variable, exec_start)
    return shlex.split(text.replace("%i", instance).replace("%H", "host"))


def systemd_sees_docker(unit: Mapping[str, list[str]], environment: Mapping[str, str]) -> bool:
    url = environment.get("DOCKER_HOST")
    if not url:
        return False  # a unit may run on any host: only one that names its Docker host is meant for it
    if not url.startswith("unix://"):
        return True
    groups = {group for line in unit.get("SupplementaryGroups", []) for group in line.split()}
    return "docker" in groups


def systemd_processes() -> list[DeployedProcess]:
    target = unit_settings(SYSTEMD / "galaxy-tasks.target")
    names = [name for key in ("Wants", "Requires") for line in target.get(key, []) for name in line.split()]
    files = documented_env_files()
    processes = []
    for name in names:
        prefix, at, rest = name.partition("@")
        instance = rest.removesuffix(".service") if at else ""
        unit = unit_settings(SYSTEMD / (f"{prefix}@.service" if at else name))
        environment: dict[str, str] = {}
        for line in unit.get("Environment", []):
            environment.update(env_assignments(shlex.split(line)))
        from_files: dict[str, str] = {}
        for path in unit.get("EnvironmentFile", []):
            resolved = path.removeprefix("-").replace("%i", instance)
            assert resolved in files or path.startswith("-"), f"{name} reads {resolved}, which no doc describes"
            from_files.update(files.get(resolved, {}))
        environment.update(from_files)  # systemd: a file's assignment wins over Environment=
        stop = unit.get("TimeoutStopSec", [])
        processes.append(
            DeployedProcess(
                name=f"systemd {name}",
                argv=tuple(expand(unit["ExecStart"][-1], environment, instance)),
                environment=environment,
                sees_docker=systemd_sees_docker(unit, environment),
                oneshot=unit.get("Type", ["simple"])[-1] == "oneshot",
                stop_grace_seconds=float(stop[-1]) if stop else None,
                file_env=from_files,
            )
        )
    return processes
