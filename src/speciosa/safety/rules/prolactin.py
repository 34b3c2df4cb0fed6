"""Prolactin: high, very high, rising, with symptoms, and a test that is due.

The direction is *up*, but the kratom-specific evidence is one de-challenge case report
(LaBryer 2018) plus opioid class pharmacology (mu agonists suppress tuberoinfundibular
dopamine: JCEM 1978, Delitala 1983, Bowen 2002); no controlled study exists. Messages say
exactly this, list the common other causes and name any current prolactin-raising medicine.
Pregnancy and breastfeeding raise prolactin physiologically and the guideline advises
against routine measurement in pregnancy (Melmed 2011), so these rules are not applied then.

Only the first (baseline) and the latest readable prolactin are converted, so a long
history costs no more than two results.
"""

from __future__ import annotations

from typing import Any

from speciosa.knowledge import prolactin as kprolactin
from speciosa.safety.rules._common import canonical, fmt, iso, lab_json, over, shown, uln
from speciosa.safety.rules._context import FORTNIGHTS_DAYS, Context, at_key
from speciosa.safety.rules._registry import Found, doses, labs, medications, rule, side_effects
from speciosa.safety.timeline import SAMPLE_STATES, LabResult

#: Side-effect codes linked to high prolactin (pharmacology.md §6.7).
PROLACTIN_SYMPTOMS = (
    "reduced-sex-drive",
    "sexual-dysfunction",
    "breast-enlargement-tenderness",
    "nipple-discharge",
    "menstrual-change",
)

_UNIT = "ng/mL"
_CITES = ("labryer-2018", "jcem-1978-opiates-prolactin", "delitala-1983", "bowen-2002",
          "melmed-2011-endocrine-society")
_CAUSES = (
    "Other causes are common: medicines (opioids, antipsychotics, metoclopramide and "
    "others), hypothyroidism, kidney or liver disease, stress of venipuncture and "
    "macroprolactin."
)
_KRATOM = (
    "Kratom may raise prolactin as other mu-opioid agonists do, but the kratom-specific "
    "evidence is one case report."
)

# Every prolactin rule reads these: the whole prolactin history (the baseline is the
# patient's first result), pregnancy (a positive hCG) and the current medications.
_BASE_WINDOWS = (
    labs(("prolactin",), why="the baseline is the patient's first result"),
    labs(("hcg",), "hcg_positive_valid_days", why="a positive hCG means pregnancy, when the ranges do not apply"),
    medications(),
)
_SYMPTOMS_WINDOW = side_effects(PROLACTIN_SYMPTOMS, "prolactin_symptom_window_days")

_Point = tuple[LabResult, float, float | None, str]


def _point(ctx: Context, r: LabResult) -> _Point | None:
    """(result, value ng/mL, ULN ng/mL, ULN source), or None when not convertible or when
    taken in pregnancy, while breastfeeding, after a positive hCG or possibly in pregnancy
    (its ``sample_state``: the non-pregnant range does not apply to it, so it is neither the
    baseline nor the latest result these rules read)."""
    if r.sample_state in SAMPLE_STATES and ctx.sex != "male":
        return None
    value = canonical(r)
    if value is None:
        return None
    limit, source = uln(r, ctx.sex)
    return r, value, limit, source


def _ends(ctx: Context) -> tuple[_Point | None, _Point | None, int]:
    """The first and the latest readable prolactin up to as_of, and how many there are.

    Only these two are converted: the rules compare the latest with the patient's first
    (baseline) result, so a long history costs no more than two results.
    """
    if "prl" not in ctx.memo:
        rows = ctx.labs("prolactin")
        first = last = None
        first_i = len(rows)
        for i, r in enumerate(rows):
            if (first := _point(ctx, r)) is not None:
                first_i = i
                break
        for i in range(len(rows) - 1, first_i, -1):
            if (last := _point(ctx, rows[i])) is not None:
                break
        if last is None:  # at most one readable result
            last = first
        ctx.memo["prl"] = (first, last, len(rows))
    return ctx.memo["prl"]


def _physiological(ctx: Context) -> bool:
    """Pregnancy and breastfeeding raise prolactin physiologically: the non-pregnant
    ranges do not apply and routine measurement is not advised (Melmed 2011)."""
    patient = ctx.timeline.patient
    if patient.sex == "male":  # recorded for a male patient: a contradiction, not a pause
        return False
    return patient.breastfeeding or ctx.pregnancy() is not None


def _latest(ctx: Context) -> _Point | None:
    latest = _ends(ctx)[1]
    if latest is None or _physiological(ctx):
        return None
    if latest[0].at < ctx.ago(ctx.settings["prolactin_monitoring_interval_days"]):
        return None
    return latest


def _raising_medications(ctx: Context) -> list[str]:
    return [
        med.name
        for med in ctx.current_medications()
        if kprolactin.prolactin_raising_medication(med.lookup) is not None
    ]


def _evidence(ctx: Context, latest: _Point) -> dict[str, Any]:
    r, value, limit, source = latest
    ev = {"result": lab_json(r, value, limit, _UNIT), "reference_source": source}
    meds = _raising_medications(ctx)
    if meds:
        ev["prolactin_raising_medications"] = meds
    return ev


def _meds_sentence(ev: dict[str, Any]) -> str:
    meds = ev.get("prolactin_raising_medications")
    return f" Current medicines that can raise prolactin: {', '.join(meds)}." if meds else ""


def _symptoms(ctx: Context) -> list:
    days = ctx.settings["prolactin_symptom_window_days"]
    found = []
    for code in PROLACTIN_SYMPTOMS:
        rows = ctx.side_effects(code, days)
        if rows:
            found.append(rows[-1])
    found.sort(key=at_key)
    return found


@rule(
    "SAF-PRL-VHIGH",
    topic="prolactin-very-high",
    severity="warning",
    settings=("prolactin_very_high_ng_per_ml", "prolactin_prolactinoma_ng_per_ml",
              "prolactin_monitoring_interval_days", "hcg_positive_valid_days"),
    windows=_BASE_WINDOWS,
    citations=("vilar-2014", "jcem-2023-prolactin-workup", "majumdar-mangal-2013",
               "melmed-2011-endocrine-society", "prolactin-above-250-prompt-referral"),
    version=2,
)
def prolactin_very_high(ctx: Context) -> Found | None:
    """Latest prolactin above about {prolactin_very_high_ng_per_ml} ng/mL, the level
    drug-induced hyperprolactinaemia usually stays below; above about
    {prolactin_prolactinoma_ng_per_ml} ng/mL, highly suggestive of a prolactinoma: a prompt
    endocrinology referral (warning; prolactin has no critical value). Not applied in
    pregnancy or breastfeeding.

    Reads the latest prolactin of the last {prolactin_monitoring_interval_days} days. Above
    {prolactin_very_high_ng_per_ml} ng/mL: warning (drug-induced hyperprolactinaemia is
    usually below this); above {prolactin_prolactinoma_ng_per_ml} ng/mL: warning too, with a
    prompt endocrinology referral and pituitary MRI (highly suggestive of prolactinoma), not
    same-day care (version 2; version 1 called it urgent). Evidence: vilar-2014,
    jcem-2023-prolactin-workup, majumdar-mangal-2013, melmed-2011-endocrine-society,
    prolactin-above-250-prompt-referral.
    """
    latest = _latest(ctx)
    if latest is None:
        return None
    r, value, _, _ = latest
    very_high = ctx.settings["prolactin_very_high_ng_per_ml"]
    prolactinoma = ctx.settings["prolactin_prolactinoma_ng_per_ml"]
    if not over(r, value, very_high):
        return None
    ev = _evidence(ctx, latest)
    ev["thresholds_ng_per_ml"] = {"very_high": very_high, "prolactinoma": prolactinoma}
    if over(r, value, prolactinoma):
        message = (
            f"Prolactin {shown(r, value)} ng/mL on {r.at.date()} is above {fmt(prolactinoma)} "
            "ng/mL, a level highly suggestive of a prolactinoma; drug-induced (including "
            "opioid) hyperprolactinaemia is usually below 100 ng/mL." + _meds_sentence(ev)
        )
        step = (
            "Consider a prompt endocrinology referral and pituitary MRI, and asking about "
            "headache and visual disturbance. Prolactin has no critical value: this is a "
            "prompt referral, not same-day emergency care."
        )
        return Found("warning", message, ev, step)
    message = (
        f"Prolactin {shown(r, value)} ng/mL on {r.at.date()} is above {fmt(very_high)} ng/mL. "
        "Drug-induced (including opioid) hyperprolactinaemia is usually below this level, "
        "so kratom is an unlikely sole explanation and other causes, including a pituitary "
        "tumour, need to be considered." + _meds_sentence(ev)
    )
    step = (
        "Consider endocrinology review: TSH, kidney function, a pregnancy test where "
        "relevant, macroprolactin, and pituitary imaging if no other cause is found."
    )
    return Found("warning", message, ev, step)


@rule(
    "SAF-PRL-SYMPT",
    topic="prolactin-symptoms",
    severity="warning",
    settings=("prolactin_symptom_window_days", "prolactin_monitoring_interval_days",
              "hcg_positive_valid_days"),
    windows=(*_BASE_WINDOWS, _SYMPTOMS_WINDOW),
    citations=("melmed-2011-endocrine-society", "serri-2003", "ruljancic-2021", "labryer-2018"),
)
def prolactin_symptoms(ctx: Context) -> Found | None:
    """Symptoms linked to high prolactin (reduced sex drive, sexual dysfunction, breast
    enlargement or tenderness, nipple discharge, menstrual change) with the latest prolactin
    above the upper reference limit. Not applied in pregnancy or breastfeeding.

    Fires when one of those symptoms was reported in the last
    {prolactin_symptom_window_days} days **and** the latest prolactin (of the last
    {prolactin_monitoring_interval_days} days) is above the upper limit. Evidence:
    melmed-2011-endocrine-society, serri-2003, ruljancic-2021 (symptoms of
    hyperprolactinaemia), labryer-2018 (the one kratom case: low libido).
    """
    latest = _latest(ctx)
    if latest is None:
        return None
    r, value, limit, _ = latest
    if not over(r, value, limit):
        return None
    symptoms = _symptoms(ctx)
    if not symptoms:
        return None
    ev = _evidence(ctx, latest)
    ev["symptoms"] = [{"code": s.code, "at": iso(s.at)} for s in symptoms]
    names = ", ".join(s.code.replace("-", " ") for s in symptoms)
    message = (
        f"Symptoms that can come from high prolactin ({names}) were reported, and prolactin "
        f"was {shown(r, value)} ng/mL on {r.at.date()} (upper limit {fmt(limit)} ng/mL). "
        "Hyperprolactinaemia causes these through hypogonadism, but they have other causes "
        "too; kratom is linked to them only through one case report." + _meds_sentence(ev)
    )
    step = (
        "Consider examination (breasts, signs of hypogonadism), testosterone in men or a "
        "menstrual history in women, and the prolactin work-up (resting repeat sample, TSH, "
        "kidney function, medicine review)."
    )
    return Found("warning", message, ev, step)


@rule(
    "SAF-PRL-HIGH",
    topic="prolactin-high",
    severity="warning",
    settings=("prolactin_mild_uln_multiple", "prolactin_very_high_ng_per_ml",
              "prolactin_monitoring_interval_days", "hcg_positive_valid_days"),
    windows=_BASE_WINDOWS,
    citations=_CITES + ("majumdar-mangal-2013", "mayo-clinic-laboratories-prl"),
)
def prolactin_high(ctx: Context) -> Found | None:
    """Latest prolactin above the upper reference limit for the patient's sex (the
    reporting laboratory's when given) and at or below the very-high threshold: info below
    {prolactin_mild_uln_multiple} x ULN (repeat before labelling), warning above. Not applied
    in pregnancy or breastfeeding.

    Reads the latest prolactin of the last {prolactin_monitoring_interval_days} days: above
    the upper reference limit and at most {prolactin_very_high_ng_per_ml} ng/mL (above it,
    ``prolactin-very-high`` reports it instead): info below {prolactin_mild_uln_multiple} x
    ULN (repeat a resting sample before labelling), warning at
    {prolactin_mild_uln_multiple} x ULN or more. The upper limit is the reporting
    laboratory's when the result carries one (pharmacology.md §6.1), else the catalogue's
    adult range for the patient's sex (mayo-clinic-laboratories-prl); with the sex unknown,
    the higher of the two limits, so nothing is called high that is normal for either sex.
    Evidence: labryer-2018, jcem-1978-opiates-prolactin, delitala-1983, bowen-2002,
    melmed-2011-endocrine-society (a single unstressed value above the ULN confirms),
    majumdar-mangal-2013 (repeat mild elevations).
    """
    latest = _latest(ctx)
    if latest is None:
        return None
    r, value, limit, _ = latest
    very_high = ctx.settings["prolactin_very_high_ng_per_ml"]
    if not over(r, value, limit) or value > very_high:
        return None
    ratio = value / limit
    mild = ratio < ctx.settings["prolactin_mild_uln_multiple"]
    ev = _evidence(ctx, latest)
    ev["times_uln"] = round(ratio, 2)
    message = (
        f"Prolactin {shown(r, value)} ng/mL on {r.at.date()} is above the upper reference limit "
        f"({fmt(limit)} ng/mL), {ratio:.1f} x ULN. {_KRATOM} {_CAUSES}"
        + _meds_sentence(ev)
    )
    if mild:
        step = (
            "Consider repeating a resting morning sample (2 or more hours after waking, "
            "without venipuncture stress) before labelling hyperprolactinaemia, and asking "
            "about symptoms (libido, erectile function, menstrual change, breast changes)."
        )
    else:
        step = (
            "Consider confirming with a resting morning sample and looking for a cause: TSH, "
            "kidney and liver function, a pregnancy test where relevant, and a review of "
            "prolactin-raising medicines; ask about symptoms of hypogonadism."
        )
    return Found("info" if mild else "warning", message, ev, step)


@rule(
    "SAF-PRL-RISE",
    topic="prolactin-rising",
    severity="warning",
    settings=("prolactin_rise_fraction", "prolactin_monitoring_interval_days",
              "hcg_positive_valid_days"),
    windows=_BASE_WINDOWS,
    citations=("sassin-1972", "levine-2018-stress-hyperprolactinemia") + _CITES,
)
def prolactin_rising(ctx: Context) -> Found | None:
    """Latest prolactin at least {prolactin_rise_fraction:%} above the patient's first
    result (two results or more): warning when also above the upper limit, info otherwise.

    Compares the latest prolactin (of the last {prolactin_monitoring_interval_days} days)
    with the patient's first prolactin, however old. Evidence: sassin-1972,
    levine-2018-stress-hyperprolactinemia (pulsatile, sleep- and stress-dependent
    secretion: compare like with like), plus the prolactin citations of prolactin-high.
    """
    latest = _latest(ctx)
    if latest is None:
        return None
    first, _, count = _ends(ctx)
    if first is None or first[0] is latest[0]:
        return None  # fewer than two results
    base_r, base, _, _ = first
    r, value, limit, _ = latest
    if base <= 0 or r.below() or base_r.above():
        return None
    rise = (value - base) / base
    if rise < ctx.settings["prolactin_rise_fraction"]:
        return None
    above = limit is not None and value > limit
    ev = {
        "baseline": lab_json(base_r, base, None, _UNIT),
        "latest": lab_json(r, value, limit, _UNIT),
        "results": count,
        "rise_percent": round(rise * 100, 1),
    }
    message = (
        f"Prolactin rose from {fmt(base)} ng/mL ({base_r.at.date()}) to {fmt(value)} ng/mL "
        f"({r.at.date()}), {rise * 100:.0f} % above this patient's first result"
        + (f" and above the upper reference limit ({fmt(limit)} ng/mL)." if above else
           ", still within the reference range.")
        + " Prolactin is pulsatile and rises with sleep, stress and exercise, so samples taken "
        "under different conditions are not directly comparable. " + _KRATOM
    )
    step = (
        "Consider repeating under standard conditions (resting, morning) and asking about "
        "changes in kratom use, other opioids and prolactin-raising medicines."
    )
    return Found("warning" if above else "info", message, ev, step)


@rule(
    "SAF-PRL-DUE",
    topic="prolactin-test-due",
    severity="info",
    settings=("prolactin_symptom_window_days", "prolactin_monitoring_interval_days",
              "regular_use_days_per_28", "hcg_positive_valid_days"),
    windows=(*_BASE_WINDOWS, _SYMPTOMS_WINDOW, doses(FORTNIGHTS_DAYS, why="days with kratom in the last 28")),
    citations=_CITES + ("medscape-prolactin",),
)
def prolactin_test_due(ctx: Context) -> Found | None:
    """Symptoms linked to high prolactin with no prolactin in the symptom window, or regular
    kratom use with no prolactin in the monitoring interval. Not applied in pregnancy or
    breastfeeding (routine measurement not advised).

    Fires when symptoms linked to high prolactin were reported in the last
    {prolactin_symptom_window_days} days with no prolactin in those days; or with regular
    use (kratom on at least {regular_use_days_per_28} of the last 28 days) and no prolactin
    in the last {prolactin_monitoring_interval_days} days. Evidence: the prolactin citations
    of prolactin-high, medscape-prolactin (sampling within 3-4 h of waking).
    """
    if _physiological(ctx):
        return None
    s = ctx.settings
    rows = ctx.labs("prolactin")
    last_at = rows[-1].at if rows else None
    symptoms = _symptoms(ctx)
    ev: dict[str, Any] = {"last_prolactin_at": iso(last_at) if last_at else None}
    if symptoms and (last_at is None or last_at < ctx.ago(s["prolactin_symptom_window_days"])):
        ev["reason"] = "symptoms"
        ev["symptoms"] = [{"code": x.code, "at": iso(x.at)} for x in symptoms]
        names = ", ".join(x.code.replace("-", " ") for x in symptoms)
        message = (
            f"Symptoms that can come from high prolactin ({names}) were reported, with no "
            f"prolactin result in the last {s['prolactin_symptom_window_days']} days."
        )
    else:
        days = ctx.dose_days_28()
        if days < s["regular_use_days_per_28"]:
            return None
        if last_at is not None and last_at >= ctx.ago(s["prolactin_monitoring_interval_days"]):
            return None
        ev["reason"] = "regular-use"
        ev["days_with_kratom_in_last_28"] = days
        message = (
            f"Kratom was taken on {days} of the last 28 days, with no prolactin result in the "
            f"last {s['prolactin_monitoring_interval_days']} days."
        )
    message += (
        " Kratom may raise prolactin as other mu-opioid agonists do; the kratom-specific "
        "evidence is one case report, so a normal result is informative too."
    )
    step = (
        "Consider measuring prolactin on a resting morning sample, noting the sample time "
        "and recent kratom use."
    )
    return Found("info", message, ev, step)
