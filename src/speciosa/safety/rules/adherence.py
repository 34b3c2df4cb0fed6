"""Adherence: a break in the diary of a patient who usually writes it.

References
----------
.. [1] Olsen EO et al. MMWR 2019;68:326-327: about 90 % of people who died with kratom
   detected had no evidence of current treatment (disengagement from care matters).
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import timedelta

from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, diary_before_last, diary_days, rule

#: The days before the last diary entry that count as the patient's usual writing.
USUAL_WINDOW_DAYS = 28


@rule(
    "SAF-DIARY-GAP",
    topic="diary-missed",
    severity="info",
    settings=("diary_gap_days", "diary_usual_days_per_28"),
    windows=(diary_days("diary_gap_days"),
             diary_before_last(USUAL_WINDOW_DAYS, why="how often the patient usually wrote")),
    citations=("olsen-2019-mmwr",),
)
def diary_missed(ctx: Context) -> Found | None:
    """No diary for {diary_gap_days} days from a patient who wrote it on at least
    {diary_usual_days_per_28} of the 28 days before.

    Fires when the last diary entry is {diary_gap_days} days old or more and the patient
    wrote the diary on at least {diary_usual_days_per_28} of the 28 days up to and including
    that last entry. The evidence names the last diary day, not the days since (which change
    every day and would undo a clinician's resolution of the same episode at the next
    sweep). Evidence: olsen-2019-mmwr (most people who died with kratom detected had no
    evidence of current treatment: disengagement matters).
    """
    s = ctx.settings
    days = ctx.diary_days()
    if not days:
        return None
    last = days[-1]
    gap = (ctx.today - last).days
    if gap < s["diary_gap_days"]:
        return None
    usual = len(days) - bisect_left(days, last - timedelta(days=USUAL_WINDOW_DAYS - 1))
    if usual < s["diary_usual_days_per_28"]:
        return None
    ev = {"last_diary_day": last.isoformat(), "entries_in_28_days_before": usual}
    message = (
        f"No diary for {gap} days (last entry {last}) from a patient who wrote it on {usual} "
        "of the 28 days before. A break in self-report can mean disengagement from care; "
        "most people who died with kratom detected had no evidence of current treatment."
    )
    step = "Consider contacting the patient to check in."
    return Found("info", message, ev, step)
