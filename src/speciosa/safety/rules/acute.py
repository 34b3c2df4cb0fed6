"""Acute harms reported on the side-effect checklist: seizure.

References
----------
.. [1] pharmacology.md §8.2: seizures are among the effects reported in kratom exposures to
   US poison centres (Post 2019) and in case reports, often with other substances; the
   "Krypton" product was adulterated with O-desmethyltramadol (Arndt 2011).
"""

from __future__ import annotations

from typing import Any

from speciosa.safety.rules._common import iso
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, last_dose, rule, side_effects


@rule(
    "SAF-SEIZURE",
    topic="seizure",
    severity="urgent",
    settings=("seizure_recent_days",),
    windows=(side_effects(("seizure",), "seizure_recent_days"), last_dose()),
    citations=("post-2019", "afzal-2020", "arndt-2011-krypton"),
)
def seizure(ctx: Context) -> Found | None:
    """A seizure reported on the side-effect checklist: urgent review.

    Fires when a ``seizure`` side effect was reported in the last {seizure_recent_days}
    days. Evidence: seizures among kratom exposures reported to US poison centres
    (post-2019), a case report (afzal-2020), and O-desmethyltramadol adulteration of a kratom
    product (arndt-2011-krypton).
    """
    rows = ctx.side_effects("seizure", ctx.settings["seizure_recent_days"])
    if not rows:
        return None
    ev: dict[str, Any] = {"reports": [iso(x.at) for x in rows]}
    last = ctx.last_dose()
    if last is not None:
        ev["kratom_last_dose_at"] = iso(last.taken_at)
    message = (
        f"Seizure reported on {rows[-1].at.date()}. Seizures are among the effects reported "
        "in kratom exposures to US poison centres and in case reports, often with other "
        "substances involved."
    )
    step = (
        "Consider same-day clinical review, asking about other substances and the kratom "
        "product used (adulteration with O-desmethyltramadol has been reported)."
    )
    return Found("urgent", message, ev, step)
