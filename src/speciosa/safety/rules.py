"""Safety rules: pure functions from a patient's timeline and an "as of" time to findings.

Each :class:`Rule` has a stable id, a topic, the highest severity it raises, a description,
the named settings it reads (:mod:`speciosa.safety.settings`) and the evidence it rests on.
:func:`evaluate` runs every rule on one timeline. Rules only read data at or before
``as_of``, and find the window they need by bisection on the timeline's sorted lists, so
the cost of an evaluation hardly grows with the length of the history.

Messages are written for the supervising clinician; next steps are considerations, never
a kratom dose. Where the evidence is thin (kratom and prolactin: one case report plus
opioid class pharmacology) the message says so.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from operator import attrgetter
from typing import Any

from speciosa.knowledge import instruments as _instruments
from speciosa.knowledge import labs as _labs
from speciosa.knowledge import prolactin as _prolactin
from speciosa.pharmacology import doses as _doses
from speciosa.safety import drugs
from speciosa.safety.settings import DEFAULT_SETTINGS, SETTINGS, Setting, resolve_settings
from speciosa.safety.timeline import Assessment, LabResult, Timeline

__all__ = [
    "DEFAULT_SETTINGS",
    "RULES",
    "SETTINGS",
    "SEVERITIES",
    "Context",
    "Finding",
    "Rule",
    "Setting",
    "evaluate",
    "get_rule",
]

#: Severities, most severe first.
SEVERITIES = ("urgent", "warning", "info")
_RANK = {s: i for i, s in enumerate(SEVERITIES)}

_at = attrgetter("at")
_taken_at = attrgetter("taken_at")

#: Side-effect codes linked to high prolactin (pharmacology.md §6.7).
PROLACTIN_SYMPTOMS = (
    "reduced-sex-drive",
    "sexual-dysfunction",
    "breast-enlargement-tenderness",
    "nipple-discharge",
    "menstrual-change",
)
#: Positive urine screens that count as co-use, by drug class.
UDS_CLASSES = {
    "uds-opioids": "opioid",
    "uds-fentanyl": "opioid",
    "uds-methadone": "opioid",
    "uds-buprenorphine": "opioid",
    "uds-benzodiazepines": "benzodiazepine",
    "uds-alcohol": "alcohol",
}
_POSITIVE = frozenset({"positive", "pos", "detected", "det", "screen positive", "reactive"})
_NEGATIVE = frozenset({"negative", "neg", "not detected", "nd", "non-reactive"})


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule found.

    Attributes
    ----------
    rule, topic : str
        The rule's id and topic.
    severity : {"urgent", "warning", "info"}
    message : str
        For the clinician: what was found and how strong the evidence behind it is.
    evidence : dict
        The data that triggered it (JSON-serialisable: dates as ISO strings).
    next_step : str
        A consideration for the clinician, never a kratom dose.
    citations : tuple of str
        Evidence-registry ids.
    """

    rule: str
    topic: str
    severity: str
    message: str
    evidence: dict[str, Any]
    next_step: str
    citations: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The finding as a JSON-ready dict."""
        return {
            "rule": self.rule,
            "topic": self.topic,
            "severity": self.severity,
            "message": self.message,
            "evidence": self.evidence,
            "next_step": self.next_step,
            "citations": list(self.citations),
        }


@dataclass(frozen=True)
class Rule:
    """A safety rule.

    Attributes
    ----------
    id : str
        Stable id (``SAF-PRL-HIGH``); alerts are keyed on it.
    topic : str
    severity : str
        The most severe level its findings can have (the description says when lower).
    description : str
    settings : tuple of str
        Names of the settings it reads.
    citations : tuple of str
        Evidence ids behind the rule (each finding cites a subset or all of them).
    evaluate : callable
        ``evaluate(context) -> Finding | None``.
    """

    id: str
    topic: str
    severity: str
    description: str
    settings: tuple[str, ...]
    citations: tuple[str, ...]
    evaluate: Callable[[Context], Finding | None]

    def as_json(self) -> dict[str, Any]:
        """The rule as listed by ``speciosa rules --json``."""
        return {
            "id": self.id,
            "topic": self.topic,
            "severity": self.severity,
            "description": self.description,
            "settings": {name: DEFAULT_SETTINGS[name] for name in self.settings},
            "citations": list(self.citations),
        }


# --------------------------------------------------------------------------------------
# Evaluation context: the timeline seen from ``as_of``, with the lookups rules share
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _DoseStats:
    days: int
    total_amount: float
    unit: str | None  # the one unit of the window, or None when mixed
    same_product: bool  # one unit and the same product facts throughout


class Context:
    """One evaluation: a timeline, the time it is read at, and the settings in force.

    Parameters
    ----------
    timeline : Timeline
    as_of : datetime
        Nothing after it is read. A naive time is read in the timeline's zone.
    settings : Mapping
        Every setting (see :func:`speciosa.safety.settings.resolve_settings`).
    """

    __slots__ = ("timeline", "as_of", "settings", "tz", "today", "sex", "_memo")

    def __init__(self, timeline: Timeline, as_of: datetime, settings: Mapping[str, Any]) -> None:
        tz = timeline.tz
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=tz)
        self.timeline = timeline
        self.as_of = as_of
        self.settings = settings
        self.tz = tz
        self.today: date = as_of.astimezone(tz).date()
        self.sex: str | None = timeline.patient.sex
        self._memo: dict[str, Any] = {}

    # -- time
    def ago(self, days: float) -> datetime:
        """Start of the window "within the last ``days`` days": local midnight of the
        calendar day ``days`` days before as_of (so a report 30 days ago is within 30 days,
        whatever its clock time)."""
        memo = self._memo
        key = ("ago", days)
        if key not in memo:
            memo[key] = self.midnight(self.today - timedelta(days=int(days)))
        return memo[key]

    def midnight(self, day: date) -> datetime:
        """Start of ``day`` in the patient's zone."""
        return datetime.combine(day, time(), tzinfo=self.tz)

    def window(self, rows: tuple, start: datetime | None, key=_at) -> tuple:
        """Rows with ``start <= key <= as_of`` from a tuple sorted by ``key``."""
        i = 0 if start is None else bisect_left(rows, start, key=key)
        return rows[i : bisect_right(rows, self.as_of, key=key)]

    # -- doses
    def doses_between(self, start: datetime, end: datetime | None = None) -> tuple:
        """Doses with ``start <= taken_at < end`` (``end`` None: up to and including as_of)."""
        doses = self.timeline.doses
        i = bisect_left(doses, start, key=_taken_at)
        j = (
            bisect_right(doses, self.as_of, key=_taken_at)
            if end is None
            else bisect_left(doses, end, key=_taken_at)
        )
        return doses[i:j]

    def last_dose(self):
        """The last dose at or before as_of, or None."""
        doses = self.timeline.doses
        j = bisect_right(doses, self.as_of, key=_taken_at)
        return doses[j - 1] if j else None

    def current_kratom(self):
        """The last dose if it falls within ``kratom_current_use_days``, else None."""
        if "current" not in self._memo:
            dose = self.last_dose()
            limit = self.ago(self.settings["kratom_current_use_days"])
            self._memo["current"] = dose if dose is not None and dose.taken_at >= limit else None
        return self._memo["current"]

    def dose_days_28(self) -> int:
        """Number of local calendar days, of the last 28 (today included), with a dose."""
        earlier, recent = self.fortnights()
        return self.dose_stats(earlier).days + self.dose_stats(recent).days

    def fortnights(self) -> tuple[tuple, tuple]:
        """Doses of the 14 local days before the last 14, and of the last 14 (today
        included, up to as_of)."""
        if "fortnights" not in self._memo:
            mid = self.midnight(self.today - timedelta(days=13))
            start = self.midnight(self.today - timedelta(days=27))
            self._memo["fortnights"] = (self.doses_between(start, mid), self.doses_between(mid))
        return self._memo["fortnights"]

    def dose_stats(self, doses: tuple) -> _DoseStats:
        """One pass over time-sorted ``doses`` (remembered per window): days with a dose,
        total amount, and whether all share one unit and product facts.

        Converts one dose per day to local time, not every dose: after a dose on day D,
        doses before the next local midnight are on D as well.
        """
        key = ("stats", id(doses))
        if key in self._memo:
            return self._memo[key][1]
        days = 0
        total = 0.0
        boundary: datetime | None = None
        tz = self.tz
        same = True
        if doses:
            f = doses[0]
            unit, pct, gpc, product = f.unit, f.mitragynine_percent, f.grams_per_capsule, f.product
        for d in doses:
            t = d.taken_at
            if boundary is None or t >= boundary:
                day = t.astimezone(tz).date()
                days += 1
                boundary = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
            total += d.amount
            if same and (d.unit != unit or d.mitragynine_percent != pct
                         or d.grams_per_capsule != gpc or d.product != product):
                same = False
        single_unit = same or len({d.unit for d in doses}) == 1
        stats = _DoseStats(days, total, doses[0].unit if doses and single_unit else None, same)
        self._memo[key] = (doses, stats)  # keep the window alive while its id is a key
        return stats

    def instrument(self, instrument_id: str):
        """The instrument definition, looked up once per evaluation."""
        key = ("instrument", instrument_id)
        if key not in self._memo:
            self._memo[key] = _instruments.get_instrument(instrument_id)
        return self._memo[key]

    # -- other lists
    def labs(self, code: str) -> tuple[LabResult, ...]:
        """Results of lab ``code`` up to as_of, oldest first."""
        rows = self.timeline.labs_by_code.get(code, ())
        return rows[: bisect_right(rows, self.as_of, key=_at)]

    def assessments(self, instrument: str, days: float) -> tuple[Assessment, ...]:
        """Assessments of ``instrument`` within ``days`` before as_of, oldest first."""
        rows = self.timeline.assessments_by_instrument.get(instrument, ())
        return self.window(rows, self.ago(days))

    def side_effects(self, code: str, days: float) -> tuple:
        """Reports of side effect ``code`` within ``days`` before as_of, oldest first."""
        rows = self.timeline.side_effects_by_code.get(code, ())
        return self.window(rows, self.ago(days))

    def current_medications(self) -> list:
        """Medications taken on the as_of day."""
        if "meds" not in self._memo:
            today = self.today
            self._memo["meds"] = [m for m in self.timeline.medications if m.is_current(today)]
        return self._memo["meds"]

    def pregnancy(self) -> dict[str, Any] | None:
        """Why the patient counts as pregnant (reported, or a positive hCG), or None."""
        if "pregnancy" in self._memo:
            return self._memo["pregnancy"]
        found: dict[str, Any] | None = None
        if self.timeline.patient.pregnant:
            found = {"pregnancy_reported": True}
        else:
            hcg = self.labs("hcg")
            if hcg:
                latest = hcg[-1]
                if latest.at >= self.ago(self.settings["hcg_positive_valid_days"]):
                    if _qualitative_positive(latest):
                        found = {"hcg": _lab_json(latest)}
        self._memo["pregnancy"] = found
        return found


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _iso(moment: datetime | date) -> str:
    return moment.isoformat()


def _fmt(x: float) -> str:
    """A number for a message: up to 3 significant figures, no trailing zeros."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def _canonical(code: str, value: float | None, unit: str | None) -> float | None:
    """``value`` in the lab's canonical unit, or None when it cannot be converted."""
    if value is None:
        return None
    lab = _labs.get_lab(code)
    if unit == lab.canonical_unit:
        return float(value)
    try:
        return _labs.to_canonical(code, value, unit)
    except _labs.LabValueError:
        return None


def _uln(result: LabResult, sex: str | None) -> tuple[float | None, str]:
    """Upper reference limit (canonical unit) and where it came from.

    The reporting laboratory's limit is preferred (pharmacology.md §6.1); otherwise the
    catalogue's adult range for the patient's sex; with the sex unknown, the higher of the
    two sexes' limits (so that no result is called high that is normal for either sex).
    """
    if result.reference_high is not None:
        return _canonical(result.lab, result.reference_high, result.unit), "reporting laboratory"
    if sex is not None:
        rng = _labs.reference_range(result.lab, sex)
        high = rng[1] if rng else None
        return high, f"catalogue range for {sex}s"
    highs = [
        rng[1]
        for s in _labs.SEXES
        if (rng := _labs.reference_range(result.lab, s)) is not None and rng[1] is not None
    ]
    return (max(highs) if highs else None), "catalogue range (sex not recorded: higher limit)"


def _qualitative_positive(result: LabResult) -> bool:
    if result.result is not None:
        return result.result.strip().lower() in _POSITIVE
    if result.value is not None and result.reference_high is not None:
        return result.value > result.reference_high
    return False


def _lab_json(result: LabResult, canonical: float | None = None, uln: float | None = None,
              unit: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"lab": result.lab, "at": _iso(result.at)}
    if result.value is not None:
        out["value"] = result.value
        out["unit"] = result.unit
    if result.result is not None:
        out["result"] = result.result
    if canonical is not None and unit is not None:
        out["value_canonical"] = round(canonical, 4)
        out["canonical_unit"] = unit
    if uln is not None:
        out["upper_reference_limit"] = round(uln, 4)
    return out


def _score(ctx: Context, a: Assessment) -> tuple[int | None, tuple[str, ...], str | None]:
    """(total, flags, band) of an assessment via the one scorer; total falls back to the
    recorded total when items are absent or incomplete."""
    if a.items is not None:
        try:
            s = _instruments.score(ctx.instrument(a.instrument), a.items, sex=ctx.sex)
        except _instruments.InstrumentError:
            return a.total, (), None
        total = s.total if s.total is not None else a.total
        return total, s.flags, s.band
    if a.total is None:
        return None, (), None
    inst = ctx.instrument(a.instrument)
    band = inst.band_for(a.total)
    return a.total, _total_flags(inst, a.total, ctx.sex), band.label if band else None


def _total_flags(inst, total: int, sex: str | None) -> tuple[str, ...]:
    """Flags that depend on the total only, read from the instrument's own definition
    (for assessments recorded as a total without items)."""
    raised = []
    for flag in inst.flags:
        for cond in flag.conditions:
            if cond.kind == "total" and total >= (cond.threshold or 0):
                raised.append(flag.id)
                break
            if cond.kind == "total-by-sex":
                cutoffs = dict(cond.by_sex)
                if sex is not None and total >= cutoffs[sex]:
                    raised.append(flag.id)
                    break
                if sex is None and total >= min(cutoffs.values()):
                    raised.append(
                        flag.id if total >= max(cutoffs.values()) else f"{flag.id}-depends-on-sex"
                    )
                    break
    return tuple(raised)


def _finding(rule: Rule | str, severity: str, message: str, evidence: dict[str, Any],
             next_step: str, citations: tuple[str, ...] | None = None) -> Finding:
    r = _BY_ID[rule] if isinstance(rule, str) else rule
    return Finding(r.id, r.topic, severity, message, evidence, next_step,
                   citations if citations is not None else r.citations)


# --------------------------------------------------------------------------------------
# Prolactin
# --------------------------------------------------------------------------------------

_PRL_UNIT = "ng/mL"


_Point = tuple[LabResult, float, float | None, str]


def _prolactin_point(ctx: Context, r: LabResult) -> _Point | None:
    """(result, value ng/mL, ULN ng/mL, ULN source), or None when not convertible."""
    value = _canonical("prolactin", r.value, r.unit)
    if value is None:
        return None
    uln, source = _uln(r, ctx.sex)
    return r, value, uln, source


def _prolactin_ends(ctx: Context) -> tuple[_Point | None, _Point | None, int]:
    """The first and the latest readable prolactin up to as_of, and how many there are.

    Only these two are converted: the rules compare the latest with the patient's first
    (baseline) result, so a long history costs no more than two results.
    """
    if "prl" not in ctx._memo:
        rows = ctx.labs("prolactin")
        first = last = None
        first_i = len(rows)
        for i, r in enumerate(rows):
            if (first := _prolactin_point(ctx, r)) is not None:
                first_i = i
                break
        for i in range(len(rows) - 1, first_i, -1):
            if (last := _prolactin_point(ctx, rows[i])) is not None:
                break
        if last is None:  # at most one readable result
            last = first
        ctx._memo["prl"] = (first, last, len(rows))
    return ctx._memo["prl"]


def _physiological_prolactin(ctx: Context) -> bool:
    """Pregnancy and breastfeeding raise prolactin physiologically: the non-pregnant
    ranges do not apply and routine measurement is not advised (Melmed 2011)."""
    return ctx.timeline.patient.breastfeeding or ctx.pregnancy() is not None


def _latest_prolactin(ctx: Context):
    latest = _prolactin_ends(ctx)[1]
    if latest is None or _physiological_prolactin(ctx):
        return None
    if latest[0].at < ctx.ago(ctx.settings["prolactin_monitoring_interval_days"]):
        return None
    return latest


def _prolactin_raising_medications(ctx: Context) -> list[str]:
    return [
        med.name
        for med in ctx.current_medications()
        if _prolactin.prolactin_raising_medication(med.name) is not None
    ]


_PRL_CAUSES = (
    "Other causes are common: medicines (opioids, antipsychotics, metoclopramide and "
    "others), hypothyroidism, kidney or liver disease, stress of venipuncture and "
    "macroprolactin."
)
_PRL_KRATOM = (
    "Kratom may raise prolactin as other mu-opioid agonists do, but the kratom-specific "
    "evidence is one case report."
)


def _prl_evidence(ctx: Context, latest) -> dict[str, Any]:
    r, value, uln, source = latest
    ev = {"result": _lab_json(r, value, uln, _PRL_UNIT), "reference_source": source}
    meds = _prolactin_raising_medications(ctx)
    if meds:
        ev["prolactin_raising_medications"] = meds
    return ev


def _meds_sentence(ev: dict[str, Any]) -> str:
    meds = ev.get("prolactin_raising_medications")
    return f" Current medicines that can raise prolactin: {', '.join(meds)}." if meds else ""


def rule_prolactin_high(ctx: Context) -> Finding | None:
    latest = _latest_prolactin(ctx)
    if latest is None:
        return None
    r, value, uln, _ = latest
    very_high = ctx.settings["prolactin_very_high_ng_per_ml"]
    if uln is None or not uln < value <= very_high:
        return None
    ratio = value / uln
    mild = ratio < ctx.settings["prolactin_mild_uln_multiple"]
    ev = _prl_evidence(ctx, latest)
    ev["times_uln"] = round(ratio, 2)
    message = (
        f"Prolactin {_fmt(value)} ng/mL on {r.at.date()} is above the upper reference limit "
        f"({_fmt(uln)} ng/mL), {ratio:.1f} x ULN. {_PRL_KRATOM} {_PRL_CAUSES}"
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
    return _finding("SAF-PRL-HIGH", "info" if mild else "warning", message, ev, step)


def rule_prolactin_very_high(ctx: Context) -> Finding | None:
    latest = _latest_prolactin(ctx)
    if latest is None:
        return None
    r, value, _, _ = latest
    very_high = ctx.settings["prolactin_very_high_ng_per_ml"]
    prolactinoma = ctx.settings["prolactin_prolactinoma_ng_per_ml"]
    if value <= very_high:
        return None
    ev = _prl_evidence(ctx, latest)
    ev["thresholds_ng_per_ml"] = {"very_high": very_high, "prolactinoma": prolactinoma}
    if value > prolactinoma:
        message = (
            f"Prolactin {_fmt(value)} ng/mL on {r.at.date()} is above {_fmt(prolactinoma)} "
            "ng/mL, a level highly suggestive of a prolactinoma; drug-induced (including "
            "opioid) hyperprolactinaemia is usually below 100 ng/mL." + _meds_sentence(ev)
        )
        step = (
            "Consider prompt endocrinology referral and pituitary MRI, and asking about "
            "headache and visual disturbance."
        )
        return _finding("SAF-PRL-VHIGH", "urgent", message, ev, step)
    message = (
        f"Prolactin {_fmt(value)} ng/mL on {r.at.date()} is above {_fmt(very_high)} ng/mL. "
        "Drug-induced (including opioid) hyperprolactinaemia is usually below this level, "
        "so kratom is an unlikely sole explanation and other causes, including a pituitary "
        "tumour, need to be considered." + _meds_sentence(ev)
    )
    step = (
        "Consider endocrinology review: TSH, kidney function, a pregnancy test where "
        "relevant, macroprolactin, and pituitary imaging if no other cause is found."
    )
    return _finding("SAF-PRL-VHIGH", "warning", message, ev, step)


def rule_prolactin_rising(ctx: Context) -> Finding | None:
    latest = _latest_prolactin(ctx)
    if latest is None:
        return None
    first, _, count = _prolactin_ends(ctx)
    if first is None or first[0] is latest[0]:
        return None  # fewer than two results
    base_r, base, _, _ = first
    r, value, uln, _ = latest
    if base <= 0:
        return None
    rise = (value - base) / base
    if rise < ctx.settings["prolactin_rise_fraction"]:
        return None
    above = uln is not None and value > uln
    ev = {
        "baseline": _lab_json(base_r, base, None, _PRL_UNIT),
        "latest": _lab_json(r, value, uln, _PRL_UNIT),
        "results": count,
        "rise_percent": round(rise * 100, 1),
    }
    message = (
        f"Prolactin rose from {_fmt(base)} ng/mL ({base_r.at.date()}) to {_fmt(value)} ng/mL "
        f"({r.at.date()}), {rise * 100:.0f} % above this patient's first result"
        + (f" and above the upper reference limit ({_fmt(uln)} ng/mL)." if above else
           ", still within the reference range.")
        + " Prolactin is pulsatile and rises with sleep, stress and exercise, so samples taken "
        "under different conditions are not directly comparable. " + _PRL_KRATOM
    )
    step = (
        "Consider repeating under standard conditions (resting, morning) and asking about "
        "changes in kratom use, other opioids and prolactin-raising medicines."
    )
    return _finding("SAF-PRL-RISE", "warning" if above else "info", message, ev, step)


def _prolactin_symptoms(ctx: Context) -> list:
    days = ctx.settings["prolactin_symptom_window_days"]
    found = []
    for code in PROLACTIN_SYMPTOMS:
        rows = ctx.side_effects(code, days)
        if rows:
            found.append(rows[-1])
    found.sort(key=_at)
    return found


def rule_prolactin_symptoms(ctx: Context) -> Finding | None:
    latest = _latest_prolactin(ctx)
    if latest is None:
        return None
    r, value, uln, _ = latest
    if uln is None or value <= uln:
        return None
    symptoms = _prolactin_symptoms(ctx)
    if not symptoms:
        return None
    ev = _prl_evidence(ctx, latest)
    ev["symptoms"] = [{"code": s.code, "at": _iso(s.at)} for s in symptoms]
    names = ", ".join(s.code.replace("-", " ") for s in symptoms)
    message = (
        f"Symptoms that can come from high prolactin ({names}) were reported, and prolactin "
        f"was {_fmt(value)} ng/mL on {r.at.date()} (upper limit {_fmt(uln)} ng/mL). "
        "Hyperprolactinaemia causes these through hypogonadism, but they have other causes "
        "too; kratom is linked to them only through one case report." + _meds_sentence(ev)
    )
    step = (
        "Consider examination (breasts, signs of hypogonadism), testosterone in men or a "
        "menstrual history in women, and the prolactin work-up (resting repeat sample, TSH, "
        "kidney function, medicine review)."
    )
    return _finding("SAF-PRL-SYMPT", "warning", message, ev, step)


def rule_prolactin_test_due(ctx: Context) -> Finding | None:
    if _physiological_prolactin(ctx):
        return None
    s = ctx.settings
    rows = ctx.labs("prolactin")
    last_at = rows[-1].at if rows else None
    symptoms = _prolactin_symptoms(ctx)
    ev: dict[str, Any] = {"last_prolactin_at": _iso(last_at) if last_at else None}
    if symptoms and (last_at is None or last_at < ctx.ago(s["prolactin_symptom_window_days"])):
        ev["reason"] = "symptoms"
        ev["symptoms"] = [{"code": x.code, "at": _iso(x.at)} for x in symptoms]
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
    return _finding("SAF-PRL-DUE", "info", message, ev, step)


# --------------------------------------------------------------------------------------
# Withdrawal
# --------------------------------------------------------------------------------------


def rule_withdrawal(ctx: Context) -> Finding | None:
    s = ctx.settings
    severity: str | None = None
    ev: dict[str, Any] = {}
    parts: list[str] = []
    cows = ctx.assessments("cows", s["withdrawal_recent_days"])
    if cows:
        a = cows[-1]
        total, _, band = _score(ctx, a)
        if total is not None and total >= s["withdrawal_cows_moderate"]:
            severity = "urgent" if total >= s["withdrawal_cows_urgent"] else "warning"
            ev["cows"] = {"at": _iso(a.at), "total": total, "band": band}
            parts.append(
                f"COWS {total} on {a.at.date()}" + (f" ({band} withdrawal)." if band else ".")
            )
    sows = ctx.assessments("sows", s["withdrawal_recent_days"])
    if sows:
        a = sows[-1]
        total, _, _ = _score(ctx, a)
        if total is not None:
            rows = ctx.timeline.assessments_by_instrument["sows"]
            i = bisect_left(rows, a.at - timedelta(days=s["sows_baseline_days"]), key=_at)
            j = bisect_left(rows, a.at, key=_at)
            base = None
            for b in rows[i:j]:
                t, _, _ = _score(ctx, b)
                if t is not None and (base is None or t < base[1]):
                    base = (b, t)
            if base is not None and total - base[1] >= s["sows_rise_points"]:
                severity = severity or "warning"
                ev["sows"] = {
                    "at": _iso(a.at),
                    "total": total,
                    "baseline_at": _iso(base[0].at),
                    "baseline_total": base[1],
                    "rise": total - base[1],
                }
                parts.append(
                    f"SOWS rose from {base[1]} ({base[0].at.date()}) to {total} "
                    f"({a.at.date()}), +{total - base[1]} points."
                )
    if severity is None:
        return None
    message = " ".join(parts) + (
        " Kratom withdrawal is opioid-like (aches, insomnia, runny eyes and nose, diarrhoea, "
        "restlessness); COWS and SOWS are opioid scales, not validated for kratom."
    )
    last = ctx.last_dose()
    if last is not None:
        ev["last_dose_at"] = _iso(last.taken_at)
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
    return _finding("SAF-WD-MOD", severity, message, ev, step)


# --------------------------------------------------------------------------------------
# Dose escalation
# --------------------------------------------------------------------------------------


def _window_summary(ctx: Context, doses: tuple, first: date, last: date) -> dict[str, Any]:
    stats = ctx.dose_stats(doses)
    summary: dict[str, Any] = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "doses": len(doses),
        "days_with_doses": stats.days,
    }
    if stats.unit is not None:
        summary["unit"] = stats.unit
        summary["total_amount"] = round(stats.total_amount, 3)
    return summary


def _add_mitragynine(summary: dict[str, Any], doses: tuple) -> None:
    """Add the estimated mitragynine (mg) of ``doses`` when every dose converts.

    A window with an unconvertible dose (a capsule without grams per capsule, an extract
    without its percent) gets no estimate: a partial sum would fake a rise or a fall.
    Leaf without a label is converted with the default content, which cancels out in the
    ratio of two windows.
    """
    converted, failed = _doses.convert_all(doses)
    if failed:
        summary["mitragynine_unconvertible_doses"] = len(failed)
        return
    summary["mitragynine_mg"] = round(sum(d.mg for d in converted), 1)


def rule_dose_escalation(ctx: Context) -> Finding | None:
    s = ctx.settings
    mid_day = ctx.today - timedelta(days=13)
    start_day = mid_day - timedelta(days=14)
    earlier, recent = ctx.fortnights()
    if not earlier or not recent:
        return None
    before = _window_summary(ctx, earlier, start_day, mid_day - timedelta(days=1))
    if before["days_with_doses"] < s["dose_escalation_min_days"]:
        return None
    after = _window_summary(ctx, recent, mid_day, ctx.today)
    threshold = 1 + s["dose_escalation_fraction"]
    rises: dict[str, float] = {}
    if before.get("unit") is not None and before.get("unit") == after.get("unit"):
        if before["total_amount"] > 0:
            rises["amount"] = after["total_amount"] / before["total_amount"]
    # The mitragynine estimate is only needed when it can differ from the amount (mixed
    # units or products), or as evidence once the rule fires.
    a, b = earlier[0], recent[0]
    same = (ctx.dose_stats(earlier).same_product and ctx.dose_stats(recent).same_product
            and (a.unit, a.mitragynine_percent, a.grams_per_capsule, a.product)
            == (b.unit, b.mitragynine_percent, b.grams_per_capsule, b.product))
    if "amount" not in rises or rises["amount"] >= threshold or not same:
        _add_mitragynine(before, earlier)
        _add_mitragynine(after, recent)
        if before.get("mitragynine_mg") and "mitragynine_mg" in after:
            rises["mitragynine"] = after["mitragynine_mg"] / before["mitragynine_mg"]
    fired = {k: v for k, v in rises.items() if v >= threshold}
    if not fired:
        return None
    ev = {
        "earlier_14_days": before,
        "last_14_days": after,
        "rise_percent": {k: round((v - 1) * 100, 1) for k, v in rises.items()},
    }
    if "amount" in fired:
        what = (
            f"{_fmt(before['total_amount'])} to {_fmt(after['total_amount'])} {after['unit']}"
        )
        pct = fired["amount"]
    else:
        what = (
            f"an estimated {_fmt(before['mitragynine_mg'])} to "
            f"{_fmt(after['mitragynine_mg'])} mg mitragynine"
        )
        pct = fired["mitragynine"]
    message = (
        f"Kratom intake over the last 14 days rose by {(pct - 1) * 100:.0f} % against the 14 "
        f"days before ({what}). Tolerance and dependence are common in regular users, and "
        "kratom-associated liver injury has appeared weeks after starting or increasing use "
        "(case reports and case series)."
    )
    step = (
        "Consider asking what lies behind the increase (withdrawal, craving, pain, a new "
        "product), about other substances, and about jaundice, dark urine or itching."
    )
    return _finding("SAF-DOSE-ESC", "warning", message, ev, step)


# --------------------------------------------------------------------------------------
# Co-use and interactions
# --------------------------------------------------------------------------------------


def rule_co_use_sedative(ctx: Context) -> Finding | None:
    last = ctx.current_kratom()
    if last is None:
        return None
    s = ctx.settings
    items: list[dict[str, Any]] = []
    for med in ctx.current_medications():
        for label in drugs.classes_of(med.name, drugs.SEDATIVE_CLASSES):
            items.append({"class": label, "name": med.name, "source": "medication",
                          "since": med.start.isoformat()})
    since = ctx.ago(s["co_use_lookback_days"])
    for sub in ctx.window(ctx.timeline.substances, since):
        for label in drugs.classes_of(sub.name, drugs.SEDATIVE_CLASSES):
            items.append({"class": label, "name": sub.name, "source": "reported use",
                          "at": _iso(sub.at)})
    for code, label in UDS_CLASSES.items():
        rows = ctx.labs(code)
        if rows and rows[-1].at >= since and _qualitative_positive(rows[-1]):
            items.append({"class": label, "name": code, "source": "urine screen (presumptive)",
                          "at": _iso(rows[-1].at)})
    audit = ctx.assessments("audit-c", s["audit_c_valid_days"])
    if audit:
        a = audit[-1]
        total, flags, _ = _score(ctx, a)
        if "audit-c-positive" in flags or "audit-c-positive-depends-on-sex" in flags:
            entry = {"class": "alcohol", "name": "AUDIT-C", "source": "screen",
                     "at": _iso(a.at), "total": total}
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
    ev = {"kratom_last_dose_at": _iso(last.taken_at), "co_use": items,
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
    return _finding("SAF-COUSE-SED", "warning", message, ev, step)


def rule_interaction_cyp3a(ctx: Context) -> Finding | None:
    last = ctx.current_kratom()
    if last is None:
        return None
    narrow, sensitive = [], []
    for med in ctx.current_medications():
        if drugs.matching(med.name, drugs.CYP3A_NARROW_MARGIN):
            narrow.append(med.name)
        elif drugs.matching(med.name, drugs.CYP3A_SENSITIVE):
            sensitive.append(med.name)
    if not narrow and not sensitive:
        return None
    names = narrow + sensitive
    ev = {"kratom_last_dose_at": _iso(last.taken_at), "narrow_margin": narrow,
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
    return _finding("SAF-DDI-CYP3A", "warning" if narrow else "info", message, ev, step)


# --------------------------------------------------------------------------------------
# Liver, pregnancy, suicide risk, seizure, diary
# --------------------------------------------------------------------------------------


def rule_liver_injury(ctx: Context) -> Finding | None:
    s = ctx.settings
    since = ctx.ago(s["lab_recent_days"])
    multiples = {
        "alt": s["liver_aminotransferase_uln_multiple"],
        "ast": s["liver_aminotransferase_uln_multiple"],
        "bilirubin": s["liver_bilirubin_uln_multiple"],
    }
    units = {"alt": "U/L", "ast": "U/L", "bilirubin": "mg/dL"}
    labs_over: dict[str, dict[str, Any]] = {}
    parts = []
    for code, multiple in multiples.items():
        rows = ctx.labs(code)
        if not rows or rows[-1].at < since:
            continue
        r = rows[-1]
        value = _canonical(code, r.value, r.unit)
        uln, _ = _uln(r, ctx.sex)
        if value is None or uln is None or uln <= 0 or value <= multiple * uln:
            continue
        ev = _lab_json(r, value, uln, units[code])
        ev["times_uln"] = round(value / uln, 2)
        labs_over[code] = ev
        parts.append(
            f"{code.upper() if code != 'bilirubin' else 'Bilirubin'} {_fmt(value)} "
            f"{units[code]} on {r.at.date()} ({value / uln:.1f} x ULN)"
        )
    symptoms = ctx.side_effects("dark-urine-yellow-eyes", s["symptom_recent_days"])
    if not labs_over and not symptoms:
        return None
    hy = ("alt" in labs_over or "ast" in labs_over) and "bilirubin" in labs_over
    ev_all: dict[str, Any] = {"labs": labs_over}
    if symptoms:
        ev_all["symptoms"] = [{"code": x.code, "at": _iso(x.at)} for x in symptoms]
        parts.append(f"dark urine or yellow eyes reported on {symptoms[-1].at.date()}")
    last = ctx.last_dose()
    if last is not None:
        ev_all["kratom_last_dose_at"] = _iso(last.taken_at)
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
    return _finding("SAF-LIVER", "urgent" if hy else "warning", message, ev_all, step)


def rule_pregnancy(ctx: Context) -> Finding | None:
    why = ctx.pregnancy()
    if why is None:
        return None
    last = ctx.current_kratom()
    if last is None:
        return None
    ev = dict(why)
    ev["kratom_last_dose_at"] = _iso(last.taken_at)
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
    return _finding("SAF-PREG", "warning", message, ev, step)


def _item_conditions(inst, flag_id: str) -> tuple[tuple[str, int], ...]:
    """(item, at least) pairs of an item flag, read from the instrument definition."""
    for flag in inst.flags:
        if flag.id == flag_id:
            found = tuple((c.item, c.threshold or 0) for c in flag.conditions
                          if c.kind == "item" and c.item)
            if found:
                return found
    raise LookupError(f"the {inst.id} definition has no item flag {flag_id!r}")


def rule_suicide_risk(ctx: Context) -> Finding | None:
    rows = ctx.assessments("phq9", ctx.settings["phq9_recent_days"])
    if not rows:
        return None
    # The flag's own condition (item "self-harm" >= 1 in the PHQ-9 definition), checked
    # directly on the responses: no full scoring pass is needed for a single item.
    phq9 = ctx.instrument("phq9")
    conditions = _item_conditions(phq9, "phq9-item9-positive")
    for a in reversed(rows):
        if not a.items:
            continue
        hit = next(((item, a.items[item]) for item, least in conditions
                    if a.items.get(item, -1) >= least), None)
        if hit is None:
            continue
        item, value = hit
        anchor = phq9.item(item).anchor(value)
        ev = {"assessment_at": _iso(a.at), "item": item, "value": value, "anchor": anchor}
        message = (
            f"PHQ-9 item 9 (thoughts of being better off dead or of self-harm) answered "
            f"{value} ('{anchor}') on {a.at.date()}."
        )
        step = (
            "Consider a same-day suicide risk assessment following local protocol, including "
            "access to means and intent to overdose."
        )
        return _finding("SAF-SUICIDE", "urgent", message, ev, step)
    return None


def rule_seizure(ctx: Context) -> Finding | None:
    rows = ctx.side_effects("seizure", ctx.settings["seizure_recent_days"])
    if not rows:
        return None
    ev: dict[str, Any] = {"reports": [_iso(x.at) for x in rows]}
    last = ctx.last_dose()
    if last is not None:
        ev["kratom_last_dose_at"] = _iso(last.taken_at)
    message = (
        f"Seizure reported on {rows[-1].at.date()}. Seizures are among the effects reported "
        "in kratom exposures to US poison centres and in case reports, often with other "
        "substances involved."
    )
    step = (
        "Consider same-day clinical review, asking about other substances and the kratom "
        "product used (adulteration with O-desmethyltramadol has been reported)."
    )
    return _finding("SAF-SEIZURE", "urgent", message, ev, step)


def rule_diary_missed(ctx: Context) -> Finding | None:
    s = ctx.settings
    days = ctx.timeline.diary_days
    j = bisect_right(days, ctx.today)
    if not j:
        return None
    last = days[j - 1]
    gap = (ctx.today - last).days
    if gap < s["diary_gap_days"]:
        return None
    usual = j - bisect_left(days, last - timedelta(days=27))
    if usual < s["diary_usual_days_per_28"]:
        return None
    # Evidence names the data that triggered the rule, not the time since (which changes every
    # day and would undo a clinician's resolution of the same episode at the next sweep).
    ev = {"last_diary_day": last.isoformat(), "entries_in_28_days_before": usual}
    message = (
        f"No diary for {gap} days (last entry {last}) from a patient who wrote it on {usual} "
        "of the 28 days before. A break in self-report can mean disengagement from care; "
        "most people who died with kratom detected had no evidence of current treatment."
    )
    step = "Consider contacting the patient to check in."
    return _finding("SAF-DIARY-GAP", "info", message, ev, step)


# --------------------------------------------------------------------------------------
# The rule table
# --------------------------------------------------------------------------------------

_PRL_CITES = ("labryer-2018", "jcem-1978-opiates-prolactin", "delitala-1983", "bowen-2002",
              "melmed-2011-endocrine-society")

RULES: tuple[Rule, ...] = (
    Rule(
        "SAF-SUICIDE", "suicide-risk", "urgent",
        "PHQ-9 item 9 (thoughts of death or self-harm) answered above 0 in a PHQ-9 of the "
        "last 2 weeks: urgent, same-day safety follow-up (clinical convention).",
        ("phq9_recent_days",),
        ("kroenke-2001-phq9",),
        rule_suicide_risk,
    ),
    Rule(
        "SAF-SEIZURE", "seizure", "urgent",
        "A seizure reported on the side-effect checklist: urgent review.",
        ("seizure_recent_days",),
        ("post-2019", "afzal-2020", "arndt-2011-krypton"),
        rule_seizure,
    ),
    Rule(
        "SAF-WD-MOD", "withdrawal-moderate", "urgent",
        "Latest COWS of the last days at or above the moderate band (warning) or the "
        "moderately severe band (urgent), or a marked rise of SOWS above the patient's "
        "recent lowest (warning).",
        ("withdrawal_cows_moderate", "withdrawal_cows_urgent", "withdrawal_recent_days",
         "sows_rise_points", "sows_baseline_days"),
        ("wesson-2003-cows", "handelsman-1987-sows", "singh-2014",
         "singh-2019-kratom-dependence", "weiss-douglas-2021"),
        rule_withdrawal,
    ),
    Rule(
        "SAF-LIVER", "liver-injury", "urgent",
        "Latest ALT or AST above 3 x ULN, or bilirubin above 2 x ULN, or dark urine or "
        "yellow eyes reported (warning); aminotransferase and bilirubin both over their "
        "thresholds, the Hy's law pattern (urgent).",
        ("liver_aminotransferase_uln_multiple", "liver_bilirubin_uln_multiple",
         "lab_recent_days", "symptom_recent_days"),
        ("schimmel-dart-2020", "ahmad-2021-dilin", "livertox-kratom", "fda-2009-dili-guidance",
         "aithal-2011-dili-criteria"),
        rule_liver_injury,
    ),
    Rule(
        "SAF-PRL-VHIGH", "prolactin-very-high", "urgent",
        "Latest prolactin above about 100 ng/mL, the level drug-induced hyperprolactinaemia "
        "usually stays below (warning); above about 250 ng/mL, highly suggestive of a "
        "prolactinoma (urgent). Not applied in pregnancy or breastfeeding.",
        ("prolactin_very_high_ng_per_ml", "prolactin_prolactinoma_ng_per_ml",
         "prolactin_monitoring_interval_days"),
        ("vilar-2014", "jcem-2023-prolactin-workup", "majumdar-mangal-2013",
         "melmed-2011-endocrine-society"),
        rule_prolactin_very_high,
    ),
    Rule(
        "SAF-PREG", "pregnancy", "warning",
        "Pregnancy reported, or a positive hCG, while kratom is in current use: risk of "
        "neonatal abstinence syndrome.",
        ("kratom_current_use_days", "hcg_positive_valid_days"),
        ("eldridge-2018", "pcch-2019-neonatal-abstinence", "nellhaus-2018", "post-2019",
         "labcorp-kratom-urine-assay"),
        rule_pregnancy,
    ),
    Rule(
        "SAF-COUSE-SED", "co-use-sedative", "warning",
        "Current kratom use together with an opioid, benzodiazepine, gabapentinoid, other "
        "sedative-hypnotic or alcohol (current medication, reported use, positive urine "
        "screen or positive AUDIT-C).",
        ("kratom_current_use_days", "co_use_lookback_days", "audit_c_valid_days"),
        ("post-2019", "olsen-2019-mmwr", "who-ecdd-2021-kratom", "bush-1998-auditc",
         "bradley-2003-auditc", "kale-2019-urine-drug-tests"),
        rule_co_use_sedative,
    ),
    Rule(
        "SAF-DDI-CYP3A", "interaction-cyp3a", "warning",
        "A current medication sensitive to CYP3A inhibition while kratom is in current use "
        "(kratom raised midazolam exposure 1.4-fold): warning for narrow-margin substrates "
        "(midazolam, fentanyl, oxycodone, tacrolimus...), info for other sensitive ones.",
        ("kratom_current_use_days",),
        ("tanna-2023", "tanna-2021", "kong-2011", "fda-ddi-table"),
        rule_interaction_cyp3a,
    ),
    Rule(
        "SAF-DOSE-ESC", "dose-escalation", "warning",
        "Kratom amount (same unit) or estimated mitragynine over the last 14 days up by "
        "50 % or more on the 14 days before.",
        ("dose_escalation_fraction", "dose_escalation_min_days"),
        ("singh-2014", "singh-2019-kratom-dependence", "schimmel-dart-2020"),
        rule_dose_escalation,
    ),
    Rule(
        "SAF-PRL-SYMPT", "prolactin-symptoms", "warning",
        "Symptoms linked to high prolactin (reduced sex drive, sexual dysfunction, breast "
        "enlargement or tenderness, nipple discharge, menstrual change) with the latest "
        "prolactin above the upper reference limit. Not applied in pregnancy or "
        "breastfeeding.",
        ("prolactin_symptom_window_days", "prolactin_monitoring_interval_days"),
        ("melmed-2011-endocrine-society", "serri-2003", "ruljancic-2021", "labryer-2018"),
        rule_prolactin_symptoms,
    ),
    Rule(
        "SAF-PRL-HIGH", "prolactin-high", "warning",
        "Latest prolactin above the upper reference limit for the patient's sex (the "
        "reporting laboratory's when given) and at or below the very-high threshold: info "
        "below 2 x ULN (repeat before labelling), warning above. Not applied in pregnancy "
        "or breastfeeding.",
        ("prolactin_mild_uln_multiple", "prolactin_very_high_ng_per_ml",
         "prolactin_monitoring_interval_days"),
        _PRL_CITES + ("majumdar-mangal-2013", "mayo-clinic-laboratories-prl"),
        rule_prolactin_high,
    ),
    Rule(
        "SAF-PRL-RISE", "prolactin-rising", "warning",
        "Latest prolactin at least 50 % above the patient's first result (two results or "
        "more): warning when also above the upper limit, info otherwise.",
        ("prolactin_rise_fraction", "prolactin_monitoring_interval_days"),
        ("sassin-1972", "levine-2018-stress-hyperprolactinemia") + _PRL_CITES,
        rule_prolactin_rising,
    ),
    Rule(
        "SAF-PRL-DUE", "prolactin-test-due", "info",
        "Symptoms linked to high prolactin with no prolactin in the symptom window, or "
        "regular kratom use with no prolactin in the monitoring interval. Not applied in "
        "pregnancy or breastfeeding (routine measurement not advised).",
        ("prolactin_symptom_window_days", "prolactin_monitoring_interval_days",
         "regular_use_days_per_28"),
        _PRL_CITES + ("medscape-prolactin",),
        rule_prolactin_test_due,
    ),
    Rule(
        "SAF-DIARY-GAP", "diary-missed", "info",
        "No diary for 7 days from a patient who wrote it on at least 20 of the 28 days "
        "before.",
        ("diary_gap_days", "diary_usual_days_per_28"),
        ("olsen-2019-mmwr",),
        rule_diary_missed,
    ),
)

_BY_ID = {r.id: r for r in RULES}


def get_rule(rule_id: str) -> Rule:
    """The rule with this id (KeyError when unknown)."""
    return _BY_ID[rule_id]


def evaluate(timeline: Timeline, as_of: datetime,
             settings: Mapping[str, float | int] | None = None) -> list[Finding]:
    """Evaluate every rule on one timeline.

    Parameters
    ----------
    timeline : Timeline
    as_of : datetime
        Read the timeline as of this moment (later data is ignored). Naive: patient's zone.
    settings : Mapping, optional
        Overrides of :data:`DEFAULT_SETTINGS`.

    Returns
    -------
    list of Finding
        Urgent first, then warning, then info; within a severity, in rule order.

    Raises
    ------
    ValueError
        For an unknown setting name or a non-positive value.
    """
    ctx = Context(timeline, as_of, resolve_settings(settings))
    found = []
    for rule in RULES:
        f = rule.evaluate(ctx)
        if f is not None:
            found.append(f)
    found.sort(key=lambda f: _RANK[f.severity])
    return found
