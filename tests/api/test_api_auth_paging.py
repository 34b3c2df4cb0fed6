"""Token authentication, CSRF for session clients, and paging on every list."""

from __future__ import annotations

import hashlib

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient
from tests.conftest import issue_token

from speciosa.clinic.models import Note

pytestmark = pytest.mark.django_db


def test_a_program_gets_a_token_with_username_password_and_a_code_and_uses_it(clinic, otp_code):
    client = APIClient(HTTP_HOST="localhost")
    code = otp_code(clinic.clinician_a)
    response = client.post("/api/v1/auth/token/", {"username": "clin_a", "password": clinic.password,
                                                   "otp": code}, format="json")
    assert response.status_code == 200
    token = response.json()["token"]
    row = AuthToken.objects.get(user=clinic.clinician_a)  # a digest, not the key
    assert row.digest == hashlib.sha512(token.encode()).hexdigest() and token not in row.digest
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/me/").json()["role"] == "clinician"


def test_staff_get_no_token_without_the_second_factor(clinic, otp_code):
    otp_code(clinic.clinician_a)  # the clinician has an authenticator
    client = APIClient(HTTP_HOST="localhost")
    for extra in ({}, {"otp": "000000"}):
        response = client.post("/api/v1/auth/token/", {"username": "clin_a", "password": clinic.password,
                                                       **extra}, format="json")
        assert response.status_code == 400 and "otp" in response.json()["errors"]
    assert not AuthToken.objects.exists()


def test_a_patient_without_a_second_factor_gets_a_token_with_the_password(clinic):
    response = APIClient(HTTP_HOST="localhost").post(
        "/api/v1/auth/token/", {"username": "pat_a", "password": clinic.password}, format="json")
    assert response.status_code == 200


def test_a_wrong_password_gets_no_token(clinic):
    response = APIClient(HTTP_HOST="localhost").post(
        "/api/v1/auth/token/", {"username": "clin_a", "password": "nope"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"__all__": ["Unable to log in with the username and password given."]}
    assert not AuthToken.objects.exists()


def test_guessing_passwords_is_slowed_down(clinic):
    """The token endpoint's own throttle counts every guess from one client, whatever the username."""
    client = APIClient(HTTP_HOST="localhost")
    codes = [client.post("/api/v1/auth/token/", {"username": f"nobody{i}", "password": f"guess{i}"},
                         format="json").status_code for i in range(31)]
    assert codes[:30] == [400] * 30 and codes[30] == 429


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(clinic):
    client = APIClient(HTTP_HOST="localhost")
    codes = [client.post("/api/v1/auth/token/", {"username": "pat_a", "password": f"guess{i}"},
                         format="json").status_code for i in range(5)]
    assert codes == [400, 400, 400, 400, 429]
    right = client.post("/api/v1/auth/token/", {"username": "pat_a", "password": clinic.password}, format="json")
    assert right.status_code == 429 and not AuthToken.objects.exists()


@pytest.mark.parametrize("header", ["Token not-a-real-token", "Token ", "Bearer abc", "Token a b"])
def test_a_bad_token_is_401(clinic, header):
    client = APIClient(HTTP_HOST="localhost")
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_no_credentials_is_401(clinic):
    assert APIClient(HTTP_HOST="localhost").get("/api/v1/patients/").status_code == 401


def test_token_clients_need_no_csrf_token(clinic):
    token = issue_token(clinic.clinician_a)
    client = APIClient(HTTP_HOST="localhost", enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    response = client.post(f"/api/v1/patients/{clinic.patient_a.pk}/notes/", {"text": "ok"}, format="json",
                           headers={"Idempotency-Key": "k1"})
    assert response.status_code == 201


def test_session_clients_need_a_csrf_token_for_unsafe_methods(clinic, verified_login_of):
    client = verified_login_of(APIClient(HTTP_HOST="localhost", enforce_csrf_checks=True), clinic.clinician_a)
    url = f"/api/v1/patients/{clinic.patient_a.pk}/notes/"
    assert client.get("/api/v1/patients/").status_code == 200  # safe methods need none
    refused = client.post(url, {"text": "x"}, format="json", headers={"Idempotency-Key": "k2"})
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    assert Note.objects.count() == 0
    client.get("/login/")  # the login page sets the CSRF cookie
    csrf_value = client.cookies["csrftoken"].value
    accepted = client.post(url, {"text": "x"}, format="json",
                           headers={"Idempotency-Key": "k3", "X-CSRFToken": csrf_value})
    assert accepted.status_code == 201


def _lists(clinic, records) -> dict:
    pid = clinic.patient_a.pk
    note = records["a"]["note"]
    return {
        clinic.clinician_a: ["/api/v1/patients/", f"/api/v1/patients/{pid}/timeline/",
                             f"/api/v1/patients/{pid}/records/note/{note.pk}/history/",
                             "/api/v1/instruments/", "/api/v1/labs/"],
        clinic.patient_a.user: ["/api/v1/me/diary/"],
    }


def test_every_list_is_paged(clinic, api, records):
    for user, urls in _lists(clinic, records).items():
        for url in urls:
            body = api(user).get(url).json()
            assert set(body) == {"count", "next", "previous", "results"}, url
            assert isinstance(body["results"], list)


def test_page_size_and_page_walk_the_timeline(clinic, api, records):
    client = api(clinic.clinician_a)
    url = f"/api/v1/patients/{clinic.patient_a.pk}/timeline/"
    first = client.get(url, {"page_size": 2}).json()
    assert first["count"] == 5 and len(first["results"]) == 2 and first["next"]
    last = client.get(url, {"page_size": 2, "page": 3}).json()
    assert len(last["results"]) == 1 and last["next"] is None
    seen = [e["record_id"] for e in first["results"]]
    assert seen == sorted(seen, reverse=True) or first["results"][0]["at"] >= first["results"][1]["at"]


@pytest.mark.parametrize("params, status", [({"page_size": 0}, 400), ({"page_size": 201}, 400),
                                            ({"page_size": "ten"}, 400), ({"page": 99}, 404),
                                            ({"page": "x"}, 404)])
def test_impossible_pages_are_refused(clinic, api, params, status):
    response = api(clinic.clinician_a).get("/api/v1/instruments/", params)
    assert response.status_code == status


def test_the_openapi_schema_is_served_without_login(db):
    response = APIClient(HTTP_HOST="localhost").get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/patients/{patient_id}/timeline/" in schema["paths"]
    assert not [p for p in schema["paths"] if not p.startswith("/api/v1/")]
    assert APIClient(HTTP_HOST="localhost").get("/api/v1/docs/").status_code == 404
