"""logfmt lines: one event per line, values quoted only when they must be."""

from __future__ import annotations

import logging

import pytest

from galaxy_tasks.logs import get_logger, logfmt


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
