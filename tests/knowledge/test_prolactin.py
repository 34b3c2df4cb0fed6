"""Prolactin interpretation: flags, thresholds, and each consideration exactly when it applies."""

from __future__ import annotations

import pytest

from speciosa.knowledge import evidence, prolactin
from speciosa.knowledge.labs import LabValueError
from speciosa.knowledge.prolactin import (
    DRUG_INDUCED_USUAL_MAX_NG_PER_ML,
    PROLACTIN_RAISING_MEDICATIONS,
    PROLACTINOMA_SUGGESTIVE_NG_PER_ML,
    interpret,
    prolactin_raising_medication,
)

NORMAL_LABS = {"tsh": (2.0, "m[IU]/L"), "creatinine": (0.9, "mg/dL")}


def codes(result):
    return set(result.codes())


def test_it_returns_the_canonical_value_range_and_loinc():
    r = interpret(318, "mIU/L", sex="female")
    assert (r.lab, r.loinc, r.value, r.unit) == ("prolactin", "2842-3", 318.0, "m[IU]/L")
    assert (r.canonical_value, r.canonical_unit) == (15.0, "ng/mL")
    assert (r.reference_low, r.reference_high) == (4.8, 23.3)
    assert r.flag == "normal"
    assert "not a medical device" in r.disclaimer


@pytest.mark.parametrize(
    ("value", "sex", "flag"),
    [
        (15.2, "male", "normal"),
        (15.3, "male", "high"),
        (4.0, "male", "normal"),
        (3.9, "male", "low"),
        (23.3, "female", "normal"),
        (23.4, "female", "high"),
        (4.7, "female", "low"),
        (250.0, "male", "high"),
        (250.1, "male", "high"),
        (6000.0, "female", "high"),
    ],
)
def test_flags_on_both_sides_of_each_limit(value, sex, flag):
    assert interpret(value, "ng/mL", sex=sex).flag == flag


def test_the_thresholds_are_about_100_and_250():
    assert PROLACTINOMA_SUGGESTIVE_NG_PER_ML == 250.0
    assert DRUG_INDUCED_USUAL_MAX_NG_PER_ML == 100.0


@pytest.mark.parametrize("value", [250.1, 300.0, 1000.0, 6000.0])
def test_prolactin_has_no_critical_flag_above_250_it_asks_for_a_prompt_referral(value):
    r = interpret(value, "ng/mL", sex="male", recent_labs=NORMAL_LABS)
    assert r.flag == "high"
    c = next(c for c in r.considerations if c.code == "prolactinoma-suggested")
    assert "refer promptly to endocrinology" in c.text
    assert "not same-day emergency care" in c.text
    assert c.citations[0] == "prolactin-above-250-prompt-referral"
    assert {"vilar-2014", "jcem-2023-prolactin-workup"} <= set(c.citations)
    claim = evidence.claim("prolactin-above-250-prompt-referral")
    assert claim.verdict == "partly-supported"


def test_the_laboratorys_own_range_is_used_when_given():
    r = interpret(14, "ng/mL", sex="male", reference=(2.0, 12.0))
    assert (r.reference_low, r.reference_high, r.flag) == (2.0, 12.0, "high")
    assert "mayo-clinic-laboratories-prl" not in r.citations


def test_a_normal_value_has_no_hyperprolactinaemia_considerations():
    r = interpret(10, "ng/mL", sex="male", medications=["kratom"])
    assert r.considerations == ()


def test_a_high_value_is_confirmed_by_a_single_measurement():
    r = interpret(30, "ng/mL", sex="male", recent_labs=NORMAL_LABS)
    assert "single-value-confirms" in codes(r)
    c = next(c for c in r.considerations if c.code == "single-value-confirms")
    assert "dynamic testing is not recommended" in c.text
    assert "melmed-2011-endocrine-society" in c.citations


@pytest.mark.parametrize(("value", "present"), [(30.3, True), (30.4, False)])
def test_sampling_conditions_are_raised_only_below_twice_the_upper_limit(value, present):
    r = interpret(value, "ng/mL", sex="male", recent_labs=NORMAL_LABS)  # ULN 15.2 -> 30.4
    assert ("sampling-conditions" in codes(r)) is present


@pytest.mark.parametrize(
    ("value", "inside", "outside"),
    [(100, True, False), (100.1, False, True)],
)
def test_the_drug_induced_range_of_about_100_on_both_sides(value, inside, outside):
    r = interpret(value, "ng/mL", sex="female", medications=["risperidone"])
    assert ("within-drug-induced-range" in codes(r)) is inside
    assert ("above-drug-induced-range" in codes(r)) is outside
    assert "medications" in codes(r)


def test_without_a_prolactin_raising_medication_it_asks_about_medications_including_kratom():
    r = interpret(40, "ng/mL", sex="male", medications=["paracetamol"])
    assert "medication-history" in codes(r)
    assert not codes(r) & {"medications", "within-drug-induced-range", "above-drug-induced-range"}
    text = next(c.text for c in r.considerations if c.code == "medication-history")
    assert "kratom" in text and "antipsychotics" in text


@pytest.mark.parametrize(
    "name", ["antipsychotic", "risperidone", "metoclopramide", "domperidone", "methadone", "kratom"]
)
def test_the_named_medication_classes_raise_prolactin(name):
    assert name in PROLACTIN_RAISING_MEDICATIONS


def test_medication_names_are_matched_without_case_or_dose():
    assert prolactin_raising_medication("Risperidone 2 mg").name == "risperidone"
    assert prolactin_raising_medication("aripiprazole") is None


def test_kratom_is_an_opioid_like_agonist_with_its_evidence_strength_shown():
    kratom = PROLACTIN_RAISING_MEDICATIONS["kratom"]
    assert "opioid-like" in kratom.drug_class
    assert "one case report" in kratom.note
    assert "kratom-may-raise-prolactin" in kratom.citations


def test_kratom_use_with_high_prolactin_says_it_may_raise_it_never_lower_it():
    r = interpret(24, "ng/mL", sex="male", medications=["kratom"], recent_labs=NORMAL_LABS)
    c = next(c for c in r.considerations if c.code == "kratom")
    assert "may raise prolactin" in c.text
    assert "one case report" in c.text
    assert "article-1" in c.citations
    for cons in r.considerations:
        assert "kratom lowers" not in cons.text.lower()
        assert "reduces prolactin" not in cons.text.lower()


def test_the_kratom_consideration_is_absent_without_kratom():
    r = interpret(24, "ng/mL", sex="male", medications=["methadone"])
    assert "kratom" not in codes(r)


@pytest.mark.parametrize(("value", "present"), [(250, False), (250.1, True)])
def test_prolactinoma_is_suggested_only_above_about_250(value, present):
    r = interpret(value, "ng/mL", sex="female", symptoms=["galactorrhoea"])
    assert ("prolactinoma-suggested" in codes(r)) is present


@pytest.mark.parametrize(
    ("symptoms", "value", "present"),
    [((), 40, True), (("low libido",), 40, False), ((), 300, False)],
)
def test_macroprolactin_screening_only_when_asymptomatic_and_below_250(symptoms, value, present):
    r = interpret(value, "ng/mL", sex="male", symptoms=symptoms)
    assert ("macroprolactin" in codes(r)) is present


def test_pregnancy_says_the_range_does_not_apply_and_skips_the_pregnancy_test():
    r = interpret(80, "ng/mL", sex="female", pregnant=True)
    assert "pregnancy" in codes(r)
    assert "exclude-pregnancy" not in codes(r)
    assert "does not apply" in next(c.text for c in r.considerations if c.code == "pregnancy")


def test_pregnancy_consideration_is_present_even_with_a_normal_value():
    assert "pregnancy" in codes(interpret(20, "ng/mL", sex="female", pregnant=True))


@pytest.mark.parametrize(
    ("state", "code"),
    [({"pregnant": True}, "pregnancy"), ({"breastfeeding": True}, "breastfeeding")],
)
@pytest.mark.parametrize("unit,amount", [("ng/mL", 300.0), ("mIU/L", 6360.0)])
def test_a_pregnant_or_breastfeeding_patient_at_300_gets_no_flag_and_nothing_further(
        state, code, unit, amount):
    r = interpret(amount, unit, sex="female", medications=["kratom", "risperidone"],
                  symptoms=["headache"], recent_labs=NORMAL_LABS, **state)
    assert r.canonical_value == pytest.approx(300.0)
    assert r.flag == ""
    assert "does not apply" in r.flag_note
    assert set(r.codes()) <= {code, "unit-conversion"}
    assert code in r.codes()
    text = " ".join(c.text for c in r.considerations).lower()
    for word in ("confirms", "enough to confirm", "hyperprolactinaemia", "macroprolactin",
                 "prolactinoma", "mri", "re-measure", "imaging", "endocrinology"):
        assert word not in text, word
    assert "does not apply" in text


def test_pregnant_and_breastfeeding_both_stop_the_interpretation():
    r = interpret(40, "ng/mL", sex="female", pregnant=True, breastfeeding=True)
    assert r.codes() == ("pregnancy", "breastfeeding") and r.flag == ""


def test_breastfeeding_is_considered():
    r = interpret(40, "ng/mL", sex="female", breastfeeding=True)
    assert "breastfeeding" in codes(r) and "exclude-pregnancy" not in codes(r)


def test_kratom_re_measurement_follows_its_repeated_dose_half_life_never_3_days():
    from speciosa.knowledge import prolactin as kprolactin
    from speciosa.pharmacology import model as pmodel

    r = interpret(60, "ng/mL", sex="male", medications=["kratom"], recent_labs=NORMAL_LABS)
    assert pmodel.REPEATED_DOSE_HALF_LIFE.value == 67.9
    assert pmodel.REPEATED_DOSE_HALF_LIFE.source_ids == ("huestis-2024",)
    assert kprolactin.kratom_remeasure_after_h() == pytest.approx(5 * 67.9)
    c = next(c for c in r.considerations if c.code == "kratom-remeasure")
    assert "5 x 68 h is about 14 days" in c.text
    assert "two weeks or more" in c.text and "supervised taper" in c.text
    assert "withdrawal" in c.text
    assert {"huestis-2024", "remeasure-after-stopping-kratom"} <= set(c.citations)
    everything = " ".join(x.text for x in r.considerations)
    assert "3 days" not in everything
    assert "remeasure-after-stopping-drug" not in r.citations


def test_kratom_re_measurement_moves_with_the_model_parameter(monkeypatch):
    from speciosa.pharmacology import model as pmodel

    slower = pmodel.Parameter("mg_half_life_repeated_dose_h", 96.0, "h", "huestis-2024", "")
    monkeypatch.setattr(pmodel, "REPEATED_DOSE_HALF_LIFE", slower)
    r = interpret(60, "ng/mL", sex="male", medications=["kratom"])
    c = next(c for c in r.considerations if c.code == "kratom-remeasure")
    assert "5 x 96 h is about 20 days" in c.text


def test_another_drug_keeps_the_short_interval_and_kratom_beside_it_its_own():
    r = interpret(60, "ng/mL", sex="male", medications=["risperidone", "kratom"])
    meds = next(c for c in r.considerations if c.code == "medications")
    assert "about 3 days after stopping for most drugs" in meds.text
    assert "remeasure-after-stopping-drug" in meds.citations
    assert "kratom-remeasure" in codes(r)
    assert "kratom-remeasure" not in codes(interpret(60, "ng/mL", sex="male",
                                                     medications=["risperidone"]))


def test_a_woman_who_is_not_pregnant_is_asked_to_exclude_pregnancy_a_man_is_not():
    assert "exclude-pregnancy" in codes(interpret(40, "ng/mL", sex="female"))
    assert "exclude-pregnancy" not in codes(interpret(40, "ng/mL", sex="male"))


@pytest.mark.parametrize(
    ("tsh", "check", "hypo"),
    [(None, True, False), ((4.2, "mIU/L"), False, False), ((4.3, "mIU/L"), False, True)],
)
def test_thyroid_consideration_depends_on_the_recent_tsh(tsh, check, hypo):
    recent = {"tsh": tsh} if tsh else {}
    r = interpret(40, "ng/mL", sex="male", recent_labs=recent)
    assert ("check-tsh" in codes(r)) is check
    assert ("hypothyroidism" in codes(r)) is hypo


@pytest.mark.parametrize(
    ("recent", "check", "kidney"),
    [
        ({}, True, False),
        ({"creatinine": (1.35, "mg/dL")}, False, False),
        ({"creatinine": (1.36, "mg/dL")}, False, True),
        ({"creatinine": (120, "umol/L")}, False, True),
        ({"egfr": (60, "mL/min/{1.73_m2}")}, False, False),
        ({"egfr": (59, "mL/min/1.73m2")}, False, True),
    ],
)
def test_kidney_consideration_depends_on_recent_creatinine_or_egfr(recent, check, kidney):
    r = interpret(40, "ng/mL", sex="male", recent_labs=recent)
    assert ("check-kidney-function" in codes(r)) is check
    assert ("kidney-function" in codes(r)) is kidney


def test_symptoms_to_ask_about_are_sex_specific():
    male = next(c.text for c in interpret(40, "ng/mL", sex="male").considerations if c.code == "symptoms")
    female = next(c.text for c in interpret(40, "ng/mL", sex="female").considerations if c.code == "symptoms")
    assert "gynaecomastia" in male and "erectile" in male
    assert "menstrual" in female and "galactorrhoea" in female


def test_hook_effect_only_with_mass_symptoms_and_not_above_250():
    assert "hook-effect" in codes(interpret(20, "ng/mL", sex="male", symptoms=["headache"]))
    assert "hook-effect" not in codes(interpret(20, "ng/mL", sex="male"))
    assert "hook-effect" not in codes(interpret(300, "ng/mL", sex="male", symptoms=["headache"]))


@pytest.mark.parametrize(("unit", "present"), [("mIU/L", True), ("ng/mL", False), ("µg/L", False)])
def test_an_iu_value_carries_the_unconfirmed_conversion_factor(unit, present):
    r = interpret(300, unit, sex="female")
    assert ("unit-conversion" in codes(r)) is present
    if present:
        text = next(c.text for c in r.considerations if c.code == "unit-conversion")
        assert "UNCONFIRMED" in text and "21.2" in text


def test_the_laboratorys_iu_factor_replaces_the_default():
    r = interpret(2094, "mIU/L", sex="female", iu_factor=20.94)
    assert r.canonical_value == pytest.approx(100)
    text = next(c.text for c in r.considerations if c.code == "unit-conversion")
    assert "UNCONFIRMED" not in text


@pytest.mark.parametrize(("value", "present"), [(1000, False), (1001, True), (0.9, True)])
def test_an_implausible_value_is_asked_to_be_checked(value, present):
    assert ("check-value" in codes(interpret(value, "ng/mL", sex="male"))) is present


def test_every_consideration_cites_evidence_that_exists():
    r = interpret(
        6000, "mIU/L", sex="female", medications=["risperidone", "kratom"],
        recent_labs={"tsh": (8, "mIU/L"), "creatinine": (200, "umol/L")}, symptoms=["headache"],
    )
    for c in r.considerations:
        assert c.citations, c.code
        assert evidence.missing_references(c.citations) == [], c.code
    assert evidence.missing_references(r.citations) == []
    assert set(r.citations) >= {cid for c in r.considerations for cid in c.citations}


def test_considerations_never_use_diagnostic_certainty():
    r = interpret(400, "ng/mL", sex="male", medications=["kratom"])
    for c in r.considerations:
        assert "you have" not in c.text.lower()
        assert "diagnosis is" not in c.text.lower()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"value": -1, "unit": "ng/mL", "sex": "male"}, "value"),
        ({"value": 10, "unit": "mg/dL", "sex": "male"}, "unit"),
        ({"value": 10, "unit": "", "sex": "male"}, "unit"),
        ({"value": 10, "unit": "ng/mL", "sex": "x"}, "sex"),
    ],
)
def test_invalid_input_raises_a_lab_value_error_naming_the_field(kwargs, field):
    value, unit = kwargs.pop("value"), kwargs.pop("unit")
    with pytest.raises(LabValueError) as err:
        interpret(value, unit, **kwargs)
    assert err.value.field == field


def test_the_3_day_interval_for_other_drugs_is_never_read_as_kratom_s():
    """Kratom listed with another prolactin-raising drug: the other drug's "about 3 days"
    must say it is not kratom's interval (issue 13, adversarial pass)."""
    result = interpret(60, "ng/mL", sex="female", medications=["kratom", "risperidone"])
    [meds] = [c.text for c in result.considerations if c.code == "medications"]
    assert "about 3 days" in meds and "not kratom, which needs two weeks or more" in meds
    [kratom] = [c.text for c in result.considerations if c.code == "kratom-remeasure"]
    assert "3 days" not in kratom and "two weeks or more" in kratom
    alone = interpret(60, "ng/mL", sex="female", medications=["risperidone"])
    assert "not kratom" not in " ".join(c.text for c in alone.considerations)


@pytest.mark.parametrize("medicine", ["methadone 80 mg", "Dolophine 10 mg"])  # prolactin-raising OUD drugs
def test_treatment_of_opioid_use_disorder_is_never_stopped_to_re_measure(medicine):
    """Issue 13, adversarial pass: 'stop it ... re-measure about 3 days after' was said of
    methadone and buprenorphine too; stopping them brings withdrawal and overdose risk."""
    result = prolactin.interpret(60, "ng/mL", sex="male", medications=[medicine])
    [text] = [c.text for c in result.considerations if c.code == "medications"]
    assert f"Do not stop {medicine} (treatment of opioid use disorder)" in text
    assert "about 3 days after stopping" not in text
    [cites] = [c.citations for c in result.considerations if c.code == "medications"]
    assert "lost-tolerance-overdose" in cites
    # another prolactin-raising drug alongside keeps its own re-measurement advice
    both = prolactin.interpret(60, "ng/mL", sex="male", medications=[medicine, "risperidone"])
    [text] = [c.text for c in both.considerations if c.code == "medications"]
    assert "about 3 days after stopping for most drugs" in text and "Do not stop" in text
