"""Liver: aminotransferases and bilirubin against the upper limit, jaundice symptoms.

Kratom has been linked to liver injury, mostly cholestatic or mixed, typically 2-49 days
after starting (low-quality evidence: case reports and case series).

References
----------
.. [1] US FDA. Drug-Induced Liver Injury: Premarketing Clinical Evaluation (guidance, 2009):
   Hy's law. Aithal GP et al. Clin Pharmacol Ther 2011;89:806-815 (DILI criteria).
.. [2] Schimmel J, Dart RC 2020; Ahmad J et al. 2021 (DILIN); LiverTox: kratom.
"""

from __future__ import annotations

from typing import Any

from speciosa.safety.rules._common import canonical, iso, lab_json, over, shown, uln
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, labs, last_dose, rule, side_effects

_UNITS = {"alt": "U/L", "ast": "U/L", "bilirubin": "mg/dL"}


@rule(
    "SAF-LIVER",
    topic="liver-injury",
    severity="urgent",
    settings=("liver_aminotransferase_uln_multiple", "liver_bilirubin_uln_multiple",
              "lab_recent_days", "symptom_recent_days"),
    windows=(labs(("alt", "ast", "bilirubin"), "lab_recent_days"),
             side_effects(("dark-urine-yellow-eyes",), "symptom_recent_days"), last_dose()),
    citations=("schimmel-dart-2020", "ahmad-2021-dilin", "livertox-kratom", "fda-2009-dili-guidance",
               "aithal-2011-dili-criteria"),
)
def liver_injury(ctx: Context) -> Found | None:
    """Latest ALT or AST above {liver_aminotransferase_uln_multiple} x ULN, or bilirubin above
    {liver_bilirubin_uln_multiple} x ULN, or dark urine or yellow eyes reported (warning);
    aminotransferase and bilirubin both over their thresholds, the Hy's law pattern
    (urgent).

    Reads the latest ALT, AST and total bilirubin of the last {lab_recent_days} days, each
    against its upper limit (the reporting laboratory's, else the catalogue's for the
    patient's sex), and dark urine or yellow eyes reported in the last
    {symptom_recent_days} days. Thresholds: fda-2009-dili-guidance,
    aithal-2011-dili-criteria. Kratom liver injury, mostly cholestatic or mixed, latency
    2-49 days, low-quality evidence: schimmel-dart-2020, ahmad-2021-dilin, livertox-kratom.
    """
    s = ctx.settings
    multiples = {
        "alt": s["liver_aminotransferase_uln_multiple"],
        "ast": s["liver_aminotransferase_uln_multiple"],
        "bilirubin": s["liver_bilirubin_uln_multiple"],
    }
    labs_over: dict[str, dict[str, Any]] = {}
    parts = []
    for code, multiple in multiples.items():
        rows = ctx.labs(code, s["lab_recent_days"])
        if not rows:
            continue
        r = rows[-1]
        value = canonical(r)
        limit, _ = uln(r, ctx.sex)
        if value is None or limit is None or limit <= 0 or not over(r, value, multiple * limit):
            continue
        ev = lab_json(r, value, limit, _UNITS[code])
        ev["times_uln"] = round(value / limit, 2)
        labs_over[code] = ev
        parts.append(
            f"{code.upper() if code != 'bilirubin' else 'Bilirubin'} {shown(r, value)} "
            f"{_UNITS[code]} on {r.at.date()} ({value / limit:.1f} x ULN)"
        )
    symptoms = ctx.side_effects("dark-urine-yellow-eyes", s["symptom_recent_days"])
    if not labs_over and not symptoms:
        return None
    hy = ("alt" in labs_over or "ast" in labs_over) and "bilirubin" in labs_over
    ev_all: dict[str, Any] = {"labs": labs_over}
    if symptoms:
        ev_all["symptoms"] = [{"code": x.code, "at": iso(x.at)} for x in symptoms]
        parts.append(f"dark urine or yellow eyes reported on {symptoms[-1].at.date()}")
    last = ctx.last_dose()
    if last is not None:
        ev_all["kratom_last_dose_at"] = iso(last.taken_at)
    message = (
        "; ".join(parts)[0].upper() + "; ".join(parts)[1:] + "."
        + (" Aminotransferase and bilirubin both raised: the pattern of severe drug-induced "
           "liver injury (Hy's law)." if hy else "")
        + " Kratom has been linked to liver injury, mostly cholestatic or mixed, typically "
        "2-49 days after starting (low-quality evidence: case reports and case series); "
        "other causes need to be excluded."
    )
    if hy:
        step = (
            "Consider same-day assessment (INR, ALP, clinical signs of liver failure) and "
            "specialist advice."
        )
    else:
        step = (
            "Consider repeating liver tests with ALP (and INR if bilirubin is raised), asking "
            "about kratom products, alcohol, paracetamol and other medicines and supplements, "
            "and specialist advice if the tests stay raised."
        )
    return Found("urgent" if hy else "warning", message, ev_all, step)
