"""Logging setup shared by every skiff daemon: one line per event, text for people, JSON for machines.

Structured fields travel in ``extra={"fields": {...}}``::

    log.info("bound pod", extra={"fields": {"pod": "default/web", "node": "n1"}})

Text:  ``2026-11-28T10:00:00.123Z INFO scheduler: bound pod pod=default/web node=n1``
JSON:  ``{"ts": "2026-11-28T10:00:00.123Z", "level": "INFO", "logger": "scheduler", "msg": "bound pod",
"pod": "default/web", "node": "n1"}``

The "skiff." prefix of logger names is dropped in the output ("skiff.scheduler" -> "scheduler").
"""
from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any, TextIO

__all__ = ["setup_logging", "TextFormatter", "JSONFormatter", "format_ts"]

_HANDLER_MARK = "_skiff_handler"


_last_second: tuple = (None, "")    # the last second formatted and its text (one tuple: threads
                                    # log too, and each reads both halves of the same one)


def format_ts(t: float) -> str:
    """RFC 3339 UTC with milliseconds: 2026-11-28T10:00:00.123Z."""
    global _last_second
    secs = int(t)
    ms = int((t - secs) * 1000)
    last = _last_second
    if last[0] != secs:         # lines come many a second: strftime once a second
        last = _last_second = (secs, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)))
    return f"{last[1]}.{ms:03d}Z"


def _short_name(name: str) -> str:
    return name[6:] if name.startswith("skiff.") else name


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    f = getattr(record, "fields", None)
    return f if isinstance(f, dict) else {}


_QUOTE = re.compile(r'[ "=\n\t]')    # a value holding one of these is written quoted


def _text_value(v: Any) -> str:
    if isinstance(v, str):
        s = v
    elif v is None or isinstance(v, (bool, int, float)):
        s = json.dumps(v)
    else:
        s = json.dumps(v, separators=(",", ":"), default=str)
    if s == "" or _QUOTE.search(s):
        return json.dumps(s)
    return s


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        parts = [format_ts(record.created), record.levelname, _short_name(record.name) + ":",
                 record.getMessage()]
        search = _QUOTE.search
        for k, v in _fields(record).items():
            # a plain string as it is (most values), else quoted or encoded by _text_value
            parts.append(f"{k}={v}" if type(v) is str and v and not search(v) else f"{k}={_text_value(v)}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": format_ts(record.created),
            "level": record.levelname,
            "logger": _short_name(record.name),
            "msg": record.getMessage(),
        }
        for k, v in _fields(record).items():
            if k not in ("ts", "level", "logger", "msg"):
                out[k] = v
            else:
                out["field." + k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, separators=(",", ":"))


def setup_logging(fmt: str = "text", level: str | int = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Configure the root logger: one handler on ``stream`` (stderr by default) with the text or
    JSON formatter. Calling it again replaces the handler it installed before (not others')."""
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r} (want text or json)")
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # what no skiff line shows, and each record would look up: the caller's file and line (a
    # walk up the stack), the thread and process names (logging's HOWTO, "Optimization");
    # with them a line cost a daemon ~20 us, a pod's binding two lines
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # aiohttp's access log is noisy at INFO; keep it at WARNING unless debugging.
    if root.level > logging.DEBUG:
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler
