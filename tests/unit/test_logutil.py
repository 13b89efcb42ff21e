"""setup_logging: text and JSON line formats with structured fields."""
from __future__ import annotations

import io
import json
import logging
import re

import pytest

from skiff.logutil import setup_logging


@pytest.fixture
def restore_root():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)


def test_text_format(restore_root):
    buf = io.StringIO()
    setup_logging("text", "INFO", stream=buf)
    logging.getLogger("skiff.scheduler").info("bound pod", extra={"fields": {"pod": "default/web", "node": "n1",
                                                                             "why": "two words"}})
    logging.getLogger("skiff.scheduler").debug("hidden")
    line = buf.getvalue()
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO scheduler: bound pod '
                        r'pod=default/web node=n1 why="two words"\n', line), line


def test_json_format(restore_root):
    buf = io.StringIO()
    setup_logging("json", "DEBUG", stream=buf)
    logging.getLogger("skiff.agent").warning("container %s exited", "web", extra={"fields": {"code": 1, "oom": False}})
    logging.getLogger("other").debug("plain")
    lines = buf.getvalue().splitlines()
    a, b = (json.loads(x) for x in lines)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", a["ts"])
    assert {k: v for k, v in a.items() if k != "ts"} == {"level": "WARNING", "logger": "agent",
                                                       "msg": "container web exited", "code": 1, "oom": False}
    assert b["logger"] == "other" and b["msg"] == "plain" and b["level"] == "DEBUG"


def test_setup_twice_replaces_own_handler(restore_root):
    buf1, buf2 = io.StringIO(), io.StringIO()
    setup_logging("text", stream=buf1)
    setup_logging("json", stream=buf2)
    logging.getLogger("skiff.x").info("once")
    assert buf1.getvalue() == ""
    assert len(buf2.getvalue().splitlines()) == 1


def test_exceptions_and_bad_format(restore_root):
    buf = io.StringIO()
    setup_logging("json", stream=buf)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("skiff.x").exception("failed")
    doc = json.loads(buf.getvalue())
    assert "ValueError: boom" in doc["exc"]
    with pytest.raises(ValueError):
        setup_logging("xml")


def test_format_ts_across_seconds():
    """The second's text is reused within a second and redone for the next (and back)."""
    from skiff.logutil import format_ts
    assert format_ts(86400.5) == "1970-01-02T00:00:00.500Z"
    assert format_ts(86400.875) == "1970-01-02T00:00:00.875Z"
    assert format_ts(86401.0) == "1970-01-02T00:00:01.000Z"
    assert format_ts(86399.25) == "1970-01-01T23:59:59.250Z"
