"""Issue 19 through FHIR: treatment episodes as MedicationStatement (RxNorm from the drug
table, dosage, effectivePeriod, status, statusReason, injection dates, dispensing clinic, the
episode a dose change follows) and urine drug test panels as a DiagnosticReport grouping an
Observation per analyte (LOINC where the catalogue has it, method, cut-off, interpretation)
with its Specimen (urine, collected, observed) and the validity Observations; checked with
fhirclient's R4 models and fhir.resources; imported back into a fresh patient, every field
the same; a code or unit the import cannot read is refused and audited."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from speciosa.clinic import treatment, urine
from speciosa.clinic.models import AuditEntry, LabResult, Patient, TreatmentEpisode, UrinePanel
from speciosa.interop import codes as icodes
from speciosa.interop import search as isearch
from speciosa.interop.export import Exporter, validate
from speciosa.interop.importer import import_fhir

from ..conftest import make_patient
from .conftest import stored_counts
from .r4 import parse_r4

pytestmark = pytest.mark.django_db


def days_ago(n):
    return timezone.localdate() - dt.timedelta(days=n)


def ago(hours):
    return (timezone.now() - dt.timedelta(hours=hours)).replace(microsecond=0)


def record_treatment(clinic):
    """Buprenorphine sublingual 16 mg changed to the monthly injection; methadone before it,
    stopped; naltrexone not. Returns the episodes (current versions)."""
    user, patient = clinic.clinician_a, clinic.patient_a
    methadone = treatment.record_episode(user, patient, {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": "60",
        "dispensing_clinic": "Harbour Street OTP", "start": days_ago(120).isoformat(),
        "notes": "dispensed daily, supervised"})
    methadone = treatment.stop_episode(user, patient, methadone, reason="moved to buprenorphine",
                                       at=days_ago(60).isoformat())
    bup = treatment.record_episode(user, patient, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": (timezone.now() - dt.timedelta(days=50)).replace(microsecond=0).isoformat()})
    xr = treatment.change_episode(user, patient, bup, {"formulation": "xr-injection",
                                                       "dose_mg": "300"},
                                  reason="monthly injection agreed",
                                  at=days_ago(30).isoformat())
    xr = treatment.add_injection(user, patient, xr, days_ago(30))
    xr = treatment.add_injection(user, patient, xr, days_ago(2))
    return methadone, _current(bup), xr


def _current(row):
    """The current version of ``row``'s record."""
    while True:
        nxt = type(row).objects.filter(replaces=row).first()
        if nxt is None:
            return row
        row = nxt


def record_panels(clinic):
    """A screen with a value and its cut-off, a fentanyl positive nobody expects; a
    confirmation by LC-MS/MS with buprenorphine but no norbuprenorphine, a dilute specimen."""
    user, patient = clinic.clinician_a, clinic.patient_a
    screen = urine.record_panel(user, patient, {
        "collected_at": ago(30 * 24), "panels": ["buprenorphine", "fentanyl", "mitragynine"],
        "method": "screen", "method_detail": "EMIT II Plus", "creatinine_mg_dl": "85",
        "ph": "6.2", "specific_gravity": "1.015", "temperature_in_range": True,
        "observed": True, "note": "first test of the episode",
        "analytes": {"uds-buprenorphine": {"value": "12.5", "cutoff": "5", "unit": "ng/mL"},
                     "uds-norbuprenorphine": "positive", "uds-fentanyl": "positive",
                     "uds-mitragynine": "negative"}})
    confirm = urine.record_panel(user, patient, {
        "collected_at": ago(26), "panels": ["buprenorphine"], "method": "confirmation",
        "method_detail": "LC-MS/MS", "creatinine_mg_dl": "15", "specific_gravity": "1.002",
        "temperature_in_range": False, "observed": False,
        "analytes": {"uds-buprenorphine": "positive", "uds-norbuprenorphine": "negative"}})
    return screen, confirm


def exported(patient, types):
    out = list(Exporter(Patient.objects.filter(pk=patient.pk)).resources(types))
    for r in out:
        parse_r4(r)
        validate(r)
    return out


def by_id(resources):
    return {f"{r['resourceType']}/{r['id']}": r for r in resources}


# ------------------------------------------------------------------ export: episodes

def test_episodes_are_medication_statements_with_rxnorm_dose_period_and_stop_reason(clinic):
    methadone, bup, xr = record_treatment(clinic)
    res = by_id(exported(clinic.patient_a, ["MedicationStatement"]))
    m = res[f"MedicationStatement/ep{_root(methadone)}"]
    assert m["status"] == "stopped"
    assert m["statusReason"] == [{"text": "moved to buprenorphine"}]
    assert m["medicationCodeableConcept"]["coding"][0] == {
        "system": icodes.RXNORM, "code": "6813", "display": "methadone"}
    assert m["effectivePeriod"] == {"start": days_ago(120).isoformat(),
                                    "end": days_ago(60).isoformat()}
    assert m["dosage"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 60, "unit": "mg", "system": icodes.UCUM, "code": "mg"}
    assert m["dosage"][0]["text"] == "60 mg a day (oral liquid)"
    assert m["dosage"][0]["timing"] == {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    assert m["dosage"][0]["route"]["coding"][0]["code"] == "26643006"  # oral
    assert {"url": icodes.EXT_DISPENSING_CLINIC, "valueString": "Harbour Street OTP"} in m["extension"]
    assert m["note"] == [{"text": "dispensed daily, supervised"}]
    assert {"system": icodes.CS_RECORD_KIND, "code": "treatment-episode",
            "display": "Treatment episode (medication for opioid use disorder)"} in \
        m["category"]["coding"]
    assert m["informationSource"]["reference"] == f"Practitioner/{clinic.clinician_a.pk}"

    first = res[f"MedicationStatement/ep{_root(bup)}"]
    assert first["status"] == "stopped"
    assert first["statusReason"] == [{"text": "changed: monthly injection agreed"}]
    assert first["medicationCodeableConcept"]["coding"][0]["code"] == "1819"
    assert "T" in first["effectivePeriod"]["start"]  # the time was given: kept

    x = res[f"MedicationStatement/ep{_root(xr)}"]
    assert x["status"] == "active"
    assert "end" not in x["effectivePeriod"]
    assert x["dosage"][0]["text"] == "300 mg each injection (extended-release injection)"
    assert "timing" not in x["dosage"][0]
    assert x["dosage"][0]["route"]["coding"][0]["code"] == "34206005"  # subcutaneous
    dates = [e["valueDate"] for e in x["extension"] if e["url"] == icodes.EXT_INJECTION_DATE]
    assert dates == [days_ago(30).isoformat(), days_ago(2).isoformat()]
    follows = next(e for e in x["extension"] if e["url"] == icodes.EXT_FOLLOWS)
    assert follows["valueReference"]["reference"] == f"MedicationStatement/{first['id']}"
    # the injections made later versions: the reason for the change is still the change's
    assert {"url": icodes.EXT_CHANGE_REASON, "valueString": "monthly injection agreed"} in \
        x["extension"]
    assert x["meta"]["versionId"] == "3"


def _root(row):
    while row.replaces_id:
        row = row.replaces
    return row.pk


def test_a_naltrexone_injection_is_intramuscular_with_rxnorm_7243(clinic):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "naltrexone", "formulation": "xr-injection", "dose_mg": "380",
        "start": days_ago(10).isoformat(), "injection_dates": [days_ago(10).isoformat()]})
    [ms] = [r for r in exported(clinic.patient_a, ["MedicationStatement"])
            if r["id"].startswith("ep")]
    assert ms["medicationCodeableConcept"]["coding"][0]["code"] == "7243"
    assert ms["dosage"][0]["route"]["coding"][0] == {"system": icodes.SNOMED, "code": "78421000",
                                                     "display": "Intramuscular route"}
    assert ms["medicationCodeableConcept"]["text"] == "naltrexone extended-release injection"


# ------------------------------------------------------------------ export: panels

def test_a_panel_is_a_diagnostic_report_of_analyte_observations_with_their_specimen(clinic):
    record_treatment(clinic)
    screen, confirm = record_panels(clinic)
    res = by_id(exported(clinic.patient_a, ["DiagnosticReport", "Specimen", "Observation"]))
    report = res[f"DiagnosticReport/uds{screen.pk}"]
    assert [cd["code"] for cd in report["code"]["coding"]] == [
        "buprenorphine", "fentanyl", "mitragynine"]
    assert report["category"][0]["coding"][0]["code"] == "LAB"
    assert report["specimen"] == [{"reference": f"Specimen/uds{screen.pk}"}]
    assert report["effectiveDateTime"] == screen.collected_at.isoformat()
    assert {"url": icodes.EXT_NOTE, "valueString": "first test of the episode"} in \
        report["extension"]
    rows = {r.lab: r for r in LabResult.objects.filter(panel=screen)}
    assert [r["reference"] for r in report["result"]] == [
        *(f"Observation/lab{rows[c].pk}" for c in ("uds-buprenorphine", "uds-norbuprenorphine",
                                                    "uds-fentanyl", "uds-mitragynine")),
        f"Observation/uvcr{screen.pk}", f"Observation/uvph{screen.pk}",
        f"Observation/uvsg{screen.pk}", f"Observation/uvtemp{screen.pk}"]
    assert "Fentanyl, urine: positive, unexpected" in report["conclusion"]
    assert "not a medical device" in report["conclusion"]

    bup = res[f"Observation/lab{rows['uds-buprenorphine'].pk}"]
    assert bup["code"]["coding"][0] == {"system": icodes.LOINC, "code": "93494-3",
                                        "display": "Buprenorphine, urine"}
    assert bup["valueQuantity"] == {"value": 12.5, "unit": "ng/mL", "system": icodes.UCUM,
                                    "code": "ng/mL"}
    assert bup["referenceRange"] == [{"high": {"value": 5, "unit": "ng/mL",
                                               "system": icodes.UCUM, "code": "ng/mL"},
                                      "text": icodes.CUTOFF_RANGE_TEXT}]
    assert bup["method"] == {"coding": [{"system": icodes.CS_LAB_METHOD, "code": "screen"}],
                             "text": "EMIT II Plus"}
    assert bup["specimen"] == {"reference": f"Specimen/uds{screen.pk}"}
    assert bup["interpretation"][0]["coding"][0]["code"] == "POS"
    assert bup["interpretation"][1]["coding"][0] == {"system": icodes.CS_URINE_READING,
                                                     "code": "expected"}
    fent = res[f"Observation/lab{rows['uds-fentanyl'].pk}"]
    assert fent["code"]["coding"][0]["code"] == "59673-4"
    assert fent["interpretation"][1]["coding"][0]["code"] == "unexpected"
    assert "discuss with the patient" in fent["interpretation"][1]["text"]
    mitra = res[f"Observation/lab{rows['uds-mitragynine'].pk}"]
    assert mitra["code"]["coding"][0]["code"] == "75649-4"
    assert mitra["valueCodeableConcept"]["coding"][0]["code"] == "negative"

    spec = res[f"Specimen/uds{screen.pk}"]
    assert spec["type"]["coding"] == [{"system": icodes.V2_0487, "code": "UR", "display": "Urine"}]
    assert spec["collection"] == {"collectedDateTime": screen.collected_at.isoformat()}
    assert spec["extension"] == [{"url": icodes.EXT_OBSERVED_COLLECTION, "valueBoolean": True}]
    assert "status" not in spec
    assert res[f"Observation/uvcr{screen.pk}"]["valueQuantity"]["value"] == 85
    assert res[f"Observation/uvph{screen.pk}"]["valueQuantity"] == {
        "value": 6.2, "unit": "[pH]", "system": icodes.UCUM, "code": "[pH]"}
    assert res[f"Observation/uvsg{screen.pk}"]["valueQuantity"]["value"] == 1.015
    assert res[f"Observation/uvtemp{screen.pk}"]["valueBoolean"] is True


def test_a_confirmation_is_never_sent_under_the_screens_loinc_and_a_dilute_specimen_says_so(
        clinic):
    _screen, confirm = record_panels(clinic)
    res = by_id(exported(clinic.patient_a, ["DiagnosticReport", "Specimen", "Observation"]))
    rows = {r.lab: r for r in LabResult.objects.filter(panel=confirm)}
    bup = res[f"Observation/lab{rows['uds-buprenorphine'].pk}"]
    # the catalogue has no confirmation LOINC for buprenorphine: Speciosa's code only
    assert [cd["system"] for cd in bup["code"]["coding"]] == [icodes.CS_LAB]
    assert bup["method"]["text"] == "LC-MS/MS"
    norbup = res[f"Observation/lab{rows['uds-norbuprenorphine'].pk}"]
    assert norbup["code"]["coding"][0]["code"] == "49751-1"
    spec = res[f"Specimen/uds{confirm.pk}"]
    assert spec["status"] == "unsatisfactory"
    assert "dilute" in spec["note"][0]["text"]
    assert spec["extension"] == [{"url": icodes.EXT_OBSERVED_COLLECTION, "valueBoolean": False}]
    report = res[f"DiagnosticReport/uds{confirm.pk}"]
    assert "not valid as it stands" in report["conclusion"]
    assert f"Observation/uvph{confirm.pk}" not in [r["reference"] for r in report["result"]]


def test_search_finds_panels_by_code_date_and_specimen_and_episodes_by_category(clinic):
    record_treatment(clinic)
    screen, confirm = record_panels(clinic)
    reports = exported(clinic.patient_a, ["DiagnosticReport"])
    crit = isearch.criterion("DiagnosticReport", "code", f"{icodes.CS_URINE_PANEL}|fentanyl")
    assert [r["id"] for r in isearch.matching(reports, [crit])] == [f"uds{screen.pk}"]
    since = (timezone.now() - dt.timedelta(days=2)).date().isoformat()
    crit = isearch.criterion("DiagnosticReport", "date", f"ge{since}")
    assert [r["id"] for r in isearch.matching(reports, [crit])] == [f"uds{confirm.pk}"]
    obs = exported(clinic.patient_a, ["Observation"])
    crit = isearch.criterion("Observation", "specimen", f"Specimen/uds{confirm.pk}")
    assert len(list(isearch.matching(obs, [crit]))) == 2 + 3  # analytes, creatinine/SG/temp
    statements = exported(clinic.patient_a, ["MedicationStatement"])
    crit = isearch.criterion("MedicationStatement", "category",
                             f"{icodes.CS_RECORD_KIND}|treatment-episode")
    assert len(list(isearch.matching(statements, [crit]))) == 3
    specimens = exported(clinic.patient_a, ["Specimen"])
    crit = isearch.criterion("Specimen", "status", "unsatisfactory")
    assert [r["id"] for r in isearch.matching(specimens, [crit])] == [f"uds{confirm.pk}"]


# ------------------------------------------------------------------ round trip

def _bundle_for(resources, patient, path):
    """The resources as a Bundle about ``patient`` (another chart at the same site)."""
    from speciosa.interop.codes import mrn_system

    subject = {"identifier": {"system": mrn_system(patient.site), "value": patient.identifier}}
    entries = []
    for r in resources:
        if r["resourceType"] in ("Patient", "Practitioner", "CareTeam", "Questionnaire",
                                 "Consent", "Flag"):
            continue
        r = json.loads(json.dumps(r))
        for key in ("subject", "patient"):
            if key in r:
                r[key] = subject
        if r["resourceType"] == "Provenance":
            continue
        entries.append({"fullUrl": f"http://sender.example/fhir/{r['resourceType']}/{r['id']}",
                        "resource": r})
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                                "entry": entries}), encoding="utf-8")
    return path


def _episodes(patient):
    out = []
    for e in TreatmentEpisode.objects.current().filter(patient=patient).order_by("start", "pk"):
        data = treatment.episode_data(e)
        data.pop("decision")
        follows = e.follows
        data["follows"] = (follows.drug, follows.start, follows.end) if follows else None
        first = e
        while first.replaces_id:
            first = first.replaces
        data["change_reason"] = first.change_reason if follows else ""
        out.append(data)
    return out


def _panels(patient):
    out = []
    for p in UrinePanel.objects.current().filter(patient=patient).order_by("collected_at"):
        data = urine.panel_data(p)
        data["specimen_problems"] = p.specimen_problems
        reading, _ = urine.read(p)
        data["reading"] = [(a.lab, a.result, a.flag) for a in reading.analytes]
        data["loinc"] = sorted((r.lab, r.loinc, r.method) for r in p.analytes.current())
        out.append(data)
    return out


def test_episodes_and_panels_round_trip_into_a_fresh_patient_field_by_field(clinic, tmp_path):
    record_treatment(clinic)
    record_panels(clinic)
    fresh = make_patient(clinic.site_a, clinic.team_a, None, "x", sex="female",
                         given_name="Nia", family_name="Fresh", identifier="FRESH-1",
                         in_care_since=days_ago(200))
    resources = list(Exporter(Patient.objects.filter(pk=clinic.patient_a.pk)).resources())
    path = _bundle_for(resources, fresh, tmp_path / "record.json")
    report = import_fhir(path, user=clinic.clinician_a)
    assert report.ok, [str(p) for p in report.problems]
    assert report.created["TreatmentEpisode"] == 3
    assert report.created["UrinePanel"] == 2
    assert _episodes(fresh) == _episodes(clinic.patient_a)
    assert _panels(fresh) == _panels(clinic.patient_a)
    assert len(_episodes(fresh)) == 3 and len(_panels(fresh)) == 2
    # nothing else became a lab result: the analytes came with their panels
    assert LabResult.objects.filter(patient=fresh, panel__isnull=True).count() == 0
    # the same file again changes nothing
    again = import_fhir(path, user=clinic.clinician_a)
    assert again.ok and not again.created


def test_a_bulk_export_round_trips_its_panels_across_files(clinic, tmp_path):
    from speciosa.interop.export import write_ndjson

    record_panels(clinic)
    counts = write_ndjson(tmp_path / "out", Exporter(Patient.objects.filter(
        pk=clinic.patient_a.pk)))
    assert counts["DiagnosticReport"] == 2 and counts["Specimen"] == 2
    fresh = make_patient(clinic.site_a, clinic.team_a, None, "x", sex="female",
                         given_name="Nia", family_name="Fresh", identifier="FRESH-2",
                         in_care_since=days_ago(200))
    folder = tmp_path / "in"
    folder.mkdir()
    for f in (tmp_path / "out").glob("*.ndjson"):
        if f.stem in ("DiagnosticReport", "Observation", "Specimen"):
            lines = []
            for line in f.read_text(encoding="utf-8").splitlines():
                r = json.loads(line)
                r["subject"] = {"identifier": {"system": icodes.mrn_system(fresh.site),
                                               "value": fresh.identifier}}
                lines.append(json.dumps(r))
            (folder / f.name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_fhir(folder, user=clinic.clinician_a)
    assert report.ok, [str(p) for p in report.problems]
    assert report.created["UrinePanel"] == 2
    assert _panels(fresh) == _panels(clinic.patient_a)


def test_a_panel_corrected_and_one_withdrawn_are_sent_again_as_a_version_and_a_withdrawal(
        clinic, tmp_path):
    screen, confirm = record_panels(clinic)
    fresh = make_patient(clinic.site_a, clinic.team_a, None, "x", sex="female",
                         given_name="Nia", family_name="Fresh", identifier="FRESH-3",
                         in_care_since=days_ago(200))

    def send(name):
        resources = list(Exporter(Patient.objects.filter(pk=clinic.patient_a.pk)).resources(
            ["DiagnosticReport", "Observation", "Specimen"]))
        return import_fhir(_bundle_for(resources, fresh, tmp_path / name), user=clinic.clinician_a)

    assert send("one.json").ok
    data = urine.panel_data(screen)
    data["analytes"]["uds-fentanyl"] = {"result": "negative"}
    urine.correct_panel(clinic.clinician_a, clinic.patient_a, screen, data,
                        reason="fentanyl read from the wrong cup")
    report = send("two.json")
    assert report.ok, [str(p) for p in report.problems]
    assert report.created == {"UrinePanel (updated)": 1}
    assert _panels(fresh) == _panels(clinic.patient_a)
    # a withdrawn panel is no longer exported: the receiver keeps what it had
    urine.withdraw_panel(clinic.clinician_a, clinic.patient_a, confirm, reason="wrong patient")
    assert len(_panels(clinic.patient_a)) == 1


# ------------------------------------------------------------------ refused

def _panel_bundle(clinic, tmp_path, change):
    record_panels(clinic)
    resources = list(Exporter(Patient.objects.filter(pk=clinic.patient_a.pk)).resources(
        ["DiagnosticReport", "Observation", "Specimen"]))
    fresh = make_patient(clinic.site_a, clinic.team_a, None, "x", sex="female",
                         given_name="Nia", family_name="Fresh", identifier="FRESH-9",
                         in_care_since=days_ago(200))
    for r in resources:
        change(r)
    return _bundle_for(resources, fresh, tmp_path / "bad.json"), fresh


def _loinc(code):
    def change(r):
        if r["resourceType"] == "Observation" and r["code"]["coding"][0].get("code") == "59673-4":
            r["code"]["coding"][0]["code"] = code
    return change


def _cutoff_unit(r):
    if r["resourceType"] == "Observation" and "referenceRange" in r:
        r["referenceRange"][0]["high"]["code"] = "ug/L"


def _creatinine_unit(r):
    if r["resourceType"] == "Observation" and r["id"].startswith("uvcr"):
        r["valueQuantity"]["code"] = r["valueQuantity"]["unit"] = "umol/L"


def _screen_code_for_confirmation(r):
    if r["resourceType"] == "Observation" and r.get("method", {}).get("text") == "LC-MS/MS" \
            and r["code"]["coding"][0].get("code") == "49751-1":
        r["code"]["coding"][0]["code"] = "93494-3"  # the buprenorphine screen's code


@pytest.mark.parametrize("change, why", [
    (_loinc("12345-6"), "LOINC 12345-6 is not a urine drug test in Speciosa's catalogue"),
    (_loinc("75649-4"), "LOINC 75649-4 is Kratom (mitragynine), urine, not Fentanyl, urine"),
    (_cutoff_unit, "the value is in 'ng/mL' and the cut-off in 'ug/L'"),
    (_creatinine_unit, "the unit 'umol/L' is not 'mg/dL'"),
    (_screen_code_for_confirmation, "is Buprenorphine, urine, not Norbuprenorphine"),
])
def test_an_unknown_loinc_or_a_unit_mismatch_refuses_the_file_and_is_audited(
        clinic, tmp_path, change, why):
    path, fresh = _panel_bundle(clinic, tmp_path, change)
    before = stored_counts()
    report = import_fhir(path, user=clinic.clinician_a)
    assert not report.ok
    assert any(why in p.message for p in report.problems), [str(p) for p in report.problems]
    assert stored_counts() == before
    assert not UrinePanel.objects.filter(patient=fresh).exists()
    refused = AuditEntry.objects.filter(action="import-refused").latest("pk")
    assert why in json.dumps(refused.after["problems"])


def test_a_panel_without_its_parts_in_the_import_is_refused(clinic, tmp_path):
    path, _fresh = _panel_bundle(clinic, tmp_path, lambda r: None)
    bundle = json.loads(path.read_text())
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Specimen"]
    path.write_text(json.dumps(bundle))
    report = import_fhir(path, user=clinic.clinician_a)
    assert any("is not in the import" in p.message for p in report.problems)


def test_an_episode_the_form_would_refuse_is_refused_on_import(clinic, tmp_path):
    record_treatment(clinic)
    resources = list(Exporter(Patient.objects.filter(pk=clinic.patient_a.pk)).resources(
        ["MedicationStatement"]))
    fresh = make_patient(clinic.site_a, clinic.team_a, None, "x", sex="female",
                         given_name="Nia", family_name="Fresh", identifier="FRESH-8",
                         in_care_since=days_ago(200))
    for r in resources:
        if r["id"].startswith("ep") and r["status"] == "stopped":
            r["effectivePeriod"]["end"] = days_ago(400).isoformat()  # before the start
    report = import_fhir(_bundle_for(resources, fresh, tmp_path / "ep.json"),
                         user=clinic.clinician_a)
    assert not report.ok
    assert any("before the start" in p.message or "too early" in p.message
               for p in report.problems), [str(p) for p in report.problems]
    assert not TreatmentEpisode.objects.filter(patient=fresh).exists()


def test_a_methadone_dose_above_the_sites_level_needs_its_confirmation_on_import(clinic,
                                                                                 tmp_path):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": "150",
        "dispensing_clinic": "Harbour Street OTP", "start": days_ago(5).isoformat(),
        "confirmed_dose": True})
    resources = list(Exporter(Patient.objects.filter(pk=clinic.patient_a.pk)).resources(
        ["MedicationStatement"]))
    for r in resources:
        r["extension"] = [e for e in r.get("extension", ())
                          if e["url"] != icodes.EXT_DOSE_CONFIRMED]
    fresh = make_patient(clinic.site_a, clinic.team_a, None, "x", sex="female",
                         given_name="Nia", family_name="Fresh", identifier="FRESH-7",
                         in_care_since=days_ago(200))
    report = import_fhir(_bundle_for(resources, fresh, tmp_path / "m.json"),
                         user=clinic.clinician_a)
    assert any(icodes.EXT_DOSE_CONFIRMED in p.message for p in report.problems)
    assert not TreatmentEpisode.objects.filter(patient=fresh).exists()


def test_the_patients_own_fhir_download_holds_their_episodes_and_panels(clinic, client):
    from ..conftest import verified_login

    record_treatment(clinic)
    record_panels(clinic)
    verified_login(client, clinic.patient_a.user)
    bundle = json.loads(client.get("/me/record.fhir.json").content)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert types.count("DiagnosticReport") == 2 and types.count("Specimen") == 2
    assert sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationStatement"
               and e["resource"]["id"].startswith("ep")) == 3


# ------------------------------------------------------------------ the REST API, every role

def _get(client, url):
    return client.get(url, HTTP_ACCEPT="application/fhir+json")


def test_the_fhir_api_serves_panels_and_episodes_to_the_care_team_only(clinic, login):
    from ..conftest import verified_login

    screen, confirm = record_panels(clinic)
    episode = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "naltrexone", "formulation": "oral-tablet", "dose_mg": "50",
        "start": days_ago(3).isoformat()})
    urls = [f"/fhir/DiagnosticReport/uds{screen.pk}", f"/fhir/Specimen/uds{screen.pk}",
            f"/fhir/Observation/uvcr{screen.pk}", f"/fhir/MedicationStatement/ep{episode.pk}",
            f"/fhir/Provenance/uds{screen.pk}", f"/fhir/Provenance/ep{episode.pk}"]
    client = login(clinic.clinician_a)
    for url in urls:
        resp = _get(client, url)
        assert resp.status_code == 200, url
        parse_r4(resp.json())
    found = _get(client, f"/fhir/DiagnosticReport?patient={clinic.patient_a.pk}"
                         f"&code={icodes.CS_URINE_PANEL}|mitragynine").json()
    assert [e["resource"]["id"] for e in found["entry"]] == [f"uds{screen.pk}"]
    found = _get(client, f"/fhir/Specimen?patient={clinic.patient_a.pk}&type=UR").json()
    assert len(found["entry"]) == 2
    metadata = _get(client, "/fhir/metadata").json()
    served = {r["type"]: {p["name"] for p in r["searchParam"]}
              for r in metadata["rest"][0]["resource"]}
    assert {"code", "date", "specimen", "result"} <= served["DiagnosticReport"]
    assert {"type", "collected"} <= served["Specimen"]
    # the patient reads their own; another team's clinician, the researcher: 404
    own = verified_login(type(client)(), clinic.patient_a.user)
    assert _get(own, urls[0]).status_code == 200
    for user in (clinic.clinician_b, clinic.researcher, clinic.admin, clinic.patient_b.user):
        other = verified_login(type(client)(), user)
        for url in urls:
            assert _get(other, url).status_code in (403, 404), (user, url)
    # a withdrawn panel is gone (410), its analytes too
    urine.withdraw_panel(clinic.clinician_a, clinic.patient_a, screen, reason="wrong patient")
    assert _get(client, urls[0]).status_code == 410
    lab = LabResult.objects.filter(panel=screen).first()
    assert _get(client, f"/fhir/Observation/lab{lab.pk}").status_code == 410


# ------------------------------------------------------------------ versions and overlaps

def test_an_injection_added_at_the_sender_is_a_new_version_of_the_imported_episode(clinic,
                                                                                   tmp_path):
    _methadone, _bup, xr = record_treatment(clinic)
    fresh = make_patient(clinic.site_a, clinic.team_a, None, "x", sex="female",
                         given_name="Nia", family_name="Fresh", identifier="FRESH-5",
                         in_care_since=days_ago(200))

    def send(name):
        resources = list(Exporter(Patient.objects.filter(pk=clinic.patient_a.pk)).resources(
            ["MedicationStatement"]))
        return import_fhir(_bundle_for(resources, fresh, tmp_path / name),
                           user=clinic.clinician_a)

    assert send("one.json").ok
    treatment.add_injection(clinic.clinician_a, clinic.patient_a, xr, days_ago(1))
    report = send("two.json")
    assert report.ok, [str(p) for p in report.problems]
    assert report.created == {"TreatmentEpisode (updated)": 1}
    assert _episodes(fresh) == _episodes(clinic.patient_a)
    current = TreatmentEpisode.objects.current().get(patient=fresh, formulation="xr-injection")
    assert current.replaces_id is not None and current.follows is not None
    assert current.injection_dates[-1] == days_ago(1).isoformat()


def test_two_overlapping_episodes_of_one_drug_in_one_import_are_refused(clinic, tmp_path):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "naltrexone", "formulation": "oral-tablet", "dose_mg": "50",
        "start": days_ago(20).isoformat()})
    [ms] = [r for r in Exporter(Patient.objects.filter(pk=clinic.patient_a.pk)).resources(
        ["MedicationStatement"]) if r["id"].startswith("ep")]
    twin = json.loads(json.dumps(ms))
    twin["id"] = "ep-twin"
    twin["identifier"] = [{"system": "http://sender.example/episodes", "value": "twin"}]
    twin["effectivePeriod"] = {"start": days_ago(10).isoformat()}
    fresh = make_patient(clinic.site_a, clinic.team_a, None, "x", sex="female",
                         given_name="Nia", family_name="Fresh", identifier="FRESH-6",
                         in_care_since=days_ago(200))
    before = stored_counts()
    report = import_fhir(_bundle_for([ms, twin], fresh, tmp_path / "twins.json"),
                         user=clinic.clinician_a)
    assert [p.message for p in report.problems] == [
        f"drug: a naltrexone episode of this import (line 1) already runs from "
        f"{days_ago(20).isoformat()} to ongoing; two episodes of one drug cannot overlap"]
    assert stored_counts() == before
    assert not TreatmentEpisode.objects.filter(patient=fresh).exists()


def test_exporting_panels_takes_the_same_queries_for_3_or_12_panels(clinic):
    """Each panel is read against what was expected from rows read once per export (an
    earlier build read each panel on its own: 1,132 queries for 100 panels, 37 now)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(n):
        for i in range(n):
            urine.record_panel(clinic.clinician_a, clinic.patient_a, {
                "collected_at": ago(24 * (i + 1)), "panels": ["fentanyl"], "method": "screen",
                "analytes": {"uds-fentanyl": "negative"}})
        with CaptureQueriesContext(connection) as ctx:
            out = list(Exporter(Patient.objects.filter(pk=clinic.patient_a.pk)).resources())
        return len(ctx), sum(r["resourceType"] == "DiagnosticReport" for r in out)

    few, three = queries(3)
    many, twelve = queries(9)
    assert (three, twelve) == (3, 12)
    assert many == few


def test_a_panel_naming_another_patients_result_refuses_the_file(clinic, tmp_path):
    """A DiagnosticReport about one patient whose result is another patient's Observation:
    never merged into the panel; the whole file is refused as a patient mismatch."""
    path, fresh = _panel_bundle(clinic, tmp_path, lambda r: None)
    bundle = json.loads(path.read_text())
    analyte = next(e["resource"] for e in bundle["entry"]
                   if e["resource"]["resourceType"] == "Observation"
                   and e["resource"]["id"].startswith("lab"))
    analyte["subject"] = {"identifier": {"system": icodes.mrn_system(clinic.site_a),
                                         "value": clinic.patient_a.identifier}}
    path.write_text(json.dumps(bundle))
    before = stored_counts()
    report = import_fhir(path, user=clinic.clinician_a)
    assert any("is about another patient" in p.message and p.fatal for p in report.problems)
    assert stored_counts() == before
    assert not UrinePanel.objects.filter(patient=fresh).exists()
