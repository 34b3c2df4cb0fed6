"""Code systems, identifier systems and extension URLs used in Speciosa's FHIR resources.

Standard terminologies (instruments.md section 7): LOINC for labs and the instrument totals
the reference confirms or sources, UCUM for units, SNOMED CT only where confirmed, HL7
terminology code systems for categories and interpretations. Where no standard code was
found (COWS and SOWS totals, kratom as a substance, Speciosa's own lab codes), a Speciosa
code system under :data:`CODE_BASE` is used and documented in ``docs/fhir.md``.

Identifier systems name *this installation*: set ``SPECIOSA_FHIR_BASE`` to a URL the
installation owns so that two Speciosa installations never mint the same identifier.
"""

from __future__ import annotations

import os
from types import MappingProxyType

from django.utils.text import slugify

#: FHIR release the resources follow: R4. They are built as R4 and the tests parse every
#: exported resource type with fhirclient's R4 (4.0.1) models as well as with
#: fhir.resources' R4B models (fhir.resources 8.x ships R5, R4B and STU3, not R4; R4B
#: differs from R4 only in resources Speciosa does not use).
FHIR_VERSION = "4.0.1"

#: Canonical base of Speciosa's own code systems, extensions and questionnaires (fixed).
CODE_BASE = "http://speciosa.org/fhir"

#: Base of this installation's identifier systems (per installation).
INSTALLATION_BASE = os.environ.get("SPECIOSA_FHIR_BASE", "http://speciosa.org/fhir/local").rstrip("/")

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
OBS_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
MS_CATEGORY = "http://terminology.hl7.org/CodeSystem/medication-statement-category"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
PROVENANCE_AGENT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
MR_CATEGORY = "http://terminology.hl7.org/CodeSystem/medicationrequest-category"
#: US Core's DocumentReference category of clinical notes (US Core "Clinical Notes").
DOC_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"

CS_LAB = f"{CODE_BASE}/CodeSystem/lab"
CS_LAB_METHOD = f"{CODE_BASE}/CodeSystem/lab-method"
CS_LAB_RESULT = f"{CODE_BASE}/CodeSystem/lab-result"
CS_LAB_FLAG = f"{CODE_BASE}/CodeSystem/lab-flag"
CS_SCORE = f"{CODE_BASE}/CodeSystem/instrument-score"
CS_BAND = f"{CODE_BASE}/CodeSystem/instrument-band"
CS_SUBSTANCE = f"{CODE_BASE}/CodeSystem/substance"
CS_SUBSTANCE_USE = f"{CODE_BASE}/CodeSystem/substance-use"
CS_NOTE_TYPE = f"{CODE_BASE}/CodeSystem/note-type"
CS_DRUG = f"{CODE_BASE}/CodeSystem/drug"
CS_ROUTE = f"{CODE_BASE}/CodeSystem/route"
CS_FORM = f"{CODE_BASE}/CodeSystem/medication-form"
CS_DOSE_UNIT = f"{CODE_BASE}/CodeSystem/dose-unit"
CS_CONSENT_KIND = f"{CODE_BASE}/CodeSystem/consent-kind"
CS_SAFETY_RULE = f"{CODE_BASE}/CodeSystem/safety-rule"
#: Issue 19: what kind of record a MedicationStatement is (``treatment-episode``: an episode
#: of medication for opioid use disorder, :class:`~speciosa.clinic.models.TreatmentEpisode`),
#: an episode's formulation (``TreatmentFormulation`` values), the catalogue panels of a urine
#: drug test (``drug_panels.PANELS`` ids), the specimen validity measures and the reading of
#: an analyte against what was expected (``drug_panels.AnalyteReading.flag``).
CS_RECORD_KIND = f"{CODE_BASE}/CodeSystem/record-kind"
CS_TREATMENT_FORMULATION = f"{CODE_BASE}/CodeSystem/treatment-formulation"
CS_URINE_PANEL = f"{CODE_BASE}/CodeSystem/urine-drug-panel"
CS_URINE_VALIDITY = f"{CODE_BASE}/CodeSystem/urine-specimen-validity"
CS_URINE_READING = f"{CODE_BASE}/CodeSystem/urine-drug-reading"
QUESTIONNAIRE_BASE = f"{CODE_BASE}/Questionnaire"

EXT = f"{CODE_BASE}/StructureDefinition"
EXT_CARE_TEAM = f"{EXT}/care-team"
EXT_PREGNANT = f"{EXT}/pregnant"
EXT_BREASTFEEDING = f"{EXT}/breastfeeding"
#: The day the patient came into the clinic's care (valueDate): it bounds the dates the
#: chart's records accept, so a seeded installation needs it.
EXT_IN_CARE_SINCE = f"{EXT}/in-care-since"
EXT_CONFIRMED_UNUSUAL = f"{EXT}/confirmed-unusual"
#: ``referenceRange.text`` of a range that is the catalogue's fallback, not the laboratory's:
#: an import does not take such a range as the laboratory's own.
CATALOGUE_RANGE_TEXT = "catalogue range (fallback)"
LABORATORY_RANGE_TEXT = "laboratory range"
#: Prolactin: the assay's mIU/L per ng/mL factor the laboratory stated (valueDecimal).
EXT_IU_FACTOR = f"{EXT}/prolactin-miu-per-ng"
EXT_DOSE_UNIT = f"{EXT}/dose-unit"
EXT_PRODUCT = f"{EXT}/product"
EXT_MITRAGYNINE_PERCENT = f"{EXT}/mitragynine-percent"
EXT_GRAMS_PER_CAPSULE = f"{EXT}/grams-per-capsule"
EXT_MITRAGYNINE_MG = f"{EXT}/mitragynine-mg-estimate"
EXT_CONVERSION_NOTE = f"{EXT}/conversion-note"
EXT_NOTE = f"{EXT}/note"
#: A medication's strength (valueQuantity), form (valueCode of ``medications.FORMS``), kind of
#: medicine (valueCode: prescription, otc, supplement, other), who prescribes it (valueCode:
#: clinic, outside, none, unknown) and the prescriber's name (valueString).
EXT_STRENGTH = f"{EXT}/medication-strength"
EXT_FORM = f"{EXT}/medication-form"
EXT_MEDICATION_CATEGORY = f"{EXT}/medication-category"
EXT_PRESCRIBER = f"{EXT}/prescriber"
EXT_PRESCRIBER_NAME = f"{EXT}/prescriber-name"
#: The clinician who confirmed a patient-reported medication (valueReference) and when.
EXT_CONFIRMED_BY = f"{EXT}/confirmed-by"
EXT_CONFIRMED_AT = f"{EXT}/confirmed-at"
EXT_ASSESSMENT_FLAG = f"{EXT}/assessment-flag"
#: Treatment episodes (issue 19): formulation (valueCode), an extended-release injection's
#: dates (valueDate, one extension per injection), methadone's dispensing clinic
#: (valueString), a dose above the site's confirmation level confirmed (valueBoolean), the
#: episode a dose change follows (valueReference, with its identifier) and why it changed
#: (valueString), the shared decision it carries out (valueReference, display only).
EXT_FORMULATION = f"{EXT}/treatment-formulation"
EXT_INJECTION_DATE = f"{EXT}/injection-date"
EXT_DISPENSING_CLINIC = f"{EXT}/dispensing-clinic"
EXT_DOSE_CONFIRMED = f"{EXT}/dose-confirmed"
EXT_FOLLOWS = f"{EXT}/follows"
EXT_CHANGE_REASON = f"{EXT}/change-reason"
EXT_DECISION = f"{EXT}/decision"
#: Urine drug test panels (issue 19): the collection was observed (valueBoolean, on the
#: Specimen), the panel's note (valueString, on the DiagnosticReport).
EXT_OBSERVED_COLLECTION = f"{EXT}/observed-collection"
#: ``referenceRange.text`` of an analyte's cut-off (``high`` is the cut-off: a value at or
#: above it is read positive).
CUTOFF_RANGE_TEXT = "cut-off: positive at or above"
#: HL7 v2 table 0487 (specimen type; the R4 Specimen.type example value set): UR, urine;
#: v2 table 0074 (diagnostic service section): LAB.
V2_0487 = "http://terminology.hl7.org/CodeSystem/v2-0487"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
EXT_SEVERITY = f"{EXT}/alert-severity"
EXT_ALERT_STATUS = f"{EXT}/alert-status"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"

KRATOM_CODE = "kratom"
KRATOM_DISPLAY = "Kratom (Mitragyna speciosa)"

#: LOINC codes of instrument totals (instruments.md 7.1). PHQ-9 and GAD-7 CONFIRMED;
#: AUDIT-C SOURCED (four repos agree). No LOINC code was found for COWS or SOWS: their totals
#: carry only the Speciosa code (72514-3 is the pain NRS and must not be used).
SCORE_LOINC = MappingProxyType({
    "phq9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    "gad7": ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
    "audit-c": ("75626-2", "Total score [AUDIT-C]"),
})

#: LOINC panel codes of instruments (instruments.md 7.1): PHQ-9 44249-1 and GAD-7 69737-5
#: CONFIRMED, AUDIT-C 72109-2 SOURCED (no long name given, so no display). Every other
#: instrument has none and is named by Speciosa's own canonical URL and identifier.
PANEL_LOINC = MappingProxyType({
    "phq9": ("44249-1", "PHQ-9 quick depression assessment panel"),
    "gad7": ("69737-5", "Generalized anxiety disorder 7 item (GAD-7)"),
    "audit-c": ("72109-2", None),
})

#: LOINC item codes (instruments.md 7.1): PHQ-9 items 1-9 in item order, the first seven
#: CONFIRMED (US Core example), items 8 and 9 SOURCED. Item 10 (difficulty), GAD-7 and AUDIT-C
#: items: none in the reference, so only Speciosa's item code.
ITEM_LOINC = MappingProxyType({"phq9": MappingProxyType({
    "interest": "44250-9", "mood": "44255-8", "sleep": "44259-0", "energy": "44254-1",
    "appetite": "44251-7", "self-worth": "44258-2", "concentration": "44252-5",
    "psychomotor": "44253-3", "self-harm": "44260-8"})})

#: LOINC answer codes of the PHQ/GAD frequency anchors (instruments.md 7.1), by anchor. The
#: first three CONFIRMED; "nearly every day" (LA6571-9) is UNCONFIRMED and not used: that
#: answer keeps Speciosa's code.
ANSWER_LOINC_INSTRUMENTS = ("phq9", "gad7")
ANSWER_LOINC = MappingProxyType({
    "not at all": "LA6568-5", "several days": "LA6569-3", "more than half the days": "LA6570-1"})


def answer_loinc(instrument_id: str, anchor: str) -> str | None:
    """The LOINC answer code of an option of ``instrument_id`` with ``anchor``, if any."""
    if instrument_id not in ANSWER_LOINC_INSTRUMENTS:
        return None
    return ANSWER_LOINC.get((anchor or "").strip().lower())


def item_system(instrument_id: str) -> str:
    """Speciosa's code system of the items of an instrument (item code = the linkId)."""
    return f"{QUESTIONNAIRE_BASE}/{instrument_id}"


#: Lab flag -> v3-ObservationInterpretation code.
INTERPRETATION = MappingProxyType({
    "high": ("H", "High"),
    "low": ("L", "Low"),
    "normal": ("N", "Normal"),
    "critical": ("HH", "Critical high"),
    "abnormal": ("A", "Abnormal"),
})
QUALITATIVE_INTERPRETATION = MappingProxyType({
    "negative": ("NEG", "Negative"),
    "positive": ("POS", "Positive"),
    "indeterminate": ("IND", "Indeterminate"),
})

#: LOINC document type of a clinical note: "Progress note" (US Core Clinical Notes lists it
#: among the note types a server supports; Speciosa's notes are notes of ongoing care).
NOTE_LOINC = ("11506-3", "Progress note")

#: Route (``medications.ROUTES`` key) -> SNOMED CT route concept (the FHIR R4 example value
#: set SNOMEDCTRouteCodes). Routes without one here (inhaled, other) carry Speciosa's code only.
ROUTE_SNOMED = MappingProxyType({
    "oral": ("26643006", "Oral route"),
    "sublingual": ("37839007", "Sublingual route"),
    "buccal": ("54471007", "Buccal route"),
    "subcutaneous": ("34206005", "Subcutaneous route"),
    "intramuscular": ("78421000", "Intramuscular route"),
    "intravenous": ("47625008", "Intravenous route"),
    "transdermal": ("45890007", "Transdermal route"),
    "nasal": ("46713006", "Nasal route"),
    "rectal": ("37161004", "Rectal route"),
    "topical": ("6064005", "Topical route"),
})

#: A medication's dose unit (``medications.DOSE_UNITS``) -> UCUM code.
MEDICATION_DOSE_UCUM = MappingProxyType({
    "mg": "mg", "mcg": "ug", "g": "g", "mL": "mL", "IU": "[IU]", "tablet": "{tablet}",
    "capsule": "{capsule}", "film": "{film}", "patch": "{patch}", "spray": "{spray}",
    "puff": "{puff}", "drop": "{drop}", "injection": "{injection}", "sachet": "{sachet}",
    "unit": "{unit}"})
MEDICATION_STRENGTH_UCUM = MappingProxyType({
    "mg": "mg", "mcg": "ug", "g": "g", "mg/mL": "mg/mL", "mcg/mL": "ug/mL", "mcg/h": "ug/h",
    "%": "%", "IU": "[IU]", "unit": "{unit}"})

#: Speciosa dose unit -> (UCUM code, unit text).
DOSE_UNITS = MappingProxyType({
    "g": ("g", "g"),
    "capsule": ("{capsule}", "capsule"),
    "glass": ("{glass}", "glass of tea"),
    "mg_extract": ("mg", "mg of extract"),
    "mg_mitragynine": ("mg", "mg mitragynine"),
    "mg_7oh": ("mg", "mg 7-hydroxymitragynine"),
})

#: Confidentiality of substance use disorder records (42 CFR Part 2), instruments.md 7.4.
PART2_SECURITY = ({"system": V3_ACT_CODE, "code": "42CFRPart2",
                   "display": "42 CFR Part2"},)

SID_KINDS = ("lab", "assessment", "dose", "substance", "medication", "note", "consent", "alert",
             "user", "care-team", "episode", "urine-panel")


def sid(kind: str) -> str:
    """Identifier system of this installation's records of ``kind`` (e.g. ``"lab"``)."""
    return f"{INSTALLATION_BASE}/sid/{kind}"


def mrn_system(site) -> str:
    """Identifier system of the medical record numbers of ``site``: for a Site, its
    registered, unique system (:class:`~speciosa.interop.models.SiteSystem`, issue 14: two
    names with one slug collided); for a site's *name*, the system derived from the name
    (:func:`legacy_mrn_system`, no database needed), which is the same for every site whose
    name's slug no other site has."""
    if isinstance(site, str):
        return legacy_mrn_system(site)
    from .models import mrn_system_of

    return mrn_system_of(site)


def legacy_mrn_system(site_name: str) -> str:
    """The MRN system derived from a site's name alone (before issue 14: not unique). Still
    trusted on import at the sites of that name, so earlier exports keep importing."""
    return mrn_system_for_slug(slugify(site_name) or "site")


def mrn_system_for_slug(slug: str) -> str:
    return f"{INSTALLATION_BASE}/sid/mrn/{slug}"


MRN_PREFIX = f"{INSTALLATION_BASE}/sid/mrn/"
