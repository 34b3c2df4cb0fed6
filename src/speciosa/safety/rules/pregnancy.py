"""Pregnancy: kratom in current use while pregnant (neonatal abstinence syndrome).

References
----------
.. [1] pharmacology.md §8.7: neonatal abstinence after maternal kratom use (Eldridge 2018;
   Paediatr Child Health 2019; Nellhaus 2018); Post 2019: 5 of 7 neonatal exposures had
   withdrawal; standard urine drug screens do not detect kratom.
"""

from __future__ import annotations

from speciosa.safety.rules._common import iso
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, doses, labs, rule


@rule(
    "SAF-PREG",
    topic="pregnancy",
    severity="warning",
    settings=("kratom_current_use_days", "hcg_positive_valid_days"),
    windows=(labs(("hcg",), "hcg_positive_valid_days"), doses("kratom_current_use_days")),
    citations=("eldridge-2018", "pcch-2019-neonatal-abstinence", "nellhaus-2018", "post-2019",
               "labcorp-kratom-urine-assay"),
)
def pregnancy(ctx: Context) -> Found | None:
    """Pregnancy reported, or a positive hCG, while kratom is in current use: risk of
    neonatal abstinence syndrome.

    Fires when pregnancy is reported, or the latest hCG of the last
    {hcg_positive_valid_days} days is positive (a qualitative ``positive``, or a value above
    the reporting laboratory's upper limit), with a kratom dose in the last
    {kratom_current_use_days} days. Evidence: neonatal abstinence case reports
    (eldridge-2018, pcch-2019-neonatal-abstinence, nellhaus-2018); 5 of 7 neonatal exposures
    had withdrawal (post-2019); standard screens miss kratom (labcorp-kratom-urine-assay).
    """
    why = ctx.pregnancy()
    if why is None:
        return None
    last = ctx.current_kratom()
    if last is None:
        return None
    ev = dict(why)
    ev["kratom_last_dose_at"] = iso(last.taken_at)
    how = "reported" if why.get("pregnancy_reported") else f"(positive hCG on {why['hcg']['at'][:10]})"
    message = (
        f"Pregnancy {how} with kratom use in the last {ctx.settings['kratom_current_use_days']} "
        f"days (last dose {last.taken_at.date()}). Neonatal abstinence syndrome after "
        "maternal kratom use is described in case reports, and 5 of 7 neonatal kratom "
        "exposures reported to US poison centres had withdrawal."
    )
    step = (
        "Consider referral to obstetric and addiction care experienced with opioid use in "
        "pregnancy, and making sure the delivery team knows about kratom use: standard urine "
        "drug screens do not detect it."
    )
    return Found("warning", message, ev, step)
