"""Second factor, lockout, sessions, passwords, headers and the deployment check."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _password_login(clinic, username) -> Client:
    client = Client()
    response = client.post("/login/", {"username": username, "password": clinic.password})
    assert response.status_code == 302
    return client


def test_a_clinician_enrols_an_authenticator_then_gets_recovery_codes(clinic):
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = _password_login(clinic, "clin_a")
    assert client.get("/patients/").url.startswith("/account/second-factor/setup/")
    page = client.get("/account/second-factor/setup/").content.decode()
    assert 'src="data:image/svg+xml;base64,' in page
    device = TOTPDevice.objects.get(user=clinic.clinician_a, confirmed=False)
    done = client.post("/account/second-factor/setup/", {"code": f"{totp(device.bin_key):06d}"})
    codes = re.findall(r"<code>(\w+)</code>", done.content.decode())
    assert len(codes) == 10
    assert client.get("/patients/").status_code == 200
    # next login: a recovery code works once
    again = _password_login(clinic, "clin_a")
    assert again.get("/patients/").url.startswith("/account/second-factor/?")
    assert again.post("/account/second-factor/", {"code": codes[0]}).status_code == 302
    assert again.get("/patients/").status_code == 200
    third = _password_login(clinic, "clin_a")
    third.post("/account/second-factor/", {"code": codes[0]})
    assert third.get("/patients/").status_code == 302


@pytest.mark.parametrize("url,expect", [("/patients/", 302), ("/admin/", 302), ("/worklist/", 302),
                                        ("/api/v1/patients/", 403), ("/fhir/Patient", 403)])
def test_before_the_second_factor_staff_reach_nothing(clinic, otp_code, url, expect):
    from speciosa.clinic.models import AuditEntry

    otp_code(clinic.clinician_a)  # has an authenticator
    client = _password_login(clinic, "clin_a")
    response = client.get(url)
    assert response.status_code == expect
    assert clinic.patient_a.family_name not in response.content.decode()
    if expect == 302:
        assert response.url.startswith("/account/second-factor/")
    assert AuditEntry.objects.filter(action="login", user=clinic.clinician_a).exists()


def test_a_patient_logs_in_with_a_password_and_may_opt_in(clinic, otp_code):
    client = _password_login(clinic, "pat_a")
    assert client.get("/me/").status_code == 200
    assert "Set up an authenticator" in client.get("/account/security/").content.decode()
    otp_code(clinic.patient_a.user)  # opted in
    later = _password_login(clinic, "pat_a")
    assert later.get("/me/").url.startswith("/account/second-factor/")
    assert later.post("/account/second-factor/", {"code": otp_code(clinic.patient_a.user)}).status_code == 302
    assert later.get("/me/").status_code == 200


def test_five_failed_logins_make_that_username_and_address_wait_and_are_audited(clinic):
    from speciosa.clinic.models import AuditEntry

    client = Client()
    for i in range(5):
        client.post("/login/", {"username": "pat_a", "password": f"wrong-{i}"})
    locked = client.post("/login/", {"username": "pat_a", "password": clinic.password})
    assert locked.status_code == 429 and "Too many failed logins" in locked.content.decode()
    assert AuditEntry.objects.filter(action="login-failed", user=clinic.patient_a.user).count() >= 5
    entry = AuditEntry.objects.filter(action="lockout").first()
    assert entry.user == clinic.patient_a.user and entry.after["minutes"] == 1  # then doubling
    assert "wrong-" not in str(list(AuditEntry.objects.values_list("after", flat=True)))  # no passwords


def test_sessions_expire_after_30_minutes_for_staff_and_12_hours_for_patients(clinic, login):
    client = login(clinic.clinician_a)
    client.get("/patients/")
    assert client.session.get_expiry_age() == 30 * 60
    client = login(clinic.patient_a.user)
    client.get("/me/")
    assert client.session.get_expiry_age() == 12 * 60 * 60


def test_log_out_everywhere_ends_every_session_of_the_user(clinic, verified_login_of):
    phone, laptop, other = Client(), Client(), Client()
    for c in (phone, laptop):
        verified_login_of(c, clinic.patient_a.user)
    verified_login_of(other, clinic.patient_b.user)
    assert phone.post("/account/security/logout-everywhere/").url == "/login/"
    assert laptop.get("/me/").status_code == 302
    assert other.get("/me/").status_code == 200


def test_passwords_are_hashed_with_argon2_and_follow_nist_800_63b():
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from speciosa import settings as ssettings

    assert ssettings.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
    names = [v["NAME"].rsplit(".", 1)[1] for v in ssettings.AUTH_PASSWORD_VALIDATORS]
    assert names == ["UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator",
                     "RevokeTokensOnPasswordChange"]  # (not a rule: revokes API tokens)
    with pytest.raises(ValidationError):
        validate_password("short-pass-1")  # under 15 characters
    with pytest.raises(ValidationError):
        validate_password("yfdbufnjh10305070")  # long enough, but on the common-password list
    validate_password("kratom tea at dawn")  # no composition rules


def test_every_page_sends_the_security_headers(clinic, login):
    response = login(clinic.clinician_a).get("/patients/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


PRODUCTION_ENV = {"SPECIOSA_ALLOWED_HOSTS": "speciosa.example.org",
                  "SPECIOSA_TRUSTED_PROXIES": "10.0.0.5",
                  "SPECIOSA_CACHE_URL": "redis://redis.internal:6379/1"}


def test_check_deploy_passes_with_the_documented_production_settings(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTEST_VERSION", "SPECIOSA_DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(PRODUCTION_ENV, SPECIOSA_SECRET_KEY=secrets.token_urlsafe(50), SPECIOSA_DATA_DIR=str(tmp_path))
    run = subprocess.run([sys.executable, "-m", "speciosa.cli", "check-deploy"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    env.pop("SPECIOSA_SECRET_KEY")
    missing = subprocess.run([sys.executable, "-m", "speciosa.cli", "check-deploy"], env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "SPECIOSA_SECRET_KEY is not set" in missing.stderr
