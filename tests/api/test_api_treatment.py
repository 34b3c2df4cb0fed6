"""Issue 19 item 4: the treatment episode endpoints: validation (the services' messages),
needs_confirmation for methadone above the site's level, Idempotency-Key, 404 for another
patient's episode, and every role by every authentication path."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import treatment
from speciosa.clinic.models import Alert, TreatmentEpisode

from .conftest import API_AUTH_PATHS, OUTSIDERS, STALE_TOKENS, call, user_of

pytestmark = pytest.mark.django_db


def days_ago(n):
    return (timezone.localdate() - dt.timedelta(days=n)).isoformat()


def base(patient):
    return f"/api/v1/patients/{patient.pk}/treatment-episodes/"


def bup(**over):
    body = {"drug": "buprenorphine", "formulation": "buccal-film", "dose_mg": 12,
            "start": days_ago(10)}
    body.update(over)
    return body


def seed(clinic, patient):
    clinician = clinic.clinician_a if patient == clinic.patient_a else clinic.clinician_b
    return treatment.record_episode(clinician, patient, {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": "40",
        "dispensing_clinic": "Harbour Street OTP", "start": days_ago(20),
        "notes": "secret"})


def test_start_list_change_inject_and_stop(clinic, api, key):
    client = api(clinic.clinician_a)
    created = client.post(base(clinic.patient_a), bup(), format="json", headers=key())
    assert created.status_code == 201, created.content
    ep = created.json()
    assert (ep["drug"], ep["dose_mg"], ep["dose_basis"], ep["status"]) == (
        "buprenorphine", 12.0, "per day", "active")
    assert [e["id"] for e in client.get(base(clinic.patient_a)).json()["results"]] == [ep["id"]]
    changed = client.post(f"{base(clinic.patient_a)}{ep['id']}/change/", {
        "formulation": "xr-injection", "dose_mg": 300, "reason": "monthly injection",
        "injection_dates": [days_ago(0)]}, format="json", headers=key())
    assert changed.status_code == 201, changed.content
    new = changed.json()
    assert (new["formulation"], new["dose_basis"], new["injection_dates"]) == (
        "xr-injection", "per injection", [days_ago(0)])
    assert client.get(f"{base(clinic.patient_a)}{ep['id']}/").json()["superseded"] is True
    again = client.post(f"{base(clinic.patient_a)}{new['id']}/injections/", {"day": days_ago(0)},
                        format="json", headers=key())
    assert again.status_code == 400 and "already recorded" in str(again.json())
    stopped = client.post(f"{base(clinic.patient_a)}{new['id']}/stop/",
                          {"stop_reason": "moving away"}, format="json", headers=key())
    assert stopped.status_code == 201 and stopped.json()["status"] == "stopped"


@pytest.mark.parametrize(("body", "field", "text"), [
    (bup(end=days_ago(20), status="stopped", stop_reason="x"), "end", "before the start"),
    (bup(dose_unit="mL"), "dose_unit", "Unknown unit 'mL'"),
    (bup(dose_mg=0), "dose_mg", "more than 0"),
    (bup(dose_mg=99999), "dose_mg", "typing errors"),
    (bup(dose_mg="12"), "dose_mg", "Send a number"),
    (bup(formulation="oral-liquid"), "formulation", "Unknown formulation"),
    (bup(drug="tramadol"), "drug", "buprenorphine, methadone or naltrexone"),
    (bup(injection_dates=[days_ago(1)]), "injection_dates", "extended-release"),
    (bup(start="2026-01-01T08:00"), "start", "time zone"),
    (bup(colour="red"), "__all__", "Unknown field(s): colour"),
])
def test_bad_input_is_a_400_and_stores_nothing(clinic, api, key, body, field, text):
    response = api(clinic.clinician_a).post(base(clinic.patient_a), body, format="json",
                                            headers=key())
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors and text in " ".join(errors[field]), errors
    assert not TreatmentEpisode.objects.exists()


def test_an_overlapping_episode_and_high_methadone(clinic, api, key):
    client = api(clinic.clinician_a)
    assert client.post(base(clinic.patient_a), bup(), format="json", headers=key()).status_code == 201
    dup = client.post(base(clinic.patient_a), bup(formulation="sublingual", start=days_ago(2)),
                      format="json", headers=key())
    assert dup.status_code == 400 and "already runs from" in dup.json()["errors"]["drug"][0]
    body = {"drug": "methadone", "formulation": "oral-liquid", "dose_mg": 160,
            "dispensing_clinic": "OTP", "start": days_ago(3)}
    high = client.post(base(clinic.patient_a), body, format="json", headers=key())
    assert high.status_code == 400 and high.json()["code"] == "needs_confirmation"
    assert "site convention" in high.json()["errors"]["dose_mg"][0]
    ok = client.post(base(clinic.patient_a), {**body, "confirmed_dose": True}, format="json",
                     headers=key())
    assert ok.status_code == 201 and ok.json()["confirmed_dose"] is True
    assert TreatmentEpisode.objects.count() == 2


def test_a_replayed_key_stores_once(clinic, api, key):
    client = api(clinic.clinician_a)
    headers = key()
    a = client.post(base(clinic.patient_a), bup(), format="json", headers=headers)
    b = client.post(base(clinic.patient_a), bup(), format="json", headers=headers)
    assert (a.status_code, b.status_code) == (201, 200) and a.json()["id"] == b.json()["id"]
    c = client.post(base(clinic.patient_a), bup(dose_mg=8), format="json", headers=headers)
    assert c.status_code == 422
    assert TreatmentEpisode.objects.count() == 1


def test_another_patients_episode_is_a_404_and_nothing_changes(clinic, api, key):
    theirs = seed(clinic, clinic.patient_b)
    client = api(clinic.clinician_a)
    url = f"{base(clinic.patient_a)}{theirs.pk}"
    assert client.get(f"{url}/").status_code == 404
    for suffix, body in (("change/", {"dose_mg": 50, "reason": "x"}),
                         ("stop/", {"stop_reason": "x"}), ("injections/", {"day": days_ago(0)})):
        response = client.post(f"{url}/{suffix}", body, format="json", headers=key())
        assert response.status_code == 404 and b"secret" not in response.content
    assert TreatmentEpisode.objects.get().status == "active"


def test_a_methadone_episode_with_current_kratom_raises_the_qt_finding(clinic, api, key):
    from speciosa.clinic import services

    at = timezone.now() - dt.timedelta(hours=2)
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localtime(at).date(), doses=[{"taken_at": at, "amount": 4, "unit": "g"}]))
    api(clinic.clinician_a).post(base(clinic.patient_a), {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": 80,
        "dispensing_clinic": "OTP", "start": days_ago(5)}, format="json", headers=key())
    assert Alert.objects.filter(patient=clinic.patient_a, topic="qt-risk").exists()


def _requests(patient, ep):
    b = base(patient)
    return [("get", b, None), ("post", b, bup()), ("get", f"{b}{ep.pk}/", None),
            ("post", f"{b}{ep.pk}/change/", {"dose_mg": 50, "reason": "x"}),
            ("post", f"{b}{ep.pk}/stop/", {"stop_reason": "x"}),
            ("post", f"{b}{ep.pk}/injections/", {"day": days_ago(0)})]


@pytest.mark.parametrize("path", API_AUTH_PATHS)
@pytest.mark.parametrize(("who", "expected"), OUTSIDERS)
def test_nobody_else_reaches_the_episode_endpoints(clinic, api_as, key, path, who, expected):
    ep = seed(clinic, clinic.patient_a)
    client = api_as(user_of(clinic, who), path)
    for method, url, body in _requests(clinic.patient_a, ep):
        response = call(client, method, url, body, key)
        assert response.status_code == expected, (who, path, url, response.status_code)
        assert b"secret" not in response.content
    assert TreatmentEpisode.objects.count() == 1
    assert TreatmentEpisode.objects.get().status == "active"


@pytest.mark.parametrize("path", [*API_AUTH_PATHS])
def test_the_care_teams_clinician_reaches_every_episode_endpoint(clinic, api_as, key, path):
    ep = seed(clinic, clinic.patient_a)
    client = api_as(clinic.clinician_a, path)
    b = base(clinic.patient_a)
    assert client.get(b).status_code == 200
    assert client.get(f"{b}{ep.pk}/").status_code == 200
    assert client.post(b, bup(), format="json", headers=key()).status_code == 201
    new = client.post(f"{b}{ep.pk}/change/", {"dose_mg": 50, "reason": "x"}, format="json",
                      headers=key())
    assert new.status_code == 201
    assert client.post(f"{b}{new.json()['id']}/stop/", {"stop_reason": "x"}, format="json",
                       headers=key()).status_code == 201


@pytest.mark.parametrize("path", STALE_TOKENS)
def test_a_dead_token_reaches_no_episode_endpoint(clinic, api_as, key, path):
    ep = seed(clinic, clinic.patient_a)
    client = api_as(clinic.clinician_a, path)
    for method, url, body in _requests(clinic.patient_a, ep):
        response = call(client, method, url, body, key)
        assert response.status_code == 401 and b"secret" not in response.content
    assert TreatmentEpisode.objects.count() == 1


def test_an_episode_is_corrected_through_the_records_endpoint(clinic, api, key):
    ep = seed(clinic, clinic.patient_a)
    client = api(clinic.clinician_a)
    url = f"/api/v1/patients/{clinic.patient_a.pk}/records/episode/{ep.pk}"
    response = client.post(f"{url}/corrections/", {"reason": "typo", "dose_mg": 45},
                           format="json", headers=key())
    assert response.status_code == 201, response.content
    assert response.json()["dose_mg"] == 45.0 and response.json()["replaces"] == ep.pk
    bad = client.post(f"/api/v1/patients/{clinic.patient_a.pk}/records/episode/"
                      f"{response.json()['id']}/corrections/",
                      {"reason": "x", "dose_mg": 400}, format="json", headers=key())
    assert bad.status_code == 400 and bad.json()["code"] == "needs_confirmation"
    history = client.get(f"{url}/history/").json()["results"]
    assert [h["dose_mg"] for h in history] == [45.0, 40.0]
    theirs = seed(clinic, clinic.patient_b)
    other = client.post(f"/api/v1/patients/{clinic.patient_a.pk}/records/episode/{theirs.pk}/"
                        "corrections/", {"reason": "x", "dose_mg": 1}, format="json",
                        headers=key())
    assert other.status_code == 404
