"""Cron schedules as Kubernetes' CronJobs read them (robfig/cron's standard parser): five fields
(minute, hour, day of month, month, day of week 0-6) with ``*``, ``?``, lists, ranges, steps and
the names JAN-DEC and SUN-SAT, or a descriptor: ``@yearly``/``@annually``,
``@monthly``, ``@weekly``, ``@daily``/``@midnight``, ``@hourly``, ``@every <duration>``.

When both the day of month and the day of week are restricted, a day matches either (as cron
does); when one is ``*``, only the other counts. Times are wall-clock times in a zone: a time a
DST change skips is skipped, a repeated one is taken once.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

__all__ = ["Schedule", "ScheduleError", "parse"]

_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_FIELDS = (("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS),
           ("day of week", 0, 6, _DAYS))
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset
    hours: frozenset
    days: frozenset
    months: frozenset
    weekdays: frozenset
    dom_star: bool
    dow_star: bool
    every: float = 0.0          # @every: seconds between runs

    def _day_ok(self, d: dt.date) -> bool:
        if d.month not in self.months:
            return False
        dom, dow = d.day in self.days, (d.weekday() + 1) % 7 in self.weekdays
        if self.dom_star or self.dow_star:
            return dom and dow
        return dom or dow

    def next(self, after: dt.datetime) -> dt.datetime | None:
        """The first activation strictly after ``after`` (aware), in ``after``'s zone; None
        when there is none within five years (Feb 30)."""
        tz = after.tzinfo
        if self.every:      # robfig's ConstantDelaySchedule: the delay from the whole second
            return after.replace(microsecond=0) + dt.timedelta(seconds=max(self.every, 1.0))
        local = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = local.date()
        for _ in range(366 * 5):
            if self._day_ok(day):
                start = local.time() if day == local.date() else dt.time(0, 0)
                for h in sorted(self.hours):
                    if h < start.hour:
                        continue
                    for m in sorted(self.minutes):
                        if h == start.hour and m < start.minute:
                            continue
                        cand = dt.datetime.combine(day, dt.time(h, m))
                        aware = _aware(cand, tz)
                        if aware is not None and aware > after:
                            return aware
            day += dt.timedelta(days=1)
        return None


def _aware(naive: dt.datetime, tz) -> dt.datetime | None:
    """``naive`` wall time in ``tz``; None when a DST change skips it."""
    aware = naive.replace(tzinfo=tz, fold=0)
    back = aware.astimezone(dt.timezone.utc).astimezone(tz).replace(tzinfo=None)
    return aware if back == naive else None


def _field(text: str, name: str, lo: int, hi: int, names: dict) -> tuple[set, bool]:
    out: set = set()
    star = False
    for part in text.split(","):
        rng, _, step_s = part.partition("/")
        step = 1
        if step_s:
            if not step_s.isdigit() or int(step_s) == 0:
                raise ScheduleError(f"failed to parse int from {step_s}: strconv.Atoi: parsing "
                                    f'"{step_s}": invalid syntax' if not step_s.isdigit() else
                                    f"step of range should be a positive number: {part}")
            step = int(step_s)
        if rng in ("*", "?"):
            a, b = lo, hi
            star = star or not step_s
        else:
            a_s, dash, b_s = rng.partition("-")
            a = _value(a_s, names)
            b = _value(b_s, names) if dash else (hi if step_s else a)
            if a < lo:
                raise ScheduleError(f"beginning of range ({a}) below minimum ({lo}): {part}")
            if b > hi:
                raise ScheduleError(f"end of range ({b}) above maximum ({hi}): {part}")
            if a > b:
                raise ScheduleError(f"beginning of range ({a}) beyond end of range ({b}): {part}")
        out.update(range(a, b + 1, step))
    return out, star


def _value(text: str, names: dict) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise ScheduleError(f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def parse(text: str) -> Schedule:
    """A Schedule, or ScheduleError with robfig/cron's words."""
    spec = text.strip()
    if spec.startswith("@every "):
        rest = spec[len("@every "):].strip()
        total, pos = 0.0, 0
        for m in _DURATION.finditer(rest):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNIT[m.group(2)]
            pos = m.end()
        if not rest or pos != len(rest):
            raise ScheduleError(f"failed to parse duration @every {rest}: time: invalid duration \"{rest}\"")
        return Schedule(frozenset(), frozenset(), frozenset(), frozenset(), frozenset(), True, True, every=total)
    if spec.startswith("@"):
        if spec not in _DESCRIPTORS:
            raise ScheduleError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    parts = spec.split()
    if len(parts) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(parts)}: [{' '.join(parts)}]")
    sets = []
    stars = []
    for part, (name, lo, hi, names) in zip(parts, _FIELDS):
        vals, star = _field(part, name, lo, hi, names)
        sets.append(frozenset(vals))
        stars.append(star)
    return Schedule(sets[0], sets[1], sets[2], sets[3], sets[4], stars[2], stars[4])
