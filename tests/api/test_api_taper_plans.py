"""Issue 19, taper plans by the API: the service's messages under their fields, nothing
stored on a refusal, Idempotency-Key (replay 200, another body 422), corrections,
replacements and stops keeping the history, the plan against the diary, 404 for another
patient's plan, and every role by every authentication path."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from speciosa.clinic import taper, treatment
from speciosa.clinic.models import AuditEntry, DiaryDay, Dose, TaperPlan

from .conftest import API_AUTH_PATHS, OUTSIDERS, STALE_TOKENS, call, user_of

pytestmark = pytest.mark.django_db


def day(n):
    return timezone.localdate() + dt.timedelta(days=n)


def base(patient):
    return f"/api/v1/patients/{patient.pk}/taper-plans/"


def body(start=None, **over):
    start = start or day(-3)
    steps = [{"start": (start + dt.timedelta(days=7 * w)).isoformat(),
              "end": (start + dt.timedelta(days=7 * w + 6)).isoformat(), "amount": a,
              "unit": "g", "doses_per_day": 2} for w, a in enumerate(("2", "1.5", "1", "0.5"))]
    data = {"kind": "kratom", "reason": "secret: agreed four weeks", "steps": steps}
    data.update(over)
    return data


def seed(clinic, patient):
    clinician = clinic.clinician_a if patient == clinic.patient_a else clinic.clinician_b
    return taper.record_plan(clinician, patient, body())


def test_create_list_read_correct_replace_and_stop(clinic, api, key):
    client = api(clinic.clinician_a)
    b = base(clinic.patient_a)
    headers = key()
    created = client.post(b, body(), format="json", headers=headers)
    assert created.status_code == 201, created.content
    plan = created.json()
    assert (plan["kind"], plan["status"], plan["start"], plan["end"]) == (
        "kratom", "active", day(-3).isoformat(), day(24).isoformat())
    assert plan["steps"][0]["amount"] == "2" and plan["entered_by"]
    replay = client.post(b, body(), format="json", headers=headers)
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == plan["id"]
    other = client.post(b, body(reason="other"), format="json", headers=headers)
    assert other.status_code == 422 and TaperPlan.objects.count() == 1
    assert [p["id"] for p in client.get(b).json()["results"]] == [plan["id"]]
    p = clinic.patient_a
    DiaryDay.objects.create(patient=p, day=day(-3))
    Dose.objects.create(patient=p, entered_by=p.user, source="patient", amount=Decimal(8),
                        unit="capsule", grams_per_capsule=Decimal("0.5"),
                        taken_at=dt.datetime.combine(day(-3), dt.time(10), tzinfo=dt.UTC))
    detail = client.get(f"{b}{plan['id']}/").json()
    days = {d["day"]: d for d in detail["planned_vs_taken"]}
    first = days[day(-3).isoformat()]
    assert (first["planned"], first["taken"], first["status"]) == (4.0, 4.0, "as-planned")
    assert first["taken_mg"] == pytest.approx(60.0) and first["doses"] == 1
    assert days[day(-2).isoformat()]["status"] == "no-diary"
    steps = plan["steps"]
    steps[0]["amount"] = "2.5"
    fixed = client.post(f"{b}{plan['id']}/correct/", {"change_reason": "typo", "steps": steps},
                        format="json", headers=key())
    assert fixed.status_code == 201, fixed.content
    assert fixed.json()["replaces"] == plan["id"] and fixed.json()["steps"][0]["amount"] == "2.5"
    assert client.get(f"{b}{plan['id']}/").json()["superseded"] is True
    new = client.post(f"{b}{fixed.json()['id']}/replace/", {**body(start=day(0)),
                                                          "change_reason": "slower"},
                      format="json", headers=key())
    assert new.status_code == 201, new.content
    assert new.json()["follows"] is not None and new.json()["status"] == "active"
    stopped = client.post(f"{b}{new.json()['id']}/stop/", {"stop_reason": "moved to bup"},
                          format="json", headers=key())
    assert stopped.status_code == 201 and stopped.json()["status"] == "stopped"
    assert stopped.json()["stopped_on"] == day(0).isoformat()
    actions = [a for a in AuditEntry.objects.filter(model="TaperPlan").order_by("id")
               .values_list("action", flat=True)]
    assert actions == ["create", "correct", "stop", "create", "stop"]


@pytest.mark.parametrize(("change", "key_name", "words"), [
    ({"end": "BEFORE"}, "steps-0-end", "before it starts"),
    ({"unit": "kg"}, "steps-0-unit", "unknown unit 'kg'"),
    ({"amount": "51"}, "steps-0-amount", "plausibility limit"),
    ({"amount": 2.5}, None, None),
])
def test_a_bad_step_is_a_400_under_its_field_and_stores_nothing(clinic, api, key, change,
                                                                 key_name, words):
    data = body()
    data["steps"][0].update(change)
    if change.get("end") == "BEFORE":
        data["steps"][0]["end"] = day(-4).isoformat()
    response = api(clinic.clinician_a).post(base(clinic.patient_a), data, format="json",
                                            headers=key())
    if key_name is None:  # a number sent as JSON is read as the same amount
        assert response.status_code == 201 and response.json()["steps"][0]["amount"] == "2.5"
        return
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert words in " ".join(errors[key_name]), errors
    assert TaperPlan.objects.count() == 0


def test_overlapping_steps_and_another_patients_episode_are_refused(clinic, api, key):
    client = api(clinic.clinician_a)
    data = body()
    data["steps"][2]["start"] = data["steps"][1]["start"]
    response = client.post(base(clinic.patient_a), data, format="json", headers=key())
    assert response.status_code == 400 and "overlaps step 2" in response.json()["errors"][
        "steps-2-start"][0]
    theirs = treatment.record_episode(clinic.clinician_b, clinic.patient_b, {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": "40",
        "dispensing_clinic": "OTP", "start": day(-5)})
    response = client.post(base(clinic.patient_a), body(kind="methadone", episode=theirs.pk),
                           format="json", headers=key())
    assert response.status_code == 400
    assert response.json()["errors"]["episode"] == [
        "No such treatment episode in this patient's record."]
    assert TaperPlan.objects.count() == 0


def test_another_patients_plan_is_a_404_on_every_endpoint(clinic, api, key):
    theirs = seed(clinic, clinic.patient_b)
    client = api(clinic.clinician_a)
    url = f"{base(clinic.patient_a)}{theirs.pk}"
    assert client.get(f"{url}/").status_code == 404
    for suffix, data in (("correct/", {"change_reason": "x", "reason": "y"}),
                         ("replace/", {**body(), "change_reason": "x"}),
                         ("stop/", {"stop_reason": "x"})):
        response = client.post(f"{url}/{suffix}", data, format="json", headers=key())
        assert response.status_code == 404 and b"secret" not in response.content
    assert TaperPlan.objects.get().status == "active" and TaperPlan.objects.count() == 1


def _requests(patient, plan):
    b = base(patient)
    return [("get", b, None), ("post", b, body()), ("get", f"{b}{plan.pk}/", None),
            ("post", f"{b}{plan.pk}/correct/", {"change_reason": "x", "reason": "y"}),
            ("post", f"{b}{plan.pk}/replace/", {**body(), "change_reason": "x"}),
            ("post", f"{b}{plan.pk}/stop/", {"stop_reason": "x"})]


@pytest.mark.parametrize("path", API_AUTH_PATHS)
@pytest.mark.parametrize(("who", "expected"), OUTSIDERS)
def test_nobody_else_reaches_the_plan_endpoints(clinic, api_as, key, path, who, expected):
    plan = seed(clinic, clinic.patient_a)
    client = api_as(user_of(clinic, who), path)
    for method, url, data in _requests(clinic.patient_a, plan):
        response = call(client, method, url, data, key)
        assert response.status_code == expected, (who, path, url, response.status_code)
        assert b"secret" not in response.content
    assert TaperPlan.objects.count() == 1 and TaperPlan.objects.get().status == "active"


@pytest.mark.parametrize("path", API_AUTH_PATHS)
def test_the_care_teams_clinician_reaches_every_plan_endpoint(clinic, api_as, key, path):
    plan = seed(clinic, clinic.patient_a)
    client = api_as(clinic.clinician_a, path)
    b = base(clinic.patient_a)
    assert client.get(b).status_code == 200
    assert client.get(f"{b}{plan.pk}/").status_code == 200
    fixed = client.post(f"{b}{plan.pk}/correct/", {"change_reason": "x", "reason": "y"},
                        format="json", headers=key())
    assert fixed.status_code == 201
    new = client.post(f"{b}{fixed.json()['id']}/replace/", {**body(), "change_reason": "x"},
                      format="json", headers=key())
    assert new.status_code == 201
    assert client.post(f"{b}{new.json()['id']}/stop/", {"stop_reason": "x"}, format="json",
                       headers=key()).status_code == 201
    assert client.post(b, body(), format="json", headers=key()).status_code == 201


@pytest.mark.parametrize("path", STALE_TOKENS)
def test_a_dead_token_reaches_no_plan_endpoint(clinic, api_as, key, path):
    plan = seed(clinic, clinic.patient_a)
    client = api_as(clinic.clinician_a, path)
    for method, url, data in _requests(clinic.patient_a, plan):
        response = call(client, method, url, data, key)
        assert response.status_code == 401 and b"secret" not in response.content
    assert TaperPlan.objects.count() == 1


def test_a_post_without_an_idempotency_key_is_refused(clinic, api):
    response = api(clinic.clinician_a).post(base(clinic.patient_a), body(), format="json")
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]
    assert TaperPlan.objects.count() == 0
