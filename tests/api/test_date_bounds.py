"""Issue 11, item 8: clinical dates are accepted only within a plausible window (from
``DAYS_BEFORE_CARE`` days before entry into care, default 365, to now), refused with a
message in the web, the API and the FHIR import (nothing stored), and dates at the ends of
the calendar never make a 500 (diary page, FHIR date filters)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import Assessment, AuditEntry, DiaryDay, Dose, LabResult
from speciosa.interop import codes as icodes
from speciosa.interop.importer import import_fhir

UTC = dt.UTC


def _dose(at: dt.datetime) -> dict:
    return {"taken_at": at.isoformat(), "amount": 2, "unit": "g"}


@pytest.mark.parametrize("taken_at", [dt.datetime(1900, 1, 1, 9, tzinfo=UTC),
                                      dt.datetime(1, 1, 1, 0, 0, tzinfo=UTC),
                                      dt.datetime(9999, 12, 31, 23, 59, tzinfo=UTC)])
@pytest.mark.django_db
def test_a_dose_dated_1900_year_1_or_9999_is_refused_by_the_api_and_nothing_is_stored(clinic, api, key,
                                                                                         taken_at):
    user = clinic.patient_a.user
    response = api(user).post("/api/v1/me/diary/", {"doses": [_dose(taken_at)], "craving": 3},
                              format="json", headers=key())
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert "doses-0-taken_at" in errors, errors
    message = errors["doses-0-taken_at"][0]
    if taken_at.year < 2000:
        assert "outside the dates this record accepts" in message and "Check the year" in message
        earliest = clinic.patient_a.in_care_since - dt.timedelta(days=365)
        assert earliest.isoformat() in message
    else:
        assert "in the future" in message
    assert Dose.objects.count() == DiaryDay.objects.count() == Assessment.objects.count() == 0


@pytest.mark.parametrize("day", ["0001-01-01", "1900-01-01", "9999-12-31"])
@pytest.mark.django_db
def test_a_diary_day_at_the_ends_of_the_calendar_is_refused_with_a_message(clinic, api, key, day):
    response = api(clinic.patient_a.user).post("/api/v1/me/diary/", {"day": day, "craving": 3},
                                               format="json", headers=key())
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["day"]
    assert DiaryDay.objects.count() == 0


@pytest.mark.parametrize("day", ["0001-01-01", "1900-01-01"])
@pytest.mark.django_db
def test_the_diary_page_for_day_0001_01_01_is_a_404_not_a_500(clinic, login, day):
    from tests.conftest import form_token

    client = login(clinic.patient_a.user)
    assert client.get(f"/me/diary/{day}/").status_code == 404
    response = client.post(f"/me/diary/{day}/", {"token": form_token("d"), "craving": "3",
                                                 "doses-TOTAL_FORMS": "0", "doses-INITIAL_FORMS": "0"})
    assert response.status_code == 404
    assert DiaryDay.objects.count() == 0
    assert client.get(f"/api/v1/me/diary/{day}/").status_code in (401, 403, 404)


@pytest.mark.django_db
def test_the_window_starts_the_configured_days_before_entry_into_care(clinic, settings):
    patient = clinic.patient_a
    settings.DAYS_BEFORE_CARE = 30
    inside = timezone.now() - dt.timedelta(days=29)
    outside = timezone.now() - dt.timedelta(days=32)
    lab = {"lab": "prolactin", "value": 9, "unit": "ng/mL"}
    assert services.record_lab(clinic.clinician_a, patient, {**lab, "collected_at": inside}).pk
    with pytest.raises(Exception, match="30 days before entry into care") as info:
        services.record_lab(clinic.clinician_a, patient, {**lab, "collected_at": outside})
    assert "collected_at" in info.value.message_dict
    assert LabResult.objects.count() == 1


@pytest.mark.django_db
def test_a_lab_or_an_assessment_dated_1900_is_refused_by_the_api(clinic, api, key):
    from speciosa.knowledge import instruments

    client = api(clinic.clinician_a)
    base = f"/api/v1/patients/{clinic.patient_a.pk}"
    lab = client.post(f"{base}/labs/", {"lab": "prolactin", "value": 9, "unit": "ng/mL",
                                        "collected_at": "1900-01-01T09:00:00Z"}, format="json", headers=key())
    assert lab.status_code == 400 and "outside the dates" in lab.json()["errors"]["collected_at"][0]
    items = {i.id: 0 for i in instruments.get_instrument("gad7").items}
    assessment = client.post(f"{base}/assessments/", {"instrument": "gad7", "items": items,
                                                      "at": "1900-01-01T09:00:00Z"},
                             format="json", headers=key())
    assert assessment.status_code == 400 and "outside the dates" in assessment.json()["errors"]["at"][0]
    assert LabResult.objects.count() == Assessment.objects.count() == 0


@pytest.mark.django_db
def test_a_correction_cannot_move_a_dose_to_1900(clinic, api, key):
    patient = clinic.patient_a
    diary = services.record_diary(patient.user, patient, services.DiaryInput(
        day=timezone.localdate(), doses=[{"taken_at": timezone.now() - dt.timedelta(minutes=5),
                                           "amount": "2", "unit": "g"}]))
    dose = diary.doses.get()
    response = api(clinic.clinician_a).post(
        f"/api/v1/patients/{patient.pk}/records/dose/{dose.pk}/corrections/",
        {"reason": "typo", "taken_at": "1900-01-01T09:00:00Z"}, format="json", headers=key())
    assert response.status_code == 400, response.content
    assert Dose.objects.count() == 1 and not Dose.objects.get().superseded


@pytest.mark.django_db
def test_the_web_lab_form_refuses_a_sample_dated_1900(clinic, login):
    from tests.conftest import form_token

    response = login(clinic.clinician_a).post(f"/patients/{clinic.patient_a.pk}/labs/new/", {
        "token": form_token("l"), "lab": "prolactin", "collected_at": "1900-01-01T09:00",
        "value": "12", "unit": "ng/mL"})
    assert response.status_code == 200
    assert "outside the dates this record accepts" in response.content.decode()
    assert LabResult.objects.count() == 0


def _observation(patient, when: str) -> dict:
    return {"resourceType": "Observation", "id": "o1",
            "identifier": [{"system": "urn:example:lab", "value": "L1900"}], "status": "final",
            "category": [{"coding": [{"system": icodes.OBS_CATEGORY, "code": "laboratory"}]}],
            "code": {"coding": [{"system": icodes.LOINC, "code": "2842-3"}]},
            "subject": {"identifier": {"system": icodes.mrn_system(patient.site.name),
                                    "value": patient.identifier}},
            "effectiveDateTime": when,
            "valueQuantity": {"value": 12.5, "unit": "ng/mL", "system": icodes.UCUM, "code": "ng/mL"}}


@pytest.mark.parametrize("when", ["1900-01-01T09:00:00+00:00", "0001-01-01T00:00:00+00:00",
                                  "9999-12-31T23:59:59+00:00"])
@pytest.mark.django_db
def test_the_fhir_import_refuses_a_date_outside_the_window_and_stores_nothing(clinic, tmp_path, when):
    path = tmp_path / "Observation.ndjson"
    path.write_text(json.dumps(_observation(clinic.patient_a, when)) + "\n")
    before = AuditEntry.objects.count()
    report = import_fhir(path)
    assert not report.ok
    assert any("outside the dates" in p.message or "future" in p.message for p in report.problems)
    # nothing stored; the refusal itself is audited (issue 14)
    assert LabResult.objects.count() == 0
    assert AuditEntry.objects.exclude(action="import-refused").count() == before
    assert AuditEntry.objects.filter(action="import-refused").count() == 1


@pytest.mark.parametrize("query", ["date=lt9999-12-31", "date=le9999-12-31T23:59:59Z", "date=gt0001-01-01",
                                   "date=9999-12-31", "date=0001-01-01", "date=sa9999-12-31",
                                   "date=eb0001-01-01", "date=ge9999", "date=lt0001"])
@pytest.mark.django_db
def test_a_fhir_date_filter_at_the_ends_of_the_calendar_is_never_a_500(clinic, api, query):
    services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "prolactin", "value": 9, "unit": "ng/mL", "collected_at": timezone.now() - dt.timedelta(hours=1)})
    response = api(clinic.clinician_a).get(f"/fhir/Observation?{query}")
    assert response.status_code in (200, 400), response.content[:500]
    body = response.json()
    if response.status_code == 400:
        assert body["resourceType"] == "OperationOutcome"
        return
    ids = [e["resource"]["id"] for e in body.get("entry", [])]
    op = query.split("=", 1)[1][:2]
    # the one lab is in the result exactly when the comparison holds for it
    expected = op in ("lt", "le", "gt", "eb") and query not in ("date=lt0001", "date=eb0001-01-01")
    assert bool(ids) == expected, (query, ids)


@pytest.mark.django_db
def test_a_dose_on_another_day_than_its_diarys_is_refused_by_the_api_and_nothing_is_stored(clinic, api, key):
    # the web form takes a time on the diary's day; the API took any date, and a dose of
    # today filed under a diary of five days ago counted on that day for the rules
    user = clinic.patient_a.user
    day = timezone.localdate() - dt.timedelta(days=5)
    at = timezone.now() - dt.timedelta(hours=1)
    response = api(user).post("/api/v1/me/diary/", {"day": day.isoformat(), "doses": [_dose(at)],
                                                    "craving": 3}, format="json", headers=key())
    assert response.status_code == 400, response.content
    message = response.json()["errors"]["doses-0-taken_at"][0]
    assert f"{day:%-d %B %Y}" in message and "taken on that day" in message
    assert Dose.objects.count() == DiaryDay.objects.count() == Assessment.objects.count() == 0
    # on the diary's day in a zone far east or west of UTC: the same date, accepted
    for when in (dt.datetime.combine(day, dt.time(0, 30), tzinfo=dt.timezone(dt.timedelta(hours=13))),
                 dt.datetime.combine(day, dt.time(23, 0), tzinfo=dt.timezone(dt.timedelta(hours=-10)))):
        response = api(user).post("/api/v1/me/diary/", {"day": day.isoformat(), "doses": [_dose(when)]},
                                  format="json", headers=key())
        assert response.status_code == 201, response.content
    assert Dose.objects.filter(diary__day=day).count() == 2
