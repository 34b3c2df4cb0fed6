"""Adversarial pass on SMART on FHIR (issue 14): what an attacker, a careless app or a
standard client does with tokens, launches and the authorize form."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from speciosa.web import credentials, security

from . import test_smart, test_smart_backend
from .test_smart import (
    _form_fields,
    _subjects,
    authorize_url,
    bearer,
    code_of,
    launch_token,
    pkce,
    run_cli,
    token,
)

pytestmark = pytest.mark.django_db
chart = test_smart.chart
app = test_smart.app
keys = test_smart_backend.keys
backend = test_smart_backend.backend


def _refresh(app, refresh_token):
    return Client().post("/oauth/token/", {"grant_type": "refresh_token",
                                           "refresh_token": refresh_token,
                                           "client_id": app["client_id"]})


def _new_password(chart, user):
    user.set_password("another correct horse battery")
    user.save()


def _everywhere(chart, user):
    security.log_out_everywhere(user)


def _admin_revokes(chart, user):
    credentials.revoke_tokens(chart.admin, user)


def _admin_resets_second_factor(chart, user):
    credentials.reset_second_factor(chart.admin, user)


@pytest.mark.parametrize("how", [_new_password, _everywhere, _admin_revokes,
                                 _admin_resets_second_factor],
                         ids=["new-password", "log-out-everywhere", "admin-revokes-tokens",
                              "admin-resets-second-factor"])
def test_a_smart_token_ends_with_the_api_tokens(chart, app, how):
    """Whatever ends a user's API tokens (a new password, 'log out everywhere', an
    administrator revoking them or resetting the second factor: a lost phone) ends their
    SMART access and refresh tokens too: an app on a stolen phone keeps no access."""
    user = chart.clinician_a
    got = launch_token(chart, app, user, "user/Observation.read offline_access")
    assert bearer(got["access_token"]).get("/fhir/Observation").status_code == 200
    how(chart, user)
    assert bearer(got["access_token"]).get("/fhir/Observation").status_code == 401
    assert _refresh(app, got["refresh_token"]).status_code == 400


def test_the_bearer_scheme_is_case_insensitive(chart, app):
    """RFC 9110 11.1: the authentication scheme is case-insensitive; a client sending
    ``bearer <token>`` is a standard client, not an anonymous one."""
    got = launch_token(chart, app, chart.patient_a.user, "launch/patient patient/*.read")
    for scheme in ("bearer", "BEARER", "Bearer"):
        fhir = Client(HTTP_AUTHORIZATION=f"{scheme} {got['access_token']}")
        resp = fhir.get("/fhir/Observation")
        assert resp.status_code == 200, (scheme, resp.content[:300])
        assert _subjects(resp.json()) == {f"Patient/{chart.patient_a.pk}"}
    for junk in ("bearer", "Bearer ", "bearer  x", "Bearer\tx", "Basic Zm9vOmJhcg==", "Token"):
        resp = Client(HTTP_AUTHORIZATION=junk).get("/fhir/Observation")
        assert resp.status_code == 401, junk
        assert resp.json()["resourceType"] == "OperationOutcome"


def test_an_ehr_launch_key_works_only_for_the_app_it_was_started_for(chart, app, login):
    """The launch key was handed to one app's launch URL: another registered app that learns
    it (a leak, a malicious app in the same browser) cannot open that patient's record."""
    other = run_cli("oauth", "add-app", "Other app", "--redirect-uri",
                    test_smart.REDIRECT, "--json")
    browser = login(chart.clinician_a)
    started = browser.post(f"/patients/{chart.patient_a.pk}/launch/",
                           {"client_id": app["client_id"]})
    key = parse_qs(urlsplit(started["Location"]).query)["launch"][0]
    verifier, challenge = pkce()
    url = authorize_url(other["client_id"], "launch patient/*.read", challenge, launch=key)
    page = browser.get(url)
    if page.status_code == 200:  # shown: allowing it must not give the other app the patient
        fields = _form_fields(page.content.decode())
        resp = browser.post("/oauth/authorize/", {**fields, "allow": "Authorize"})
        if resp.status_code == 302 and "code=" in resp["Location"]:
            got = token(other["client_id"], code_of(resp["Location"]), verifier).json()
            pytest.fail(f"another app got the launch patient: {got.get('patient')}")
    else:
        assert page.status_code == 302
        assert parse_qs(urlsplit(page["Location"]).query)["error"] == ["invalid_request"]


def test_the_authorize_form_cannot_be_sent_back_without_s256(chart, app, verified_login_of):
    """The S256 rule holds where the code is issued (the form's POST), not only on the
    page: a form sent back with ``plain`` or without a challenge gets no code."""
    browser = verified_login_of(Client(), chart.patient_a.user)
    verifier, challenge = pkce()
    page = browser.get(authorize_url(app["client_id"], "launch/patient patient/*.read",
                                     challenge))
    assert page.status_code == 200
    fields = _form_fields(page.content.decode())
    for tamper in ({"code_challenge_method": "plain", "code_challenge": verifier},
                   {"code_challenge_method": "", "code_challenge": ""}):
        resp = browser.post("/oauth/authorize/", {**fields, **tamper, "allow": "Authorize"})
        location = resp.get("Location", "")
        assert "code=" not in location, (tamper, location)


def test_a_deactivated_users_refresh_token_gets_no_new_token(chart, app):
    user = chart.patient_a.user
    got = launch_token(chart, app, user, "launch/patient patient/*.read offline_access")
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert bearer(got["access_token"]).get("/fhir/Observation").status_code == 401
    assert _refresh(app, got["refresh_token"]).status_code == 400


def test_a_reused_refresh_token_ends_the_family(chart, app):
    """RFC 9700: a refresh token used a second time (stolen and replayed) gets nothing, and
    the token its first use gave stops too."""
    got = launch_token(chart, app, chart.patient_a.user,
                       "launch/patient patient/*.read offline_access")
    first = _refresh(app, got["refresh_token"])
    assert first.status_code == 200
    again = _refresh(app, got["refresh_token"])
    assert again.status_code == 400
    assert bearer(first.json()["access_token"]).get("/fhir/Observation").status_code == 401


def test_the_code_is_traded_only_at_the_redirect_uri_it_was_issued_for(chart, app):
    verifier, challenge = pkce()
    location = test_smart.log_in_and_allow(
        Client(), chart.patient_a.user, chart.password,
        authorize_url(app["client_id"], "launch/patient patient/*.read", challenge))
    resp = Client().post("/oauth/token/", {
        "grant_type": "authorization_code", "code": code_of(location),
        "redirect_uri": "https://app.example/other", "client_id": app["client_id"],
        "code_verifier": verifier})
    assert resp.status_code == 400


def _backend_assertion(backend, **claims):
    import datetime as dt
    import uuid

    import jwt

    now = dt.datetime.now(dt.UTC)
    body = {"iss": backend["client_id"], "sub": backend["client_id"],
            "aud": "http://testserver/oauth/token/",
            "exp": int((now + dt.timedelta(seconds=240)).timestamp()),
            "jti": uuid.uuid4().hex, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, backend["keys"]["RS384"], algorithm="RS384",
                      headers={"kid": "rsa-1"})


@pytest.mark.parametrize("claims", [
    {"nbf": 4102444800}, {"iat": 4102444800}, {"jti": None}, {"sub": "someone-else"},
    {"exp": "tomorrow"}, {"aud": ["https://elsewhere.example/token"]},
], ids=["nbf-2100", "iat-2100", "no-jti", "other-sub", "exp-text", "aud-elsewhere"])
def test_a_backend_assertion_with_bad_times_or_claims_is_refused(backend, claims):
    assert test_smart_backend.ask(_backend_assertion(backend)).status_code == 200
    resp = test_smart_backend.ask(_backend_assertion(backend, **claims))
    assert resp.status_code == 401, (claims, resp.content)


def test_online_access_ends_when_the_person_logs_out(chart, app):
    """``online_access`` is offered as 'Keep access while you are logged in' (and discovery
    says permission-online): after the person logs out of Speciosa its refresh token gets
    nothing, while an ``offline_access`` one still works."""
    user = chart.patient_a.user
    browser = Client()
    verifier, challenge = pkce()
    location = test_smart.log_in_and_allow(
        browser, user, chart.password,
        authorize_url(app["client_id"], "launch/patient patient/*.read online_access",
                      challenge))
    online = token(app["client_id"], code_of(location), verifier).json()
    offline = launch_token(chart, app, user, "launch/patient patient/*.read offline_access")
    assert browser.post("/logout/").status_code in (200, 302)
    assert _refresh(app, online["refresh_token"]).status_code == 400
    assert _refresh(app, offline["refresh_token"]).status_code == 200


@pytest.mark.parametrize("aud", ["https://evil.example/fhir", "http://testserver/fhir/evil",
                                 None], ids=["another-server", "another-path", "missing"])
def test_an_authorize_request_for_another_resource_server_is_refused(chart, app,
                                                                     verified_login_of, aud):
    """SMART App Launch: ``aud`` names the FHIR server the token is for, so that a genuine
    token never goes to a counterfeit server; a request naming another server (or none) is
    sent back with an error, never shown for approval."""
    browser = verified_login_of(Client(), chart.patient_a.user)
    url = authorize_url(app["client_id"], "launch/patient patient/*.read", pkce()[1])
    if aud is None:
        url = url.replace("&aud=http%3A%2F%2Ftestserver%2Ffhir", "")
        assert "aud=" not in url
    else:
        url = url.replace("aud=http%3A%2F%2Ftestserver%2Ffhir",
                          "aud=" + aud.replace(":", "%3A").replace("/", "%2F"))
    resp = browser.get(url)
    assert resp.status_code == 302, resp.status_code
    assert parse_qs(urlsplit(resp["Location"]).query)["error"] == ["invalid_request"]
    # the FHIR base with or without its trailing slash is this server
    for good in ("http%3A%2F%2Ftestserver%2Ffhir", "http%3A%2F%2Ftestserver%2Ffhir%2F"):
        ok = browser.get(authorize_url(app["client_id"], "launch/patient patient/*.read",
                                       pkce()[1]).replace("http%3A%2F%2Ftestserver%2Ffhir", good))
        assert ok.status_code == 200, good
