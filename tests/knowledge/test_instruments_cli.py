"""``speciosa instruments`` and ``speciosa score`` through ``speciosa.cli.main``."""

from __future__ import annotations

import io
import json

import pytest

from speciosa.cli import main
from speciosa.knowledge import instruments as kinstruments

COWS_ZERO = {
    "pulse": 0, "sweating": 0, "restlessness": 0, "pupil": 0, "bone-joint-aches": 0,
    "runny-nose-tearing": 0, "gi-upset": 0, "tremor": 0, "yawning": 0,
    "anxiety-irritability": 0, "gooseflesh": 0,
}


def run(capsys, monkeypatch, argv, stdin=None):
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_instruments_json_lists_every_instrument_with_items_values_and_bands(capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, ["instruments", "--json"])
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert sorted(d["id"] for d in data) == sorted(
        ["cows", "sows", "craving-nrs", "craving-vas", "phq9", "gad7", "audit-c", "asex",
         "side-effects"])
    cows = next(d for d in data if d["id"] == "cows")
    assert (cows["name"], cows["version"], cows["completed_by"]) == (
        "Clinical Opiate Withdrawal Scale", "wesson-ling-2003", "clinician")
    assert [i["id"] for i in cows["items"]][:4] == ["pulse", "sweating", "restlessness", "pupil"]
    pupil = cows["items"][3]
    assert (pupil["label"], pupil["values"]) == ("Pupil size", [0, 1, 2, 5])
    assert cows["bands"] == [
        {"label": "mild", "min": 5, "max": 12},
        {"label": "moderate", "min": 13, "max": 24},
        {"label": "moderately severe", "min": 25, "max": 36},
        {"label": "severe", "min": 37, "max": 48},
    ]
    sows = next(d for d in data if d["id"] == "sows")
    assert sows["bands"] == [] and len(sows["items"]) == 16


def test_instruments_text_names_each_instrument_and_says_cows_does_not_band_0_to_4(
    capsys, monkeypatch
):
    code, out, _ = run(capsys, monkeypatch, ["instruments"])
    assert code == 0
    assert "cows: Clinical Opiate Withdrawal Scale" in out
    assert "0 = pupils pinned or normal size for room light" in out
    assert "5-12 mild; 13-24 moderate; 25-36 moderately severe; 37-48 severe" in out
    assert "no band for totals 0-4" in out
    assert "asex: Arizona Sexual Experiences Scale" in out


def test_instruments_can_show_one_instrument(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, ["instruments", "gad7", "--json"])
    assert code == 0
    assert [d["id"] for d in json.loads(out)] == ["gad7"]


def test_instruments_with_an_unknown_id_exits_2(capsys, monkeypatch):
    code, out, err = run(capsys, monkeypatch, ["instruments", "kds"])
    assert (code, out) == (2, "")
    assert "unknown instrument 'kds'" in err


def test_score_json_gives_total_band_completeness_flags_and_missing(capsys, monkeypatch):
    responses = {**COWS_ZERO, "pupil": 5, "gooseflesh": 5, "gi-upset": 3}
    code, out, err = run(capsys, monkeypatch, ["score", "cows", "--json"], json.dumps(responses))
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "instrument": "cows", "version": "wesson-ling-2003", "total": 13,
        "band": "moderate", "complete": True, "flags": [], "missing": [],
    }


def test_score_json_of_an_incomplete_response_has_null_total(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, ["score", "phq9", "--json"], '{"self-harm": 2}')
    data = json.loads(out)
    assert code == 0
    assert (data["total"], data["band"], data["complete"]) == (None, None, False)
    assert data["flags"] == ["phq9-item9-positive"]
    assert data["missing"] == ["interest", "mood", "sleep", "energy", "appetite",
                               "self-worth", "concentration", "psychomotor"]


def test_score_accepts_a_measured_cows_pulse(capsys, monkeypatch):
    responses = {**COWS_ZERO}
    del responses["pulse"]
    responses["pulse-bpm"] = 101
    code, out, _ = run(capsys, monkeypatch, ["score", "cows", "--json"], json.dumps(responses))
    assert (code, json.loads(out)["total"]) == (0, 2)


def test_score_text_says_a_cows_total_under_5_has_no_band(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, ["score", "cows"], json.dumps(COWS_ZERO))
    assert code == 0
    assert out.startswith("COWS (version wesson-ling-2003): total 0 of 48, no band.")
    assert "no band for totals 0-4" in out


def test_score_text_lists_missing_items_and_flags(capsys, monkeypatch):
    code, out, _ = run(capsys, monkeypatch, ["score", "side-effects"], '{"seizure": 1}')
    assert code == 0
    assert "no total (incomplete)" in out
    assert "missing: reduced-sex-drive, sexual-dysfunction" in out
    assert "flag seizure: Seizure reported" in out


@pytest.mark.parametrize(("sex", "flags"), [("female", ["audit-c-positive"]), ("male", [])])
def test_score_passes_sex_to_audit_c(capsys, monkeypatch, sex, flags):
    stdin = '{"frequency": 1, "typical-quantity": 1, "heavy-episodes": 1}'
    code, out, _ = run(capsys, monkeypatch, ["score", "audit-c", "--sex", sex, "--json"], stdin)
    assert (code, json.loads(out)["flags"]) == (0, flags)


@pytest.mark.parametrize(
    ("argv", "stdin", "reason"),
    [
        (["score", "cows"], '{"pupil": 3}',
         "COWS item 'pupil': 3 is not allowed; allowed values are 0, 1, 2, 5"),
        (["score", "cows"], '{"pupil": 2.5}', "is not an integer"),
        (["score", "cows"], '{"heart-rate": 1}', "COWS has no item 'heart-rate'"),
        (["score", "cows"], '{"pupil": ', "standard input is not valid JSON"),
        (["score", "cows"], "[0, 1]", "expected a JSON object"),
        (["score", "cows"], "", "expected a JSON object"),
        (["score", "kds"], "{}", "unknown instrument 'kds'"),
        (["score", "cows", "--json"], '{"pulse-bpm": 0}', "plausible range 20-300 beats/min"),
    ],
)
def test_invalid_input_exits_2_with_the_reason_on_stderr(capsys, monkeypatch, argv, stdin, reason):
    code, out, err = run(capsys, monkeypatch, argv, stdin)
    assert (code, out) == (2, "")
    assert err.startswith("speciosa score: ")
    assert reason in err


def test_score_with_an_unknown_sex_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("{}"))
    with pytest.raises(SystemExit) as exc:
        main(["score", "audit-c", "--sex", "unknown"])
    assert exc.value.code == 2


def test_a_broken_site_definition_exits_2_naming_the_file(capsys, monkeypatch, tmp_path):
    (tmp_path / "broken.toml").write_text('overlay = "nothing"\n')
    monkeypatch.setenv(kinstruments.SITE_DIR_ENV, str(tmp_path))
    try:
        code, out, err = run(capsys, monkeypatch, ["instruments"])
    finally:
        kinstruments._registry.cache_clear()
    assert code == 2
    assert "broken.toml: overlay: no instrument 'nothing'" in err
