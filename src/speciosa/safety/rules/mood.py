"""Mood: suicide risk from the PHQ-9 (item 9).

References
----------
.. [1] Kroenke K, Spitzer RL, Williams JBW. The PHQ-9. J Gen Intern Med 2001;16:606-613
   (``kroenke-2001-phq9``); instruments.md §6.3: any answer above 0 to item 9 calls for a
   suicide-risk assessment (clinical convention, not a scoring rule).
"""

from __future__ import annotations

from speciosa.safety.rules._common import iso, item_conditions
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, assessments, rule


@rule(
    "SAF-SUICIDE",
    topic="suicide-risk",
    severity="urgent",
    settings=("phq9_recent_days",),
    windows=(assessments("phq9", "phq9_recent_days"),),
    citations=("kroenke-2001-phq9",),
)
def suicide_risk(ctx: Context) -> Found | None:
    """PHQ-9 item 9 (thoughts of death or self-harm) answered above 0 in a PHQ-9 of the last
    {phq9_recent_days} days: urgent, same-day safety follow-up (clinical convention).

    Item 9 is the item ``self-harm``; the condition is read from the PHQ-9 definition's
    ``phq9-item9-positive`` flag, and the latest PHQ-9 that meets it is reported. A PHQ-9 stored as a total only cannot show item 9 and does not raise it.
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
    return None
