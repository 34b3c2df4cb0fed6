"""`speciosa rules` and `speciosa evaluate`, including the documented example timeline."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from speciosa.cli import main
from speciosa.knowledge.evidence import missing_references
from speciosa.safety import DEFAULT_SETTINGS, RULES, evaluate, timeline_from_json

DOCS = Path(__file__).resolve().parents[2] / "docs"


def documented_example() -> dict:
    text = (DOCS / "timeline.md").read_text("utf-8")
    blocks = re.findall(r"```json\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    return json.loads(blocks[0])


@pytest.fixture
def example_file(tmp_path):
    path = tmp_path / "timeline.json"
    path.write_text(json.dumps(documented_example()), "utf-8")
    return path


def test_the_documented_example_gives_the_documented_findings():
    as_of = datetime(2025, 3, 31, 18, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    found = evaluate(timeline_from_json(documented_example()), as_of)
    assert [f.topic for f in found] == [
        "withdrawal-moderate", "co-use-sedative", "dose-escalation", "prolactin-symptoms",
        "prolactin-rising", "prolactin-high",
    ]


def test_rules_json_lists_every_rule_with_settings_and_citations(capsys):
    assert main(["rules", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    listed = {r["id"]: r for r in out["rules"]}
    assert set(listed) == {r.id for r in RULES}
    high = listed["SAF-PRL-VHIGH"]
    assert high["topic"] == "prolactin-very-high" and high["severity"] == "warning"
    assert high["settings"]["prolactin_very_high_ng_per_ml"] == 100.0
    assert high["settings"]["prolactin_prolactinoma_ng_per_ml"] == 250.0
    assert {s["name"] for s in out["settings"]} == set(DEFAULT_SETTINGS)
    for rule in out["rules"]:
        assert rule["description"]
        assert missing_references(rule["citations"]) == []
    for setting in out["settings"]:
        assert setting["source"]


def test_rules_text_names_each_rule(capsys):
    assert main(["rules"]) == 0
    out = capsys.readouterr().out
    for rule in RULES:
        assert f"{rule.id}  {rule.topic}" in out


def test_evaluate_json_on_the_documented_example(capsys, example_file):
    assert main(["evaluate", str(example_file), "--as-of", "2025-03-31T18:00:00", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["as_of"] == "2025-03-31T18:00:00+02:00"
    first = out["findings"][0]
    assert set(first) == {"rule", "topic", "severity", "message", "evidence", "next_step",
                          "citations"}
    assert first["topic"] == "withdrawal-moderate"
    assert first["evidence"]["cows"] == {"at": "2025-03-30T10:00:00+02:00", "total": 14,
                                         "band": "moderate"}
    escalation = next(f for f in out["findings"] if f["topic"] == "dose-escalation")
    assert escalation["evidence"]["earlier_14_days"]["total_amount"] == 15
    assert escalation["evidence"]["last_14_days"]["total_amount"] == 24


def test_evaluate_text_output(capsys, example_file):
    assert main(["evaluate", str(example_file), "--as-of", "2025-03-31T18:00:00"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("6 finding(s) as of 2025-03-31T18:00:00+02:00")
    assert "[WARNING] dose-escalation (SAF-DOSE-ESC)" in out
    assert "Next step: Consider" in out


def test_evaluate_as_of_a_bare_date_means_the_end_of_that_day(capsys, example_file):
    assert main(["evaluate", str(example_file), "--as-of", "2025-03-31", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["as_of"] == "2025-03-31T23:59:59+02:00"


def test_evaluate_before_anything_happened_has_no_findings(capsys, example_file):
    assert main(["evaluate", str(example_file), "--as-of", "2024-01-01"]) == 0
    assert capsys.readouterr().out.startswith("No findings")


def test_evaluate_with_a_setting_override(capsys, example_file):
    args = ["evaluate", str(example_file), "--as-of", "2025-03-31T18:00:00", "--json"]
    assert main(args + ["--set", "withdrawal_cows_moderate=15"]) == 0
    topics = [f["topic"] for f in json.loads(capsys.readouterr().out)["findings"]]
    assert "withdrawal-moderate" not in topics


def test_an_unknown_setting_exits_2(capsys, example_file):
    assert main(["evaluate", str(example_file), "--set", "cows=15"]) == 2
    assert "unknown safety setting 'cows'" in capsys.readouterr().err


def test_bad_timeline_exits_2_naming_the_field(capsys, tmp_path):
    doc = documented_example()
    doc["labs"][2]["unit"] = "ng/dl"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), "utf-8")
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "labs[2].unit" in err
    assert "U/L" in err  # the message says what would be accepted


def test_invalid_json_exits_2_with_the_position(capsys, tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"patient": {"sex": "male",}}', "utf-8")
    assert main(["evaluate", str(path)]) == 2
    assert "not valid JSON (line 1" in capsys.readouterr().err


def test_a_missing_file_exits_2(capsys, tmp_path):
    assert main(["evaluate", str(tmp_path / "nope.json")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_a_bad_as_of_exits_2(capsys, example_file):
    assert main(["evaluate", str(example_file), "--as-of", "last tuesday"]) == 2
    assert "--as-of" in capsys.readouterr().err


def test_evaluate_reads_standard_input(capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(documented_example())))
    assert main(["evaluate", "-", "--as-of", "2025-03-31T18:00:00", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["findings"]) == 6
