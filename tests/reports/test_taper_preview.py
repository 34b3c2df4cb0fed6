"""Issue 19: the predicted exposure under a taper plan (reports.taper) is the engine's answer
for the doses the clinician entered and nothing else: the same curve as the engine run on
those doses directly, a falling level for a falling schedule, the washout after the plan's
last dose, the diary's course up to now only; a plan the engine cannot convert says so."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from speciosa.clinic import taper
from speciosa.clinic.models import DiaryDay, Dose
from speciosa.pharmacology import exposure as pexposure
from speciosa.reports import taper as rtaper

pytestmark = pytest.mark.django_db


def day(n):
    return timezone.localdate() + dt.timedelta(days=n)


def plan_of(clinic, amounts=("2.5", "2", "1.5", "1"), unit="g", start=None, **step):
    start = start or day(3)
    steps = [{"start": (start + dt.timedelta(days=7 * w)).isoformat(),
              "end": (start + dt.timedelta(days=7 * w + 6)).isoformat(), "amount": a,
              "unit": unit, "doses_per_day": 2, **step} for w, a in enumerate(amounts)]
    return taper.record_plan(clinic.clinician_a, clinic.patient_a,
                             {"kind": "kratom", "reason": "r", "steps": steps})


def test_the_prediction_is_the_engines_course_for_the_entered_doses(clinic):
    plan = plan_of(clinic)
    pv = rtaper.preview(plan, subjects=50)
    assert pv.available and pv.citations == pexposure.model_citations()
    direct = pexposure.patient_exposure(taper.planned_doses(plan), pv.start, pv.end,
                                        step_minutes=120, subjects=50, seed=0)
    np.testing.assert_allclose(pv.plan_typical, direct.mitragynine_ng_per_ml, rtol=1e-12)
    np.testing.assert_allclose(pv.plan_p95, direct.p95, rtol=1e-12)
    first = dt.datetime.combine(day(3), dt.time(8), tzinfo=dt.UTC)
    assert pv.planned_from == first
    assert max(c for t, c in zip(pv.times, pv.plan_typical, strict=True) if t < first) == 0
    means = [s.mean_ng_per_ml for s in pv.steps]
    assert means[1] > means[2] > means[3] > 0
    assert [round(s.planned_mg_per_day) for s in pv.steps] == [75, 60, 45, 30]
    assert all(s.p05_ng_per_ml < s.mean_ng_per_ml < s.p95_ng_per_ml for s in pv.steps)
    w = pv.plan_washout
    assert 0 < w["h50"] < w["h10"] and w["h10_range"][0] < w["h10"] < w["h10_range"][1]
    assert pv.plan_last_dose_at == dt.datetime.combine(day(30), dt.time(22), tzinfo=dt.UTC)
    assert pv.diary_typical == [] and pv.current_last_dose_at is None  # no diary yet
    assert any("placed evenly between 08:00 and 22:00" in a for a in pv.assumptions)


def test_the_diary_course_stops_at_now_and_diary_doses_before_the_plan_count(clinic):
    p = clinic.patient_a
    for n in range(5, 0, -1):
        DiaryDay.objects.create(patient=p, day=day(-n))
        Dose.objects.create(patient=p, entered_by=p.user, source="patient", amount=Decimal(4),
                            unit="g", taken_at=dt.datetime.combine(day(-n), dt.time(9),
                                                                   tzinfo=dt.UTC))
    plan = plan_of(clinic, start=day(1))
    pv = rtaper.preview(plan, subjects=50)
    now = pv.now
    assert all(c is None for t, c in zip(pv.times, pv.diary_typical, strict=True) if t > now)
    assert max(c for c in pv.diary_typical if c is not None) > 0
    assert pv.current_mean_ng_per_ml > 0
    # the history before the plan is in the prediction: its level at the plan's start is
    # above zero, unlike a plan without a diary
    start_i = next(i for i, t in enumerate(pv.times) if t >= pv.planned_from)
    assert pv.plan_typical[start_i] > 0
    rows = rtaper.summary_rows(pv)
    assert rows[0]["what"] == "Current course (the diary so far)"
    assert rows[-1]["what"] == "After the plan's last dose"


def test_a_plan_the_engine_cannot_convert_says_so(clinic):
    plan = plan_of(clinic, amounts=("20",), unit="mg_7oh")
    pv = rtaper.preview(plan, subjects=20)
    assert not pv.available
    assert "7-hydroxymitragynine" in pv.problem
    payload = rtaper.build_payload(pv)
    assert payload["exposure"] == {"available": False, "problem": pv.problem}


def test_capsules_are_predicted_through_their_grams(clinic):
    caps = plan_of(clinic, amounts=("4",), unit="capsule", grams_per_capsule="0.5")
    grams = caps.steps[0] | {"amount": "2", "unit": "g", "grams_per_capsule": None}
    pv_caps = rtaper.preview(caps, subjects=20)
    fixed = taper.correct_plan(clinic.clinician_a, clinic.patient_a, caps, {"steps": [grams]},
                               reason="same in grams")
    pv_grams = rtaper.preview(fixed, subjects=20)
    np.testing.assert_allclose(pv_caps.plan_typical, pv_grams.plan_typical, rtol=1e-12)
