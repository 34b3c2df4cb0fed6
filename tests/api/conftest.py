"""API fixtures: clients for each role, a few records in both care teams."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.cache import cache
from django.utils import timezone
from rest_framework.test import APIClient


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The shared ``clinic`` fixture makes six logins; a slow hasher would dominate these tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttle():
    """The token endpoint's throttle counts in the cache; each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api():
    """``api(user)``: an APIClient authenticated as ``user`` (None: anonymous)."""

    def _api(user=None) -> APIClient:
        client = APIClient(HTTP_HOST="localhost")
        if user is not None:
            client.force_authenticate(user)
        return client

    return _api


API_AUTH_PATHS = ["force", "token", "session", "session+bearer", "session+junk"]
# tokens of the right user that must not work any more (tests.conftest.stale_token)
from tests.conftest import STALE_TOKENS  # noqa: E402


@pytest.fixture
def api_as(api, verified_login_of):
    """``api_as(user, path)``: an APIClient that reaches the API as ``user`` by ``path``.

    ``force``: DRF's force_authenticate (the access rules alone); ``token``: a real API token
    header; ``token-expired`` / ``token-revoked`` / ``token-old-password``: the user's own
    token that must not work any more; ``session``: a verified web session; ``session+bearer`` / ``session+junk``: that
    session with ``Authorization: Bearer x`` / ``junk`` beside it. For ``user=None``
    (anonymous) the headers come without any session.
    """
    from tests.conftest import issue_token, stale_token

    headers = {"session+bearer": "Bearer x", "session+junk": "junk"}

    def _api_as(user, path: str) -> APIClient:
        if path == "force" or (user is None and path not in headers):
            return api(user)
        client = APIClient(HTTP_HOST="localhost")
        if path == "token":
            client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
            return client
        if path in STALE_TOKENS:
            client.credentials(HTTP_AUTHORIZATION=f"Token {stale_token(user, path)}")
            return client
        if user is not None:
            verified_login_of(client, user)
        if path in headers:
            client.credentials(HTTP_AUTHORIZATION=headers[path])
        return client

    return _api_as


#: Who must not reach patient A's record endpoints, and the status each gets: clinician B
#: (another care team) does not learn the record exists.
OUTSIDERS = [("clinician_b", 404), ("patient_a", 403), ("patient_b", 403), ("researcher", 403),
             ("admin", 403), ("anonymous", 401)]


def user_of(clinic, who: str):
    """The ``clinic`` fixture's user called ``who`` (``patient_a``: that patient's login;
    ``anonymous``: None)."""
    if who == "anonymous":
        return None
    if who.startswith("patient_"):
        return getattr(clinic, who).user
    return getattr(clinic, who)


def call(client, method: str, url: str, body, key):
    """A GET, or a POST of ``body`` as JSON with a fresh Idempotency-Key (``key()``)."""
    if method == "get":
        return client.get(url)
    return client.post(url, body, format="json", headers=key())


def new_key() -> dict[str, str]:
    """Headers with a fresh Idempotency-Key."""
    return {"Idempotency-Key": str(uuid.uuid4())}


@pytest.fixture
def key():
    """``key()``: headers with a fresh Idempotency-Key."""
    return new_key


def seed_records(clinic) -> dict[str, dict[str, object]]:
    """A dose, an assessment, a lab and a note for each of the two patients."""
    from speciosa.clinic.models import Assessment, Dose, LabResult, Note

    now = timezone.now() - dt.timedelta(hours=1)
    records = {}
    for k, patient, clinician in (("a", clinic.patient_a, clinic.clinician_a),
                                  ("b", clinic.patient_b, clinic.clinician_b)):
        records[k] = {
            "dose": Dose.objects.create(patient=patient, entered_by=patient.user, source="patient",
                                        taken_at=now, amount=2, unit="g"),
            "assessment": Assessment.objects.create(
                patient=patient, entered_by=clinician, source="clinician", instrument="gad7",
                instrument_version="1", at=now, items={}, total=None, complete=False),
            "lab": LabResult.objects.create(patient=patient, entered_by=clinician, source="clinician",
                                            lab="prolactin", collected_at=now, value=10, unit="ng/mL",
                                            canonical_value=10, canonical_unit="ng/mL"),
            "note": Note.objects.create(patient=patient, entered_by=clinician, source="clinician",
                                        text=f"secret about {patient.family_name}"),
        }
        records[f"{k}_spare_note"] = Note.objects.create(patient=patient, entered_by=clinician,
                                                         source="clinician", text="to withdraw")
    return records


@pytest.fixture
def records(clinic):
    return seed_records(clinic)
