"""SAF-LIVER version 2: Aithal 2011 criteria, the R ratio, Hy's law only from concurrent
samples with ALP below 2 x ULN, urgent severity, itching, and inputs in ukat/L."""

from __future__ import annotations

from speciosa.safety import evaluate

from .safety_builders import AS_OF, by_topic, lab, side_effect, timeline

# male upper limits (catalogue): ALT 55, AST 48, ALP 129 U/L, bilirubin 1.2 mg/dL


def liver(*labs, side_effects=(), **kw):
    return by_topic(evaluate(timeline(labs=list(labs), side_effects=list(side_effects), **kw),
                             AS_OF), "liver-injury")


def test_an_alp_of_five_times_the_upper_limit_raises_a_cholestatic_finding():
    f = liver(lab("alp", 645.0, "U/L"), lab("alt", 60.0, "U/L"))
    assert f is not None and f.severity == "warning"
    assert "ALP at least 2 x ULN" in f.message and "ALP 645 U/L" in f.message
    assert f.evidence["labs"]["alp"]["times_uln"] == 5.0
    # R = (60/55) / (645/129) = 0.22: cholestatic
    assert f.evidence["pattern"] == "cholestatic" and f.evidence["r_ratio"] == 0.22


def test_alp_just_below_twice_the_upper_limit_alone_raises_nothing():
    assert liver(lab("alp", 257.0, "U/L")) is None  # 1.99 x ULN


def test_the_r_ratio_bands():
    # ALT 10 x ULN, ALP 1 x ULN: R 10, hepatocellular; ALT 6 x, ALP 2 x: R 3, mixed
    f = liver(lab("alt", 550.0, "U/L"), lab("alp", 129.0, "U/L"))
    assert f.evidence["pattern"] == "hepatocellular" and "R ratio 10.0" in f.message
    f = liver(lab("alt", 330.0, "U/L"), lab("alp", 258.0, "U/L"))
    assert f.evidence["pattern"] == "mixed"


def test_alt_five_times_the_upper_limit_meets_the_criteria():
    f = liver(lab("alt", 275.0, "U/L"))
    assert "ALT at least 5 x ULN" in f.message and f.severity == "warning"
    f = liver(lab("alt", 200.0, "U/L"))  # 3.6 x: raised, not the criteria
    assert "below the drug-induced liver injury criteria" in f.message


def test_hys_law_needs_concurrent_samples_alt_three_months_ago_is_not():
    # ALT 4 x ULN 85 days ago, today's bilirubin 3 x ULN, ALP normal today
    f = liver(lab("alt", 220.0, "U/L", days=85), lab("bilirubin", 3.6, "mg/dL", days=0),
              lab("alp", 100.0, "U/L", days=0))
    assert f.severity == "warning"
    assert "Hy's law" not in f.message and "hys_law" not in f.evidence
    # the same ALT 3 days before the bilirubin is Hy's law
    f = liver(lab("alt", 220.0, "U/L", days=3), lab("bilirubin", 3.6, "mg/dL", days=0),
              lab("alp", 100.0, "U/L", days=0))
    assert f.severity == "urgent" and f.evidence["hys_law"] is True


def test_hys_law_is_not_called_with_a_raised_alp_or_without_one():
    raised = liver(lab("alt", 220.0, "U/L"), lab("bilirubin", 3.6, "mg/dL"),
                   lab("alp", 300.0, "U/L"))
    assert raised.severity == "warning" and raised.evidence["hys_law"] is False
    assert "cholestasis" in raised.message
    missing = liver(lab("alt", 220.0, "U/L"), lab("bilirubin", 3.6, "mg/dL"))
    assert missing.severity == "warning" and "no ALP was measured" in missing.message
    # the third criterion is met either way
    assert "with bilirubin above 2 x ULN" in missing.message


def test_an_alp_far_from_the_bilirubin_does_not_make_hys_law():
    f = liver(lab("alt", 220.0, "U/L", days=1), lab("bilirubin", 3.6, "mg/dL", days=1),
              lab("alp", 100.0, "U/L", days=30))
    assert f.severity == "warning" and f.evidence["hys_law"] is False


def test_twenty_times_the_upper_limit_is_urgent():
    f = liver(lab("ast", 960.0, "U/L"))  # 20 x 48
    assert f.severity == "urgent" and "at least 20 x ULN" in f.message
    assert liver(lab("ast", 950.0, "U/L")).severity == "warning"


def test_inr_above_1_5_with_liver_injury_is_urgent_and_alone_is_not_a_finding():
    f = liver(lab("alt", 300.0, "U/L"), lab("inr", 1.6, "{INR}"))
    assert f.severity == "urgent" and "INR above 1.5 with liver injury" in f.message
    assert liver(lab("inr", 1.6, "{INR}")) is None
    assert liver(lab("alt", 300.0, "U/L"), lab("inr", 1.5, "{INR}")).severity == "warning"


def test_inputs_in_ukat_per_litre_are_read_in_u_per_litre():
    # ALP 10.75 ukat/L = 645 U/L (5 x ULN); ALT 5 ukat/L = 300 U/L (5.5 x ULN)
    f = liver(lab("alp", 10.75, "ukat/L"), lab("alt", 5.0, "ukat/L"))
    assert "ALP 645 U/L" in f.message and "ALT 300 U/L" in f.message
    assert f.evidence["labs"]["alt"]["value"] == 5.0
    assert f.evidence["labs"]["alt"]["unit"] == "ukat/L"


def test_itching_is_a_reported_symptom_of_liver_injury():
    f = liver(side_effects=[side_effect("itching", 3)])
    assert f.severity == "info" and f.message.startswith("Itching reported")
    both = liver(lab("alt", 200.0, "U/L"), side_effects=[side_effect("itching", 3)])
    assert both.severity == "warning" and "itching reported" in both.message
    assert liver(side_effects=[side_effect("itching", 40)]) is None


def test_a_female_patient_reads_the_female_alp_limit():
    # 220 U/L: 2.1 x the female 104, 1.7 x the male 129
    assert liver(lab("alp", 220.0, "U/L"), sex="female") is not None
    assert liver(lab("alp", 220.0, "U/L"), sex="male") is None
