"""Prolactin interpretation: canonical value, reference range, flag, and the considerations a
guideline-following clinician would weigh, each with its citations.

The wording supports a clinician's decision; it does not diagnose. Kratom is treated as the
evidence suggests (one case report plus opioid class pharmacology): it may *raise*
prolactin. The source article's claim that kratom lowers prolactin is contradicted
(claim ``article-1``).

References
----------
.. [1] Melmed S et al. Diagnosis and treatment of hyperprolactinemia: an Endocrine Society
   clinical practice guideline. J Clin Endocrinol Metab 2011;96(2):273-288.
.. [2] shared/reference/pharmacology.md sections 4, 5, 6 and "Claims in the source article
   vs evidence".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from speciosa.knowledge import drugs, evidence, labs

__all__ = [
    "CRITICAL_NG_PER_ML",
    "CRITICAL_CITATIONS",
    "DISCLAIMER",
    "DRUG_INDUCED_USUAL_MAX_CITATIONS",
    "DRUG_INDUCED_USUAL_MAX_NG_PER_ML",
    "MILD_ELEVATION_MAX_FACTOR",
    "MILD_ELEVATION_CITATIONS",
    "PROLACTINOMA_SUGGESTIVE_CITATIONS",
    "PROLACTINOMA_SUGGESTIVE_NG_PER_ML",
    "PROLACTIN_RAISING_MEDICATIONS",
    "Consideration",
    "Interpretation",
    "MedicationEffect",
    "interpret",
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

#: The ``critical`` flag: above the level that suggests a prolactinoma (ng/mL).
CRITICAL_NG_PER_ML = PROLACTINOMA_SUGGESTIVE_NG_PER_ML
CRITICAL_CITATIONS = PROLACTINOMA_SUGGESTIVE_CITATIONS

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
    """Result of :func:`interpret`. Values are in ``unit`` as entered and in ng/mL."""

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
    basic = labs.flag_against(canonical, rng) or "normal"
    flag = "critical" if canonical > CRITICAL_NG_PER_ML else basic
    raised = flag in ("high", "critical")

    meds = [m for m in (str(x).strip() for x in medications) if m]
    effects: list[tuple[str, MedicationEffect]] = []
    for m in meds:
        eff = prolactin_raising_medication(m)
        if eff is not None:
            effects.append((m, eff))
    kratom_listed = any(e.drug_class.startswith("kratom") for _, e in effects)
    symptom_set = {_normalise_name(s) for s in symptoms if str(s).strip()}
    tsh = _recent(recent_labs, "tsh")
    creat = _recent(recent_labs, "creatinine")
    egfr = _recent(recent_labs, "egfr")

    out: list[Consideration] = []

    def add(code: str, text: str, citations: Iterable[str]) -> None:
        out.append(Consideration(code, text, tuple(dict.fromkeys(citations))))

    problem = labs.plausibility_problem("prolactin", value, ucum, iu_factor=iu_factor)
    if problem is not None:
        add("check-value", problem[0].upper() + problem[1:] + ".", ("ohdsi-dqd-plausibility",))

    if ucum == "m[IU]/L":
        factor = iu_factor if iu_factor is not None else float(labs.PROLACTIN_MIU_PER_NG)
        marker = "" if iu_factor is not None else " (assay-specific; UNCONFIRMED)"
        add(
            "unit-conversion",
            f"Converted from mIU/L at {factor:g} mIU/L per ng/mL{marker}. Check the "
            "laboratory's stated factor; the catalogue's 21.2 assumes the WHO 3rd IS 84/500.",
            ("prolactin-unit-conversion-who-84-500",),
        )

    if pregnant:
        add(
            "pregnancy",
            "Pregnancy raises prolactin physiologically, so the non-pregnant reference range "
            "does not apply; routine prolactin measurement is not advised in pregnancy.",
            ("pregnancy-raises-prolactin",),
        )
    if breastfeeding:
        add(
            "breastfeeding",
            "Breastfeeding (lactation and nipple stimulation) raises prolactin "
            "physiologically; interpret the value with that in mind.",
            ("pregnancy-raises-prolactin",),
        )

    if raised:
        add(
            "single-value-confirms",
            "One value above the upper limit"
            + (f" ({_fmt(high)} ng/mL)" if high is not None else "")
            + ", drawn at rest without "
            "excessive venipuncture stress, is enough to confirm hyperprolactinaemia; dynamic "
            "testing is not recommended. Avoid repeated testing once sampling conditions "
            "are known to be good, and turn to the cause.",
            ("single-high-prolactin-confirms", "melmed-2011-endocrine-society"),
        )
        if high is not None and canonical < MILD_ELEVATION_MAX_FACTOR * high:
            add(
                "sampling-conditions",
                f"The value is less than {MILD_ELEVATION_MAX_FACTOR:g} times the upper limit. "
                "Prolactin rises during sleep, in pulses and with stress, including a "
                "difficult venipuncture: check the time of sampling (some hours after waking) "
                "and how the draw went; if they were not good, one repeat at rest is "
                "reasonable before attributing the value.",
                MILD_ELEVATION_CITATIONS,
            )
        if sex == "female" and not pregnant and not breastfeeding:
            add(
                "exclude-pregnancy",
                "Exclude pregnancy (hCG) before looking for other causes.",
                ("pregnancy-raises-prolactin", "melmed-2011-endocrine-society"),
            )

        if effects:
            listed = "; ".join(
                f"{m} [{e.drug_class}{'; ' + e.note if e.note else ''}]" for m, e in effects
            )
            add(
                "medications",
                f"Listed medications or substances known to raise prolactin: {listed}. If a "
                "drug is the suspected cause, stop or replace it when that is safe and "
                "re-measure (about 3 days after stopping; interval UNCONFIRMED); if it cannot "
                "be stopped and the cause is unclear, pituitary MRI is the guideline's "
                "next step.",
                [c for _, e in effects for c in e.citations]
                + ["remeasure-after-stopping-drug", "melmed-2011-endocrine-society"],
            )
            if canonical > DRUG_INDUCED_USUAL_MAX_NG_PER_ML:
                add(
                    "above-drug-induced-range",
                    f"Drug-induced levels are usually below about "
                    f"{DRUG_INDUCED_USUAL_MAX_NG_PER_ML:g} ng/mL; at {_fmt(canonical)} ng/mL "
                    "the listed medication alone may not explain the value.",
                    DRUG_INDUCED_USUAL_MAX_CITATIONS,
                )
            else:
                add(
                    "within-drug-induced-range",
                    f"The value is within the range usually seen with drug-induced "
                    f"hyperprolactinaemia (below about {DRUG_INDUCED_USUAL_MAX_NG_PER_ML:g} "
                    "ng/mL), but a microprolactinoma or a systemic cause can also give values "
                    "in this range.",
                    DRUG_INDUCED_USUAL_MAX_CITATIONS,
                )
        else:
            add(
                "medication-history",
                "No listed medication is known to raise prolactin. Ask specifically about "
                "antipsychotics, metoclopramide, domperidone, opioids (including kratom, "
                "which patients may not think of as a drug), antidepressants and oestrogens.",
                ("medications-raise-prolactin", "kratom-may-raise-prolactin"),
            )
        if kratom_listed:
            strength = evidence.strength_in_words(["labryer-2018"])
            add(
                "kratom",
                "Kratom may raise prolactin, as mu-opioid agonists do; it is not known to "
                f"lower it. Evidence: {strength} (raised during use, normal two months after "
                "stopping) plus opioid class pharmacology; the size of the effect is unknown.",
                ("kratom-may-raise-prolactin", "labryer-2018", "article-1"),
            )

        if tsh is None:
            add(
                "check-tsh",
                "No recent TSH: primary hypothyroidism can raise prolactin; check TSH.",
                ("hypothyroidism-raises-prolactin",),
            )
        else:
            tsh_rng = labs.reference_range("tsh", sex)
            if labs.flag_against(tsh[0], tsh_rng) == "high":
                add(
                    "hypothyroidism",
                    f"TSH {_fmt(tsh[1])} {tsh[2]} is above the upper limit "
                    f"({_fmt(tsh_rng[1])} m[IU]/L): primary hypothyroidism can raise "
                    "prolactin; assess thyroid function before other causes.",
                    ("hypothyroidism-raises-prolactin", "mayo-clinic-laboratories-tsh"),
                )

        if creat is None and egfr is None:
            add(
                "check-kidney-function",
                "No recent creatinine or eGFR: chronic kidney failure can raise prolactin; "
                "check kidney function.",
                ("kidney-failure-raises-prolactin",),
            )
        else:
            reasons = []
            if creat is not None:
                c_rng = labs.reference_range("creatinine", sex)
                if labs.flag_against(creat[0], c_rng) == "high":
                    reasons.append(
                        f"creatinine {_fmt(creat[1])} {creat[2]} is above the upper limit "
                        f"({_fmt(c_rng[1])} mg/dL)"
                    )
            if egfr is not None:
                e_rng = labs.reference_range("egfr", sex)
                if labs.flag_against(egfr[0], e_rng) == "low":
                    reasons.append(f"eGFR {_fmt(egfr[1])} {egfr[2]} is below {_fmt(e_rng[0])}")
            if reasons:
                add(
                    "kidney-function",
                    f"Reduced kidney function ({'; '.join(reasons)}): the kidney clears about "
                    "a quarter of prolactin and chronic kidney failure can raise it.",
                    ("kidney-failure-raises-prolactin", "mayo-clinic-laboratories-creatinine"),
                )

        if canonical > PROLACTINOMA_SUGGESTIVE_NG_PER_ML:
            add(
                "prolactinoma-suggested",
                f"A level above about {PROLACTINOMA_SUGGESTIVE_NG_PER_ML:g} ng/mL is highly "
                "suggestive of a prolactinoma; pituitary MRI and endocrinology review are the "
                "usual next steps.",
                PROLACTINOMA_SUGGESTIVE_CITATIONS,
            )
        elif not symptom_set:
            add(
                "macroprolactin",
                "No symptoms are recorded. In asymptomatic hyperprolactinaemia, screen for "
                "macroprolactin (PEG precipitation) before imaging.",
                ("macroprolactin-screen-when-asymptomatic",),
            )

        add(
            "symptoms",
            "Ask about symptoms of hyperprolactinaemia: "
            + (_SYMPTOMS_FEMALE if sex == "female" else _SYMPTOMS_MALE)
            + "; headache or visual change can point to a large pituitary tumour.",
            ("hyperprolactinemia-symptoms", "article-6"),
        )
        add(
            "hypogonadism",
            "Hyperprolactinaemia can cause hypogonadotropic hypogonadism ("
            + ("low oestradiol, menstrual change" if sex == "female" else "low testosterone")
            + "); when it lasts, bone density can fall.",
            ("hyperprolactinemia-causes-hypogonadism", "hyperprolactinemia-bone-loss"),
        )

    if symptom_set & _MASS_SYMPTOMS and canonical <= PROLACTINOMA_SUGGESTIVE_NG_PER_ML:
        add(
            "hook-effect",
            "Headache or visual symptoms are recorded. If imaging shows a large pituitary "
            "tumour with a normal or only mildly raised prolactin, ask the laboratory to "
            "re-assay after 1:100 dilution (hook effect).",
            ("hook-effect", "vilar-2014"),
        )

    considerations = tuple(out)
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
    )
