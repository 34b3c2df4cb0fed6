"""Mood: suicide risk from the PHQ-9 (item 9), severe depression (PHQ-9) and severe
anxiety (GAD-7).

References
----------
.. [1] Kroenke K, Spitzer RL, Williams JBW. The PHQ-9. J Gen Intern Med 2001;16:606-613
   (``kroenke-2001-phq9``); instruments.md §6.3: any answer above 0 to item 9 calls for a
   suicide-risk assessment (clinical convention, not a scoring rule); totals 20-27 severe.
.. [2] Spitzer RL et al. A brief measure for assessing generalized anxiety disorder: the
   GAD-7. Arch Intern Med 2006;166:1092-1097 (``spitzer-2006-gad7``); instruments.md §6.4:
   totals 15-21 severe.

The severe bands are read from the instruments' definitions (the one scorer), not copied.
"""

from __future__ import annotations

from speciosa.safety.rules._common import iso, item_conditions, least_total, score
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, assessments, rule


@rule(
    "SAF-SUICIDE",
    topic="suicide-risk",
    severity="urgent",
    settings=("phq9_recent_days",),
    windows=(assessments("phq9", "phq9_recent_days"),),
    citations=("kroenke-2001-phq9",),
    version=2,
)
def suicide_risk(ctx: Context) -> Found | None:
    """PHQ-9 item 9 (thoughts of death or self-harm) answered above 0 in a PHQ-9 of the last
    {phq9_recent_days} days: urgent, same-day safety follow-up (clinical convention); the
    latest PHQ-9 stored as a total only (an import): info, item 9 is unknown and should be
    asked.

    Item 9 is the item ``self-harm``; the condition is read from the PHQ-9 definition's
    ``phq9-item9-positive`` flag, and the latest PHQ-9 that meets it is reported. A PHQ-9
    stored as a total only, or without an answer to item 9, cannot show item 9: when the
    latest PHQ-9 of the window is one and no PHQ-9 of the window answers item 9 above 0, the
    finding is info and asks for item 9 (version 2; version 1 stayed silent).
    The 14-day window is the PHQ-9's own time frame (Kroenke 2001); same-day follow-up is
    the clinical convention noted in instruments.md §6.3.
    """
    rows = ctx.assessments("phq9", ctx.settings["phq9_recent_days"])
    if not rows:
        return None
    # The flag's own condition (item "self-harm" >= 1 in the PHQ-9 definition), checked
    # directly on the responses: no full scoring pass is needed for a single item.
    phq9 = ctx.instrument("phq9")
    conditions = item_conditions(phq9, "phq9-item9-positive")
    for a in reversed(rows):
        if not a.items:
            continue
        hit = next(((item, a.items[item]) for item, least in conditions
                    if a.items.get(item, -1) >= least), None)
        if hit is None:
            continue
        item, value = hit
        anchor = phq9.item(item).anchor(value)
        ev = {"assessment_at": iso(a.at), "item": item, "value": value, "anchor": anchor}
        message = (
            f"PHQ-9 item 9 (thoughts of being better off dead or of self-harm) answered "
            f"{value} ('{anchor}') on {a.at.date()}."
        )
        step = (
            "Consider a same-day suicide risk assessment following local protocol, including "
            "access to means and intent to overdose."
        )
        return Found("urgent", message, ev, step)
    latest = rows[-1]
    if latest.items and any(item in latest.items for item, _ in conditions):
        return None  # item 9 answered 0 in the latest PHQ-9
    total = "" if latest.total is None else f" (total {latest.total})"
    ev = {"assessment_at": iso(latest.at), "item": "self-harm", "value": None,
          "total": latest.total}
    message = (
        f"The PHQ-9 of {latest.at.date()}{total} has no answer to item 9 (thoughts of being "
        "better off dead or of self-harm), for example because only its total was imported: "
        "suicide risk is unknown, not absent."
    )
    step = ("Consider asking item 9 at the next contact (or sooner if the total or the history "
            "gives concern), and following local protocol if it is answered above 0.")
    return Found("info", message, ev, step)


def _severe(ctx: Context, instrument: str, days: float):
    """The latest assessment of ``instrument`` in the window, its total and the unanswered
    items, when the total is in the definition's ``severe`` band; else None. A response
    with items left unanswered has no total: it counts when the least total it can have
    (version 2) is already in the band."""
    rows = ctx.assessments(instrument, days)
    if not rows:
        return None
    a = rows[-1]
    total, _, _ = score(ctx, a)
    unanswered: list[str] = []
    if total is None:
        total, unanswered = least_total(ctx, instrument, a.items)
        if not unanswered:
            total = None  # items that cannot be read: no total to judge
    band = next((b for b in ctx.instrument(instrument).bands if b.label == "severe"), None)
    if total is None or band is None or total < band.min:
        return None
    return a, total, band, unanswered


def _total_text(label: str, inst, total: int, unanswered: list[str]) -> str:
    if not unanswered:
        return f"{label} total {total}"
    names = ", ".join(_item_name(inst, i) for i in unanswered)
    return f"{label} total at least {total} ({names} unanswered)"


def _item_name(inst, item_id: str) -> str:
    numbers = [i.id for i in inst.items]
    return f"item {numbers.index(item_id) + 1}" if item_id in numbers else item_id


def _severe_evidence(a, total: int, band, unanswered: list[str]) -> dict:
    ev = {"assessment_at": iso(a.at), "total": None if unanswered else total,
          "band": band.label, "band_min": band.min}
    if unanswered:
        ev.update(total_at_least=total, unanswered=unanswered)
    return ev


@rule(
    "SAF-DEPRESSION-SEVERE",
    topic="depression-severe",
    severity="warning",
    settings=("phq9_recent_days",),
    windows=(assessments("phq9", "phq9_recent_days"),),
    citations=("kroenke-2001-phq9",),
    version=2,
)
def depression_severe(ctx: Context) -> Found | None:
    """Latest PHQ-9 of the last {phq9_recent_days} days with a total in the severe band
    (20-27, Kroenke 2001): warning, whatever item 9 says.

    The band is read from the PHQ-9 definition; a total stored without items (an import)
    counts, and so does a response with items left unanswered (item 9 skipped, say) whose
    answered items already reach the band: the least total it can have is reported
    (version 2; version 1 stayed silent without a total). Item 9 is judged separately by
    suicide-risk.
    """
    hit = _severe(ctx, "phq9", ctx.settings["phq9_recent_days"])
    if hit is None:
        return None
    a, total, band, unanswered = hit
    ev = _severe_evidence(a, total, band, unanswered)
    shown = _total_text("PHQ-9", ctx.instrument("phq9"), total, unanswered)
    message = (f"{shown} on {a.at.date()}: severe depressive symptoms "
               f"(band {band.min}-{band.max}, Kroenke 2001). The PHQ-9 measures symptom "
               "severity; it is not a diagnosis.")
    step = ("Consider a clinical review of depression soon (diagnosis, treatment or referral), "
            "asking about item 9 and overdose risk, and repeating the PHQ-9.")
    return Found("warning", message, ev, step)


@rule(
    "SAF-ANXIETY-SEVERE",
    topic="anxiety-severe",
    severity="warning",
    settings=("gad7_recent_days",),
    windows=(assessments("gad7", "gad7_recent_days"),),
    citations=("spitzer-2006-gad7",),
    version=2,
)
def anxiety_severe(ctx: Context) -> Found | None:
    """Latest GAD-7 of the last {gad7_recent_days} days with a total in the severe band
    (15-21, Spitzer 2006): warning.

    The band is read from the GAD-7 definition; a total stored without items counts, and so
    does a response with items left unanswered whose answered items already reach the band
    (the least total it can have; version 2).
    """
    hit = _severe(ctx, "gad7", ctx.settings["gad7_recent_days"])
    if hit is None:
        return None
    a, total, band, unanswered = hit
    ev = _severe_evidence(a, total, band, unanswered)
    shown = _total_text("GAD-7", ctx.instrument("gad7"), total, unanswered)
    message = (f"{shown} on {a.at.date()}: severe anxiety symptoms "
               f"(band {band.min}-{band.max}, Spitzer 2006). The GAD-7 measures symptom "
               "severity; it is not a diagnosis.")
    step = ("Consider a clinical review of anxiety (diagnosis, treatment or referral); anxiety "
            "is also a withdrawal symptom, so ask when kratom was last taken.")
    return Found("warning", message, ev, step)
