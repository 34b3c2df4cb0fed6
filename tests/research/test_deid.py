"""De-identification primitives: keyed pseudonyms, withheld days, the time axis, ages, the key."""

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


def test_withheld_days_lie_within_the_setting_are_keyed_and_spread():
    d = deid.Deidentifier(KEY)
    days = [d.withheld_days("Site A", f"T-{i:05d}", 28) for i in range(2000)]
    assert min(days) == 0 and max(days) == 28
    assert len(set(days)) == 29  # every value occurs
    other = deid.Deidentifier(b"another-research-key-98765")
    assert days[:50] != [other.withheld_days("Site A", f"T-{i:05d}", 28) for i in range(50)]
    assert d.withheld_days("Site A", "T-00001", 0) == 0


ENTRY = dt.date(2026, 3, 10)
TIMELINE = deid.Timeline(entry=ENTRY, export_day=dt.date(2026, 11, 20), withheld_days=6)


@pytest.mark.parametrize("day,expected", [
    (dt.date(2026, 3, 10), deid.Placement.EXPORTED),     # the day of entry: day 0
    (dt.date(2025, 3, 10), deid.Placement.EXPORTED),     # 365 days before entry
    (dt.date(2025, 3, 9), deid.Placement.IMPLAUSIBLE),   # 366 days before
    (dt.date(2026, 11, 13), deid.Placement.EXPORTED),    # export day - 1 - 6 withheld
    (dt.date(2026, 11, 14), deid.Placement.WITHHELD),
    (dt.date(2026, 11, 20), deid.Placement.WITHHELD),    # the export day itself
    (dt.date(2026, 11, 21), deid.Placement.IMPLAUSIBLE),  # the future
    (dt.date(1, 1, 1), deid.Placement.IMPLAUSIBLE),
    (dt.date(9999, 12, 31), deid.Placement.IMPLAUSIBLE),
    (None, deid.Placement.IMPLAUSIBLE),
])
def test_an_event_day_is_exported_withheld_or_implausible(day, expected):
    assert TIMELINE.place(day) is expected


def test_days_in_care_count_from_the_day_of_entry():
    assert TIMELINE.day_in_care(ENTRY) == 0
    assert TIMELINE.day_in_care(dt.date(2026, 3, 17)) == 7
    assert TIMELINE.day_in_care(dt.date(2026, 3, 1)) == -9
    assert TIMELINE.last_exported_day == dt.date(2026, 11, 13)


def test_a_moment_at_the_edge_of_the_calendar_has_no_local_time_instead_of_overflowing():
    new_york = ZoneInfo("America/New_York")
    assert deid.local_time(dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.UTC), new_york) is None
    assert deid.local_time(dt.datetime(9999, 12, 31, 23, 30, tzinfo=dt.UTC),
                           ZoneInfo("Asia/Tokyo")) is None
    local = deid.local_time(dt.datetime(2026, 3, 1, 13, 30, tzinfo=dt.UTC), new_york)
    assert (local.date(), local.hour) == (dt.date(2026, 3, 1), 8)


@pytest.mark.parametrize("hour,period", [(0, "night"), (5, "night"), (6, "morning"),
                                         (11, "morning"), (12, "afternoon"), (18, "evening"),
                                         (23, "evening")])
def test_clock_times_become_one_of_four_periods(hour, period):
    assert deid.time_of_day(dt.datetime(2026, 3, 1, hour, 59)) == period


@pytest.mark.parametrize("years,width,band", [
    (34, 5, "30-34"), (34, 10, "30-39"), (34, 20, "20-39"), (34, None, "*"),
    (89, 5, "85-89"), (89, 20, "80-89"), (90, 5, "90+"), (104, 10, "90+"), (90, None, "*"),
    (0, 10, "0-9"),
])
def test_ages_are_banded_and_top_coded_at_90(years, width, band):
    assert deid.age_band(years, width) == band


@pytest.mark.parametrize("birth,on,expected", [
    (dt.date(1936, 6, 16), dt.date(2026, 6, 15), 89),
    (dt.date(1936, 6, 15), dt.date(2026, 6, 15), 90),
    (dt.date(2000, 2, 29), dt.date(2026, 2, 28), 25),
    (dt.date(2030, 1, 1), dt.date(2026, 1, 1), 0),
])
def test_age_is_whole_years_on_the_day(birth, on, expected):
    assert deid.age_years(birth, on) == expected


@pytest.mark.parametrize("birth,entry,ok", [
    (dt.date(1980, 1, 1), dt.date(2026, 1, 1), True),
    (dt.date(1980, 1, 1), dt.date(1, 1, 1), False),       # entry in year 1
    (dt.date(1980, 1, 1), dt.date(2027, 1, 1), False),    # entry after the export
    (dt.date(2026, 6, 1), dt.date(2026, 1, 1), False),    # born after entering care
    (dt.date(1, 1, 1), dt.date(2026, 1, 1), False),       # 2025 years old
])
def test_a_patient_with_an_impossible_entry_or_birth_date_is_implausible(birth, entry, ok):
    assert deid.plausible_patient(birth, entry, dt.date(2026, 11, 20)) is ok


@pytest.mark.parametrize("options,variable", [
    ({"k": 0}, "SPECIOSA_RESEARCH_K"),
    ({"max_suppressed": 1.5}, "SPECIOSA_RESEARCH_MAX_SUPPRESSED"),
    ({"withheld_days": -1}, "SPECIOSA_RESEARCH_WITHHELD_DAYS"),
])
def test_bad_settings_are_refused_naming_the_variable(options, variable):
    with pytest.raises(ValueError, match=variable):
        deid.Options(**options)


def test_a_missing_or_short_key_is_refused_with_the_variable_named():
    with pytest.raises(deid.ResearchKeyError, match="SPECIOSA_RESEARCH_KEY"):
        deid.load_key(environ={})
    with pytest.raises(deid.ResearchKeyError, match="at least 16"):
        deid.load_key("MY_KEY", environ={"MY_KEY": "short"})
    assert deid.load_key("MY_KEY", environ={"MY_KEY": "x" * 16}) == b"x" * 16


def test_the_notice_is_the_42_cfr_2_32_redisclosure_notice():
    assert "42 CFR part 2" in deid.PART2_NOTICE
    assert "prohibit you from making any further disclosure" in deid.PART2_NOTICE
    assert "not a HIPAA Safe Harbor data set" in deid.PART2_NOTICE
