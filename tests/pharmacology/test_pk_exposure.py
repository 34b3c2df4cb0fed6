"""Patient exposure: band, summary, washout window, taper preview, evidence ids."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from speciosa.pharmacology import Dose, patient_exposure, taper_preview
from speciosa.pharmacology.doses import DOSE_PARAMETERS
from speciosa.pharmacology.exposure import _percentiles
from speciosa.pharmacology.model import TYPICAL, VARIABILITY

TZ = timezone(timedelta(hours=2))
START = datetime(2025, 1, 1, tzinfo=TZ)


def log(days=21, grams=5.0):
    rng = np.random.default_rng(0)
    return [Dose(START + timedelta(days=d, hours=h + rng.uniform(-1, 1)), grams, "g")
            for d in range(days) for h in (8, 14, 21)]


@pytest.fixture(scope="module")
def three_weeks():
    return patient_exposure(log(), START, START + timedelta(days=35), subjects=400, seed=1)


def test_the_band_brackets_the_typical_course(three_weeks):
    r = three_weeks
    assert r.p05 is not None and r.p95 is not None
    on = r.times_h > 2
    assert np.all(r.p05 <= r.p95)
    assert np.all(r.p05[on] <= r.mitragynine_ng_per_ml[on])
    assert np.all(r.mitragynine_ng_per_ml[on] <= r.p95[on])
    assert len(r.times) == r.times_h.size == r.mitragynine_ng_per_ml.size
    assert r.times[0] == START and r.times[1] - r.times[0] == timedelta(hours=1)


def test_the_same_seed_gives_the_same_band_and_another_seed_does_not():
    a = patient_exposure(log(5), START, START + timedelta(days=6), subjects=200, seed=3)
    b = patient_exposure(log(5), START, START + timedelta(days=6), subjects=200, seed=3)
    c = patient_exposure(log(5), START, START + timedelta(days=6), subjects=200, seed=4)
    assert np.array_equal(a.p05, b.p05) and np.array_equal(a.p95, b.p95)
    assert not np.array_equal(a.p95, c.p95)


def test_summary_reports_steady_state_and_the_washout_window(three_weeks):
    s = three_weeks.summary
    assert s.time_to_steady_state_h == 216.0
    assert s.tmax is not None and s.cmax_ng_per_ml == pytest.approx(
        three_weeks.mitragynine_ng_per_ml.max())
    assert 0 < s.hours_to_50_percent_after_last_dose < s.hours_to_10_percent_after_last_dose
    assert s.hours_to_50_percent_p05 <= s.hours_to_50_percent_p95
    assert s.hours_to_10_percent_p05 <= s.hours_to_10_percent_after_last_dose * 1.05
    # the course really is below 10 % of the reference after that time
    r = three_weeks
    after = (r.times_h - (s.last_dose_at - START).total_seconds() / 3600
             > s.hours_to_10_percent_after_last_dose)
    assert np.all(r.mitragynine_ng_per_ml[after] < 0.1 * s.reference_ng_per_ml)
    # the AUC is the exact integral; the trapezoid on the hourly grid is close
    assert s.auc_ng_h_per_ml == pytest.approx(
        np.trapezoid(r.mitragynine_ng_per_ml, r.times_h), rel=0.01)


def test_daily_mean_peak_and_trough_are_ordered(three_weeks):
    for day in three_weeks.daily:
        assert day.trough_ng_per_ml <= day.mean_ng_per_ml <= day.peak_ng_per_ml
    assert three_weeks.daily[0].date == START.date()


def test_a_single_dose_has_no_previous_steady_state():
    r = patient_exposure([Dose(START, 2, "g", mitragynine_percent=1.95)], START,
                         START + timedelta(days=3), typical_only=True)
    assert r.p05 is None and r.p95 is None
    assert r.summary.hours_to_50_percent_after_last_dose is None
    assert r.summary.cmax_ng_per_ml == pytest.approx(32.6, rel=0.15)


def test_unconvertible_doses_are_reported_not_dropped():
    doses = [*log(2), Dose(START, 2, "capsule")]
    r = patient_exposure(doses, START, START + timedelta(days=3), typical_only=True)
    assert r.unconverted == [(len(doses) - 1, "capsule dose needs grams per capsule")]
    assert any("NOT included" in a for a in r.assumptions)
    assert any("not a dosing tool" in a for a in r.assumptions)


def test_naive_window_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        patient_exposure(log(1), datetime(2025, 1, 1), START + timedelta(days=1))


def test_a_taper_preview_lowers_exposure_compared_with_continuing():
    history = log(14)
    last = history[-1].taken_at
    same = [Dose(last + timedelta(days=d, hours=h), 5.0, "g")
            for d in range(1, 8) for h in (-13, -7, 0)]
    taper = [Dose(d.taken_at, 5.0 * (1 - i / len(same)), "g") for i, d in enumerate(same)]
    end = last + timedelta(days=12)
    cont = taper_preview(history, same, end=end, start=START, typical_only=True)
    prev = taper_preview(history, taper, end=end, start=START, typical_only=True)
    assert prev.planned_from == taper[0].taken_at
    assert np.all(prev.mitragynine_ng_per_ml <= cont.mitragynine_ng_per_ml + 1e-9)
    assert prev.mitragynine_ng_per_ml[-1] < cont.mitragynine_ng_per_ml[-1]
    assert any("not a recommendation" in a for a in prev.assumptions)


def test_fast_percentiles_equal_numpys():
    x = np.random.default_rng(0).lognormal(size=(50, 1000))
    lo, hi = _percentiles(x, (5.0, 95.0))
    np.testing.assert_allclose(lo, np.percentile(x, 5, axis=1), rtol=1e-14)
    np.testing.assert_allclose(hi, np.percentile(x, 95, axis=1), rtol=1e-14)
    x2 = x[:, :7]
    lo2, hi2 = _percentiles(x2, (5.0, 95.0))
    np.testing.assert_allclose(lo2, np.percentile(x2, 5, axis=1), rtol=1e-14)
    np.testing.assert_allclose(hi2, np.percentile(x2, 95, axis=1), rtol=1e-14)


def test_every_parameter_source_resolves_in_the_evidence_registry():
    evidence = pytest.importorskip("speciosa.knowledge.evidence")
    ids = [i for p in (*TYPICAL.values(), *VARIABILITY.values(), *DOSE_PARAMETERS)
           for i in p.source_ids]
    assert evidence.missing_references(ids) == []
