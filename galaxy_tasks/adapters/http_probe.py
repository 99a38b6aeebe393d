"""The HTTP health probe of an engine: GET ``endpoint + path`` with a timeout; 2xx is healthy."""

from __future__ import annotations

import urllib.error
import urllib.request


class HttpProber:
    def __init__(self, path: str, timeout_seconds: float) -> None:
        self._path = path if path.startswith("/") else f"/{path}"
        self._timeout = timeout_seconds

    def probe(self, endpoint: str) -> tuple[bool, str]:
        """``(healthy, error)``: the error says what failed, for ``probe_failed``'s ``last_error``."""
        url = endpoint.rstrip("/") + self._path
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as reply:
                status = int(reply.status)
        except urllib.error.HTTPError as exc:
            return False, f"GET {url}: HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return False, f"GET {url}: {reason}"
        if 200 <= status < 300:
            return True, ""
        return False, f"GET {url}: HTTP {status}"
