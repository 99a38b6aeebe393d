"""Start and stop jobs of the Runtime Manager (SPEC §3 job streams, §5 "RTM: start/stop jobs", seed ``002``).

Pure: decoding a job entry, naming the container, deciding between a real
start/stop and an idempotent replay from what the record and Docker say, and
the job result with every field the Lobby reads.  No I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from galaxy_tasks.domain.errors import GalaxyError, MalformedEntry, PermanentError
from galaxy_tasks.domain.game_ids import game_id_problem
from galaxy_tasks.domain.stream_fields import MAX_GAME_ID_BYTES, first_unusable

CONTAINER_NAME_PREFIX = "galaxy-game-"
"""SPEC §5, fixed: an engine container is named ``galaxy-game-{game_id}``."""

_MAX_IMAGE_REF = 512

START_JOB_FIELDS = frozenset({"game_id", "image_ref"})
"""The fields of ``runtime:start_jobs`` (SPEC §3); others are ignored whatever their bytes."""
STOP_JOB_FIELDS = frozenset({"game_id", "reason"})
"""The fields of ``runtime:stop_jobs`` (SPEC §3)."""


class JobKind(StrEnum):
    START = "start"
    STOP = "stop"


class JobOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"


class JobErrorCode(StrEnum):
    """The stable ``error_code`` values of ``runtime:job_results`` (SPEC §3)."""

    REPLAY_NO_OP = "replay_no_op"
    INVALID_REQUEST = "invalid_request"
    IMAGE_NOT_FOUND = "image_not_found"
    DOCKER_UNAVAILABLE = "docker_unavailable"
    CONTAINER_START_FAILED = "container_start_failed"
    CONTAINER_STOP_FAILED = "container_stop_failed"
    CONFLICT = "conflict"
    """A start for a game whose live container runs another ``image_ref`` (an upgrade is a stop, then a start)."""
    SUPERSEDED = "superseded"
    """The job arrived after a newer job of its game was applied: never acted on."""
    INTERNAL_ERROR = "internal_error"


class StopReason(StrEnum):
    """The values a stop job's optional ``reason`` may take (SPEC §3, the original's enum)."""

    ORPHAN_CLEANUP = "orphan_cleanup"
    CANCELLED = "cancelled"
    FINISHED = "finished"
    ADMIN_REQUEST = "admin_request"
    TIMEOUT = "timeout"


class RecordStatus(StrEnum):
    """``rtmanager.runtime_records.status`` (SPEC §4): written by the jobs, and by the health observers for a
    container that died for good (``exited``) or vanished (``disappeared``)."""

    RUNNING = "running"
    STOPPED = "stopped"
    EXITED = "exited"
    DISAPPEARED = "disappeared"
    STARTING = "starting"
    """A start job holds the game and is changing its container (committed before Docker is touched)."""
    STOPPING = "stopping"
    """A stop job holds the game and is stopping its container."""


class JobFailed(PermanentError):
    """A job that cannot succeed: its result is a ``failure`` with ``code``.  Never retried."""

    def __init__(self, code: JobErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class JobResult:
    """One ``runtime:job_results`` entry (seed ``002``'s ``JobResult``)."""

    game_id: str
    outcome: JobOutcome
    container_id: str = ""
    engine_endpoint: str = ""
    error_code: str = ""
    error_message: str = ""

    @classmethod
    def success(cls, game_id: str, container_id: str, engine_endpoint: str) -> JobResult:
        return cls(game_id, JobOutcome.SUCCESS, container_id, engine_endpoint)

    @classmethod
    def replay(cls, game_id: str, container_id: str = "", engine_endpoint: str = "") -> JobResult:
        return cls(game_id, JobOutcome.SUCCESS, container_id, engine_endpoint, JobErrorCode.REPLAY_NO_OP.value)

    @classmethod
    def failure(cls, game_id: str, code: JobErrorCode, message: str) -> JobResult:
        if code is JobErrorCode.REPLAY_NO_OP or not message:
            raise ValueError("a failure needs a failure code and an operator-readable message")
        return cls(game_id, JobOutcome.FAILURE, error_code=code.value, error_message=message)

    def to_fields(self) -> dict[str, str]:
        """The stream entry: every field present, even when empty (SPEC §3)."""
        return {
            "game_id": self.game_id,
            "outcome": self.outcome.value,
            "container_id": self.container_id,
            "engine_endpoint": self.engine_endpoint,
            "error_code": self.error_code,
            "error_message": self.error_message,
        }

    def as_dict(self) -> dict[str, str]:
        return self.to_fields()


@dataclass(frozen=True)
class StartJob:
    game_id: str
    image_ref: str


@dataclass(frozen=True)
class StopJob:
    game_id: str
    reason: str = ""


class InvalidJob(MalformedEntry):
    """A job entry that breaks the contract; ``game_id`` is empty when it has none (then it is skipped)."""

    def __init__(self, game_id: str, message: str) -> None:
        super().__init__(message)
        self.game_id = game_id
        self.message = message


@dataclass(frozen=True)
class EngineIsolation:
    """How an engine container is confined, beyond its memory and CPU limits (``GALAXY_ENGINE_*``).

    The defaults are the safe ones: an engine runs game code that may misbehave,
    so it gets no Linux capabilities, cannot gain privileges (setuid binaries,
    file capabilities) and cannot fork without end.  A read-only root
    filesystem and a non-root user depend on the image, so they are opt-in.
    """

    pids_limit: int = 256
    """Processes and threads the container may have at once; 0: no limit."""
    cap_add: tuple[str, ...] = ()
    """Capabilities given back after every one is dropped (``NET_BIND_SERVICE`` …)."""
    no_new_privileges: bool = True
    read_only_rootfs: bool = False
    """With it, ``/tmp`` is a small tmpfs (``ENGINE_TMPFS``) so the engine still has scratch space."""
    user: str = ""
    """``user``, ``uid`` or ``uid:gid`` to run as; empty: the image's own user."""


ENGINE_TMPFS = {"/tmp": "rw,nosuid,nodev,noexec,size=64m"}
"""The scratch space a read-only engine container gets."""

_CAPABILITY = re.compile(r"^[A-Z][A-Z_]*$")
_USER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")


def isolation_problem(isolation: EngineIsolation) -> str | None:
    """What is wrong with ``isolation`` (a sentence naming the variable), or ``None``."""
    if isolation.pids_limit < 0:
        return f"GALAXY_ENGINE_PIDS_LIMIT={isolation.pids_limit}: use a positive number (0: no limit)"
    for cap in isolation.cap_add:
        if not _CAPABILITY.match(cap) or cap.startswith("CAP_"):
            return f"GALAXY_ENGINE_CAP_ADD: {cap!r} is not a capability name like NET_BIND_SERVICE"
    if isolation.user and not _USER.match(isolation.user):
        return f"GALAXY_ENGINE_USER={isolation.user!r}: use a user name, a uid or uid:gid"
    return None


def parse_capabilities(raw: str) -> tuple[str, ...]:
    """``GALAXY_ENGINE_CAP_ADD`` (comma-separated, ``CAP_`` prefix optional, any case) as Docker's names."""
    names = (name.strip().upper() for name in raw.split(","))
    return tuple(name.removeprefix("CAP_") for name in names if name)


def container_name(game_id: str) -> str:
    return f"{CONTAINER_NAME_PREFIX}{game_id}"


def engine_endpoint(template: str, game_id: str) -> str:
    """``GALAXY_ENGINE_ENDPOINT_TEMPLATE`` for one game (only ``{game_id}`` is substituted)."""
    return template.replace("{game_id}", game_id)


def _nobody(game_id: str) -> bool:
    return False


def _game_id(fields: Mapping[str, str], known: Callable[[str], bool]) -> str:
    if first_unusable(fields, ["game_id"]):
        raise InvalidJob("", "game_id is not UTF-8 text")
    game_id = str(fields.get("game_id") or "").strip()
    if not game_id:
        raise InvalidJob("", "game_id is missing or empty")
    if len(game_id.encode()) > MAX_GAME_ID_BYTES or "\x00" in game_id:
        raise InvalidJob("", f"game_id longer than {MAX_GAME_ID_BYTES} bytes or with a NUL: no game can have it")
    problem = game_id_problem(game_id)
    if problem is not None and not known(game_id):  # a game with a record keeps its id
        raise InvalidJob(game_id, problem)
    return game_id


def decode_start_job(fields: Mapping[str, str], *, known: Callable[[str], bool] = _nobody) -> StartJob:
    """A ``runtime:start_jobs`` entry (``game_id``, ``image_ref``), or :class:`InvalidJob`.

    ``known(game_id)`` tells whether a game has a record: only then is an id
    that breaks the game-id rule served (it is asked about no other id).
    """
    game_id = _game_id(fields, known)
    if first_unusable(fields, ["image_ref"]):
        raise InvalidJob(game_id, "image_ref is not UTF-8 text")
    image_ref = str(fields.get("image_ref") or "")
    if not image_ref.strip():
        raise InvalidJob(game_id, "image_ref is missing or empty")
    if len(image_ref) > _MAX_IMAGE_REF or any(c.isspace() or not c.isprintable() for c in image_ref):
        raise InvalidJob(game_id, f"image_ref {image_ref[:80]!r} is not a Docker image reference")
    return StartJob(game_id, image_ref)


def decode_stop_job(fields: Mapping[str, str], *, known: Callable[[str], bool] = _nobody) -> StopJob:
    """A ``runtime:stop_jobs`` entry (``game_id``, optional ``reason``), or :class:`InvalidJob`.

    ``known``: as for :func:`decode_start_job`.
    """
    game_id = _game_id(fields, known)
    if first_unusable(fields, ["reason"]):
        raise InvalidJob(game_id, "reason is not UTF-8 text")
    reason = str(fields.get("reason") or "")
    if reason and reason not in StopReason.__members__.values():
        allowed = ", ".join(r.value for r in StopReason)
        raise InvalidJob(game_id, f"reason {reason[:80]!r} is not one of {allowed} (or empty)")
    return StopJob(game_id, reason)


@dataclass(frozen=True)
class RecordView:
    """The game's ``rtmanager.runtime_records`` row as a job reads it."""

    status: str
    container_id: str
    image_ref: str
    engine_endpoint: str
    docker_host: str = ""
    """The Docker host running its container (several hosts); empty with one."""


@dataclass(frozen=True)
class ContainerView:
    """The container named ``galaxy-game-{game_id}``, as Docker reports it."""

    container_id: str
    state: str
    """Docker's ``State.Status``: ``running``, ``exited``, ``created``, ``restarting`` …"""
    image_ref: str = ""
    """The image reference it was created from (``Config.Image``)."""

    @property
    def live(self) -> bool:
        return self.state in ("running", "restarting")


def is_start_replay(record: RecordView | None, container: ContainerView | None) -> bool:
    """The game already runs its live container: a start is a replay.

    A record ``running`` whose container has died (or is gone) is not: that start
    is a real restart.
    """
    return (
        record is not None
        and record.status == RecordStatus.RUNNING
        and container is not None
        and container.container_id == record.container_id
        and container.live
    )


def start_conflict(record: RecordView | None, container: ContainerView | None, image_ref: str) -> str | None:
    """Why a start of ``image_ref`` conflicts with the game's live container, or ``None``.

    Only the game's own live container counts (the one a replay would
    answer with); what it runs is Docker's word, the record's when Docker does
    not say.  A dead container or a stray one under the name is replaced, not
    a conflict.
    """
    if record is None or container is None or not is_start_replay(record, container):
        return None
    running = container.image_ref or record.image_ref
    if running == image_ref:
        return None
    return (
        f"the game's live container {container.container_id[:12]} runs {running}, not {image_ref}: "
        "stop the game first, then start it with the new image"
    )


def is_stop_replay(record: RecordView | None, container: ContainerView | None) -> bool:
    """Nothing to stop: the game is stopped (or unknown) and no container carries its name."""
    return (record is None or record.status == RecordStatus.STOPPED) and container is None


class WrongDockerHost(GalaxyError):
    """The game's container lives on another Docker host: the job belongs to that host's worker."""

    def __init__(self, host: str) -> None:
        super().__init__(f"the game runs on Docker host {host}")
        self.host = host


def place(current_host: str, running_by_host: Mapping[str, int], hosts: Sequence[str]) -> str:
    """The Docker host for a game's job: where it runs already, else the host running fewest games."""
    if current_host in hosts:
        return current_host
    return min(hosts, key=lambda host: (running_by_host.get(host, 0), hosts.index(host)))


def check_docker_host(record: RecordView | None, this_host: str) -> None:
    """Raise :class:`WrongDockerHost` when the record says another host holds the game's container."""
    elsewhere = record is not None and record.docker_host not in ("", this_host)
    if this_host and elsewhere and record is not None and record.status != RecordStatus.STOPPED:
        raise WrongDockerHost(record.docker_host)
