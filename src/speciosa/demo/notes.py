"""Clinicians' notes of the demo clinic: the visit remarks and the notes that explain an
abnormal result (prolactin, liver), written where the finding is generated."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from speciosa.clinic.models import LabResult, Note, Patient, Source

from .people import SPECIAL_PROLACTIN_40_60, SPECIAL_PROLACTIN_OVER_100

if TYPE_CHECKING:
    from .builder import Builder


def add(b: Builder, patient: Patient, clinician, at: dt.datetime, text: str) -> None:
    """A note ``clinician`` wrote at ``at`` (entered 20 minutes later)."""
    b.rows[Note].append(Note(patient=patient, entered_by=clinician, source=Source.CLINICIAN,
                             entered_at=at + dt.timedelta(minutes=20), at=at, text=text))


def prolactin_note(i: int, row: LabResult) -> str:
    value = f"{row.canonical_value:.0f} {row.canonical_unit}"
    if i == SPECIAL_PROLACTIN_OVER_100:
        return (f"Prolactin {value}: above the level drugs usually cause (<100 ng/mL). Not "
                f"explained by kratom. Pregnancy test negative; TSH and creatinine normal. "
                f"Macroprolactin screen and pituitary MRI requested; endocrinology referral.")
    if i == SPECIAL_PROLACTIN_40_60:
        return (f"Prolactin {value}, raised; reports reduced sex drive. Opioid-type drugs can "
                f"raise prolactin (one kratom case report). Other causes to rule out: "
                f"medications, thyroid, kidney, pregnancy. Repeat resting sample; discussed "
                f"options with the patient.")
    return (f"Prolactin {value} ({row.flag}). Resting repeat at the next draw; medications "
            f"and symptoms reviewed.")
