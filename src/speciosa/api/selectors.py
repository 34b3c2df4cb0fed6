"""Reads the API shapes from :mod:`speciosa.clinic.selectors` (no second copy of a rule).

The web's patient list computes its "needs attention" reasons inside the view; the same
reasons are computed here for the API (:func:`abnormal_reasons`). Moving this function to
``clinic.selectors`` would let both share it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Q
from django.utils import timezone

from speciosa.clinic import access, selectors
from speciosa.clinic.models import Patient


def abnormal_reasons(p: Patient, today: dt.date) -> list[str]:
    """Why a patient needs attention (the same rules as the web's patient list)."""
    reasons = []
    if p.prolactin_flag in ("high", "critical"):
        reasons.append(f"prolactin {p.prolactin_flag}")
    if p.withdrawal_instrument == "cows" and (p.withdrawal_total or 0) >= 13:
        reasons.append(f"COWS {p.withdrawal_total}")
    if p.last_diary is None or (today - p.last_diary).days >= 7:
        reasons.append("no diary for 7+ days")
    return reasons


def patient_rows(user, query: str = "") -> list[Patient]:
    """The user's visible patients with their summary, those needing attention first."""
    patients = selectors.patient_list(access.visible_patients(user))
    query = query.strip()
    if query:
        patients = patients.filter(Q(family_name__icontains=query) | Q(given_name__icontains=query) |
                                   Q(identifier__icontains=query))
    today = timezone.localdate()
    rows = list(patients)
    for p in rows:
        p.abnormal_reasons = abnormal_reasons(p, today)
    rows.sort(key=lambda p: (not p.abnormal_reasons, p.family_name, p.given_name, p.pk))
    return rows


def patient_summary(user, patient: Patient) -> Patient:
    """One patient with the summary (``patient`` must already be visible to ``user``)."""
    p = selectors.patient_list(access.visible_patients(user).filter(pk=patient.pk)).get()
    p.abnormal_reasons = abnormal_reasons(p, timezone.localdate())
    return p


def timeline_rows(patient: Patient) -> list[dict[str, Any]]:
    """The whole timeline (newest first) as plain rows for the API."""
    rows = []
    for e in selectors.patient_timeline(patient, limit=None):
        r = e.record
        rows.append({
            "at": e.at, "kind": e.kind, "title": e.title, "detail": e.detail or "",
            "abnormal": bool(e.abnormal), "record_kind": e.record_kind, "record_id": r.pk,
            "retracted": r.retracted, "corrected": r.replaces_id is not None, "source": r.source,
            "entered_by": (r.entered_by.get_full_name() or r.entered_by.get_username())
            if r.entered_by else None,
        })
    return rows
