"""The kinds of clinical record a clinician may correct or withdraw, and what of each may change.

One table for every way in: the web's correction page, the API's ``.../correct/`` endpoint and
:func:`speciosa.clinic.services.correct_record` all read :data:`KINDS`, so a field that may be
corrected is named once. The kind's name is the one in URLs (``/patients/1/lab/7/correct/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError

from .models import Assessment, Dose, LabResult, Medication, Note, SubstanceUse, TreatmentEpisode

__all__ = ["KINDS", "RecordKind", "check_changes", "kind_of"]


@dataclass(frozen=True)
class RecordKind:
    """One kind of record that can be corrected.

    Attributes
    ----------
    name : str
        The kind in URLs and the API (``"dose"``).
    model : model class
        Its Django model.
    correctable : tuple of str
        The fields a correction may change (the API accepts any of them).
    on_page : tuple of str
        The ones the web correction page offers (a short form for the common mistakes).
    """

    name: str
    model: type
    correctable: tuple[str, ...]
    on_page: tuple[str, ...]


KINDS: dict[str, RecordKind] = {k.name: k for k in (
    RecordKind("dose", Dose, ("taken_at", "amount", "unit", "product", "mitragynine_percent",
                              "grams_per_capsule", "confirmed_unusual"), on_page=("amount",)),
    RecordKind("assessment", Assessment, ("items", "at", "note"), on_page=()),
    RecordKind("lab", LabResult, ("collected_at", "value", "unit", "comparator", "result",
                                  "method", "confirmed_unusual", "reference_low",
                                  "reference_high", "reference_unit"),
               on_page=("value", "unit", "reference_low", "reference_high", "reference_unit")),
    RecordKind("note", Note, ("text",), on_page=("text",)),
    RecordKind("substance", SubstanceUse, ("at", "name", "detail"), on_page=("name", "detail")),
    RecordKind("medication", Medication, (
        "drug", "name", "rxnorm", "category", "strength", "strength_unit", "form", "dose_amount",
        "dose_unit", "frequency", "route", "start", "end", "status", "stop_reason", "prescriber",
        "prescriber_name", "indication", "notes"), on_page=()),
    RecordKind("episode", TreatmentEpisode, (
        "drug", "formulation", "dose_mg", "dose_unit", "injection_dates", "dispensing_clinic",
        "start", "end", "status", "stop_reason", "notes", "confirmed_dose", "decision"),
               on_page=()),
)}


def kind_of(record_or_name: Any) -> RecordKind | None:
    """The kind named ``record_or_name`` (``"lab"``), or the kind of a record; None if it is
    not a kind that can be corrected."""
    if isinstance(record_or_name, str):
        return KINDS.get(record_or_name)
    return next((k for k in KINDS.values() if isinstance(record_or_name, k.model)), None)


def check_changes(kind: RecordKind, changes: Mapping[str, Any]) -> None:
    """Refuse a change to a field ``kind`` does not let a correction change.

    Raises
    ------
    ValidationError
        One message per such field, under its name.
    """
    wrong = {k: f"A {kind.name} has no field '{k}' to correct." for k in changes
             if k not in kind.correctable}
    if wrong:
        raise ValidationError(wrong)
