"""SMART on FHIR App Launch: an app logs a person in through Speciosa's own login (second
factor included for staff), gets a code with PKCE (S256), trades it for a bearer token and
reads the FHIR API; its scopes narrow what the person's role reaches, never widen it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
from contextlib import redirect_stdout
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from django.test import Client

from speciosa.cli import main
from speciosa.clinic import models as cmodels
from speciosa.interop.export import validate
from speciosa.interop.models import SmartLaunch

from ..conftest import totp_code, totp_device
from . import test_search

pytestmark = pytest.mark.django_db
chart = test_search.chart  # the fixture: patient_a with labs, a decoy, patient_b
REDIRECT = "https://app.example/callback"


def run_cli(*argv) -> dict:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(list(argv)) == 0
    return json.loads(out.getvalue())


@pytest.fixture
def app(db):
    """A public SMART app registered with ``speciosa oauth add-app``."""
    return run_cli("oauth", "add-app", "Chart viewer", "--redirect-uri", REDIRECT,
                   "--launch-uri", "https://app.example/launch", "--json")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(client_id: str, scope: str, challenge: str, *, method: str = "S256",
                  **extra) -> str:
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
             "scope": scope, "state": "st4te", "aud": "http://testserver/fhir",
             "code_challenge": challenge, "code_challenge_method": method, **extra}
    return "/oauth/authorize/?" + urlencode(query)


def _form_fields(html: str) -> dict[str, str]:
    """The hidden inputs of the authorize form (as a browser would send them back)."""
    import re

    fields = {}
    for tag in re.findall(r"<input[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="hidden"' in tag:
            fields[name.group(1)] = (value.group(1) if value else "").replace("&amp;", "&")
    return fields


def log_in_and_allow(browser: Client, user, password: str, url: str, *,
                     patient=None) -> str:
    """Drive the authorize page as a person would: the login form, the second factor when
    the user needs one, then Allow (choosing ``patient`` when asked). Returns the redirect."""
    from speciosa.web import security

    if security.needs_second_factor(user):
        totp_device(user)  # an enrolled authenticator
    resp = browser.get(url)
    assert resp.status_code == 302 and resp["Location"].startswith("/login/"), resp
    resp = browser.post("/login/", {"username": user.username, "password": password,
                                    "next": url})
    assert resp.status_code == 302 and resp["Location"] == url, resp
    resp = browser.get(url)
    if security.needs_second_factor(user):
        # the authorize page is behind the second factor like every other staff page
        assert resp.status_code == 302 and "/account/second-factor/" in resp["Location"]
        device = totp_device(user)
        type(device).objects.filter(pk=device.pk).update(last_t=-1)
        resp = browser.post(resp["Location"], {"code": totp_code(device), "next": url})
        assert resp.status_code == 302 and resp["Location"] == url
        resp = browser.get(url)
    assert resp.status_code == 200, resp.content[:500]
    fields = _form_fields(resp.content.decode())
    fields["allow"] = "Authorize"
    if patient is not None:
        fields["patient"] = str(patient.pk)
    resp = browser.post("/oauth/authorize/", fields)
    assert resp.status_code == 302, resp.content[:800]
    return resp["Location"]


def code_of(location: str) -> str:
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == REDIRECT
    query = parse_qs(parts.query)
    assert query["state"] == ["st4te"], query
    return query["code"][0]


def token(client_id: str, code: str, verifier: str):
    return Client().post("/oauth/token/", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": client_id, "code_verifier": verifier})


def bearer(access_token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {access_token}")


def launch_token(chart, app, user, scope, *, patient=None) -> dict:
    verifier, challenge = pkce()
    location = log_in_and_allow(Client(), user, chart.password,
                                authorize_url(app["client_id"], scope, challenge),
                                patient=patient)
    resp = token(app["client_id"], code_of(location), verifier)
    assert resp.status_code == 200, resp.content
    return resp.json()


def _subjects(bundle) -> set[str]:
    return {e["resource"]["subject"]["reference"] for e in bundle.get("entry", ())}


# --------------------------------------------------------------------------- discovery

def test_smart_configuration_is_public_and_names_the_endpoints(client):
    resp = client.get("/fhir/.well-known/smart-configuration")
    assert resp.status_code == 200
    conf = resp.json()
    assert conf["authorization_endpoint"] == "http://testserver/oauth/authorize/"
    assert conf["token_endpoint"] == "http://testserver/oauth/token/"
    assert conf["code_challenge_methods_supported"] == ["S256"]
    assert {"launch-standalone", "launch-ehr", "context-standalone-patient",
            "permission-v1", "permission-v2"} <= set(conf["capabilities"])
    assert "private_key_jwt" in conf["token_endpoint_auth_methods_supported"]
    # the ID token's issuer is the one advertised
    oidc = client.get("/oauth/.well-known/openid-configuration").json()
    assert conf["issuer"] == oidc["issuer"]


def test_the_capability_statement_declares_smart_and_its_endpoints(client):
    meta = client.get("/fhir/metadata").json()
    validate(meta)
    security = meta["rest"][0]["security"]
    codes = [c["code"] for s in security["service"] for c in s.get("coding", ())]
    assert "SMART-on-FHIR" in codes
    ext = next(e for e in security["extension"]
               if e["url"].endswith("StructureDefinition/oauth-uris"))
    uris = {e["url"]: e["valueUri"] for e in ext["extension"]}
    assert uris == {"authorize": "http://testserver/oauth/authorize/",
                    "token": "http://testserver/oauth/token/"}
    # a SMART client library finds them there: fhirclient's R4 models and its OAuth2 set-up
    from fhirclient.auth import FHIRAuth, FHIROAuth2Auth
    from fhirclient.models.capabilitystatement import CapabilityStatement

    parsed = CapabilityStatement(meta)
    auth = FHIRAuth.from_capability_security(parsed.rest[0].security,
                                             {"app_id": "x", "redirect_uri": REDIRECT})
    assert isinstance(auth, FHIROAuth2Auth)
    assert auth._authorize_uri == "http://testserver/oauth/authorize/"
    assert auth._token_uri == "http://testserver/oauth/token/"


# --------------------------------------------------------------------------- standalone launch

def test_a_standalone_launch_with_pkce_reads_the_patients_observations(chart, app):
    """authorize -> login with the second factor -> pick the patient -> code -> token (with
    ``patient`` and an ID token naming the clinician) -> GET Observation with the bearer."""
    got = launch_token(chart, app, chart.clinician_a,
                       "launch/patient patient/Observation.read openid fhirUser",
                       patient=chart.patient_a)
    assert got["token_type"] == "Bearer"
    assert got["patient"] == str(chart.patient_a.pk)
    assert set(got["scope"].split()) == {"launch/patient", "patient/Observation.read",
                                         "openid", "fhirUser"}
    keys = jwt.PyJWKSet.from_dict(Client().get("/oauth/.well-known/jwks.json").json())
    id_token = jwt.decode(got["id_token"], key=keys.keys[0], algorithms=["RS256"],
                          audience=app["client_id"])
    assert id_token["fhirUser"].endswith(f"/fhir/Practitioner/{chart.clinician_a.pk}")
    fhir = bearer(got["access_token"])
    resp = fhir.get("/fhir/Observation", {"patient": chart.patient_a.pk})
    assert resp.status_code == 200, resp.content
    bundle = resp.json()
    validate(bundle)
    assert len(bundle["entry"]) == 4  # three labs and the COWS total
    assert _subjects(bundle) == {f"Patient/{chart.patient_a.pk}"}
    # without naming the patient: still only the launch patient (the decoy of the same team
    # has a prolactin result too)
    everything = fhir.get("/fhir/Observation").json()
    assert _subjects(everything) == {f"Patient/{chart.patient_a.pk}"}
    # the decoy is the clinician's patient too, but not this token's
    assert fhir.get("/fhir/Observation", {"patient": chart.decoy.pk}).status_code == 404
    # the read is audited as the clinician's
    assert cmodels.AuditEntry.objects.filter(user=chart.clinician_a, action="view",
                                             patient=chart.patient_a).exists()


def test_a_patients_own_login_gets_their_own_record_as_the_context(chart, app):
    got = launch_token(chart, app, chart.patient_a.user, "launch/patient patient/*.read")
    assert got["patient"] == str(chart.patient_a.pk)
    fhir = bearer(got["access_token"])
    bundle = fhir.get("/fhir/Observation").json()
    assert _subjects(bundle) == {f"Patient/{chart.patient_a.pk}"}
    assert fhir.get(f"/fhir/Patient/{chart.patient_a.pk}").json()["id"] == str(chart.patient_a.pk)
    assert fhir.get(f"/fhir/Patient/{chart.patient_b.pk}").status_code == 404


def test_a_wrong_code_verifier_is_refused_and_a_code_works_once(chart, app):
    verifier, challenge = pkce()
    location = log_in_and_allow(Client(), chart.patient_a.user, chart.password,
                                authorize_url(app["client_id"], "patient/*.read launch/patient",
                                              challenge))
    code = code_of(location)
    wrong = token(app["client_id"], code, pkce()[0])
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    missing = Client().post("/oauth/token/", {"grant_type": "authorization_code", "code": code,
                                              "redirect_uri": REDIRECT,
                                              "client_id": app["client_id"]})
    assert missing.status_code == 400
    assert token(app["client_id"], code, verifier).status_code == 200
    assert token(app["client_id"], code, verifier).status_code == 400  # a code works once


@pytest.mark.parametrize("extra", [{"code_challenge_method": "plain"}, {"no_challenge": True}],
                         ids=["plain", "none"])
def test_pkce_with_s256_is_required(chart, app, extra):
    browser = Client()
    browser.force_login(chart.patient_a.user)
    _, challenge = pkce()
    url = authorize_url(app["client_id"], "patient/*.read", challenge,
                        method=extra.get("code_challenge_method", "S256"))
    if extra.get("no_challenge"):
        url = url.replace(f"&code_challenge={challenge}", "")
    resp = browser.get(url)
    assert resp.status_code == 302
    assert resp["Location"].startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(resp["Location"]).query)
    assert query["error"] == ["invalid_request"] and "code" not in query


def test_an_unregistered_redirect_uri_is_never_followed(chart, app):
    browser = Client()
    browser.force_login(chart.patient_a.user)
    url = authorize_url(app["client_id"], "patient/*.read", pkce()[1]).replace(
        "app.example", "evil.example")
    resp = browser.get(url)
    assert resp.status_code == 400 and not resp.has_header("Location")
    assert b"redirect" in resp.content.lower()


def test_a_clinician_cannot_pick_another_teams_patient(chart, app, verified_login_of):
    from oauth2_provider.models import Grant

    browser = verified_login_of(Client(), chart.clinician_a)
    page = browser.get(authorize_url(app["client_id"], "launch/patient patient/*.read",
                                     pkce()[1]))
    assert page.status_code == 200
    assert b"Quinn, Maya" in page.content and b"Reyes, Omar" not in page.content
    fields = {**_form_fields(page.content.decode()), "allow": "Authorize"}
    for hostile in (str(chart.patient_b.pk), "", "999999"):
        resp = browser.post("/oauth/authorize/", {**fields, "patient": hostile})
        assert resp.status_code == 200, hostile  # the page again, with the error
        assert b'class="error" role="alert"' in resp.content, hostile
    assert not Grant.objects.exists()  # nothing was issued: the app got no code


# --------------------------------------------------------------------------- EHR launch

def test_an_ehr_launch_names_the_patient_from_the_clinicians_page(chart, app, login):
    browser = login(chart.clinician_a)
    resp = browser.post(f"/patients/{chart.patient_a.pk}/launch/",
                        {"client_id": app["client_id"]})
    assert resp.status_code == 302
    target = urlsplit(resp["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == "https://app.example/launch"
    query = parse_qs(target.query)
    assert query["iss"] == ["http://testserver/fhir"]
    key = query["launch"][0]
    verifier, challenge = pkce()
    url = authorize_url(app["client_id"], "launch patient/Observation.rs", challenge, launch=key)
    page = browser.get(url)
    assert page.status_code == 200
    assert b"Quinn, Maya" in page.content  # the launch patient, not a choice
    fields = _form_fields(page.content.decode())
    assert fields["launch"] == key
    resp = browser.post("/oauth/authorize/", {**fields, "allow": "Authorize"})
    got = token(app["client_id"], code_of(resp["Location"]), verifier).json()
    assert got["patient"] == str(chart.patient_a.pk)
    bundle = bearer(got["access_token"]).get("/fhir/Observation").json()
    assert _subjects(bundle) == {f"Patient/{chart.patient_a.pk}"}
    # the launch key was single-use
    assert SmartLaunch.objects.get(key=key).used
    again = browser.get(authorize_url(app["client_id"], "launch patient/Observation.rs",
                                      pkce()[1], launch=key))
    assert again.status_code == 302
    assert parse_qs(urlsplit(again["Location"]).query)["error"] == ["invalid_request"]


def test_an_ehr_launch_of_another_teams_patient_or_by_another_login_fails(
        chart, app, login, verified_login_of):
    browser = login(chart.clinician_a)
    ours = {"client_id": app["client_id"]}
    assert browser.post(f"/patients/{chart.patient_b.pk}/launch/", ours).status_code == 404
    assert browser.post(f"/patients/{chart.patient_a.pk}/launch/",
                        {"client_id": "nope"}).status_code == 404
    started = browser.post(f"/patients/{chart.patient_a.pk}/launch/", ours)
    key = parse_qs(urlsplit(started["Location"]).query)["launch"][0]
    other = verified_login_of(Client(), chart.clinician_b)
    resp = other.get(authorize_url(app["client_id"], "launch patient/*.read", pkce()[1],
                                   launch=key))
    assert resp.status_code == 302
    assert parse_qs(urlsplit(resp["Location"]).query)["error"] == ["invalid_request"]
    patient_browser = login(chart.patient_a.user)
    assert patient_browser.post(f"/patients/{chart.patient_a.pk}/launch/",
                                ours).status_code == 403


# --------------------------------------------------------------------------- narrowing

def test_a_token_without_an_observation_scope_gets_403_on_observation(chart, app):
    got = launch_token(chart, app, chart.patient_a.user, "launch/patient patient/Patient.read")
    fhir = bearer(got["access_token"])
    assert fhir.get(f"/fhir/Patient/{chart.patient_a.pk}").status_code == 200
    for url in ("/fhir/Observation", f"/fhir/Observation?patient={chart.patient_a.pk}",
                f"/fhir/Patient/{chart.patient_a.pk}/$everything"):
        resp = fhir.get(url)
        assert resp.status_code == 403, (url, resp.content)
        body = resp.json()
        assert body.get("resourceType") == "OperationOutcome", (url, body)
        assert body["issue"][0]["code"] == "forbidden"
        # (each type $everything would show needs a scope: it names the first one missing)
        assert "scopes do not allow" in body["issue"][0]["diagnostics"]
        if "everything" not in url:
            assert "search Observation" in body["issue"][0]["diagnostics"]


def test_user_observation_read_of_a_clinician_sees_only_their_care_teams(chart, app):
    services_lab_for_b(chart)
    got = launch_token(chart, app, chart.clinician_a, "user/Observation.read")
    assert "patient" not in got
    fhir = bearer(got["access_token"])
    subjects = _subjects(fhir.get("/fhir/Observation").json())
    assert subjects == {f"Patient/{chart.patient_a.pk}", f"Patient/{chart.decoy.pk}"}
    assert fhir.get("/fhir/Observation", {"patient": chart.patient_b.pk}).status_code == 404
    assert fhir.get("/fhir/Patient").status_code == 403  # no Patient scope


def services_lab_for_b(chart):
    import datetime as dt

    from speciosa.clinic import services

    services.record_lab(chart.clinician_b, chart.patient_b, {
        "lab": "prolactin", "collected_at": dt.datetime(2026, 1, 20, 9, tzinfo=dt.UTC),
        "value": "12", "unit": "ng/mL"})


def test_patient_scopes_without_a_patient_context_reach_nobody(chart, app):
    got = launch_token(chart, app, chart.clinician_a, "patient/*.read")
    assert "patient" not in got
    bundle = bearer(got["access_token"]).get("/fhir/Observation").json()
    assert bundle.get("entry", []) == []


def test_user_scopes_of_a_patient_login_still_reach_only_themselves(chart, app):
    services_lab_for_b(chart)
    got = launch_token(chart, app, chart.patient_b.user, "user/*.read")
    bundle = bearer(got["access_token"]).get("/fhir/Observation").json()
    assert _subjects(bundle) == {f"Patient/{chart.patient_b.pk}"}


def test_a_researchers_or_admins_token_reaches_no_patient(chart, app):
    for user in (chart.researcher, chart.admin):
        got = launch_token(chart, app, user, "user/*.read")
        fhir = bearer(got["access_token"])
        assert fhir.get("/fhir/Observation").json().get("entry", []) == []
        assert fhir.get(f"/fhir/Patient/{chart.patient_a.pk}").status_code == 404


def test_write_and_system_scopes_are_not_granted_to_an_app(chart, app):
    browser = Client()
    browser.force_login(chart.patient_a.user)
    for scope in ("patient/Observation.write", "system/*.read", "patient/*.*", "user/*.cruds"):
        resp = browser.get(authorize_url(app["client_id"], scope, pkce()[1]))
        assert resp.status_code == 302, scope
        assert parse_qs(urlsplit(resp["Location"]).query)["error"] == ["invalid_scope"], scope


def test_a_bad_an_expired_or_a_revoked_bearer_token_is_401(chart, app):
    import datetime as dt

    from oauth2_provider.models import AccessToken

    got = launch_token(chart, app, chart.patient_a.user, "launch/patient patient/*.read")
    assert bearer("not-a-token").get("/fhir/Observation").status_code == 401
    resp = bearer(got["access_token"] + "x").get("/fhir/Observation")
    assert resp.status_code == 401
    assert resp.json()["resourceType"] == "OperationOutcome"
    assert "Bearer" in resp["WWW-Authenticate"]
    AccessToken.objects.update(expires=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    assert bearer(got["access_token"]).get("/fhir/Observation").status_code == 401


def test_a_bearer_token_is_not_accepted_by_the_rest_api(chart, app):
    got = launch_token(chart, app, chart.patient_a.user, "launch/patient patient/*.read")
    # scopes are a FHIR notion: the REST API (full role reach) does not take the token
    assert bearer(got["access_token"]).get("/api/v1/patients/").status_code in (401, 403)


def test_a_refreshed_token_keeps_its_patient_context(chart, app):
    got = launch_token(chart, app, chart.patient_a.user,
                       "launch/patient patient/*.read offline_access")
    resp = Client().post("/oauth/token/", {"grant_type": "refresh_token",
                                           "refresh_token": got["refresh_token"],
                                           "client_id": app["client_id"]})
    assert resp.status_code == 200, resp.content
    fresh = resp.json()
    assert fresh["patient"] == str(chart.patient_a.pk)
    bundle = bearer(fresh["access_token"]).get("/fhir/Observation").json()
    assert _subjects(bundle) == {f"Patient/{chart.patient_a.pk}"}


# --------------------------------------------------------------------------- CLI

def test_the_cli_registers_lists_and_removes_clients(chart, app, capsys):
    rows = run_cli("oauth", "list", "--json")
    assert [(r["client_id"], r["kind"]) for r in rows] == [(app["client_id"], "app")]
    got = launch_token(chart, app, chart.patient_a.user, "launch/patient patient/*.read")
    assert main(["oauth", "remove", app["client_id"]]) == 0
    assert bearer(got["access_token"]).get("/fhir/Observation").status_code == 401
    assert main(["oauth", "remove", app["client_id"]]) == 2
    assert main(["oauth", "add-app", "x", "--redirect-uri", "javascript:alert(1)"]) == 2
    assert "--redirect-uri" in capsys.readouterr().err
    confidential = run_cli("oauth", "add-app", "Server app", "--redirect-uri", REDIRECT,
                           "--confidential", "--json")
    assert len(confidential["client_secret"]) > 30
    assert cmodels.AuditEntry.objects.filter(model="OAuthClient").count() == 3


def test_the_patients_page_offers_the_app_and_lets_its_form_reach_it(chart, app, login):
    page = login(chart.clinician_a).get(f"/patients/{chart.patient_a.pk}/")
    assert page.status_code == 200
    assert f'action="/patients/{chart.patient_a.pk}/launch/"'.encode() in page.content
    assert f'value="{app["client_id"]}"'.encode() in page.content
    policy = page["Content-Security-Policy"]
    form_action = next(d for d in policy.split(";") if d.strip().startswith("form-action"))
    assert form_action.split()[1:] == ["'self'", "https://app.example"]


def test_a_bearer_token_works_beside_an_unverified_staff_session(chart, app):
    got = launch_token(chart, app, chart.clinician_a, "user/Observation.read")
    browser = Client(HTTP_AUTHORIZATION=f"Bearer {got['access_token']}")
    browser.force_login(chart.clinician_a)  # password only: no second factor in this session
    assert browser.get("/fhir/Observation").status_code == 200
    assert browser.get("/patients/").status_code == 302  # the session itself still needs it
    junk = Client(HTTP_AUTHORIZATION="Bearer not-a-token")
    junk.force_login(chart.clinician_a)
    assert junk.get("/fhir/Observation").status_code == 403
