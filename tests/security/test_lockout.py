"""Issue #11, items 9 and 11: lockouts and rate limits.

The attacks: five wrong passwords locked any account, a clinician's included, for 30 minutes,
from anywhere, again and again; patients read their clinicians' login names from
``/fhir/Practitioner``; the token endpoint's throttle keyed on a client-supplied
``X-Forwarded-For`` (a new value per request was a new budget) and `/login/` had no limit per
address at all. Now failures count per username *and* address, the wait doubles with each
further failure, forwarded headers count only from configured proxies, and both logins are
limited per address.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from django.test import Client, RequestFactory

from speciosa.clinic.models import AuditEntry
from speciosa.web import security

from ..conftest import totp_device

pytestmark = pytest.mark.django_db

A, B = "198.51.100.7", "203.0.113.9"


def _login(username: str, password: str, address: str = A, **headers):
    return Client(REMOTE_ADDR=address, **headers).post(
        "/login/", {"username": username, "password": password}
    )


def _token(username: str, password: str, address: str = A, **headers):
    return Client(REMOTE_ADDR=address, HTTP_HOST="localhost", **headers).post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
    )


def _age_failures(seconds: float) -> None:
    """Let ``seconds`` pass for the failures on record (the waits count from the last one)."""
    from axes.models import AccessAttempt

    for attempt in AccessAttempt.objects.all():
        AccessAttempt.objects.filter(pk=attempt.pk).update(
            attempt_time=attempt.attempt_time - dt.timedelta(seconds=seconds)
        )


# --------------------------------------------------------------------------- lockout


def test_five_wrong_passwords_from_one_address_do_not_lock_the_clinician_out_elsewhere(clinic):
    for i in range(5):
        _login("clin_a", f"wrong-{i}", A)
    assert _login("clin_a", clinic.password, A).status_code == 429  # the attacker's address waits
    assert _login("clin_a", clinic.password, B).status_code == 302  # the clinician logs in


def test_the_wait_doubles_with_each_further_failure(clinic):
    for i in range(5):
        _login("pat_a", f"wrong-{i}", A)
    locked = _login("pat_a", clinic.password, A)  # even the right password waits
    assert locked.status_code == 429
    waits = [int(locked["Retry-After"])]
    for i in range(4):
        _age_failures(waits[-1] + 1)  # wait it out: the next wrong try is heard, and waits longer
        again = _login("pat_a", f"again-{i}", A)
        assert again.status_code == 429
        waits.append(int(again["Retry-After"]))
    assert waits == [60, 120, 240, 480, 960]
    text = _login("pat_a", clinic.password, A).content.decode()
    assert "Wait 16 minutes" in text and "each further wrong password doubles the wait" in text
    assert "Logins from other places are not affected" in text
    _age_failures(961)
    assert _login("pat_a", clinic.password, A).status_code == 302  # then the right one works


def test_trying_while_waiting_does_not_make_the_wait_longer(clinic):
    for i in range(5):
        _login("pat_a", f"wrong-{i}", A)
    for i in range(10):
        assert int(_login("pat_a", f"during-{i}", A)["Retry-After"]) == 60


def test_a_login_clears_the_count_for_that_username_and_address(clinic):
    for i in range(4):
        _login("pat_a", f"wrong-{i}", A)
    assert _login("pat_a", clinic.password, A).status_code == 302
    for i in range(4):
        assert _login("pat_a", f"wrong-{i}", A).status_code == 200  # four new tries, no wait


def test_the_token_endpoint_waits_per_username_and_address_too_and_says_so_in_json(clinic):
    for i in range(5):
        _token("pat_a", f"guess-{i}", A)
    locked = _token("pat_a", clinic.password, A)
    assert locked.status_code == 429 and "Wait 1 minute" in locked.json()["detail"]
    assert _token("pat_a", clinic.password, B).status_code == 200


def test_an_administrator_clears_the_wait_and_it_is_audited(clinic):
    from ..conftest import verified_login

    for i in range(5):
        _login("clin_a", f"wrong-{i}", A)
    admin = verified_login(Client(HTTP_HOST="localhost"), clinic.admin)
    admin.post(
        "/admin/auth/user/",
        {"action": "clear_failed_logins", "_selected_action": [clinic.clinician_a.pk]},
    )
    assert _login("clin_a", clinic.password, A).status_code == 302
    entry = AuditEntry.objects.get(action="credentials")
    assert entry.user == clinic.admin and entry.object_id == clinic.clinician_a.pk


def test_a_spoofed_forwarded_header_does_not_move_the_lockout_to_another_address(clinic):
    for i in range(5):
        _login("clin_a", f"wrong-{i}", A, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert (
        _login("clin_a", clinic.password, A, HTTP_X_FORWARDED_FOR="192.0.2.99").status_code == 429
    )
    entry = AuditEntry.objects.filter(action="login-failed").first()
    assert entry.after["ip"] == A


# --------------------------------------------------------------------------- per address


def test_the_login_form_is_limited_per_address_whatever_the_username(clinic):
    codes = [_login(f"nobody{i}", "guess", A).status_code for i in range(31)]
    assert codes[:30] == [200] * 30 and codes[30] == 429
    refused = _login("pat_a", clinic.password, A)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many logins were tried from your network address" in refused.content.decode()
    assert _login("pat_a", clinic.password, B).status_code == 302  # another address is not


def test_a_new_x_forwarded_for_per_request_does_not_reset_the_limit(clinic):
    """No proxy is configured: the header is the client's own words."""
    codes = [
        _login(f"nobody{i}", "guess", A, HTTP_X_FORWARDED_FOR=f"10.9.{i}.1").status_code
        for i in range(31)
    ]
    assert codes[30] == 429
    tokens = [
        _token(f"nobody{i}", "guess", B, HTTP_X_FORWARDED_FOR=f"10.8.{i}.1").status_code
        for i in range(31)
    ]
    assert tokens[:30] == [400] * 30 and tokens[30] == 429


def test_the_web_form_and_the_token_endpoint_share_one_budget_per_address(clinic):
    for i in range(15):
        _login(f"nobody{i}", "guess", A)
        _token(f"nobody{i}", "guess", A)
    assert _token("pat_a", clinic.password, A).status_code == 429


def test_behind_a_configured_proxy_each_client_has_its_own_budget(clinic, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    for i in range(30):
        _login(f"nobody{i}", "guess", "10.0.0.2", HTTP_X_FORWARDED_FOR=f"evil, {A}")
    assert _login("x", "y", "10.0.0.2", HTTP_X_FORWARDED_FOR=A).status_code == 429
    assert _login("pat_a", clinic.password, "10.0.0.2", HTTP_X_FORWARDED_FOR=B).status_code == 302


@pytest.mark.parametrize(
    "remote, forwarded, expected",
    [
        (A, "", A),
        (A, B, A),  # not a proxy: the header is ignored
        ("10.0.0.2", B, B),
        ("10.0.0.2", f"1.1.1.1, {B}", B),  # the client's own left part is not believed
        ("10.0.0.2", f"{B}, 10.0.0.3", B),  # two trusted proxies
        ("10.0.0.2", "not-an-address", "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("2001:db8::1", B, "2001:db8::1"),
    ],
)
def test_the_client_address_trusts_forwarded_headers_only_from_configured_proxies(
    settings, remote, forwarded, expected
):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().get("/", REMOTE_ADDR=remote, **extra)
    assert security.client_ip(request) == expected


def test_by_default_no_proxy_is_trusted(settings):
    from speciosa import settings as ssettings

    assert ssettings.TRUSTED_PROXIES == []
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=B)
    assert security.client_ip(request) == "10.0.0.2"


def _settings_in_subprocess(env: dict[str, str], code: str) -> subprocess.CompletedProcess:
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SPECIOSA_")},
        "SPECIOSA_DEBUG": "1",
        "DJANGO_SETTINGS_MODULE": "speciosa.settings",
        **env,
    }
    full.pop("PYTEST_VERSION", None)
    return subprocess.run(
        [sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=60
    )


def test_throttle_counts_go_to_redis_when_a_cache_url_is_set():
    run = _settings_in_subprocess(
        {"SPECIOSA_CACHE_URL": "redis://cache.internal:6379/1"},
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CACHES['default']['BACKEND'], settings.CACHES['default']['LOCATION'])",
    )
    assert run.stdout.split() == [
        "django.core.cache.backends.redis.RedisCache",
        "redis://cache.internal:6379/1",
    ], run.stderr
    bad = _settings_in_subprocess(
        {"SPECIOSA_CACHE_URL": "memcached://x"}, "import django; django.setup()"
    )
    assert bad.returncode != 0 and "SPECIOSA_CACHE_URL must be" in bad.stderr


# --------------------------------------------------------------------------- login names


def test_fhir_practitioners_carry_no_login_name(clinic, otp_code):
    from speciosa.clinic.models import Note

    Note.objects.create(
        patient=clinic.patient_a, entered_by=clinic.clinician_a, source="clinician", text="seen"
    )
    nameless = clinic.clinician_b
    nameless.first_name = nameless.last_name = ""
    nameless.save()
    clinic.team_a.members.add(nameless)
    Note.objects.create(
        patient=clinic.patient_a, entered_by=nameless, source="clinician", text="seen"
    )
    from ..conftest import issue_token

    client = Client(
        HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {issue_token(clinic.patient_a.user)}"
    )
    for url in (
        "/fhir/Practitioner",
        f"/fhir/Patient/{clinic.patient_a.pk}/$everything",
        f"/fhir/Practitioner/{clinic.clinician_a.pk}",
        f"/fhir/Practitioner/{nameless.pk}",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        assert "clin_a" not in body and "clin_b" not in body, url
    names = client.get(f"/fhir/Practitioner/{nameless.pk}").json()["name"]
    assert names == [{"text": f"Staff member {nameless.pk}"}]


def test_the_api_names_people_without_their_login_names(clinic):
    from speciosa.clinic.models import Note

    from ..conftest import issue_token

    nameless = clinic.clinician_a
    nameless.first_name = nameless.last_name = ""
    nameless.save()
    totp_device(nameless)
    Note.objects.create(patient=clinic.patient_a, entered_by=nameless, source="clinician", text="x")
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {issue_token(nameless)}")
    body = client.get(f"/api/v1/patients/{clinic.patient_a.pk}/timeline/").content.decode()
    assert "clin_a" not in body and f"Staff member {nameless.pk}" in body
