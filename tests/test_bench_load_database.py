"""benchmarks/bench_load.py drops the database it is given (``--database``, before and after
its run): found by the adversarial pass of issue 18, ``--database speciosa`` (the clinic's own
database on the same server) went straight to ``DROP DATABASE IF EXISTS speciosa``. A name the
benchmark did not choose is now refused before anything runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # bench_load imports bench_sweep's helpers
    spec = importlib.util.spec_from_file_location("bench_load_under_test", BENCHMARKS / "bench_load.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)

    def touched(*_a, **_k):  # the first thing a run does to a database: never for real here
        raise RuntimeError(f"would set up and drop {module.LOAD_DB}")

    monkeypatch.setattr(module, "_setup_django", touched)
    monkeypatch.setattr(module, "_pg_admin", touched)
    return module


@pytest.mark.parametrize("name", ["speciosa", "postgres", "speciosa_load; DROP DATABASE x",
                                  "SPECIOSA_LOAD", "speciosa_loadx", "speciosa_load_"])
def test_a_database_the_benchmark_did_not_choose_is_refused_before_anything_runs(bench, name, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--database", name])
    assert stop.value.code == 2
    assert "not a throw-away database name" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["speciosa_load", "speciosa_load_2", "speciosa_load_pg17"])
def test_a_throw_away_name_is_taken(bench, name):
    with pytest.raises(RuntimeError, match=f"would set up and drop {name}$"):
        bench.main(["--database", name])
