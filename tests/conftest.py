"""Shared fixtures: a small clinic with two sites, two care teams and every role; and the
browser (Playwright driving Debian's chromium at /usr/bin/chromium, one per test process)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import shutil
from dataclasses import dataclass

import pytest

_counter = itertools.count(1)


def pytest_configure(config):
    """The .mo catalogues, built from the .po files when missing or older (``make install``
    does the same): a run of pytest alone, after a pull that changed a translation, tests the
    translation it has (docs/translation.md). xdist workers find them built by then."""
    from speciosa.ops import catalogues

    if not hasattr(config, "workerinput"):
        catalogues.compile_catalogues()


@dataclass
class SmallClinic:
    site_a: object
    site_b: object
    team_a: object
    team_b: object
    clinician_a: object  # member of team_a
    clinician_b: object  # member of team_b
    admin: object
    researcher: object
    patient_a: object  # Patient in team_a, with a login
    patient_b: object  # Patient in team_b, with a login
    password: str = "correct-horse-battery"


def make_user(username: str, role: str | None, password: str, **extra):
    from django.contrib.auth import get_user_model

    from speciosa.clinic.models import Profile

    user = get_user_model().objects.create_user(username=username, password=password, **extra)
    if role:
        Profile.objects.create(user=user, role=role)
    return user


def make_patient(site, team, username, password, sex="male", **fields):
    from speciosa.clinic.models import Patient

    user = make_user(username, "patient", password) if username else None
    n = next(_counter)
    return Patient.objects.create(
        site=site, care_team=team, user=user, identifier=fields.pop("identifier", f"T-{n:05d}"),
        given_name=fields.pop("given_name", "Alex"), family_name=fields.pop("family_name", f"Tester{n}"),
        birth_date=fields.pop("birth_date", dt.date(1985, 6, 15)), sex=sex, **fields)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests create many logins; a slow password hash only slows them down."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Login throttles count per address in the cache, and every test client is 127.0.0.1:
    each test starts from zero."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _audit_trail_stays_append_only(request):
    """Every test sees the database triggers that make the audit trail append-only.

    A test that commits (``transaction=True``, the live server) is cleaned up by Django
    emptying every table; on SQLite that is a ``DELETE`` the trigger refuses (PostgreSQL
    uses ``TRUNCATE``, which row triggers do not see). So the SQLite delete trigger is
    lifted for that clean-up only, and put back before the next test.
    """
    marker = request.node.get_closest_marker("django_db")
    uses_db = marker is not None or "db" in request.fixturenames or "transactional_db" in request.fixturenames
    if not uses_db:
        yield
        return
    transactional = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0]))) \
        or "transactional_db" in request.fixturenames or "live_server" in request.fixturenames
    request.getfixturevalue("transactional_db" if transactional else "db")
    import importlib

    from django.db import connection

    triggers = importlib.import_module("speciosa.clinic.migrations.0002_audit_append_only")

    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(triggers.SQLITE_NO_DELETE)
    yield
    if transactional and connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER IF EXISTS audit_no_delete")


@pytest.fixture
def clinic(db) -> SmallClinic:
    from speciosa.clinic.models import CareTeam, Site

    pw = SmallClinic.password
    site_a = Site.objects.create(name="Site A")
    site_b = Site.objects.create(name="Site B")
    team_a = CareTeam.objects.create(site=site_a, name="Team A")
    team_b = CareTeam.objects.create(site=site_b, name="Team B")
    clinician_a = make_user("clin_a", "clinician", pw, first_name="Ada", last_name="Okafor")
    clinician_b = make_user("clin_b", "clinician", pw, first_name="Ben", last_name="Haddad")
    team_a.members.add(clinician_a)
    team_b.members.add(clinician_b)
    admin = make_user("root", None, pw, is_superuser=True, is_staff=True)
    researcher = make_user("res", "researcher", pw)
    patient_a = make_patient(site_a, team_a, "pat_a", pw, sex="female", given_name="Maya", family_name="Quinn")
    patient_b = make_patient(site_b, team_b, "pat_b", pw, sex="male", given_name="Omar", family_name="Reyes")
    return SmallClinic(site_a, site_b, team_a, team_b, clinician_a, clinician_b, admin, researcher,
                       patient_a, patient_b)


def totp_device(user):
    """The user's confirmed authenticator (TOTP) device, made when missing."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    return device or TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)


def totp_code(device) -> str:
    """The device's current 6-digit code (django_otp.oath.totp)."""
    from django_otp.oath import totp

    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def verified_login(client, user):
    """Log ``client`` in as ``user`` with the second factor done when the user needs it.

    ``force_login`` skips the password; the session key django-otp reads
    (``django_otp.DEVICE_ID_SESSION_KEY``) is then set to the user's device, exactly what
    ``django_otp.login`` stores after a verified code.
    """
    from django_otp import DEVICE_ID_SESSION_KEY

    from speciosa.web import security

    client.force_login(user)
    if security.needs_second_factor(user):
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
        session.save()
    return client


def form_token(value: str) -> str:
    """A web form's one-time token for ``value``, signed as the server signs the tokens it puts
    in its forms (the same ``value`` gives the same token: a double tap)."""
    from speciosa.web.forms import TOKEN_SIGNER

    return TOKEN_SIGNER.sign(value)


def issue_token(user) -> str:
    """A new API token of ``user``, as the token endpoint would hand it out."""
    from speciosa.api import tokens

    return tokens.issue(user)[1]


STALE_TOKENS = ["token-expired", "token-revoked", "token-old-password"]


def stale_token(user, how: str) -> str:
    """A token of ``user`` that must no longer work: ``token-expired`` (its end passed),
    ``token-revoked`` (revoked by its owner), ``token-old-password`` (issued before a
    password change)."""
    from knox.models import AuthToken

    from speciosa.api import tokens

    row, key = tokens.issue(user)
    if how == "token-expired":
        AuthToken.objects.filter(pk=row.pk).update(expiry=row.created - dt.timedelta(seconds=1))
    elif how == "token-revoked":
        tokens.revoke(user, row.digest)
    elif how == "token-old-password":
        user.set_password("a new passphrase after the token")
        user.save()
    else:
        raise ValueError(how)
    return key


def client_as(user, path: str):
    """A test client that reaches the site as ``user`` by one authentication path.

    ``session``: a verified web session (second factor done when needed); ``token``: an API
    token header and no session; ``session+bearer`` / ``session+junk``: the verified session
    plus a header that authenticates nothing (``Bearer x``, ``junk``).
    """
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    if path == "token":
        client.defaults["HTTP_AUTHORIZATION"] = f"Token {issue_token(user)}"
        return client
    verified_login(client, user)
    extra = {"session": None, "session+bearer": "Bearer x", "session+junk": "junk"}[path]
    if extra:
        client.defaults["HTTP_AUTHORIZATION"] = extra
    return client


AUTH_PATHS = ["session", "token", "session+bearer", "session+junk"]


@pytest.fixture
def otp_code():
    """``otp_code(user)``: the current code of the user's authenticator (made when missing)."""

    def _code(user) -> str:
        device = totp_device(user)
        type(device).objects.filter(pk=device.pk).update(last_t=-1)  # a code may be used again
        return totp_code(device)

    return _code


@pytest.fixture
def verified_login_of():
    """``verified_login_of(client, user)``: :func:`verified_login` for a client of your own."""
    return verified_login


@pytest.fixture
def login(client):
    """``login(user)`` logs the test client in as ``user`` (second factor done for staff)."""

    def _login(user):
        return verified_login(client, user)

    return _login


# --------------------------------------------------------------------------- browser

CHROMIUM = os.environ.get("SPECIOSA_CHROMIUM", "/usr/bin/chromium")
# Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
# synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if os.environ.get("CI"):
            pytest.fail(f"Debian's chromium is missing at {CHROMIUM}; `make test` installs it as root")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # a service worker's own requests are seen (and can be cut off) by context.route: Chromium's
    # offline emulation does not reach them (Playwright issue 2311; tests/browser/test_offline_diary.py)
    os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")
    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def desktop(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def _log_in(page, base_url, username, password):
    """Log in through the form; staff then enter their authenticator's current code."""
    from django.contrib.auth import get_user_model

    from speciosa.web import security

    user = get_user_model().objects.get(username=username)
    device = totp_device(user) if security.needs_second_factor(user) else None
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    if device is not None:
        page.wait_for_url("**/account/second-factor/**")
        type(device).objects.filter(pk=device.pk).update(last_t=-1)  # the same code twice in a test
        page.fill("#id_code", totp_code(device))
        page.click("main button[type=submit]")
        page.wait_for_load_state()


@pytest.fixture
def log_in():
    """``log_in(page, base_url, username, password)`` through the login form."""
    return _log_in


def give_consent(patient, kind: str, at=None):
    """The patient's consent of ``kind`` (care or research) given, as the care team records
    one signed on paper (:func:`speciosa.clinic.services.record_consent`); returns the answer."""
    from django.contrib.auth import get_user_model

    from speciosa.clinic import services

    recorder = patient.care_team.members.first()
    if recorder is None:
        recorder = get_user_model().objects.filter(is_superuser=True).first() or make_user(
            f"consent-recorder-{next(_counter)}", None, "x", is_superuser=True, is_staff=True)
    return services.record_consent(recorder, patient, kind, True, at=at)


@pytest.fixture
def collector():
    """Python's cyclic garbage collector enabled around the test, and left as it was found
    (the sweep's paused_gc tests: speciosa.safety.batch)."""
    import gc

    was = gc.isenabled()
    gc.enable()
    yield
    (gc.enable if was else gc.disable)()
