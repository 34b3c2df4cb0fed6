"""Research tests: a fast password hasher (the shared fixtures create several logins) and
an empty cache; ``consented``: both fixture patients consented, with doses and prolactin."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import give_consent


@pytest.fixture(autouse=True)
def _fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache():
    """The research page caches its analysis; every test starts without it."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def consented(clinic):
    """Both fixture patients consented, with doses and two prolactin draws each."""
    from speciosa.clinic.models import DiaryDay, Dose, LabResult

    tz = ZoneInfo("UTC")
    for p, prl in ((clinic.patient_a, (11.0, 13.5)), (clinic.patient_b, (7.0, 8.1))):
        give_consent(p, "research")
        for n, day in enumerate((dt.date(2026, 3, 2), dt.date(2026, 4, 13))):
            for k in range(1, 8):
                d = day - dt.timedelta(days=k)
                diary = DiaryDay.objects.create(patient=p, day=d)
                Dose.objects.create(patient=p, source="patient", diary=diary, unit="g",
                                    taken_at=dt.datetime(d.year, d.month, d.day, 9, tzinfo=tz),
                                    amount=Decimal("2.0") * (n + 1), mitragynine_percent=Decimal("1.5"),
                                    product=f"{p.family_name}'s tin", mitragynine_mg=30.0 * (n + 1))
            LabResult.objects.create(patient=p, source="clinician", lab="prolactin", loinc="2842-3",
                                     collected_at=dt.datetime(day.year, day.month, day.day, 9, tzinfo=tz),
                                     value=Decimal(str(prl[n])), unit="ng/mL",
                                     canonical_value=prl[n], canonical_unit="ng/mL")
    return clinic
