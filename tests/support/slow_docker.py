"""A Docker Engine whose container list answers late: a unix-socket proxy in front of the private dockerd.

Every request passes through unchanged; the answer to a container list
(``GET /v…/containers/json``) is held back ``delay_seconds`` after Docker
made it, so whoever lists sees Docker as it was when it asked — the slow list
of the reconcile/start race.  Bytes are only copied: the proxy reaches the
private dockerd's socket and nothing else.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

_LIST = b"/containers/json"


class SlowListDocker:
    def __init__(self, upstream_host: str, delay_seconds: float) -> None:
        self._upstream = upstream_host.removeprefix("unix://")
        self._delay = delay_seconds
        self._dir = Path(tempfile.mkdtemp(prefix="gts-", dir="/tmp"))
        self._path = str(self._dir / "docker.sock")
        self.host = f"unix://{self._path}"
        self.lists_delayed = 0
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(self._path)
        self._server.listen(64)
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self._upstream)
            listed = threading.Event()  # this connection's last request was a list: hold its answer
            threading.Thread(target=self._requests, args=(client, upstream, listed), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, listed), daemon=True).start()

    def _requests(self, source: socket.socket, target: socket.socket, listed: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                first_line = chunk.split(b"\r\n", 1)[0]
                if first_line.startswith(b"GET ") and _LIST in first_line.split(b"?", 1)[0]:
                    listed.set()
                target.sendall(chunk)
        _close(source, target)

    def _answers(self, source: socket.socket, target: socket.socket, listed: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                if listed.is_set():
                    listed.clear()
                    self.lists_delayed += 1
                    time.sleep(self._delay)
                target.sendall(chunk)
        _close(source, target)

    def close(self) -> None:
        self._closed.set()
        self._server.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)
        with contextlib.suppress(OSError):
            self._dir.rmdir()


def _close(*sockets: socket.socket) -> None:
    for s in sockets:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()
