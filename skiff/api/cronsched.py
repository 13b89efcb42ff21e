"""Cron schedules as Kubernetes' CronJobs read them: robfig/cron v3's standard parser
(``cron.ParseStandard``) and its ``Next``.

A schedule is five fields (minute, hour, day of month, month, day of week 0-6) made of ``*`` or
``?``, numbers, the names JAN-DEC and SUN-SAT (any case), ranges ``a-b``, steps ``/n`` and lists
``,``; or a descriptor: ``@yearly``/``@annually``, ``@monthly``, ``@weekly``,
``@daily``/``@midnight``, ``@hourly``, ``@every <Go duration>``. ``TZ=<zone>`` or
``CRON_TZ=<zone>`` may lead (the API refuses it; the parser reads it as robfig does).

When both the day of month and the day of week are restricted a day matches either of them;
when one of them is ``*`` (or ``?``, without a step above 1) only the other counts.

``Schedule.next`` walks as robfig's ``SpecSchedule.Next`` does, in the zone of the time it is
given: month, then day, then hour (one real hour at a time), then minute, with wall-clock dates
built as Go's ``time.Date`` builds them. So a time that a DST change skips is skipped, and a
time that a DST change repeats runs at each of its two instants, as it does in Kubernetes.
"""
from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass

__all__ = ["Schedule", "ScheduleError", "parse"]

_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (low, high, names) of minute, hour, day of month, month, day of week
_BOUNDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 6, _DAYS))
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset = frozenset()
    hours: frozenset = frozenset()
    days: frozenset = frozenset()
    months: frozenset = frozenset()
    weekdays: frozenset = frozenset()
    dom_star: bool = False
    dow_star: bool = False
    every: int = 0              # @every: whole seconds between runs (robfig's ConstantDelaySchedule)
    zone: object = None         # the TZ= / CRON_TZ= zone of the spec, if it named one

    def _day_ok(self, w: dt.datetime) -> bool:
        dom, dow = w.day in self.days, (w.weekday() + 1) % 7 in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next(self, after: dt.datetime) -> dt.datetime | None:
        """The first activation strictly after ``after`` (an aware datetime), in its zone (or in
        the spec's TZ= zone); None when there is none within five years (``0 0 30 2 *``)."""
        loc = self.zone or after.tzinfo or _UTC
        u = int(after.timestamp() // 1)        # robfig: to the whole second, then one second on
        if self.every:
            return _at(u + self.every, after.tzinfo or _UTC)
        u += 1
        added = False
        year_limit = _wall(u, loc).year + 5
        while True:                              # robfig's WRAP label
            w = _wall(u, loc)
            if w.year > year_limit:
                return None
            wrapped = False
            while w.month not in self.months:
                if not added:
                    added = True
                    u = _go_date(w.year, w.month, 1, 0, 0, 0, loc)
                    w = _wall(u, loc)
                u = _go_date(w.year, w.month + 1, w.day, w.hour, w.minute, w.second, loc)
                w = _wall(u, loc)
                if w.month == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while not self._day_ok(w):
                if not added:
                    added = True
                    u = _go_date(w.year, w.month, w.day, 0, 0, 0, loc)
                    w = _wall(u, loc)
                u = _go_date(w.year, w.month, w.day + 1, w.hour, w.minute, w.second, loc)
                w = _wall(u, loc)
                if w.hour != 0:                  # midnight moved by DST: back to (or on to) it
                    u += (24 - w.hour) * 3600 if w.hour > 12 else -w.hour * 3600
                    w = _wall(u, loc)
                if w.day == 1:
                    wrapped = True
                    break
            if wrapped:
                continue
            while w.hour not in self.hours:
                if not added:
                    added = True
                    u = _go_date(w.year, w.month, w.day, w.hour, 0, 0, loc)
                u += 3600
                w = _wall(u, loc)
                if w.hour == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while w.minute not in self.minutes:
                if not added:
                    added = True
                    u -= u % 60
                u += 60
                w = _wall(u, loc)
                if w.minute == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            while w.second != 0:                 # the standard parser's seconds field is "0"
                added = True
                u += 1
                w = _wall(u, loc)
                if w.second == 0:
                    wrapped = True
                    break
            if wrapped:
                continue
            return _at(u, after.tzinfo or _UTC)


def _at(u: int, tz) -> dt.datetime:
    return (_EPOCH + dt.timedelta(seconds=u)).astimezone(tz)


def _wall(u: int, loc) -> dt.datetime:
    return (_EPOCH + dt.timedelta(seconds=u)).astimezone(loc)


def _offset(u: int, loc) -> int:
    return int(_wall(u, loc).utcoffset().total_seconds())


def _go_date(year: int, month: int, day: int, hour: int, minute: int, second: int, loc) -> int:
    """Seconds since the epoch of Go's ``time.Date(year, month, day, hour, minute, second, 0,
    loc)``: month and day overflow carried, and a wall time that a zone change skips or repeats
    resolved as Go resolves it (the offset of the instant read as UTC, checked once)."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    naive = dt.datetime(year, month, 1) + dt.timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second)
    unix = int((naive - dt.datetime(1970, 1, 1)).total_seconds())
    off = _offset(unix, loc)
    if off:
        utc = unix - off
        if _offset(utc, loc) != off:
            off = _offset(utc, loc)
    return unix - off


def _atoi(text: str) -> int:
    """Go's strconv.Atoi as robfig's mustParseInt uses it (and its refusal of negatives)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ScheduleError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    n = int(text)
    if n < 0:
        raise ScheduleError(f"negative number ({n}) not allowed: {text}")
    return n


def _int_or_name(text: str, names: dict) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    return _atoi(text)


def _range(expr: str, lo: int, hi: int, names: dict) -> tuple[set, bool]:
    """One comma-separated part of a field: its values and whether it is a star."""
    range_step = expr.split("/")
    low_high = range_step[0].split("-")
    star = False
    if low_high[0] in ("*", "?"):
        start, end, star = lo, hi, True
    else:
        start = _int_or_name(low_high[0], names)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _int_or_name(low_high[1], names)
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    if len(range_step) == 1:
        step = 1
    elif len(range_step) == 2:
        step = _atoi(range_step[1])
        if len(low_high) == 1:          # "N/step" is "N-max/step"
            end = hi
        if step > 1:
            star = False
    else:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < lo:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({lo}): {expr}")
    if end > hi:
        raise ScheduleError(f"end of range ({end}) above maximum ({hi}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


_GO_UNITS = {"ns": 1, "us": 1_000, "\u00b5s": 1_000, "\u03bcs": 1_000, "ms": 1_000_000, "s": 10**9,
             "m": 60 * 10**9, "h": 3600 * 10**9}


def _go_duration(text: str) -> int:
    """Go's time.ParseDuration, in nanoseconds (ValueError with Go's words): [-+] then one or
    more decimal numbers, each with an optional fraction and a unit."""
    s, neg = text, False
    if s[:1] in ("+", "-"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f'time: invalid duration "{text}"')
    total = 0
    while s:
        m = re.match(r"([0-9]*)(?:\.([0-9]*))?", s)
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            raise ValueError(f'time: invalid duration "{text}"')
        s = s[m.end():]
        unit = re.match(r"[^0-9.]*", s).group(0)
        if not unit:
            raise ValueError(f'time: missing unit in duration "{text}"')
        if unit not in _GO_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration "{text}"')
        s = s[len(unit):]
        scale = _GO_UNITS[unit]
        total += int(whole or 0) * scale + (int(frac) * scale // 10 ** len(frac) if frac else 0)
    return -total if neg else total


def _zone(name: str):
    if name == "" or name == "UTC":
        return _UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"provided bad location {name}: unknown time zone {name}") from None


def parse(text: str) -> Schedule:
    """A Schedule, or ScheduleError with robfig/cron's words."""
    spec = text
    if not spec:
        raise ScheduleError("empty spec string")
    zone = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        sp, eq = spec.find(" "), spec.find("=")
        name = spec[eq + 1:sp] if sp >= 0 else spec[eq + 1:]
        zone = _zone(name)
        spec = spec[sp:].strip() if sp >= 0 else ""
    if spec.startswith("@"):
        if spec.startswith("@every "):
            rest = spec[len("@every "):]
            try:
                ns = _go_duration(rest)
            except ValueError as e:
                raise ScheduleError(f"failed to parse duration {spec}: {e}") from None
            secs = max(ns, 10**9) // 10**9       # at least a second, whole seconds
            return Schedule(every=secs, zone=zone)
        if spec not in _DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    parts = spec.split()
    if len(parts) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(parts)}: [{' '.join(parts)}]")
    sets, stars = [], []
    for part, (lo, hi, names) in zip(parts, _BOUNDS):
        vals: set = set()
        star = False
        for piece in part.split(","):
            v, s = _range(piece, lo, hi, names)
            vals |= v
            star = star or s
        sets.append(frozenset(vals))
        stars.append(star)
    return Schedule(sets[0], sets[1], sets[2], sets[3], sets[4], stars[2], stars[4], zone=zone)
