"""Withdrawal: COWS bands and a rise of SOWS above the patient's recent lowest.

Kratom withdrawal is opioid-like; COWS and SOWS are opioid scales, not validated for kratom.

References
----------
.. [1] Wesson DR, Ling W. The Clinical Opiate Withdrawal Scale (COWS). J Psychoactive Drugs
   2003;35(2):253-259 (bands 13-24 moderate, 25-36 moderately severe, > 36 severe).
.. [2] Handelsman L et al. Two new rating scales for opiate withdrawal. Am J Drug Alcohol
   Abuse 1987;13:293-308 (SOWS: no validated bands).
.. [3] pharmacology.md §8.3 (kratom dependence and withdrawal; buprenorphine case series).
"""

from __future__ import annotations

from typing import Any

from speciosa.safety.rules._common import iso, least_total, score
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, assessments, last_dose, rule


@rule(
    "SAF-WD-MOD",
    topic="withdrawal-moderate",
    severity="urgent",
    settings=("withdrawal_cows_moderate", "withdrawal_cows_urgent", "withdrawal_recent_days",
              "sows_rise_points", "sows_baseline_days", "sows_moderate_points"),
    windows=(
        assessments("cows", "withdrawal_recent_days"),
        assessments("sows", "withdrawal_recent_days", "sows_baseline_days",
                    why="the latest SOWS and the baseline before it"),
        last_dose(),
    ),
    citations=("wesson-2003-cows", "handelsman-1987-sows", "singh-2014",
               "singh-2019-kratom-dependence", "weiss-douglas-2021",
               "rogers-2024-kratom-cohort"),
    version=3,
)
def withdrawal(ctx: Context) -> Found | None:
    """Latest COWS of the last days at or above the moderate band (warning) or the
    moderately severe band (urgent), or a latest SOWS at or above {sows_moderate_points}
    (a site convention; warning), or a marked rise of SOWS above the patient's recent lowest
    (warning).

    Fires when the latest COWS of the last {withdrawal_recent_days} days is at least
    {withdrawal_cows_moderate} (the moderate band; warning) or at least
    {withdrawal_cows_urgent} (moderately severe or severe; urgent); or when the latest SOWS
    of the last {withdrawal_recent_days} days is at least {sows_rise_points} points above the
    lowest SOWS in the {sows_baseline_days} days before it (warning), or when that SOWS is at
    least {sows_moderate_points} points, the first SOWS included (warning; version 2). The
    absolute level is a site convention (half the scale's maximum of 64), not a validated
    band. A COWS or SOWS with items left unanswered has no total; the least total it can
    have (its answered items) is read against the thresholds (version 3). COWS bands:
    wesson-2003-cows (13-24, 25-36, > 36); SOWS has no validated bands
    (handelsman-1987-sows; in a US kratom cohort SOWS was 13.5 +/- 11.9,
    rogers-2024-kratom-cohort). Kratom withdrawal: singh-2014,
    singh-2019-kratom-dependence; buprenorphine case series: weiss-douglas-2021.
    """
    s = ctx.settings
    severity: str | None = None
    ev: dict[str, Any] = {}
    parts: list[str] = []
    cows = ctx.assessments("cows", s["withdrawal_recent_days"])
    if cows:
        a = cows[-1]
        total, _, band = score(ctx, a)
        unanswered: list[str] = []
        if total is None:  # items left unanswered: the least total it can have (version 3)
            total, unanswered = least_total(ctx, "cows", a.items)
            total = total if unanswered else None
            band = None
        if total is not None and total >= s["withdrawal_cows_moderate"]:
            severity = "urgent" if total >= s["withdrawal_cows_urgent"] else "warning"
            ev["cows"] = {"at": iso(a.at), "total": None if unanswered else total, "band": band}
            if unanswered:
                ev["cows"].update(total_at_least=total, unanswered=unanswered)
                parts.append(f"COWS at least {total} on {a.at.date()} ({len(unanswered)} "
                             "item(s) unanswered).")
            else:
                parts.append(
                    f"COWS {total} on {a.at.date()}" + (f" ({band} withdrawal)." if band else ".")
                )
    sows = ctx.assessments("sows", s["withdrawal_recent_days"])
    if sows:
        a = sows[-1]
        total, _, _ = score(ctx, a)
        sows_unanswered: list[str] = []
        if total is None:  # items left unanswered: the least total it can have (version 3)
            total, sows_unanswered = least_total(ctx, "sows", a.items)
            total = total if sows_unanswered else None
        shown = (f"SOWS at least {total}" if sows_unanswered else f"SOWS {total}")
        if total is not None:
            base = None
            for b in ctx.assessments_before("sows", a.at, s["sows_baseline_days"]):
                t, _, _ = score(ctx, b)
                if t is not None and (base is None or t < base[1]):
                    base = (b, t)
            high = total >= s["sows_moderate_points"]
            if high:
                severity = severity or "warning"
                ev["sows_level"] = {"at": iso(a.at), "total": total,
                                    "threshold": s["sows_moderate_points"]}
                if sows_unanswered:
                    ev["sows_level"].update(total=None, total_at_least=total,
                                            unanswered=sows_unanswered)
                parts.append(
                    f"{shown} on {a.at.date()}, at or above {s['sows_moderate_points']:g} "
                    "(half the scale's maximum: a site convention, not a validated band)."
                )
            if base is not None and total - base[1] >= s["sows_rise_points"]:
                severity = severity or "warning"
                ev["sows"] = {
                    "at": iso(a.at),
                    "total": total,
                    "baseline_at": iso(base[0].at),
                    "baseline_total": base[1],
                    "rise": total - base[1],
                }
                least = "at least " if sows_unanswered else ""
                parts.append(
                    f"SOWS rose from {base[1]} ({base[0].at.date()}) to {least}{total} "
                    f"({a.at.date()}), +{least}{total - base[1]} points."
                )
    if severity is None:
        return None
    message = " ".join(parts) + (
        " Kratom withdrawal is opioid-like (aches, insomnia, runny eyes and nose, diarrhoea, "
        "restlessness); COWS and SOWS are opioid scales, not validated for kratom."
    )
    last = ctx.last_dose()
    if last is not None:
        ev["last_dose_at"] = iso(last.taken_at)
    if severity == "urgent":
        step = (
            "Consider same-day clinical review: hydration, symptom relief, and whether "
            "treatment for kratom or opioid use disorder (buprenorphine has been used in case "
            "series) is appropriate; ask when kratom and other opioids were last taken."
        )
    else:
        step = (
            "Consider reviewing withdrawal symptoms and their management, asking when kratom "
            "and other opioids were last taken, and repeating the scale."
        )
    return Found(severity, message, ev, step)
