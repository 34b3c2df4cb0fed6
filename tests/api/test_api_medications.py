"""Issue 19: the medication endpoints. The same validation as the pages (the services'
messages), the Idempotency-Key handling of every create, 404 for another patient's
medication, and the access matrix: every role by every authentication path."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import medications
from speciosa.clinic.models import AuditEntry, Medication, MedicationReview

from .conftest import API_AUTH_PATHS, OUTSIDERS, STALE_TOKENS, call, user_of

pytestmark = pytest.mark.django_db


def today():
    return timezone.localdate()


def bup_body(**over):
    body = {"drug": "buprenorphine", "name": "Subutex", "strength": 8, "strength_unit": "mg",
            "form": "sublingual-tablet", "dose_amount": 2, "dose_unit": "tablet",
            "frequency": "once daily", "route": "sublingual", "prescriber": "clinic",
            "start": (today() - dt.timedelta(days=10)).isoformat()}
    body.update(over)
    return body


def seed(clinic, patient, **kw):
    clinician = clinic.clinician_a if patient == clinic.patient_a else clinic.clinician_b
    data = {"drug": "alprazolam", "dose_amount": "0.5", "dose_unit": "mg",
            "start": today() - dt.timedelta(days=5), "prescriber": "outside"}
    data.update(kw)
    return medications.record_medication(clinician, patient, data)


def base(patient):
    return f"/api/v1/patients/{patient.pk}/medications/"


def test_create_list_change_stop_and_history(clinic, api, key):
    client = api(clinic.clinician_a)
    created = client.post(base(clinic.patient_a), bup_body(), format="json", headers=key())
    assert created.status_code == 201, created.content
    med = created.json()
    assert (med["drug"], med["name"], med["rxnorm"], med["coded"], med["dose_amount"]) == (
        "buprenorphine", "Subutex", "1819", True, 2.0)
    listed = client.get(base(clinic.patient_a)).json()
    assert [m["id"] for m in listed["results"]] == [med["id"]]
    one = client.get(f"{base(clinic.patient_a)}{med['id']}/").json()
    assert one["name"] == "Subutex"

    changed = client.post(f"{base(clinic.patient_a)}{med['id']}/change/",
                          {"dose_amount": 3, "reason": "cravings"}, format="json", headers=key())
    assert changed.status_code == 201, changed.content
    new = changed.json()
    old = Medication.objects.get(pk=new["follows"])
    assert (new["dose_amount"], old.status, old.dose_amount, old.replaces_id) == (
        3.0, "stopped", 2, med["id"])

    stopped = client.post(f"{base(clinic.patient_a)}{new['id']}/stop/",
                          {"stop_reason": "moved to injection", "at": today().isoformat()},
                          format="json", headers=key())
    assert stopped.status_code == 201, stopped.content
    assert (stopped.json()["status"], stopped.json()["end"]) == ("stopped", today().isoformat())
    history = client.get(f"/api/v1/patients/{clinic.patient_a.pk}/records/medication/"
                         f"{stopped.json()['id']}/history/").json()
    assert [v["status"] for v in history["results"]] == ["stopped", "active"]
    actions = set(AuditEntry.objects.filter(model="Medication").values_list("action", flat=True))
    assert {"create", "stop"} <= actions


def test_free_text_is_not_coded(clinic, api, key):
    response = api(clinic.clinician_a).post(base(clinic.patient_a), {
        "name": "Zyzzolex", "start": today().isoformat()}, format="json", headers=key())
    assert response.status_code == 201 and response.json()["coded"] is False
    assert response.json()["drug"] == "" and response.json()["rxnorm"] == ""


@pytest.mark.parametrize(("body", "field", "text"), [
    ({"end": "2000-01-01", "status": "stopped"}, "end", "before the start"),
    ({"end": (today() - dt.timedelta(days=20)).isoformat(), "status": "stopped"}, "end",
     "before the start"),
    ({"strength_unit": "mgs"}, "strength_unit", "Unknown unit 'mgs'"),
    ({"dose_unit": "spoonful"}, "dose_unit", "Unknown unit 'spoonful'"),
    ({"strength": 8000000}, "strength", "at most"),
    ({"strength": -1}, "strength", "more than 0"),
    ({"strength": "8"}, "strength", "Send a number"),
    ({"strength": "1,5"}, "strength", "point"),
    ({"drug": "benzodiazepine"}, "drug", "not a drug in the table"),
    ({"rxnorm": "6813"}, "rxnorm", "not buprenorphine"),
    ({"start": (today() + dt.timedelta(days=2)).isoformat()}, "start", "future"),
    ({"start": "2026-01-01T08:00"}, "start", "time zone"),
    ({"route": "ear"}, "route", "Unknown route"),
    ({"dose_unti": "mg"}, "__all__", "Unknown field(s): dose_unti"),
])
def test_bad_input_is_a_400_with_the_message_and_stores_nothing(clinic, api, key, body, field,
                                                                 text):
    response = api(clinic.clinician_a).post(base(clinic.patient_a), bup_body(**body),
                                            format="json", headers=key())
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors and text in " ".join(errors[field]), errors
    assert not Medication.objects.exists()


def test_an_overlapping_duplicate_is_refused(clinic, api, key):
    client = api(clinic.clinician_a)
    assert client.post(base(clinic.patient_a), bup_body(), format="json",
                       headers=key()).status_code == 201
    again = client.post(base(clinic.patient_a), bup_body(name="Suboxone"), format="json",
                        headers=key())
    assert again.status_code == 400 and "already on the list" in again.json()["errors"]["drug"][0]
    assert Medication.objects.count() == 1


def test_stop_before_start_and_a_change_of_drug_are_refused(clinic, api, key):
    med = seed(clinic, clinic.patient_a)
    client = api(clinic.clinician_a)
    url = f"{base(clinic.patient_a)}{med.pk}"
    early = (today() - dt.timedelta(days=30)).isoformat()
    response = client.post(f"{url}/stop/", {"stop_reason": "x", "at": early}, format="json",
                           headers=key())
    assert response.status_code == 400 and "before the start" in response.json()["errors"]["end"][0]
    response = client.post(f"{url}/stop/", {"stop_reason": ""}, format="json", headers=key())
    assert "Say why" in response.json()["errors"]["stop_reason"][0]
    response = client.post(f"{url}/change/", {"drug": "diazepam", "reason": "x"}, format="json",
                           headers=key())
    assert response.status_code == 400 and "stop this one" in response.json()["errors"]["drug"][0]
    assert Medication.objects.count() == 1 and Medication.objects.get().status == "active"


def test_a_replayed_key_returns_the_first_answer_and_stores_once(clinic, api, key):
    client = api(clinic.clinician_a)
    headers = key()
    first = client.post(base(clinic.patient_a), bup_body(), format="json", headers=headers)
    second = client.post(base(clinic.patient_a), bup_body(), format="json", headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second["Idempotent-Replayed"] == "true" and second.json()["id"] == first.json()["id"]
    other_body = client.post(base(clinic.patient_a), bup_body(frequency="twice daily"),
                             format="json", headers=headers)
    assert other_body.status_code == 422
    mid = first.json()["id"]
    stop_key = key()
    body = {"stop_reason": "done"}
    a = client.post(f"{base(clinic.patient_a)}{mid}/stop/", body, format="json", headers=stop_key)
    b = client.post(f"{base(clinic.patient_a)}{mid}/stop/", body, format="json", headers=stop_key)
    assert (a.status_code, b.status_code) == (201, 200) and a.json()["id"] == b.json()["id"]
    # the same key on another endpoint is another submission; on another kind: refused
    reused = client.post(f"/api/v1/patients/{clinic.patient_a.pk}/medication-reviews/", {},
                         format="json", headers=stop_key)
    assert reused.status_code == 201
    assert Medication.objects.filter(status="stopped").count() == 1
    assert Medication.objects.count() == 2  # the entry and its stopped version


def test_the_patient_adds_and_the_clinician_confirms(clinic, api, key):
    patient = api(clinic.patient_a.user)
    response = patient.post("/api/v1/me/medications/", {
        "name": "magnesium", "category": "supplement", "prescriber": "none",
        "start": today().isoformat()}, format="json", headers=key())
    assert response.status_code == 201, response.content
    med = response.json()
    assert (med["source"], med["confirmed_at"]) == ("patient", None)
    refused = patient.post("/api/v1/me/medications/", bup_body(), format="json", headers=key())
    assert refused.status_code == 400 and "prescriber" in refused.json()["errors"]
    assert [m["name"] for m in patient.get("/api/v1/me/medications/").json()["results"]] == [
        "magnesium"]

    clinician = api(clinic.clinician_a)
    url = f"{base(clinic.patient_a)}{med['id']}/confirmation/"
    assert clinician.post(url, {"note": "x"}, format="json", headers=key()).status_code == 400
    confirmed = clinician.post(url, {}, format="json", headers=key())
    assert confirmed.status_code == 201 and confirmed.json()["confirmed_by"] == "Ada Okafor"
    again = clinician.post(f"{base(clinic.patient_a)}{confirmed.json()['id']}/confirmation/", {},
                           format="json", headers=key())
    assert again.status_code == 400 and "already confirmed" in str(again.json())


def test_a_medication_review(clinic, api, key):
    med = seed(clinic, clinic.patient_a)
    client = api(clinic.clinician_a)
    url = f"/api/v1/patients/{clinic.patient_a.pk}/medication-reviews/"
    response = client.post(url, {"note": "reconciled with the pharmacy list"}, format="json",
                           headers=key())
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["medications"] == [med.pk] and body["entered_by"] == "Ada Okafor"
    assert [r["id"] for r in client.get(url).json()["results"]] == [body["id"]]
    too_long = client.post(url, {"note": "x" * 1001}, format="json", headers=key())
    assert too_long.status_code == 400
    assert MedicationReview.objects.count() == 1


def test_another_patients_medication_under_my_patients_url_is_a_404(clinic, api, key):
    theirs = seed(clinic, clinic.patient_b, notes="secret")
    client = api(clinic.clinician_a)
    url = f"{base(clinic.patient_a)}{theirs.pk}"
    assert client.get(f"{url}/").status_code == 404
    for suffix, body in (("change/", {"dose_amount": 1, "reason": "x"}),
                         ("stop/", {"stop_reason": "x"}), ("confirmation/", {})):
        response = client.post(f"{url}/{suffix}", body, format="json", headers=key())
        assert response.status_code == 404, suffix
        assert b"secret" not in response.content and b"alprazolam" not in response.content
    for nonsense in ("abc", "0", "1e3", "99999999999999999999"):
        assert client.get(f"{base(clinic.patient_a)}{nonsense}/").status_code == 404
    assert Medication.objects.count() == 1 and Medication.objects.get().status == "active"


# --------------------------------------------------------------------------- access matrix


def requests_for(patient, med, review_note="seen"):
    b = base(patient)
    return [
        ("get", b, None),
        ("post", b, {"name": "melatonin", "start": today().isoformat()}),
        ("get", f"{b}{med.pk}/", None),
        ("post", f"{b}{med.pk}/change/", {"dose_amount": 1, "dose_unit": "capsule",
                                          "reason": "less sleepy"}),
        ("post", f"{b}{med.pk}/stop/", {"stop_reason": "done"}),
        ("post", f"{b}{med.pk}/confirmation/", {}),
        ("get", f"/api/v1/patients/{patient.pk}/medication-reviews/", None),
        ("post", f"/api/v1/patients/{patient.pk}/medication-reviews/", {"note": review_note}),
    ]


@pytest.mark.parametrize("path", API_AUTH_PATHS)
def test_the_care_teams_clinician_uses_every_medication_endpoint(clinic, api_as, key, path):
    reported = medications.record_medication(clinic.patient_a.user, clinic.patient_a, {
        "name": "valerian", "start": today(), "prescriber": "none"})
    client = api_as(clinic.clinician_a, path)
    reqs = requests_for(clinic.patient_a, reported)
    # change then stop the same entry: each on the current version
    for method, url, body in reqs:
        current = Medication.objects.current().filter(name="valerian", status="active").first()
        if current is not None:
            url = url.replace(f"medications/{reported.pk}/", f"medications/{current.pk}/")
        if url.endswith("/confirmation/"):
            continue  # confirmed below, before it is changed
        response = call(client, method, url, body, key)
        assert response.status_code in (200, 201), (url, response.status_code, response.content)
    other = medications.record_medication(clinic.patient_a.user, clinic.patient_a, {
        "name": "chamomile", "start": today(), "prescriber": "none"})
    response = client.post(f"{base(clinic.patient_a)}{other.pk}/confirmation/", {},
                           format="json", headers=key())
    assert response.status_code == 201


@pytest.mark.parametrize("path", API_AUTH_PATHS)
@pytest.mark.parametrize(("who", "expected"), OUTSIDERS)
def test_nobody_else_reaches_the_medication_endpoints(clinic, api_as, key, path, who, expected):
    med = seed(clinic, clinic.patient_a, notes="secret")
    client = api_as(user_of(clinic, who), path)
    audited = AuditEntry.objects.filter(patient=clinic.patient_a).count()
    for method, url, body in requests_for(clinic.patient_a, med):
        response = call(client, method, url, body, key)
        assert response.status_code == expected, (who, path, url, response.status_code)
        assert b"secret" not in response.content and b"Quinn" not in response.content
    assert Medication.objects.count() == 1 and not MedicationReview.objects.exists()
    assert Medication.objects.get().status == "active"
    assert AuditEntry.objects.filter(patient=clinic.patient_a).count() == audited


@pytest.mark.parametrize("path", STALE_TOKENS)
@pytest.mark.parametrize("who", ["clinician_a", "patient_a"])
def test_a_dead_token_reaches_no_medication_endpoint(clinic, api_as, key, path, who):
    med = seed(clinic, clinic.patient_a, notes="secret")
    client = api_as(user_of(clinic, who), path)
    for method, url, body in [*requests_for(clinic.patient_a, med),
                              ("get", "/api/v1/me/medications/", None),
                              ("post", "/api/v1/me/medications/", {"name": "x", "start": "2026-01-01"})]:
        response = call(client, method, url, body, key)
        assert response.status_code == 401, (who, path, url, response.status_code)
        assert b"secret" not in response.content
    assert Medication.objects.count() == 1


@pytest.mark.parametrize("path", API_AUTH_PATHS)
@pytest.mark.parametrize(("who", "expected"), [
    ("patient_a", (200, 201)), ("patient_b", (200, 201)), ("clinician_a", (403, 403)),
    ("researcher", (403, 403)), ("admin", (403, 403)), ("anonymous", (401, 401))])
def test_only_patients_use_their_own_medication_list(clinic, api_as, key, path, who, expected):
    seed(clinic, clinic.patient_a, notes="secret about Maya")
    client = api_as(user_of(clinic, who), path)
    listed = client.get("/api/v1/me/medications/")
    assert listed.status_code == expected[0]
    if who == "patient_b":
        assert listed.json()["results"] == [] and b"secret" not in listed.content
    if who == "patient_a":
        assert [m["drug"] for m in listed.json()["results"]] == ["alprazolam"]
    response = client.post("/api/v1/me/medications/", {
        "name": "fish oil", "category": "supplement", "prescriber": "none",
        "start": today().isoformat()}, format="json", headers=key())
    assert response.status_code == expected[1], response.content
    stored = Medication.objects.filter(name="fish oil")
    if expected[1] == 201:
        owner = clinic.patient_a if who == "patient_a" else clinic.patient_b
        assert stored.get().patient == owner and stored.get().source == "patient"
    else:
        assert not stored.exists()
