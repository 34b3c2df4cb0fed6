"""What a patient has to complete, and when: the due-items engine (pure, no Django, no I/O).

A plan item says *complete this instrument every N days from a start date, until an optional
end date*. Its occurrences fall on the patient's local calendar: ``start``, ``start + N``,
``start + 2N``... (calendar days in the patient's time zone, never multiples of 24 hours, so a
daylight-saving change moves no due date). Occurrence ``k`` is a *period*: it opens at local
midnight of its due day and closes at local midnight of the next occurrence's due day (or the
day after the end date, whichever is first). Any completion of the instrument whose local
date falls inside the period, at or before the moment asked about, completes it.

At a moment ``at`` each occurrence that has opened is

- ``done``: completed within its period (``done_at`` says when);
- ``due``: open, not completed, and today is its due day;
- ``overdue``: open, not completed, and its due day has passed;
- ``missed``: closed without a completion.

The completion rate over a window counts the occurrences due in the window that are done,
against those done, missed or overdue: an occurrence due *today* is not held against the
patient until its day is over.

The reminder builder reads :func:`due_items` (the open occurrences, due and overdue, each
with its stable identity ``(item.key, due_on)``: send once per identity).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DIARY",
    "MAX_EVERY_DAYS",
    "STATUSES",
    "Completion",
    "DueItem",
    "Rate",
    "ScheduleItem",
    "completion_rate",
    "due_items",
    "history",
    "local_midnight",
    "occurrences",
    "plan_errors",
]

#: The plan item that stands for the daily diary (not an instrument: any diary day counts).
DIARY = "diary"
#: The longest interval a plan item may have.
MAX_EVERY_DAYS = 366
STATUSES = ("due", "overdue", "done", "missed")


@dataclass(frozen=True)
class ScheduleItem:
    """One line of a plan: complete ``instrument`` every ``every_days`` days from ``start``
    (a local date) to ``end`` (inclusive; None: no end). ``key`` is its stable identity in
    the plan (the instrument id: a plan holds one line per instrument)."""

    instrument: str
    every_days: int
    start: dt.date
    end: dt.date | None = None

    @property
    def key(self) -> str:
        return self.instrument


@dataclass(frozen=True)
class Completion:
    """The instrument was completed at ``at`` (a time-zone-aware moment), or on the local day
    ``at`` (a date: a diary day is a day, not a moment)."""

    instrument: str
    at: dt.datetime | dt.date


@dataclass(frozen=True)
class DueItem:
    """One occurrence of a plan item and where it stands at the moment asked about.

    ``due_at`` is local midnight of ``due_on`` and ``closes_at`` the end of the period (both
    aware, in the patient's zone); ``done_at`` the completion that counts (a date for a diary
    day), else None."""

    item: ScheduleItem
    due_on: dt.date
    due_at: dt.datetime
    closes_at: dt.datetime
    status: str
    done_at: dt.datetime | dt.date | None = None

    @property
    def key(self) -> tuple[str, dt.date]:
        """The occurrence's identity: ``(item.key, due_on)`` (a reminder is sent once per key)."""
        return (self.item.key, self.due_on)

    @property
    def open(self) -> bool:
        return self.status in ("due", "overdue")


@dataclass(frozen=True)
class Rate:
    """``done`` of ``expected`` occurrences (None when nothing was expected yet) over the
    local days ``since`` to ``until``."""

    done: int
    expected: int
    since: dt.date
    until: dt.date
    by_item: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def percent(self) -> int | None:
        if not self.expected:
            return None
        return int(100 * self.done / self.expected + 0.5)


@functools.lru_cache(maxsize=8192)
def local_midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The first moment of ``day`` in ``tz`` (aware). Where a zone skips midnight (a
    daylight-saving change at 00:00) that is the first local time that exists. (Cached: a
    patient list asks the same days of the same zones for every patient.)"""
    naive = dt.datetime.combine(day, dt.time())
    moment = naive.replace(tzinfo=tz)
    # a skipped local time converts to a UTC instant and back to a later wall time: round trip
    back = moment.astimezone(dt.UTC).astimezone(tz)
    if back.replace(tzinfo=None) != naive:
        # the wall time does not exist; the day starts when the clocks jump forward
        for minutes in range(1, 181):
            candidate = (naive + dt.timedelta(minutes=minutes)).replace(tzinfo=tz)
            if candidate.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == candidate.replace(tzinfo=None):
                return candidate
    return moment


def _local_day(moment: dt.datetime | dt.date, tz: dt.tzinfo) -> dt.date:
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            raise ValueError(f"completion time {moment.isoformat()} has no time zone")
        return moment.astimezone(tz).date()
    return moment


def occurrences(item: ScheduleItem, until: dt.date, *, since: dt.date | None = None
                ) -> list[tuple[dt.date, dt.date]]:
    """The ``(due_on, closes_on)`` periods of ``item`` whose due day is on or before
    ``until`` (and on or after ``since``); ``closes_on`` is the first day after the period.

    Examples
    --------
    >>> it = ScheduleItem("phq9", 14, dt.date(2026, 3, 1), end=dt.date(2026, 3, 20))
    >>> occurrences(it, dt.date(2026, 4, 30))
    [(datetime.date(2026, 3, 1), datetime.date(2026, 3, 15)), (datetime.date(2026, 3, 15), datetime.date(2026, 3, 21))]
    """
    if item.every_days < 1:
        raise ValueError(f"every_days must be at least 1, got {item.every_days}")
    last = until if item.end is None else min(until, item.end)
    if last < item.start:
        return []
    first_k = 0
    if since is not None and since > item.start:
        first_k = (since - item.start).days // item.every_days
    step = dt.timedelta(days=item.every_days)
    out = []
    k = first_k
    while True:
        due_on = item.start + k * step
        if due_on > last:
            break
        closes_on = due_on + step
        if item.end is not None:
            closes_on = min(closes_on, item.end + dt.timedelta(days=1))
        if since is None or due_on >= since:
            out.append((due_on, closes_on))
        k += 1
    return out


def _index(completions: Iterable[Completion], tz: dt.tzinfo, at: dt.datetime
           ) -> dict[str, list[tuple[dt.date, dt.datetime | dt.date]]]:
    """Completions up to ``at`` by instrument: (local day, when), in time order."""
    today = at.astimezone(tz).date()
    out: dict[str, list[tuple[dt.date, dt.datetime | dt.date]]] = {}
    for c in completions:
        if isinstance(c.at, dt.datetime):
            if c.at.tzinfo is None:
                raise ValueError(f"completion time {c.at.isoformat()} has no time zone")
            if c.at > at:
                continue
        elif c.at > today:
            continue
        out.setdefault(c.instrument, []).append((_local_day(c.at, tz), c.at))
    for rows in out.values():
        rows.sort(key=lambda r: r[0])
    return out


def _status(item: ScheduleItem, due_on: dt.date, closes_on: dt.date, today: dt.date,
            done: Sequence[tuple[dt.date, Any]], tz: dt.tzinfo) -> DueItem:
    hit = next((when for day, when in done if due_on <= day < closes_on), None)
    if hit is not None:
        status = "done"
    elif today >= closes_on:
        status = "missed"
    elif today == due_on:
        status = "due"
    else:
        status = "overdue"
    return DueItem(item=item, due_on=due_on, due_at=local_midnight(due_on, tz),
                   closes_at=local_midnight(closes_on, tz), status=status, done_at=hit)


def _check_at(at: dt.datetime) -> None:
    if not isinstance(at, dt.datetime) or at.tzinfo is None:
        raise ValueError("at must be a time-zone-aware datetime")


def due_items(items: Iterable[ScheduleItem], completions: Iterable[Completion],
              at: dt.datetime, tz: dt.tzinfo, *, include: Iterable[str] = ("due", "overdue", "done")
              ) -> list[DueItem]:
    """Each item's current occurrence at ``at``: the one whose period holds today (in ``tz``).

    Parameters
    ----------
    items : iterable of ScheduleItem
        The plan.
    completions : iterable of Completion
        What the patient completed (later than ``at`` is ignored).
    at : datetime
        The moment asked about (aware).
    tz : tzinfo
        The patient's time zone: due days are calendar days there.
    include : iterable of str
        The statuses to return (``"missed"`` only when the current period closed without
        a completion, which cannot happen: the current period is open; kept for symmetry).

    Returns
    -------
    list of DueItem
        Overdue first, then due, then done; by due day, then instrument. An item not started
        yet or ended before today has no current occurrence and is left out.
    """
    _check_at(at)
    wanted = set(include)
    today = at.astimezone(tz).date()
    done = _index(completions, tz, at)
    out = []
    for item in items:
        periods = occurrences(item, today, since=today - dt.timedelta(days=item.every_days - 1))
        current = [p for p in periods if p[0] <= today < p[1]]
        if not current:
            continue
        due_on, closes_on = current[-1]
        row = _status(item, due_on, closes_on, today, done.get(item.instrument, ()), tz)
        if row.status in wanted:
            out.append(row)
    order = {"overdue": 0, "due": 1, "done": 2, "missed": 3}
    out.sort(key=lambda r: (order[r.status], r.due_on, r.item.instrument))
    return out


def history(items: Iterable[ScheduleItem], completions: Iterable[Completion], at: dt.datetime,
            tz: dt.tzinfo, *, since: dt.date) -> list[DueItem]:
    """Every occurrence due from the local day ``since`` to today, with its status at ``at``,
    by due day then instrument."""
    _check_at(at)
    today = at.astimezone(tz).date()
    done = _index(completions, tz, at)
    out = []
    for item in items:
        for due_on, closes_on in occurrences(item, today, since=since):
            out.append(_status(item, due_on, closes_on, today, done.get(item.instrument, ()), tz))
    out.sort(key=lambda r: (r.due_on, r.item.instrument))
    return out


def completion_rate(items: Iterable[ScheduleItem], completions: Iterable[Completion],
                    at: dt.datetime, tz: dt.tzinfo, *, window_days: int = 28) -> Rate:
    """The share of occurrences due in the last ``window_days`` local days (today included)
    that were completed: done / (done + missed + overdue); one due today and not yet done is
    not counted.

    Examples
    --------
    >>> import zoneinfo
    >>> tz = zoneinfo.ZoneInfo("UTC")
    >>> plan = [ScheduleItem("diary", 1, dt.date(2026, 1, 1))]
    >>> days = [Completion("diary", dt.date(2026, 1, d)) for d in (1, 2, 4)]
    >>> r = completion_rate(plan, days, dt.datetime(2026, 1, 5, 9, tzinfo=tz), tz)
    >>> (r.done, r.expected, r.percent)
    (3, 4, 75)
    """
    if window_days < 1:
        raise ValueError(f"window_days must be at least 1, got {window_days}")
    _check_at(at)
    today = at.astimezone(tz).date()
    since = today - dt.timedelta(days=window_days - 1)
    done_days = {k: [day for day, _when in rows] for k, rows in _index(completions, tz, at).items()}
    by_item: dict[str, list[int]] = {}
    for item in items:
        days = done_days.get(item.instrument, [])
        for due_on, closes_on in occurrences(item, today, since=since):
            # the same statuses as history(), without building the moments: done when a
            # completion falls in [due_on, closes_on); "due" (today, not done) is not counted
            i = bisect.bisect_left(days, due_on)
            hit = i < len(days) and days[i] < closes_on
            if not hit and due_on == today:
                continue
            tally = by_item.setdefault(item.key, [0, 0])
            tally[1] += 1
            tally[0] += hit
    done = sum(t[0] for t in by_item.values())
    expected = sum(t[1] for t in by_item.values())
    return Rate(done=done, expected=expected, since=since, until=today,
                by_item={k: (v[0], v[1]) for k, v in by_item.items()})


def plan_errors(rows: Sequence[Mapping[str, Any]], known: Mapping[str, str], *,
                earliest: dt.date | None = None, latest: dt.date | None = None
                ) -> tuple[list[ScheduleItem], dict[str, str]]:
    """Read the lines of a plan (``instrument``, ``every_days``, ``start``, ``end``) into
    :class:`ScheduleItem`; problems by field, keyed ``items-<i>-<field>`` (``items`` for the
    plan as a whole), each saying what to fix.

    ``known`` maps each instrument id a plan may hold to its name (the diary and the
    instruments a patient completes); ``earliest`` and ``latest`` bound the start dates.
    """
    errors: dict[str, str] = {}
    out: list[ScheduleItem] = []
    seen: dict[str, int] = {}
    if not rows:
        errors["items"] = "Add at least one thing to complete."
    for i, row in enumerate(rows):
        where = f"items-{i}"
        instrument = row.get("instrument")
        if not isinstance(instrument, str) or instrument not in known:
            errors[f"{where}-instrument"] = (
                f"Choose what to complete: {', '.join(sorted(known))} (got {instrument!r}).")
        elif instrument in seen:
            errors[f"{where}-instrument"] = (
                f"{known[instrument]} is already line {seen[instrument] + 1} of the plan; "
                "a plan holds each once.")
        else:
            seen[instrument] = i
        every = row.get("every_days")
        if isinstance(every, str) and every.strip().isdigit():
            every = int(every.strip())
        if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= MAX_EVERY_DAYS:
            errors[f"{where}-every_days"] = (
                f"Give every how many days, a whole number from 1 to {MAX_EVERY_DAYS} "
                f"(got {row.get('every_days')!r}).")
        start = _date(row.get("start"))
        if start is None:
            errors[f"{where}-start"] = "Give the start date (YYYY-MM-DD)."
        elif earliest is not None and start < earliest:
            errors[f"{where}-start"] = (f"{start.isoformat()} is too far back: start on or "
                                        f"after {earliest.isoformat()}.")
        elif latest is not None and start > latest:
            errors[f"{where}-start"] = (f"{start.isoformat()} is too far ahead: start on or "
                                        f"before {latest.isoformat()}.")
        end = None
        if row.get("end") not in (None, ""):
            end = _date(row.get("end"))
            if end is None:
                errors[f"{where}-end"] = "Give the end date as YYYY-MM-DD, or leave it empty."
            elif start is not None and end < start:
                errors[f"{where}-end"] = (f"The end date {end.isoformat()} is before the start "
                                          f"date {start.isoformat()}.")
        if not any(k.startswith(f"{where}-") for k in errors):
            out.append(ScheduleItem(instrument, every, start, end))  # type: ignore[arg-type]
    return out, errors


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None
