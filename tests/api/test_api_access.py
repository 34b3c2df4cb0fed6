"""The access matrix of the API: every role against every endpoint and every patient (own,
other care team's), by every authentication path (``api_as``: forced, token, verified session,
session with a ``Bearer`` or junk header; and the user's own expired, revoked or
pre-password-change token, which reaches nothing). The rules are the web's (``speciosa.clinic.access``):
another team's patient is a 404, an endpoint outside one's role a 403, no login a 401, and
never data."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa.knowledge import instruments as kinstruments

from .conftest import API_AUTH_PATHS, STALE_TOKENS, call

pytestmark = pytest.mark.django_db

ROLES = ["clinician_a", "clinician_b", "patient_user_a", "patient_user_b", "researcher", "admin", "anonymous"]


def _user(clinic, who):
    if who == "anonymous":
        return None
    if who.startswith("patient_user_"):
        return getattr(clinic, f"patient_{who[-1]}").user
    return getattr(clinic, who)


def _gad7_items():
    return {i.id: i.allowed[0] for i in kinstruments.get_instrument("gad7").items}


def clinician_requests(patient, recs, spare_note):
    """Every clinician endpoint for ``patient`` with a body that the right user may save."""
    base = f"/api/v1/patients/{patient.pk}"
    an_hour_ago = (timezone.now() - dt.timedelta(hours=1)).isoformat()
    out = [
        ("get", f"{base}/", None),
        ("get", f"{base}/timeline/", None),
        ("post", f"{base}/assessments/", {"instrument": "gad7", "items": _gad7_items()}),
        ("post", f"{base}/labs/", {"lab": "prolactin", "value": 12, "unit": "ng/mL",
                                   "collected_at": an_hour_ago}),
        ("post", f"{base}/notes/", {"text": "Seen today."}),
    ]
    for kind, rec in recs.items():
        rbase = f"{base}/records/{kind}/{rec.pk}"
        out.append(("get", f"{rbase}/history/", None))
        change = {"dose": {"amount": 3}, "assessment": {"items": _gad7_items()},
                  "lab": {"value": 11}, "note": {"text": "Corrected."}}[kind]
        out.append(("post", f"{rbase}/corrections/", {"reason": "typo", **change}))
    out.append(("post", f"{base}/records/note/{spare_note.pk}/retraction/", {"reason": "wrong patient"}))
    return out


@pytest.mark.parametrize("path", API_AUTH_PATHS)
def test_a_clinician_uses_every_endpoint_for_their_own_teams_patient(clinic, api_as, records, key, path):
    client = api_as(clinic.clinician_a, path)
    for method, url, body in clinician_requests(clinic.patient_a, records["a"], records["a_spare_note"]):
        response = call(client, method, url, body, key)
        assert response.status_code in (200, 201), (url, response.status_code, response.content)


@pytest.mark.parametrize("path", API_AUTH_PATHS)
@pytest.mark.parametrize("who, expected", [
    ("clinician_b", 404), ("patient_user_a", 403), ("patient_user_b", 403), ("researcher", 403),
    ("admin", 403), ("anonymous", 401)])
def test_nobody_else_reaches_a_patient_through_the_clinician_endpoints(clinic, api_as, records, who, expected,
                                                                         key, path):
    client = api_as(_user(clinic, who), path)
    for method, url, body in clinician_requests(clinic.patient_a, records["a"], records["a_spare_note"]):
        response = call(client, method, url, body, key)
        assert response.status_code == expected, (who, path, url, response.status_code)
        assert b"Quinn" not in response.content and b"secret" not in response.content
    from speciosa.clinic.models import Note

    assert Note.objects.filter(patient=clinic.patient_a).count() == 2  # nothing stored


@pytest.mark.parametrize("path", STALE_TOKENS)
@pytest.mark.parametrize("who", ["clinician_a", "patient_user_a", "researcher", "admin"])
def test_a_dead_token_of_the_right_user_reaches_no_endpoint(clinic, api_as, records, key, path, who):
    """The clinician's own patient, the patient's own diary: with a token that expired, was
    revoked or predates a password change, every endpoint is a 401 and nothing is stored."""
    from speciosa.clinic.models import AuditEntry, DiaryDay, Note

    client = api_as(_user(clinic, who), path)
    requests = [*clinician_requests(clinic.patient_a, records["a"], records["a_spare_note"]),
                ("get", "/api/v1/me/", None), ("get", "/api/v1/me/diary/", None),
                ("post", "/api/v1/me/diary/", {"craving": 3}), ("get", "/api/v1/instruments/", None)]
    audited = AuditEntry.objects.exclude(action="credentials").count()
    for method, url, body in requests:
        response = call(client, method, url, body, key)
        assert response.status_code == 401, (who, path, url, response.status_code)
        assert b"Quinn" not in response.content and b"secret" not in response.content
    assert Note.objects.filter(patient=clinic.patient_a).count() == 2 and not DiaryDay.objects.exists()
    assert AuditEntry.objects.exclude(action="credentials").count() == audited  # nothing opened


def test_another_users_token_acts_as_that_user_only(clinic, records):
    """Team B's clinician's token on team A's patient: a 404, and the audit names B."""
    from rest_framework.test import APIClient
    from tests.conftest import issue_token

    from speciosa.clinic.models import AuditEntry

    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(clinic.clinician_b)}")
    assert client.get(f"/api/v1/patients/{clinic.patient_a.pk}/").status_code == 404
    assert client.get(f"/api/v1/patients/{clinic.patient_b.pk}/").status_code == 200
    assert set(AuditEntry.objects.filter(action="view").values_list("user", "patient")) == {
        (clinic.clinician_b.pk, clinic.patient_b.pk)}


def test_a_record_id_of_another_patient_under_my_patients_url_is_not_found(clinic, api, records, key):
    client = api(clinic.clinician_a)
    for kind, rec in records["b"].items():
        base = f"/api/v1/patients/{clinic.patient_a.pk}/records/{kind}/{rec.pk}"
        assert client.get(f"{base}/history/").status_code == 404
        response = client.post(f"{base}/corrections/", {"reason": "x", "text": "y"}, format="json",
                               headers=key())
        assert response.status_code == 404
        assert b"secret" not in response.content


@pytest.mark.parametrize("path", ["abc", "0", "999999", "1e3", "99999999999999999999999999"])
def test_nonsense_and_unknown_ids_are_a_json_404(clinic, api, path):
    response = api(clinic.clinician_a).get(f"/api/v1/patients/{path}/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


def test_an_unknown_kind_of_record_is_not_found(clinic, api, records):
    url = f"/api/v1/patients/{clinic.patient_a.pk}/records/substance/{records['a']['note'].pk}/history/"
    assert api(clinic.clinician_a).get(url).status_code == 404


def test_an_unknown_address_under_the_api_is_a_json_404(clinic, api):
    response = api(clinic.clinician_a).get("/api/v1/nothing/here/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("path", API_AUTH_PATHS)
@pytest.mark.parametrize("who, expected", [
    ("clinician_a", 200), ("clinician_b", 200), ("patient_user_a", 403), ("researcher", 403),
    ("admin", 403), ("anonymous", 401)])
def test_only_clinicians_list_patients(clinic, api_as, who, expected, path):
    assert api_as(_user(clinic, who), path).get("/api/v1/patients/").status_code == expected


def test_the_patient_list_holds_only_the_clinicians_care_team(clinic, api):
    names = [p["family_name"] for p in api(clinic.clinician_a).get("/api/v1/patients/").json()["results"]]
    assert names == ["Quinn"]


@pytest.mark.parametrize("path", API_AUTH_PATHS)
@pytest.mark.parametrize("who, expected", [
    ("patient_user_a", (200, 201)), ("clinician_a", (403, 403)), ("researcher", (403, 403)),
    ("admin", (403, 403)), ("anonymous", (401, 401))])
def test_only_patients_read_and_write_a_diary(clinic, api_as, who, expected, key, path):
    client = api_as(_user(clinic, who), path)
    assert client.get("/api/v1/me/diary/").status_code == expected[0]
    response = client.post("/api/v1/me/diary/", {"craving": 3}, format="json", headers=key())
    assert response.status_code == expected[1]
    today = timezone.localdate().isoformat()
    assert client.get(f"/api/v1/me/diary/{today}/").status_code == (
        200 if expected[0] == 200 else expected[0])


def test_a_patient_sees_their_own_diary_and_nobody_elses(clinic, api):
    from speciosa.clinic import services

    services.record_diary(clinic.patient_b.user, clinic.patient_b, services.DiaryInput(
        day=timezone.localdate(), doses=[], craving=7, side_effect_other="Omar's secret"))
    client = api(clinic.patient_a.user)
    assert client.get("/api/v1/me/diary/").json()["results"] == []
    assert client.get(f"/api/v1/me/diary/{timezone.localdate().isoformat()}/").status_code == 404
    me = client.get("/api/v1/me/").json()
    assert me["patient"]["family_name"] == "Quinn" and me["role"] == "patient"
    assert b"secret" not in client.get("/api/v1/me/").content


@pytest.mark.parametrize("who", ["clinician_a", "researcher", "admin"])
def test_me_shows_no_patient_record_to_other_roles(clinic, api, who):
    me = api(_user(clinic, who)).get("/api/v1/me/").json()
    assert me["patient"] is None


@pytest.mark.parametrize("who", ["clinician_a", "patient_user_a", "researcher", "admin"])
def test_every_role_reads_the_catalogues_but_anonymous_does_not(clinic, api, who):
    client = api(_user(clinic, who))
    for url in ("/api/v1/instruments/", "/api/v1/instruments/cows/", "/api/v1/labs/"):
        assert client.get(url).status_code == 200
        assert api().get(url).status_code == 401
