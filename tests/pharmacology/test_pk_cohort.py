"""The cross-subject path: each subject as the per-patient path and the ODE give it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest

from speciosa.pharmacology import Dose, patient_exposure
from speciosa.pharmacology.cohort import cohort_exposure, offsets_from_counts
from speciosa.pharmacology.doses import convert_all
from speciosa.pharmacology.model import sample_population

T0 = datetime(2025, 3, 1, 6, 30, tzinfo=timezone(timedelta(hours=-5)))


def _subjects():
    """Ragged logs: own times, amounts, units, windows, UTC offsets and output steps."""
    rng = np.random.default_rng(3)
    out = []
    for i, (n_doses, days, tz_h) in enumerate([(1, 3, 0), (5, 4, 2), (60, 21, -5),
                                                (84, 28, 9.5), (12, 6, -8), (3, 2, 1)]):
        tz = timezone(timedelta(hours=tz_h))
        start = (T0 + timedelta(hours=7 * i)).astimezone(tz)
        times = np.sort(rng.uniform(0, days * 24, n_doses))
        units = rng.choice(["g", "glass", "mg_mitragynine"], n_doses)
        doses = [Dose(start + timedelta(hours=float(t)), float(rng.uniform(1, 8)), str(u))
                 for t, u in zip(times, units, strict=True)]
        if i == 4:  # window starts after some doses and ends before the last one
            start = start + timedelta(hours=30)
            end = start + timedelta(days=3)
        else:
            end = start + timedelta(days=days + 10, minutes=17)
        out.append((doses, start, end))
    return out


def _cohort(subjects, step_minutes):
    step_h = step_minutes / 60.0
    counts, times, mg, n_out, day_start = [], [], [], [], []
    for doses, start, end in subjects:
        ok, bad = convert_all(doses)
        assert not bad
        counts.append(len(ok))
        times += [(d.taken_at - start).total_seconds() / 3600.0 for d in ok]
        mg += [d.mg for d in ok]
        span_h = (end - start).total_seconds() / 3600.0
        n_out.append(int(np.floor(span_h / step_h + 1e-9)) + 1)
        midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
        day_start.append((start - midnight).total_seconds())
    return cohort_exposure(offsets_from_counts(counts), times, mg, n_out, step_h=step_h,
                           day_start_s=day_start)


def _close(a, b, scale=None):
    scale = np.max(np.abs(b)) if scale is None else scale
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * max(scale, 1e-300))


@pytest.mark.parametrize("step_minutes", [60, 20])
def test_it_gives_each_subject_what_the_per_patient_path_gives(step_minutes):
    subjects = _subjects()
    c = _cohort(subjects, step_minutes)
    assert c.n_subjects == len(subjects)
    for s, (doses, start, end) in enumerate(subjects):
        one = patient_exposure(doses, start, end, step_minutes=step_minutes, typical_only=True)
        got = c.subject(s)
        _close(got["mitragynine_ng_per_ml"], one.mitragynine_ng_per_ml)
        _close(got["hydroxymitragynine_ng_per_ml"], one.hydroxymitragynine_ng_per_ml)
        _close(got["times_h"], one.times_h)
        sm = one.summary
        _close(c.cmax_ng_per_ml[s], sm.cmax_ng_per_ml)
        assert start + timedelta(hours=float(c.tmax_h[s])) == sm.tmax
        _close(c.auc_ng_h_per_ml[s], sm.auc_ng_h_per_ml)
        assert c.time_to_steady_state_h[s] == sm.time_to_steady_state_h
        assert start + timedelta(hours=float(c.last_dose_h[s])) == sm.last_dose_at
        for mine, theirs in ((c.reference_ng_per_ml[s], sm.reference_ng_per_ml),
                             (c.hours_to_50_percent_after_last_dose[s],
                              sm.hours_to_50_percent_after_last_dose),
                             (c.hours_to_10_percent_after_last_dose[s],
                              sm.hours_to_10_percent_after_last_dose)):
            if theirs is None:
                assert np.isnan(mine)
            else:
                _close(mine, theirs)
        first_day = start.date()
        assert [first_day + timedelta(days=int(d)) for d in got["day"]] == [
            d.date for d in one.daily]
        _close(got["mean"], [d.mean_ng_per_ml for d in one.daily])
        _close(got["peak"], [d.peak_ng_per_ml for d in one.daily])
        _close(got["trough"], [d.trough_ng_per_ml for d in one.daily])


def test_the_single_dose_subject_has_no_washout_and_the_others_do():
    c = _cohort(_subjects(), 60)
    assert np.isnan(c.hours_to_50_percent_after_last_dose[0])
    assert np.isnan(c.reference_ng_per_ml[0])
    h50, h10 = c.hours_to_50_percent_after_last_dose, c.hours_to_10_percent_after_last_dose
    assert np.all(h10[1:] > h50[1:]) and np.all(h50[1:] > 0)


def test_it_matches_a_tight_ode_solution_with_per_subject_parameters(ode_reference):
    rng = np.random.default_rng(8)
    n = 5
    pop = sample_population(n, rng)
    counts = rng.integers(1, 30, n)
    times = np.concatenate([np.sort(rng.uniform(-12, 150, k)) for k in counts])
    mg = rng.uniform(2, 90, times.size)
    n_out = rng.integers(50, 200, n)
    c = cohort_exposure(offsets_from_counts(counts), times, mg, n_out, step_h=1.0, params=pop)
    off = offsets_from_counts(counts)
    for s in range(n):
        p = {k: float(v[s]) for k, v in pop.items()}
        t_out = np.arange(n_out[s], dtype=float)
        ref_mg, ref_oh = ode_reference(times[off[s]:off[s + 1]], mg[off[s]:off[s + 1]], t_out, p)
        got = c.subject(s)
        _close(got["mitragynine_ng_per_ml"], ref_mg)
        _close(got["hydroxymitragynine_ng_per_ml"], ref_oh)


def test_unsorted_doses_and_subject_order_do_not_change_a_subjects_result():
    rng = np.random.default_rng(2)
    t1, t2 = rng.uniform(0, 100, 9), rng.uniform(0, 100, 4)
    m1, m2 = rng.uniform(5, 50, 9), rng.uniform(5, 50, 4)
    ab = cohort_exposure([0, 9, 13], np.r_[t1, t2], np.r_[m1, m2], [120, 80])
    order = np.argsort(t2)
    b_alone = cohort_exposure([0, 4], t2[order], m2[order], 80)
    np.testing.assert_allclose(ab.subject(1)["mitragynine_ng_per_ml"],
                               b_alone.mitragynine_ng_per_ml, rtol=1e-13)
    assert ab.hours_to_50_percent_after_last_dose[1] == pytest.approx(
        b_alone.hours_to_50_percent_after_last_dose[0], rel=1e-12)


def test_a_subject_without_doses_has_no_exposure():
    c = cohort_exposure([0, 0, 2], [1.0, 5.0], [30.0, 30.0], [10, 10])
    assert np.all(c.subject(0)["mitragynine_ng_per_ml"] == 0)
    assert c.auc_ng_h_per_ml[0] == 0 and np.isnan(c.last_dose_h[0])
    assert c.subject(1)["mitragynine_ng_per_ml"].max() > 0


def test_days_follow_each_subjects_own_midnight():
    # two identical logs; the second subject's first output is at 23:00 local time
    c = cohort_exposure([0, 1, 2], [0.0, 0.0], [40.0, 40.0], [5, 5],
                        day_start_s=[0.0, 23 * 3600.0])
    assert list(c.subject(0)["day"]) == [0]
    assert list(c.subject(1)["day"]) == [0, 1]
    np.testing.assert_allclose(c.subject(1)["peak"][1], c.subject(0)["peak"][0])


@pytest.mark.parametrize("bad", [
    dict(dose_offsets=[0, 3], dose_times_h=[1.0, 2.0], dose_mg=[1.0, 1.0], n_out=5),
    dict(dose_offsets=[0, 2], dose_times_h=[1.0, 2.0], dose_mg=[1.0, -1.0], n_out=5),
    dict(dose_offsets=[0, 2], dose_times_h=[1.0, np.nan], dose_mg=[1.0, 1.0], n_out=5),
    dict(dose_offsets=[0, 2], dose_times_h=[1.0, 2.0], dose_mg=[1.0, 1.0], n_out=0),
    dict(dose_offsets=[0, 2, 1], dose_times_h=[1.0], dose_mg=[1.0], n_out=5),
])
def test_it_rejects_inconsistent_input(bad):
    with pytest.raises(ValueError):
        cohort_exposure(**bad)


def test_it_refuses_a_day_start_outside_the_day():
    with pytest.raises(ValueError, match="day_start_s"):
        cohort_exposure([0, 1], [0.0], [1.0], 3, day_start_s=[86400.0])


def test_daily_totals_of_many_subjects_equal_each_patients_daily_totals():
    from zoneinfo import ZoneInfo

    from speciosa.pharmacology.cohort import daily_mitragynine_totals
    from speciosa.pharmacology.doses import daily_mitragynine_mg

    rng = np.random.default_rng(4)
    zones = [ZoneInfo("America/New_York"), ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata")]
    units = ["g", "capsule", "glass", "mg_extract", "mg_mitragynine", "spoon"]
    subj, day, amount, unit, pct, gpc, want = [], [], [], [], [], [], {}
    for s, tz in enumerate(zones):
        doses = []
        for t in np.sort(rng.uniform(0, 24 * 40, 90)):  # crosses the March DST change
            u = str(rng.choice(units))
            doses.append(Dose(datetime(2025, 3, 1, tzinfo=UTC) + timedelta(hours=t),
                              float(rng.uniform(-0.5, 6)), u,
                              float(rng.uniform(1, 20)) if rng.random() < 0.5 else None,
                              0.5 if rng.random() < 0.7 else None))
        want[s] = daily_mitragynine_mg(doses, tz)
        for d in doses:
            subj.append(s)
            day.append(d.taken_at.astimezone(tz).date().toordinal())
            amount.append(d.amount)
            unit.append(d.unit)
            pct.append(np.nan if d.mitragynine_percent is None else d.mitragynine_percent)
            gpc.append(np.nan if d.grams_per_capsule is None else d.grams_per_capsule)
    s_, d_, mg = daily_mitragynine_totals(subj, day, amount, unit, pct, gpc)
    got = {s: {} for s in range(len(zones))}
    for a, b, c in zip(s_, d_, mg, strict=True):
        got[int(a)][date.fromordinal(int(b))] = float(c)
    assert got == want
    assert all(len(v) > 10 for v in want.values())  # many days, some with bad doses only


@pytest.mark.parametrize("subjects, days", [((0, 3000), (-400, 800)), ((10**9, 10**9 + 5), (0, 3)),
                                             ((0, 2**40), (0, 2**30))])  # the last: no one key fits
def test_daily_totals_sum_each_subject_day_in_order(subjects, days):
    """Issue 18: the research export sums 1.8 million doses here in one call; the totals are
    the per-(subject, day) sums in the order given, sorted by subject then day."""
    from speciosa.pharmacology.cohort import daily_mitragynine_totals
    from speciosa.pharmacology.doses import convert_arrays

    rng = np.random.default_rng(18)
    n = 5000
    subj = rng.integers(*subjects, n)
    day = rng.integers(*days, n)
    amount = rng.uniform(0.5, 4, n)
    unit = rng.choice(np.array(["g", "glass", "capsule", "spoon"], dtype=object), n)
    gpc = np.where(rng.random(n) < 0.5, 0.5, np.nan)
    s, d, mg = daily_mitragynine_totals(subj, day, amount, unit, None, gpc)
    conv = convert_arrays(amount, unit, None, gpc)
    expected: dict[tuple[int, int], float] = {}
    for i in range(n):
        if conv.problem[i] == 0:
            key = (int(subj[i]), int(day[i]))
            expected[key] = expected.get(key, 0.0) + float(conv.mg[i])
    assert list(zip(s.tolist(), d.tolist(), strict=True)) == sorted(expected)
    assert mg.tolist() == [expected[k] for k in sorted(expected)]  # the same sums: equal floats
