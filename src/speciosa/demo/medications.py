"""Medications of the demo patients: a CYP3A-sensitive one for one patient, prenatal vitamins
for the pregnant one, and a common medication for about a third of the others."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from speciosa.clinic.models import Medication, Patient, Source

from . import notes
from .common import local_time
from .people import SPECIAL_CYP3A, SPECIAL_PREGNANT

if TYPE_CHECKING:
    from .builder import Builder

OTHER_MEDICATIONS = ("sertraline 50 mg daily", "omeprazole 20 mg daily", "lisinopril 10 mg daily",
                     "ibuprofen 400 mg as needed", "loratadine 10 mg daily")


def add(b: Builder, i: int, patient: Patient, plan: dict[str, Any], clinician,
        rng: np.random.Generator) -> None:
    names: list[str] = []
    if i == SPECIAL_CYP3A:
        names.append("quetiapine 50 mg at night")
    if i == SPECIAL_PREGNANT:
        names.append("prenatal vitamins daily")
    if rng.random() < 0.3:
        names.append(str(rng.choice(OTHER_MEDICATIONS)))
    start = plan["in_care_since"] - dt.timedelta(days=int(rng.integers(30, 400)))
    at = local_time(b.first_day, 11 * 60, b.tz[plan["site"]])
    for name in names:
        b.rows[Medication].append(Medication(
            patient=patient, entered_by=clinician, source=Source.CLINICIAN, entered_at=at,
            name=name, start=start, end=None))
    if i == SPECIAL_CYP3A:
        notes.add(b, patient, clinician, at,
                  "Takes quetiapine, a CYP3A4 substrate. Mitragynine inhibits CYP3A (kratom tea "
                  "raised midazolam AUC about 1.4-fold, Tanna 2023): watch for sedation; "
                  "prescriber informed.")

