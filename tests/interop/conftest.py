"""Fixtures for the FHIR tests: a small demo clinic and its export."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

TODAY = dt.date(2026, 3, 1)
SMALL = {"seed": 11, "n_patients": 6, "days": 30, "today": TODAY}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def demo_clinic(db):
    """The synthetic demo clinic, 6 patients x 30 days."""
    from speciosa import demo

    return demo.build_demo_clinic(**SMALL)


def read_ndjson(folder: Path) -> dict[str, list[dict]]:
    """Every resource in a Bulk Data folder, by type."""
    out: dict[str, list[dict]] = {}
    for f in sorted(folder.glob("*.ndjson")):
        out[f.stem] = [json.loads(line) for line in f.read_text(encoding="utf-8").splitlines()]
    return out


@pytest.fixture
def ndjson():
    """``ndjson(folder)`` reads a Bulk Data folder (see :func:`read_ndjson`)."""
    return read_ndjson


@pytest.fixture
def maya(clinic):
    """Maya Quinn (``clinic.patient_a``), with the hospital's MRN system (``ehr.HOSPITAL_MRN``)
    trusted at her site: the patient the EHR-shaped import tests send resources about."""
    from speciosa.interop.models import TrustedIdentifierSystem

    from .ehr import HOSPITAL_MRN

    TrustedIdentifierSystem.objects.create(site=clinic.site_a, system=HOSPITAL_MRN)
    return clinic.patient_a
