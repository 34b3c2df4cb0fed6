"""The evaluation context: one timeline seen from ``as_of``, with the reads rules share.

Every read of the timeline a rule makes goes through a method here (never through
``ctx.timeline`` directly), each naming the window it reads; ``tests/safety`` replays the
rules through a recording context and checks each read lies inside a window the rule
declares, since the sweep loads no more than the declared windows.

Rules only read data at or before ``as_of`` and find the window they need by bisection on
the timeline's sorted lists, so the cost of an evaluation hardly grows with the length of
the history. Values several rules need (the current dose, the two fortnights of doses, the
first and latest prolactin) are remembered for the evaluation in ``memo``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from operator import attrgetter
from typing import Any

from speciosa.knowledge import instruments as kinstruments
from speciosa.safety.rules._common import lab_json, qualitative_positive
from speciosa.safety.timeline import Assessment, LabResult, Timeline

#: Days of dose history :meth:`Context.fortnights` reads (the last 14 local days and the 14
#: before them).
FORTNIGHTS_DAYS = 28

at_key = attrgetter("at")
_taken_at = attrgetter("taken_at")


@dataclass(frozen=True, slots=True)
class DoseStats:
    """One pass over a window of doses (see :meth:`Context.dose_stats`)."""

    days: int
    total_amount: float
    unit: str | None  # the one unit of the window, or None when mixed
    same_product: bool  # one unit and the same product facts throughout


class Context:
    """One evaluation: a timeline, the time it is read at, and the settings in force.

    Parameters
    ----------
    timeline : Timeline
    as_of : datetime
        Nothing after it is read. A naive time is read in the timeline's zone.
    settings : Mapping
        Every setting (see :func:`speciosa.safety.settings.resolve_settings`).
    """

    __slots__ = ("timeline", "as_of", "settings", "tz", "today", "sex", "memo")

    def __init__(self, timeline: Timeline, as_of: datetime, settings: Mapping[str, Any]) -> None:
        tz = timeline.tz
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=tz)
        self.timeline = timeline
        self.as_of = as_of
        self.settings = settings
        self.tz = tz
        self.today: date = as_of.astimezone(tz).date()
        self.sex: str | None = timeline.patient.sex
        self.memo: dict[Any, Any] = {}

    # -- time
    def ago(self, days: float) -> datetime:
        """Start of the window "within the last ``days`` days": local midnight of the
        calendar day ``days`` days before as_of (so a report 30 days ago is within 30 days,
        whatever its clock time)."""
        memo = self.memo
        key = ("ago", days)
        if key not in memo:
            memo[key] = self.midnight(self.today - timedelta(days=int(days)))
        return memo[key]

    def midnight(self, day: date) -> datetime:
        """Start of ``day`` in the patient's zone."""
        return datetime.combine(day, time(), tzinfo=self.tz)

    def window(self, rows: tuple, start: datetime | None, key=at_key) -> tuple:
        """Rows with ``start <= key <= as_of`` from a tuple sorted by ``key``."""
        i = 0 if start is None else bisect_left(rows, start, key=key)
        return rows[i : bisect_right(rows, self.as_of, key=key)]

    # -- doses
    def doses_between(self, start: datetime, end: datetime | None = None) -> tuple:
        """Doses with ``start <= taken_at < end`` (``end`` None: up to and including as_of)."""
        doses = self.timeline.doses
        i = bisect_left(doses, start, key=_taken_at)
        j = (
            bisect_right(doses, self.as_of, key=_taken_at)
            if end is None
            else bisect_left(doses, end, key=_taken_at)
        )
        return doses[i:j]

    def last_dose(self):
        """The last dose at or before as_of, however old, or None."""
        doses = self.timeline.doses
        j = bisect_right(doses, self.as_of, key=_taken_at)
        return doses[j - 1] if j else None

    def current_kratom(self):
        """The last dose within ``kratom_current_use_days``, or None."""
        if "current" not in self.memo:
            recent = self.doses_between(self.ago(self.settings["kratom_current_use_days"]))
            self.memo["current"] = recent[-1] if recent else None
        return self.memo["current"]

    def dose_days_28(self) -> int:
        """Number of local calendar days, of the last 28 (today included), with a dose."""
        earlier, recent = self.fortnights()
        return self.dose_stats(earlier).days + self.dose_stats(recent).days

    def fortnights(self) -> tuple[tuple, tuple]:
        """Doses of the 14 local days before the last 14, and of the last 14 (today
        included, up to as_of)."""
        if "fortnights" not in self.memo:
            mid = self.midnight(self.today - timedelta(days=FORTNIGHTS_DAYS // 2 - 1))
            start = self.midnight(self.today - timedelta(days=FORTNIGHTS_DAYS - 1))
            self.memo["fortnights"] = (self.doses_between(start, mid), self.doses_between(mid))
        return self.memo["fortnights"]

    def dose_stats(self, doses: tuple) -> DoseStats:
        """One pass over time-sorted ``doses`` (remembered per window): days with a dose,
        total amount, and whether all share one unit and product facts.

        Converts one dose per day to local time, not every dose: after a dose on day D,
        doses before the next local midnight are on D as well.
        """
        key = ("stats", id(doses))
        if key in self.memo:
            return self.memo[key][1]
        days = 0
        total = 0.0
        boundary: datetime | None = None
        tz = self.tz
        same = True
        if doses:
            f = doses[0]
            unit, pct, gpc, product = f.unit, f.mitragynine_percent, f.grams_per_capsule, f.product
        for d in doses:
            t = d.taken_at
            if boundary is None or t >= boundary:
                day = t.astimezone(tz).date()
                days += 1
                boundary = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
            total += d.amount
            if same and (d.unit != unit or d.mitragynine_percent != pct
                         or d.grams_per_capsule != gpc or d.product != product):
                same = False
        single_unit = same or len({d.unit for d in doses}) == 1
        stats = DoseStats(days, total, doses[0].unit if doses and single_unit else None, same)
        self.memo[key] = (doses, stats)  # keep the window alive while its id is a key
        return stats

    def instrument(self, instrument_id: str):
        """The instrument definition, looked up once per evaluation."""
        key = ("instrument", instrument_id)
        if key not in self.memo:
            self.memo[key] = kinstruments.get_instrument(instrument_id)
        return self.memo[key]

    # -- other tables
    def labs(self, code: str, days: float | None = None) -> tuple[LabResult, ...]:
        """Results of lab ``code`` within ``days`` before as_of (None: the whole history),
        oldest first."""
        rows = self.timeline.labs_by_code.get(code, ())
        return self.window(rows, None if days is None else self.ago(days))

    def assessments(self, instrument: str, days: float) -> tuple[Assessment, ...]:
        """Assessments of ``instrument`` within ``days`` before as_of, oldest first."""
        rows = self.timeline.assessments_by_instrument.get(instrument, ())
        return self.window(rows, self.ago(days))

    def assessments_before(self, instrument: str, moment: datetime,
                           days: float) -> tuple[Assessment, ...]:
        """Assessments of ``instrument`` in the ``days`` before ``moment`` (``moment`` not
        included), oldest first: the baseline of a later assessment."""
        rows = self.timeline.assessments_by_instrument.get(instrument, ())
        i = bisect_left(rows, moment - timedelta(days=days), key=at_key)
        return rows[i : bisect_left(rows, moment, key=at_key)]

    def side_effects(self, code: str, days: float) -> tuple:
        """Reports of side effect ``code`` within ``days`` before as_of, oldest first."""
        rows = self.timeline.side_effects_by_code.get(code, ())
        return self.window(rows, self.ago(days))

    def substances(self, days: float) -> tuple:
        """Reported substance use within ``days`` before as_of, oldest first."""
        return self.window(self.timeline.substances, self.ago(days))

    def diary_days(self) -> tuple[date, ...]:
        """Diary days up to the as_of day (the whole list: a rule reads back from the last)."""
        days = self.timeline.diary_days
        return days[: bisect_right(days, self.today)]

    def current_medications(self) -> list:
        """Medications taken on the as_of day."""
        if "meds" not in self.memo:
            today = self.today
            self.memo["meds"] = [m for m in self.timeline.medications if m.is_current(today)]
        return self.memo["meds"]

    def pregnancy(self) -> dict[str, Any] | None:
        """Why the patient counts as pregnant (reported, or a positive hCG), or None."""
        if "pregnancy" in self.memo:
            return self.memo["pregnancy"]
        found: dict[str, Any] | None = None
        if self.timeline.patient.pregnant:
            found = {"pregnancy_reported": True}
        else:
            hcg = self.labs("hcg", self.settings["hcg_positive_valid_days"])
            if hcg and qualitative_positive(hcg[-1]):
                found = {"hcg": lab_json(hcg[-1])}
        self.memo["pregnancy"] = found
        return found
