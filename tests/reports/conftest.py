"""A patient with a charted record: 40 days of doses, scores, labs, side effects and an alert."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

TODAY = dt.date(2026, 3, 1)
NOW = dt.datetime(2026, 3, 1, 18, 0, tzinfo=dt.UTC)
DAYS = 40


@dataclass
class Charted:
    patient: object
    days: int
    prolactin_high: float
    alert_citation: str


@pytest.fixture
def charted(clinic) -> Charted:
    """``clinic.patient_a`` (Maya Quinn, female) with a record to chart, written with the ORM."""
    from speciosa.clinic.models import Alert, Assessment, Dose, LabResult, Source

    p = clinic.patient_a
    user = clinic.clinician_a
    doses, scores = [], []
    for i in range(DAYS):
        day = TODAY - dt.timedelta(days=DAYS - i)
        for hour in (8, 14):
            doses.append(Dose(patient=p, entered_by=p.user, source=Source.PATIENT,
                              taken_at=dt.datetime.combine(day, dt.time(hour), dt.UTC),
                              amount=3, unit="g", mitragynine_percent=1.5, mitragynine_mg=45.0))
        at = dt.datetime.combine(day, dt.time(20), dt.UTC)
        scores.append(Assessment(patient=p, entered_by=p.user, source=Source.PATIENT, instrument="craving-nrs",
                                 instrument_version="1", at=at, items={"craving": i % 8}, total=i % 8))
        if i % 7 == 0:
            scores.append(Assessment(patient=p, entered_by=p.user, source=Source.PATIENT, instrument="sows",
                                     instrument_version="1", at=at, items={}, total=10 + i // 7, band="mild"))
    scores.append(Assessment(patient=p, entered_by=user, source=Source.CLINICIAN, instrument="cows",
                             instrument_version="1", at=NOW - dt.timedelta(days=3), items={}, total=14,
                             band="moderate"))
    scores.append(Assessment(patient=p, entered_by=p.user, source=Source.PATIENT, instrument="side-effects",
                             instrument_version="1", at=NOW - dt.timedelta(days=5),
                             items={"constipation": 1, "reduced-sex-drive": 1, "nausea": 0}))
    Dose.objects.bulk_create(doses)
    Assessment.objects.bulk_create(scores)
    labs = [("prolactin", 12.0, "ng/mL", 4.8, 23.3, "normal", 30),
            ("prolactin", 41.7, "ng/mL", 4.8, 23.3, "high", 6),
            ("alt", 28.0, "U/L", 7.0, 33.0, "normal", 30),
            ("alt", 121.0, "U/L", 7.0, 33.0, "high", 6)]
    LabResult.objects.bulk_create([
        LabResult(patient=p, entered_by=user, source=Source.CLINICIAN, lab=code,
                  collected_at=NOW - dt.timedelta(days=ago), value=v, unit=u, canonical_value=v,
                  canonical_unit=u, reference_low=lo, reference_high=hi, flag=flag)
        for code, v, u, lo, hi, flag, ago in labs])
    Alert.objects.create(patient=p, rule="prolactin-raised", topic="prolactin", severity="warning",
                         message="Prolactin 41.7 ng/mL is above the reference range.",
                         next_step="Repeat fasting prolactin.", citations=["kruegel-2019"],
                         first_seen_at=NOW - dt.timedelta(days=6))
    Alert.objects.create(patient=p, rule="old-thing", topic="liver", severity="info",
                         message="Resolved long ago.", status="resolved", first_seen_at=NOW - dt.timedelta(days=20))
    return Charted(patient=p, days=DAYS, prolactin_high=41.7, alert_citation="kruegel-2019")
