"""A real Docker Engine for the tests: a private dockerd, and the locally built engine image.

No registry is reachable, so the engine image is made here: a rootfs holding
only ``/bin/busybox`` from Debian's busybox-static (with a link per applet) and
a ``/www/healthz`` file, imported with ``docker import``.  Its default command
serves ``/www`` with a background ``busybox httpd`` on ``127.0.0.1:$ENGINE_PORT``; tests run
it with host networking, so it listens on loopback only, and use ``sh`` to make
it exit, allocate memory, fail a HEALTHCHECK or restart.

The daemon is the test session's own (data root, exec root, pid file and
socket in a temporary folder, no bridge and no iptables), started on first use
and ended by pid at the end of the session, or ``GALAXY_TEST_DOCKER_HOST`` when
set.  Nothing falls back to the machine's default socket: a test that needs
Docker fails loudly when no daemon can be had.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker

DOCKER_HOST = os.environ.get("GALAXY_TEST_DOCKER_HOST", "")
ENGINE_IMAGE = "galaxy-engine-test:latest"
ENGINE_HEALTH_PATH = "/healthz"
BUSYBOX = Path("/bin/busybox")
_ENGINE_SCRIPT = """#!/bin/sh
# The test engine: serves /www (and so /healthz) on loopback until told otherwise.  httpd runs
# in the background, so `killall httpd` stops the serving without ending the container and
# `httpd -p 127.0.0.1:$ENGINE_PORT -h /www` (docker exec) starts it again.
httpd -p "127.0.0.1:${ENGINE_PORT:-8080}" -h /www
trap 'exit 0' TERM
while :; do sleep 1; done
"""


def free_loopback_port() -> int:
    """A TCP port nothing listens on at 127.0.0.1 right now (for a host-networked engine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_docker(host: str) -> docker.DockerClient:
    client = docker.DockerClient(base_url=host, timeout=60)
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        raise RuntimeError(f"no Docker Engine answers at {host}: {exc}") from exc
    return client


class PrivateDockerd:
    """A dockerd of our own under ``/tmp/gtd-*`` that can be stopped and started again on the same data.

    Stopped and started by pid; :meth:`close` also removes its containers,
    undoes its mounts and deletes its directory.
    """

    def __init__(self) -> None:
        binary = shutil.which("dockerd")
        if binary is None:
            raise RuntimeError("dockerd is required; install it with `bash scripts/docker.sh`")
        if os.geteuid() != 0:
            raise RuntimeError("a private dockerd needs root; or set GALAXY_TEST_DOCKER_HOST")
        self._binary = binary
        # Short paths: containerd's shim sockets live under the exec root and unix sockets are
        # limited to 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="gtd-", dir="/tmp"))
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
                    str(self.root / "data"),
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
                    raise RuntimeError(f"the private dockerd did not start:\n{tail}") from None
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


def build_engine_image(client: docker.DockerClient, tag: str = ENGINE_IMAGE) -> str:
    """``docker import`` of a busybox-only rootfs; returns the image id."""
    if not BUSYBOX.exists():
        raise RuntimeError(f"{BUSYBOX} is required; install busybox-static with `bash scripts/docker.sh`")
    applets = subprocess.run([str(BUSYBOX), "--list"], check=True, capture_output=True, text=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add_dir(tar, "bin")
        _add_dir(tar, "www")
        _add_dir(tar, "tmp", mode=0o1777)
        tar.add(str(BUSYBOX), arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type = tarfile.SYMTYPE
                link.linkname = "busybox"
                tar.addfile(link)
        _add_file(tar, "www/healthz", b"ok\n")
        _add_file(tar, "engine.sh", _ENGINE_SCRIPT.encode(), mode=0o755)
    repository, _, version = tag.partition(":")
    client.api.import_image_from_data(
        buffer.getvalue(),
        repository=repository,
        tag=version or "latest",
        changes=['CMD ["/bin/sh", "/engine.sh"]', "ENV ENGINE_PORT=8080 PATH=/bin"],
    )
    return str(client.images.get(tag).id)


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    tar.addfile(info)


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))
