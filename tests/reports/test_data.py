"""The exposure series is cached while the dose record and the hour are unchanged."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache

from speciosa.reports import data

from .conftest import NOW


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_the_exposure_is_computed_once_for_the_same_doses_and_hour(charted, monkeypatch):
    calls = []
    real = data._run_exposure

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "_run_exposure", counting)
    first = data.chart_data(charted.patient, now=NOW, exposure_subjects=50)
    again = data.chart_data(charted.patient, now=NOW + dt.timedelta(minutes=20), exposure_subjects=50)
    assert len(calls) == 1
    assert again.exposure.typical_ng_per_ml == first.exposure.typical_ng_per_ml
    data.chart_data(charted.patient, now=NOW + dt.timedelta(hours=2), exposure_subjects=50)
    assert len(calls) == 2


def test_a_new_dose_is_a_new_exposure(charted, monkeypatch):
    from speciosa.clinic.models import Dose

    calls = []
    real = data._run_exposure
    monkeypatch.setattr(data, "_run_exposure", lambda *a, **k: calls.append(1) or real(*a, **k))
    data.chart_data(charted.patient, now=NOW, exposure_subjects=50)
    Dose.objects.create(patient=charted.patient, entered_by=charted.patient.user, source="patient",
                        taken_at=NOW - dt.timedelta(hours=3), amount=4, unit="g")
    data.chart_data(charted.patient, now=NOW, exposure_subjects=50)
    assert len(calls) == 2
