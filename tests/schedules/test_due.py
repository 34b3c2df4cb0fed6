"""The due-items engine (speciosa.schedules.due) with real dates: calendar-day arithmetic in
the patient's zone across daylight-saving changes, zone edges around midnight, overdue and
missed periods, end dates, the completion rate over a window, and plan validation."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from speciosa.schedules import due
from speciosa.schedules.due import Completion, ScheduleItem

NY = zoneinfo.ZoneInfo("America/New_York")
AKL = zoneinfo.ZoneInfo("Pacific/Auckland")
LA = zoneinfo.ZoneInfo("America/Los_Angeles")
UTC = dt.UTC


def at(y, m, d, h=12, mi=0, tz=UTC):
    return dt.datetime(y, m, d, h, mi, tzinfo=tz)


def test_it_counts_calendar_days_across_the_spring_daylight_saving_change():
    # New York moves its clocks forward on 2026-03-08: the 14 days from 1 March are 13 days
    # and 23 hours, and the PHQ-9 is still due at local midnight of 15 March
    item = ScheduleItem("phq9", 14, dt.date(2026, 3, 1))
    [row] = due.due_items([item], [], at(2026, 3, 15, 0, 30, NY), NY)
    assert row.due_on == dt.date(2026, 3, 15)
    assert row.status == "due"
    assert row.due_at == dt.datetime(2026, 3, 15, tzinfo=NY)
    assert row.due_at.astimezone(UTC) == dt.datetime(2026, 3, 15, 4, tzinfo=UTC)  # EDT
    first = due.local_midnight(dt.date(2026, 3, 1), NY).astimezone(UTC)
    assert first == dt.datetime(2026, 3, 1, 5, tzinfo=UTC)  # EST
    assert row.due_at - first == dt.timedelta(days=13, hours=23)


def test_it_counts_calendar_days_across_the_autumn_change():
    item = ScheduleItem("diary", 1, dt.date(2026, 10, 31))
    # 1 November 2026 in New York has 25 hours; 23:30 local is still the 1st
    [row] = due.due_items([item], [], at(2026, 11, 2, 4, 30, UTC), NY)
    assert row.due_on == dt.date(2026, 11, 1)
    # (aware datetimes of one zone subtract as wall clocks: compare the instants)
    assert row.closes_at.astimezone(UTC) - row.due_at.astimezone(UTC) == dt.timedelta(hours=25)


def test_a_zone_that_skips_midnight_starts_the_day_when_the_clocks_jump():
    # Havana moved its clocks from 00:00 to 01:00 on 2025-03-09: that day begins at 01:00
    havana = zoneinfo.ZoneInfo("America/Havana")
    start = due.local_midnight(dt.date(2025, 3, 9), havana)
    assert (start.hour, start.minute) == (1, 0)
    assert start.astimezone(UTC) == dt.datetime(2025, 3, 9, 5, tzinfo=UTC)


def test_the_same_moment_is_a_different_day_in_auckland_and_los_angeles():
    item = ScheduleItem("phq9", 14, dt.date(2026, 6, 2))
    moment = at(2026, 6, 1, 23, 30, UTC)  # 11:30 on 2 June in Auckland, 16:30 on 1 June in LA
    [row] = due.due_items([item], [], moment, AKL)
    assert (row.due_on, row.status) == (dt.date(2026, 6, 2), "due")
    assert due.due_items([item], [], moment, LA) == []  # not started yet there


def test_a_completion_late_in_the_local_evening_counts_for_that_local_day():
    item = ScheduleItem("phq9", 14, dt.date(2026, 6, 1))
    # 23:50 on 14 June in Los Angeles is 06:50 on 15 June in UTC: still the first period
    done = [Completion("phq9", at(2026, 6, 15, 6, 50, UTC))]
    [row] = due.due_items([item], done, at(2026, 6, 15, 6, 55, UTC), LA)  # 23:55 on the 14th
    assert (row.due_on, row.status) == (dt.date(2026, 6, 1), "done")
    [row] = due.due_items([item], done, at(2026, 6, 15, 8, 0, UTC), LA)  # 01:00 on the 15th
    assert (row.due_on, row.status) == (dt.date(2026, 6, 15), "due")


def test_an_item_is_overdue_after_its_due_day_and_missed_when_its_period_closes():
    item = ScheduleItem("gad7", 14, dt.date(2026, 1, 1))
    [row] = due.due_items([item], [], at(2026, 1, 1), UTC)
    assert row.status == "due"
    [row] = due.due_items([item], [], at(2026, 1, 2), UTC)
    assert row.status == "overdue"
    assert row.closes_at == dt.datetime(2026, 1, 15, tzinfo=UTC)
    rows = due.history([item], [], at(2026, 1, 16), UTC, since=dt.date(2026, 1, 1))
    assert [(r.due_on, r.status) for r in rows] == [(dt.date(2026, 1, 1), "missed"),
                                                     (dt.date(2026, 1, 15), "overdue")]


def test_a_completion_after_the_moment_asked_about_does_not_count_yet():
    item = ScheduleItem("phq9", 14, dt.date(2026, 1, 1))
    done = [Completion("phq9", at(2026, 1, 3, 15))]
    [row] = due.due_items([item], done, at(2026, 1, 3, 9), UTC)
    assert row.status == "overdue"
    [row] = due.due_items([item], done, at(2026, 1, 3, 16), UTC)
    assert row.status == "done" and row.done_at == at(2026, 1, 3, 15)


def test_a_completion_before_the_start_or_of_another_instrument_does_not_count():
    item = ScheduleItem("phq9", 14, dt.date(2026, 1, 10))
    done = [Completion("phq9", at(2026, 1, 9)), Completion("gad7", at(2026, 1, 10))]
    [row] = due.due_items([item], done, at(2026, 1, 10, 18), UTC)
    assert row.status == "due"


def test_nothing_is_due_after_the_end_date_and_the_last_period_closes_the_day_after_it():
    item = ScheduleItem("sows", 1, dt.date(2026, 2, 1), end=dt.date(2026, 2, 10))
    [row] = due.due_items([item], [], at(2026, 2, 10, 20), UTC)
    assert row.due_on == dt.date(2026, 2, 10)
    assert due.due_items([item], [], at(2026, 2, 11, 0, 1), UTC) == []
    fortnightly = ScheduleItem("phq9", 14, dt.date(2026, 3, 1), end=dt.date(2026, 3, 20))
    assert due.occurrences(fortnightly, dt.date(2026, 12, 31)) == [
        (dt.date(2026, 3, 1), dt.date(2026, 3, 15)), (dt.date(2026, 3, 15), dt.date(2026, 3, 21))]
    [row] = due.due_items([fortnightly], [], at(2026, 3, 20), UTC)
    assert row.status == "overdue" and row.closes_at == at(2026, 3, 21, 0)
    assert due.due_items([fortnightly], [], at(2026, 3, 21), UTC) == []


def test_a_diary_day_counts_as_the_day_it_is_not_as_a_moment():
    item = ScheduleItem("diary", 1, dt.date(2026, 5, 1))
    done = [Completion("diary", dt.date(2026, 5, 2))]
    [row] = due.due_items([item], done, at(2026, 5, 2, 23, 0, UTC), AKL)  # 3 May in Auckland
    assert (row.due_on, row.status) == (dt.date(2026, 5, 3), "due")
    [row] = due.due_items([item], done, at(2026, 5, 2, 11, 0, UTC), AKL)  # 23:00 on 2 May there
    assert (row.due_on, row.status) == (dt.date(2026, 5, 2), "done")


def test_due_items_are_overdue_first_then_due_then_done():
    plan = [ScheduleItem("diary", 1, dt.date(2026, 1, 1)), ScheduleItem("phq9", 14, dt.date(2025, 12, 30)),
            ScheduleItem("gad7", 14, dt.date(2026, 1, 1))]
    done = [Completion("gad7", at(2026, 1, 1, 9))]
    rows = due.due_items(plan, done, at(2026, 1, 3), UTC)
    assert [(r.item.instrument, r.status) for r in rows] == [
        ("phq9", "overdue"), ("diary", "due"), ("gad7", "done")]
    assert rows[0].key == ("phq9", dt.date(2025, 12, 30))
    assert [r.item.instrument for r in due.due_items(plan, done, at(2026, 1, 3), UTC,
                                                     include=("due", "overdue"))] == ["phq9", "diary"]


def test_the_completion_rate_counts_done_missed_and_overdue_but_not_due_today():
    plan = [ScheduleItem("diary", 1, dt.date(2026, 1, 1)), ScheduleItem("phq9", 14, dt.date(2026, 1, 1))]
    done = [Completion("diary", dt.date(2026, 1, d)) for d in (1, 2, 3, 5)] + [
        Completion("phq9", at(2026, 1, 2))]
    rate = due.completion_rate(plan, done, at(2026, 1, 6, 9), UTC, window_days=28)
    # diary: 1,2,3,5 done, 4 missed, 6 due today (not counted) -> 4 of 5; PHQ-9: 1 of 1
    assert rate.by_item == {"diary": (4, 5), "phq9": (1, 1)}
    assert (rate.done, rate.expected, rate.percent) == (5, 6, 83)
    assert rate.since == dt.date(2025, 12, 10) and rate.until == dt.date(2026, 1, 6)


def test_the_rate_window_leaves_out_what_was_due_before_it():
    plan = [ScheduleItem("diary", 1, dt.date(2026, 1, 1))]
    done = [Completion("diary", dt.date(2026, 1, d)) for d in range(1, 11)]
    rate = due.completion_rate(plan, done, at(2026, 1, 20), UTC, window_days=7)
    # 14..19 missed, 20 due today
    assert (rate.done, rate.expected, rate.percent) == (0, 6, 0)


def test_no_rate_before_anything_was_expected():
    plan = [ScheduleItem("phq9", 14, dt.date(2026, 1, 1))]
    rate = due.completion_rate(plan, [], at(2026, 1, 1), UTC)
    assert (rate.expected, rate.percent) == (0, None)


def test_it_refuses_a_moment_without_a_time_zone():
    with pytest.raises(ValueError, match="time-zone-aware"):
        due.due_items([], [], dt.datetime(2026, 1, 1), UTC)


@pytest.mark.parametrize("row, field, words", [
    ({"instrument": "cows", "every_days": 1, "start": "2026-01-01"}, "instrument", "Choose what"),
    ({"instrument": "phq9", "every_days": 0, "start": "2026-01-01"}, "every_days", "1 to 366"),
    ({"instrument": "phq9", "every_days": 1.5, "start": "2026-01-01"}, "every_days", "whole number"),
    ({"instrument": "phq9", "every_days": True, "start": "2026-01-01"}, "every_days", "whole number"),
    ({"instrument": "phq9", "every_days": 367, "start": "2026-01-01"}, "every_days", "1 to 366"),
    ({"instrument": "phq9", "every_days": 14, "start": "01/02/2026"}, "start", "YYYY-MM-DD"),
    ({"instrument": "phq9", "every_days": 14, "start": "2026-01-10", "end": "2026-01-09"}, "end",
     "before the start"),
    ({"instrument": "phq9", "every_days": 14, "start": "2019-01-01"}, "start", "too far back"),
])
def test_a_bad_plan_line_is_refused_naming_its_field(row, field, words):
    known = {"diary": "Daily diary", "phq9": "PHQ-9"}
    items, errors = due.plan_errors([row], known, earliest=dt.date(2025, 1, 1))
    assert items == []
    assert list(errors) == [f"items-0-{field}"] and words in errors[f"items-0-{field}"]


def test_a_plan_holds_each_instrument_once_and_at_least_one_line():
    known = {"phq9": "PHQ-9"}
    line = {"instrument": "phq9", "every_days": "14", "start": "2026-01-01"}
    items, errors = due.plan_errors([line, line], known)
    assert [i.every_days for i in items] == [14]
    assert "already line 1" in errors["items-1-instrument"]
    assert due.plan_errors([], known)[1] == {"items": "Add at least one thing to complete."}


def test_the_fast_rate_agrees_with_the_statuses_of_every_occurrence():
    import random

    rng = random.Random(16)
    for _ in range(200):
        start = dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(60))
        item = ScheduleItem("x", rng.choice([1, 2, 7, 14, 30]), start,
                            end=start + dt.timedelta(days=rng.randrange(90)) if rng.random() < .3 else None)
        done = [Completion("x", at(2026, 1, 1, rng.randrange(24), tz=NY) + dt.timedelta(days=rng.randrange(120)))
                for _ in range(rng.randrange(30))]
        moment = at(2026, 3, 1, rng.randrange(24), tz=NY) + dt.timedelta(days=rng.randrange(40))
        window = rng.choice([7, 28, 60])
        rate = due.completion_rate([item], done, moment, NY, window_days=window)
        rows = due.history([item], done, moment, NY, since=rate.since)
        counted = [r for r in rows if r.status != "due"]
        assert (rate.done, rate.expected) == (sum(r.status == "done" for r in counted), len(counted))
