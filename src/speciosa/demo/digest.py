"""A digest of the demo clinic's generated values: two builds with the same seed and
``today`` give the same digest (the reproducibility check)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from speciosa.clinic.models import (
    Assessment,
    Consent,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Note,
    Patient,
    SubstanceUse,
)


def clinic_digest() -> str:
    """SHA-256 over the clinic's generated values (no database ids or wall-clock times).

    Two builds with the same seed and ``today`` give the same digest.
    """
    h = hashlib.sha256()

    def feed(rows: Iterable[Any]) -> None:
        for row in rows:
            h.update(json.dumps(row, default=str, sort_keys=True).encode())

    feed(Patient.objects.order_by("site__name", "identifier").values_list(
        "site__name", "identifier", "given_name", "family_name", "birth_date", "sex", "pregnant",
        "care_team__name", "user__username", "in_care_since"))
    feed(Consent.objects.order_by("patient__identifier", "kind").values_list(
        "patient__identifier", "kind", "given", "at"))
    feed(DiaryDay.objects.order_by("patient__identifier", "day").values_list(
        "patient__identifier", "day"))
    feed(Dose.objects.order_by("patient__identifier", "taken_at", "id").values_list(
        "patient__identifier", "taken_at", "amount", "unit", "product", "mitragynine_percent",
        "grams_per_capsule", "mitragynine_mg", "conversion_note", "entered_by__username"))
    feed(Assessment.objects.order_by("patient__identifier", "at", "instrument").values_list(
        "patient__identifier", "instrument", "instrument_version", "at", "items", "total",
        "band", "complete", "flags", "source", "entered_by__username"))
    feed(LabResult.objects.order_by("patient__identifier", "collected_at", "lab").values_list(
        "patient__identifier", "lab", "loinc", "collected_at", "value", "unit", "canonical_value",
        "canonical_unit", "reference_low", "reference_high", "flag"))
    feed(SubstanceUse.objects.order_by("patient__identifier", "at", "name").values_list(
        "patient__identifier", "at", "name", "detail"))
    feed(Medication.objects.order_by("patient__identifier", "start", "name").values_list(
        "patient__identifier", "name", "start", "end"))
    feed(Note.objects.order_by("patient__identifier", "at").values_list(
        "patient__identifier", "at", "text", "entered_by__username"))
    return h.hexdigest()
