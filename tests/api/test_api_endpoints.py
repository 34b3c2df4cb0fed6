"""What each endpoint returns: the same data the browser shows, through the same selectors."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic.models import AuditEntry
from speciosa.knowledge import instruments as kinstruments

pytestmark = pytest.mark.django_db


def test_the_patient_list_carries_the_summary_and_the_reasons_for_attention(clinic, api):
    row = api(clinic.clinician_a).get("/api/v1/patients/").json()["results"][0]
    assert row["family_name"] == "Quinn" and row["care_team"] == "Team A" and row["site"] == "Site A"
    assert row["age"] == clinic.patient_a.age_on(timezone.localdate())
    assert row["last_diary"] is None and "no diary for 7+ days" in row["abnormal"]


def test_the_patient_list_searches_by_name(clinic, api):
    client = api(clinic.clinician_a)
    assert client.get("/api/v1/patients/", {"q": "qui"}).json()["count"] == 1
    assert client.get("/api/v1/patients/", {"q": "Reyes"}).json()["count"] == 0


def test_opening_a_patient_is_audited(clinic, api):
    response = api(clinic.clinician_a).get(f"/api/v1/patients/{clinic.patient_a.pk}/")
    assert response.status_code == 200 and response.json()["identifier"] == clinic.patient_a.identifier
    assert AuditEntry.objects.filter(action="view", patient=clinic.patient_a,
                                     user=clinic.clinician_a).count() == 1


def test_an_assessment_is_scored_by_the_one_scorer(clinic, api, key):
    inst = kinstruments.get_instrument("gad7")
    items = {i.id: i.allowed[-1] for i in inst.items}
    response = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/assessments/",
                                            {"instrument": "gad7", "items": items, "note": "n"},
                                            format="json", headers=key())
    body = response.json()
    score = kinstruments.score(inst, items, sex="female")
    assert response.status_code == 201
    assert (body["total"], body["band"], body["instrument_version"]) == (score.total, score.band, inst.version)


def test_a_cows_takes_the_measured_pulse(clinic, api, key):
    inst = kinstruments.get_instrument("cows")
    items = {i.id: i.allowed[0] for i in inst.items if i.id != "pulse"} | {"pulse-bpm": 110}
    response = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/assessments/",
                                            {"instrument": "cows", "items": items}, format="json",
                                            headers=key())
    body = response.json()
    assert response.status_code == 201
    assert body["items"]["pulse-bpm"] == 110 and body["total"] == 2  # 101-120 beats/min scores 2


def test_a_patient_rated_instrument_is_not_a_clinician_assessment(clinic, api, key):
    response = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/assessments/",
                                            {"instrument": "sows", "items": {}}, format="json", headers=key())
    assert response.status_code == 400 and "instrument" in response.json()["errors"]


def test_a_lab_is_converted_and_flagged(clinic, api, key):
    at = (timezone.now() - dt.timedelta(hours=2)).isoformat()
    response = api(clinic.clinician_a).post(f"/api/v1/patients/{clinic.patient_a.pk}/labs/",
                                            {"lab": "prolactin", "value": 636, "unit": "m[IU]/L",
                                             "collected_at": at}, format="json", headers=key())
    body = response.json()
    assert response.status_code == 201
    assert body["canonical_unit"] == "ng/mL" and body["canonical_value"] == pytest.approx(30, rel=1e-6)
    assert body["flag"]


def test_a_correction_keeps_the_history_and_the_timeline_shows_the_current_version(clinic, api, key, records):
    lab = records["a"]["lab"]
    client = api(clinic.clinician_a)
    base = f"/api/v1/patients/{clinic.patient_a.pk}"
    new = client.post(f"{base}/records/lab/{lab.pk}/corrections/", {"reason": "wrong value", "value": 14},
                      format="json", headers=key()).json()
    assert new["value"] == 14 and new["replaces"] == lab.pk and new["change_reason"] == "wrong value"
    history = client.get(f"{base}/records/lab/{lab.pk}/history/").json()["results"]
    assert [v["id"] for v in history] == [new["id"], lab.pk]
    assert [v["superseded"] for v in history] == [False, True]
    labs = [e for e in client.get(f"{base}/timeline/").json()["results"] if e["kind"] == "lab"]
    assert [e["record_id"] for e in labs] == [new["id"]] and labs[0]["corrected"] is True


def test_a_dose_correction_with_nothing_changed_asks_for_the_value(clinic, api, key, records):
    dose = records["a"]["dose"]
    response = api(clinic.clinician_a).post(
        f"/api/v1/patients/{clinic.patient_a.pk}/records/dose/{dose.pk}/corrections/", {"reason": "x"},
        format="json", headers=key())
    assert response.status_code == 400 and "__all__" in response.json()["errors"]


def test_a_withdrawn_record_stays_on_the_timeline_marked(clinic, api, records):
    note = records["a"]["note"]
    client = api(clinic.clinician_a)
    base = f"/api/v1/patients/{clinic.patient_a.pk}"
    client.post(f"{base}/records/note/{note.pk}/retraction/", {"reason": "wrong patient"}, format="json")
    notes = {e["record_id"]: e for e in client.get(f"{base}/timeline/").json()["results"] if e["kind"] == "note"}
    assert notes[note.pk]["retracted"] is True


def test_a_withdrawal_needs_a_reason(clinic, api, records):
    note = records["a"]["note"]
    response = api(clinic.clinician_a).post(
        f"/api/v1/patients/{clinic.patient_a.pk}/records/note/{note.pk}/retraction/", {"reason": ""},
        format="json")
    assert response.json()["errors"] == {"reason": ["Say why this entry is being withdrawn."]}


def test_a_patient_writes_and_reads_their_diary(clinic, api, key):
    client = api(clinic.patient_a.user)
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    taken = timezone.make_aware(dt.datetime.combine(yesterday, dt.time(9)))
    body = {"day": yesterday.isoformat(), "craving": 6, "side_effects": ["constipation"],
            "substances": ["alcohol"], "substance_detail": "two beers",
            "doses": [{"taken_at": taken.isoformat(), "amount": 3, "unit": "g", "product": "Green Maeng Da"}]}
    created = client.post("/api/v1/me/diary/", body, format="json", headers=key())
    assert created.status_code == 201
    day = client.get(f"/api/v1/me/diary/{yesterday.isoformat()}/").json()
    assert day["day"] == yesterday.isoformat() and day["craving"] == 6
    assert day["side_effects"] == ["constipation"] and day["substances"][0]["name"] == "alcohol"
    assert day["doses"][0]["product"] == "Green Maeng Da" and day["doses"][0]["mitragynine_mg"] > 0
    client.post("/api/v1/me/diary/", {"day": yesterday.isoformat(), "craving": 2}, format="json", headers=key())
    listed = client.get("/api/v1/me/diary/").json()
    assert listed["count"] == 1 and listed["results"][0]["craving"] == 2  # the latest rating that day
    assert client.get("/api/v1/me/diary/not-a-date/").status_code == 404


def test_the_catalogues_describe_instruments_and_labs(clinic, api):
    client = api(clinic.patient_a.user)
    cows = client.get("/api/v1/instruments/cows/").json()
    assert cows["completed_by"] == "clinician" and cows["items"][0]["values"]
    assert any(i["measurement"] for i in cows["items"])
    assert client.get("/api/v1/instruments/nope/").status_code == 404
    labs = {lab["code"]: lab for lab in client.get("/api/v1/labs/", {"page_size": 200}).json()["results"]}
    assert "ng/mL" in labs["prolactin"]["units"] and labs["prolactin"]["canonical_unit"] == "ng/mL"


def test_an_implausible_diary_dose_is_a_400_needs_confirmation_until_confirmed(clinic, api, key):
    client = api(clinic.patient_a.user)
    taken = timezone.now() - dt.timedelta(hours=1)
    dose = {"taken_at": taken.isoformat(), "amount": 200, "unit": "capsule", "grams_per_capsule": 0.5}
    asked = client.post("/api/v1/me/diary/", {"doses": [dose]}, format="json", headers=key())
    assert asked.status_code == 400 and asked.json()["code"] == "needs_confirmation"
    assert "far above what people report" in asked.json()["errors"]["doses-0-amount"][0]
    done = client.post("/api/v1/me/diary/", {"doses": [{**dose, "confirmed_unusual": True}]}, format="json",
                       headers=key())
    assert done.status_code == 201 and done.json()["doses"][0]["confirmed_unusual"] is True
