"""When a reminder goes out (pure: no Django, no I/O).

A reminder for a due item goes out at the patient's chosen time of day on the item's due day,
in the patient's time zone (:func:`send_at`); never before the item opens (its ``due_at``), and
never in quiet hours (then at their end). A local time a daylight-saving change skips is read
as the moment the clocks jump (02:30 on the spring-forward night in New York is 03:00); a time
that happens twice is its first occurrence (:func:`wall`).

A missed diary is reminded before the clinician's alert. SAF-DIARY-GAP
(:mod:`speciosa.safety.rules.adherence`) fires when ``today - last diary day >= diary_gap_days``
on the site's calendar, so the first sweep that can raise it runs at local midnight of
``last + diary_gap_days`` in the site's zone (:func:`diary_alert_at`). A diary reminder is
brought forward to at least :data:`LEAD` before that moment, and :data:`LEAD` before any quiet
hours that would hold it (:func:`diary_send_at`); with the reminder task running at least every
:data:`MAX_PERIOD`, a run finds it due, outside quiet hours, before the alert can fire. That
needs ``diary_gap_days >= 2`` (with 1, the alert fires the moment the diary day ends) and quiet
hours of at most :data:`MAX_QUIET` (so that there is time outside them).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from speciosa.schedules.due import local_midnight

__all__ = ["LEAD", "MAX_PERIOD", "MAX_QUIET", "Prefs", "diary_alert_at", "diary_send_at",
           "in_quiet", "quiet_hours", "quiet_end_after", "send_at", "wall"]

#: A diary reminder goes out at least this long before the missed-diary alert can fire.
LEAD = dt.timedelta(hours=1)
#: The reminder task must run at least this often for :data:`LEAD` to hold (the beat default
#: is 5 minutes).
MAX_PERIOD = dt.timedelta(minutes=15)
#: The longest quiet hours a patient may set.
MAX_QUIET = dt.timedelta(hours=12)


@dataclass(frozen=True)
class Prefs:
    """The timing half of a patient's preferences: the time of day in ``tz``, and quiet hours
    from ``quiet_start`` to ``quiet_end`` (across midnight when the end is earlier; None or
    equal: no quiet hours)."""

    time_of_day: dt.time
    tz: dt.tzinfo
    quiet_start: dt.time | None = None
    quiet_end: dt.time | None = None

    @property
    def has_quiet(self) -> bool:
        return (self.quiet_start is not None and self.quiet_end is not None
                and self.quiet_start != self.quiet_end)


def _exists(moment: dt.datetime, tz: dt.tzinfo) -> bool:
    return moment.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == moment.replace(tzinfo=None)


def wall(day: dt.date, time: dt.time, tz: dt.tzinfo) -> dt.datetime:
    """The moment the clock in ``tz`` shows ``time`` on ``day``, in UTC (every moment here is
    UTC: Python compares and subtracts two times of the same zone by their wall clocks, which
    is wrong across a daylight-saving change).

    A skipped time (the spring-forward gap) is the moment the clocks jump; a repeated one (the
    fall-back hour) is its first occurrence.

    Examples
    --------
    >>> import zoneinfo
    >>> ny = zoneinfo.ZoneInfo("America/New_York")
    >>> wall(dt.date(2026, 3, 8), dt.time(2, 30), ny).astimezone(ny).isoformat()
    '2026-03-08T03:00:00-04:00'
    >>> wall(dt.date(2026, 11, 1), dt.time(1, 30), ny).astimezone(ny).isoformat()
    '2026-11-01T01:30:00-04:00'
    """
    naive = dt.datetime.combine(day, time.replace(tzinfo=None))
    moment = naive.replace(tzinfo=tz, fold=0)
    if _exists(moment, tz):
        return moment.astimezone(dt.UTC)
    # in a gap: step to the first wall time that exists (gaps are at most a few hours)
    start = naive.replace(second=0, microsecond=0)
    for minutes in range(1, 24 * 60):
        candidate = (start + dt.timedelta(minutes=minutes)).replace(tzinfo=tz, fold=0)
        if _exists(candidate, tz):
            return candidate.astimezone(dt.UTC)
    raise ValueError(f"{naive.isoformat()} does not exist in {tz}")  # pragma: no cover


def quiet_hours(prefs: Prefs, moment: dt.datetime) -> tuple[dt.datetime, dt.datetime] | None:
    """The quiet hours that hold ``moment`` (start, end), or None when it is not in quiet hours."""
    if not prefs.has_quiet:
        return None
    tz = prefs.tz
    moment = moment.astimezone(dt.UTC)
    local = moment.astimezone(tz)
    day = local.date()
    s, e = prefs.quiet_start, prefs.quiet_end
    for start_day in (day - dt.timedelta(days=1), day):
        start = wall(start_day, s, tz)
        end = wall(start_day + dt.timedelta(days=1) if e < s else start_day, e, tz)
        if start <= moment < end:
            return start, end
    return None


def in_quiet(prefs: Prefs, moment: dt.datetime) -> bool:
    """Whether ``moment`` falls in the patient's quiet hours (their clock)."""
    return quiet_hours(prefs, moment) is not None


def quiet_end_after(prefs: Prefs, moment: dt.datetime) -> dt.datetime:
    """``moment``, or the end of the quiet hours that hold it."""
    held = quiet_hours(prefs, moment)
    return moment.astimezone(dt.UTC) if held is None else held[1]


def _next_quiet_start(prefs: Prefs, moment: dt.datetime) -> dt.datetime | None:
    if not prefs.has_quiet:
        return None
    moment = moment.astimezone(dt.UTC)
    day = moment.astimezone(prefs.tz).date()
    starts = [wall(day + dt.timedelta(days=k), prefs.quiet_start, prefs.tz) for k in (0, 1)]
    return min(s for s in starts if s > moment)


def send_at(due_on: dt.date, due_at: dt.datetime, prefs: Prefs) -> dt.datetime:
    """When the reminder of an item due on ``due_on`` (opening at ``due_at``) goes out: the
    chosen time on that day in the patient's zone, not before the item opens, after any quiet
    hours holding it."""
    moment = max(wall(due_on, prefs.time_of_day, prefs.tz), due_at.astimezone(dt.UTC))
    return quiet_end_after(prefs, moment)


def diary_alert_at(last_diary_day: dt.date, gap_days: int, site_tz: dt.tzinfo) -> dt.datetime:
    """The first moment SAF-DIARY-GAP can fire after the diary day ``last_diary_day``: local
    midnight (site zone) of the day ``gap_days`` later."""
    return local_midnight(last_diary_day + dt.timedelta(days=gap_days), site_tz).astimezone(dt.UTC)


def diary_send_at(due_on: dt.date, due_at: dt.datetime, prefs: Prefs,
                  alert_at: dt.datetime | None) -> dt.datetime:
    """:func:`send_at` for a diary reminder, brought forward to :data:`LEAD` before
    ``alert_at`` (the missed-diary alert) when it would be later, and :data:`LEAD` before quiet
    hours that would begin before a run could send it. Never before ``due_at``."""
    moment = send_at(due_on, due_at, prefs)
    due_at = due_at.astimezone(dt.UTC)
    if alert_at is None or moment <= alert_at - LEAD:
        return moment
    moment = alert_at.astimezone(dt.UTC) - LEAD
    held = quiet_hours(prefs, moment)
    if held is not None:
        moment = held[0] - LEAD
    else:
        nxt = _next_quiet_start(prefs, moment)
        if nxt is not None and nxt <= moment + LEAD:
            moment = nxt - LEAD
    return max(moment, due_at)
