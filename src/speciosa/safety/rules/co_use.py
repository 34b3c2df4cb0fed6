"""Co-use and interactions: sedating drugs and alcohol with kratom, CYP3A substrates.

References
----------
.. [1] pharmacology.md §8.5-8.6: other opioids, benzodiazepines and other CNS depressants,
   and alcohol add respiratory and CNS depression; most deaths with kratom detected involved
   other substances (Olsen 2019; WHO ECDD 2021); exposures to several substances had about
   2-3 times the odds of a serious outcome (Post 2019).
.. [2] Tanna RS et al. Clin Pharmacol Ther 2023;113:1315-1325: one 2 g dose of kratom tea
   raised midazolam AUC 1.39-fold (90 % CI 1.23-1.57), intestinal CYP3A inhibition.
"""

from __future__ import annotations

from typing import Any

from speciosa.knowledge import drugs
from speciosa.safety.rules._common import iso, qualitative_positive, score
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import (
    Found,
    assessments,
    doses,
    labs,
    medications,
    rule,
    substances,
)

#: Drug-table classes that count as sedating co-use, in the order findings list them.
SEDATIVE_CLASSES = ("opioid", "benzodiazepine", "gabapentinoid", "other-sedative", "alcohol")


def sedative_labels(name: str) -> list[str]:
    """The labels (``"opioid"``, ``"other sedative-hypnotic"``...) of the sedating classes
    the drug table gives ``name``; empty for a name it does not know or does not class so."""
    found = drugs.classify(name)
    return [drugs.classes()[c].label for c in SEDATIVE_CLASSES if found.has(c)]


def cyp3a_margin(name: str) -> str | None:
    """How the CYP3A rule weighs ``name``: ``"narrow"`` for a substrate on the FDA's
    narrow-therapeutic-range list, an FDA sensitive index substrate (midazolam, triazolam)
    or one whose US label has a boxed warning on CYP3A4 inhibitors (oxycodone);
    ``"sensitive"`` for another FDA sensitive substrate; None otherwise (moderate-sensitive
    and other substrates, or not a CYP3A substrate in the table)."""
    margin = None
    for _, a in drugs.classify(name).assignments("cyp3a-substrate"):
        if a.narrow_range or a.boxed_warning or a.sensitivity == "sensitive-index":
            return "narrow"
        if a.sensitivity == "sensitive":
            margin = "sensitive"
    return margin


#: Positive urine screens that count as co-use, by drug class.
UDS_CLASSES = {
    "uds-opioids": "opioid",
    "uds-fentanyl": "opioid",
    "uds-methadone": "opioid",
    "uds-buprenorphine": "opioid",
    "uds-benzodiazepines": "benzodiazepine",
    "uds-alcohol": "alcohol",
}


@rule(
    "SAF-COUSE-SED",
    topic="co-use-sedative",
    severity="warning",
    settings=("kratom_current_use_days", "co_use_lookback_days", "audit_c_valid_days"),
    windows=(doses("kratom_current_use_days"), medications(), substances("co_use_lookback_days"),
             labs(tuple(UDS_CLASSES), "co_use_lookback_days"),
             assessments("audit-c", "audit_c_valid_days")),
    citations=("post-2019", "olsen-2019-mmwr", "who-ecdd-2021-kratom", "bush-1998-auditc",
               "bradley-2003-auditc", "kale-2019-urine-drug-tests"),
)
def co_use_sedative(ctx: Context) -> Found | None:
    """Current kratom use together with an opioid, benzodiazepine, gabapentinoid, other
    sedative-hypnotic or alcohol (current medication, reported use, positive urine screen or
    positive AUDIT-C).

    Fires with a kratom dose in the last {kratom_current_use_days} days **and** any of: a
    current medication that is an opioid, benzodiazepine, gabapentinoid or other
    sedative-hypnotic (the drug table, docs/drugs.md: brand names count, 7-hydroxymitragynine
    is an opioid, the antagonists naltrexone and naloxone are not); such a substance or alcohol reported in the last
    {co_use_lookback_days} days; a positive urine screen for opioids, fentanyl, methadone,
    buprenorphine, benzodiazepines or alcohol in the last {co_use_lookback_days} days
    (presumptive); a positive AUDIT-C (the definition's sex-specific cut-off) in the last
    {audit_c_valid_days} days. Evidence: post-2019 (several substances: about 2-3 x the odds
    of a serious outcome), olsen-2019-mmwr and who-ecdd-2021-kratom (deaths mostly
    polysubstance), bush-1998-auditc and bradley-2003-auditc (AUDIT-C),
    kale-2019-urine-drug-tests (screens are presumptive).
    """
    last = ctx.current_kratom()
    if last is None:
        return None
    s = ctx.settings
    items: list[dict[str, Any]] = []
    for med in ctx.current_medications():
        for label in sedative_labels(med.name):
            items.append({"class": label, "name": med.name, "source": "medication",
                          "since": med.start.isoformat()})
    for sub in ctx.substances(s["co_use_lookback_days"]):
        for label in sedative_labels(sub.name):
            items.append({"class": label, "name": sub.name, "source": "reported use",
                          "at": iso(sub.at)})
    for code, label in UDS_CLASSES.items():
        rows = ctx.labs(code, s["co_use_lookback_days"])
        if rows and qualitative_positive(rows[-1]):
            items.append({"class": label, "name": code, "source": "urine screen (presumptive)",
                          "at": iso(rows[-1].at)})
    audit = ctx.assessments("audit-c", s["audit_c_valid_days"])
    if audit:
        a = audit[-1]
        total, flags, _ = score(ctx, a)
        if "audit-c-positive" in flags or "audit-c-positive-depends-on-sex" in flags:
            entry = {"class": "alcohol", "name": "AUDIT-C", "source": "screen",
                     "at": iso(a.at), "total": total}
            if "audit-c-positive-depends-on-sex" in flags:
                entry["note"] = "positive for women; the patient's sex is not recorded"
            items.append(entry)
    if not items:
        return None
    seen: dict[str, list[str]] = {}
    for it in items:
        seen.setdefault(it["class"], [])
        if it["name"] not in seen[it["class"]]:
            seen[it["class"]].append(it["name"])
    listing = "; ".join(f"{label} ({', '.join(names)})" for label, names in seen.items())
    ev = {"kratom_last_dose_at": iso(last.taken_at), "co_use": items,
          "classes": list(seen)}
    message = (
        f"Kratom used within the last {s['kratom_current_use_days']} days (last "
        f"{last.taken_at.date()}) alongside {listing}. Opioids, benzodiazepines and other "
        "CNS depressants and alcohol add to respiratory and CNS depression; most deaths "
        "with kratom detected involved other substances, and exposures to several "
        "substances had about 2-3 times the odds of a serious outcome."
    )
    step = (
        "Consider discussing overdose risk and naloxone, reviewing whether the sedating "
        "medicine is still needed or its dose, and asking about alcohol and other drugs."
    )
    return Found("warning", message, ev, step)


@rule(
    "SAF-DDI-CYP3A",
    topic="interaction-cyp3a",
    severity="warning",
    settings=("kratom_current_use_days",),
    windows=(doses("kratom_current_use_days"), medications()),
    citations=("tanna-2023", "tanna-2021", "kong-2011", "fda-ddi-table", "fda-oxycontin-label"),
)
def interaction_cyp3a(ctx: Context) -> Found | None:
    """A current medication sensitive to CYP3A inhibition while kratom is in current use
    (kratom raised midazolam exposure 1.4-fold): warning for narrow-margin substrates
    (midazolam, fentanyl, oxycodone, tacrolimus...), info for other sensitive ones.

    Fires with a kratom dose in the last {kratom_current_use_days} days and a current
    medication that the drug table (docs/drugs.md) gives as a sensitive CYP3A substrate:
    warning for narrow-margin ones (the FDA's narrow-therapeutic-range substrates such as
    fentanyl, alfentanil, tacrolimus, sirolimus, ciclosporin, pimozide, quinidine,
    ergotamine; the FDA's sensitive index substrates midazolam and triazolam; oxycodone,
    whose label has a boxed warning on CYP3A4 inhibitors), info for other FDA sensitive
    substrates (simvastatin, lovastatin, quetiapine, sildenafil, everolimus, ...); brand
    names count. Moderate-sensitive and other substrates (alprazolam, methadone,
    buprenorphine) do not fire. Evidence: tanna-2023 (2 g kratom tea raised midazolam AUC
    1.39-fold, 90 % CI 1.23-1.57, n = 12; higher or repeated doses untested), tanna-2021
    and kong-2011 (in vitro CYP3A inhibition), fda-ddi-table (substrate categories),
    fda-oxycontin-label (boxed warning).
    """
    last = ctx.current_kratom()
    if last is None:
        return None
    narrow, sensitive = [], []
    for med in ctx.current_medications():
        margin = cyp3a_margin(med.name)
        if margin == "narrow":
            narrow.append(med.name)
        elif margin == "sensitive":
            sensitive.append(med.name)
    if not narrow and not sensitive:
        return None
    names = narrow + sensitive
    ev = {"kratom_last_dose_at": iso(last.taken_at), "narrow_margin": narrow,
          "sensitive": sensitive}
    message = (
        f"{', '.join(names)}: sensitive CYP3A substrate{'s' if len(names) > 1 else ''} "
        f"taken with kratom (last dose {last.taken_at.date()}). In 12 healthy adults one 2 g "
        "dose of kratom tea raised midazolam exposure 1.4-fold (AUC ratio 1.39, 90 % CI "
        "1.23-1.57), consistent with intestinal CYP3A inhibition by mitragynine; larger or "
        "repeated kratom doses were not tested and could have a larger effect."
    )
    step = (
        f"Consider monitoring for increased effects of {', '.join(names)} (and drug levels "
        "where they are measured), especially when kratom use changes."
    )
    return Found("warning" if narrow else "info", message, ev, step)
