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


def stored_counts() -> dict[str, int]:
    """How many rows an import may have stored, by model: patients, every clinical record,
    alerts, import bookkeeping and audit entries (not counting the entry a refused import
    leaves, ``import-refused``: a refusal stores nothing else). "Nothing stored" is these
    counts unchanged."""
    from speciosa.clinic import models as cmodels
    from speciosa.interop.models import ImportedResource

    counts = {m.__name__: m.objects.count() for m in
              (cmodels.Patient, cmodels.LabResult, cmodels.Assessment, cmodels.Dose,
               cmodels.SubstanceUse, cmodels.Medication, cmodels.Note, cmodels.Alert,
               ImportedResource)}
    counts["AuditEntry"] = cmodels.AuditEntry.objects.exclude(action="import-refused").count()
    return counts
