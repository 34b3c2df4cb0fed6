"""Issue 19, urine drug testing: the panel endpoints: the service's messages, the reading
(buprenorphine without norbuprenorphine flagged), Idempotency-Key, another patient's id
(404, nothing stored), and every role by every authentication path."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import treatment, urine
from speciosa.clinic.models import LabResult, UrinePanel

from .conftest import API_AUTH_PATHS, OUTSIDERS, STALE_TOKENS, call, user_of

pytestmark = pytest.mark.django_db


def base(patient):
    return f"/api/v1/patients/{patient.pk}/urine-panels/"


def body(**over):
    data = {"collected_at": (timezone.now() - dt.timedelta(hours=2)).isoformat(),
            "panels": ["buprenorphine"], "method": "screen", "creatinine_mg_dl": "80",
            "ph": "6.5", "specific_gravity": "1.012", "temperature_in_range": True,
            "observed": True, "analytes": {"uds-buprenorphine": "positive",
                                           "uds-norbuprenorphine": "negative"}}
    data.update(over)
    return data


def seed(clinic, patient):
    clinician = clinic.clinician_a if patient == clinic.patient_a else clinic.clinician_b
    data = body(note="secret")
    data["collected_at"] = timezone.now() - dt.timedelta(hours=3)
    return urine.record_panel(clinician, patient, data)


def test_a_panel_with_buprenorphine_but_no_norbuprenorphine_is_flagged(clinic, api, key):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": timezone.localdate() - dt.timedelta(days=20)})
    client = api(clinic.clinician_a)
    created = client.post(base(clinic.patient_a), body(), format="json", headers=key())
    assert created.status_code == 201, created.content
    out = created.json()
    reading = out["reading"]
    assert reading["flagged"] is True and reading["withheld"] is False
    flags = {a["lab"]: a["flag"] for a in reading["analytes"]}
    assert flags == {"uds-buprenorphine": "expected", "uds-norbuprenorphine": "missing-expected"}
    assert "suggests buprenorphine was added" in reading["caveats"][0]
    assert "discuss with the patient; confirm before acting" in reading["caveats"][0]
    assert any("do not detect mitragynine" in c for c in reading["caveats"])
    assert "buprenorphine-without-norbuprenorphine" in reading["citations"]
    listed = client.get(base(clinic.patient_a)).json()["results"]
    assert [p["id"] for p in listed] == [out["id"]]
    assert client.get(f"{base(clinic.patient_a)}{out['id']}/").json()["id"] == out["id"]


@pytest.mark.parametrize(("over", "field", "text"), [
    ({"analytes": {"uds-buprenorphine": "positive", "uds-norbuprenorphine": "negative",
                   "uds-ketamine": "positive"}}, "analytes", "Unknown analyte uds-ketamine"),
    ({"analytes": {"uds-buprenorphine": {"value": "40", "unit": "ng/mL"},
                   "uds-norbuprenorphine": "negative"}},
     "analytes.uds-buprenorphine", "a value needs the cut-off"),
    ({"panels": ["cocaine"]}, "panels", "Unknown panel cocaine"),
    ({"method": "guess"}, "method", "Choose the method"),
])
def test_bad_input_is_a_400_and_stores_nothing(clinic, api, key, over, field, text):
    response = api(clinic.clinician_a).post(base(clinic.patient_a), body(**over), format="json",
                                            headers=key())
    assert response.status_code == 400, response.content
    assert text in str(response.json())
    assert UrinePanel.objects.count() == 0 and LabResult.objects.count() == 0


def test_a_replayed_key_stores_once(clinic, api, key):
    client = api(clinic.clinician_a)
    headers, first = key(), body()
    a = client.post(base(clinic.patient_a), first, format="json", headers=headers)
    b = client.post(base(clinic.patient_a), first, format="json", headers=headers)
    assert (a.status_code, b.status_code) == (201, 200) and a.json()["id"] == b.json()["id"]
    assert b.headers["Idempotent-Replayed"] == "true"
    c = client.post(base(clinic.patient_a), {**first, "method": "confirmation"}, format="json",
                    headers=headers)
    assert c.status_code == 422
    assert UrinePanel.objects.count() == 1 and LabResult.objects.count() == 2


def test_another_patients_panel_and_patient_are_404_and_nothing_is_stored(clinic, api, key):
    theirs = seed(clinic, clinic.patient_b)
    client = api(clinic.clinician_a)
    response = client.get(f"{base(clinic.patient_a)}{theirs.pk}/")
    assert response.status_code == 404 and b"secret" not in response.content
    response = client.post(base(clinic.patient_b), body(), format="json", headers=key())
    assert response.status_code == 404
    assert client.get(base(clinic.patient_b)).status_code == 404
    assert UrinePanel.objects.count() == 1 and LabResult.objects.count() == 2


def _requests(patient, panel):
    b = base(patient)
    return [("get", b, None), ("post", b, body()), ("get", f"{b}{panel.pk}/", None),
            ("post", f"{b}{panel.pk}/correct/", {**body(), "reason": "typo"}),
            ("post", f"{b}{panel.pk}/withdraw/", {"reason": "wrong patient"})]


@pytest.mark.parametrize("path", API_AUTH_PATHS)
@pytest.mark.parametrize(("who", "expected"), OUTSIDERS)
def test_nobody_else_reaches_the_panel_endpoints(clinic, api_as, key, path, who, expected):
    panel = seed(clinic, clinic.patient_a)
    client = api_as(user_of(clinic, who), path)
    for method, url, data in _requests(clinic.patient_a, panel):
        response = call(client, method, url, data, key)
        assert response.status_code == expected, (who, path, url, response.status_code)
        assert b"secret" not in response.content
    assert UrinePanel.objects.count() == 1


@pytest.mark.parametrize("path", API_AUTH_PATHS)
def test_the_care_teams_clinician_reaches_every_panel_endpoint(clinic, api_as, key, path):
    panel = seed(clinic, clinic.patient_a)
    client = api_as(clinic.clinician_a, path)
    b = base(clinic.patient_a)
    assert client.get(b).status_code == 200
    assert client.get(f"{b}{panel.pk}/").status_code == 200
    assert client.post(b, body(), format="json", headers=key()).status_code == 201
    fixed = client.post(f"{b}{panel.pk}/correct/", {**body(), "reason": "typo"}, format="json",
                        headers=key())
    assert fixed.status_code == 201, fixed.content
    gone = client.post(f"{b}{fixed.json()['id']}/withdraw/", {"reason": "wrong patient"},
                       format="json", headers=key())
    assert gone.status_code == 201 and gone.json()["retracted"] is True


@pytest.mark.parametrize("path", STALE_TOKENS)
def test_a_dead_token_reaches_no_panel_endpoint(clinic, api_as, key, path):
    panel = seed(clinic, clinic.patient_a)
    client = api_as(clinic.clinician_a, path)
    for method, url, data in _requests(clinic.patient_a, panel):
        response = call(client, method, url, data, key)
        assert response.status_code == 401 and b"secret" not in response.content
    assert UrinePanel.objects.count() == 1


# ------------------------------------------------------------------ correct and withdraw

def test_a_correction_keeps_the_panel_as_it_was_and_reads_the_new_one(clinic, api, key):
    panel = seed(clinic, clinic.patient_a)
    client = api(clinic.clinician_a)
    url = f"{base(clinic.patient_a)}{panel.pk}/correct/"
    fixed = body(analytes={"uds-buprenorphine": "positive", "uds-norbuprenorphine": "positive"},
                 reason="norbuprenorphine misread")
    headers = key()
    first = client.post(url, fixed, format="json", headers=headers)
    assert first.status_code == 201, first.content
    out = first.json()
    assert out["replaces"] == panel.pk and out["change_reason"] == "norbuprenorphine misread"
    assert [a["flag"] for a in out["reading"]["analytes"]] == ["unexpected", "unexpected"]
    again = client.post(url, fixed, format="json", headers=headers)  # a retry stores one
    assert again.status_code == 200 and again.json()["id"] == out["id"]
    assert UrinePanel.objects.count() == 2 and UrinePanel.objects.current().count() == 1
    old = client.get(f"{base(clinic.patient_a)}{panel.pk}/").json()
    assert old["superseded"] is True
    assert LabResult.objects.current().filter(panel_id=out["id"]).count() == 2
    assert LabResult.objects.filter(panel=panel, superseded=True).count() == 2
    # the old version cannot be corrected again
    stale = client.post(url, {**fixed, "reason": "again"}, format="json", headers=key())
    assert stale.status_code == 400 and "changed since" in stale.content.decode()


@pytest.mark.parametrize(("path", "data", "field", "text"), [
    ("correct/", {"reason": ""}, "reason", ""),
    ("correct/", {"reason": "typo", "ph": "15"}, "ph", "between 0 and 14"),
    ("correct/", {"reason": "typo", "analytes": {"uds-buprenorphine": "positive"}},
     "analytes.uds-norbuprenorphine", "Give the result"),
    ("withdraw/", {"reason": ""}, "reason", ""),
])
def test_a_bad_correction_or_withdrawal_is_a_400_naming_the_field(clinic, api, key, path, data,
                                                                   field, text):
    panel = seed(clinic, clinic.patient_a)
    payload = {**body(), **data} if path == "correct/" else data
    response = api(clinic.clinician_a).post(f"{base(clinic.patient_a)}{panel.pk}/{path}",
                                            payload, format="json", headers=key())
    assert response.status_code == 400, response.content
    assert field in response.content.decode() and text in response.content.decode()
    assert UrinePanel.objects.count() == 1 and not UrinePanel.objects.filter(
        retracted=True).exists()


def test_another_patients_panel_cannot_be_corrected_or_withdrawn(clinic, api, key):
    theirs = seed(clinic, clinic.patient_b)
    client = api(clinic.clinician_a)
    for path, data in (("correct/", {**body(), "reason": "x"}), ("withdraw/", {"reason": "x"})):
        # under my patient's address, and under theirs
        for patient in (clinic.patient_a, clinic.patient_b):
            response = client.post(f"{base(patient)}{theirs.pk}/{path}", data, format="json",
                                   headers=key())
            assert response.status_code == 404 and b"secret" not in response.content
    assert UrinePanel.objects.count() == 1 and not UrinePanel.objects.filter(
        retracted=True).exists()


def test_a_withdrawn_panel_no_longer_feeds_the_rules_or_the_list(clinic, api, key):
    from speciosa.clinic.models import AuditEntry

    panel = urine.record_panel(clinic.clinician_a, clinic.patient_a, body(
        collected_at=timezone.now() - dt.timedelta(hours=3), panels=["fentanyl"],
        analytes={"uds-fentanyl": "positive"}))
    client = api(clinic.clinician_a)
    assert len(client.get(base(clinic.patient_a)).json()["results"]) == 1
    response = client.post(f"{base(clinic.patient_a)}{panel.pk}/withdraw/",
                           {"reason": "another patient's cup"}, format="json", headers=key())
    assert response.status_code == 201
    assert client.get(base(clinic.patient_a)).json()["results"] == []
    assert LabResult.objects.current().filter(patient=clinic.patient_a).count() == 0
    actions = list(AuditEntry.objects.filter(patient=clinic.patient_a, action="retract")
                   .values_list("model", flat=True))
    assert sorted(actions) == ["LabResult", "UrinePanel"]
