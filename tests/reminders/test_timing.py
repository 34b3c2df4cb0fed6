"""When a reminder goes out (speciosa.reminders.timing): the chosen time in the patient's
zone across daylight-saving changes, quiet hours across midnight, and a diary reminder that
always goes out before the missed-diary alert can fire."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import pytest

from speciosa.reminders import timing
from speciosa.schedules.due import local_midnight

NY = zoneinfo.ZoneInfo("America/New_York")
LON = zoneinfo.ZoneInfo("Europe/London")
AKL = zoneinfo.ZoneInfo("Pacific/Auckland")
LA = zoneinfo.ZoneInfo("America/Los_Angeles")
UTC = dt.UTC


def t(s: str) -> dt.time:
    return dt.time.fromisoformat(s)


def test_a_time_skipped_by_the_spring_change_is_the_moment_the_clocks_jump():
    moment = timing.wall(dt.date(2026, 3, 8), t("02:30"), NY)
    assert moment.astimezone(UTC) == dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT
    assert moment.astimezone(NY).strftime("%H:%M %Z") == "03:00 EDT"


def test_a_time_repeated_by_the_autumn_change_is_its_first_occurrence():
    moment = timing.wall(dt.date(2026, 11, 1), t("01:30"), NY)
    assert moment.astimezone(UTC) == dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # EDT, not EST


def test_the_chosen_time_keeps_its_wall_clock_across_a_dst_change():
    prefs = timing.Prefs(t("18:00"), LON)
    before = timing.send_at(dt.date(2026, 3, 28), local_midnight(dt.date(2026, 3, 28), LON), prefs)
    after = timing.send_at(dt.date(2026, 3, 29), local_midnight(dt.date(2026, 3, 29), LON), prefs)
    assert before.astimezone(UTC).hour == 18  # GMT
    assert after.astimezone(UTC).hour == 17  # BST: 18:00 on the wall is 17:00 UTC
    assert (after - before) == dt.timedelta(hours=23)


def test_quiet_hours_across_midnight_hold_the_evening_and_the_morning():
    prefs = timing.Prefs(t("12:00"), NY, t("22:00"), t("07:00"))
    day = dt.date(2026, 6, 10)
    assert timing.in_quiet(prefs, timing.wall(day, t("23:15"), NY))
    assert timing.in_quiet(prefs, timing.wall(day, t("06:59"), NY))
    assert not timing.in_quiet(prefs, timing.wall(day, t("07:00"), NY))
    assert not timing.in_quiet(prefs, timing.wall(day, t("21:59"), NY))
    assert timing.quiet_end_after(prefs, timing.wall(day, t("23:15"), NY)) == timing.wall(
        day + dt.timedelta(days=1), t("07:00"), NY)


def test_quiet_hours_on_the_night_the_clocks_go_back_end_at_the_wall_time():
    prefs = timing.Prefs(t("12:00"), NY, t("22:00"), t("07:00"))
    night = timing.wall(dt.date(2026, 10, 31), t("23:30"), NY)
    end = timing.quiet_end_after(prefs, night)
    assert end.astimezone(NY).strftime("%Y-%m-%d %H:%M %Z") == "2026-11-01 07:00 EST"
    assert end - night == dt.timedelta(hours=8, minutes=30)  # 7.5 h on the wall + the extra hour


def test_a_reminder_whose_day_opens_after_the_chosen_time_waits_for_the_day():
    # the site is in New York, the patient in Auckland: 06:00 in Auckland on the due day is
    # still the day before in New York, when the item is not open yet
    prefs = timing.Prefs(t("06:00"), AKL)
    due_at = local_midnight(dt.date(2026, 6, 10), NY)
    assert timing.send_at(dt.date(2026, 6, 10), due_at, prefs) == due_at


@pytest.mark.parametrize("site_tz,patient_tz", [(NY, NY), (NY, AKL), (NY, LA), (LON, UTC), (AKL, LA)])
@pytest.mark.parametrize("gap", [2, 3, 7])
def test_a_diary_reminder_is_sent_before_the_missed_diary_alert_can_fire(site_tz, patient_tz, gap):
    """For every chosen time (each half hour), with and without quiet hours, around both
    daylight-saving changes: the first run of the reminder task (every MAX_PERIOD) at or after
    the reminder's time that is outside quiet hours comes before the alert's first moment."""
    quiets = [(None, None), (t("22:00"), t("07:00")), (t("21:00"), t("09:00")), (t("01:00"), t("08:00"))]
    lasts = [dt.date(2026, 3, 6), dt.date(2026, 3, 27), dt.date(2026, 10, 30), dt.date(2026, 6, 1)]
    checked = 0
    for last, (qs, qe), half_hours in itertools.product(lasts, quiets, range(48)):
        chosen = dt.time(half_hours // 2, 30 * (half_hours % 2))
        prefs = timing.Prefs(chosen, patient_tz, qs, qe)
        if timing.in_quiet(prefs, timing.wall(dt.date(2026, 1, 15), chosen, patient_tz)):
            continue  # the preferences page refuses a time inside quiet hours
        alert_at = timing.diary_alert_at(last, gap, site_tz)
        due_on = last + dt.timedelta(days=1)  # the first diary day missed
        due_at = local_midnight(due_on, site_tz)
        when = timing.diary_send_at(due_on, due_at, prefs, alert_at)
        assert when >= due_at
        # the task runs every MAX_PERIOD from an arbitrary phase: find its first sending run
        run = when + timing.MAX_PERIOD
        while timing.in_quiet(prefs, run):
            run += timing.MAX_PERIOD
        assert run < alert_at, (last, chosen, qs, when, alert_at)
        checked += 1
    assert checked > 300


def test_a_diary_reminder_is_not_moved_when_it_is_early_enough():
    prefs = timing.Prefs(t("18:00"), NY)
    last = dt.date(2026, 6, 1)
    due_on = last + dt.timedelta(days=1)
    when = timing.diary_send_at(due_on, local_midnight(due_on, NY), prefs,
                                timing.diary_alert_at(last, 7, NY))
    assert when == timing.wall(due_on, t("18:00"), NY)


def test_with_a_two_day_gap_a_late_evening_reminder_is_brought_forward_before_quiet_hours():
    # the alert fires at midnight starting the second missed day; 23:30 is too late for a run
    # (LEAD), and quiet hours from 23:45 would hold it: it goes out at 22:45
    prefs = timing.Prefs(t("23:30"), NY, t("23:45"), t("07:00"))
    last = dt.date(2026, 6, 1)
    due_on = last + dt.timedelta(days=1)
    alert_at = timing.diary_alert_at(last, 2, NY)
    when = timing.diary_send_at(due_on, local_midnight(due_on, NY), prefs, alert_at)
    assert when == timing.wall(due_on, t("22:45"), NY)
