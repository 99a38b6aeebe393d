"""A registry stand-in on loopback that keeps an image pull waiting: a long Docker call without a registry.

Docker talks plain HTTP to a registry on ``127.0.0.1`` (loopback registries
are insecure by default).  Every request waits until :meth:`SlowRegistry.release`
(or ``hold_seconds``), then is answered 404, so the pull ends in
``image_not_found``: the stand-in never serves an image, it only makes a
start job spend as long in Docker as a test needs.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from galaxy_tasks.testing.services import free_loopback_port


class SlowRegistry:
    def __init__(self, hold_seconds: float = 120.0) -> None:
        self.port = free_loopback_port()
        self.requests: list[str] = []
        self._released = threading.Event()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.requests.append(self.path)
                registry._released.wait(hold_seconds)
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errors":[{"code":"NAME_UNKNOWN","message":"held by the test"}]}')

            def do_HEAD(self) -> None:
                self.do_GET()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def image(self, name: str = "galaxy/slow-engine:1") -> str:
        return f"127.0.0.1:{self.port}/{name}"

    def release(self) -> None:
        """Answer every waiting and later request at once."""
        self._released.set()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
