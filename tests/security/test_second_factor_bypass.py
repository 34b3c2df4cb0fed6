"""Issue #11, item 1: a password-only session plus any ``Authorization`` header got 200 from
the whole API and FHIR, writes included.

The attack: log in with the password only (no authenticator code), keep the session cookie,
and add a header that no authentication class accepts (``Bearer x``, ``Basic …``, junk):
``SecondFactorMiddleware`` let every request with an ``Authorization`` header through and
DRF then authenticated it by the session. Every role that needs a second factor is tried
(staff always; a patient who turned it on), on read and write endpoints of ``/api/v1/`` and
``/fhir/``, and on every URL with an id that the resolver knows.
"""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from .conftest import ID_PARAMS, fill, params_of, url_patterns

pytestmark = pytest.mark.django_db

STAFF = ["clinician_a", "admin", "researcher"]
NEEDS_SECOND_FACTOR = [*STAFF, "patient_a"]


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def headers_for(username: str, password: str) -> dict[str, str | None]:
    """Headers that authenticate nothing (Basic even with the right password: no such
    authentication is configured, so it must not count either)."""
    return {
        "none": None,
        "bearer": "Bearer x",
        "bearer-empty": "Bearer",
        "basic": _basic(username, password),
        "token-junk": "Token not-a-real-token",
        "token-not-text": "Token \xe9\xff",
        "tokens": "Tokens abc",  # a near miss of the keyword
        "junk": "junk",
        "oauth": "OAuth oauth_token=x",
    }


def _user(clinic, role):
    who = getattr(clinic, role)
    return getattr(who, "user", who)  # a Patient's login is its user


def password_only(clinic, role, otp_code) -> Client:
    """A client logged in with the right password and no second factor (the user has one)."""
    user = _user(clinic, role)
    otp_code(user)  # the user has a confirmed authenticator, so they need it
    client = Client(HTTP_HOST="localhost")
    response = client.post("/login/", {"username": user.username, "password": clinic.password})
    assert response.status_code == 302
    return client


def requests_for(clinic, role, records) -> list[tuple[str, str, dict | None]]:
    """Read and write endpoints of the API and FHIR that the role could use once verified."""
    if role == "patient_a":
        pid = clinic.patient_a.pk
        return [
            ("get", "/api/v1/me/", None),
            ("get", "/api/v1/me/diary/", None),
            ("post", "/api/v1/me/diary/", {"craving": 4}),
            ("get", f"/fhir/Patient/{pid}/$everything", None),
            ("get", f"/fhir/Patient/{pid}", None),
            ("get", f"/fhir/Observation?patient={pid}", None),
        ]
    pid = clinic.patient_a.pk
    note = records["note"].pk
    out = [
        ("get", "/api/v1/me/", None),
        ("get", "/api/v1/patients/", None),
        ("get", f"/api/v1/patients/{pid}/", None),
        ("get", f"/api/v1/patients/{pid}/timeline/", None),
        ("get", f"/api/v1/patients/{pid}/records/note/{note}/history/", None),
        ("post", f"/api/v1/patients/{pid}/notes/", {"text": "written without a second factor"}),
        ("post", f"/api/v1/patients/{pid}/records/note/{note}/corrections/",
         {"reason": "typo", "text": "rewritten"}),
        ("post", f"/api/v1/patients/{pid}/records/note/{note}/retraction/", {"reason": "gone"}),
        ("get", "/api/v1/instruments/", None),
        ("get", f"/fhir/Patient/{pid}/$everything", None),
        ("get", f"/fhir/Patient/{pid}", None),
        ("get", "/fhir/Patient", None),
        ("get", f"/fhir/Observation?patient={pid}", None),
        ("get", "/fhir/Practitioner", None),
    ]
    return out


@pytest.fixture
def note_a(clinic):
    from speciosa.clinic.models import Note

    return {"note": Note.objects.create(patient=clinic.patient_a, entered_by=clinic.clinician_a,
                                        source="clinician", text="secret about Quinn")}


def _call(client, method, url, body, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    if method == "get":
        return client.get(url, **extra)
    import json
    import uuid

    return client.post(url, json.dumps(body), content_type="application/json",
                       HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()), **extra)


def _counts():
    from speciosa.clinic.models import AuditEntry, DiaryDay, Note

    return (Note.objects.count(), Note.objects.filter(retracted=True).count(), DiaryDay.objects.count(),
            AuditEntry.objects.filter(action__in=["view", "export", "create", "correct", "retract"]).count())


@pytest.mark.parametrize("role", NEEDS_SECOND_FACTOR)
def test_no_header_lets_a_password_only_session_into_the_api_or_fhir(clinic, otp_code, note_a, role):
    client = password_only(clinic, role, otp_code)
    user = _user(clinic, role)
    before = _counts()
    for name, header in headers_for(user.username, clinic.password).items():
        for method, url, body in requests_for(clinic, role, note_a):
            response = _call(client, method, url, body, header)
            assert response.status_code in (401, 403), (role, name, method, url, response.status_code)
            text = response.content.decode(errors="replace")
            assert "Quinn" not in text and "secret" not in text and "\"username\"" not in text
    assert _counts() == before  # nothing written, nothing opened


@pytest.mark.parametrize("role", NEEDS_SECOND_FACTOR)
def test_the_same_requests_work_once_the_second_factor_is_given(clinic, otp_code, note_a, role):
    """The control: the requests above are real ones that a verified session may make."""
    client = password_only(clinic, role, otp_code)
    user = _user(clinic, role)
    assert client.post("/account/second-factor/", {"code": otp_code(user)}).status_code == 302
    statuses = {_call(client, method, url, body, "Bearer x").status_code
                for method, url, body in requests_for(clinic, role, note_a) if method == "get"}
    assert 200 in statuses


def test_a_real_token_works_beside_a_password_only_session_and_acts_as_its_owner(clinic, otp_code,
                                                                                  note_a):
    from tests.conftest import issue_token

    from speciosa.clinic.models import AuditEntry

    client = password_only(clinic, "admin", otp_code)  # someone else's unverified session
    token = issue_token(clinic.clinician_a)
    response = client.get(f"/api/v1/patients/{clinic.patient_a.pk}/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200 and response.json()["family_name"] == "Quinn"
    assert AuditEntry.objects.filter(action="view", patient=clinic.patient_a).get().user == clinic.clinician_a


def test_a_patient_without_a_second_factor_keeps_using_the_api_by_session(clinic):
    client = Client(HTTP_HOST="localhost")
    client.post("/login/", {"username": "pat_b", "password": clinic.password})
    assert client.get("/api/v1/me/", HTTP_AUTHORIZATION="Bearer x").status_code == 200
    assert client.get(f"/fhir/Patient/{clinic.patient_b.pk}").status_code == 200


def test_drf_refuses_an_unverified_session_even_without_the_middleware(clinic, otp_code, settings):
    """Defence in depth: the API's own session authentication refuses the session."""
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("SecondFactorMiddleware")]
    client = password_only(clinic, "clinician_a", otp_code)
    for header in (None, "Bearer x"):
        extra = {"HTTP_AUTHORIZATION": header} if header else {}
        response = client.get("/api/v1/patients/", **extra)
        assert response.status_code == 403
        assert response.json()["detail"] == "Complete the second factor (authenticator code) first."
        assert client.get(f"/fhir/Patient/{clinic.patient_a.pk}", **extra).status_code == 403


# --------------------------------------------------------------------------- every URL with an id

ROUTES = [r for r in url_patterns() if params_of(r) & ID_PARAMS]


def _own_values(clinic, note):
    return {"patient_id": clinic.patient_a.pk, "rid": clinic.patient_a.pk, "rtype": "Patient",
            "record_id": note.pk, "kind": "note", "alert_id": 1, "instrument_id": "cows",
            "page_id": "prolactin", "day": "2026-01-01", "vid": "1",
            "medication_id": note.pk, "episode_id": note.pk, "panel_id": note.pk,
            "thread_id": note.pk, "plan_id": note.pk, "device_id": note.pk,
            "signature_id": note.pk, "document_id": note.pk}  # refused before any lookup


@pytest.mark.parametrize("role", NEEDS_SECOND_FACTOR)
def test_every_url_with_an_id_refuses_a_password_only_session_whatever_the_header(clinic, otp_code,
                                                                                   note_a, role):
    """The caller's *own* care team's ids: nothing without the second factor, on any route."""
    client = password_only(clinic, role, otp_code)
    user = _user(clinic, role)
    before = _counts()
    headers = headers_for(user.username, clinic.password)
    for route in ROUTES:
        url = fill(route, _own_values(clinic, note_a["note"]))
        assert url is not None, route
        for name in ("none", "bearer", "basic", "junk"):
            for method in ("get", "post"):
                response = _call(client, method, url, {}, headers[name])
                if response.status_code == 302:
                    assert response.url.startswith("/account/second-factor/"), (route, name, response.url)
                else:
                    assert response.status_code in (401, 403, 405), (role, name, method, url,
                                                                     response.status_code)
                assert "Quinn" not in response.content.decode(errors="replace"), (role, name, url)
    assert _counts() == before


@pytest.mark.parametrize("role", NEEDS_SECOND_FACTOR)
def test_the_second_factor_page_gets_its_script_catalogue_and_nothing_else(clinic, otp_code, role):
    # the second-factor page loads /jsi18n/ (issue 17); it was redirected to the second-factor
    # page itself, an HTML answer the browser refused to run as a script (a console error
    # on every staff login): the catalogue is the same for everyone and names no one
    client = password_only(clinic, role, otp_code)
    page = client.get("/account/second-factor/")
    assert page.status_code == 200 and b'<script src="/jsi18n/"' in page.content
    catalogue = client.get("/jsi18n/")
    assert catalogue.status_code == 200
    assert catalogue["Content-Type"].startswith("text/javascript")
    assert client.get("/patients/").status_code == 302
    assert client.get("/me/jsi18n/").status_code in (302, 403)
