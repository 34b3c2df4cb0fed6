"""Safety rules: each topic on both sides of its threshold, escalation, settings, ordering."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from speciosa.knowledge.evidence import missing_references
from speciosa.pharmacology.doses import Dose
from speciosa.safety import DEFAULT_SETTINGS, RULES, Assessment, LabResult, evaluate
from speciosa.safety.settings import SETTINGS

from .safety_builders import (
    AS_OF,
    ago,
    audit_c,
    by_topic,
    cows,
    daily_doses,
    lab,
    medication,
    phq9,
    prolactin,
    side_effect,
    sows,
    substance,
    timeline,
    topics,
)

ISSUE_TOPICS = {
    "prolactin-high", "prolactin-very-high", "prolactin-rising", "prolactin-symptoms",
    "prolactin-test-due", "withdrawal-moderate", "dose-escalation", "co-use-sedative",
    "interaction-cyp3a", "liver-injury", "pregnancy", "suicide-risk", "seizure",
    "diary-missed",
    # issue 13
    "depression-severe", "anxiety-severe", "qt-risk", "potent-7oh-product",
    # issue 19
    "medication-not-classified", "naltrexone-kratom", "uds-unexpected",
}  # fmt: skip

KRATOM_NOW = daily_doses(3, 0, 2.0)  # a few recent doses: current use, not regular use


def run(tl, settings=None):
    return evaluate(tl, AS_OF, settings)


# ------------------------------------------------------------------ the rule table


def test_every_topic_of_the_issue_has_exactly_one_rule():
    assert sorted(r.topic for r in RULES) == sorted(ISSUE_TOPICS)


def test_rule_ids_are_unique_and_stable():
    ids = [r.id for r in RULES]
    assert len(set(ids)) == len(ids)
    assert "SAF-PRL-HIGH" in ids and "SAF-SUICIDE" in ids


def test_every_rule_and_setting_cites_evidence_that_resolves():
    for rule in RULES:
        assert rule.citations, rule.id
        assert missing_references(rule.citations) == [], rule.id
    for setting in SETTINGS:
        assert missing_references(setting.citations) == [], setting.name


def test_every_setting_a_rule_reads_is_a_documented_default():
    for rule in RULES:
        for name in rule.settings:
            assert name in DEFAULT_SETTINGS, (rule.id, name)


def test_prolactin_thresholds_come_from_the_prolactin_module():
    from speciosa.knowledge import prolactin

    assert DEFAULT_SETTINGS["prolactin_very_high_ng_per_ml"] == prolactin.DRUG_INDUCED_USUAL_MAX_NG_PER_ML
    assert DEFAULT_SETTINGS["prolactin_prolactinoma_ng_per_ml"] == prolactin.PROLACTINOMA_SUGGESTIVE_NG_PER_ML


def test_an_empty_timeline_has_no_findings():
    assert run(timeline()) == []


# ------------------------------------------------------------------ prolactin-high


def test_prolactin_just_above_the_male_upper_limit_is_an_info_finding_to_repeat():
    f = by_topic(run(timeline(labs=[prolactin(16.0)])), "prolactin-high")
    assert f.severity == "info"
    assert f.evidence["result"]["upper_reference_limit"] == 15.2
    assert f.evidence["times_uln"] == 1.05
    assert "one case report" in f.message
    assert f.next_step.startswith("Consider repeating")


def test_prolactin_at_the_male_upper_limit_is_not_high():
    assert run(timeline(labs=[prolactin(15.2)])) == []


def test_prolactin_twice_the_upper_limit_is_a_warning():
    f = by_topic(run(timeline(labs=[prolactin(31.0)])), "prolactin-high")
    assert f.severity == "warning"


def test_the_female_range_applies_to_a_woman():
    assert by_topic(run(timeline(sex="female", labs=[prolactin(20.0)])), "prolactin-high") is None
    assert by_topic(run(timeline(sex="male", labs=[prolactin(20.0)])), "prolactin-high") is not None


def test_an_unknown_sex_uses_the_higher_upper_limit():
    assert by_topic(run(timeline(sex=None, labs=[prolactin(20.0)])), "prolactin-high") is None
    f = by_topic(run(timeline(sex=None, labs=[prolactin(24.0)])), "prolactin-high")
    assert f.evidence["result"]["upper_reference_limit"] == 23.3


def test_the_reporting_laboratorys_upper_limit_is_preferred():
    f = by_topic(run(timeline(labs=[prolactin(14.0, reference_high=12.0)])), "prolactin-high")
    assert f.evidence["result"]["upper_reference_limit"] == 12.0
    assert f.evidence["reference_source"] == "reporting laboratory"


def test_prolactin_in_miu_per_litre_is_converted_before_comparing():
    f = by_topic(run(timeline(labs=[prolactin(530.0, unit="mIU/L")])), "prolactin-high")
    assert f.evidence["result"]["value_canonical"] == pytest.approx(25.0, abs=0.01)


def test_a_prolactin_older_than_the_monitoring_interval_is_not_read():
    assert by_topic(run(timeline(labs=[prolactin(31.0, days=400)])), "prolactin-high") is None


def test_prolactin_rules_are_not_applied_in_pregnancy_or_breastfeeding():
    labs = [prolactin(8.0, days=200), prolactin(120.0)]
    assert not topics(run(timeline(sex="female", pregnant=True, labs=labs))) & {
        "prolactin-high", "prolactin-very-high", "prolactin-rising", "prolactin-test-due"}
    assert not topics(run(timeline(sex="female", breastfeeding=True, labs=labs))) & {
        "prolactin-high", "prolactin-very-high", "prolactin-rising"}


def test_a_current_prolactin_raising_medicine_is_named():
    tl = timeline(labs=[prolactin(20.0)], medications=[medication("Risperidone 2 mg")])
    f = by_topic(run(tl), "prolactin-high")
    assert f.evidence["prolactin_raising_medications"] == ["Risperidone 2 mg"]
    assert "Risperidone 2 mg" in f.message


# ------------------------------------------------------------------ prolactin-very-high


def test_prolactin_of_100_is_high_but_not_very_high():
    found = run(timeline(labs=[prolactin(100.0)]))
    assert by_topic(found, "prolactin-very-high") is None
    assert by_topic(found, "prolactin-high").severity == "warning"


def test_prolactin_just_above_100_is_very_high_and_not_reported_twice():
    found = run(timeline(labs=[prolactin(101.0)]))
    assert by_topic(found, "prolactin-very-high").severity == "warning"
    assert by_topic(found, "prolactin-high") is None


def test_prolactin_above_250_is_a_prompt_referral_warning_never_urgent():
    at_250 = by_topic(run(timeline(labs=[prolactin(250.0)])), "prolactin-very-high")
    assert at_250.severity == "warning" and "prolactinoma" not in at_250.message
    for value in (251.0, 600.0, 6000.0):
        f = by_topic(run(timeline(labs=[prolactin(value)])), "prolactin-very-high")
        assert f.severity == "warning", value
        assert "prolactinoma" in f.message
        assert "prompt endocrinology referral" in f.next_step and "MRI" in f.next_step
        assert "not same-day emergency care" in f.next_step
        assert "prolactin-above-250-prompt-referral" in f.citations


# ------------------------------------------------------------------ prolactin-rising


def test_a_rise_of_half_the_baseline_is_reported():
    found = run(timeline(labs=[prolactin(8.0, days=180), prolactin(12.0)]))
    f = by_topic(found, "prolactin-rising")
    assert f.severity == "info"  # still within the range
    assert f.evidence["rise_percent"] == 50.0
    assert f.evidence["baseline"]["value"] == 8.0


def test_a_rise_just_under_half_the_baseline_is_not_reported():
    assert by_topic(run(timeline(labs=[prolactin(8.0, days=180), prolactin(11.9)])),
                    "prolactin-rising") is None


def test_a_rise_above_the_upper_limit_is_a_warning():
    f = by_topic(run(timeline(labs=[prolactin(8.0, days=180), prolactin(20.0)])), "prolactin-rising")
    assert f.severity == "warning"


def test_one_result_is_not_a_rise():
    assert by_topic(run(timeline(labs=[prolactin(40.0)])), "prolactin-rising") is None


# ------------------------------------------------------------------ prolactin-symptoms


def test_a_reported_symptom_with_high_prolactin_is_a_warning():
    tl = timeline(labs=[prolactin(20.0)], side_effects=[side_effect("reduced-sex-drive", 30)])
    f = by_topic(run(tl), "prolactin-symptoms")
    assert f.severity == "warning"
    assert f.evidence["symptoms"][0]["code"] == "reduced-sex-drive"


def test_a_symptom_with_normal_prolactin_is_not_a_prolactin_symptom_finding():
    tl = timeline(labs=[prolactin(14.0)], side_effects=[side_effect("nipple-discharge", 30)])
    assert by_topic(run(tl), "prolactin-symptoms") is None


def test_a_symptom_outside_the_window_does_not_count():
    tl = timeline(labs=[prolactin(20.0)], side_effects=[side_effect("reduced-sex-drive", 91)])
    assert by_topic(run(tl), "prolactin-symptoms") is None


def test_a_symptom_not_linked_to_prolactin_does_not_count():
    tl = timeline(labs=[prolactin(20.0)], side_effects=[side_effect("constipation", 3)])
    assert by_topic(run(tl), "prolactin-symptoms") is None


# ------------------------------------------------------------------ prolactin-test-due


def test_regular_use_without_a_prolactin_makes_a_test_due():
    f = by_topic(run(timeline(doses=daily_doses(27, 14, 2.0))), "prolactin-test-due")
    assert f.severity == "info"
    assert f.evidence["reason"] == "regular-use"
    assert f.evidence["days_with_kratom_in_last_28"] == 14


def test_use_on_13_of_28_days_is_not_regular_use():
    assert by_topic(run(timeline(doses=daily_doses(27, 15, 2.0))), "prolactin-test-due") is None


def test_a_prolactin_within_the_interval_satisfies_monitoring():
    tl = timeline(doses=daily_doses(27, 0, 2.0), labs=[prolactin(9.0, days=200)])
    assert by_topic(run(tl), "prolactin-test-due") is None
    tl = timeline(doses=daily_doses(27, 0, 2.0), labs=[prolactin(9.0, days=366)])
    assert by_topic(run(tl), "prolactin-test-due").evidence["last_prolactin_at"].startswith("2024-")


def test_symptoms_without_a_recent_prolactin_make_a_test_due_even_without_use():
    tl = timeline(side_effects=[side_effect("breast-enlargement-tenderness", 10)],
                  labs=[prolactin(9.0, days=120)])
    f = by_topic(run(tl), "prolactin-test-due")
    assert f.evidence["reason"] == "symptoms"
    tl = timeline(side_effects=[side_effect("breast-enlargement-tenderness", 10)],
                  labs=[prolactin(9.0, days=60)])
    assert by_topic(run(tl), "prolactin-test-due") is None


# ------------------------------------------------------------------ withdrawal-moderate


@pytest.mark.parametrize(("total", "severity"), [(12, None), (13, "warning"), (24, "warning"),
                                                  (25, "urgent"), (40, "urgent")])
def test_cows_bands_set_the_withdrawal_severity(total, severity):
    f = by_topic(run(timeline(assessments=[cows(total)])), "withdrawal-moderate")
    assert (f.severity if f else None) == severity


def test_cows_items_are_scored_by_the_instrument_scorer():
    items = {"pulse": 2, "sweating": 2, "restlessness": 1, "pupil": 1, "bone-joint-aches": 2,
             "runny-nose-tearing": 1, "gi-upset": 2, "tremor": 0, "yawning": 1,
             "anxiety-irritability": 1, "gooseflesh": 0}  # 13
    f = by_topic(run(timeline(assessments=[Assessment("cows", ago(1), items, None)])),
                 "withdrawal-moderate")
    assert f.evidence["cows"]["total"] == 13
    assert f.evidence["cows"]["band"] == "moderate"


def test_an_old_cows_is_not_read():
    assert run(timeline(assessments=[cows(30, days=4)])) == []


def test_a_ten_point_sows_rise_is_marked_and_nine_is_not():
    f = by_topic(run(timeline(assessments=[sows(8, 20), sows(12, 10), sows(18, 1)])),
                 "withdrawal-moderate")
    assert f.severity == "warning"
    assert f.evidence["sows"]["baseline_total"] == 8 and f.evidence["sows"]["rise"] == 10
    assert by_topic(run(timeline(assessments=[sows(8, 20), sows(17, 1)])),
                    "withdrawal-moderate") is None


def test_a_sows_baseline_older_than_the_window_is_not_used():
    assert by_topic(run(timeline(assessments=[sows(2, 40), sows(20, 1)])),
                    "withdrawal-moderate") is None


def test_a_first_sows_at_the_absolute_level_is_withdrawal_moderate_and_31_is_not():
    """Issue 13: version 1 needed a baseline, so a first SOWS of 40 raised nothing."""
    f = by_topic(run(timeline(assessments=[sows(32, 1)])), "withdrawal-moderate")
    assert f.severity == "warning" and "sows" not in f.evidence
    assert f.evidence["sows_level"] == {"at": ago(1).isoformat(), "total": 32, "threshold": 32}
    assert "site convention, not a validated band" in f.message
    assert by_topic(run(timeline(assessments=[sows(31, 1)])), "withdrawal-moderate") is None
    # the setting decides, and the rise rule still works beside it
    assert by_topic(run(timeline(assessments=[sows(31, 1)]), {"sows_moderate_points": 30}),
                    "withdrawal-moderate") is not None
    f = by_topic(run(timeline(assessments=[sows(20, 10), sows(40, 1)])), "withdrawal-moderate")
    assert f.evidence["sows"]["rise"] == 20 and f.evidence["sows_level"]["total"] == 40
    # an urgent COWS keeps the finding urgent
    f = by_topic(run(timeline(assessments=[sows(40, 1), cows(30)])), "withdrawal-moderate")
    assert f.severity == "urgent"


# ------------------------------------------------------------------ dose-escalation


def test_a_fifty_percent_rise_in_daily_grams_is_escalation():
    doses = daily_doses(27, 14, 2.0) + daily_doses(13, 0, 3.0)
    f = by_topic(run(timeline(doses=doses)), "dose-escalation")
    assert f.severity == "warning"
    assert f.evidence["earlier_14_days"]["total_amount"] == 28.0
    assert f.evidence["last_14_days"]["total_amount"] == 42.0
    assert f.evidence["rise_percent"]["amount"] == 50.0


def test_a_smaller_rise_is_not_escalation():
    doses = daily_doses(27, 14, 2.0) + daily_doses(13, 0, 2.9)
    assert by_topic(run(timeline(doses=doses)), "dose-escalation") is None


def test_starting_use_is_not_escalation():
    doses = daily_doses(16, 14, 1.0) + daily_doses(13, 0, 4.0)  # 3 days in the earlier fortnight
    assert by_topic(run(timeline(doses=doses)), "dose-escalation") is None


def test_escalation_is_read_in_mitragynine_when_the_units_change():
    doses = daily_doses(27, 14, 2.0, mitragynine_percent=1.5) + daily_doses(
        13, 0, 50.0, unit="mg_mitragynine")  # 30 mg/day -> 50 mg/day
    f = by_topic(run(timeline(doses=doses)), "dose-escalation")
    assert "amount" not in f.evidence["rise_percent"]
    assert f.evidence["rise_percent"]["mitragynine"] == pytest.approx(66.7, abs=0.1)
    assert "mitragynine" in f.message


def test_a_window_with_an_unconvertible_dose_gets_no_mitragynine_estimate():
    # capsules without grams per capsule cannot be converted; a partial sum would fake a rise
    doses = daily_doses(27, 14, 2.0, unit="capsule") + daily_doses(
        13, 0, 40.0, unit="mg_mitragynine")
    assert by_topic(run(timeline(doses=doses)), "dose-escalation") is None


# ------------------------------------------------------------------ co-use-sedative


def test_a_current_benzodiazepine_with_kratom_is_a_warning():
    f = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication("Alprazolam 0.5 mg")])),
                 "co-use-sedative")
    assert f.severity == "warning"
    assert f.evidence["classes"] == ["benzodiazepine"]


def test_a_sedative_without_current_kratom_use_is_not_co_use():
    tl = timeline(doses=daily_doses(30, 15, 2.0), medications=[medication("alprazolam")])
    assert by_topic(run(tl), "co-use-sedative") is None


def test_a_stopped_medication_is_not_co_use():
    tl = timeline(doses=KRATOM_NOW, medications=[medication("pregabalin", 60, end_days_ago=1)])
    assert by_topic(run(tl), "co-use-sedative") is None
    tl = timeline(doses=KRATOM_NOW, medications=[medication("pregabalin", 60, end_days_ago=0)])
    assert by_topic(run(tl), "co-use-sedative").evidence["classes"] == ["gabapentinoid"]


def test_reported_heroin_within_the_lookback_is_co_use_and_older_is_not():
    assert by_topic(run(timeline(doses=KRATOM_NOW, substances=[substance("heroin", 30)])),
                    "co-use-sedative").evidence["classes"] == ["opioid"]
    assert by_topic(run(timeline(doses=KRATOM_NOW, substances=[substance("heroin", 31)])),
                    "co-use-sedative") is None


def test_audit_c_cut_off_depends_on_sex():
    male_4 = timeline(doses=KRATOM_NOW, assessments=[audit_c(2, 1, 1)])
    male_3 = timeline(doses=KRATOM_NOW, assessments=[audit_c(2, 1, 0)])
    female_3 = timeline(sex="female", doses=KRATOM_NOW, assessments=[audit_c(2, 1, 0)])
    assert by_topic(run(male_4), "co-use-sedative").evidence["classes"] == ["alcohol"]
    assert by_topic(run(male_3), "co-use-sedative") is None
    assert by_topic(run(female_3), "co-use-sedative") is not None


def test_a_total_only_audit_c_is_flagged_as_the_scorer_flags_the_same_total(tmp_path, monkeypatch):
    """Regression: the rules' own total-only flag logic stopped at the first condition that
    depended on the sex, although a later condition of the same flag held for everyone;
    the scorer lets a condition that holds win. A site definition of AUDIT-C with a second
    condition shows it: a total of 4 with the sex not recorded."""
    from speciosa.knowledge import instruments

    packaged = Path(instruments.__file__).parent / "data" / "instruments" / "audit-c.toml"
    text = packaged.read_text("utf-8").replace(
        "when_any = [{ total_at_least_by_sex = { female = 3, male = 4 } }]",
        "when_any = [{ total_at_least_by_sex = { female = 3, male = 5 } }, { total_at_least = 4 }]")
    assert "male = 5" in text
    (tmp_path / "audit-c.toml").write_text(text, "utf-8")
    monkeypatch.setenv(instruments.SITE_DIR_ENV, str(tmp_path))
    by_items = timeline(sex=None, doses=KRATOM_NOW, assessments=[audit_c(2, 1, 1)])
    by_total = timeline(sex=None, doses=KRATOM_NOW,
                        assessments=[Assessment("audit-c", ago(30), None, 4)])
    entry_items = by_topic(run(by_items), "co-use-sedative").evidence["co_use"]
    entry_total = by_topic(run(by_total), "co-use-sedative").evidence["co_use"]
    assert entry_items == entry_total == [{"class": "alcohol", "name": "AUDIT-C",
                                           "source": "screen", "at": ago(30).isoformat(),
                                           "total": 4}]


def test_a_positive_urine_benzodiazepine_screen_is_co_use():
    screen = LabResult("uds-benzodiazepines", ago(5), None, None, result="positive")
    f = by_topic(run(timeline(doses=KRATOM_NOW, labs=[screen])), "co-use-sedative")
    assert f.evidence["co_use"][0]["source"] == "urine screen (presumptive)"


# ------------------------------------------------------------------ interaction-cyp3a


def test_midazolam_with_kratom_is_a_narrow_margin_interaction_warning():
    f = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication("midazolam")])),
                 "interaction-cyp3a")
    assert f.severity == "warning"
    assert "1.39" in f.message
    assert f.evidence["narrow_margin"] == ["midazolam"]


def test_simvastatin_with_kratom_is_an_info_interaction():
    f = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication("simvastatin 40 mg")])),
                 "interaction-cyp3a")
    assert f.severity == "info"


def test_a_medication_not_sensitive_to_cyp3a_is_not_an_interaction():
    # the table does not know ibuprofen: only the finding that it could not be checked
    found = run(timeline(doses=KRATOM_NOW, medications=[medication("ibuprofen")]))
    assert [f.topic for f in found] == ["medication-not-classified"]
    # a medication the table knows and classes as no CYP3A substrate: nothing at all
    assert run(timeline(doses=KRATOM_NOW, medications=[medication("sertraline 50 mg")])) == []


def test_a_cyp3a_substrate_without_current_kratom_is_not_an_interaction():
    tl = timeline(doses=daily_doses(30, 15, 2.0), medications=[medication("tacrolimus")])
    assert by_topic(run(tl), "interaction-cyp3a") is None


# ------------------------------------------------------------------ liver-injury


def test_alt_just_above_three_times_the_upper_limit_is_liver_injury():
    f = by_topic(run(timeline(labs=[lab("alt", 166.0, "U/L")])), "liver-injury")  # ULN 55
    assert f.severity == "warning"
    assert f.evidence["labs"]["alt"]["times_uln"] == 3.02


def test_alt_below_three_times_the_upper_limit_is_not():
    assert run(timeline(labs=[lab("alt", 164.0, "U/L")])) == []


def test_bilirubin_above_twice_the_upper_limit_is_liver_injury_and_at_it_is_not():
    assert by_topic(run(timeline(labs=[lab("bilirubin", 2.5, "mg/dL")])), "liver-injury")
    assert run(timeline(labs=[lab("bilirubin", 2.4, "mg/dL")])) == []


def test_bilirubin_in_micromoles_is_converted():
    # 2.5 mg/dL = 42.75 umol/L
    assert by_topic(run(timeline(labs=[lab("bilirubin", 43.0, "umol/L")])), "liver-injury")


def test_aminotransferase_and_bilirubin_together_with_a_normal_alp_are_urgent():
    tl = timeline(labs=[lab("ast", 200.0, "U/L"), lab("bilirubin", 3.0, "mg/dL"),
                        lab("alp", 90.0, "U/L")])
    f = by_topic(run(tl), "liver-injury")
    assert f.severity == "urgent"
    assert "Hy's law, the pattern of severe" in f.message and f.evidence["hys_law"] is True


def test_reported_dark_urine_is_liver_injury_and_an_old_report_is_not():
    assert by_topic(run(timeline(side_effects=[side_effect("dark-urine-yellow-eyes", 30)])),
                    "liver-injury").severity == "warning"
    assert run(timeline(side_effects=[side_effect("dark-urine-yellow-eyes", 31)])) == []


def test_an_old_liver_test_is_not_read():
    assert run(timeline(labs=[lab("alt", 400.0, "U/L", days=91)])) == []


# ------------------------------------------------------------------ pregnancy


def test_pregnancy_with_current_kratom_use_is_a_warning():
    f = by_topic(run(timeline(sex="female", pregnant=True, doses=KRATOM_NOW)), "pregnancy")
    assert f.severity == "warning"
    assert "neonatal abstinence" in f.message.lower()
    assert "urine drug screens do not detect" in f.next_step


def test_pregnancy_without_current_kratom_use_is_not_flagged():
    tl = timeline(sex="female", pregnant=True, doses=daily_doses(20, 15, 2.0))
    assert by_topic(run(tl), "pregnancy") is None


def test_a_positive_hcg_counts_until_a_later_negative():
    pos = LabResult("hcg", ago(20), None, None, result="positive")
    neg = LabResult("hcg", ago(5), None, None, result="negative")
    f = by_topic(run(timeline(sex="female", doses=KRATOM_NOW, labs=[pos])), "pregnancy")
    assert f.evidence["hcg"]["result"] == "positive"
    assert by_topic(run(timeline(sex="female", doses=KRATOM_NOW, labs=[pos, neg])),
                    "pregnancy") is None


def test_a_quantitative_hcg_above_the_laboratorys_limit_is_positive():
    hcg = LabResult("hcg", ago(3), 1200.0, "m[IU]/mL", reference_high=5.0)
    assert by_topic(run(timeline(sex="female", doses=KRATOM_NOW, labs=[hcg])), "pregnancy")
    hcg = LabResult("hcg", ago(3), 2.0, "m[IU]/mL", reference_high=5.0)
    assert by_topic(run(timeline(sex="female", doses=KRATOM_NOW, labs=[hcg])), "pregnancy") is None


# ------------------------------------------------------------------ suicide-risk


def test_phq9_item_9_above_zero_is_urgent():
    f = by_topic(run(timeline(assessments=[phq9(1)])), "suicide-risk")
    assert f.severity == "urgent"
    assert f.evidence["item"] == "self-harm" and f.evidence["value"] == 1
    assert f.evidence["anchor"] == "several days"
    assert "same-day" in f.next_step


def test_phq9_item_9_of_zero_is_not_flagged():
    assert run(timeline(assessments=[phq9(0)])) == []


def test_a_phq9_older_than_two_weeks_is_not_read():
    assert run(timeline(assessments=[phq9(2, days=15)])) == []


def test_a_phq9_recorded_as_a_total_only_says_item_9_is_unknown_and_should_be_asked():
    """Issue 13: version 1 stayed silent on a total-only PHQ-9 (an import)."""
    found = run(timeline(assessments=[Assessment("phq9", ago(1), None, 8)]))
    f = by_topic(found, "suicide-risk")
    assert f.severity == "info" and f.rule == "SAF-SUICIDE"
    assert "no answer to item 9" in f.message and "unknown, not absent" in f.message
    assert "total 8" in f.message and f.evidence["value"] is None and f.evidence["total"] == 8
    assert "asking item 9" in f.next_step
    assert [x.topic for x in found] == ["suicide-risk"]  # 8 is not severe


def test_a_positive_item_9_in_the_window_outranks_a_later_total_only_phq9():
    f = by_topic(run(timeline(assessments=[phq9(2, days=5), Assessment("phq9", ago(1), None, 8)])),
                 "suicide-risk")
    assert f.severity == "urgent" and f.evidence["value"] == 2


def test_a_latest_phq9_that_answers_item_9_with_0_is_not_flagged_after_a_total_only_one():
    assert run(timeline(assessments=[Assessment("phq9", ago(5), None, 8), phq9(0, days=1)])) == []


# ------------------------------------------------------------------ severe depression, anxiety

PHQ9_SEVERE = {"interest": 3, "mood": 3, "sleep": 3, "energy": 3, "appetite": 3,
               "self-worth": 3, "concentration": 2, "psychomotor": 0, "self-harm": 0}  # 20


def phq9_items(items, days=2):
    return Assessment("phq9", ago(days), items, None)



def test_phq9_of_20_is_severe_depression_whatever_item_9_says():
    items = {**PHQ9_SEVERE, "self-harm": 0}
    f = by_topic(run(timeline(assessments=[Assessment("phq9", ago(2), items, None)])),
                 "depression-severe")
    assert f.severity == "warning" and f.evidence["total"] == 20 and f.evidence["band"] == "severe"
    assert "PHQ-9 total 20" in f.message and f.citations == ("kroenke-2001-phq9",)
    # with item 9 positive both fire
    found = run(timeline(assessments=[phq9_items({**PHQ9_SEVERE, "self-harm": 1, "mood": 2})]))
    assert {"suicide-risk", "depression-severe"} <= {x.topic for x in found}


def test_phq9_of_19_is_not_severe_and_a_total_only_20_is():
    items = {**PHQ9_SEVERE, "interest": 2}  # 19
    found = run(timeline(assessments=[Assessment("phq9", ago(2), items, None)]))
    assert "depression-severe" not in {x.topic for x in found}
    found = run(timeline(assessments=[Assessment("phq9", ago(2), None, 20)]))
    assert by_topic(found, "depression-severe").evidence["total"] == 20
    assert by_topic(found, "suicide-risk").severity == "info"


def test_gad7_of_15_is_severe_anxiety_and_14_or_an_old_one_is_not():
    def gad7(total, days=2):
        return Assessment("gad7", ago(days), None, total)

    f = by_topic(run(timeline(assessments=[gad7(15)])), "anxiety-severe")
    assert f.severity == "warning" and f.evidence["total"] == 15
    assert f.citations == ("spitzer-2006-gad7",) and "GAD-7 total 15" in f.message
    assert run(timeline(assessments=[gad7(14)])) == []
    assert run(timeline(assessments=[gad7(21, days=15)])) == []
    items = {"nervous": 3, "uncontrolled-worry": 3, "excessive-worry": 3, "trouble-relaxing": 3,
             "restless": 3, "irritable": 0, "afraid": 0}
    f = by_topic(run(timeline(assessments=[Assessment("gad7", ago(1), items, None)])),
                 "anxiety-severe")
    assert f.evidence["total"] == 15


# ------------------------------------------------------------------ seizure


def test_a_recent_seizure_is_urgent_and_an_old_one_is_not():
    f = by_topic(run(timeline(side_effects=[side_effect("seizure", 14)])), "seizure")
    assert f.severity == "urgent"
    assert run(timeline(side_effects=[side_effect("seizure", 15)])) == []


# ------------------------------------------------------------------ diary-missed


def _diary(first_days_ago: int, last_days_ago: int, every: int = 1):
    from .safety_builders import day_ago

    return [day_ago(d) for d in range(first_days_ago, last_days_ago - 1, -every)]


def test_seven_days_without_diary_from_a_daily_writer_is_flagged():
    f = by_topic(run(timeline(diary_days=_diary(60, 7))), "diary-missed")
    assert f.severity == "info"
    from .safety_builders import day_ago

    assert f.evidence["last_diary_day"] == day_ago(7).isoformat()
    assert "No diary for 7 days" in f.message
    assert f.evidence["entries_in_28_days_before"] == 28


def test_six_days_without_diary_is_not_flagged():
    assert run(timeline(diary_days=_diary(60, 6))) == []


def test_an_occasional_writer_is_not_chased():
    assert run(timeline(diary_days=_diary(60, 10, every=2))) == []  # 14 of 28 days


# ------------------------------------------------------------------ evaluation as a whole


def test_findings_are_sorted_urgent_first():
    tl = timeline(
        doses=KRATOM_NOW,
        assessments=[phq9(2)],
        labs=[prolactin(16.0)],
        medications=[medication("simvastatin")],
        side_effects=[side_effect("dark-urine-yellow-eyes", 2)],
    )
    severities = [f.severity for f in run(tl)]
    assert severities == ["urgent", "warning", "info", "info"]


def test_data_after_as_of_is_ignored():
    later = LabResult("prolactin", AS_OF.replace(day=30, hour=13), 300.0, "ng/mL")
    assert run(timeline(labs=[later])) == []


def test_a_site_can_change_a_threshold():
    tl = timeline(labs=[prolactin(90.0)])
    assert by_topic(run(tl), "prolactin-very-high") is None
    f = by_topic(run(tl, {"prolactin_very_high_ng_per_ml": 80}), "prolactin-very-high")
    assert f.evidence["thresholds_ng_per_ml"]["very_high"] == 80


def test_a_site_can_change_the_cows_threshold():
    tl = timeline(assessments=[cows(10)])
    assert run(tl, {"withdrawal_cows_moderate": 10})[0].severity == "warning"


def test_an_unknown_setting_is_rejected():
    with pytest.raises(ValueError, match="prolactin_very_hihg"):
        run(timeline(), {"prolactin_very_hihg": 80})


def test_a_non_positive_setting_is_rejected():
    with pytest.raises(ValueError, match="must be a positive number"):
        run(timeline(), {"diary_gap_days": 0})


def test_findings_are_json_serialisable_and_cite_resolvable_evidence():
    tl = timeline(
        sex="female", pregnant=True, doses=KRATOM_NOW, assessments=[phq9(1), cows(26)],
        labs=[lab("alt", 300.0, "U/L")], medications=[medication("midazolam")],
        side_effects=[side_effect("seizure", 1)], substances=[substance("alcohol", 2)],
    )
    found = run(tl)
    assert len(found) == 7
    for f in found:
        json.dumps(f.as_json())
        assert missing_references(f.citations) == []
        assert f.next_step.startswith("Consider")


def test_a_naive_as_of_is_read_in_the_patients_zone():
    tl = timeline(assessments=[phq9(1, days=14)])
    naive = AS_OF.replace(tzinfo=None)
    assert [f.topic for f in evaluate(tl, naive)] == ["suicide-risk"]


def test_evaluate_accepts_doses_in_any_order():
    doses = daily_doses(27, 14, 2.0) + daily_doses(13, 0, 3.0)
    forward = run(timeline(doses=doses))
    backward = run(timeline(doses=list(reversed(doses))))
    assert forward == backward


def test_dose_objects_come_from_the_pharmacology_module():
    assert isinstance(KRATOM_NOW[0], Dose)


def test_the_rules_import_nothing_from_django():
    import subprocess

    code = "import sys, speciosa.safety; print(sorted(m for m in sys.modules if m.startswith('django')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- issue 19: naltrexone


@pytest.mark.parametrize("name", ["naltrexone", "Vivitrol 380 mg", "Revia"])
def test_kratom_while_on_naltrexone_needs_review(name):
    found = by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication(name)])),
                     "naltrexone-kratom")
    assert found is not None and found.severity == "warning"
    assert found.evidence["naltrexone"] == [name]
    assert "blocks opioid receptors" in found.message and "overdose" in found.message
    assert "naloxone" in found.next_step
    assert set(found.citations) >= {"vivitrol-label", "pmc10337879-naltrexone-kratom",
                                    "lost-tolerance-overdose"}


def test_naltrexone_without_current_kratom_or_after_it_stopped_is_silent():
    assert by_topic(run(timeline(medications=[medication("naltrexone")])),
                    "naltrexone-kratom") is None
    old_kratom = daily_doses(60, 40, 2.0)
    assert by_topic(run(timeline(doses=old_kratom, medications=[medication("naltrexone")])),
                    "naltrexone-kratom") is None
    stopped = medication("naltrexone", start_days_ago=90, end_days_ago=30)
    assert by_topic(run(timeline(doses=KRATOM_NOW, medications=[stopped])),
                    "naltrexone-kratom") is None
    # naloxone (the rescue spray) is another antagonist, not naltrexone treatment
    assert by_topic(run(timeline(doses=KRATOM_NOW, medications=[medication("naloxone")])),
                    "naltrexone-kratom") is None
