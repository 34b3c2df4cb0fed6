"""``speciosa exposure``: CSV, JSON and Parquet out; bad rows listed and nothing written."""

from __future__ import annotations

import csv
import json

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
