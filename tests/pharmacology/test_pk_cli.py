"""``speciosa exposure``: CSV, JSON and Parquet out; bad rows listed and nothing written."""

from __future__ import annotations

import csv
import json
from datetime import datetime

import numpy as np
import pytest

from speciosa.cli import main

GOOD = """subject,taken_at,amount,unit,mitragynine_percent,grams_per_capsule
A,2025-01-01T08:00:00+01:00,2,g,1.95,
A,2025-01-01T20:00:00+01:00,4,capsule,,0.5
B,2025-01-01T09:00:00-05:00,1,glass,,
B,2025-01-02T09:00:00-05:00,250,mg_extract,10,
"""


@pytest.fixture()
def doses(tmp_path):
    p = tmp_path / "doses.csv"
    p.write_text(GOOD)
    return p


def test_it_writes_a_csv_per_subject_and_time(doses, tmp_path):
    out = tmp_path / "out.csv"
    assert main(["exposure", str(doses), "--subjects", "50", "--end",
                 "2025-01-03T00:00:00+00:00", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert {r["subject"] for r in rows} == {"A", "B"}
    assert set(rows[0]) == {"subject", "time", "mitragynine_ng_per_ml",
                            "hydroxymitragynine_ng_per_ml", "mitragynine_p05",
                            "mitragynine_p95"}
    a = [r for r in rows if r["subject"] == "A"]
    assert a[0]["time"] == "2025-01-01T08:00:00+01:00"
    assert max(float(r["mitragynine_ng_per_ml"]) for r in a) > 10


def test_typical_json_has_the_model_and_summaries(doses, capsys):
    assert main(["exposure", str(doses), "--typical", "--json", "--step-minutes", "30"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["name"]
    for p in doc["model"]["parameters"]:
        assert {"name", "value", "unit", "source"} <= set(p)
    subj = {s["subject"]: s for s in doc["subjects"]}
    s = subj["A"]["summary"]
    assert {"cmax_ng_per_ml", "tmax", "auc_ng_h_per_ml", "time_to_steady_state_h",
            "hours_to_50_percent_after_last_dose",
            "hours_to_10_percent_after_last_dose"} <= set(s)
    assert "mitragynine_p05" not in subj["A"]
    assert len(subj["A"]["time"]) == len(subj["A"]["mitragynine_ng_per_ml"])


def test_parquet_by_file_ending(doses, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    assert main(["exposure", str(doses), "--typical", "--out", str(out)]) == 0
    table = pq.read_table(out)
    assert table.column_names[:3] == ["subject", "time", "mitragynine_ng_per_ml"]
    assert table.num_rows > 100


def test_bad_rows_are_listed_with_line_numbers_and_nothing_is_written(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text(GOOD + "A,2025-01-03T08:00:00+01:00,1,spoon,,\n"
                        "A,2025-01-03T09:00:00+01:00,-2,g,,\n"
                        "A,yesterday,1,g,,\n"
                        "A,2025-01-03T10:00:00,1,g,,\n")
    out = tmp_path / "out.csv"
    assert main(["exposure", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "line 6: unknown unit 'spoon'" in err
    assert "line 7: amount must not be negative" in err
    assert "line 8: cannot read time 'yesterday'" in err
    assert "line 9: dose time needs a timezone offset" in err
    assert not out.exists()


def test_unknown_output_ending_is_a_usage_error(doses, tmp_path):
    assert main(["exposure", str(doses), "--out", str(tmp_path / "x.xlsx")]) == 2


# --------------------------------------------------------------------------- the cohort path

COHORT = """subject,taken_at,amount,unit,mitragynine_percent,grams_per_capsule
P1,2025-01-01T08:00:00+01:00,2,g,1.95,
P2,2025-01-01 09:30-05:00, 3 ,glass,,
P1,2025-01-01T20:00:00.250+01:00,4,capsule,,0.5

P3,2025-01-03T07:15:00Z,1e1,mg_mitragynine,,
P2,2025-01-02T09:00:00-05:00,250,mg_extract,10,
P1,2025-01-02T08:10:00+01:00,5,g,,
P3,2025-01-02T23:50:00Z,12.5,mg_mitragynine,,
"""


def _per_patient(text, **kw):
    """The old way: Dose objects per subject and patient_exposure one subject at a time."""
    from datetime import timedelta

    from speciosa.pharmacology import Dose, patient_exposure

    by = {}
    for row in csv.DictReader(text.splitlines()):
        if not row["taken_at"]:
            continue
        pct, gpc = row["mitragynine_percent"], row["grams_per_capsule"]
        by.setdefault(row["subject"], []).append(Dose(
            datetime.fromisoformat(row["taken_at"].strip()), float(row["amount"]),
            row["unit"].strip(), float(pct) if pct else None, float(gpc) if gpc else None))
    return {s: patient_exposure(d, min(x.taken_at for x in d),
                                max(x.taken_at for x in d) + timedelta(days=14), **kw)
            for s, d in by.items()}


def test_it_runs_every_subject_through_the_cohort_path_in_one_call(tmp_path, monkeypatch):
    from speciosa.pharmacology import cohort, exposure

    p = tmp_path / "c.csv"
    p.write_text(COHORT)
    calls = []
    real = cohort.cohort_exposure
    monkeypatch.setattr(cohort, "cohort_exposure",
                        lambda *a, **k: calls.append(len(a[0]) - 1) or real(*a, **k))
    monkeypatch.setattr(exposure, "patient_exposure", None)  # not one subject at a time
    assert main(["exposure", str(p), "--typical", "--out", str(tmp_path / "o.parquet")]) == 0
    assert calls == [3]


def test_each_subject_gets_what_the_per_patient_path_gives(tmp_path, capsys):
    p = tmp_path / "c.csv"
    p.write_text(COHORT)
    assert main(["exposure", str(p), "--typical", "--json"]) == 0
    doc = {s["subject"]: s for s in json.loads(capsys.readouterr().out)["subjects"]}
    old = _per_patient(COHORT, typical_only=True)
    assert list(doc) == ["P1", "P2", "P3"]  # first appearance in the file
    for name, r in old.items():
        got = doc[name]
        assert got["time"] == [t.isoformat() for t in r.times]
        np.testing.assert_allclose(got["mitragynine_ng_per_ml"], r.mitragynine_ng_per_ml,
                                   rtol=1e-10, atol=1e-10 * r.mitragynine_ng_per_ml.max())
        np.testing.assert_allclose(got["hydroxymitragynine_ng_per_ml"],
                                   r.hydroxymitragynine_ng_per_ml, rtol=1e-10,
                                   atol=1e-10 * r.hydroxymitragynine_ng_per_ml.max())
        s, o = got["summary"], r.summary
        assert s["tmax"] == o.tmax.isoformat() and s["last_dose_at"] == o.last_dose_at.isoformat()
        for key in ("cmax_ng_per_ml", "auc_ng_h_per_ml", "time_to_steady_state_h",
                    "hours_to_50_percent_after_last_dose", "hours_to_10_percent_after_last_dose",
                    "reference_ng_per_ml"):
            want = getattr(o, key)
            assert (s[key] is None) == (want is None), key
            if want is not None:
                assert s[key] == pytest.approx(want, rel=1e-10), key
        assert [d["date"] for d in got["daily"]] == [d.date.isoformat() for d in r.daily]
        np.testing.assert_allclose([d["mean_ng_per_ml"] for d in got["daily"]],
                                   [d.mean_ng_per_ml for d in r.daily], rtol=1e-10, atol=1e-12)
        assert got["assumptions"] == r.assumptions


def test_the_band_is_the_per_patient_band(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text(COHORT)
    out = tmp_path / "o.csv"
    assert main(["exposure", str(p), "--subjects", "40", "--seed", "3", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    old = _per_patient(COHORT, subjects=40, seed=3)
    for name, r in old.items():
        mine = [r_ for r_ in rows if r_["subject"] == name]
        assert len(mine) == len(r.times_h)
        np.testing.assert_allclose([float(x["mitragynine_p05"]) for x in mine], r.p05,
                                   rtol=1e-10, atol=1e-10 * r.p95.max())
        np.testing.assert_allclose([float(x["mitragynine_p95"]) for x in mine], r.p95,
                                   rtol=1e-10, atol=1e-10 * r.p95.max())


def test_parquet_times_are_utc_instants_and_subjects_keep_their_names(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    p = tmp_path / "c.csv"
    p.write_text(COHORT)
    out = tmp_path / "o.parquet"
    assert main(["exposure", str(p), "--typical", "--out", str(out)]) == 0
    t = pq.read_table(out).to_pylist()
    first_p2 = next(r for r in t if r["subject"] == "P2")
    assert first_p2["time"] == datetime.fromisoformat("2025-01-01T09:30:00-05:00")
    assert {r["subject"] for r in t} == {"P1", "P2", "P3"}


BAD_MIX = """subject,taken_at,amount,unit,mitragynine_percent,grams_per_capsule
A,2025-01-01T08:00:00+01:00,2,g,1.95,

A,2025-02-30T08:00:00+01:00,2,g,,
A,2025-01-01T08:00:00+01:00,abc,g,,
A,2025-01-01T08:00:00+01:00,2,g,x,

A,2025-01-01T08:00:00,2,g,,
A,2025-01-01T08:00:00+01:00,2
A,2025-01-01T08:00:00+01:00,2,capsule,,
A,2025-01-01T08:00:00+01:00,2,g,120,
A,2025-01-01T08:00:00+01:00,inf,g,,
A, 2025-01-01 09:00+01:00 , 2 ,g,,
"""


def test_bad_rows_keep_their_file_line_numbers_past_blank_lines_and_short_rows(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text(BAD_MIX)
    out = tmp_path / "out.parquet"
    assert main(["exposure", str(p), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    lines = [ln.strip() for ln in err.splitlines() if ln.strip().startswith("line ")]
    assert lines == [
        "line 4: cannot read time '2025-02-30T08:00:00+01:00'",
        "line 5: amount 'abc' is not a number",
        "line 6: mitragynine_percent and grams_per_capsule must be numbers",
        "line 8: dose time needs a timezone offset",
        "line 9: expected 6 fields, found 3",
        "line 10: capsule dose needs grams per capsule",
        "line 11: mitragynine percent must be at most 100",
        "line 12: amount must be a finite number",
    ]  # line 13 (spaces around a valid time and amount) is fine
    assert not out.exists()


def test_a_file_without_the_required_columns_is_refused(tmp_path, capsys):
    p = tmp_path / "cols.csv"
    p.write_text("subject,when,amount\nA,2025-01-01T08:00:00Z,2\n")
    assert main(["exposure", str(p)]) == 2
    assert "missing column(s) taken_at, unit" in capsys.readouterr().err
