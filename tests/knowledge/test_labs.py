"""Lab catalogue: codes, conversions both ways, reference ranges, plausibility, errors."""

from __future__ import annotations

import pytest

from speciosa.knowledge import labs
from speciosa.knowledge.labs import (
    LabValueError,
    all_labs,
    from_canonical,
    get_lab,
    normalise_result,
    plausibility_problem,
    reference_range,
    to_canonical,
)

QUANTITY_CODES = [
    "prolactin", "macroprolactin", "testosterone", "lh", "fsh", "tsh", "free-t4", "alt",
    "ast", "alp", "ggt", "inr", "qtc", "bilirubin", "creatinine", "egfr", "hcg",
]
UDS_CODES = [
    "uds-mitragynine", "uds-opioids", "uds-fentanyl", "uds-buprenorphine",
    "uds-norbuprenorphine", "uds-eddp", "uds-methadone", "uds-benzodiazepines", "uds-alcohol",
]

# (lab, value in unit, unit, canonical value) - exact pairs, checked both ways.
CONVERSIONS = [
    ("prolactin", 318, "m[IU]/L", 15),
    ("prolactin", 21.2, "m[IU]/L", 1),
    ("prolactin", 15, "ug/L", 15),
    ("prolactin", 15, "ng/mL", 15),
    ("testosterone", 3.47, "nmol/L", 100),
    ("testosterone", 5, "ng/mL", 500),
    ("testosterone", 500, "ng/dL", 500),
    ("lh", 5, "[IU]/L", 5),
    ("lh", 5, "m[IU]/mL", 5),
    ("fsh", 7, "[IU]/L", 7),
    ("fsh", 7, "m[IU]/mL", 7),
    ("tsh", 2.5, "u[IU]/mL", 2.5),
    ("tsh", 2.5, "m[IU]/L", 2.5),
    ("free-t4", 12.87, "pmol/L", 1),
    ("free-t4", 1.2, "ng/dL", 1.2),
    ("alt", 1, "ukat/L", 60),
    ("alt", 40, "[IU]/L", 40),
    ("alt", 40, "U/L", 40),
    ("ast", 0.5, "ukat/L", 30),
    ("ast", 30, "[IU]/L", 30),
    ("ast", 30, "U/L", 30),
    ("alp", 2, "ukat/L", 120),
    ("alp", 90, "[IU]/L", 90),
    ("alp", 90, "U/L", 90),
    ("ggt", 1, "ukat/L", 60),
    ("ggt", 30, "[IU]/L", 30),
    ("ggt", 30, "U/L", 30),
    ("inr", 1.2, "{INR}", 1.2),
    ("inr", 1.2, "1", 1.2),
    ("qtc", 450, "ms", 450),
    ("qtc", 0.45, "s", 450),
    ("bilirubin", 17.1, "umol/L", 1),
    ("bilirubin", 1.1, "mg/dL", 1.1),
    ("creatinine", 88.4, "umol/L", 1),
    ("creatinine", 0.9, "mg/dL", 0.9),
    ("egfr", 75, "mL/min/{1.73_m2}", 75),
    ("hcg", 25, "[IU]/L", 25),
    ("hcg", 25, "m[IU]/mL", 25),
    ("macroprolactin", 45, "%", 45),
]


def test_the_catalogue_has_every_required_lab_code():
    assert [lab.code for lab in all_labs()] == QUANTITY_CODES + UDS_CODES


@pytest.mark.parametrize("code", QUANTITY_CODES)
def test_every_quantity_lab_has_a_ucum_canonical_unit_with_factor_one(code):
    lab = get_lab(code)
    assert lab.kind == "quantity"
    assert lab.units[lab.canonical_unit] == 1.0


@pytest.mark.parametrize(("code", "value", "unit", "canonical"), CONVERSIONS)
def test_it_converts_to_the_canonical_unit_exactly(code, value, unit, canonical):
    assert to_canonical(code, value, unit) == pytest.approx(canonical, rel=1e-12)


@pytest.mark.parametrize(("code", "value", "unit", "canonical"), CONVERSIONS)
def test_it_converts_from_the_canonical_unit_exactly(code, value, unit, canonical):
    assert from_canonical(code, canonical, unit) == pytest.approx(value, rel=1e-12)


def test_every_accepted_unit_of_every_lab_is_covered_by_a_conversion_test():
    covered = {(code, labs.normalise_unit(code, unit)) for code, _, unit, _ in CONVERSIONS}
    accepted = {(lab.code, u) for lab in all_labs() if lab.kind == "quantity" for u in lab.units}
    assert accepted <= covered


def test_fifteen_ng_per_ml_of_prolactin_is_exactly_318_miu_per_l_and_back():
    assert from_canonical("prolactin", 15, "m[IU]/L") == 318.0
    assert to_canonical("prolactin", 318, "m[IU]/L") == 15.0


def test_the_units_mapping_factor_gives_canonical_as_value_times_factor():
    lab = get_lab("prolactin")
    assert 318 * lab.units["m[IU]/L"] == pytest.approx(15)
    assert 88.4 * get_lab("creatinine").units["umol/L"] == pytest.approx(1)


def test_the_prolactin_iu_factor_is_marked_unconfirmed_and_can_be_the_labs_own():
    lab = get_lab("prolactin")
    assert "units.m[IU]/L" in lab.unconfirmed
    assert "UNCONFIRMED" in lab.unit_notes["m[IU]/L"]
    assert to_canonical("prolactin", 20.94, "m[IU]/L", iu_factor=20.94) == pytest.approx(1)
    assert from_canonical("prolactin", 1, "m[IU]/L", iu_factor=20.94) == pytest.approx(20.94)


@pytest.mark.parametrize(
    ("display", "ucum"),
    [("µg/L", "ug/L"), ("mIU/L", "m[IU]/L"), ("m[iU]/L", "m[IU]/L"), ("ng/ml", "ng/mL")],
)
def test_it_accepts_common_display_spellings_of_prolactin_units(display, ucum):
    assert labs.normalise_unit("prolactin", display) == ucum


def test_it_accepts_display_spellings_of_other_units():
    assert labs.normalise_unit("creatinine", "µmol/L") == "umol/L"
    assert labs.normalise_unit("tsh", "mIU/L") == "m[IU]/L"
    assert labs.normalise_unit("tsh", "µIU/mL") == "u[IU]/mL"
    assert labs.normalise_unit("egfr", "mL/min/1.73m2") == "mL/min/{1.73_m2}"
    assert labs.normalise_unit("lh", "IU/L") == "[IU]/L"


def test_it_rejects_an_unknown_unit_listing_the_accepted_units():
    with pytest.raises(LabValueError) as err:
        to_canonical("prolactin", 10, "mg/dL")
    assert err.value.field == "unit"
    assert "'mg/dL' is not accepted" in str(err.value)
    assert "ng/mL, ug/L, m[IU]/L" in str(err.value)


@pytest.mark.parametrize("unit", [None, "", "  "])
def test_it_rejects_a_missing_unit(unit):
    with pytest.raises(LabValueError) as err:
        to_canonical("creatinine", 1.0, unit)
    assert err.value.field == "unit"
    assert "unit is missing" in str(err.value)


def test_it_rejects_a_negative_value():
    with pytest.raises(LabValueError) as err:
        to_canonical("prolactin", -3, "ng/mL")
    assert err.value.field == "value"
    assert "cannot be negative" in str(err.value)


@pytest.mark.parametrize("value", ["abc", None, True, float("nan"), float("inf"), [1]])
def test_it_rejects_a_value_that_is_not_a_finite_number(value):
    with pytest.raises(LabValueError) as err:
        to_canonical("prolactin", value, "ng/mL")
    assert err.value.field == "value"


def test_it_accepts_zero_and_numeric_strings():
    assert to_canonical("bilirubin", 0, "mg/dL") == 0.0
    assert to_canonical("prolactin", " 12.5 ", "ng/mL") == 12.5


def test_it_rejects_an_unknown_lab_listing_the_codes():
    with pytest.raises(LabValueError) as err:
        get_lab("cortisol")
    assert err.value.field == "lab"
    assert "prolactin" in str(err.value)


def test_it_refuses_a_unit_conversion_for_a_qualitative_screen():
    with pytest.raises(LabValueError) as err:
        to_canonical("uds-opioids", 1, "ng/mL")
    assert err.value.field == "lab"
    assert "qualitative" in str(err.value)


# ------------------------------------------------------------------ reference ranges
def test_prolactin_ranges_are_mayos_adult_ranges_by_sex():
    assert reference_range("prolactin", "male") == (4.0, 15.2)
    assert reference_range("prolactin", "female") == (4.8, 23.3)
    assert get_lab("prolactin").reference_citations == ("mayo-clinic-laboratories-prl",)


def test_liver_ranges_give_the_upper_limits_the_safety_rules_need():
    assert reference_range("alt", "male")[1] == 55
    assert reference_range("alt", "female")[1] == 45
    assert reference_range("ast", "male")[1] == 48
    assert reference_range("ast", "female")[1] == 43
    assert reference_range("bilirubin", "female")[1] == 1.2


@pytest.mark.parametrize("code", ["lh", "fsh", "free-t4", "inr", "hcg", "macroprolactin"])
def test_a_lab_without_a_sourced_range_says_so_instead_of_inventing_one(code):
    assert reference_range(code, "female") is None
    assert reference_range(code, "male") is None
    assert "no reference range" in get_lab(code).note


def test_a_site_override_replaces_the_range_for_that_sex_only():
    overrides = {"male": (3.0, 12.0)}
    assert reference_range("prolactin", "male", overrides) == (3.0, 12.0)
    assert reference_range("prolactin", "female", overrides) == (4.8, 23.3)


def test_a_site_override_with_low_above_high_is_rejected():
    with pytest.raises(LabValueError):
        reference_range("prolactin", "male", {"male": (12.0, 3.0)})


def test_an_unknown_sex_is_rejected():
    with pytest.raises(LabValueError) as err:
        reference_range("prolactin", "other")
    assert err.value.field == "sex"


def test_flag_against_treats_the_limits_as_normal():
    assert labs.flag_against(15.2, (4.0, 15.2)) == "normal"
    assert labs.flag_against(15.21, (4.0, 15.2)) == "high"
    assert labs.flag_against(4.0, (4.0, 15.2)) == "normal"
    assert labs.flag_against(3.99, (4.0, 15.2)) == "low"
    assert labs.flag_against(10, None) is None
    assert labs.flag_against(59, (60.0, None)) == "low"


# ------------------------------------------------------------------ plausibility
PLAUSIBILITY = [
    ("prolactin", 1.0, 1000.0),
    ("testosterone", 5.0, 1000.0),
    ("tsh", 0.001, 100.0),
    ("alt", 5.0, 2000.0),
    ("ast", 5.0, 2000.0),
    ("creatinine", 0.1, 5.0),
    ("bilirubin", 0.0, 100.0),
    ("macroprolactin", 0.0, 100.0),
]


@pytest.mark.parametrize(("code", "low", "high"), PLAUSIBILITY)
def test_plausibility_limits_are_as_published(code, low, high):
    lab = get_lab(code)
    assert (lab.plausible_low, lab.plausible_high) == (low, high)


@pytest.mark.parametrize(("code", "low", "high"), PLAUSIBILITY)
def test_a_value_at_either_plausibility_limit_is_plausible(code, low, high):
    unit = get_lab(code).canonical_unit
    assert plausibility_problem(code, low, unit) is None
    assert plausibility_problem(code, high, unit) is None


@pytest.mark.parametrize(("code", "low", "high"), PLAUSIBILITY)
def test_a_value_just_above_the_upper_limit_is_asked_to_be_confirmed(code, low, high):
    unit = get_lab(code).canonical_unit
    message = plausibility_problem(code, high * 1.01, unit)
    assert "above the plausible limit" in message
    assert "check the value and unit, or confirm it" in message


@pytest.mark.parametrize(("code", "low", "high"), [p for p in PLAUSIBILITY if p[1] > 0])
def test_a_value_just_below_the_lower_limit_is_asked_to_be_confirmed(code, low, high):
    unit = get_lab(code).canonical_unit
    message = plausibility_problem(code, low * 0.99, unit)
    assert "below the plausible limit" in message


def test_the_plausibility_message_names_the_value_and_the_limit():
    assert plausibility_problem("prolactin", 9000, "ng/mL") == (
        "Prolactin 9000 ng/mL is above the plausible limit of 1000 ng/mL; "
        "check the value and unit, or confirm it"
    )


def test_plausibility_is_checked_after_unit_conversion():
    # 21200 mIU/L = 1000 ng/mL exactly: plausible; 21300 mIU/L is not.
    assert plausibility_problem("prolactin", 21200, "mIU/L") is None
    message = plausibility_problem("prolactin", 21300, "mIU/L")
    assert "(21200 m[IU]/L)" in message
    assert plausibility_problem("creatinine", 442, "umol/L") is None
    assert "above" in plausibility_problem("creatinine", 443, "umol/L")


def test_a_lab_without_limits_only_rejects_impossible_values():
    assert plausibility_problem("lh", 500, "m[IU]/mL") is None
    with pytest.raises(LabValueError):
        plausibility_problem("lh", -1, "m[IU]/mL")


# ------------------------------------------------------------------ LOINC and drug screens
@pytest.mark.parametrize(
    ("code", "loinc"),
    [
        ("prolactin", "2842-3"),
        ("testosterone", "2986-8"),
        ("lh", "10501-5"),
        ("fsh", "15067-2"),
        ("tsh", "3016-3"),
        ("alt", "1742-6"),
        ("ast", "1920-8"),
        ("bilirubin", "1975-2"),
        ("creatinine", "2160-0"),
        ("hcg", "21198-7"),
        ("uds-mitragynine", "75649-4"),
        ("uds-buprenorphine", "93494-3"),
        ("uds-fentanyl", "59673-4"),
        ("uds-eddp", "93495-0"),
    ],
)
def test_loinc_codes_match_the_reference(code, loinc):
    assert get_lab(code).loinc == loinc


def test_the_cows_pain_code_is_not_used_for_any_lab():
    assert all(lab.loinc != "72514-3" for lab in all_labs())


def test_liver_panel_ranges_are_mayos_by_sex_with_their_sources():
    # care.md section 1 (Mayo Clinic Laboratories)
    assert reference_range("alp", "female") == (35.0, 104.0)
    assert reference_range("alp", "male") == (40.0, 129.0)
    assert reference_range("ggt", "female") == (5.0, 36.0)
    assert reference_range("ggt", "male") == (8.0, 61.0)
    assert get_lab("alp").reference_citations == ("mayo-clinic-laboratories-alp",)
    assert (get_lab("alp").loinc, get_lab("alp").loinc_status) == ("6768-6", "confirmed")
    # INR and QTc: codes from public code repositories, no invented range
    assert (get_lab("inr").loinc, get_lab("qtc").loinc) == ("6301-6", "8636-3")
    assert reference_range("inr", "male") is None and reference_range("qtc", "female") is None


def test_loinc_follows_the_unit_of_the_result():
    assert labs.loinc_for("prolactin", "mIU/L") == "15081-3"
    assert labs.loinc_for("prolactin", "ng/mL") == "2842-3"
    assert labs.loinc_for("bilirubin", "µmol/L") == "14631-6"
    assert labs.loinc_for("bilirubin", "mg/dL") == "1975-2"
    assert labs.loinc_for("alt", "ukat/L") == "1742-6"  # the same property as U/L


def test_a_loinc_code_not_in_the_references_is_marked_unconfirmed():
    assert get_lab("uds-alcohol").loinc is None
    # methadone's own urine codes are not in care.md (only EDDP's); fentanyl's now are
    assert get_lab("uds-methadone").loinc is None
    assert "loinc" in get_lab("uds-methadone").unconfirmed


@pytest.mark.parametrize("code", UDS_CODES)
def test_drug_screens_are_qualitative_with_screen_and_confirmation(code):
    lab = get_lab(code)
    assert lab.kind == "qualitative"
    assert lab.results == ("negative", "positive", "indeterminate")
    assert lab.methods == ("screen", "confirmation")
    assert lab.canonical_unit is None


def test_the_kratom_assay_has_its_own_screen_and_confirmation_codes_and_cutoffs():
    lab = get_lab("uds-mitragynine")
    assert lab.method_loinc == {"screen": "75649-4", "confirmation": "72732-1"}
    assert lab.cutoffs["screen"].startswith("5.0 ng/mL")
    assert lab.cutoffs["confirmation"].startswith("1.0 ng/mL")
    assert "kratom-not-in-standard-uds" in lab.reference_citations


def test_drug_screen_results_are_normalised():
    assert normalise_result("uds-opioids", "Not detected") == "negative"
    assert normalise_result("uds-opioids", "screen positive", "screen") == "positive"
    with pytest.raises(LabValueError) as err:
        normalise_result("uds-opioids", "maybe")
    assert err.value.field == "result"
    with pytest.raises(LabValueError) as err:
        normalise_result("uds-opioids", "negative", "guess")
    assert err.value.field == "method"


# ------------------------------------------------------------------ the same physical value

from decimal import Decimal  # noqa: E402
from fractions import Fraction  # noqa: E402

from hypothesis import example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from speciosa.knowledge import labs as klabs  # noqa: E402

_LIMITS = [(lab.code, side) for lab in klabs.all_labs() if lab.kind == "quantity"
           for side in ("plausible_low", "plausible_high") if getattr(lab, side) is not None]


def _in_unit(code: str, canonical: Fraction, unit: str) -> Decimal | None:
    """The exact decimal of ``canonical`` in ``unit``, or None when it does not end."""
    x = canonical * klabs.conversion_factor(code, unit)
    d = Decimal(x.numerator) / Decimal(x.denominator)
    return d if Fraction(d) == x else None


@settings(max_examples=300, deadline=None)
@example(limit=("creatinine", "plausible_low"), steps=0, digits=0, unit_index=1, as_text=False)
@example(limit=("testosterone", "plausible_high"), steps=0, digits=0, unit_index=2,
         as_text=False)
@given(limit=st.sampled_from(_LIMITS), steps=st.integers(-3, 3), digits=st.integers(0, 4),
       unit_index=st.integers(0, 10), as_text=st.booleans())
def test_a_value_at_a_plausibility_limit_in_any_unit_behaves_as_the_same_physical_value(
        limit, steps, digits, unit_index, as_text):
    # the knowledge.labs._number bug: 8.84 umol/L of creatinine (exactly its 0.1 mg/dL limit)
    # and 34.7 nmol/L of testosterone were read through binary floats and called implausible
    code, side = limit
    lab = klabs.get_lab(code)
    canonical = Fraction(Decimal(repr(getattr(lab, side)))) + steps * Fraction(1, 10 ** digits)
    if canonical < 0:
        return
    units = sorted(lab.units)
    unit = units[unit_index % len(units)]
    entered = _in_unit(code, canonical, unit)
    if entered is None:
        return  # no finite decimal writes this value in that unit
    value = str(entered) if as_text else float(entered)
    written = Decimal(canonical.numerator) / Decimal(canonical.denominator)  # ends: 10**-digits
    in_canonical = klabs.plausibility_problem(code, str(written), lab.canonical_unit)
    problem = klabs.plausibility_problem(code, value, unit)
    assert (problem is None) == (in_canonical is None), (code, unit, value, problem)
    limit_value = Fraction(Decimal(repr(getattr(lab, side))))
    beyond = canonical < limit_value if side == "plausible_low" else canonical > limit_value
    assert (problem is not None) == beyond, (code, unit, value, problem)


def test_the_two_values_found_at_their_limits_are_plausible_in_the_other_unit():
    assert klabs.plausibility_problem("creatinine", 8.84, "umol/L") is None
    assert klabs.plausibility_problem("testosterone", 34.7, "nmol/L") is None
    assert klabs.plausibility_problem("creatinine", 8.8399, "umol/L") is not None
    # 322.24 mIU/L is exactly the male upper limit of 15.2 ng/mL: normal, not high
    assert klabs.to_canonical("prolactin", 322.24, "mIU/L") == 15.2


@pytest.mark.parametrize("text", ["1,5", " 2,25 ", "1.500,0"])
def test_a_decimal_comma_is_refused_with_a_message_that_says_use_a_point(text):
    with pytest.raises(klabs.LabValueError, match="use a point for decimals: write 1.5, not 1,5"):
        klabs.to_canonical("alt", text, "U/L")
