"""Drug rules of issue 13 on the drug table: brand names with strengths ("Xanax 1 mg" is
alprazolam), methadone and buprenorphine in the CYP3A rule, qt-risk (QT drug with kratom,
methadone first, or a recorded QTc), potent-7oh-product; `speciosa evaluate` reads brand
names and a medication start given as a date-time."""

from __future__ import annotations

import json

import pytest

from speciosa.cli import main
from speciosa.pharmacology.doses import Dose
from speciosa.safety import TimelineError, evaluate, timeline_from_json

from .safety_builders import (
    AS_OF,
    ago,
    by_topic,
    daily_doses,
    lab,
    medication,
    substance,
    timeline,
)

KRATOM = daily_doses(3, 0, 2.0)


def run(tl, settings=None):
    return evaluate(tl, AS_OF, settings)


def test_xanax_1_mg_is_alprazolam_a_benzodiazepine_with_kratom():
    f = by_topic(run(timeline(doses=KRATOM, medications=[medication("Xanax 1 mg")])),
                 "co-use-sedative")
    assert f is not None and f.evidence["classes"] == ["benzodiazepine"]
    assert "benzodiazepine (Xanax 1 mg)" in f.message
    # alprazolam is a moderate-sensitive CYP3A substrate: no interaction finding
    assert by_topic(run(timeline(doses=KRATOM, medications=[medication("Xanax 1 mg")])),
                    "interaction-cyp3a") is None


@pytest.mark.parametrize("name", ["Dolophine 10 mg", "methadone 40mg oral solution"])
def test_methadone_is_considered_by_the_cyp3a_rule_and_raises_qt_risk(name):
    found = run(timeline(doses=KRATOM, medications=[medication(name)]))
    cyp = by_topic(found, "interaction-cyp3a")
    assert cyp.severity == "info" and cyp.evidence["opioid_substrates"] == [name]
    assert "opioid metabolised by CYP3A" in cyp.message and "QT prolongation" in cyp.message
    qt = by_topic(found, "qt-risk")
    assert qt.severity == "warning" and qt.evidence["qt_medications"] == [name]
    assert "ECG" in qt.next_step and "500 ms" in qt.next_step
    assert "krantz-2009-methadone-qtc" in qt.citations


def test_buprenorphine_brand_is_considered_by_the_cyp3a_rule_without_qt_risk():
    found = run(timeline(doses=KRATOM, medications=[medication("Suboxone 8 mg film")]))
    assert by_topic(found, "interaction-cyp3a").evidence["opioid_substrates"] == \
        ["Suboxone 8 mg film"]
    assert by_topic(found, "qt-risk") is None


def test_methadone_without_current_kratom_raises_no_qt_risk_but_lists_methadone_first():
    assert by_topic(run(timeline(medications=[medication("methadone")])), "qt-risk") is None
    from speciosa.safety.rules.co_use import qt_drug_names

    names = qt_drug_names(["citalopram 20 mg", "haloperidol", "Methadose"])
    assert names[0] == "Methadose"


@pytest.mark.parametrize(("ms", "severity"), [(440, None), (450, "warning"), (499, "warning"),
                                               (500, "urgent"), (520, "urgent")])
def test_a_recorded_qtc_raises_qt_risk_whatever_the_kratom_use(ms, severity):
    f = by_topic(run(timeline(labs=[lab("qtc", ms, "ms", days=10)])), "qt-risk")
    assert (f.severity if f else None) == severity
    if f:
        assert f.evidence["qtc"]["ms"] == ms and "kratom_last_dose_at" not in f.evidence


def test_an_old_qtc_is_not_read_and_the_settings_decide():
    assert by_topic(run(timeline(labs=[lab("qtc", 520, "ms", days=400)])), "qt-risk") is None
    tl = timeline(labs=[lab("qtc", 470, "ms", days=10)])
    assert by_topic(run(tl, {"qtc_warning_ms": 480}), "qt-risk") is None


def test_a_7oh_product_dose_medication_or_substance_raises_potent_7oh_product():
    dose = Dose(taken_at=ago(1), amount=1.0, unit="g", product="7-OH tablets")
    f = by_topic(run(timeline(doses=[dose])), "potent-7oh-product")
    assert f.severity == "warning" and f.evidence["7oh"][0]["product"] == "7-OH tablets"
    assert "fda-7oh-scheduling-2025" in f.citations
    assert "does not cover direct 7-OH intake" in f.message and "Schedule I" in f.message
    assert by_topic(run(timeline(substances=[substance("7oh", 2)])), "potent-7oh-product")
    # a leaf product is not 7-OH
    leaf = Dose(taken_at=ago(1), amount=1.0, unit="g", product="Red Bali leaf")
    assert by_topic(run(timeline(doses=[leaf])), "potent-7oh-product") is None


def _example(meds):
    return {"tz": "Europe/Berlin", "patient": {"sex": "male", "birth_date": "1980-01-01"},
            "doses": [{"taken_at": "2025-06-29T08:00:00", "amount": 2, "unit": "g"}],
            "medications": meds}


def test_evaluate_reads_brand_names_with_strengths_and_a_start_with_a_time(tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps(_example([
        {"name": "Xanax 1 mg", "start": "2025-06-01T08:30:00+02:00", "end": None},
        {"name": "Dolophine 10 mg", "start": "2025-05-31T23:30:00Z", "end": None}])))
    assert main(["evaluate", str(path), "--as-of", "2025-06-30T12:00:00", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    findings = out["findings"] if isinstance(out, dict) else out
    topics = {f["topic"] for f in findings}
    assert {"co-use-sedative", "interaction-cyp3a", "qt-risk"} <= topics
    tl = timeline_from_json(_example([{"name": "x", "start": "2025-05-31T23:30:00Z"}]))
    assert tl.medications[0].start.isoformat() == "2025-06-01"  # its day in Berlin


def test_a_bad_medication_start_says_what_to_fix():
    with pytest.raises(TimelineError, match="medications\\[0\\].start.*YYYY-MM-DD"):
        timeline_from_json(_example([{"name": "Xanax 1 mg", "start": "last week"}]))
