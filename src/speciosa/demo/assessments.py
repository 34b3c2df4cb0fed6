"""Scored instruments of the demo clinic: the clinician's COWS every 2-4 weeks, PHQ-9 and
AUDIT-C at visits (with the notes a clinician writes about them), and the scoring of every
generated response (the patient's diary ones included) through the write kernel's one mapping
(:func:`speciosa.clinic.writes.assessment_fields`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from speciosa.clinic import writes
from speciosa.clinic.models import Assessment, DiaryDay, Patient, Source
from speciosa.knowledge import instruments as kinstruments

from . import notes
from .common import local_time
from .people import (
    SPECIAL_BIG_ESCALATION,
    SPECIAL_COWS_13,
    SPECIAL_MALE_BREAST,
    SPECIAL_PHQ9_ITEM9,
    SPECIAL_PREGNANT,
)

if TYPE_CHECKING:
    from .builder import Builder

#: The instruments the demo fills in (looked up once per build).
INSTRUMENTS = ("craving-nrs", "sows", "side-effects", "cows", "phq9", "audit-c")


def item_draws(inst, rng: np.random.Generator, intensity: float) -> dict[str, int]:
    """Item responses: each item moves up its allowed values with ``intensity`` in [0, 1]."""
    out: dict[str, int] = {}
    for item in inst.items:
        allowed = item.allowed
        pos = rng.binomial(len(allowed) - 1, min(max(intensity * rng.uniform(0.6, 1.3), 0.0), 1.0))
        out[item.id] = int(allowed[pos])
    return out


def assess(b: Builder, patient: Patient, user, source: str, instrument_id: str,
           items: dict[str, int], at: dt.datetime, sex: str, diary: DiaryDay | None = None,
           note: str = "") -> Assessment:
    """One response, scored by the one scorer and stored as the write kernel maps it."""
    inst = b.inst[instrument_id]
    row = Assessment(patient=patient, entered_by=user, source=source, entered_at=at, diary=diary,
                     at=at, note=note,
                     **writes.assessment_fields(inst, items, kinstruments.score(inst, items, sex=sex)))
    b.rows[Assessment].append(row)
    return row


def visit_at(b: Builder, d: int, rng: np.random.Generator, tz: ZoneInfo) -> dt.datetime:
    """A time in clinic hours (9:00-16:00) on day ``d``."""
    return local_time(b.day(d), rng.uniform(9 * 60, 16 * 60), tz)


def clinic_visits(b: Builder, i: int, patient: Patient, plan: dict[str, Any], clinician,
                  rng: np.random.Generator, tz: ZoneInfo, withdrawal: np.ndarray,
                  depression: float, drinking: float) -> None:
    """The clinic visits: intake note, COWS every 2-4 weeks, PHQ-9 three times, AUDIT-C twice,
    and the notes a clinician writes about what they found."""
    days, sex = b.days, plan["sex"]
    intake = b.weekday(int(rng.integers(0, 4)))
    at = visit_at(b, intake, rng, tz)
    notes.add(b, patient, clinician, at,
              "Intake into supervised care. Uses kratom daily; will keep a diary of doses. "
              "Discussed what is and is not known about kratom and prolactin, the liver and "
              "withdrawal; agreed on blood tests every 4-8 weeks and regular reviews.")
    # COWS every 2-4 weeks
    d = intake
    cows_days = []
    while d < days - 1:
        cows_days.append(b.weekday(d))
        d += int(rng.integers(14, 29))
    if i == SPECIAL_COWS_13:
        cows_days = [c for c in cows_days if c < days - 8] + [b.weekday(days - 3)]
    cows = b.inst["cows"]
    for c in sorted(set(cows_days)):
        at = visit_at(b, c, rng, tz)
        intensity = 0.05 + 0.45 * float(withdrawal[c])
        items = item_draws(cows, rng, intensity)
        if i == SPECIAL_COWS_13 and c >= days - 8:
            while kinstruments.score(cows, items).total < 13:
                items = item_draws(cows, rng, 0.55)
        row = assess(b, patient, clinician, Source.CLINICIAN, "cows", items, at, sex)
        if row.total is not None and row.total >= 13:
            notes.add(b, patient, clinician, at,
                      f"COWS {row.total} ({row.band}) today. Reviewed the diary: intake has "
                      f"fallen quickly over the last days. Withdrawal management discussed; "
                      f"review in 48 hours.")
        elif rng.random() < 0.35:
            notes.add(b, patient, clinician, at, rng.choice([
                "Reviewed diary and craving scores with the patient. No new concerns.",
                "Patient reports steady days; sleep a little better. Diary reviewed together.",
                "Talked through the plan the patient chose; patient asks about liver tests.",
                "Missed a few diary days; agreed on a phone reminder in the evening.",
                "Cravings worse at weekends; coping strategies discussed.",
            ]))
    # PHQ-9 at intake, mid-way and recently; AUDIT-C at intake and later
    phq_days = [intake, b.weekday(days // 2), b.weekday(days - 10)]
    for n, p_day in enumerate(phq_days):
        at = visit_at(b, p_day, rng, tz) + dt.timedelta(minutes=30)
        items = item_draws(b.inst["phq9"], rng, depression)
        items["self-harm"] = 0
        if i == SPECIAL_PHQ9_ITEM9 and n == len(phq_days) - 1:
            items["self-harm"] = 1
        row = assess(b, patient, clinician, Source.CLINICIAN, "phq9", items, at, sex)
        if items["self-harm"]:
            notes.add(b, patient, clinician, at,
                      f"PHQ-9 {row.total}; item 9 answered 'several days'. Asked directly about "
                      f"suicidal thoughts: passive, no plan. Safety plan written together, "
                      f"crisis line given, follow-up call tomorrow.")
    for a_day in (intake, b.weekday(days - 20)):
        at = visit_at(b, a_day, rng, tz) + dt.timedelta(minutes=40)
        assess(b, patient, clinician, Source.CLINICIAN, "audit-c",
               item_draws(b.inst["audit-c"], rng, drinking), at, sex)
    if i == SPECIAL_BIG_ESCALATION:
        notes.add(b, patient, clinician, visit_at(b, b.weekday(days - 12), rng, tz),
                  "Daily intake has roughly tripled since intake and doses are more frequent. "
                  "Discussed dependence and withdrawal risk; patient wants to think about a plan.")
    if i == SPECIAL_PREGNANT:
        notes.add(b, patient, clinician, visit_at(b, b.weekday(days // 3), rng, tz),
                  "Pregnant (confirmed). Uses kratom daily and is reducing under supervision. "
                  "Obstetric team informed; neonatal withdrawal has been reported after kratom "
                  "use in pregnancy. Prolactin is not measured in pregnancy.")
    if i == SPECIAL_MALE_BREAST:
        notes.add(b, patient, clinician, visit_at(b, b.weekday(days - 15), rng, tz),
                  "Reports tender, slightly enlarged breasts for some weeks. Examined; prolactin, "
                  "testosterone and TSH requested. Medication list reviewed.")
