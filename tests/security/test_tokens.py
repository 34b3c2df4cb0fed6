"""Issue #11, items 4 and 10: API tokens and the administrator.

The attacks: Django's admin listed API tokens in clear, let an administrator mint a token
for any user (it then read a patient's record, the audit naming the clinician), and showed
TOTP secrets and recovery codes; tokens never expired and survived a password change.
Now tokens are hashed at rest (django-rest-knox), expire (staff 8 h, patients 30 days), are
revoked on a password change and on *log out everywhere*, are listed to their owner with a
revoke button each, and the admin neither shows nor mints a credential: what it may do to
another login is audited and the user is told.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken

from speciosa.clinic.models import AuditEntry

from ..conftest import issue_token, totp_device, verified_login

pytestmark = pytest.mark.django_db


def _token_client(key: str) -> Client:
    return Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {key}")


def _reads(key: str, clinic) -> int:
    return _token_client(key).get(f"/api/v1/patients/{clinic.patient_a.pk}/").status_code


def _admin(clinic) -> Client:
    return verified_login(Client(HTTP_HOST="localhost"), clinic.admin)


# --------------------------------------------------------------------------- at rest


def test_the_database_holds_no_token_only_its_sha512_digest(clinic, otp_code):
    response = Client(HTTP_HOST="localhost").post(
        "/api/v1/auth/token/",
        {"username": "clin_a", "password": clinic.password, "otp": otp_code(clinic.clinician_a)},
        content_type="application/json",
    )
    key = response.json()["token"]
    assert len(key) == 64
    row = AuthToken.objects.get(user=clinic.clinician_a)
    assert row.digest == hashlib.sha512(key.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {AuthToken._meta.db_table}")
        stored = " ".join(str(v) for r in cursor.fetchall() for v in r)
    assert key not in stored and key[15:31] not in stored  # at most the 15-character lookup prefix
    assert _reads(key, clinic) == 200


def test_each_login_of_a_program_gets_its_own_token_and_the_others_keep_working(clinic):
    first, second = issue_token(clinic.clinician_a), issue_token(clinic.clinician_a)
    assert first != second and AuthToken.objects.filter(user=clinic.clinician_a).count() == 2
    assert _reads(first, clinic) == _reads(second, clinic) == 200


def test_the_clear_text_drf_tokens_are_revoked_and_their_table_dropped(clinic):
    """Migration web 0002 on a database that still has REST framework's ``authtoken_token``."""
    migration = importlib.import_module("speciosa.web.migrations.0002_revoke_drf_tokens")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES ('0123456789abcdef0123456789abcdef01234567', %s)",
            [clinic.clinician_a.pk],
        )

    class Editor:  # what the migration uses of a schema editor (SQLite's refuses to open here)
        def __init__(self):
            self.connection = connection

        def execute(self, sql):
            with connection.cursor() as cursor:
                cursor.execute(sql)

    migration.revoke_drf_tokens(None, Editor())
    with connection.cursor() as cursor:
        assert "authtoken_token" not in connection.introspection.table_names(cursor)
    assert _reads("0123456789abcdef0123456789abcdef01234567", clinic) == 401


# --------------------------------------------------------------------------- expiry


def test_staff_tokens_last_8_hours_and_patients_30_days(clinic, settings):
    now = timezone.now()
    for user, life in (
        (clinic.clinician_a, dt.timedelta(hours=8)),
        (clinic.admin, dt.timedelta(hours=8)),
        (clinic.researcher, dt.timedelta(hours=8)),
        (clinic.patient_a.user, dt.timedelta(days=30)),
    ):
        issue_token(user)
        expiry = AuthToken.objects.get(user=user).expiry
        assert abs((expiry - now) - life) < dt.timedelta(minutes=1), user.username
    settings.STAFF_TOKEN_HOURS = 2
    issue_token(clinic.clinician_b)
    assert abs(
        AuthToken.objects.get(user=clinic.clinician_b).expiry - now - dt.timedelta(hours=2)
    ) < dt.timedelta(minutes=1)


def test_an_expired_token_is_refused_and_deleted(clinic):
    key = issue_token(clinic.clinician_a)
    AuthToken.objects.filter(user=clinic.clinician_a).update(
        expiry=timezone.now() - dt.timedelta(seconds=1)
    )
    response = _token_client(key).get(f"/api/v1/patients/{clinic.patient_a.pk}/")
    assert response.status_code == 401 and b"Quinn" not in response.content
    assert not AuthToken.objects.filter(user=clinic.clinician_a).exists()
    assert not AuditEntry.objects.filter(action="view", patient=clinic.patient_a).exists()


def test_the_token_endpoint_says_when_the_token_ends(clinic):
    response = Client(HTTP_HOST="localhost").post(
        "/api/v1/auth/token/",
        {"username": "pat_a", "password": clinic.password},
        content_type="application/json",
    )
    body = response.json()
    ends = dt.datetime.fromisoformat(body["expiry"])
    assert abs(ends - timezone.now() - dt.timedelta(days=30)) < dt.timedelta(minutes=1)
    entry = AuditEntry.objects.filter(action="login", user=clinic.patient_a.user).get()
    assert entry.after["via"] == "api-token" and body["token"] not in str(entry.after)


# --------------------------------------------------------------------------- revocation


def test_a_password_change_on_the_password_page_revokes_every_token(clinic):
    keys = [issue_token(clinic.patient_a.user) for _ in range(2)]
    other = issue_token(clinic.patient_b.user)
    client = verified_login(Client(HTTP_HOST="localhost"), clinic.patient_a.user)
    response = client.post(
        "/account/password/",
        {
            "old_password": clinic.password,
            "new_password1": "a whole new passphrase here",
            "new_password2": "a whole new passphrase here",
        },
    )
    assert response.status_code == 302
    for key in keys:
        assert _token_client(key).get("/api/v1/me/").status_code == 401
    assert _token_client(other).get("/api/v1/me/").status_code == 200  # nobody else's


def test_a_new_password_set_any_other_way_revokes_the_tokens_too(clinic):
    key = issue_token(clinic.clinician_a)
    clinic.clinician_a.set_password("another long passphrase")
    clinic.clinician_a.save()
    assert _reads(key, clinic) == 401


def test_a_password_hash_upgrade_at_login_keeps_the_tokens(clinic, settings):
    key = issue_token(clinic.patient_a.user)
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    assert (
        Client().post("/login/", {"username": "pat_a", "password": clinic.password}).status_code
        == 302
    )
    clinic.patient_a.user.refresh_from_db()
    assert clinic.patient_a.user.password.startswith("pbkdf2_")  # upgraded, not changed
    assert _token_client(key).get("/api/v1/me/").status_code == 200


def test_log_out_everywhere_revokes_every_token_of_the_user(clinic):
    keys = [issue_token(clinic.patient_a.user) for _ in range(3)]
    other = issue_token(clinic.patient_b.user)
    client = verified_login(Client(HTTP_HOST="localhost"), clinic.patient_a.user)
    assert client.post("/account/security/logout-everywhere/").status_code == 302
    assert [_token_client(k).get("/api/v1/me/").status_code for k in keys] == [401, 401, 401]
    assert _token_client(other).get("/api/v1/me/").status_code == 200
    entry = AuditEntry.objects.filter(action="logout-all").get()
    assert entry.after["tokens"] == 3


def test_the_owner_sees_their_tokens_and_revokes_one(clinic):
    keep, drop = issue_token(clinic.patient_a.user), issue_token(clinic.patient_a.user)
    theirs = issue_token(clinic.patient_b.user)
    client = verified_login(Client(HTTP_HOST="localhost"), clinic.patient_a.user)
    page = client.get("/account/security/").content.decode()
    digests = {t.user_id: t.digest for t in AuthToken.objects.all()}
    mine = list(
        AuthToken.objects.filter(user=clinic.patient_a.user).values_list("digest", flat=True)
    )
    assert all(d in page for d in mine) and page.count('name="token"') == 2
    assert digests[clinic.patient_b.user.pk] not in page
    for key in (keep, drop, theirs):
        assert key not in page
    drop_digest = hashlib.sha512(drop.encode()).hexdigest()
    assert (
        client.post("/account/security/tokens/revoke/", {"token": drop_digest}).status_code == 302
    )
    assert _token_client(drop).get("/api/v1/me/").status_code == 401
    assert _token_client(keep).get("/api/v1/me/").status_code == 200
    entry = AuditEntry.objects.filter(action="credentials").get()
    assert entry.user == clinic.patient_a.user and entry.after["what"] == "token-revoked-by-owner"


def test_nobody_revokes_another_users_token_from_their_own_security_page(clinic):
    theirs = issue_token(clinic.patient_b.user)
    digest = hashlib.sha512(theirs.encode()).hexdigest()
    client = verified_login(Client(HTTP_HOST="localhost"), clinic.patient_a.user)
    client.post("/account/security/tokens/revoke/", {"token": digest})
    assert _token_client(theirs).get("/api/v1/me/").status_code == 200
    assert not AuditEntry.objects.filter(action="credentials").exists()


# --------------------------------------------------------------------------- the admin


@pytest.mark.parametrize(
    "url",
    [
        "/admin/knox/authtoken/",
        "/admin/knox/authtoken/add/",
        "/admin/authtoken/tokenproxy/",
        "/admin/authtoken/token/add/",
        "/admin/otp_totp/totpdevice/",
        "/admin/otp_totp/totpdevice/add/",
        "/admin/otp_static/staticdevice/",
        "/admin/otp_static/staticdevice/add/",
        "/admin/oauth2_provider/application/",
        "/admin/oauth2_provider/application/add/",
        "/admin/oauth2_provider/accesstoken/",
        "/admin/oauth2_provider/refreshtoken/",
        "/admin/oauth2_provider/grant/",
        "/admin/oauth2_provider/idtoken/",
    ],
)
def test_the_admin_has_no_page_that_lists_or_mints_a_credential(clinic, url):
    totp_device(clinic.clinician_a)
    issue_token(clinic.clinician_a)
    assert _admin(clinic).get(url).status_code == 404


def test_no_secret_of_another_user_appears_anywhere_in_the_admin(clinic):
    from speciosa.web.account_views import new_recovery_codes

    device = totp_device(clinic.clinician_a)
    codes = new_recovery_codes(clinic.clinician_a)
    key = issue_token(clinic.clinician_a)
    admin = _admin(clinic)
    index = admin.get("/admin/").content.decode()
    assert "otp_totp" not in index and "otp_static" not in index and "knox" not in index
    for url in (
        "/admin/",
        "/admin/auth/user/",
        f"/admin/auth/user/{clinic.clinician_a.pk}/change/",
        "/admin/axes/accessattempt/",
    ):
        body = admin.get(url).content.decode()
        assert admin.get(url).status_code == 200, url
        assert device.key not in body and key not in body and key[:15] not in body, url
        assert not any(code in body for code in codes), url


def _run_action(admin: Client, action: str, user) -> None:
    response = admin.post("/admin/auth/user/", {"action": action, "_selected_action": [user.pk]})
    assert response.status_code == 302, response.content[:500]


def _told(user, clinic) -> str:
    """The notice the user sees on the next page they open."""
    user.refresh_from_db()
    client = verified_login(Client(HTTP_HOST="localhost"), user)
    page = client.get("/account/security/").content.decode()
    assert 'class="credential-notice"' in page
    return page


def test_an_admin_resets_a_clinicians_second_factor_audited_and_the_clinician_is_told(clinic):
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from speciosa.web.account_views import new_recovery_codes

    totp_device(clinic.clinician_a)
    new_recovery_codes(clinic.clinician_a)
    _run_action(_admin(clinic), "reset_second_factor", clinic.clinician_a)
    assert not TOTPDevice.objects.filter(user=clinic.clinician_a).exists()
    assert not StaticDevice.objects.filter(user=clinic.clinician_a).exists()
    entry = AuditEntry.objects.filter(action="credentials").get()
    assert (entry.user, entry.model, entry.object_id) == (
        clinic.admin,
        "User",
        clinic.clinician_a.pk,
    )
    assert entry.after["what"] == "second-factor-reset" and entry.after["devices"] == 2
    # the clinician is told at their next login (before the second factor: they must enrol)
    client = Client(HTTP_HOST="localhost")
    client.post("/login/", {"username": "clin_a", "password": clinic.password})
    page = client.get("/account/second-factor/setup/").content.decode()
    assert "an administrator reset your second factor" in page
    assert "Quinn" not in page and clinic.patient_a.identifier not in page
    # dismissed, it is gone from the pages, and kept on the Security page
    client.post("/account/notices/seen/", {"next": "/account/security/"})
    page = client.get("/account/second-factor/setup/").content.decode()
    assert 'class="credential-notice"' not in page


def test_an_admin_revokes_a_clinicians_tokens_audited_and_told(clinic):
    key = issue_token(clinic.clinician_a)
    _run_action(_admin(clinic), "revoke_api_tokens", clinic.clinician_a)
    assert _reads(key, clinic) == 401
    entry = AuditEntry.objects.filter(action="credentials").get()
    assert entry.after == {"what": "tokens-revoked", "user": clinic.clinician_a.pk, "tokens": 1}
    assert "revoked your API tokens" in _told(clinic.clinician_a, clinic)
    assert (
        'class="credential-notice"'
        not in verified_login(Client(), clinic.clinician_b)
        .get("/account/security/")
        .content.decode()
    )  # only the user concerned is told


def test_an_admin_setting_a_password_revokes_the_tokens_audited_and_told(clinic):
    key = issue_token(clinic.patient_a.user)
    url = f"/admin/auth/user/{clinic.patient_a.user.pk}/password/"
    response = _admin(clinic).post(
        url,
        {
            "password1": "a passphrase the admin set",
            "set_usable_password": "true",
            "password2": "a passphrase the admin set",
        },
    )
    assert response.status_code == 302
    assert _token_client(key).get("/api/v1/me/").status_code == 401
    entry = AuditEntry.objects.filter(action="credentials").get()
    assert entry.user == clinic.admin and entry.after["what"] == "password-set"
    assert "set a new password" in _told(clinic.patient_a.user, clinic)


def test_an_admin_cannot_unlock_a_login_by_deleting_its_failed_attempts(clinic):
    from axes.models import AccessAttempt

    for i in range(3):
        Client().post("/login/", {"username": "clin_a", "password": f"wrong-{i}"})
    attempt = AccessAttempt.objects.get(username="clin_a")
    admin = _admin(clinic)
    assert (
        admin.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AccessAttempt.objects.filter(username="clin_a").exists()
    _run_action(admin, "clear_failed_logins", clinic.clinician_a)
    assert not AccessAttempt.objects.filter(username="clin_a").exists()
    entry = AuditEntry.objects.filter(action="credentials").get()
    assert (
        entry.user == clinic.admin
        and entry.after["what"] == "unlocked"
        and entry.after["attempts"] == 1
    )
    assert "cleared the failed logins" in _told(clinic.clinician_a, clinic)


# --------------------------------------------------------------------------- second factor


def _me(key: str) -> int:
    return _token_client(key).get("/api/v1/me/").status_code


def test_turning_the_second_factor_on_revokes_the_patients_tokens_audited(clinic):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ..conftest import totp_code

    user, other = clinic.patient_a.user, clinic.patient_b.user
    key, others_key = issue_token(user), issue_token(other)
    assert _me(key) == 200  # a token issued to the password alone
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    assert client.get("/account/second-factor/setup/").status_code == 200
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post("/account/second-factor/setup/", {"code": totp_code(device)})
    assert response.status_code == 200 and "recovery" in response.content.decode().lower()
    assert _me(key) == 401
    assert AuthToken.objects.filter(user=user).count() == 0
    assert _me(others_key) == 200  # another patient's token is untouched
    entry = AuditEntry.objects.filter(user=user, action="second-factor").latest("pk")
    assert entry.after == {"what": "enrolled", "tokens_revoked": 1}


def test_a_wrong_code_at_enrolment_changes_nothing_and_keeps_the_tokens(clinic):
    user = clinic.patient_a.user
    key = issue_token(user)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    client.get("/account/second-factor/setup/")
    assert client.post("/account/second-factor/setup/", {"code": "000000"}).status_code == 200
    assert _me(key) == 200


def test_turning_the_second_factor_off_revokes_the_patients_tokens_too(clinic):
    user = clinic.patient_a.user
    totp_device(user)  # the patient opted in
    client = verified_login(Client(HTTP_HOST="localhost"), user)
    key = issue_token(user)
    assert _me(key) == 200
    assert client.post("/account/security/second-factor-off/").url == "/account/security/"
    assert _me(key) == 401
    entry = AuditEntry.objects.filter(user=user, action="second-factor").latest("pk")
    assert entry.after == {"what": "disabled", "tokens_revoked": 1}
