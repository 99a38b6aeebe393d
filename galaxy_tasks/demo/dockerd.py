"""A Docker Engine of our own: for the tests, the benchmarks and the one-command local run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker

from galaxy_tasks.domain.errors import LocalRunFailed


class PrivateDockerd:
    """A dockerd of our own (socket, exec root, pid file under ``/tmp/<prefix>*``), stoppable and restartable.

    Its data lives under that folder too unless ``data_root`` says where (the
    local run keeps images in ``.run/docker`` across runs).  Stopped and
    started by pid, with ``--bridge=none --iptables=false``: it changes
    nothing of the host's network.  :meth:`close` also removes its
    containers, undoes its mounts and deletes the temporary folder.
    """

    def __init__(self, data_root: Path | None = None, *, prefix: str = "gtd-") -> None:
        binary = shutil.which("dockerd")
        if binary is None:
            raise LocalRunFailed("dockerd is required; install it with `bash scripts/docker.sh`")
        if os.geteuid() != 0:
            raise LocalRunFailed("a private dockerd needs root (or point DOCKER_HOST at a running Docker Engine)")
        self._binary = binary
        # Short paths: containerd's shim sockets live under the exec root and unix sockets are
        # limited to 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.data_root = data_root
        self.host = f"unix://{self.root}/docker.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        log_path = self.root / "dockerd.log"
        with log_path.open("ab") as log:
            self._process = process = subprocess.Popen(
                [
                    self._binary,
                    "--host",
                    self.host,
                    "--data-root",
                    str(self.data_root or self.root / "data"),
                    "--exec-root",
                    str(self.root / "exec"),
                    "--pidfile",
                    str(self.root / "dockerd.pid"),
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--shutdown-timeout=2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                docker.DockerClient(base_url=self.host, timeout=5).ping()
                return
            except docker.errors.DockerException:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = log_path.read_text(errors="replace")[-2000:]
                    raise LocalRunFailed(f"the private dockerd did not start:\n{tail}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM to our dockerd (its containers stop with it); SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def close(self) -> None:
        if self._process is not None:
            _remove_all_containers(self.host)
        self.stop()
        _unmount_below(self.root)
        if self.data_root is not None:
            _unmount_below(self.data_root)
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def private_dockerd() -> Iterator[str]:
    """Start a dockerd of our own and yield its ``unix://`` host; stop it by pid afterwards."""
    daemon = PrivateDockerd()
    try:
        daemon.start()
        yield daemon.host
    finally:
        daemon.close()


def _unmount_below(root: Path) -> None:
    """Undo what dockerd leaves mounted under its roots (the ``netns/default`` bind mount)."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for mount_point in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)


def _remove_all_containers(host: str) -> None:
    try:
        client = docker.DockerClient(base_url=host, timeout=30)
        for container in client.containers.list(all=True):
            container.remove(force=True)
    except docker.errors.DockerException:
        pass  # the daemon is going away anyway
