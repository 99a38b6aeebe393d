"""The demo and test engine image, built locally: no registry needed.

A rootfs holding only ``/bin/busybox`` from Debian's busybox-static (with a
link per applet) and ``/www/healthz``, imported with ``docker import``.  Its
default command serves ``/www`` with a background ``busybox httpd`` on
``127.0.0.1:<port>`` — ``$ENGINE_PORT``, else the port of the
``GALAXY_ENGINE_ENDPOINT`` a start job gives it, else 8080 — so with host
networking it listens on loopback only; ``killall httpd`` stops the serving
without ending the container.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import docker

from galaxy_tasks.domain.errors import LocalRunFailed

ENGINE_IMAGE = "galaxy-engine-test:latest"
ENGINE_HEALTH_PATH = "/healthz"
BUSYBOX = Path("/bin/busybox")
_ENGINE_SCRIPT = """#!/bin/sh
# The engine: serves /www (and so /healthz) on loopback until told otherwise.  httpd runs in the
# background, so `killall httpd` stops the serving without ending the container, and
# `httpd -p 127.0.0.1:<port> -h /www` (docker exec) starts it again.
port="${ENGINE_PORT:-}"
if [ -z "$port" ] && [ -n "$GALAXY_ENGINE_ENDPOINT" ]; then
  rest="${GALAXY_ENGINE_ENDPOINT##*:}"
  port="${rest%%/*}"
fi
httpd -p "127.0.0.1:${port:-8080}" -h /www
trap 'exit 0' TERM
# A crash on request: `docker exec <container> kill -USR1 1` ends the engine with code 2, so an
# on-failure restart policy brings it back (a `docker kill` is a stop Docker never restarts).
trap 'exit 2' USR1
while :; do sleep 1; done
"""


def build_engine_image(client: docker.DockerClient, tag: str = ENGINE_IMAGE) -> str:
    """``docker import`` of a busybox-only rootfs; returns the image id."""
    if not BUSYBOX.exists():
        raise LocalRunFailed(f"{BUSYBOX} is required; install busybox-static with `bash scripts/docker.sh`")
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
        changes=['CMD ["/bin/sh", "/engine.sh"]', "ENV PATH=/bin"],
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
