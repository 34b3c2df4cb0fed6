"""The benchmarks' clinic generator (benchmarks/bench_sweep.py, also used by bench_load.py)
writes rows straight into the tables with COPY: a not-null column added to a model later
broke both benchmarks without a test noticing. Here a small clinic is generated into the
test database and read back through the ORM."""

from __future__ import annotations

import importlib.util
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
