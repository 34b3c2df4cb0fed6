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
    ``"sensitive"`` for another FDA sensitive substrate; ``"opioid"`` for another opioid
    that is a CYP3A substrate (methadone, buprenorphine: the treatments of opioid use
    disorder); None otherwise (other moderate-sensitive and other substrates, or not a CYP3A
    substrate in the table)."""
    margin = None
    found = drugs.classify(name)
    for _, a in found.assignments("cyp3a-substrate"):
        if a.narrow_range or a.boxed_warning or a.sensitivity == "sensitive-index":
            return "narrow"
        if a.sensitivity == "sensitive":
            margin = "sensitive"
    if margin is None and found.has("cyp3a-substrate") and found.has("opioid"):
        return "opioid"
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
    version=2,
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
    {audit_c_valid_days} days. A medication counts while its status is active or unknown
    (version 2; version 1 read its dates only, so a medication marked stopped without a stop
    date still counted); a coded one is read by its drug, free text word by word.
    Evidence: post-2019 (several substances: about 2-3 x the odds
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
        for label in sedative_labels(med.lookup):
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
    citations=("tanna-2023", "tanna-2021", "kong-2011", "fda-ddi-table", "fda-oxycontin-label",
               "fda-dolophine-label"),
    version=3,
)
def interaction_cyp3a(ctx: Context) -> Found | None:
    """A current medication sensitive to CYP3A inhibition while kratom is in current use
    (kratom raised midazolam exposure 1.4-fold): warning for narrow-margin substrates
    (midazolam, fentanyl, oxycodone, tacrolimus...), info for other sensitive ones and for
    the opioids methadone and buprenorphine.

    Fires with a kratom dose in the last {kratom_current_use_days} days and a current
    medication that the drug table (docs/drugs.md) gives as a sensitive CYP3A substrate:
    warning for narrow-margin ones (the FDA's narrow-therapeutic-range substrates such as
    fentanyl, alfentanil, tacrolimus, sirolimus, ciclosporin, pimozide, quinidine,
    ergotamine; the FDA's sensitive index substrates midazolam and triazolam; oxycodone,
    whose label has a boxed warning on CYP3A4 inhibitors), info for other FDA sensitive
    substrates (simvastatin, lovastatin, quetiapine, sildenafil, everolimus, ...) and for the
    opioids that are CYP3A substrates, methadone and buprenorphine (version 2; version 1
    left them out; their levels rising adds to sedation and, for methadone, to QT
    prolongation); brand names and strengths count ("Dolophine 10 mg"). Other
    moderate-sensitive and other substrates (alprazolam) do not fire. Version 3: a
    medication counts only while its status is active or unknown. Evidence:
    tanna-2023 (2 g kratom tea raised midazolam AUC
    1.39-fold, 90 % CI 1.23-1.57, n = 12; higher or repeated doses untested), tanna-2021
    and kong-2011 (in vitro CYP3A inhibition), fda-ddi-table (substrate categories),
    fda-oxycontin-label (boxed warning), fda-dolophine-label (methadone).
    """
    last = ctx.current_kratom()
    if last is None:
        return None
    narrow, sensitive, opioid = [], [], []
    for med in ctx.current_medications():
        margin = cyp3a_margin(med.lookup)
        if margin == "narrow":
            narrow.append(med.name)
        elif margin == "sensitive":
            sensitive.append(med.name)
        elif margin == "opioid":
            opioid.append(med.name)
    if not narrow and not sensitive and not opioid:
        return None
    names = narrow + sensitive + opioid
    ev = {"kratom_last_dose_at": iso(last.taken_at), "narrow_margin": narrow,
          "sensitive": sensitive, "opioid_substrates": opioid}
    sens = narrow + sensitive
    what = []
    if sens:
        what.append(f"{', '.join(sens)}: sensitive CYP3A substrate{'s' if len(sens) > 1 else ''}")
    if opioid:
        what.append(f"{', '.join(opioid)}: opioid{'s' if len(opioid) > 1 else ''} metabolised "
                    "by CYP3A")
    message = (
        f"{'; '.join(what)}; taken with kratom "
        f"(last dose {last.taken_at.date()}). In 12 healthy adults one 2 g "
        "dose of kratom tea raised midazolam exposure 1.4-fold (AUC ratio 1.39, 90 % CI "
        "1.23-1.57), consistent with intestinal CYP3A inhibition by mitragynine; larger or "
        "repeated kratom doses were not tested and could have a larger effect."
    )
    if opioid:
        message += (
            f" For {', '.join(opioid)} (FDA table: CYP3A substrate) no study has measured "
            "levels with kratom; higher levels would add to sedation and, for methadone, to "
            "QT prolongation."
        )
    step = (
        f"Consider monitoring for increased effects of {', '.join(names)} (and drug levels "
        "where they are measured), especially when kratom use changes."
    )
    return Found("warning" if narrow else "info", message, ev, step)


#: The QTc lab code (ms); read only when the lab catalogue or the timeline holds it.
QTC = "qtc"


def _qtc_ms(result) -> float | None:
    """A QTc result in milliseconds (the catalogue's conversion when it knows ``qtc``)."""
    if result.value is None:
        return None
    try:
        from speciosa.knowledge import labs as klabs

        return klabs.to_canonical(QTC, result.value, result.unit or "ms")
    except (KeyError, LookupError, ValueError):
        return float(result.value) if (result.unit or "ms") == "ms" else None


def qt_medication_names(meds) -> list[str]:
    """The names of the medications among ``meds`` that the drug table classes as
    QT-prolonging (a coded one by its drug, free text by its words), methadone first."""
    hits = [m for m in meds if drugs.classify(m.lookup).has("qt-prolonging")]
    hits.sort(key=lambda m: "methadone" not in drugs.classify(m.lookup).ingredients)
    return [m.name for m in hits]


def qt_drug_names(names) -> list[str]:
    """The names among ``names`` that the drug table classes as QT-prolonging (known risk),
    methadone first."""
    hits = [n for n in names if drugs.classify(n).has("qt-prolonging")]
    return sorted(hits, key=lambda n: "methadone" not in drugs.classify(n).ingredients)


@rule(
    "SAF-QT",
    topic="qt-risk",
    severity="urgent",
    settings=("kratom_current_use_days", "qtc_warning_ms", "qtc_urgent_ms", "qtc_recent_days"),
    windows=(doses("kratom_current_use_days"), medications(),
             labs((QTC,), "qtc_recent_days")),
    citations=("krantz-2009-methadone-qtc", "fda-dolophine-label", "methadone-prolongs-qt",
               "crediblemeds-qtdrugs", "leong-abdullah-2021-ecg",
               "leong-abdullah-singh-2021-qt-review"),
    version=3,
)
def qt_risk(ctx: Context) -> Found | None:
    """Current kratom use together with a QT-prolonging medication (known risk; methadone
    first), or a recorded QTc of at least {qtc_warning_ms} ms (warning; at least
    {qtc_urgent_ms} ms: urgent), with the ECG advice of the references.

    Fires with a kratom dose in the last {kratom_current_use_days} days **and** a current
    medication the drug table classes as QT-prolonging with a known risk of torsades
    (CredibleMeds; methadone listed first: FDA boxed warning, Krantz 2009); or, whatever the
    kratom use, when the latest QTc of the last {qtc_recent_days} days is at least
    {qtc_warning_ms} ms (Krantz 2009: QTc over 450 to under 500 ms, discuss and monitor more
    often; urgent from {qtc_urgent_ms} ms: consider reducing or stopping methadone). Kratom:
    regular users had sinus tachycardia and borderline QTc more often than controls, prolonged
    QTc not (leong-abdullah-2021-ecg); a review of kratom cardiotoxicity
    (leong-abdullah-singh-2021-qt-review). The 450 and 500 ms cut-offs are Krantz 2009's.
    Version 2: a medication counts only while its status is active or unknown. Version 3: a
    QTc reported as an upper bound ("< 460 ms") is below its value and never meets a
    threshold; a lower bound (">= 500 ms") is at least its value.
    """
    s = ctx.settings
    last = ctx.current_kratom()
    meds = qt_medication_names(ctx.current_medications()) if last else []
    qtc = None
    rows = ctx.labs(QTC, s["qtc_recent_days"])
    if rows:
        ms = _qtc_ms(rows[-1])
        # "< 460 ms" is below 460, never at or above a threshold (version 3)
        if ms is not None and ms >= s["qtc_warning_ms"] and not rows[-1].below():
            qtc = (rows[-1], ms)
    if not meds and qtc is None:
        return None
    ev: dict[str, Any] = {}
    parts = []
    severity = "warning"
    if meds:
        ev["kratom_last_dose_at"] = iso(last.taken_at)
        ev["qt_medications"] = meds
        parts.append(
            f"{', '.join(meds)}: QT-prolonging (known risk of torsades) taken with kratom (last "
            f"dose {last.taken_at.date()}). Kratom users had borderline QTc and a fast heart "
            "rate more often than controls in one study; the combination has not been studied."
        )
    if qtc is not None:
        result, ms = qtc
        ev["qtc"] = {"at": iso(result.at), "ms": round(ms, 1), "threshold": s["qtc_warning_ms"]}
        if ms >= s["qtc_urgent_ms"]:
            severity = "urgent"
        limit = s["qtc_urgent_ms"] if severity == "urgent" else s["qtc_warning_ms"]
        parts.append(f"QTc {result.comparator or ''}{ms:g} ms on {result.at.date()} (at or "
                     f"above {limit:g} ms).")
    step = (
        "Consider an ECG (Krantz 2009: before methadone, within 30 days, then yearly, and with "
        "unexplained syncope or seizures); asking about heart disease, arrhythmia and fainting; "
        "checking potassium and other QT-prolonging drugs. QTc over 450 to under 500 ms: "
        "discuss risks and benefits and monitor more often; over 500 ms: consider reducing or "
        "stopping methadone or another QT drug, or changing treatment."
    )
    return Found(severity, " ".join(parts), ev, step)


def naltrexone_names(meds) -> list[str]:
    """The names of the medications among ``meds`` that hold naltrexone (a coded one by its
    drug, free text by its words: "Vivitrol", "Revia 50 mg")."""
    return [m.name for m in meds if "naltrexone" in drugs.classify(m.lookup).ingredients]


@rule(
    "SAF-NALTREXONE-KRATOM",
    topic="naltrexone-kratom",
    severity="warning",
    settings=("kratom_current_use_days",),
    windows=(doses("kratom_current_use_days"), medications()),
    citations=("naltrexone-is-an-opioid-antagonist", "article-4", "vivitrol-label",
               "pmc10337879-naltrexone-kratom", "lost-tolerance-overdose", "strang-2003-bmj"),
)
def naltrexone_kratom(ctx: Context) -> Found | None:
    """Kratom use while on naltrexone (by mouth or as an extended-release injection): needs
    review, for the blocked effect and for the overdose risk when naltrexone stops.

    Fires with a kratom dose in the last {kratom_current_use_days} days and a current
    medication or treatment episode holding naltrexone (the drug table, docs/drugs.md:
    Revia and Vivitrol count). Naltrexone blocks opioid receptors
    (naltrexone-is-an-opioid-antagonist, vivitrol-label), where mitragynine and
    7-hydroxymitragynine act as partial agonists (article-4): kratom's opioid effects may be
    blocked, and naltrexone taken while kratom still acts precipitated withdrawal in a case
    report of undisclosed kratom use (pmc10337879-naltrexone-kratom). When naltrexone stops,
    is missed or wears off (the injection's blockade lasts about 28 days), tolerance is low and
    a once-tolerated dose can cause a fatal overdose (lost-tolerance-overdose, vivitrol-label,
    strang-2003-bmj; evidence from other opioids, not kratom).
    """
    last = ctx.current_kratom()
    if last is None:
        return None
    names = naltrexone_names(ctx.current_medications())
    if not names:
        return None
    message = (
        f"Kratom used (last dose {last.taken_at.date()}) while on naltrexone "
        f"({', '.join(names)}). Naltrexone blocks opioid receptors, where kratom's alkaloids "
        "act: kratom's effect may be blocked, and naltrexone started while kratom still acts "
        "precipitated withdrawal in a case report. Trying to overcome the blockade, or using "
        "kratom or another opioid once naltrexone is stopped, missed or wears off (about 28 "
        "days after an injection), risks overdose: tolerance is lower than it was "
        "(evidence from other opioids, not kratom).")
    step = ("Consider reviewing the treatment plan with the patient: why kratom is used "
            "alongside naltrexone, the overdose risk if naltrexone stops or lapses, and "
            "naloxone.")
    return Found("warning", message, {"kratom_last_dose_at": iso(last.taken_at),
                                      "naltrexone": names}, step)


@rule(
    "SAF-MED-UNCLASSIFIED",
    topic="medication-not-classified",
    severity="info",
    settings=(),
    windows=(medications(),),
    citations=("cns-depressants-add-to-kratom", "fda-ddi-table", "crediblemeds-qtdrugs"),
)
def medication_not_classified(ctx: Context) -> Found | None:
    """A current medication the drug table does not know (free text, not coded, and no word
    of it is in the table): the co-use, CYP3A, QT and prolactin rules could not check it.

    Fires for every current medication (status active or unknown, within its dates) whose
    name the drug table (docs/drugs.md) does not recognise; a medication chosen from the
    table is always classified. The rules do not guess what such a name is: the finding
    lists it, so that a clinician can choose the drug from the table or review it by hand.
    Evidence: the checks it could not make (cns-depressants-add-to-kratom, fda-ddi-table,
    crediblemeds-qtdrugs).
    """
    names = [m.name for m in ctx.current_medications()
             if not m.coded and drugs.classify(m.lookup).unknown]
    if not names:
        return None
    names = sorted(set(names), key=str.lower)
    message = (f"Not classified: {', '.join(names)}. The drug table does not know "
               f"{'this name' if len(names) == 1 else 'these names'}, so the checks for "
               "sedative co-use, CYP3A and QT interactions and prolactin-raising medicines "
               "could not include them.")
    step = ("Consider choosing the drug from the list (a brand or generic name), or review "
            "it for interactions by hand.")
    return Found("info", message, {"not_classified": names}, step)
