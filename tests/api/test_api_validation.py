"""The API answers a mistake with the services' own messages (the ones the web shows), as
``{"errors": {field: [message]}}``, and stores nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import Assessment, DiaryDay, Dose, LabResult, Note

pytestmark = pytest.mark.django_db


def service_errors(call) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as exc:
        call()
    return exc.value.message_dict


def _hour_ago() -> dt.datetime:
    return timezone.now() - dt.timedelta(hours=1)


def test_a_craving_of_11_gets_the_services_message(clinic, api, key):
    user, patient = clinic.patient_a.user, clinic.patient_a
    response = api(user).post("/api/v1/me/diary/", {"craving": 11}, format="json", headers=key())
    assert response.status_code == 400
    expected = service_errors(lambda: services.record_diary(
        user, patient, services.DiaryInput(day=timezone.localdate(), doses=[], craving=11)))
    assert response.json() == {"errors": expected, "code": "invalid"}
    assert "10" in response.json()["errors"]["craving"][0]
    assert DiaryDay.objects.count() == 0 and Assessment.objects.count() == 0


def test_a_negative_dose_gets_the_services_message_under_the_services_key(clinic, api, key):
    user, patient = clinic.patient_a.user, clinic.patient_a
    at = _hour_ago()
    body = {"doses": [{"taken_at": at.isoformat(), "amount": 2, "unit": "g"},
                      {"taken_at": at.isoformat(), "amount": -2, "unit": "g"}]}
    response = api(user).post("/api/v1/me/diary/", body, format="json", headers=key())
    expected = service_errors(lambda: services.record_diary(user, patient, services.DiaryInput(
        day=timezone.localdate(), doses=[{"taken_at": at, "amount": Decimal(2), "unit": "g"},
                                         {"taken_at": at, "amount": Decimal(-2), "unit": "g"}])))
    assert response.status_code == 400
    assert response.json()["errors"] == expected
    assert response.json()["errors"]["doses-1-amount"] == ["The amount must be more than 0."]
    assert Dose.objects.count() == 0


def test_a_dose_without_a_time_or_with_an_unknown_unit_is_named(clinic, api, key):
    response = api(clinic.patient_a.user).post(
        "/api/v1/me/diary/", {"doses": [{"amount": 2, "unit": "spoon"}]}, format="json", headers=key())
    errors = response.json()["errors"]
    assert errors["doses-0-taken_at"] == ["Give the time the dose was taken."]
    assert errors["doses-0-unit"][0].startswith("Choose a unit:")


def test_an_empty_diary_entry_says_what_to_add(clinic, api, key):
    response = api(clinic.patient_a.user).post("/api/v1/me/diary/", {}, format="json", headers=key())
    assert response.json()["errors"] == {
        "__all__": ["Nothing to save yet: add a dose, your craving, or how you feel."]}


def test_a_diary_for_tomorrow_is_refused(clinic, api, key):
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    response = api(clinic.patient_a.user).post("/api/v1/me/diary/", {"day": tomorrow, "craving": 2},
                                               format="json", headers=key())
    assert response.json()["errors"] == {"day": ["You can only write a diary for today or an earlier day."]}


def test_a_lab_without_a_unit_gets_the_services_message(clinic, api, key):
    at = _hour_ago()
    response = api(clinic.clinician_a).post(
        f"/api/v1/patients/{clinic.patient_a.pk}/labs/",
        {"lab": "prolactin", "value": 12, "collected_at": at.isoformat()}, format="json", headers=key())
    expected = service_errors(lambda: services.record_lab(
        clinic.clinician_a, clinic.patient_a, {"lab": "prolactin", "value": Decimal(12), "collected_at": at}))
    assert response.status_code == 400
    assert response.json()["errors"] == expected
    assert "unit" in expected
    assert LabResult.objects.count() == 0


def test_an_implausible_lab_value_asks_for_confirmation_then_saves(clinic, api, key):
    url = f"/api/v1/patients/{clinic.patient_a.pk}/labs/"
    body = {"lab": "prolactin", "value": 90000, "unit": "ng/mL", "collected_at": _hour_ago().isoformat()}
    client = api(clinic.clinician_a)
    first = client.post(url, body, format="json", headers=key())
    assert first.status_code == 400 and first.json()["code"] == "needs_confirmation"
    assert "value" in first.json()["errors"]
    second = client.post(url, {**body, "confirmed_unusual": True}, format="json", headers=key())
    assert second.status_code == 201 and second.json()["confirmed_unusual"] is True


def test_a_cows_pupil_score_of_3_is_refused_naming_the_item(clinic, api, key):
    from speciosa.knowledge import instruments

    items = {i.id: i.allowed[0] for i in instruments.get_instrument("cows").items}
    items["pupil"] = 3
    response = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/assessments/",
                                            {"instrument": "cows", "items": items}, format="json",
                                            headers=key())
    expected = service_errors(lambda: services.record_assessment(
        clinic.clinician_a, clinic.patient_a, "cows", items))
    assert response.status_code == 400 and response.json()["errors"] == expected
    assert "pupil" in expected


def test_a_blank_note_gets_the_services_message(clinic, api, key):
    response = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/notes/",
                                            {"text": "   "}, format="json", headers=key())
    assert response.json()["errors"] == {"text": ["Write the note before saving."]}
    assert Note.objects.count() == 0


def test_a_correction_without_a_reason_gets_the_services_message(clinic, api, key, records):
    note = records["a"]["note"]
    response = api(clinic.clinician_a).post(
        f"/api/v1/patients/{clinic.patient_a.pk}/records/note/{note.pk}/corrections/",
        {"reason": " ", "text": "better"}, format="json", headers=key())
    assert response.json()["errors"] == {"reason": ["Say why this entry is being corrected."]}


def test_a_correction_with_a_field_the_record_does_not_have_is_refused(clinic, api, key, records):
    note = records["a"]["note"]
    response = api(clinic.clinician_a).post(
        f"/api/v1/patients/{clinic.patient_a.pk}/records/note/{note.pk}/corrections/",
        {"reason": "typo", "amount": 3}, format="json", headers=key())
    assert response.json()["errors"] == {"amount": ["A note has no field 'amount' to correct."]}


@pytest.mark.parametrize("body, field", [
    ({"craving": "5"}, "craving"), ({"craving": True}, "craving"),
    ({"doses": [{"amount": "2", "unit": "g"}]}, "doses-0-amount"),
    ({"side_effects": "nausea"}, "side_effects"), ({"sows": {"nausea": "1"}}, "sows-nausea"),
])
def test_values_of_the_wrong_json_type_are_refused_before_the_services(clinic, api, key, body, field):
    response = api(clinic.patient_a.user).post("/api/v1/me/diary/", body, format="json", headers=key())
    assert response.status_code == 400 and field in response.json()["errors"]


def test_text_with_a_nul_character_is_refused(clinic, api, key):
    response = api(clinic.patient_a.user).post("/api/v1/me/diary/", {"sows": {"a\u0000": 1}},
                                               format="json", headers=key())
    assert response.status_code == 400 and "NUL" in response.json()["errors"]["__all__"][0]


def test_a_create_without_an_idempotency_key_is_refused_with_a_clear_message(clinic, api):
    response = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/notes/",
                                            {"text": "hello"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["Idempotency-Key"][0].startswith("Send an Idempotency-Key header")
    assert Note.objects.count() == 0
