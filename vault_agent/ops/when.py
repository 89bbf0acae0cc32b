"""Schedule expressions — cron lines and the plain forms people write — and their next run time.

Forms (spec/schedule.md): a 5-field cron line (`*/15 9-17 * * mon-fri`) or
`@hourly`/`@daily`/`@weekly`/`@monthly`/`@yearly`; `hourly`, `daily`,
`weekly`, `monthly`; `daily at 08:00`, `weekdays at 9:00`, `weekends at 10am`,
`mondays at 9:00`, `every friday at 16:30`; `every 30m` (also s/h/d and
`every 2 hours`); one-shots `in 10m`, `at 16:50`, `at 2026-12-01 09:00`.

Calendar forms are computed on the wall clock of a time zone (the system's by
default) so `daily at 08:00` stays at 08:00 across a DST change; intervals
count from the previous run; one-shots count from the anchor (when the
schedule was written) and run once.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from typing import Protocol

from ..errors import ConfigError

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_DAY_WORDS = {name: i for i, name in enumerate(("sunday", "monday", "tuesday", "wednesday", "thursday", "friday",
                                                  "saturday"))}
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
           "hourly": "0 * * * *", "daily": "0 0 * * *", "weekly": "0 0 * * 0", "monthly": "0 0 1 * *"}
_UNITS = {"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "mins": 60, "minute": 60,
          "minutes": 60, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600, "d": 86400,
          "day": 86400, "days": 86400}
_TIME = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"
_SEARCH_DAYS = 366 * 8 + 1  # the next 29 February can be 8 years away (2096, then 2104)


class When(Protocol):
    text: str

    def next_run(self, last: _dt.datetime | None, anchor: _dt.datetime,
                 tz: _dt.tzinfo | None = None) -> _dt.datetime | None:
        """The next time to run, given the previous run (None: never ran) and when the schedule was written.

        None means never again (a one-shot that ran). A time in the past means
        a run was missed (the machine slept): run once now.
        """
        ...


def _wall(t: _dt.datetime, tz: _dt.tzinfo | None) -> _dt.datetime:
    return (t.astimezone(tz) if tz else t.astimezone()).replace(tzinfo=None)


def _aware(naive: _dt.datetime, tz: _dt.tzinfo | None) -> _dt.datetime:
    # A naive datetime's astimezone() applies the system zone's DST rules for that date.
    return naive.replace(tzinfo=tz) if tz else naive.astimezone()


@dataclass(frozen=True)
class Cron:
    """A 5-field cron line: minute hour day-of-month month day-of-week (Vixie semantics)."""

    text: str
    line: str  # the 5 fields, plain forms translated: what a crontab line starts with
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    day_star: bool
    weekday_star: bool

    def _day_ok(self, d: _dt.date) -> bool:
        dom = d.day in self.days
        dow = (d.isoweekday() % 7) in self.weekdays
        if self.day_star or self.weekday_star:
            return dom and dow
        return dom or dow  # both restricted: either matches, as in cron

    def after(self, t: _dt.datetime, tz: _dt.tzinfo | None = None) -> _dt.datetime | None:
        """The first matching minute strictly after `t`."""
        w = _wall(t, tz).replace(second=0, microsecond=0) + _dt.timedelta(minutes=1)
        day = w.date()
        start_min = w.hour * 60 + w.minute
        hours, minutes = sorted(self.hours), sorted(self.minutes)
        for _ in range(_SEARCH_DAYS):
            if day.month in self.months and self._day_ok(day):
                for h in hours:
                    for m in minutes:
                        if h * 60 + m >= start_min:
                            return _aware(_dt.datetime.combine(day, _dt.time(h, m)), tz)
            day += _dt.timedelta(days=1)
            start_min = 0
        return None

    def next_run(self, last: _dt.datetime | None, anchor: _dt.datetime,
                 tz: _dt.tzinfo | None = None) -> _dt.datetime | None:
        return self.after(last or anchor, tz)


@dataclass(frozen=True)
class Every:
    """A fixed interval counted from the previous run (from the anchor before the first)."""

    text: str
    seconds: int

    def next_run(self, last: _dt.datetime | None, anchor: _dt.datetime,
                 tz: _dt.tzinfo | None = None) -> _dt.datetime | None:
        return (last or anchor) + _dt.timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Once:
    """One run: `in 10m` after the anchor, the first `at 16:50` after it, or at a given date and time."""

    text: str
    delay_s: int | None = None
    clock: _dt.time | None = None
    at: _dt.datetime | None = None  # naive wall time

    def next_run(self, last: _dt.datetime | None, anchor: _dt.datetime,
                 tz: _dt.tzinfo | None = None) -> _dt.datetime | None:
        if last is not None:
            return None
        if self.delay_s is not None:
            return anchor + _dt.timedelta(seconds=self.delay_s)
        if self.at is not None:
            return _aware(self.at, tz)
        assert self.clock is not None
        wall = _wall(anchor, tz)
        candidate = _dt.datetime.combine(wall.date(), self.clock)
        if candidate <= wall:
            candidate += _dt.timedelta(days=1)
        return _aware(candidate, tz)


def _bad(text: str, why: str) -> ConfigError:
    return ConfigError(f"schedule {text!r}: {why}",
                       fix="use a cron line ('0 8 * * 1-5') or a plain form such as 'every 30m', 'daily at 08:00', "
                           "'weekdays at 9:00', 'in 10m', 'at 16:50' (see spec/schedule.md)")


def _value(token: str, lo: int, hi: int, names: tuple[str, ...], text: str) -> int:
    low = token.lower()
    if low[:3] in names and low.isalpha():
        return names.index(low[:3]) + (1 if names is _MONTHS else 0)
    if not token.isdigit():
        raise _bad(text, f"{token!r} is not a number or a name")
    value = int(token)
    if not lo <= value <= hi:
        raise _bad(text, f"{value} is outside {lo}-{hi}")
    return value


def _field(part: str, lo: int, hi: int, names: tuple[str, ...], text: str) -> frozenset[int]:
    out: set[int] = set()
    for item in part.split(","):
        rng, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise _bad(text, f"bad step in {item!r}")
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            first, _, second = rng.partition("-")
            a, b = _value(first, lo, hi, names, text), _value(second, lo, hi, names, text)
            if a > b:
                raise _bad(text, f"range {rng!r} runs backwards")
        else:
            a = _value(rng, lo, hi, names, text)
            b = hi if step else a  # "5/15" means from 5 to the end, every 15
        out.update(range(a, b + 1, step or 1))
    return frozenset(out)


def parse_cron(text: str, source: str | None = None) -> Cron:
    fields = text.split()
    if len(fields) != 5:
        raise _bad(source or text, f"a cron line has 5 fields, this has {len(fields)}")
    minute, hour, day, month, weekday = fields
    weekdays = _field(weekday, 0, 7, _DAYS, source or text)
    return Cron(source or text, " ".join(fields), _field(minute, 0, 59, (), text), _field(hour, 0, 23, (), text),
                _field(day, 1, 31, (), text), _field(month, 1, 12, _MONTHS, text),
                frozenset(d % 7 for d in weekdays), day.startswith("*"), weekday.startswith("*"))


def _clock(groups: tuple[str | None, ...], text: str) -> _dt.time:
    hour, minute, ampm = int(groups[0] or 0), int(groups[1] or 0), groups[2]
    if ampm:
        if not 1 <= hour <= 12:
            raise _bad(text, "with am/pm the hour is 1-12")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        raise _bad(text, "not a time of day")
    return _dt.time(hour, minute)


def _to_cron(text: str) -> str:
    """A plain calendar form as the 5 cron fields."""
    low = " ".join(text.lower().split())
    if low in _MACROS:
        return _MACROS[low]
    m = re.fullmatch(rf"(.+?) at {_TIME}", low)
    if not m:
        raise _bad(text, "not a schedule form")
    t = _clock(m.groups()[1:], text)
    days = m.group(1).removeprefix("every ").strip()
    if days in ("day", "daily", "days"):
        dow = "*"
    elif days == "weekdays":
        dow = "1-5"
    elif days == "weekends":
        dow = "0,6"
    else:
        names = [d.strip().removesuffix("s") for d in re.split(r",|\band\b", days) if d.strip()]
        numbers = [next((i for w, i in _DAY_WORDS.items() if len(n) >= 3 and w.startswith(n)), None) for n in names]
        if not numbers or None in numbers:
            raise _bad(text, f"{days!r} is not daily, weekdays, weekends or day names")
        dow = ",".join(str(n) for n in numbers)
    return f"{t.minute} {t.hour} * * {dow}"


def parse(text: str) -> When:
    """Any schedule form -> a When; ConfigError explains what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "empty")
    low = " ".join(text.lower().split())
    tokens = low.split()
    if low.startswith("@") or (len(tokens) == 5 and re.fullmatch(r"[\d*,/\-]+", tokens[0])):
        return parse_cron(_MACROS.get(low, text.strip()), text.strip())
    m = re.fullmatch(r"(every|in) (\d+)? ?([a-z]+)", low)
    if m:
        n = int(m.group(2) or 1)
        if m.group(3) not in _UNITS or n <= 0:
            raise _bad(text, f"unknown unit {m.group(3)!r} (use s, m, h or d)")
        seconds = n * _UNITS[m.group(3)]
        return Every(text.strip(), seconds) if m.group(1) == "every" else Once(text.strip(), delay_s=seconds)
    m = re.fullmatch(rf"at (\d{{4}}-\d\d-\d\d)[ t]{_TIME}", low)
    if m:
        try:
            day = _dt.date.fromisoformat(m.group(1))
        except ValueError:
            raise _bad(text, "not a date") from None
        clock = _clock(m.groups()[1:], text)
        return Once(text.strip(), at=_dt.datetime.combine(day, clock))
    m = re.fullmatch(rf"at {_TIME}", low)
    if m:
        return Once(text.strip(), clock=_clock(m.groups(), text))
    return parse_cron(_to_cron(text), text.strip())
