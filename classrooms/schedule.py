"""A class's weekly opening hours: parsing what a teacher types, and "is it open now?".

A period is wall-clock time in the school's time zone: "Mon-Fri 08:00-17:00" opens at
08:00 local time on the day summer time starts as on any other day. A period whose end
is before its start runs over midnight into the next day ("Fri 20:00-01:00" is open
until 01:00 on Saturday). No periods at all means always open.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

DAYS = {
    # English and French, with and without the full name.
    "mon": 0, "monday": 0, "lun": 0, "lundi": 0,
    "tue": 1, "tuesday": 1, "mar": 1, "mardi": 1,
    "wed": 2, "wednesday": 2, "mer": 2, "mercredi": 2,
    "thu": 3, "thursday": 3, "jeu": 3, "jeudi": 3,
    "fri": 4, "friday": 4, "ven": 4, "vendredi": 4,
    "sat": 5, "saturday": 5, "sam": 5, "samedi": 5,
    "sun": 6, "sunday": 6, "dim": 6, "dimanche": 6,
}  # fmt: skip
DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MAX_PERIODS = 50

_TIME = r"(\d{1,2})(?:[:hH](\d{2})?)?"
_LINE = re.compile(rf"^\s*(?P<days>[^\d]+?)\s+{_TIME}\s*[-–]\s*{_TIME}\s*$")


class ScheduleError(ValueError):
    """What is wrong with the typed hours, for the teacher to read."""


def _minutes(hours: str, minutes: str | None, *, line: int) -> int:
    h, m = int(hours), int(minutes or 0)
    if h > 24 or m > 59 or (h == 24 and m):
        raise ScheduleError(_("Line %(line)d: %(time)s is not a time of day.") % {"line": line, "time": f"{h}:{m:02d}"})
    return h * 60 + m


def _days(text: str, *, line: int) -> list[int]:
    days: list[int] = []
    for part in re.split(r"[,\s]+", text.strip().lower()):
        if not part:
            continue
        ends = [e.strip(".") for e in re.split(r"[-–]", part)]
        if any(e not in DAYS for e in ends) or len(ends) > 2:
            raise ScheduleError(
                _("Line %(line)d: “%(days)s” is not a day. Write days as Mon, Tue, … or lun, mar, …")
                % {"line": line, "days": part}
            )
        first, last = DAYS[ends[0]], DAYS[ends[-1]]
        day = first
        while True:  # "Sat-Mon" wraps round the week
            if day not in days:
                days.append(day)
            if day == last:
                break
            day = (day + 1) % 7
    return days


def parse(text: str) -> list[dict]:
    """Periods from lines such as "Mon-Fri 08:00-12:00" or "lun,mer 18h-20h30".
    Raises ScheduleError naming the first bad line."""
    periods: list[dict] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        match = _LINE.match(raw)
        if not match:
            raise ScheduleError(
                _("Line %(line)d: write the days, then the hours, like “Mon-Fri 08:00-17:00”.") % {"line": number}
            )
        days = _days(match.group("days"), line=number)
        start = _minutes(match.group(2), match.group(3), line=number)
        end = _minutes(match.group(4), match.group(5), line=number)
        if start == end:
            raise ScheduleError(_("Line %(line)d: the period opens and closes at the same time.") % {"line": number})
        if start == 24 * 60:
            raise ScheduleError(_("Line %(line)d: a period cannot open at 24:00.") % {"line": number})
        periods += [{"day": d, "start": start, "end": end} for d in days]
    if len(periods) > MAX_PERIODS:
        raise ScheduleError(_("At most %(max)d periods a week.") % {"max": MAX_PERIODS})
    return periods


def as_text(periods: list[dict]) -> str:
    """The periods as the form shows them, one line each (parse reads it back)."""

    def hhmm(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return "\n".join(f"{DAY_LABELS[p['day']]} {hhmm(p['start'])}-{hhmm(p['end'])}" for p in periods)


def is_open(periods: list[dict], at: datetime, zone: ZoneInfo) -> bool:
    if not periods:
        return True
    local = at.astimezone(zone)
    weekday, minute = local.weekday(), local.hour * 60 + local.minute
    for p in periods:
        if p["start"] < p["end"]:
            if weekday == p["day"] and p["start"] <= minute < p["end"]:
                return True
        elif (weekday == p["day"] and minute >= p["start"]) or (weekday == (p["day"] + 1) % 7 and minute < p["end"]):
            return True  # over midnight
    return False


def next_opening(periods: list[dict], at: datetime, zone: ZoneInfo) -> datetime | None:
    """When the class next opens after `at` (aware, in `zone`), or None if it never does."""
    if not periods:
        return None
    local = at.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    best = None
    for offset in range(8):
        day = midnight + timedelta(days=offset)
        for p in periods:
            if p["day"] != day.weekday():
                continue
            # Wall-clock time made aware in the zone: 08:00 stays 08:00 across summer time.
            start = (day + timedelta(minutes=p["start"])).replace(tzinfo=zone)
            if start > at and (best is None or start < best):
                best = start
        if best is not None:
            return best
    return None


def next_change(periods: list[dict], at: datetime, zone: ZoneInfo) -> datetime | None:
    """The first moment after `at` when the class opens or closes, or None if it never
    does (no periods, or open all week). A period's start and end are wall-clock times."""
    if not periods:
        return None
    local = at.astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    now_open = is_open(periods, at, zone)
    edges = sorted(
        (midnight + timedelta(days=offset, minutes=minutes)).replace(tzinfo=zone)
        for offset in range(9)
        for p in periods
        for minutes in (p["start"], p["end"] + (1440 if p["end"] <= p["start"] else 0))
        if (midnight + timedelta(days=offset)).weekday() == p["day"]
    )
    return next((edge for edge in edges if edge > at and is_open(periods, edge, zone) != now_open), None)
