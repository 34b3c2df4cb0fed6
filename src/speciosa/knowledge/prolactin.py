"""Prolactin interpretation: canonical value, reference range, flag, and the considerations a
guideline-following clinician would weigh, each with its citations.

The wording supports a clinician's decision; it does not diagnose. Kratom is treated as the
evidence suggests (one case report plus opioid class pharmacology): it may *raise*
prolactin. The source article's claim that kratom lowers prolactin is contradicted
(claim ``article-1``).

:func:`interpret` computes the result and its context once (``_Case``) and runs the table
``CONSIDERATIONS``: one small function per point to weigh, in the order they are listed, each
marked as applying to a raised value only or to any value, and as applying in pregnancy or
breastfeeding or not. A new consideration is a function and a row of that table.

In pregnancy or breastfeeding the non-pregnant range does not apply: the interpretation says
so and stops there (no flag, nothing about hyperprolactinaemia, macroprolactin or imaging).
Prolactin has no critical value: above about 250 ng/mL is a prompt endocrinology referral.

References
----------
.. [1] Melmed S et al. Diagnosis and treatment of hyperprolactinemia: an Endocrine Society
   clinical practice guideline. J Clin Endocrinol Metab 2011;96(2):273-288.
.. [2] shared/reference/pharmacology.md sections 4, 5, 6 and "Claims in the source article
   vs evidence".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from speciosa.knowledge import drugs, evidence, labs
from speciosa.pharmacology import model

__all__ = [
    "DISCLAIMER",
    "DRUG_INDUCED_USUAL_MAX_CITATIONS",
    "DRUG_INDUCED_USUAL_MAX_NG_PER_ML",
    "KRATOM_REMEASURE_HALF_LIVES",
    "MILD_ELEVATION_MAX_FACTOR",
    "MILD_ELEVATION_CITATIONS",
    "PROLACTINOMA_SUGGESTIVE_CITATIONS",
    "PROLACTINOMA_SUGGESTIVE_NG_PER_ML",
    "PROLACTIN_RAISING_MEDICATIONS",
    "REFERRAL_CITATIONS",
    "Consideration",
    "Interpretation",
    "MedicationEffect",
    "PHYSIOLOGICAL_FLAG_NOTE",
    "interpret",
    "kratom_remeasure_after_h",
    "physiological",
    "prolactin_raising_medication",
]

#: Drug-induced hyperprolactinaemia is usually below about this value (ng/mL).
DRUG_INDUCED_USUAL_MAX_NG_PER_ML = 100.0
DRUG_INDUCED_USUAL_MAX_CITATIONS = ("drug-induced-prolactin-usually-below-100", "vilar-2014")

#: Above about this value (ng/mL) a prolactinoma is highly suggested.
PROLACTINOMA_SUGGESTIVE_NG_PER_ML = 250.0
PROLACTINOMA_SUGGESTIVE_CITATIONS = (
    "prolactin-above-250-suggests-prolactinoma",
    "vilar-2014",
    "jcem-2023-prolactin-workup",
)

#: Prolactin has no critical (same-day) value: above the level that suggests a prolactinoma
#: the step is a prompt endocrinology referral with pituitary MRI (a warning), so the flag is
#: "high" however high the value.
REFERRAL_CITATIONS = ("prolactin-above-250-prompt-referral", *PROLACTINOMA_SUGGESTIVE_CITATIONS)

#: After kratom, re-measure no sooner than this many mitragynine half-lives after the last
#: dose (about 97 % eliminated), with the half-life after repeated doses of the
#: pharmacology model (:data:`speciosa.pharmacology.model.REPEATED_DOSE_HALF_LIFE`).
KRATOM_REMEASURE_HALF_LIVES = 5
KRATOM_REMEASURE_CITATIONS = (
    "remeasure-after-stopping-kratom", "huestis-2024", "gibaldi-perrier-1982",
    "kratom-causes-dependence",
)

#: A raised value below this multiple of the upper limit is "mild": check sampling
#: conditions before attributing it (pharmacology.md 6.6, software implication).
MILD_ELEVATION_MAX_FACTOR = 2.0
MILD_ELEVATION_CITATIONS = ("prolactin-sampling-conditions", "melmed-2011-endocrine-society")

DISCLAIMER = (
    "Speciosa is not a medical device. This interpretation supports a clinician's decision; "
    "it does not diagnose, and Speciosa never recommends a kratom dose."
)


@dataclass(frozen=True)
class Consideration:
    """One point to weigh, with the evidence ids that support it."""

    code: str
    text: str
    citations: tuple[str, ...]


@dataclass(frozen=True)
class Interpretation:
    """Result of :func:`interpret`. Values are in ``unit`` as entered and in ng/mL.

    ``flag`` is ``"low"``, ``"normal"`` or ``"high"``, or ``""`` in pregnancy or
    breastfeeding, when the non-pregnant range does not apply (``flag_note`` says why).
    """

    lab: str
    loinc: str | None
    value: float
    unit: str
    canonical_value: float
    canonical_unit: str
    reference_low: float | None
    reference_high: float | None
    flag: str
    considerations: tuple[Consideration, ...]
    citations: tuple[str, ...]
    disclaimer: str
    flag_note: str = ""

    def codes(self) -> tuple[str, ...]:
        """Codes of the considerations, in order."""
        return tuple(c.code for c in self.considerations)


@dataclass(frozen=True)
class MedicationEffect:
    """A medication or substance known to raise prolactin.

    Attributes
    ----------
    name : str
        Normalised name.
    drug_class : str
    citations : tuple of str
        Evidence ids (claims or citations).
    note : str
        Evidence strength or caveat shown with it.
    """

    name: str
    drug_class: str
    citations: tuple[str, ...]
    note: str = ""


def _effect(drug: drugs.Drug) -> MedicationEffect:
    assignment = drug.assignments["prolactin-raising"]
    group = drugs.prolactin_groups()[assignment.group]
    return MedicationEffect(drug.name, group.label, assignment.citations, group.note)


def _build_medications() -> Mapping[str, MedicationEffect]:
    table: dict[str, MedicationEffect] = {}
    for drug in drugs.all_drugs():
        if "prolactin-raising" in drug.assignments:
            effect = _effect(drug)
            for name in drug.names:
                table.setdefault(_normalise_name(name), effect)
    return MappingProxyType(table)


def _normalise_name(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


#: Normalised name (generic, synonym or brand) -> :class:`MedicationEffect`, derived from
#: the drug table (:mod:`speciosa.knowledge.drugs`, class ``prolactin-raising``). Drugs that
#: lower or barely change prolactin (e.g. aripiprazole) are deliberately absent.
PROLACTIN_RAISING_MEDICATIONS: Mapping[str, MedicationEffect] = _build_medications()


def prolactin_raising_medication(name: str) -> MedicationEffect | None:
    """Return the effect entry for a medication name as entered, or None.

    The name is looked up in the drug table (:func:`speciosa.knowledge.drugs.classify`):
    case-insensitive, word by word, so a dose or form (``"risperidone 2 mg"``) and brand
    names (``"Risperdal"``) are handled; the first prolactin-raising entry named wins.
    """
    for drug, _ in drugs.classify(str(name)).assignments("prolactin-raising"):
        return _effect(drug)
    return None


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def kratom_remeasure_after_h() -> float:
    """Hours after the last kratom dose before prolactin is re-measured: five half-lives of
    mitragynine after repeated doses (5 x 67.9 h = 339.5 h, about 14 days).

    References
    ----------
    .. [1] Huestis MA et al. Molecules 2024;29(5):984 (``huestis-2024``), through
       :data:`speciosa.pharmacology.model.REPEATED_DOSE_HALF_LIFE`.
    """
    return KRATOM_REMEASURE_HALF_LIVES * model.REPEATED_DOSE_HALF_LIFE.value


#: Why a prolactin in pregnancy or breastfeeding carries no flag.
PHYSIOLOGICAL_FLAG_NOTE = (
    "not flagged: the non-pregnant reference range does not apply in pregnancy or "
    "breastfeeding"
)


_SYMPTOMS_FEMALE = (
    "menstrual disturbance (irregular or absent periods), galactorrhoea (milky nipple "
    "discharge), infertility and decreased libido"
)
_SYMPTOMS_MALE = (
    "decreased libido, erectile dysfunction, infertility, gynaecomastia and, rarely, galactorrhoea"
)
_MASS_SYMPTOMS = {"headache", "visual disturbance", "visual field defect", "visual-field-defect"}


def _recent(
    recent_labs: Mapping[str, tuple[float, str]] | None, code: str
) -> tuple[float, float, str] | None:
    """Return (canonical value, value as entered, unit) of a recent lab, or None."""
    if not recent_labs or code not in recent_labs:
        return None
    value, unit = recent_labs[code]
    return labs.to_canonical(code, value, unit), float(value), labs.normalise_unit(code, unit)


@dataclass(frozen=True)
class _Case:
    """One result and its context, as every consideration reads it (computed once)."""

    value: float
    ucum: str
    iu_factor: float | None
    canonical: float
    high: float | None
    raised: bool
    sex: str
    pregnant: bool
    breastfeeding: bool
    effects: tuple[tuple[str, MedicationEffect], ...]
    symptoms: frozenset[str]
    tsh: tuple[float, float, str] | None
    creatinine: tuple[float, float, str] | None
    egfr: tuple[float, float, str] | None


def _one(code: str, text: str, citations: Iterable[str]) -> list[Consideration]:
    return [Consideration(code, text, tuple(dict.fromkeys(citations)))]


def _check_value(c: _Case) -> list[Consideration]:
    problem = labs.plausibility_problem("prolactin", c.value, c.ucum, iu_factor=c.iu_factor)
    if problem is None:
        return []
    return _one("check-value", problem[0].upper() + problem[1:] + ".", ("ohdsi-dqd-plausibility",))


def _unit_conversion(c: _Case) -> list[Consideration]:
    if c.ucum != "m[IU]/L":
        return []
    factor = c.iu_factor if c.iu_factor is not None else float(labs.PROLACTIN_MIU_PER_NG)
    marker = "" if c.iu_factor is not None else " (assay-specific; UNCONFIRMED)"
    return _one(
        "unit-conversion",
        f"Converted from mIU/L at {factor:g} mIU/L per ng/mL{marker}. Check the "
        "laboratory's stated factor; the catalogue's 21.2 assumes the WHO 3rd IS 84/500.",
        ("prolactin-unit-conversion-who-84-500",),
    )


def physiological(sex: str, pregnant: bool, breastfeeding: bool) -> bool:
    """Whether pregnancy or breastfeeding sets the non-pregnant range aside: only for a
    patient whose reference-range sex is not male. Recorded for a male patient it is a
    contradiction in the record, not a reason to stay silent about a high value
    (:func:`_status_contradiction` says so)."""
    return sex != "male" and bool(pregnant or breastfeeding)


def _status_contradiction(c: _Case) -> list[Consideration]:
    if c.sex != "male" or not (c.pregnant or c.breastfeeding):
        return []
    status = "pregnancy" if c.pregnant else "breastfeeding"
    return _one(
        "status-contradiction",
        f"The record says {status} but the patient's sex for reference ranges is "
        f"{c.sex}: check the record. The value is read against the {c.sex} range until "
        "it is corrected.",
        ("pregnancy-raises-prolactin",),
    )


def _pregnancy(c: _Case) -> list[Consideration]:
    if not c.pregnant or c.sex == "male":
        return []
    return _one(
        "pregnancy",
        "Pregnancy raises prolactin physiologically, so the non-pregnant reference range "
        "does not apply and the value is not flagged; routine prolactin measurement is not "
        "advised in pregnancy. Speciosa does not interpret the value further.",
        ("pregnancy-raises-prolactin",),
    )


def _breastfeeding(c: _Case) -> list[Consideration]:
    if not c.breastfeeding or c.sex == "male":
        return []
    return _one(
        "breastfeeding",
        "Breastfeeding (lactation and nipple stimulation) raises prolactin "
        "physiologically, so the non-pregnant reference range does not apply and the value "
        "is not flagged. Speciosa does not interpret the value further.",
        ("pregnancy-raises-prolactin",),
    )


def _single_value_confirms(c: _Case) -> list[Consideration]:
    return _one(
        "single-value-confirms",
        "One value above the upper limit"
        + (f" ({_fmt(c.high)} ng/mL)" if c.high is not None else "")
        + ", drawn at rest without "
        "excessive venipuncture stress, is enough to confirm hyperprolactinaemia; dynamic "
        "testing is not recommended. Avoid repeated testing once sampling conditions "
        "are known to be good, and turn to the cause.",
        ("single-high-prolactin-confirms", "melmed-2011-endocrine-society"),
    )


def _sampling_conditions(c: _Case) -> list[Consideration]:
    if c.high is None or c.canonical >= MILD_ELEVATION_MAX_FACTOR * c.high:
        return []
    return _one(
        "sampling-conditions",
        f"The value is less than {MILD_ELEVATION_MAX_FACTOR:g} times the upper limit. "
        "Prolactin rises during sleep, in pulses and with stress, including a "
        "difficult venipuncture: check the time of sampling (some hours after waking) "
        "and how the draw went; if they were not good, one repeat at rest is "
        "reasonable before attributing the value.",
        MILD_ELEVATION_CITATIONS,
    )


def _exclude_pregnancy(c: _Case) -> list[Consideration]:
    if c.sex != "female" or c.pregnant or c.breastfeeding:
        return []
    return _one(
        "exclude-pregnancy",
        "Exclude pregnancy (hCG) before looking for other causes.",
        ("pregnancy-raises-prolactin", "melmed-2011-endocrine-society"),
    )


def _medications(c: _Case) -> list[Consideration]:
    if not c.effects:
        return _one(
            "medication-history",
            "No listed medication is known to raise prolactin. Ask specifically about "
            "antipsychotics, metoclopramide, domperidone, opioids (including kratom, "
            "which patients may not think of as a drug), antidepressants and oestrogens.",
            ("medications-raise-prolactin", "kratom-may-raise-prolactin"),
        )
    listed = "; ".join(
        f"{m} [{e.drug_class}{'; ' + e.note if e.note else ''}]" for m, e in c.effects
    )
    oud = [m for m, e in c.effects if not _is_kratom(e) and _treats_oud(m)]
    others = [m for m, e in c.effects if not _is_kratom(e) and m not in oud]
    kratom_too = any(_is_kratom(e) for _, e in c.effects)
    remeasure = (
        " If a drug is the suspected cause, stop or replace it when that is safe and "
        "re-measure once it has left the body: about 3 days after stopping for most drugs "
        "(interval UNCONFIRMED), longer for a drug eliminated slowly (about five of its "
        "half-lives)"
        + ("; not kratom, which needs two weeks or more (below)." if kratom_too else ".")
        if others else ""
    )
    keep = (
        f" Do not stop {', '.join(oud)} (treatment of opioid use disorder) to re-measure "
        "prolactin: stopping brings withdrawal, and the tolerance lost afterwards raises the "
        "risk of a fatal overdose; any change is the prescriber's decision with the patient."
        if oud else ""
    )
    out = _one(
        "medications",
        f"Listed medications or substances known to raise prolactin: {listed}.{remeasure}"
        f"{keep} "
        "If the suspected drug cannot be stopped and the cause is unclear, pituitary MRI is "
        "the guideline's next step.",
        [cite for _, e in c.effects for cite in e.citations]
        + (["remeasure-after-stopping-drug", "gibaldi-perrier-1982"] if others else [])
        + (["lost-tolerance-overdose"] if oud else [])
        + ["melmed-2011-endocrine-society"],
    )
    if c.canonical > DRUG_INDUCED_USUAL_MAX_NG_PER_ML:
        out += _one(
            "above-drug-induced-range",
            f"Drug-induced levels are usually below about "
            f"{DRUG_INDUCED_USUAL_MAX_NG_PER_ML:g} ng/mL; at {_fmt(c.canonical)} ng/mL "
            "the listed medication alone may not explain the value.",
            DRUG_INDUCED_USUAL_MAX_CITATIONS,
        )
    else:
        out += _one(
            "within-drug-induced-range",
            f"The value is within the range usually seen with drug-induced "
            f"hyperprolactinaemia (below about {DRUG_INDUCED_USUAL_MAX_NG_PER_ML:g} "
            "ng/mL), but a microprolactinoma or a systemic cause can also give values "
            "in this range.",
            DRUG_INDUCED_USUAL_MAX_CITATIONS,
        )
    return out


def _is_kratom(e: MedicationEffect) -> bool:
    return e.drug_class.startswith("kratom")


def _treats_oud(name: str) -> bool:
    """A treatment of opioid use disorder (methadone, buprenorphine): never stopped to
    re-measure prolactin (the drug table's ``oud`` mark)."""
    return any(a.oud_treatment for _, a in drugs.classify(str(name)).assignments("opioid"))


def _kratom(c: _Case) -> list[Consideration]:
    if not any(_is_kratom(e) for _, e in c.effects):
        return []
    strength = evidence.strength_in_words(["labryer-2018"])
    half_life = model.REPEATED_DOSE_HALF_LIFE.value
    after_h = kratom_remeasure_after_h()
    return _one(
        "kratom",
        "Kratom may raise prolactin, as mu-opioid agonists do; it is not known to "
        f"lower it. Evidence: {strength} (raised during use, normal two months after "
        "stopping) plus opioid class pharmacology; the size of the effect is unknown.",
        ("kratom-may-raise-prolactin", "labryer-2018", "article-1"),
    ) + _one(
        "kratom-remeasure",
        "To see whether kratom explains the value, re-measure no sooner than about "
        f"{KRATOM_REMEASURE_HALF_LIVES} half-lives of mitragynine after the last dose: with "
        f"its half-life after repeated daily doses ({half_life:.0f} h), "
        f"{KRATOM_REMEASURE_HALF_LIVES} x {half_life:.0f} h is about {after_h / 24:.0f} "
        "days, so two weeks or more; a few days after stopping is too soon. Only within a "
        "supervised taper: stopping kratom brings withdrawal.",
        KRATOM_REMEASURE_CITATIONS,
    )


def _thyroid(c: _Case) -> list[Consideration]:
    if c.tsh is None:
        return _one(
            "check-tsh",
            "No recent TSH: primary hypothyroidism can raise prolactin; check TSH.",
            ("hypothyroidism-raises-prolactin",),
        )
    tsh_rng = labs.reference_range("tsh", c.sex)
    if labs.flag_against(c.tsh[0], tsh_rng) != "high":
        return []
    return _one(
        "hypothyroidism",
        f"TSH {_fmt(c.tsh[1])} {c.tsh[2]} is above the upper limit "
        f"({_fmt(tsh_rng[1])} m[IU]/L): primary hypothyroidism can raise "
        "prolactin; assess thyroid function before other causes.",
        ("hypothyroidism-raises-prolactin", "mayo-clinic-laboratories-tsh"),
    )


def _kidney(c: _Case) -> list[Consideration]:
    if c.creatinine is None and c.egfr is None:
        return _one(
            "check-kidney-function",
            "No recent creatinine or eGFR: chronic kidney failure can raise prolactin; "
            "check kidney function.",
            ("kidney-failure-raises-prolactin",),
        )
    reasons = []
    if c.creatinine is not None:
        c_rng = labs.reference_range("creatinine", c.sex)
        if labs.flag_against(c.creatinine[0], c_rng) == "high":
            reasons.append(
                f"creatinine {_fmt(c.creatinine[1])} {c.creatinine[2]} is above the upper "
                f"limit ({_fmt(c_rng[1])} mg/dL)"
            )
    if c.egfr is not None:
        e_rng = labs.reference_range("egfr", c.sex)
        if labs.flag_against(c.egfr[0], e_rng) == "low":
            reasons.append(f"eGFR {_fmt(c.egfr[1])} {c.egfr[2]} is below {_fmt(e_rng[0])}")
    if not reasons:
        return []
    return _one(
        "kidney-function",
        f"Reduced kidney function ({'; '.join(reasons)}): the kidney clears about "
        "a quarter of prolactin and chronic kidney failure can raise it.",
        ("kidney-failure-raises-prolactin", "mayo-clinic-laboratories-creatinine"),
    )


def _prolactinoma_or_macroprolactin(c: _Case) -> list[Consideration]:
    if c.canonical > PROLACTINOMA_SUGGESTIVE_NG_PER_ML:
        return _one(
            "prolactinoma-suggested",
            f"A level above about {PROLACTINOMA_SUGGESTIVE_NG_PER_ML:g} ng/mL is highly "
            "suggestive of a prolactinoma: refer promptly to endocrinology; pituitary MRI is "
            "the usual next step. Prolactin has no critical value: this is a prompt "
            "referral, not same-day emergency care.",
            REFERRAL_CITATIONS,
        )
    if c.symptoms:
        return []
    return _one(
        "macroprolactin",
        "No symptoms are recorded. In asymptomatic hyperprolactinaemia, screen for "
        "macroprolactin (PEG precipitation) before imaging.",
        ("macroprolactin-screen-when-asymptomatic",),
    )


def _symptoms(c: _Case) -> list[Consideration]:
    return _one(
        "symptoms",
        "Ask about symptoms of hyperprolactinaemia: "
        + (_SYMPTOMS_FEMALE if c.sex == "female" else _SYMPTOMS_MALE)
        + "; headache or visual change can point to a large pituitary tumour.",
        ("hyperprolactinemia-symptoms", "article-6"),
    )


def _hypogonadism(c: _Case) -> list[Consideration]:
    return _one(
        "hypogonadism",
        "Hyperprolactinaemia can cause hypogonadotropic hypogonadism ("
        + ("low oestradiol, menstrual change" if c.sex == "female" else "low testosterone")
        + "); when it lasts, bone density can fall.",
        ("hyperprolactinemia-causes-hypogonadism", "hyperprolactinemia-bone-loss"),
    )


def _hook_effect(c: _Case) -> list[Consideration]:
    if not c.symptoms & _MASS_SYMPTOMS or c.canonical > PROLACTINOMA_SUGGESTIVE_NG_PER_ML:
        return []
    return _one(
        "hook-effect",
        "Headache or visual symptoms are recorded. If imaging shows a large pituitary "
        "tumour with a normal or only mildly raised prolactin, ask the laboratory to "
        "re-assay after 1:100 dilution (hook effect).",
        ("hook-effect", "vilar-2014"),
    )


#: The considerations in the order they are listed: (function, applies only to a raised
#: value, applies in pregnancy or breastfeeding). Each function reads the :class:`_Case` and
#: returns zero or more considerations. In pregnancy or breastfeeding only the rows marked
#: for it run: the non-pregnant range does not apply, so nothing that reads the value against
#: it (hyperprolactinaemia confirmed, macroprolactin, prolactinoma, imaging) is said.
CONSIDERATIONS: tuple[tuple[Callable[[_Case], list[Consideration]], bool, bool], ...] = (
    (_check_value, False, True),
    (_status_contradiction, False, False),
    (_unit_conversion, False, True),
    (_pregnancy, False, True),
    (_breastfeeding, False, True),
    (_single_value_confirms, True, False),
    (_sampling_conditions, True, False),
    (_exclude_pregnancy, True, False),
    (_medications, True, False),
    (_kratom, True, False),
    (_thyroid, True, False),
    (_kidney, True, False),
    (_prolactinoma_or_macroprolactin, True, False),
    (_symptoms, True, False),
    (_hypogonadism, True, False),
    (_hook_effect, False, False),
)


def interpret(
    value: float,
    unit: str,
    *,
    sex: str,
    pregnant: bool = False,
    breastfeeding: bool = False,
    medications: Iterable[str] = (),
    recent_labs: Mapping[str, tuple[float, str]] | None = None,
    symptoms: Iterable[str] = (),
    reference: tuple[float, float] | None = None,
    iu_factor: float | None = None,
) -> Interpretation:
    """Interpret one prolactin result.

    Parameters
    ----------
    value : float
        As reported, not negative.
    unit : str
        ``ng/mL``, ``ug/L`` (or ``µg/L``) or ``m[IU]/L`` (or ``mIU/L``).
    sex : {"female", "male"}
    pregnant, breastfeeding : bool
    medications : iterable of str
        Current medications and substances, e.g. ``["risperidone", "kratom"]``.
    recent_labs : Mapping[str, tuple[float, str]], optional
        Recent results by lab code: ``"tsh"``, ``"creatinine"``, ``"egfr"``.
    symptoms : iterable of str
        Symptoms reported (free codes; ``"headache"`` and ``"visual disturbance"`` are
        recognised as possible signs of a large pituitary tumour). Empty means none
        recorded.
    reference : (low, high), optional
        The reporting laboratory's range in ng/mL; defaults to the catalogue range.
    iu_factor : float, optional
        The laboratory's mIU/L per ng/mL factor when the unit is mIU/L (default 21.2,
        assay-specific and UNCONFIRMED).

    Returns
    -------
    Interpretation

    Raises
    ------
    speciosa.knowledge.labs.LabValueError
        Unknown unit, negative or non-numeric value, unknown sex, or a bad recent lab.

    References
    ----------
    .. [1] Melmed 2011 (``melmed-2011-endocrine-society``); Vilar 2014 (``vilar-2014``);
       pharmacology.md 6.3-6.7.
    """
    lab = labs.get_lab("prolactin")
    ucum = labs.normalise_unit("prolactin", unit)
    canonical = labs.to_canonical("prolactin", value, ucum, iu_factor=iu_factor)
    overrides = {sex: reference} if reference is not None else None
    rng = labs.reference_range("prolactin", sex, overrides)
    low, high = rng if rng is not None else (None, None)
    in_physiology = physiological(sex, pregnant, breastfeeding)
    flag = "" if in_physiology else (labs.flag_against(canonical, rng) or "normal")

    meds = [m for m in (str(x).strip() for x in medications) if m]
    effects = tuple(
        (m, eff) for m in meds if (eff := prolactin_raising_medication(m)) is not None
    )
    case = _Case(
        value=value,
        ucum=ucum,
        iu_factor=iu_factor,
        canonical=canonical,
        high=high,
        raised=flag == "high",
        sex=sex,
        pregnant=pregnant,
        breastfeeding=breastfeeding,
        effects=effects,
        symptoms=frozenset(_normalise_name(s) for s in symptoms if str(s).strip()),
        tsh=_recent(recent_labs, "tsh"),
        creatinine=_recent(recent_labs, "creatinine"),
        egfr=_recent(recent_labs, "egfr"),
    )
    considerations = tuple(
        item
        for consider, raised_only, in_pregnancy in CONSIDERATIONS
        if (case.raised or not raised_only) and (in_pregnancy or not in_physiology)
        for item in consider(case)
    )
    cites = list(lab.reference_citations if reference is None else ())
    for c in considerations:
        cites.extend(c.citations)
    return Interpretation(
        lab=lab.code,
        loinc=lab.loinc,
        value=float(value),
        unit=ucum,
        canonical_value=canonical,
        canonical_unit=lab.canonical_unit or "ng/mL",
        reference_low=low,
        reference_high=high,
        flag=flag,
        considerations=considerations,
        citations=tuple(dict.fromkeys(cites)),
        disclaimer=DISCLAIMER,
        flag_note=PHYSIOLOGICAL_FLAG_NOTE if in_physiology else "",
    )
