"""Micro-check: evaluating a year-long daily timeline is cheap (no timed assertion that can
flake; the measured cost is printed with ``pytest -s``).

The sweep target is 100,000 patients in under a minute on 2 cores, so evaluate() should
stay well under 0.3 ms for a typical patient-year.
"""

from __future__ import annotations

import time
from datetime import timedelta

from speciosa.safety import Assessment, evaluate

from .safety_builders import (
    AS_OF,
    TODAY,
    ago,
    audit_c,
    daily_doses,
    lab,
    medication,
    phq9,
    prolactin,
    side_effect,
    sows,
    substance,
    timeline,
)


def patient_year():
    """A year of daily life: 3 doses a day, weekly COWS/SOWS/PHQ-9, monthly labs, daily diary."""
    doses = daily_doses(364, 0, 2.0, per_day=3, mitragynine_percent=1.5)
    assessments = []
    for week in range(52):
        assessments += [Assessment("cows", ago(7 * week + 1), None, 6), sows(10, 7 * week + 2),
                        phq9(0, 7 * week + 3)]
    assessments.append(audit_c(1, 1, 0, 100))
    labs = []
    for month in range(12):
        d = 30 * month + 4
        labs += [prolactin(11.0, d), lab("alt", 30.0, "U/L", d), lab("ast", 28.0, "U/L", d),
                 lab("bilirubin", 0.6, "mg/dL", d)]
    side_effects = [side_effect("constipation", 7 * w) for w in range(52)]
    meds = [medication("sertraline 50 mg", 300), medication("ibuprofen", 200, 100)]
    substances = [substance("cannabis", 14 * w) for w in range(26)]
    diary = [TODAY - timedelta(days=d) for d in range(365)]
    return timeline(doses=doses, assessments=assessments, labs=labs, side_effects=side_effects,
                    medications=meds, substances=substances, diary_days=diary)


def test_evaluating_a_patient_year_is_cheap():
    tl = patient_year()
    assert len(tl.doses) == 1095
    evaluate(tl, AS_OF)  # warm the lazy indexes and the instrument registry
    runs = 2000
    start = time.perf_counter()
    for _ in range(runs):
        found = evaluate(tl, AS_OF)
    per_call_ms = (time.perf_counter() - start) / runs * 1000
    print(f"\nevaluate(): {per_call_ms:.3f} ms per patient-year timeline "
          f"({len(tl.doses)} doses, {len(tl.assessments)} assessments, {len(tl.labs)} labs)")
    assert [f.topic for f in found] == []  # a stable patient: nothing to report
    assert per_call_ms < 50  # sanity bound only, far above the measured cost
