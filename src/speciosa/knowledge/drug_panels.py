"""Urine drug test panels (issue 19): the catalogue, specimen validity and the reading of a
panel against what is expected.

A panel is a set of analytes collected at one time; each analyte is one of the ``uds-*``
tests of :mod:`speciosa.knowledge.labs` (their LOINC codes, cut-offs and citations live
there). The reading is pure: the caller says which analytes are expected (a prescribed
drug, reported kratom use), and :func:`read_panel` flags each analyte as expected,
unexpected or missing-expected, with the caveats the references support
(shared/reference/care.md §6, instruments.md §6.5).

Nothing here is proof of use or of tampering: every flag says "discuss with the patient;
confirm before acting" (claim ``urine-result-not-proof``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

__all__ = [
    "DISCUSS",
    "METHODS",
    "MITRAGYNINE_CAVEAT",
    "PANELS",
    "AnalyteReading",
    "Panel",
    "PanelReading",
    "expected_for_drug",
    "expected_from_medications",
    "get_panel",
    "read_panel",
    "specimen_problems",
]

#: The wording of every unexpected or missing-expected flag (never proof).
DISCUSS = "discuss with the patient; confirm before acting"

METHODS = ("screen", "confirmation")

MITRAGYNINE_CAVEAT = (
    "Standard opioid immunoassays do not detect mitragynine (kratom): this panel had no "
    "mitragynine assay, so it says nothing about kratom use."
)
MITRAGYNINE_CITATIONS = ("kratom-not-in-standard-uds", "labcorp-kratom-urine-assay")


@dataclass(frozen=True)
class Panel:
    """One catalogue panel: its analytes (``uds-*`` lab codes) and why they go together."""

    id: str
    name: str
    analytes: tuple[str, ...]
    citations: tuple[str, ...]
    note: str = ""


PANELS: tuple[Panel, ...] = (
    Panel("opioids", "Standard opioid (opiates) immunoassay", ("uds-opioids",),
          ("kale-2019-urine-drug-tests", "uiowa-opiate-screen"),
          "Misses methadone, fentanyl, buprenorphine and other synthetics, and mitragynine."),
    Panel("benzodiazepines", "Benzodiazepines", ("uds-benzodiazepines",),
          ("kale-2019-urine-drug-tests",)),
    Panel("buprenorphine", "Buprenorphine with norbuprenorphine",
          ("uds-buprenorphine", "uds-norbuprenorphine"),
          ("accurso-2017-urine-tampering", "mayo-bups-buprenorphine-screen")),
    Panel("methadone", "Methadone with EDDP", ("uds-methadone", "uds-eddp"),
          ("labce-adulterants-eddp",)),
    Panel("fentanyl", "Fentanyl", ("uds-fentanyl",), ("cdc-opioid-cpg-urine-loinc",)),
    Panel("mitragynine", "Kratom (mitragynine)", ("uds-mitragynine",),
          ("labcorp-kratom-urine-assay", "kratom-not-in-standard-uds")),
)
_BY_ID = {p.id: p for p in PANELS}

#: Analytes a current prescription of each drug makes expected (the parent and, where the
#: panel has it, the metabolite that forms only after ingestion).
_EXPECTED_BY_DRUG: Mapping[str, tuple[str, ...]] = {
    "buprenorphine": ("uds-buprenorphine", "uds-norbuprenorphine"),
    "methadone": ("uds-methadone", "uds-eddp"),
    "fentanyl": ("uds-fentanyl",),
    "morphine": ("uds-opioids",),
    "codeine": ("uds-opioids",),
    "kratom": ("uds-mitragynine",),
}

#: (parent, metabolite, claim): a parent found without its metabolite suggests the drug
#: was added to the specimen.
_METABOLITES = (
    ("uds-buprenorphine", "uds-norbuprenorphine", "buprenorphine-without-norbuprenorphine",
     "Buprenorphine without norbuprenorphine suggests buprenorphine was added to the "
     "specimen rather than taken"),
    ("uds-methadone", "uds-eddp", "methadone-without-eddp",
     "Methadone without EDDP suggests methadone was added to the specimen rather than taken"),
)


def get_panel(panel_id: str) -> Panel:
    try:
        return _BY_ID[panel_id]
    except KeyError:
        raise KeyError(f"unknown panel {panel_id!r}") from None


def expected_for_drug(name: str, *, benzodiazepine: bool = False) -> tuple[str, ...]:
    """The analytes a current medication called ``name`` makes expected (its generic name,
    lower case); ``benzodiazepine`` when the drug table classes it so."""
    found = _EXPECTED_BY_DRUG.get((name or "").strip().lower(), ())
    return found + (("uds-benzodiazepines",) if benzodiazepine else ())


def expected_from_medications(names: Iterable[str]) -> dict[str, str]:
    """Analytes the current medications ``names`` (coded drug or name as entered) make
    expected: lab code -> the first medication that does."""
    from speciosa.knowledge import drugs

    out: dict[str, str] = {}
    for name in names:
        found = drugs.classify(name)
        for ingredient in found.ingredients or (name,):
            for code in expected_for_drug(ingredient,
                                          benzodiazepine=found.has("benzodiazepine")):
                out.setdefault(code, name)
    return out


def specimen_problems(*, creatinine_mg_dl: Decimal | None = None, ph: Decimal | None = None,
                      specific_gravity: Decimal | None = None,
                      temperature_in_range: bool | None = None) -> list[str]:
    """Why the specimen cannot be read as it stands (empty: nothing out of range among what
    was measured). Criteria of US DOT 49 CFR 40 (``dot-49cfr40-specimen-validity``,
    secondary sources; HHS "invalid" ranges UNCONFIRMED and not applied)."""
    out: list[str] = []
    if temperature_in_range is False:
        out.append("collection temperature outside 32-38 °C (90-100 °F)")
    if ph is not None and (ph < 4 or ph >= 11):
        out.append(f"pH {ph} (adulterated: below 4 or 11 and above)")
    if creatinine_mg_dl is not None:
        sg = specific_gravity
        if creatinine_mg_dl < 2 and sg is not None and (sg <= Decimal("1.0010")
                                                          or sg >= Decimal("1.0200")):
            out.append(f"creatinine {creatinine_mg_dl} mg/dL with specific gravity {sg} "
                       "(substituted)")
        elif (2 <= creatinine_mg_dl < 20 and sg is not None
              and Decimal("1.0010") < sg < Decimal("1.0030")):
            out.append(f"creatinine {creatinine_mg_dl} mg/dL with specific gravity {sg} (dilute)")
        elif creatinine_mg_dl < 20:
            out.append(f"creatinine {creatinine_mg_dl} mg/dL (below 20 mg/dL: dilute or "
                       "substituted; give the specific gravity to tell)")
    return out


@dataclass(frozen=True)
class AnalyteReading:
    """One analyte read against what was expected.

    ``flag``: ``expected`` (positive, expected), ``unexpected`` (positive, not expected),
    ``missing-expected`` (negative, expected), ``negative`` (negative, not expected),
    ``indeterminate``, or ``withheld`` (the specimen is not valid)."""

    lab: str
    result: str
    flag: str
    message: str = ""


@dataclass(frozen=True)
class PanelReading:
    analytes: tuple[AnalyteReading, ...]
    caveats: tuple[str, ...] = ()
    citations: tuple[str, ...] = ()
    withheld: bool = False
    concerns: tuple[str, ...] = field(default=())  # flagged (discuss with the patient)

    @property
    def flagged(self) -> bool:
        return bool(self.concerns)


def read_panel(results: Mapping[str, str], expected: Iterable[str], *,
               specimen: Iterable[str] = ()) -> PanelReading:
    """Read ``results`` (lab code -> ``positive``/``negative``/``indeterminate``) against
    the ``expected`` analytes; ``specimen`` is :func:`specimen_problems`' answer."""
    expected = set(expected)
    specimen = list(specimen)
    caveats: list[str] = []
    citations: list[str] = ["urine-screens-are-presumptive", "urine-result-not-proof"]
    if "uds-mitragynine" not in results:
        caveats.append(MITRAGYNINE_CAVEAT)
        citations += MITRAGYNINE_CITATIONS
    if specimen:
        caveats.insert(0, "The specimen is not valid as it stands (" + "; ".join(specimen)
                       + "): the results are not read against what is expected. Collect "
                       "another specimen; " + DISCUSS + ".")
        citations.append("urine-specimen-validity")
        return PanelReading(
            tuple(AnalyteReading(lab, r, "withheld") for lab, r in results.items()),
            tuple(caveats), tuple(citations), withheld=True)
    out: list[AnalyteReading] = []
    concerns: list[str] = []
    for lab, result in results.items():
        if result == "indeterminate":
            out.append(AnalyteReading(lab, result, "indeterminate"))
            continue
        positive = result == "positive"
        if positive and lab in expected:
            flag, message = "expected", ""
        elif positive:
            flag, message = "unexpected", f"Unexpected positive: {DISCUSS}."
        elif lab in expected:
            flag, message = "missing-expected", f"Expected but not found: {DISCUSS}."
        else:
            flag, message = "negative", ""
        if message:
            concerns.append(f"{lab}: {message}")
        out.append(AnalyteReading(lab, result, flag, message))
    for parent, metabolite, claim, text in _METABOLITES:
        if results.get(parent) == "positive" and results.get(metabolite) == "negative":
            line = f"{text}: {DISCUSS}; it is not proof."
            caveats.insert(0, line)
            concerns.append(line)
            citations.append(claim)
    return PanelReading(tuple(out), tuple(caveats), tuple(dict.fromkeys(citations)),
                        concerns=tuple(concerns))
