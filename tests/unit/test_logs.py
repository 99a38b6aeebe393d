"""Log lines: logfmt with values quoted only when they must be; JSON on demand; the task named inside a task."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable

import pytest

from galaxy_tasks.logs import EventLogger, JsonFormatter, LogfmtFormatter, get_logger, install, logfmt


def test_event_comes_first_then_fields_in_call_order() -> None:
    line = logfmt("bridge_started", stream="runtime:health_events", holder="h:1:ab")
    assert line == "event=bridge_started stream=runtime:health_events holder=h:1:ab"


def test_none_values_are_left_out() -> None:
    assert logfmt("x", game_id=None, entries=0) == "event=x entries=0"


def test_non_string_values_are_rendered_with_str() -> None:
    assert logfmt("x", entries=3, published=True, lag=1.5) == "event=x entries=3 published=True lag=1.5"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        ("missing game_id", '"missing game_id"'),
        ("a=b", '"a=b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\tmp", '"C:\\\\tmp"'),
        ("two\nlines", '"two\\nlines"'),
        ("carriage\rreturn", '"carriage\\rreturn"'),
        ("tab\there", '"tab\there"'),
        ("", '""'),
    ],
)
def test_values_that_need_it_are_quoted_and_escaped(value: str, rendered: str) -> None:
    assert logfmt("x", detail=value) == f"event=x detail={rendered}"


@pytest.mark.parametrize("value", ["g-17", "1700000000000-3", "runtime:health_events", "running->engine_unreachable"])
def test_plain_values_are_not_quoted(value: str) -> None:
    assert logfmt("x", v=value) == f"event=x v={value}"


def test_the_event_itself_is_quoted_when_needed() -> None:
    assert logfmt("odd event") == 'event="odd event"'


@pytest.mark.parametrize("value", ["a\nevent=forged", "a\r\nevent=forged", "a\revent=forged"])
def test_a_value_never_breaks_the_line(value: str) -> None:
    # Values come from stream entries (game_id, details); a line break in one
    # must not let it forge a second log line.
    line = logfmt("health_event_skipped", game_id=value)
    assert line.splitlines() == [line]


def test_event_logger_renders_logfmt_at_each_level(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("tests.unit.logs")
    with caplog.at_level(logging.DEBUG, logger="tests.unit.logs"):
        log.debug("d", a=1)
        log.info("i", b="x y")
        log.warning("w")
        log.error("e", c=None)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.DEBUG, "event=d a=1"),
        (logging.INFO, 'event=i b="x y"'),
        (logging.WARNING, "event=w"),
        (logging.ERROR, "event=e"),
    ]


def test_event_logger_skips_debug_lines_when_debug_is_off(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("tests.unit.logs.quiet")
    with caplog.at_level(logging.INFO, logger="tests.unit.logs.quiet"):
        log.debug("d", a=1)
        log.info("i")
    assert [r.getMessage() for r in caplog.records] == ["event=i"]


def test_event_logger_exception_keeps_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log = get_logger("tests.unit.logs.exc")
    with caplog.at_level(logging.ERROR, logger="tests.unit.logs.exc"):
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed", step="x")
    (record,) = caplog.records
    assert record.getMessage() == "event=failed step=x"
    assert record.exc_info is not None


def record_of(logger_name: str, emit: Callable[[EventLogger], None]) -> logging.LogRecord:
    captured: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            captured.append(record)

    keep = Keep()
    logger = logging.getLogger(logger_name)
    logger.addHandler(keep)
    logger.setLevel(logging.DEBUG)
    try:
        emit(EventLogger(logger_name))
    finally:
        logger.removeHandler(keep)
    assert len(captured) == 1
    return captured[0]


IN_A_TASK = ("6f1c-task-id", "gamemaster.apply_health_event")


def test_json_lines_carry_the_event_its_fields_and_the_task() -> None:
    record = record_of("galaxy_tasks.t1", lambda log: log.info("runtime_status_transitioned", game_id="g-1", turn=3))

    line = json.loads(JsonFormatter(lambda: IN_A_TASK).format(record))

    assert line["event"] == "runtime_status_transitioned"
    assert (line["game_id"], line["turn"]) == ("g-1", 3)
    assert (line["task_id"], line["task"]) == IN_A_TASK
    assert (line["level"], line["logger"]) == ("info", "galaxy_tasks.t1")
    assert line["ts"].endswith("Z")


def test_json_lines_of_plain_records_keep_the_message_and_outside_a_task_name_none() -> None:
    record = logging.LogRecord("celery.worker", logging.WARNING, __file__, 1, "Connection to %s lost", ("redis",), None)

    line = json.loads(JsonFormatter().format(record))

    assert line["message"] == "Connection to redis lost"
    assert "task_id" not in line


def test_a_json_line_is_one_line_whatever_the_values_and_keeps_the_traceback() -> None:
    def failing(log: EventLogger) -> None:
        try:
            raise ValueError("bad\nvalue")
        except ValueError:
            log.exception("entry_failed", game_id="g\n2", entry=b"\xff", missing=None)

    text = JsonFormatter().format(record_of("galaxy_tasks.t2", failing))

    assert "\n" not in text
    line = json.loads(text)
    assert line["game_id"] == "g\n2"
    assert "missing" not in line
    assert "ValueError: bad" in line["exception"]


def test_logfmt_lines_inside_a_task_end_with_its_id_and_name() -> None:
    record = record_of("galaxy_tasks.t3", lambda log: log.info("bridge_batch", entries=5))

    line = LogfmtFormatter("%(levelname)s %(message)s", lambda: IN_A_TASK).format(record)

    assert line == "INFO event=bridge_batch entries=5 task_id=6f1c-task-id task=gamemaster.apply_health_event"


def test_logfmt_lines_outside_a_task_and_celerys_own_task_lines_are_left_as_they_are() -> None:
    record = record_of("galaxy_tasks.t4", lambda log: log.info("bridge_batch", entries=5))
    task_format = "%(task_name)s[%(task_id)s]: %(message)s"

    assert LogfmtFormatter("%(message)s").format(record) == "event=bridge_batch entries=5"
    assert LogfmtFormatter(task_format, lambda: IN_A_TASK).format(record) == (
        "gamemaster.apply_health_event[6f1c-task-id]: event=bridge_batch entries=5"
    )


def test_install_sets_the_format_on_the_handlers_and_the_level_of_galaxy_tasks_loggers_only() -> None:
    handler = logging.StreamHandler(io.StringIO())
    package = logging.getLogger("galaxy_tasks")
    before = package.level
    try:
        install([handler], log_format="json", level="warning")

        assert isinstance(handler.formatter, JsonFormatter)
        assert not logging.getLogger("galaxy_tasks.service.bridge").isEnabledFor(logging.INFO)
        assert logging.getLogger("galaxy_tasks.service.bridge").isEnabledFor(logging.WARNING)
    finally:
        package.setLevel(before)
