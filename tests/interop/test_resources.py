"""Every exported resource validates against the FHIR R4 models (fhirclient, 4.0.1) and the
R4B models (fhir.resources), and carries the codes the reference confirms."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import models as cm
from speciosa.clinic import services
from speciosa.interop import codes as c
from speciosa.interop.export import RESOURCE_TYPES, Exporter, questionnaire, validate, write_ndjson
from speciosa.knowledge import instruments as kinstruments

from .r4 import parse_r4, r4_version

pytestmark = pytest.mark.django_db


def _lowest_response(inst: kinstruments.Instrument) -> dict[str, int]:
    return {it.id: it.values[0].value for it in inst.items}


@pytest.fixture
def full_record(clinic):
    """patient_a with one response to every instrument, labs (quantity, qualitative,
    corrected), doses, a substance, a medication, a treatment episode, a urine drug test
    panel, consent and an alert."""
    p, clin = clinic.patient_a, clinic.clinician_a
    at = timezone.now() - dt.timedelta(days=2)
    for inst in kinstruments.all_instruments():
        services.record_assessment(clin, p, inst.id, _lowest_response(inst), at=at)
    services.record_assessment(clin, p, "cows", {**_lowest_response(kinstruments.get_instrument("cows")),
                                                 "pulse": None} | {"pulse-bpm": 96}, at=at)
    lab = services.record_lab(clin, p, {"lab": "prolactin", "collected_at": at, "value": "31.5",
                                        "unit": "ng/mL"})
    services.correct_record(clin, lab, {"value": "30.5"}, "transcription error")
    services.record_lab(clin, p, {"lab": "prolactin", "collected_at": at, "value": "400",
                                  "unit": "m[IU]/L"})
    qualitative = [lab for lab in __import__("speciosa.knowledge.labs", fromlist=["x"]).all_labs()
                   if lab.kind == "qualitative"][0]
    services.record_lab(clin, p, {"lab": qualitative.code, "collected_at": at, "result": "positive",
                                  "method": "screen"})
    services.record_diary(clinic.patient_a.user, p, services.DiaryInput(
        day=timezone.localtime(at).date(),  # a diary's doses are taken on its day
        doses=[{"taken_at": at, "amount": "3", "unit": "g", "product": "Red Bali",
                "mitragynine_percent": "1.5"},
               {"taken_at": at, "amount": "2", "unit": "capsule", "grams_per_capsule": "0.5"}],
        craving=4, substances=["alcohol"], substance_detail="two beers"))
    cm.Medication.objects.create(patient=p, entered_by=clin, source="clinician", name="Buprenorphine 8 mg",
                                 start=dt.date(2026, 1, 5))
    cm.Medication.objects.create(  # this clinic's prescription: also a MedicationRequest
        patient=p, entered_by=clin, source="clinician", name="Naltrexone 50 mg tablet",
        drug="naltrexone", rxnorm="7243", dose_amount=1, dose_unit="tablet", route="oral",
        frequency="once daily", strength=50, strength_unit="mg", form="tablet",
        prescriber="clinic", prescriber_name="Dr Ada Okafor", indication="alcohol use disorder",
        start=dt.date(2026, 1, 5), start_at=dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC))
    services.record_note(clin, p, "Discussed taper plan.")
    from speciosa.clinic import treatment, urine

    treatment.record_episode(clin, p, {"drug": "buprenorphine", "formulation": "sublingual",
                                       "dose_mg": "16", "start": at.date().isoformat()})
    urine.record_panel(clin, p, {
        "collected_at": at, "panels": ["buprenorphine"], "method": "screen",
        "creatinine_mg_dl": "90", "ph": "6", "specific_gravity": "1.02",
        "temperature_in_range": True, "observed": False,
        "analytes": {"uds-buprenorphine": {"value": "20", "cutoff": "5", "unit": "ng/mL"},
                     "uds-norbuprenorphine": "positive"}})
    services.record_consent(clin, p, "care", True)
    cm.Consent.objects.create(patient=p, kind="research", given=False)
    if hasattr(cm, "Alert"):
        cm.Alert.objects.create(patient=p, rule="prolactin-high", topic="prolactin", severity="warning",
                                message="Prolactin above the range")
    return clinic


def test_every_resource_type_of_a_full_record_validates_against_the_r4b_models(full_record, tmp_path, ndjson):
    counts = write_ndjson(tmp_path, Exporter(cm.Patient.objects.filter(pk=full_record.patient_a.pk)))
    data = ndjson(tmp_path)
    expected = set(RESOURCE_TYPES) - {"Condition"} - ({"Flag"} if not hasattr(cm, "Alert") else set())
    assert expected <= set(data), f"missing: {expected - set(data)}"
    n = 0
    for rtype, resources in data.items():
        assert counts[rtype] == len(resources)
        for resource in resources:
            model = validate(resource)
            assert model.get_resource_type() == rtype
            n += 1
    assert n == sum(counts.values())


def test_every_resource_type_of_a_full_record_parses_with_the_r4_models(full_record, tmp_path,
                                                                        ndjson):
    assert r4_version() == "4.0.1" == c.FHIR_VERSION
    write_ndjson(tmp_path, Exporter(cm.Patient.objects.filter(pk=full_record.patient_a.pk)))
    data = ndjson(tmp_path)
    for resources in data.values():
        for resource in resources:
            parse_r4(resource)
    # the R4 models refuse what R4 does not define (the check can fail)
    bad = dict(data["Observation"][0], valueQuantity={"value": "high"})
    with pytest.raises(Exception, match="value"):
        parse_r4(bad)
    with pytest.raises(Exception, match="notAnR4Element"):
        parse_r4(dict(data["Patient"][0], notAnR4Element=True))


def test_every_resource_of_the_demo_clinic_validates(demo_clinic, tmp_path, ndjson):
    write_ndjson(tmp_path)
    data = ndjson(tmp_path)
    for resources in data.values():
        for resource in resources:
            validate(resource)
            parse_r4(resource)
    assert len(data["Patient"]) == 6


def test_questionnaires_are_generated_from_every_instrument_definition():
    for inst in kinstruments.all_instruments():
        q = questionnaire(inst)
        validate(q)
        assert q["version"] == inst.version
        link_ids = [i["linkId"] for i in q["item"]]
        assert [it.id for it in inst.items] == [x for x in link_ids if x in {it.id for it in inst.items}]
        first = q["item"][0]["answerOption"]
        assert [o["extension"][0] for o in first] == [
            {"url": c.ORDINAL_VALUE, "valueDecimal": v} for v in inst.items[0].allowed]


def test_totals_carry_loinc_where_confirmed_and_no_loinc_for_cows(full_record):
    obs = [r for r in Exporter().assessments(want=frozenset({"Observation"}))]
    by_inst = {o["code"]["coding"][-1]["code"]: o for o in obs}
    phq9 = by_inst["phq9"]["code"]["coding"]
    assert phq9[0] == {"system": c.LOINC, "code": "44261-6", "display": c.SCORE_LOINC["phq9"][1]}
    assert by_inst["gad7"]["code"]["coding"][0]["code"] == "70274-6"
    for inst_id in ("cows", "sows"):
        systems = {cd["system"] for cd in by_inst[inst_id]["code"]["coding"]}
        assert systems == {c.CS_SCORE}
        assert "72514-3" not in str(by_inst[inst_id])
    assert by_inst["phq9"]["valueQuantity"]["code"] == "{score}"
    assert by_inst["phq9"]["derivedFrom"][0]["reference"].startswith("QuestionnaireResponse/a")


def test_a_lab_carries_loinc_ucum_range_and_interpretation(full_record):
    labs = list(Exporter().labs(want=frozenset({"Observation"})))
    prolactin = [o for o in labs if o["code"]["coding"][0]["code"] == "2842-3"]
    # prolactin in mIU/L is a units/volume result: LOINC 15081-3, not the mass code 2842-3
    assert not [o for o in prolactin if o["valueQuantity"]["code"] == "m[IU]/L"]
    iu = [o for o in labs if o["code"]["coding"][0]["code"] == "15081-3"][0]
    assert iu["valueQuantity"] == {"value": 400, "unit": "mIU/L", "system": c.UCUM, "code": "m[IU]/L"}
    # female range 4.8-23.3 ng/mL, exported in the value's unit: 101.76-493.96 mIU/L
    # (400 mIU/L = 18.9 ng/mL: normal); the catalogue's range is labelled the fallback
    rr = iu["referenceRange"][0]
    assert rr["low"] == {"value": 101.76, "unit": "mIU/L", "system": c.UCUM, "code": "m[IU]/L"}
    assert rr["high"]["value"] == 493.96 and rr["high"]["code"] == "m[IU]/L"
    assert rr["text"] == "catalogue range (fallback)"
    assert iu["interpretation"][0]["coding"][0]["code"] == "N"
    corrected = [o for o in prolactin if o["valueQuantity"]["value"] == 30.5][0]
    assert corrected["status"] == "amended"
    assert corrected["interpretation"][0]["coding"][0]["code"] == "H"
    assert not [o for o in prolactin if o["valueQuantity"]["value"] == 31.5], "superseded version exported"
    screen = [o for o in labs if "valueCodeableConcept" in o][0]
    assert screen["interpretation"][0]["coding"][0] == {"system": c.OBS_INTERPRETATION, "code": "POS",
                                                       "display": "Positive"}


def test_a_bilirubin_in_umol_per_litre_goes_out_under_the_molar_loinc_with_its_range(clinic):
    at = timezone.now() - dt.timedelta(days=1)
    services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "bilirubin", "collected_at": at, "value": "34.2", "unit": "µmol/L"})
    [obs] = [o for o in Exporter().labs(want=frozenset({"Observation"}))]
    assert obs["code"]["coding"][0]["code"] == "14631-6"
    assert "1975-2" not in str(obs)
    assert obs["valueQuantity"] == {"value": 34.2, "unit": "µmol/L", "system": c.UCUM,
                                    "code": "umol/L"}
    # 0-1.2 mg/dL in the value's unit: 0-20.52 umol/L; 2 mg/dL is high
    rr = obs["referenceRange"][0]
    assert (rr["low"]["value"], rr["high"]["value"]) == (0.0, 20.52)
    assert rr["high"]["code"] == "umol/L"
    assert obs["interpretation"][0]["coding"][0]["code"] == "H"
    validate(obs)


def test_a_correction_has_provenance_naming_the_replaced_version_and_reason(full_record):
    provs = list(Exporter().labs(want=frozenset({"Provenance"})))
    revised = [p for p in provs if p["activity"]["coding"][0]["code"] == "UPDATE"]
    assert len(revised) == 1
    assert revised[0]["reason"] == [{"text": "transcription error"}]
    assert revised[0]["entity"][0]["role"] == "revision"
    assert revised[0]["agent"][0]["who"]["reference"] == f"Practitioner/{full_record.clinician_a.pk}"


def test_a_dose_statement_keeps_amount_unit_and_product(full_record):
    statements = list(Exporter().doses(want=frozenset({"MedicationStatement"})))
    leaf = [s for s in statements if s["medicationCodeableConcept"]["text"] == "Red Bali"][0]
    assert leaf["dosage"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 3, "unit": "g", "system": c.UCUM, "code": "g"}
    assert leaf["medicationCodeableConcept"]["coding"][0]["code"] == "kratom"
    assert {"url": c.EXT_MITRAGYNINE_PERCENT, "valueDecimal": 1.5} in leaf["extension"]
    assert leaf["informationSource"] == {"reference": f"Patient/{full_record.patient_a.pk}"}
    capsules = [s for s in statements if s is not leaf][0]
    assert capsules["dosage"][0]["doseAndRate"][0]["doseQuantity"]["code"] == "{capsule}"


def test_the_cows_pulse_measurement_is_an_answer_of_its_own(full_record):
    qrs = [q for q in Exporter().assessments(want=frozenset({"QuestionnaireResponse"}))
           if q["questionnaire"].startswith(f"{c.QUESTIONNAIRE_BASE}/cows|")]
    with_pulse = [q for q in qrs if any(i["linkId"] == "pulse-bpm" for i in q["item"])]
    assert len(with_pulse) == 1
    item = [i for i in with_pulse[0]["item"] if i["linkId"] == "pulse-bpm"][0]
    assert item["answer"] == [{"valueInteger": 96}]
