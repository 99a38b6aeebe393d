"""Private Redis and PostgreSQL servers that a test may stop and start again.

The shared test services (``tests.support.services``) must never be stopped by
a test; outage tests run their own servers instead, on free loopback ports,
with their data in directories of their own.  Every server process is started
and ended by its pid (a PostgreSQL postmaster by the pid in its
``postmaster.pid``, which ``pg_ctl`` reads), and a missing binary fails the
test with a message saying what to install — never a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from galaxy_tasks.testing.cluster import wait_until
from galaxy_tasks.testing.services import free_loopback_port


def _require_binary(name: str, install_hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"`{name}` is required by this test and is not on PATH: {install_hint}")
    return path


# --------------------------------------------------------------------------------------- Redis


@dataclass
class PrivateRedis:
    """A ``redis-server`` of one test, restartable on the same port and data directory.

    Persistence is switched on the way production runs Redis (append-only file,
    fsync on every write): a restart then loses nothing that Redis
    acknowledged, which is the premise of "Redis restarted, nothing lost".
    """

    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_loopback_port)
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    appendfsync: str = "always"
    """``everysec`` for the production-like trade-off: up to a second of writes lost to a crash."""
    extra_args: tuple[str, ...] = ()
    """More ``redis-server`` options (``--aclfile FILE``)."""
    ping_user: tuple[str, str] | None = None
    """Username and password the start-up check pings with (an ACL without an anonymous user)."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self, timeout: float = 20) -> None:
        binary = _require_binary(
            "redis-server", "install Redis (`apt-get install redis-server`), or run `bash scripts/services.sh`"
        )
        if self.alive():
            raise RuntimeError(f"private Redis already runs (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("ab")
        try:
            self.popen = subprocess.Popen(
                [
                    binary,
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--dir",
                    str(self.data_dir),
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    self.appendfsync,
                    "--save",
                    "",
                    "--daemonize",
                    "no",
                    "--protected-mode",
                    "no",
                    *self.extra_args,
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log_file.close()
        self.starts += 1
        username, password = self.ping_user or (None, None)
        client = redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=username,
            password=password,
            socket_timeout=1,
            socket_connect_timeout=1,
        )
        try:
            wait_until(
                lambda: self._exited_at_start() or client.ping(),
                timeout=timeout,
                what=f"private redis-server on port {self.port} to answer (log: {self.log_path})",
            )
        finally:
            client.close()
        if not self.alive():
            raise RuntimeError(f"redis-server exited at start:\n{self.log_tail()}")

    def _exited_at_start(self) -> bool:
        return not self.alive()

    def kill9(self) -> None:
        """SIGKILL by pid, as a crashed machine would stop it: no last fsync."""
        if self.popen is not None and self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.popen = None

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM by pid and wait: Redis fsyncs its append-only file and exits."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self.popen = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


# ---------------------------------------------------------------------------------- PostgreSQL

_PG_INSTALL_HINT = "install the PostgreSQL server (`apt-get install postgresql`)"


def postgres_bin_dir() -> Path:
    """The ``bin`` folder of the newest PostgreSQL server installed (Debian layout, then PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.name.split(".")],
    )
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(initdb).parent
    raise RuntimeError(f"`initdb` and `pg_ctl` are required by this test and were not found: {_PG_INSTALL_HINT}")


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of one test (``initdb``), stopped and started with ``pg_ctl``.

    ``initdb`` refuses to run as root, so under root every server command runs
    as the ``postgres`` OS user (``runuser``) in a directory that user owns;
    pytest's own ``tmp_path`` is not reachable for it.
    """

    bin_dir: Path = field(default_factory=postgres_bin_dir)
    port: int = field(default_factory=free_loopback_port)

    def __post_init__(self) -> None:
        self._as_user: list[str] = []
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            _require_binary("runuser", "install util-linux (`apt-get install util-linux`)")
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError(
                    "running as root, this test needs the `postgres` OS user to run initdb: " + _PG_INSTALL_HINT
                ) from None
            self._as_user = ["runuser", "-u", "postgres", "--"]
            self._owner = (user.pw_uid, user.pw_gid)
        # Created last, once every requirement is known to be there (nothing to clean up otherwise).
        self.root = Path(tempfile.mkdtemp(prefix="galaxy-pg-"))
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log_path = self.root / "server.log"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/galaxy"

    def _run(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            [*self._as_user, *args], capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                f"server log:\n{self.log_tail()}"
            )

    def init(self) -> None:
        self.root.chmod(0o755)
        self.socket_dir.mkdir(exist_ok=True)
        if self._owner is not None:
            for path in (self.root, self.socket_dir):
                os.chown(path, *self._owner)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            timeout=120,
        )

    def start(self) -> None:
        # fsync=off: these tests stop the server cleanly (a fast stop writes a shutdown
        # checkpoint); they are about refused connections, not about surviving a power cut.
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-o",
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w",
            "-t",
            "60",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl -m MODE stop``: the postmaster (by the pid in ``postmaster.pid``) ends its sessions."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def postmaster_pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def destroy(self) -> None:
        """Stop the server whatever its state (fast, then immediate, then SIGKILL by pid) and remove its files."""
        pid = self.postmaster_pid()
        if pid is not None:
            for mode in ("fast", "immediate"):
                try:
                    self.stop(mode)
                    break
                except (RuntimeError, subprocess.TimeoutExpired):
                    continue
            if self._pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while self._pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    @staticmethod
    def _pid_alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
