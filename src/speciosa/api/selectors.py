"""Reads the API shapes from :mod:`speciosa.clinic.selectors` (no second copy of a rule).

The "needs attention" reasons are the web's: :func:`speciosa.clinic.selectors.attention_reasons`.
The API speaks English whatever the login's language (docs/translation.md): the reasons and
the timeline's titles, which the web pages show translated, are made here in English.
"""

from __future__ import annotations

from typing import Any

from django.utils import translation

from speciosa.clinic import access, selectors
from speciosa.clinic.models import Patient


def patient_rows(user, query: str = "") -> list[Patient]:
    """The user's visible patients with their summary, those needing attention first."""
    with translation.override("en"):
        rows = selectors.patient_rows(access.visible_patients(user), query)
    for p in rows:
        p.abnormal_reasons = p.attention
    return rows


def patient_summary(user, patient: Patient) -> Patient:
    """One patient with the summary (``patient`` must already be visible to ``user``)."""
    with translation.override("en"):
        p = selectors.patient_rows(access.visible_patients(user).filter(pk=patient.pk))[0]
    p.abnormal_reasons = p.attention
    return p


def timeline_rows(patient: Patient) -> list[dict[str, Any]]:
    """The whole timeline (newest first) as plain rows for the API."""
    rows = []
    with translation.override("en"):
        events = selectors.patient_timeline(patient, limit=None)
    for e in events:
        r = e.record
        rows.append({
            "at": e.at, "kind": e.kind, "title": e.title, "detail": e.detail or "",
            "abnormal": bool(e.abnormal), "record_kind": e.record_kind, "record_id": r.pk,
            "retracted": r.retracted, "corrected": r.replaces_id is not None, "source": r.source,
            "entered_by": access.display_name(r.entered_by) if r.entered_by else None,
        })
    return rows
