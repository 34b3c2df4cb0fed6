"""Laboratory catalogue: LOINC codes, UCUM units, exact conversions, reference ranges and
plausibility limits.

Pure data and functions; no Django, no I/O. Every form, API endpoint, rule and report that
reads a lab value converts and checks it here, so there is one copy of each range.

Conventions
-----------
* ``LabTest.units`` maps an accepted UCUM unit to a factor with
  ``canonical = value * factor``. Internally each factor is kept as an exact
  :class:`fractions.Fraction` so that conversions both ways are exact to float precision
  (15 ng/mL -> 318 m[IU]/L -> 15 ng/mL).
* Molar conversions use the conventional clinical factors (88.4, 17.1, 0.0347, 12.87),
  derived from molar masses (stated beside each constant); the prolactin
  mass-to-IU factor 21.2 mIU/L per ng/mL (WHO 3rd IS 84/500) is assay-specific and marked
  UNCONFIRMED in the references, so it is carried with that marker and can be replaced by
  the laboratory's stated factor (``iu_factor``).
* Reference ranges are adult ranges with their source; a site overrides them per lab.
  Where Speciosa's references give no range, the range is ``None`` (not invented): use the
  reporting laboratory's range.
* Plausibility limits are *soft*: a value beyond them is asked to be checked or confirmed,
  never silently stored or dropped. Negative values, unknown units and non-numbers are
  rejected outright.

References
----------
.. [1] shared/reference/instruments.md, sections 4.4 (kratom assay), 6.5 (urine drug
   screens), 7.1 (LOINC), 7.2 (UCUM) and 8 (plausibility limits, OHDSI DQD).
.. [2] shared/reference/pharmacology.md, section 6.1 (prolactin ranges) and 6.2 (units).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from types import MappingProxyType

__all__ = [
    "COMPARATORS",
    "PROLACTIN_MIU_PER_NG",
    "LabTest",
    "LabValueError",
    "all_labs",
    "canonical_in_unit",
    "conversion_factor",
    "flag_against",
    "from_canonical",
    "get_lab",
    "loinc_for",
    "normalise_result",
    "normalise_unit",
    "plausibility_problem",
    "reference_range",
    "to_canonical",
    "unit_display",
]

SEXES = ("female", "male")

#: Comparators a result may carry (FHIR ``Quantity.comparator``): ``<5 U/L``, ``>2000 U/L``.
COMPARATORS = ("<", "<=", ">=", ">")

#: mIU/L of prolactin per ng/mL for assays calibrated to WHO 3rd IS 84/500. Assay-specific;
#: the references mark the 21.2 figure UNCONFIRMED (instruments.md 7.2) and say to use the
#: laboratory's stated factor (pharmacology.md 6.2).
PROLACTIN_MIU_PER_NG = Fraction("21.2")

# Conventional clinical conversion factors (SI unit per conventional unit). They are the
# rounded values laboratories print; the molar mass each one rounds is given beside it.
CREATININE_UMOL_PER_MG_DL = Fraction("88.4")  # 10000 / 113.12 g/mol = 88.40
BILIRUBIN_UMOL_PER_MG_DL = Fraction("17.1")  # 10000 / 584.66 g/mol = 17.10
TESTOSTERONE_NMOL_PER_NG_DL = Fraction("0.0347")  # 10 / 288.42 g/mol = 0.03467
FREE_T4_PMOL_PER_NG_DL = Fraction("12.87")  # 10000 / 776.87 g/mol = 12.87


class LabValueError(ValueError):
    """A lab value a person can fix.

    Attributes
    ----------
    field : str
        ``"value"``, ``"unit"``, ``"lab"``, ``"sex"`` or ``"result"``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class LabTest:
    """One laboratory test.

    Attributes
    ----------
    code : str
        Speciosa code, e.g. ``"prolactin"``.
    loinc : str or None
        Result LOINC code for the canonical unit (screen code for urine drug screens);
        ``None`` where no code was found.
    name : str
    kind : str
        ``"quantity"`` or ``"qualitative"``.
    canonical_unit : str or None
        UCUM code values are stored and compared in (``None`` for qualitative tests).
    units : Mapping[str, float]
        Accepted UCUM units -> factor, ``canonical = value * factor``.
    reference : Mapping[str, tuple[float | None, float | None]]
        Adult reference range by sex (``"female"``, ``"male"``), canonical unit.
    reference_citations : tuple of str
        Evidence ids for the ranges.
    plausible_low, plausible_high : float or None
        Soft plausibility limits, canonical unit.
    results : tuple of str
        Allowed results for qualitative tests.
    methods : tuple of str
        ``("screen", "confirmation")`` for urine drug screens.
    loinc_status : str
        ``"confirmed"``, ``"sourced"`` or ``"unconfirmed"`` (as tagged in the references).
    method_loinc : Mapping[str, str | None]
        LOINC per method for qualitative tests.
    cutoffs : Mapping[str, str]
        Published cut-off per method, as text with its unit.
    unit_notes : Mapping[str, str]
        Caveats per unit (e.g. assay-specific factors).
    loinc_by_unit : Mapping[str, str]
        LOINC for results reported in a unit of another property than the canonical one
        (prolactin in m[IU]/L: 15081-3; bilirubin in umol/L: 14631-6). A unit not listed
        uses ``loinc`` (see :func:`loinc_for`).
    unconfirmed : tuple of str
        Items marked UNCONFIRMED in the references, e.g. ``"units.m[IU]/L"``.
    plausibility_citations : tuple of str
    note : str
    """

    code: str
    loinc: str | None
    name: str
    kind: str
    canonical_unit: str | None
    units: Mapping[str, float]
    reference: Mapping[str, tuple[float | None, float | None]]
    reference_citations: tuple[str, ...]
    plausible_low: float | None
    plausible_high: float | None
    results: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    loinc_status: str = "sourced"
    method_loinc: Mapping[str, str | None] = field(default_factory=_frozen)
    cutoffs: Mapping[str, str] = field(default_factory=_frozen)
    unit_notes: Mapping[str, str] = field(default_factory=_frozen)
    loinc_by_unit: Mapping[str, str] = field(default_factory=_frozen)
    unconfirmed: tuple[str, ...] = ()
    plausibility_citations: tuple[str, ...] = ()
    note: str = ""

    def citation_ids(self) -> tuple[str, ...]:
        """Every evidence id this definition points to."""
        return tuple(dict.fromkeys(self.reference_citations + self.plausibility_citations))


# Display spellings accepted on input, mapped to the UCUM code.
_ALIASES: dict[str, str] = {
    "µg/L": "ug/L",
    "μg/L": "ug/L",
    "mIU/L": "m[IU]/L",
    "m[iU]/L": "m[IU]/L",
    "mU/L": "m[IU]/L",
    "mIU/mL": "m[IU]/mL",
    "m[iU]/mL": "m[IU]/mL",
    "IU/L": "[IU]/L",
    "[iU]/L": "[IU]/L",
    "uIU/mL": "u[IU]/mL",
    "µIU/mL": "u[IU]/mL",
    "μIU/mL": "u[IU]/mL",
    "u[iU]/mL": "u[IU]/mL",
    "µmol/L": "umol/L",
    "μmol/L": "umol/L",
    "µkat/L": "ukat/L",
    "μkat/L": "ukat/L",
    "mL/min/1.73m2": "mL/min/{1.73_m2}",
    "mL/min/1.73 m2": "mL/min/{1.73_m2}",
    "mL/min/1.73m²": "mL/min/{1.73_m2}",
    "mL/min/1.73 m²": "mL/min/{1.73_m2}",
    "percent": "%",
    "INR": "{INR}",
    "msec": "ms",
}

# Per lab: accepted unit -> amount of that unit in one canonical unit (exact).
_PER_CANONICAL: dict[str, dict[str, Fraction]] = {}


def _quantity(
    code: str,
    *,
    loinc: str | None,
    loinc_status: str,
    name: str,
    canonical_unit: str,
    per_canonical: Mapping[str, Fraction],
    reference: Mapping[str, tuple[float | None, float | None]] | None = None,
    reference_citations: tuple[str, ...] = (),
    plausible: tuple[float | None, float | None] = (None, None),
    plausibility_citations: tuple[str, ...] = (),
    unit_notes: Mapping[str, str] | None = None,
    loinc_by_unit: Mapping[str, str] | None = None,
    unconfirmed: tuple[str, ...] = (),
    note: str = "",
) -> LabTest:
    table = {canonical_unit: Fraction(1), **per_canonical}
    _PER_CANONICAL[code] = table
    return LabTest(
        code=code,
        loinc=loinc,
        name=name,
        kind="quantity",
        canonical_unit=canonical_unit,
        units=_frozen({u: float(1 / f) for u, f in table.items()}),
        reference=_frozen(reference),
        reference_citations=reference_citations,
        plausible_low=plausible[0],
        plausible_high=plausible[1],
        loinc_status=loinc_status,
        unit_notes=_frozen(unit_notes),
        loinc_by_unit=_frozen(loinc_by_unit),
        unconfirmed=unconfirmed,
        plausibility_citations=plausibility_citations,
        note=note,
    )


UDS_RESULTS = ("negative", "positive", "indeterminate")
_RESULT_ALIASES = {
    "neg": "negative",
    "not detected": "negative",
    "nd": "negative",
    "pos": "positive",
    "detected": "positive",
    "det": "positive",
    "screen positive": "positive",
    "ind": "indeterminate",
}
#: FHIR ``Observation.interpretation`` codes (v3-ObservationInterpretation), instruments.md 6.5.
FHIR_INTERPRETATION = MappingProxyType(
    {"negative": "NEG", "positive": "POS", "indeterminate": "IND"}
)

_UDS_NOTE = (
    "Immunoassay screens are presumptive; confirm with a specific method (LC-MS/MS or "
    "GC-MS). Record the cut-off, method, specimen validity and which prescribed medicines "
    "are expected."
)


def _uds(
    code: str,
    *,
    name: str,
    method_loinc: Mapping[str, str | None],
    cutoffs: Mapping[str, str] | None = None,
    citations: tuple[str, ...] = ("kale-2019-urine-drug-tests",),
    loinc_status: str = "sourced",
    unconfirmed: tuple[str, ...] = (),
    note: str = "",
) -> LabTest:
    return LabTest(
        code=code,
        loinc=method_loinc.get("screen"),
        name=name,
        kind="qualitative",
        canonical_unit=None,
        units=_frozen(),
        reference=_frozen(),
        reference_citations=citations,
        plausible_low=None,
        plausible_high=None,
        results=UDS_RESULTS,
        methods=("screen", "confirmation"),
        loinc_status=loinc_status,
        method_loinc=_frozen(method_loinc),
        cutoffs=_frozen(cutoffs),
        unconfirmed=unconfirmed,
        note=" ".join(p for p in (note, _UDS_NOTE) if p),
    )


_NO_RANGE = (
    "Speciosa's references give no reference range for this test: enter the reporting "
    "laboratory's range."
)
_OHDSI = ("ohdsi-dqd-plausibility",)

_LABS: tuple[LabTest, ...] = (
    _quantity(
        "prolactin",
        loinc="2842-3",
        loinc_status="confirmed",
        name="Prolactin",
        canonical_unit="ng/mL",
        per_canonical={"ug/L": Fraction(1), "m[IU]/L": PROLACTIN_MIU_PER_NG},
        reference={"female": (4.8, 23.3), "male": (4.0, 15.2)},
        reference_citations=("mayo-clinic-laboratories-prl",),
        plausible=(1.0, 1000.0),
        plausibility_citations=_OHDSI,
        unit_notes={
            "m[IU]/L": (
                "Converted at 21.2 mIU/L per ng/mL (WHO 3rd IS 84/500). The factor is "
                "assay-specific and UNCONFIRMED; use the laboratory's stated factor. "
                "LOINC for prolactin in units/volume: 15081-3 (SOURCED)."
            )
        },
        loinc_by_unit={"m[IU]/L": "15081-3"},
        unconfirmed=("units.m[IU]/L",),
        note="Ranges are Mayo Clinic Laboratories (ECLIA), adults 18 and over, non-pregnant.",
    ),
    _quantity(
        "macroprolactin",
        loinc="51441-4",
        loinc_status="sourced",
        name="Macroprolactin (percent of total prolactin)",
        canonical_unit="%",
        per_canonical={},
        reference_citations=("labcorp-macroprolactin",),
        plausible=(0.0, 100.0),
        note=(
            "PEG precipitation. Related LOINC: order 38926-2, monomeric prolactin 42607-2 "
            "(SOURCED). " + _NO_RANGE
        ),
    ),
    _quantity(
        "testosterone",
        loinc="2986-8",
        loinc_status="confirmed",
        name="Testosterone, total",
        canonical_unit="ng/dL",
        per_canonical={
            "ng/mL": Fraction(1, 100),
            "nmol/L": TESTOSTERONE_NMOL_PER_NG_DL,
        },
        reference={"female": (8.4, 48.1), "male": (249.0, 836.0)},
        reference_citations=("bjh-testosterone",),
        plausible=(5.0, 1000.0),
        plausibility_citations=_OHDSI,
        unit_notes={
            "nmol/L": "Conventional factor 0.0347 nmol/L per ng/dL (molar mass 288.42 g/mol). "
            "LOINC 14913-8 for the molar code is UNCONFIRMED."
        },
        note=(
            "Male range is for ages 20-49 (Roche assay). The OHDSI upper plausibility bound "
            "(1000 ng/dL) is close to the adult male range, so a confirmation is asked more "
            "often than a data error is present."
        ),
    ),
    _quantity(
        "lh",
        loinc="10501-5",
        loinc_status="confirmed",
        name="Luteinizing hormone (LH)",
        canonical_unit="m[IU]/mL",
        per_canonical={"[IU]/L": Fraction(1)},
        note=_NO_RANGE,
    ),
    _quantity(
        "fsh",
        loinc="15067-2",
        loinc_status="confirmed",
        name="Follicle-stimulating hormone (FSH)",
        canonical_unit="m[IU]/mL",
        per_canonical={"[IU]/L": Fraction(1)},
        note=_NO_RANGE,
    ),
    _quantity(
        "tsh",
        loinc="3016-3",
        loinc_status="sourced",
        name="Thyroid-stimulating hormone (TSH)",
        canonical_unit="m[IU]/L",
        per_canonical={"u[IU]/mL": Fraction(1)},
        reference={"female": (0.3, 4.2), "male": (0.3, 4.2)},
        reference_citations=("mayo-clinic-laboratories-tsh",),
        plausible=(0.001, 100.0),
        plausibility_citations=_OHDSI,
        unit_notes={
            "u[IU]/mL": "1 uIU/mL = 1 mIU/L (DERIVED); the UCUM spelling u[IU]/mL is UNCONFIRMED."
        },
        note="Range: Mayo Clinic Laboratories, adults 20 and over. OHDSI's wider of two TSH rows is used.",
    ),
    _quantity(
        "free-t4",
        loinc="3024-7",
        loinc_status="sourced",
        name="Free thyroxine (free T4)",
        canonical_unit="ng/dL",
        per_canonical={"pmol/L": FREE_T4_PMOL_PER_NG_DL},
        unit_notes={
            "pmol/L": "Conventional factor 12.87 pmol/L per ng/dL (molar mass 776.87 g/mol)."
        },
        note="LOINC from the HL7 FHIR R4 specification example (not in Speciosa's references). "
        + _NO_RANGE,
    ),
    _quantity(
        "alt",
        loinc="1742-6",
        loinc_status="sourced",
        name="Alanine aminotransferase (ALT)",
        canonical_unit="U/L",
        per_canonical={"[IU]/L": Fraction(1), "ukat/L": Fraction(1, 60)},
        reference={"female": (7.0, 45.0), "male": (7.0, 55.0)},
        reference_citations=("mayo-clinic-laboratories-alt",),
        plausible=(5.0, 2000.0),
        plausibility_citations=_OHDSI,
        unit_notes={"ukat/L": "1 ukat/L = 60 U/L (1 U = 1 umol/min; DERIVED)."},
    ),
    _quantity(
        "ast",
        loinc="1920-8",
        loinc_status="sourced",
        name="Aspartate aminotransferase (AST)",
        canonical_unit="U/L",
        per_canonical={"[IU]/L": Fraction(1), "ukat/L": Fraction(1, 60)},
        reference={"female": (8.0, 43.0), "male": (8.0, 48.0)},
        reference_citations=("mayo-clinic-laboratories-ast",),
        plausible=(5.0, 2000.0),
        plausibility_citations=_OHDSI,
        unit_notes={"ukat/L": "1 ukat/L = 60 U/L (1 U = 1 umol/min; DERIVED)."},
    ),
    _quantity(
        "alp",
        loinc="6768-6",
        loinc_status="confirmed",
        name="Alkaline phosphatase (ALP)",
        canonical_unit="U/L",
        per_canonical={"[IU]/L": Fraction(1), "ukat/L": Fraction(1, 60)},
        reference={"female": (35.0, 104.0), "male": (40.0, 129.0)},
        reference_citations=("mayo-clinic-laboratories-alp",),
        unit_notes={"ukat/L": "1 ukat/L = 60 U/L (1 U = 1 umol/min; DERIVED)."},
        note=(
            "Ranges: Mayo Clinic Laboratories, men 19 years and over, women 17 and over "
            "(care.md section 1). No published plausibility limit in Speciosa's references."
        ),
    ),
    _quantity(
        "ggt",
        loinc="2324-2",
        loinc_status="confirmed",
        name="Gamma-glutamyl transferase (GGT)",
        canonical_unit="U/L",
        per_canonical={"[IU]/L": Fraction(1), "ukat/L": Fraction(1, 60)},
        reference={"female": (5.0, 36.0), "male": (8.0, 61.0)},
        reference_citations=("mayo-clinic-laboratories-ggt",),
        unit_notes={"ukat/L": "1 ukat/L = 60 U/L (1 U = 1 umol/min; DERIVED)."},
        note=(
            "Ranges: Mayo Clinic Laboratories, 18 years and over (care.md section 1). No "
            "published plausibility limit in Speciosa's references."
        ),
    ),
    _quantity(
        "inr",
        loinc="6301-6",
        loinc_status="sourced",
        name="International normalised ratio (INR)",
        canonical_unit="{INR}",
        per_canonical={"1": Fraction(1)},
        note=(
            "LOINC 6301-6 (INR in platelet-poor plasma by coagulation assay) from public code "
            "repositories, not in Speciosa's references. A ratio without unit. " + _NO_RANGE
        ),
    ),
    _quantity(
        "qtc",
        loinc="8636-3",
        loinc_status="sourced",
        name="QTc interval (corrected QT, ECG)",
        canonical_unit="ms",
        per_canonical={"s": Fraction(1, 1000)},
        note=(
            "LOINC 8636-3 (Q-T interval corrected) from public code repositories, not in "
            "Speciosa's references. An ECG measurement kept with the labs; the thresholds "
            "that matter with methadone (above 450 and above 500 ms, Krantz 2009) are rule "
            "settings, not a reference range."
        ),
    ),
    _quantity(
        "bilirubin",
        loinc="1975-2",
        loinc_status="sourced",
        name="Bilirubin, total",
        canonical_unit="mg/dL",
        per_canonical={"umol/L": BILIRUBIN_UMOL_PER_MG_DL},
        reference={"female": (0.0, 1.2), "male": (0.0, 1.2)},
        reference_citations=("mayo-clinic-laboratories-bilirubin",),
        plausible=(0.0, 100.0),
        plausibility_citations=_OHDSI,
        unit_notes={
            "umol/L": "Conventional factor 17.1 umol/L per mg/dL (molar mass 584.66 g/mol). "
            "LOINC for bilirubin in moles/volume: 14631-6 (Bilirubin.total [Moles/volume] "
            "in Serum or Plasma; not in Speciosa's references, UNCONFIRMED)."
        },
        loinc_by_unit={"umol/L": "14631-6"},
        note="OHDSI's mg/dL bounds are used; its umol/L row (up to 530) is narrower and inconsistent.",
    ),
    _quantity(
        "creatinine",
        loinc="2160-0",
        loinc_status="sourced",
        name="Creatinine",
        canonical_unit="mg/dL",
        per_canonical={"umol/L": CREATININE_UMOL_PER_MG_DL},
        reference={"female": (0.59, 1.04), "male": (0.74, 1.35)},
        reference_citations=("mayo-clinic-laboratories-creatinine",),
        plausible=(0.1, 5.0),
        plausibility_citations=_OHDSI,
        unit_notes={
            "umol/L": "Conventional factor 88.4 umol/L per mg/dL (molar mass 113.12 g/mol)."
        },
        note=(
            "OHDSI's upper bound (5 mg/dL) is met in advanced kidney disease: such values are "
            "asked to be confirmed, not rejected."
        ),
    ),
    _quantity(
        "egfr",
        loinc="98979-8",
        loinc_status="sourced",
        name="Estimated glomerular filtration rate (eGFR, CKD-EPI 2021 creatinine)",
        canonical_unit="mL/min/{1.73_m2}",
        per_canonical={},
        reference={"female": (60.0, None), "male": (60.0, None)},
        reference_citations=("mayo-clinic-laboratories-creatinine",),
        note="LOINC from a public FHIR laboratory profile (not in Speciosa's references).",
    ),
    _quantity(
        "hcg",
        loinc="21198-7",
        loinc_status="sourced",
        name="Beta-hCG, quantitative, serum",
        canonical_unit="m[IU]/mL",
        per_canonical={"[IU]/L": Fraction(1)},
        note="Qualitative urine hCG is LOINC 2106-3 (SOURCED). " + _NO_RANGE,
    ),
    _uds(
        "uds-mitragynine",
        name="Kratom (mitragynine), urine",
        method_loinc={"screen": "75649-4", "confirmation": "72732-1"},
        cutoffs={"screen": "5.0 ng/mL (immunoassay)", "confirmation": "1.0 ng/mL (LC-MS/MS)"},
        citations=("labcorp-kratom-urine-assay", "kratom-not-in-standard-uds"),
        note=(
            "Standard urine drug screens do not detect kratom; order this assay specifically. "
            "LOINC long names UNCONFIRMED."
        ),
    ),
    _uds(
        "uds-opioids",
        name="Opiates, urine",
        method_loinc={"screen": None, "confirmation": None},
        cutoffs={"screen": "300 ng/mL (morphine-calibrated; UW Health)"},
        citations=("kale-2019-urine-drug-tests", "uiowa-opiate-screen", "uw-health-opiate-screen"),
        loinc_status="unconfirmed",
        unconfirmed=("loinc",),
        note=(
            "Opiate immunoassays may not detect methadone, fentanyl or buprenorphine and detect "
            "oxycodone only at very high concentrations; use the specific screens."
        ),
    ),
    _uds(
        "uds-fentanyl",
        name="Fentanyl, urine",
        method_loinc={"screen": "59673-4", "confirmation": "58381-5"},
        citations=("kale-2019-urine-drug-tests", "cdc-opioid-cpg-urine-loinc"),
        unconfirmed=("cutoffs",),
        note="LOINC from the CDC opioid value sets (care.md §6); long names UNCONFIRMED.",
    ),
    _uds(
        "uds-buprenorphine",
        name="Buprenorphine, urine",
        method_loinc={"screen": "93494-3", "confirmation": None},
        cutoffs={"screen": "5 ng/mL (Mayo BUPS)"},
        citations=("kale-2019-urine-drug-tests", "mayo-bups-buprenorphine-screen"),
        note="Expected when buprenorphine is prescribed.",
    ),
    _uds(
        "uds-norbuprenorphine",
        name="Norbuprenorphine (buprenorphine metabolite), urine",
        method_loinc={"screen": None, "confirmation": "49751-1"},
        citations=("accurso-2017-urine-tampering", "cdc-opioid-cpg-urine-loinc"),
        unconfirmed=("screen-loinc", "cutoffs"),
        note=(
            "Expected with buprenorphine when it was taken: buprenorphine without "
            "norbuprenorphine suggests it was added to the urine. Presence LOINC 49753-7; "
            "no screen LOINC in Speciosa's references (UNCONFIRMED)."
        ),
    ),
    _uds(
        "uds-eddp",
        name="EDDP (methadone metabolite), urine",
        method_loinc={"screen": "93495-0", "confirmation": "58429-2"},
        citations=("labce-adulterants-eddp", "cdc-opioid-cpg-urine-loinc"),
        unconfirmed=("cutoffs",),
        note="Forms only after methadone is ingested; expected with methadone.",
    ),
    _uds(
        "uds-methadone",
        name="Methadone, urine",
        method_loinc={"screen": None, "confirmation": None},
        loinc_status="unconfirmed",
        unconfirmed=("loinc", "cutoffs"),
        note="Expected when methadone is prescribed.",
    ),
    _uds(
        "uds-benzodiazepines",
        name="Benzodiazepines, urine",
        method_loinc={"screen": None, "confirmation": None},
        loinc_status="unconfirmed",
        unconfirmed=("loinc", "cutoffs"),
    ),
    _uds(
        "uds-alcohol",
        name="Alcohol marker, urine (e.g. ethyl glucuronide)",
        method_loinc={"screen": None, "confirmation": None},
        loinc_status="unconfirmed",
        unconfirmed=("loinc", "cutoffs", "marker"),
        note=(
            "Speciosa's references name no alcohol marker, LOINC code or cut-off; record the "
            "marker the laboratory reports."
        ),
    ),
)

_BY_CODE: dict[str, LabTest] = {lab.code: lab for lab in _LABS}


def get_lab(code: str) -> LabTest:
    """Return the lab test with this Speciosa code.

    Raises
    ------
    LabValueError
        ``field="lab"``, listing the known codes.
    """
    try:
        return _BY_CODE[code]
    except (KeyError, TypeError):
        raise LabValueError(
            "lab", f"unknown lab {code!r}; use one of: {', '.join(_BY_CODE)}"
        ) from None


#: Human-readable spelling of a UCUM unit (FHIR ``Quantity.unit``; ``code`` keeps the UCUM).
_DISPLAY: dict[str, str] = {
    "ug/L": "µg/L",
    "m[IU]/L": "mIU/L",
    "m[IU]/mL": "mIU/mL",
    "[IU]/L": "IU/L",
    "u[IU]/mL": "µIU/mL",
    "umol/L": "µmol/L",
    "ukat/L": "µkat/L",
    "mL/min/{1.73_m2}": "mL/min/1.73 m²",
    "{INR}": "INR",
}


def unit_display(unit: str | None) -> str:
    """The unit as people write it (``m[IU]/L`` -> ``mIU/L``); other units unchanged."""
    if not unit:
        return ""
    return _DISPLAY.get(unit, unit)


def loinc_for(code: str, unit: str | None) -> str | None:
    """The LOINC code of a result of lab ``code`` reported in ``unit``.

    LOINC codes name a property: prolactin in m[IU]/L is units/volume (15081-3), not
    mass/volume (2842-3); bilirubin in umol/L is moles/volume (14631-6), not mass/volume
    (1975-2). Units of the same property (U/L and ukat/L, both catalytic activity) share a
    code. A unit that cannot be read gives the lab's canonical code.
    """
    lab = get_lab(code)
    if unit is None or lab.kind != "quantity":
        return lab.loinc
    try:
        ucum = normalise_unit(code, unit)
    except LabValueError:
        return lab.loinc
    return lab.loinc_by_unit.get(ucum, lab.loinc)


def all_labs() -> list[LabTest]:
    """Return every lab test, in catalogue order."""
    return list(_LABS)


def _quantity_lab(code: str) -> LabTest:
    lab = get_lab(code)
    if lab.kind != "quantity":
        raise LabValueError(
            "lab",
            f"{lab.name} is a qualitative test; record a result "
            f"({', '.join(lab.results)}) instead of a value with a unit",
        )
    return lab


def normalise_unit(code: str, unit: str | None) -> str:
    """Return the UCUM code for ``unit`` as accepted by lab ``code``.

    Display spellings (``µg/L``, ``mIU/L``, ``µmol/L``...) map to UCUM; a unit that differs
    only in letter case from exactly one accepted unit is accepted.

    Raises
    ------
    LabValueError
        ``field="unit"`` when the unit is missing or not accepted (the message lists the
        accepted units).
    """
    lab = _quantity_lab(code)
    accepted = _PER_CANONICAL[code]
    listing = ", ".join(accepted)
    if unit is None or not str(unit).strip():
        raise LabValueError("unit", f"{lab.name}: the unit is missing; use one of: {listing}")
    text = str(unit).strip()
    text = _ALIASES.get(text, text)
    if text in accepted:
        return text
    folded = [u for u in accepted if u.lower() == text.lower()]
    folded += [
        _ALIASES[a] for a in _ALIASES if a.lower() == text.lower() and _ALIASES[a] in accepted
    ]
    folded = list(dict.fromkeys(folded))
    if len(folded) == 1:
        return folded[0]
    raise LabValueError(
        "unit", f"{lab.name}: unit {str(unit).strip()!r} is not accepted; use one of: {listing}"
    )


#: A number written with a decimal comma ("1,5"): refused with a message that says to use a
#: point, never read by locale (1,500 is one and a half in some countries, 1500 in others).
COMMA_DECIMAL_MESSAGE = "use a point for decimals: write 1.5, not 1,5"


def _number(lab: LabTest, value: object) -> Fraction:
    """The value as an exact fraction of the decimal the person wrote.

    A string or :class:`~decimal.Decimal` is read exactly (``"1.71"`` is 171/100); a float is
    read as the decimal it prints as (``repr``), not as its binary approximation, so that a
    value entered in another unit is the same physical value as the limit it is compared
    with (8.84 umol/L is exactly 0.1 mg/dL of creatinine, not 0.0999... ).
    """
    if isinstance(value, bool) or value is None:
        raise LabValueError("value", f"{lab.name}: the value must be a number, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if "," in text:
            raise LabValueError("value", f"{lab.name}: {COMMA_DECIMAL_MESSAGE} (got {value!r})")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise LabValueError(
                "value", f"{lab.name}: the value must be a number, got {value!r}"
            ) from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise LabValueError("value", f"{lab.name}: the value must be a finite number")
        value = Decimal(repr(value))
    if isinstance(value, Decimal) and not value.is_finite():
        raise LabValueError("value", f"{lab.name}: the value must be a finite number")
    if not isinstance(value, int | Decimal | Fraction):
        raise LabValueError("value", f"{lab.name}: the value must be a number, got {value!r}")
    if value < 0:
        raise LabValueError(
            "value", f"{lab.name}: the value cannot be negative ({float(value):g}); check the entry"
        )
    return Fraction(value)


def _exact(limit: float) -> Fraction:
    """A catalogue limit as the decimal it is written as (0.1 is 1/10)."""
    return Fraction(Decimal(repr(float(limit))))


def _per(code: str, unit: str, iu_factor: float | None) -> Fraction:
    per = _PER_CANONICAL[code][unit]
    if iu_factor is not None and code == "prolactin" and unit == "m[IU]/L":
        if not iu_factor > 0:
            raise LabValueError("unit", "the laboratory's mIU/L per ng/mL factor must be positive")
        per = _exact(iu_factor)
    return per


def conversion_factor(code: str, unit: str | None, *, iu_factor: float | None = None) -> Fraction:
    """How many ``unit`` make one canonical unit, exactly (``to_canonical`` divides by it).

    Raises
    ------
    LabValueError
        As :func:`to_canonical`.
    """
    _quantity_lab(code)
    return _per(code, normalise_unit(code, unit), iu_factor)


def canonical_in_unit(
    code: str, canonical_value: float | None, unit: str, *, iu_factor: float | None = None
) -> float | None:
    """A canonical value (a stored range limit) in ``unit``, to 6 significant figures, for
    showing a range in the unit its result is shown in; None when it cannot be converted.
    """
    if canonical_value is None:
        return None
    try:
        lab = _quantity_lab(code)
        if normalise_unit(code, unit) == lab.canonical_unit:
            return float(canonical_value)
        return float(f"{from_canonical(code, canonical_value, unit, iu_factor=iu_factor):.6g}")
    except LabValueError:
        return None


def to_canonical(
    code: str, value: object, unit: str | None, *, iu_factor: float | None = None
) -> float:
    """Convert a value in ``unit`` to the lab's canonical unit.

    Parameters
    ----------
    code : str
        Lab code.
    value : number or numeric string
        Must be finite and not negative.
    unit : str
        UCUM code or an accepted display spelling.
    iu_factor : float, optional
        Prolactin only: the laboratory's stated mIU/L per ng/mL factor, replacing the
        default 21.2 (WHO 3rd IS 84/500; assay-specific, UNCONFIRMED).

    Returns
    -------
    float
        Value in ``get_lab(code).canonical_unit``.

    Raises
    ------
    LabValueError
        Unknown lab, qualitative lab, missing or unknown unit, negative or non-numeric value.

    References
    ----------
    .. [1] shared/reference/instruments.md 7.2; pharmacology.md 6.2.
    """
    lab = _quantity_lab(code)
    ucum = normalise_unit(code, unit)
    number = _number(lab, value)
    return float(number / _per(code, ucum, iu_factor))


def from_canonical(
    code: str, canonical_value: object, unit: str | None, *, iu_factor: float | None = None
) -> float:
    """Convert a canonical value to ``unit`` (the inverse of :func:`to_canonical`).

    Raises
    ------
    LabValueError
        As :func:`to_canonical`.
    """
    lab = _quantity_lab(code)
    ucum = normalise_unit(code, unit)
    number = _number(lab, canonical_value)
    return float(number * _per(code, ucum, iu_factor))


def _check_sex(sex: str) -> str:
    if sex not in SEXES:
        raise LabValueError("sex", f"sex must be 'female' or 'male', got {sex!r}")
    return sex


def reference_range(
    code: str, sex: str, overrides: Mapping[str, tuple] | None = None
) -> tuple[float | None, float | None] | None:
    """Return the adult reference range (canonical unit) for ``sex``.

    Parameters
    ----------
    code : str
    sex : {"female", "male"}
    overrides : Mapping[str, tuple], optional
        A site's ranges for this lab by sex, e.g. ``{"male": (3.0, 12.0)}``; they replace
        the catalogue range for that sex.

    Returns
    -------
    tuple or None
        ``(low, high)``, either may be None (one-sided); ``None`` when neither the site nor
        the catalogue gives a range.
    """
    lab = get_lab(code)
    _check_sex(sex)
    if overrides and sex in overrides and overrides[sex] is not None:
        low, high = overrides[sex]
        if low is not None and high is not None and low > high:
            raise LabValueError("value", f"{lab.name}: range low {low} is above high {high}")
        return (
            float(low) if low is not None else None,
            float(high) if high is not None else None,
        )
    return lab.reference.get(sex)


def flag_against(
    canonical_value: float,
    reference: tuple[float | None, float | None] | None,
    comparator: str | None = None,
) -> str | None:
    """Return ``"low"``, ``"normal"`` or ``"high"`` against a range; None without a range.

    The limits themselves are normal (a value equal to the upper limit is not high). A value
    reported as a bound (``comparator`` ``<``, ``<=``, ``>=``, ``>``) is flagged only when
    every value it allows falls in one class (``<5`` with a range from 7 is low; ``<5`` with
    a range 0-45 is normal; ``<50`` with an upper limit of 45 is undetermined: None).
    """
    if reference is None:
        return None
    low, high = reference
    if not comparator:
        if high is not None and canonical_value > high:
            return "high"
        if low is not None and canonical_value < low:
            return "low"
        return "normal"
    x = canonical_value
    if comparator in ("<", "<="):  # the true value lies in [0, x) or [0, x]
        if low is not None and (x <= low if comparator == "<" else x < low):
            return "low"
        if (low is None or low <= 0) and (high is None or x <= high):
            return "normal"
        return None
    if comparator in (">", ">="):  # the true value lies above x (or at it)
        if high is not None and (x >= high if comparator == ">" else x > high):
            return "high"
        if high is None and low is not None and x >= low:
            return "normal"
        return None
    raise LabValueError("value", f"unknown comparator {comparator!r}; use <, <=, >= or >")


def plausibility_problem(
    code: str, value: object, unit: str | None, *, iu_factor: float | None = None
) -> str | None:
    """Return None when the value is plausible, else a message asking to check or confirm it.

    The limits are soft (OHDSI Data Quality Dashboard): a value beyond them may be real,
    so it must be confirmed by a person, never silently stored or dropped.

    Raises
    ------
    LabValueError
        When the value cannot be converted at all (see :func:`to_canonical`).

    References
    ----------
    .. [1] shared/reference/instruments.md section 8.
    """
    lab = _quantity_lab(code)
    ucum = normalise_unit(code, unit)
    # compared exactly: a value at a limit, entered in another unit, is at the limit
    canonical = _number(lab, value) / _per(code, ucum, iu_factor)
    shown = f"{lab.name} {float(_number(lab, value)):g} {ucum}"

    def limit_text(limit: float) -> str:
        text = f"{limit:g} {lab.canonical_unit}"
        if ucum != lab.canonical_unit:
            other = from_canonical(code, limit, ucum, iu_factor=iu_factor)
            text += f" ({other:.6g} {ucum})"
        return text

    if lab.plausible_high is not None and canonical > _exact(lab.plausible_high):
        return (
            f"{shown} is above the plausible limit of {limit_text(lab.plausible_high)}; "
            "check the value and unit, or confirm it"
        )
    if lab.plausible_low is not None and canonical < _exact(lab.plausible_low):
        return (
            f"{shown} is below the plausible limit of {limit_text(lab.plausible_low)}; "
            "check the value and unit, or confirm it"
        )
    return None


def normalise_result(code: str, result: str, method: str | None = None) -> str:
    """Return the normalised result (``negative``/``positive``/``indeterminate``) of a
    qualitative test, checking the method when given.

    Raises
    ------
    LabValueError
        ``field="result"`` for an unknown result, ``field="method"`` for an unknown method,
        ``field="lab"`` for a quantitative lab.
    """
    lab = get_lab(code)
    if lab.kind != "qualitative":
        raise LabValueError("lab", f"{lab.name} is quantitative; record a value with a unit")
    if method is not None and method not in lab.methods:
        raise LabValueError(
            "method", f"{lab.name}: method {method!r} unknown; use one of: {', '.join(lab.methods)}"
        )
    text = str(result).strip().lower()
    text = _RESULT_ALIASES.get(text, text)
    if text not in lab.results:
        raise LabValueError(
            "result", f"{lab.name}: result {result!r} unknown; use one of: {', '.join(lab.results)}"
        )
    return text
