"""SMART Backend Services: a system proves itself with a JWT signed by its registered key
(private_key_jwt, RS384 or ES384) and gets a system/ token that never reaches past its site;
a replayed, expired, mis-addressed or badly signed assertion gets nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.test import Client

from speciosa.cli import main
from speciosa.clinic import models as cmodels

from . import test_search
from .test_smart import _subjects, run_cli

pytestmark = pytest.mark.django_db
chart = test_search.chart  # the fixture: patient_a with labs, a decoy, patient_b
TOKEN_URL = "http://testserver/oauth/token/"


def _jwk(private_key, kid: str, alg: str) -> dict:
    public = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(
        private_key.public_key()))
    return {**public, "kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture
def keys():
    return {"RS384": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES384": ec.generate_private_key(ec.SECP384R1())}


@pytest.fixture
def backend(chart, keys, tmp_path):
    """A backend client of Site A, registered with ``speciosa oauth add-backend``."""
    jwks = {"keys": [_jwk(keys["RS384"], "rsa-1", "RS384"), _jwk(keys["ES384"], "ec-1", "ES384")]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    client = run_cli("oauth", "add-backend", "Registry", "--site", "Site A", "--jwks", str(path),
                     "--purpose", "quality reporting", "--json")
    client["keys"] = keys
    return client


def assertion(backend, *, alg="RS384", kid=None, aud=TOKEN_URL, lifetime=240, jti=None,
              iss=None, key=None) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {"iss": iss or backend["client_id"], "sub": iss or backend["client_id"], "aud": aud,
              "exp": int((now + dt.timedelta(seconds=lifetime)).timestamp()),
              "jti": jti or uuid.uuid4().hex}
    kid = kid or {"RS384": "rsa-1", "ES384": "ec-1"}.get(alg, "rsa-1")
    if alg != "none":
        key = key or backend["keys"].get(alg, backend["keys"]["RS384"])
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def ask(signed: str, scope: str = "system/*.read", **extra):
    return Client().post("/oauth/token/", {
        "grant_type": "client_credentials", "scope": scope,
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": signed, **extra})


def _consent_to(patient, recipient, clinician):
    """A 42 CFR Part 2 consent of ``patient`` naming ``recipient`` (recorded from paper)."""
    from speciosa.clinic import consents, integrity

    today = integrity.site_today(patient.site)
    consents.record_paper(clinician, patient, consents.latest_document(patient.site, "part2"), {
        "typed_name": patient.name, "signed_on": today, "recipient": recipient,
        "purpose": "quality reporting", "expires_on": today + dt.timedelta(days=30)})


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_a_signed_assertion_gets_a_system_token_that_reaches_only_its_site(chart, backend,
                                                                           alg):
    # a backend client is another party: it reaches the patients of its site whose Part 2
    # consent names it (both of Site A's here; patient_b is Site B's)
    for p in (chart.patient_a, chart.decoy):
        _consent_to(p, "Registry", chart.clinician_a)
    resp = ask(assertion(backend, alg=alg))
    assert resp.status_code == 200, resp.content
    got = resp.json()
    assert got["token_type"] == "Bearer" and got["scope"] == "system/*.read"
    assert "refresh_token" not in got
    fhir = Client(HTTP_AUTHORIZATION=f"Bearer {got['access_token']}")
    bundle = fhir.get("/fhir/Observation").json()
    # patient_a and the decoy are Site A's; patient_b is Site B's
    assert _subjects(bundle) == {f"Patient/{chart.patient_a.pk}", f"Patient/{chart.decoy.pk}"}
    patients = {e["resource"]["id"] for e in fhir.get("/fhir/Patient").json()["entry"]}
    assert patients == {str(chart.patient_a.pk), str(chart.decoy.pk)}
    assert fhir.get(f"/fhir/Patient/{chart.patient_b.pk}").status_code == 404
    # the reads are audited as the client's service login, which names the client
    service = cmodels.AuditEntry.objects.filter(patient=chart.patient_a, action="view").last().user
    assert service.username == f"oauth-{backend['client_id'][:40]}"
    assert not service.has_usable_password()


def test_a_replayed_assertion_is_refused(backend):
    signed = assertion(backend)
    assert ask(signed).status_code == 200
    again = ask(signed)
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"


@pytest.mark.parametrize("how", ["expired", "too long", "wrong audience", "unknown kid",
                                 "another key", "HS256", "none", "another issuer", "garbage"])
def test_a_bad_assertion_is_refused(backend, how):
    if how == "expired":
        signed = assertion(backend, lifetime=-60)
    elif how == "too long":
        signed = assertion(backend, lifetime=3600)  # more than five minutes ahead
    elif how == "wrong audience":
        signed = assertion(backend, aud="https://elsewhere.example/token")
    elif how == "unknown kid":
        signed = assertion(backend, kid="nope")
    elif how == "another key":
        signed = assertion(backend, key=rsa.generate_private_key(public_exponent=65537,
                                                                 key_size=2048))
    elif how == "HS256":
        signed = assertion(backend, alg="HS256", key="a shared secret nobody registered")
    elif how == "none":
        signed = assertion(backend, alg="none", key=None)
    elif how == "another issuer":
        signed = assertion(backend, iss="someone-else")
    else:
        signed = "not.a.jwt"
    resp = ask(signed)
    assert resp.status_code == 401, (how, resp.content)
    assert resp.json()["error"] == "invalid_client"


def test_a_backend_client_gets_no_patient_or_user_scope_and_no_secret_login(chart, backend):
    resp = ask(assertion(backend), scope="user/*.read")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    resp = Client().post("/oauth/token/", {"grant_type": "client_credentials",
                                           "scope": "system/*.read",
                                           "client_id": backend["client_id"],
                                           "client_secret": "guess"})
    assert resp.status_code == 401


def test_a_system_token_without_an_observation_scope_gets_403(chart, backend):
    got = ask(assertion(backend), scope="system/Patient.rs").json()
    fhir = Client(HTTP_AUTHORIZATION=f"Bearer {got['access_token']}")
    assert fhir.get("/fhir/Patient").status_code == 200
    resp = fhir.get("/fhir/Observation")
    assert resp.status_code == 403 and resp.json()["issue"][0]["code"] == "forbidden"


def test_an_app_cannot_use_client_credentials(chart):
    app = run_cli("oauth", "add-app", "Server app", "--redirect-uri", "https://a.example/cb",
                  "--confidential", "--json")
    resp = Client().post("/oauth/token/", {"grant_type": "client_credentials",
                                           "scope": "system/*.read",
                                           "client_id": app["client_id"],
                                           "client_secret": app["client_secret"]})
    assert resp.status_code in (400, 401)
    assert "access_token" not in resp.json()


def test_registering_a_backend_refuses_private_keys_and_unknown_sites(chart, keys, tmp_path,
                                                                      capsys):
    private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["RS384"]))
    path = tmp_path / "private.json"
    path.write_text(json.dumps({"keys": [private]}))
    assert main(["oauth", "add-backend", "X", "--site", "Site A", "--jwks", str(path)]) == 2
    assert "PRIVATE" in capsys.readouterr().err
    public = tmp_path / "public.json"
    public.write_text(json.dumps({"keys": [_jwk(keys["RS384"], "k", "RS384")]}))
    assert main(["oauth", "add-backend", "X", "--site", "Nowhere", "--jwks", str(public)]) == 2
    assert "no site named" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{")
    assert main(["oauth", "add-backend", "X", "--site", "Site A",
                 "--jwks", str(tmp_path / "bad.json")]) == 2


def test_a_removed_backend_client_loses_its_token_and_its_service_login(chart, backend):
    got = ask(assertion(backend)).json()
    assert main(["oauth", "remove", backend["client_id"]]) == 0
    fhir = Client(HTTP_AUTHORIZATION=f"Bearer {got['access_token']}")
    assert fhir.get("/fhir/Observation").status_code == 401
    assert ask(assertion(backend)).status_code == 401
    from django.contrib.auth import get_user_model

    service = get_user_model().objects.get(username=f"oauth-{backend['client_id'][:40]}")
    assert not service.is_active
