"""De-identification primitives: keyed pseudonyms, date offsets, ages, the key itself."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from speciosa.research import deid

KEY = b"test-research-key-0123456789"


def test_the_same_key_gives_the_same_pseudonym_and_another_key_a_different_one():
    a = deid.Deidentifier(KEY)
    assert a.patient_pseudonym("Site A", "T-00001") == deid.Deidentifier(KEY).patient_pseudonym(
        "Site A", "T-00001")
    other = deid.Deidentifier(b"another-research-key-98765")
    assert a.patient_pseudonym("Site A", "T-00001") != other.patient_pseudonym("Site A", "T-00001")
    assert a.patient_pseudonym("Site A", "T-00001") != a.patient_pseudonym("Site B", "T-00001")


def test_a_pseudonym_does_not_contain_the_record_number():
    p = deid.Deidentifier(KEY).patient_pseudonym("Site A", "RRC-100017")
    assert p.startswith("P-") and len(p) == 18
    assert "100017" not in p and "rrc" not in p.lower()


def test_date_offsets_lie_within_180_days_and_are_never_zero():
    d = deid.Deidentifier(KEY)
    offsets = [d.date_offset_days("Site A", f"T-{i:05d}") for i in range(2000)]
    assert min(offsets) >= -180 and max(offsets) <= 180
    assert 0 not in offsets
    assert min(offsets) < -150 and max(offsets) > 150  # spread over the whole range


def test_a_shift_keeps_the_local_clock_time_across_a_daylight_saving_change():
    tz = ZoneInfo("America/New_York")
    moment = dt.datetime(2026, 3, 1, 8, 30, tzinfo=tz)  # before the change on 8 March
    shifted = deid.shift_local(moment, tz, 14)
    assert shifted == dt.datetime(2026, 3, 15, 8, 30)
    assert shifted.tzinfo is None


@pytest.mark.parametrize("birth,on,expected", [
    (dt.date(1936, 6, 16), dt.date(2026, 6, 15), "89"),
    (dt.date(1936, 6, 15), dt.date(2026, 6, 15), "90+"),
    (dt.date(1920, 1, 1), dt.date(2026, 6, 15), "90+"),
    (dt.date(2000, 2, 29), dt.date(2026, 2, 28), "25"),
])
def test_ages_over_89_are_grouped(birth, on, expected):
    assert deid.age_category(birth, on) == expected


def test_a_missing_or_short_key_is_refused_with_the_variable_named():
    with pytest.raises(deid.ResearchKeyError, match="SPECIOSA_RESEARCH_KEY"):
        deid.load_key(environ={})
    with pytest.raises(deid.ResearchKeyError, match="at least 16"):
        deid.load_key("MY_KEY", environ={"MY_KEY": "short"})
    assert deid.load_key("MY_KEY", environ={"MY_KEY": "x" * 16}) == b"x" * 16


def test_the_notice_is_the_42_cfr_2_32_redisclosure_notice():
    assert "42 CFR part 2" in deid.PART2_NOTICE
    assert "prohibit you from making any further disclosure" in deid.PART2_NOTICE
