"""Structured log lines in logfmt: ``event=… game_id=… stream_entry_id=…``.

Celery owns the log handlers of its processes, so instead of a second logging
stack every message is rendered as logfmt text: a grep for
``game_id=g-17`` or ``stream_entry_id=1700000000000-3`` finds every line of
one game or one entry, and log shippers parse the pairs without configuration.
"""

from __future__ import annotations

import logging
from typing import Any


def logfmt(event: str, **fields: Any) -> str:
    """Render ``event`` and ``fields`` as one logfmt line (``None`` values are left out)."""
    parts = [f"event={_quote(event)}"]
    parts.extend(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)
    return " ".join(parts)


def _quote(value: Any) -> str:
    text = str(value)
    if text and not any(ch in text for ch in ' ="\\\n\r\t'):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


class EventLogger:
    """A thin wrapper so call sites read ``log.info("bridge_started", stream=…)``."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def debug(self, event: str, **fields: Any) -> None:
        if self._logger.isEnabledFor(logging.DEBUG):
            self._logger.debug(logfmt(event, **fields))

    def info(self, event: str, **fields: Any) -> None:
        self._logger.info(logfmt(event, **fields))

    def warning(self, event: str, **fields: Any) -> None:
        self._logger.warning(logfmt(event, **fields))

    def error(self, event: str, **fields: Any) -> None:
        self._logger.error(logfmt(event, **fields))

    def exception(self, event: str, **fields: Any) -> None:
        self._logger.exception(logfmt(event, **fields))


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)
