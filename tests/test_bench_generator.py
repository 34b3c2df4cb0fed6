"""The benchmarks' clinic generator (benchmarks/bench_sweep.py, also used by bench_load.py)
writes rows straight into the tables with COPY: a not-null column added to a model later
broke both benchmarks without a test noticing. Here a small clinic is generated into the
test database and read back through the ORM."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def _bench_sweep():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sweep.py"
    spec = importlib.util.spec_from_file_location("bench_sweep_under_test", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_generated_clinic_loads_and_reads_back():
    from speciosa.clinic.models import Dose, LabResult, Medication, Patient

    bench = _bench_sweep()
    counts = bench.generate(3, "full", seed=1)
    assert Patient.objects.count() == 3
    assert Dose.objects.count() == counts["clinic_dose"] > 0
    assert LabResult.objects.count() == counts["clinic_labresult"] > 0
    assert not Dose.objects.filter(confirmed_unusual=True).exists()  # the model's default
    for m in Medication.objects.all():  # coded as the medication form codes a table drug
        assert m.status == "active" and (m.drug == m.name or m.drug == "")


def test_a_replicated_clinic_has_exact_copies_that_the_sweep_finds_the_same_in():
    """``--replicate-from``: 5 generated patients copied on the server up to 20. Every table
    has exactly 4 times the base's rows, the copies have ids and identifiers of their own on
    their original's site and team, every foreign key of a copy points into the same copy,
    and the sweep gives each copy its original's findings."""
    from django.db.models import Count, F

    from speciosa.clinic import alerts
    from speciosa.clinic.models import Alert, Assessment, DiaryDay, Dose, Patient, SubstanceUse

    bench = _bench_sweep()
    base = bench.generate(5, "full", seed=3)
    counts = bench.replicate(20)
    assert counts == {table: 4 * n for table, n in base.items()}
    patients = {p.pk: p for p in Patient.objects.all()}
    assert len(patients) == 20 and len({(p.site_id, p.identifier) for p in patients.values()}) == 20
    originals = sorted(pk for pk, p in patients.items() if " copy " not in p.family_name)
    off = max(originals)  # copy k of patient i is i + k * off (the base's largest id)
    assert len(originals) == 5
    for pk in originals:
        for k in (1, 2, 3):
            copy = patients[pk + k * off]
            assert copy.identifier == f"{patients[pk].identifier}-{k}"
            assert (copy.site_id, copy.care_team_id, copy.birth_date, copy.sex) == (
                patients[pk].site_id, patients[pk].care_team_id, patients[pk].birth_date, patients[pk].sex)
    # each copy's records hang off its own diary days, and each patient has a year of them
    for model in (Dose, Assessment, SubstanceUse):
        assert not model.objects.exclude(diary__isnull=True).exclude(diary__patient_id=F("patient_id")).exists()
    days = dict(DiaryDay.objects.values("patient_id").annotate(n=Count("id")).values_list("patient_id", "n"))
    assert all(days[pk + k * off] == days[pk] >= 355 for pk in originals for k in (1, 2, 3))
    # the new rows' ids continue after the copies (the sequences were moved on)
    extra = Patient.objects.create(site_id=patients[originals[0]].site_id,
                                   care_team_id=patients[originals[0]].care_team_id, identifier="new",
                                   given_name="N", family_name="New", birth_date=dt.date(1980, 1, 1), sex="male")
    assert extra.pk > max(patients)
    extra.delete()

    result = alerts.sweep()
    assert result.patients == 20 and not result.failed

    def found(pk):
        return sorted((a.rule, a.severity, a.message, json.dumps(a.evidence, sort_keys=True))
                      for a in Alert.objects.filter(patient_id=pk))

    assert sum(len(found(pk)) for pk in originals) > 0
    for pk in originals:
        assert found(pk + off) == found(pk + 2 * off) == found(pk + 3 * off) == found(pk)
