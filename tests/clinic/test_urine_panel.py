"""Issue 19, urine drug testing: a panel collected at one time (analytes, method, specimen
validity), read against what is expected (prescribed drugs, reported kratom), stored once,
audited, all or nothing, and feeding co-use as single results do."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from speciosa.clinic import medications, services, treatment, urine
from speciosa.clinic.models import Alert, AuditEntry, LabResult, UrinePanel
from speciosa.knowledge import drug_panels, evidence
from speciosa.knowledge import labs as klabs


def ago(hours=2):
    return timezone.now() - dt.timedelta(hours=hours)


def panel(**kw):
    data = {"collected_at": ago(), "panels": ["buprenorphine", "benzodiazepines"],
            "method": "screen", "creatinine_mg_dl": "85", "ph": "6.2",
            "specific_gravity": "1.015", "temperature_in_range": True, "observed": False,
            "analytes": {"uds-buprenorphine": "positive", "uds-norbuprenorphine": "positive",
                         "uds-benzodiazepines": "negative"}}
    data.update(kw)
    return data


def bup_episode(clinic):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": timezone.localdate() - dt.timedelta(days=20)})


def kratom_today(clinic):
    at = timezone.now() - dt.timedelta(hours=5)
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localtime(at).date(), doses=[{"taken_at": at, "amount": 3, "unit": "g"}]))


def flags(reading):
    return {a.lab: a.flag for a in reading.analytes}


# ------------------------------------------------------------------ catalogue and evidence

def test_the_catalogue_names_known_labs_and_cites_registry_entries():
    for p in drug_panels.PANELS:
        for code in p.analytes:
            assert klabs.get_lab(code).kind == "qualitative"
        for cid in p.citations:
            assert evidence.resolve(cid) is not None
    assert drug_panels.get_panel("buprenorphine").analytes == ("uds-buprenorphine", "uds-norbuprenorphine")
    assert drug_panels.get_panel("methadone").analytes == ("uds-methadone", "uds-eddp")
    for claim in ("buprenorphine-without-norbuprenorphine", "methadone-without-eddp",
                  "urine-result-not-proof", "urine-specimen-validity"):
        assert evidence.claim(claim).citations


def test_loinc_codes_come_from_the_references_and_gaps_stay_unconfirmed():
    # care.md section 6 (CDC value sets): no code is invented
    assert klabs.get_lab("uds-eddp").method_loinc["screen"] == "93495-0"
    assert klabs.get_lab("uds-eddp").method_loinc["confirmation"] == "58429-2"
    assert klabs.get_lab("uds-norbuprenorphine").method_loinc["confirmation"] == "49751-1"
    assert klabs.get_lab("uds-norbuprenorphine").method_loinc["screen"] is None
    assert "UNCONFIRMED" in klabs.get_lab("uds-norbuprenorphine").note
    assert klabs.get_lab("uds-fentanyl").method_loinc == {"screen": "59673-4",
                                                          "confirmation": "58381-5"}
    assert klabs.get_lab("uds-methadone").loinc is None


# ------------------------------------------------------------------ reading (pure)

def test_buprenorphine_without_norbuprenorphine_is_flagged_never_as_proof():
    reading = drug_panels.read_panel({"uds-buprenorphine": "positive", "uds-norbuprenorphine": "negative"},
                            {"uds-buprenorphine", "uds-norbuprenorphine"})
    assert reading.flagged
    assert flags(reading) == {"uds-buprenorphine": "expected",
                              "uds-norbuprenorphine": "missing-expected"}
    assert reading.caveats[0] == (
        "Buprenorphine without norbuprenorphine suggests buprenorphine was added to the "
        "specimen rather than taken: discuss with the patient; confirm before acting; it is "
        "not proof.")
    assert "buprenorphine-without-norbuprenorphine" in reading.citations


def test_unexpected_positive_and_mitragynine_caveat():
    reading = drug_panels.read_panel({"uds-benzodiazepines": "positive", "uds-opioids": "negative"}, set())
    assert flags(reading) == {"uds-benzodiazepines": "unexpected", "uds-opioids": "negative"}
    assert reading.analytes[0].message == "Unexpected positive: discuss with the patient; confirm before acting."
    assert drug_panels.MITRAGYNINE_CAVEAT in reading.caveats
    assert {"kratom-not-in-standard-uds", "labcorp-kratom-urine-assay"} <= set(reading.citations)
    with_assay = drug_panels.read_panel({"uds-mitragynine": "positive"}, {"uds-mitragynine"})
    assert drug_panels.MITRAGYNINE_CAVEAT not in with_assay.caveats and not with_assay.flagged


@pytest.mark.parametrize(("kw", "problem"), [
    ({"ph": Decimal("3.5")}, "pH 3.5 (adulterated"),
    ({"ph": Decimal("11")}, "pH 11 (adulterated"),
    ({"creatinine_mg_dl": Decimal("1"), "specific_gravity": Decimal("1.0005")}, "(substituted)"),
    ({"creatinine_mg_dl": Decimal("10"), "specific_gravity": Decimal("1.002")}, "(dilute)"),
    ({"creatinine_mg_dl": Decimal("10")}, "give the specific gravity"),
    ({"temperature_in_range": False}, "temperature outside 32-38"),
])
def test_an_invalid_specimen_withholds_the_reading(kw, problem):
    problems = drug_panels.specimen_problems(**kw)
    assert len(problems) == 1 and problem in problems[0]
    reading = drug_panels.read_panel({"uds-benzodiazepines": "positive"}, set(), specimen=problems)
    assert reading.withheld and flags(reading) == {"uds-benzodiazepines": "withheld"}
    assert reading.caveats[0].startswith("The specimen is not valid as it stands")


def test_a_valid_specimen_has_no_problems():
    assert drug_panels.specimen_problems(creatinine_mg_dl=Decimal("85"), ph=Decimal("6"),
                                specific_gravity=Decimal("1.015"),
                                temperature_in_range=True) == []


# ------------------------------------------------------------------ recording


@pytest.mark.django_db
def test_a_panel_is_stored_with_its_analytes_audited_and_once_per_token(clinic):
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(), token="u1")
    again = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(), token="u1")
    assert again.pk == p.pk and UrinePanel.objects.count() == 1
    rows = {r.lab: r for r in LabResult.objects.filter(panel=p)}
    assert set(rows) == {"uds-buprenorphine", "uds-norbuprenorphine", "uds-benzodiazepines"}
    assert LabResult.objects.count() == 3
    assert rows["uds-buprenorphine"].loinc == "93494-3"
    assert (rows["uds-buprenorphine"].result, rows["uds-buprenorphine"].method) == ("positive", "screen")
    assert (p.creatinine_mg_dl, p.ph, p.specific_gravity) == (Decimal("85"), Decimal("6.2"),
                                                               Decimal("1.015"))
    assert (p.temperature_in_range, p.observed, p.specimen_problems) == (True, False, [])
    assert AuditEntry.objects.filter(model="UrinePanel", object_id=p.pk).count() == 1
    assert AuditEntry.objects.filter(model="LabResult").count() == 3


@pytest.mark.django_db
def test_done_when_a_panel_with_buprenorphine_but_no_norbuprenorphine_is_flagged(clinic):
    bup_episode(clinic)
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(analytes={
        "uds-buprenorphine": "positive", "uds-norbuprenorphine": "negative",
        "uds-benzodiazepines": "negative"}))
    reading, expected = urine.read(p)
    assert expected["uds-buprenorphine"] == "buprenorphine (treatment episode)"
    assert reading.flagged and "suggests buprenorphine was added" in reading.caveats[0]
    assert flags(reading)["uds-norbuprenorphine"] == "missing-expected"


@pytest.mark.django_db
def test_a_prescribed_benzodiazepine_and_reported_kratom_are_expected(clinic):
    medications.record_medication(clinic.clinician_a, clinic.patient_a, {
        "drug": "alprazolam", "start": timezone.localdate() - dt.timedelta(days=30)})
    kratom_today(clinic)
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        panels=["benzodiazepines", "mitragynine", "opioids"],
        analytes={"uds-benzodiazepines": "positive", "uds-mitragynine": "negative",
                  "uds-opioids": "positive"}))
    reading, expected = urine.read(p)
    assert set(expected) == {"uds-benzodiazepines", "uds-mitragynine"}
    assert flags(reading) == {"uds-benzodiazepines": "expected",
                              "uds-mitragynine": "missing-expected",
                              "uds-opioids": "unexpected"}
    assert drug_panels.MITRAGYNINE_CAVEAT not in reading.caveats


@pytest.mark.django_db
def test_a_value_is_read_against_its_cut_off(clinic):
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        panels=["mitragynine"], method="confirmation", method_detail="LC-MS/MS",
        analytes={"uds-mitragynine": {"value": "0.8", "cutoff": "1.0", "unit": "ng/mL"}}))
    row = LabResult.objects.get(panel=p)
    assert (row.result, row.value, row.cutoff, row.unit) == ("negative", Decimal("0.8"),
                                                             Decimal("1.0"), "ng/mL")
    assert row.loinc == "72732-1" and p.method_detail == "LC-MS/MS"


@pytest.mark.django_db
@pytest.mark.parametrize(("kw", "field", "text"), [
    ({"analytes": {"uds-buprenorphine": "positive", "uds-norbuprenorphine": "positive",
                   "uds-benzodiazepines": "negative", "uds-cocaine": "positive"}},
     "analytes", "Unknown analyte uds-cocaine"),
    ({"analytes": {"uds-buprenorphine": {"value": "12", "unit": "ng/mL"},
                   "uds-norbuprenorphine": "positive", "uds-benzodiazepines": "negative"}},
     "analytes.uds-buprenorphine", "a value needs the cut-off"),
    ({"analytes": {"uds-buprenorphine": "positive", "uds-benzodiazepines": "negative"}},
     "analytes.uds-norbuprenorphine", "Give the result for Norbuprenorphine"),
    ({"analytes": {"uds-buprenorphine": "maybe", "uds-norbuprenorphine": "positive",
                   "uds-benzodiazepines": "negative"}},
     "analytes.uds-buprenorphine", "choose positive, negative or indeterminate"),
    ({"panels": ["cocaine"]}, "panels", "Unknown panel cocaine"),
    ({"panels": []}, "panels", "Choose at least one panel"),
    ({"method": "dipstick"}, "method", "Choose the method"),
    ({"ph": "15"}, "ph", "between 0 and 14"),
    ({"creatinine_mg_dl": "lots"}, "creatinine_mg_dl", "as a number"),
    ({"collected_at": None}, "collected_at", "Give the date and time"),
    ({"collected_at": timezone.now() + dt.timedelta(days=2)}, "collected_at", ""),
])
def test_bad_input_says_what_to_fix_and_stores_nothing(clinic, kw, field, text):
    with pytest.raises(ValidationError) as exc:
        urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(**kw), token="bad")
    assert text in " ".join(exc.value.message_dict[field])
    assert UrinePanel.objects.count() == 0 and LabResult.objects.count() == 0
    assert not AuditEntry.objects.filter(model__in=["UrinePanel", "LabResult"]).exists()


@pytest.mark.django_db
def test_another_teams_patient_is_refused_and_nothing_is_stored(clinic):
    with pytest.raises(PermissionDenied):
        urine.record_panel(clinic.clinician_b, clinic.patient_a, panel())
    with pytest.raises(PermissionDenied):
        urine.record_panel(clinic.patient_b.user, clinic.patient_a, panel())
    assert UrinePanel.objects.count() == 0 and LabResult.objects.count() == 0


@pytest.mark.django_db
def test_an_invalid_specimen_is_stored_with_its_problem_and_the_reading_withheld(clinic):
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(ph="3.0"))
    assert p.specimen_problems == ["pH 3.0 (adulterated: below 4 or 11 and above)"]
    reading, _ = urine.read(p)
    assert reading.withheld and set(flags(reading).values()) == {"withheld"}


@pytest.mark.django_db
def test_a_positive_screen_in_a_panel_feeds_co_use_as_a_single_result_does(clinic):
    kratom_today(clinic)
    assert not Alert.objects.filter(patient=clinic.patient_a, topic="co-use-sedative").exists()
    urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        panels=["benzodiazepines"], analytes={"uds-benzodiazepines": "positive"}))
    alert = Alert.objects.get(patient=clinic.patient_a, topic="co-use-sedative")
    assert "benzodiazepine" in alert.message


@pytest.mark.django_db
def test_single_uds_results_keep_working(clinic):
    row = services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "uds-opioids", "collected_at": ago(), "result": "positive", "method": "screen"})
    assert row.panel is None and row.result == "positive"


# ------------------------------------------------------------------ the rule


@pytest.mark.django_db
def test_buprenorphine_without_norbuprenorphine_raises_a_warning_to_discuss(clinic):
    bup_episode(clinic)
    urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(analytes={
        "uds-buprenorphine": "positive", "uds-norbuprenorphine": "negative",
        "uds-benzodiazepines": "negative"}))
    alert = Alert.objects.get(patient=clinic.patient_a, topic="uds-unexpected")
    assert (alert.rule, alert.severity) == ("SAF-UDS-UNEXPECTED", "warning")
    assert "expected but not found: uds-norbuprenorphine" in alert.message
    assert "discuss with the patient; confirm before acting" in alert.message
    assert alert.evidence["flags"] == {"uds-norbuprenorphine": "missing-expected"}


@pytest.mark.django_db
def test_an_unexpected_positive_is_info_and_an_expected_panel_raises_nothing(clinic):
    bup_episode(clinic)
    urine.record_panel(clinic.clinician_a, clinic.patient_a, panel())
    assert not Alert.objects.filter(patient=clinic.patient_a, topic="uds-unexpected").exists()
    urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        collected_at=ago(1), analytes={"uds-buprenorphine": "positive",
                                       "uds-norbuprenorphine": "positive",
                                       "uds-benzodiazepines": "positive"}))
    alert = Alert.objects.get(patient=clinic.patient_a, topic="uds-unexpected")
    assert alert.severity == "info"
    assert "unexpected positive: uds-benzodiazepines" in alert.message


@pytest.mark.django_db
def test_an_invalid_specimen_raises_no_reading_finding(clinic):
    urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        temperature_in_range=False, panels=["benzodiazepines"],
        analytes={"uds-benzodiazepines": "positive"}))
    assert not Alert.objects.filter(patient=clinic.patient_a, topic="uds-unexpected").exists()


@pytest.mark.django_db
def test_the_panel_is_in_the_timeline_with_its_values_and_cut_offs(clinic):
    from speciosa.clinic import selectors

    urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        panels=["mitragynine"], method="confirmation",
        analytes={"uds-mitragynine": {"value": "3.5", "cutoff": "1.0", "unit": "ng/mL"}}))
    events = [e for e in selectors.patient_timeline(clinic.patient_a) if e.kind == "lab"]
    assert events[0].title == "Kratom (mitragynine), urine: positive"
    assert "3.5 ng/mL (cut-off 1 ng/mL)" in events[0].detail
    assert "urine drug test panel" in events[0].detail
