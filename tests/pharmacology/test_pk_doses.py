"""Dose conversion: every unit, missing label information and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from speciosa.pharmacology.doses import (
    DOSE_PARAMETERS,
    Dose,
    DoseConversionError,
    convert_all,
    daily_mitragynine_mg,
    to_mitragynine,
)

T = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_leaf_grams_with_a_label_use_the_label_exactly():
    d = to_mitragynine(Dose(T, 2.0, "g", mitragynine_percent=1.95))
    assert d.mg == pytest.approx(39.0)
    assert d.mg_low == d.mg_high == d.mg
    assert not d.assumed_potency


def test_leaf_grams_without_a_label_assume_1_5_percent_with_its_range():
    d = to_mitragynine(Dose(T, 5.0, "g"))
    assert (d.mg, d.mg_low, d.mg_high) == pytest.approx((75.0, 50.0, 100.0))
    assert d.assumed_potency
    assert d.basis == "5 g leaf × 1.5 % (default, range 1.0–2.0 %)"


def test_capsules_need_grams_per_capsule():
    d = to_mitragynine(Dose(T, 4, "capsule", grams_per_capsule=0.5, mitragynine_percent=1.33))
    assert d.mg == pytest.approx(4 * 0.5 * 13.3)
    d2 = to_mitragynine(Dose(T, 4, "capsule", grams_per_capsule=0.5))
    assert (d2.mg, d2.mg_low, d2.mg_high) == pytest.approx((30.0, 20.0, 40.0))
    with pytest.raises(DoseConversionError, match="capsule dose needs grams per capsule"):
        to_mitragynine(Dose(T, 4, "capsule"))


def test_a_glass_of_tea_is_79_mg_with_the_leaf_potency_range():
    d = to_mitragynine(Dose(T, 3, "glass"))
    assert d.mg == pytest.approx(237.0)
    assert d.mg_low == pytest.approx(237.0 * 2 / 3)
    assert d.mg_high == pytest.approx(237.0 * 4 / 3)
    assert d.assumed_potency and "Singh 2014" in d.basis


def test_extract_needs_its_labelled_percent():
    d = to_mitragynine(Dose(T, 200, "mg_extract", mitragynine_percent=20))
    assert d.mg == pytest.approx(40.0) and not d.assumed_potency
    with pytest.raises(DoseConversionError, match="extract dose needs the labelled"):
        to_mitragynine(Dose(T, 200, "mg_extract"))


def test_mg_mitragynine_is_taken_as_entered():
    d = to_mitragynine(Dose(T, 12.5, "mg_mitragynine"))
    assert (d.mg, d.mg_low, d.mg_high, d.assumed_potency) == (12.5, 12.5, 12.5, False)


@pytest.mark.parametrize(
    ("dose", "message"),
    [
        (Dose(T, -1, "g"), "negative"),
        (Dose(T, 1, "spoon"), "unknown unit 'spoon'"),
        (Dose(datetime(2025, 3, 1, 8), 1, "g"), "timezone"),
        (Dose(T, float("nan"), "g"), "finite"),
        (Dose(T, 1, "g", mitragynine_percent=0), "greater than 0"),
        (Dose(T, 1, "g", mitragynine_percent=150), "at most 100"),
        (Dose(T, 1, "capsule", grams_per_capsule=-0.5), "grams per capsule"),
    ],
)
def test_bad_doses_say_what_to_fix(dose, message):
    with pytest.raises(DoseConversionError, match=message):
        to_mitragynine(dose)


def test_convert_all_reports_unconvertible_doses_by_index():
    ok, bad = convert_all([Dose(T, 1, "g"), Dose(T, 2, "capsule"), Dose(T, -1, "g")])
    assert len(ok) == 1
    assert [i for i, _ in bad] == [1, 2]
    assert "grams per capsule" in bad[0][1]


def test_daily_totals_follow_the_calendar_in_the_given_timezone():
    tz = timezone(timedelta(hours=-5))
    doses = [Dose(datetime(2025, 3, 2, 3, 0, tzinfo=UTC), 10, "mg_mitragynine"),  # Mar 1 local
             Dose(datetime(2025, 3, 2, 15, 0, tzinfo=UTC), 20, "mg_mitragynine"),
             Dose(datetime(2025, 3, 2, 16, 0, tzinfo=UTC), 2, "capsule")]  # unconvertible
    assert daily_mitragynine_mg(doses, tz) == {date(2025, 3, 1): 10.0, date(2025, 3, 2): 20.0}


def test_conversion_defaults_carry_sources():
    for p in DOSE_PARAMETERS:
        assert p.source_ids and p.unit
