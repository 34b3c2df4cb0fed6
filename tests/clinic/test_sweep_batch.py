"""The sweep loads and reconciles its chunks with the cyclic garbage collector paused (issue 18;
``speciosa.safety.paused_gc``, tested in tests/safety/test_batch.py)."""

from __future__ import annotations

import datetime as dt
import gc

import pytest


@pytest.mark.django_db
def test_the_sweep_loads_and_reconciles_with_the_collector_paused(collector, monkeypatch):
    from speciosa.clinic import alerts
    from speciosa.clinic.models import Patient

    seen = {}
    tz, resolve = alerts._tz, alerts.resolve_settings

    def load_spy(name):
        seen.setdefault("load", gc.isenabled())
        return tz(name)

    def reconcile_spy(settings):
        seen.setdefault("reconcile", gc.isenabled())
        return resolve(settings)

    monkeypatch.setattr(alerts, "_tz", load_spy)  # called for each patient the load reads
    monkeypatch.setattr(alerts, "resolve_settings", reconcile_spy)  # first thing the reconcile does
    from speciosa.clinic.models import CareTeam, Site

    site = Site.objects.create(name="Batch", time_zone="UTC")
    team = CareTeam.objects.create(site=site, name="Batch team")
    p = Patient.objects.create(site=site, care_team=team, identifier="gc-1", given_name="G",
                                 family_name="Collector", birth_date=dt.date(1975, 1, 1), sex="female")
    alerts.evaluate_patients([p.pk])
    assert seen == {"load": False, "reconcile": False}
    assert gc.isenabled()
