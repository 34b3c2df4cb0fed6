"""``speciosa interpret`` and ``speciosa claims`` behave as specified."""

from __future__ import annotations

import json

import pytest

from speciosa.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_interpret_prolactin_json_has_the_specified_keys(capsys):
    code, out, err = run(
        capsys, "interpret", "prolactin", "24", "ng/mL", "--sex", "male",
        "--medication", "kratom", "--json",
    )
    assert code == 0 and err == ""
    data = json.loads(out)
    for key in ("lab", "loinc", "value", "unit", "canonical_value", "canonical_unit",
                "reference_low", "reference_high", "flag", "considerations", "citations"):
        assert key in data
    assert (data["lab"], data["loinc"], data["flag"]) == ("prolactin", "2842-3", "high")
    assert (data["reference_low"], data["reference_high"]) == (4.0, 15.2)
    assert all(set(c) >= {"text", "citations"} for c in data["considerations"])
    assert "kratom" in [c["code"] for c in data["considerations"]]
    ids = [c["id"] for c in data["citations"]]
    assert "labryer-2018" in ids
    labryer = next(c for c in data["citations"] if c["id"] == "labryer-2018")
    assert labryer["type"] == "case-report" and "doi" in labryer["unconfirmed"]


def test_interpret_converts_miu_per_l(capsys):
    code, out, _ = run(capsys, "interpret", "prolactin", "318", "mIU/L", "--sex", "female", "--json")
    data = json.loads(out)
    assert code == 0
    assert (data["unit"], data["canonical_value"], data["flag"]) == ("m[IU]/L", 15.0, "normal")


def test_interpret_passes_medications_and_recent_labs(capsys):
    code, out, _ = run(
        capsys, "interpret", "prolactin", "60", "ng/mL", "--sex", "female",
        "--medication", "metoclopramide", "--recent-lab", "tsh", "6", "mIU/L", "--json",
    )
    codes = [c["code"] for c in json.loads(out)["considerations"]]
    assert code == 0
    assert {"exclude-pregnancy", "medications", "hypothyroidism"} <= set(codes)


@pytest.mark.parametrize(("flag", "code_"), [("--pregnant", "pregnancy"),
                                             ("--breastfeeding", "breastfeeding")])
def test_interpret_in_pregnancy_or_breastfeeding_says_the_range_does_not_apply_and_stops(
        capsys, flag, code_):
    code, out, _ = run(
        capsys, "interpret", "prolactin", "300", "ng/mL", "--sex", "female", flag,
        "--medication", "kratom", "--recent-lab", "tsh", "6", "mIU/L", "--json",
    )
    data = json.loads(out)
    assert code == 0
    assert [c["code"] for c in data["considerations"]] == [code_]
    assert data["flag"] == "" and "does not apply" in data["flag_note"]
    code, text, _ = run(capsys, "interpret", "prolactin", "300", "ng/mL", "--sex", "female", flag)
    assert "Flag: not flagged: the non-pregnant reference range does not apply" in text
    assert "(non-pregnant; does not apply)" in text
    for word in ("CRITICAL", "HIGH", "prolactinoma", "macroprolactin", "MRI",
                 "confirm hyperprolactinaemia"):
        assert word not in text, word


def test_interpret_prints_text_for_people(capsys):
    code, out, _ = run(capsys, "interpret", "prolactin", "300", "ng/mL", "--sex", "male")
    assert code == 0
    assert "Flag: HIGH" in out and "CRITICAL" not in out
    assert "prolactinoma" in out and "refer promptly to endocrinology" in out
    assert "[melmed-2011-endocrine-society]" in out or "melmed-2011-endocrine-society" in out
    assert "not a medical device" in out


def test_interpret_uses_the_laboratory_reference(capsys):
    _, out, _ = run(
        capsys, "interpret", "prolactin", "14", "ng/mL", "--sex", "male",
        "--reference", "2", "12", "--json",
    )
    data = json.loads(out)
    assert (data["reference_high"], data["flag"]) == (12.0, "high")


def test_interpret_other_labs_gives_range_and_flag(capsys):
    code, out, _ = run(capsys, "interpret", "creatinine", "130", "umol/L", "--sex", "female", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["canonical_unit"] == "mg/dL"
    assert data["canonical_value"] == pytest.approx(130 / 88.4)
    assert (data["reference_high"], data["flag"]) == (1.04, "high")
    assert data["citations"][0]["id"] == "mayo-clinic-laboratories-creatinine"


def test_interpret_a_lab_without_a_range_says_so(capsys):
    code, out, _ = run(capsys, "interpret", "lh", "5", "IU/L", "--sex", "male", "--json")
    data = json.loads(out)
    assert code == 0 and data["flag"] is None
    assert [c["code"] for c in data["considerations"]] == ["no-reference-range"]


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (("prolactin", "5", "furlongs"), "unit 'furlongs' is not accepted"),
        (("prolactin", "-5", "ng/mL"), "cannot be negative"),
        (("prolactin", "abc", "ng/mL"), "must be a number"),
        (("cortisol", "5", "ug/dL"), "unknown lab 'cortisol'"),
        (("uds-opioids", "1", "ng/mL"), "qualitative"),
    ],
)
def test_interpret_invalid_input_exits_2_with_the_reason_on_stderr(capsys, argv, reason):
    code, out, err = run(capsys, "interpret", *argv, "--sex", "male")
    assert code == 2
    assert out == ""
    assert reason in err


def test_interpret_a_bad_reference_exits_2(capsys):
    code, _, err = run(
        capsys, "interpret", "prolactin", "5", "ng/mL", "--sex", "male", "--reference", "9", "3"
    )
    assert code == 2 and "low 9 is above high 3" in err


def test_interpret_requires_sex(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["interpret", "prolactin", "5", "ng/mL"])
    assert exc.value.code == 2
    assert "--sex" in capsys.readouterr().err


def test_claims_json_lists_the_article_claims_with_verdicts(capsys):
    code, out, _ = run(capsys, "claims", "--json")
    data = json.loads(out)
    assert code == 0
    claims = {c["id"]: c for c in data["claims"]}
    assert claims["article-1"]["verdict"] == "contradicted"
    assert claims["article-1"]["strength"]
    assert {c["id"] for c in data["citations"]} >= {"labryer-2018", "melmed-2011-endocrine-society"}


def test_claims_text_filtered_to_the_article(capsys):
    code, out, _ = run(capsys, "claims", "--source", "article")
    assert code == 0
    assert "article-1 [CONTRADICTED]" in out
    assert "kratom-may-raise-prolactin [" not in out
    assert "Citations:" in out
