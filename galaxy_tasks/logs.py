"""Structured log lines: logfmt text by default (``event=… game_id=… stream_entry_id=…``), JSON on demand.

Celery owns the log handlers of its processes, so instead of a second logging
stack every message is a record of the standard ``logging`` tree carrying its
event and fields; :func:`install` (called from Celery's logging signals and by
the CLI) gives Celery's handlers the formatter ``GALAXY_LOG_FORMAT`` names:

* ``logfmt`` (the default): Celery's line prefix, then the pairs — a grep for
  ``game_id=g-17`` finds every line of one game — and, inside a task,
  ``task_id=`` and ``task=``;
* ``json``: one object per line for every record, Celery's own included:
  ``ts``, ``level``, ``logger``, ``pid``, ``task_id`` and ``task`` inside a task,
  ``event`` and the fields (or ``message`` for a plain record).

``GALAXY_LOG_LEVEL``, when set, is the level of galaxy_tasks' own loggers
(Celery's ``--loglevel`` stays the level of everything else; unset, it is the
level of both).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

LOG_FORMATS = ("logfmt", "json")
PACKAGE_LOGGER = "galaxy_tasks"
_EVENT = "galaxy_event"
_FIELDS = "galaxy_fields"


def logfmt(event: str, **fields: Any) -> str:
    """Render ``event`` and ``fields`` as one logfmt line (``None`` values are left out)."""
    parts = [f"event={_quote(event)}"]
    parts.extend(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)
    return " ".join(parts)


_NEEDS_QUOTES = re.compile(r'[ ="\\\n\r\t]')


def _quote(value: Any) -> str:
    text = str(value)
    if text and _NEEDS_QUOTES.search(text) is None:
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


class EventLogger:
    """A thin wrapper so call sites read ``log.info("bridge_started", stream=…)``."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, fields: dict[str, Any], exc_info: bool = False) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, logfmt(event, **fields), exc_info=exc_info, extra={_EVENT: event, _FIELDS: fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields, exc_info=True)


def get_logger(name: str) -> EventLogger:
    return EventLogger(name)


TaskContext = Callable[[], "tuple[str, str] | None"]
"""The (task id, task name) of the task the current thread runs, or ``None``."""


def _no_task() -> tuple[str, str] | None:
    return None


class LogfmtFormatter(logging.Formatter):
    """The text format: ``fmt``'s prefix and the message, then ``task_id=``/``task=`` inside a task."""

    def __init__(self, fmt: str | None = None, task_context: TaskContext = _no_task) -> None:
        super().__init__(fmt)
        self._task_context = task_context

    def format(self, record: logging.LogRecord) -> str:
        task = self._task_context()
        # Celery's task-logger format names %(task_name)s and %(task_id)s (its TaskFormatter sets them).
        record.__dict__.update(task_id=task[0] if task else "???", task_name=task[1] if task else "???")
        line = super().format(record)
        if task is None or task[0] in line:
            return line  # Celery's own task lines name the task already
        head, newline, rest = line.partition("\n")  # a traceback stays below the line it belongs to
        return f"{head} task_id={_quote(task[0])} task={_quote(task[1])}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, pid, the task, the event and its fields."""

    def __init__(self, task_context: TaskContext = _no_task) -> None:
        super().__init__()
        self._task_context = task_context

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
        }
        task = self._task_context()
        if task is not None:
            line["task_id"], line["task"] = task
        event = getattr(record, _EVENT, None)
        if event is None:
            line["message"] = record.getMessage()
        else:
            line["event"] = event
            for key, value in getattr(record, _FIELDS, {}).items():
                if value is not None and key not in line:
                    line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def _iso_utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created * 1000) % 1000:03d}Z"


def formatter_for(log_format: str, fmt: str | None, task_context: TaskContext = _no_task) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(task_context)
    return LogfmtFormatter(fmt, task_context)


def install(
    handlers: Iterable[logging.Handler],
    *,
    log_format: str,
    level: str,
    fmt: str | None = None,
    task_context: TaskContext = _no_task,
) -> None:
    """Give ``handlers`` the formatter of ``log_format`` and galaxy_tasks' loggers ``level`` (empty: the root's)."""
    for handler in handlers:
        handler.setFormatter(formatter_for(log_format, fmt, task_context))
    logging.getLogger(PACKAGE_LOGGER).setLevel(level.upper() if level else logging.NOTSET)
