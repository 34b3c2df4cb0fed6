"""Writes for education and shared decisions.

Each function checks access with :mod:`speciosa.clinic.access` (refusal:
:class:`~speciosa.clinic.writes.AccessDenied`), validates, and writes through the write kernel
:mod:`speciosa.clinic.writes`: one transaction together with its audit entry. Form submissions
carry a one-time token, so a double tap or a retry stores one record
(:func:`speciosa.clinic.writes.once`). Problems a person can fix raise
:class:`django.core.exceptions.ValidationError` with a message per field; nothing is saved then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from speciosa.clinic import access, writes
from speciosa.clinic.models import Patient, Role

from . import content
from .models import Decision, EducationAssignment

__all__ = [
    "PRIORITIES",
    "assign_page",
    "mark_read",
    "record_decision",
    "validate_decision",
]

#: What may matter to the patient when choosing (checkboxes on the decision form).
PRIORITIES: dict[str, str] = {
    "stop-all": "Stop all opioid-like substances, kratom included",
    "avoid-withdrawal": "Avoid withdrawal",
    "sexual-health": "Keep sex drive and fertility; avoid breast or period changes (prolactin)",
    "pregnancy": "Pregnancy, or planning a pregnancy",
    "low-risk": "Lowest risk of overdose and other harm",
    "few-visits": "Few clinic visits",
    "no-daily-medicine": "No medicine to take every day",
    "privacy": "Privacy",
    "cost-access": "Cost and access",
}

MAX_REASON = 2000
MAX_NOTE = 1000


def _normalise_name(name: str) -> str:
    return " ".join((name or "").split()).casefold()


# --------------------------------------------------------------------------- assignments

def assign_page(user, patient: Patient, page_id: str, *, token: str | None = None) -> EducationAssignment:
    """Assign education page ``page_id`` to ``patient``.

    An unread assignment of the same page is returned as it is (assigning twice does not
    make two). Only a clinician of the patient's care team may assign.

    Raises
    ------
    AccessDenied
        When ``user`` may not write to this patient's record.
    ValidationError
        When there is no such page.
    """
    writes.require(access.can_write_clinical(user, patient),
                   "Only a clinician of this patient's care team can assign reading.")
    try:
        content.get_page(page_id)
    except KeyError:
        raise ValidationError({"page_id": "Choose one of the education pages."}) from None

    def create() -> EducationAssignment:
        open_one = (EducationAssignment.objects.select_for_update()
                    .filter(patient=patient, page_id=page_id, read_at__isnull=True).first())
        if open_one is not None:
            return open_one
        obj = EducationAssignment.objects.create(patient=patient, page_id=page_id, assigned_by=user)
        writes.audit(user, writes.Action.CREATE, obj, patient=patient, after=writes.snapshot(obj))
        return obj

    try:
        obj, _created = writes.once(user, token, "education-assign", create, model=EducationAssignment,
                                    patient=patient)
    except IntegrityError:
        # Two clinicians assigned the same page at the same moment: the other one won.
        return EducationAssignment.objects.get(patient=patient, page_id=page_id, read_at__isnull=True)
    return obj


def mark_read(user, patient: Patient, page_id: str) -> list[EducationAssignment]:
    """Record that the patient opened ``page_id``: every open assignment of it gets ``read_at``.

    Only the patient's own login marks reading (a clinician opening the page does not).
    Returns the assignments marked now (none when there was no open assignment, or when a
    parallel request marked them first). Each one is audited.
    """
    if access.role_of(user) != Role.PATIENT or patient.user_id != user.pk:
        return []
    now = timezone.now()
    marked: list[EducationAssignment] = []
    with transaction.atomic():
        for obj in (EducationAssignment.objects.select_for_update()
                    .filter(patient=patient, page_id=page_id, read_at__isnull=True)):
            before = writes.snapshot(obj)
            # Conditional update: a second tab opening the page at the same time changes nothing.
            if EducationAssignment.objects.filter(pk=obj.pk, read_at__isnull=True).update(read_at=now):
                obj.read_at = now
                writes.audit(user, writes.Action.VIEW, obj, patient=patient, before=before,
                             after=writes.snapshot(obj), reason="education page read")
                marked.append(obj)
    return marked


# --------------------------------------------------------------------------- decisions

def validate_decision(patient: Patient, data: Mapping[str, Any]) -> dict[str, Any]:
    """Check a decision from the option grid; returns the cleaned model fields.

    ``data`` keys: ``options_considered`` (option ids), ``priorities`` (priority ids),
    ``priorities_note``, ``choice``, ``choice_detail``, ``reason``, ``patient_agreed_name``,
    ``decided_at`` (aware datetime; default now).

    Raises
    ------
    ValidationError
        With a message per field that says what to fix.
    """
    errors: dict[str, str] = {}
    options = {o.id: o for o in content.all_options()}

    choice = str(data.get("choice") or "").strip()
    if not choice:
        errors["choice"] = "Choose the option that was decided."
    elif choice not in options:
        errors["choice"] = "Choose one of the options in the grid."

    considered_ids = [str(x) for x in (data.get("options_considered") or [])]
    unknown = [x for x in considered_ids if x not in options]
    if unknown:
        errors["options_considered"] = "Tick only options from the grid."
    if choice in options and choice not in considered_ids:
        considered_ids.append(choice)
    considered_ids = [o for o in options if o in considered_ids]  # grid order, no repeats

    detail = " ".join(str(data.get("choice_detail") or "").split())
    if choice == "other" and not detail:
        errors["choice_detail"] = "Say what the other option is."
    if choice != "other":
        detail = ""
    if len(detail) > 300:
        errors["choice_detail"] = "Keep this to 300 characters."

    reason = str(data.get("reason") or "").strip()
    if not reason:
        errors["reason"] = "Write the reason for this choice, in the patient's words if possible."
    elif len(reason) > MAX_REASON:
        errors["reason"] = f"Keep the reason to {MAX_REASON:,} characters."

    priorities = [str(x) for x in (data.get("priorities") or [])]
    if any(p not in PRIORITIES for p in priorities):
        errors["priorities"] = "Tick only the priorities listed."
    note = str(data.get("priorities_note") or "").strip()
    if len(note) > MAX_NOTE:
        errors["priorities_note"] = f"Keep this to {MAX_NOTE:,} characters."

    agreed = " ".join(str(data.get("patient_agreed_name") or "").split())
    if not agreed:
        errors["patient_agreed_name"] = "Ask the patient to confirm their name, and type it here."
    elif _normalise_name(agreed) != _normalise_name(patient.name):
        errors["patient_agreed_name"] = (
            f"This does not match the name on the record ({patient.name}). Check it with the patient.")

    decided_at = data.get("decided_at") or timezone.now()
    if not isinstance(decided_at, dt.datetime) or timezone.is_naive(decided_at):
        errors["decided_at"] = "Give the date and time of the decision."
    else:
        try:
            writes.not_in_future(decided_at, "decided_at",
                                 "This is in the future; give the date the decision was made.")
        except ValidationError as exc:
            errors.update({key: messages[0] for key, messages in exc.message_dict.items()})

    if errors:
        raise ValidationError(errors)
    return {
        "options_considered": [
            {"id": oid, "label": options[oid].label, "evidence": options[oid].strength}
            for oid in considered_ids
        ],
        "priorities": {
            "selected": [p for p in PRIORITIES if p in priorities],
            "labels": [PRIORITIES[p] for p in PRIORITIES if p in priorities],
            "note": note,
        },
        "choice": choice,
        "choice_detail": detail,
        "reason": reason,
        "patient_agreed_name": agreed,
        "decided_at": decided_at,
    }


def record_decision(user, patient: Patient, data: Mapping[str, Any], *, token: str | None = None) -> Decision:
    """Record a shared decision (clinician of the patient's care team only).

    Raises
    ------
    AccessDenied
        When ``user`` may not write to this patient's record.
    ValidationError
        See :func:`validate_decision`.
    """
    writes.require(access.can_write_clinical(user, patient),
                   "Only a clinician of this patient's care team can record a decision.")
    clean = validate_decision(patient, data)

    def create() -> Decision:
        obj = Decision.objects.create(patient=patient, clinician=user, **clean)
        writes.audit(user, writes.Action.CREATE, obj, patient=patient, after=writes.snapshot(obj))
        return obj

    obj, _created = writes.once(user, token, "decision", create, model=Decision, patient=patient)
    return obj


# --------------------------------------------------------------------------- reads

def assignments_for(patient: Patient) -> list[EducationAssignment]:
    """The patient's assignments, newest first."""
    return list(EducationAssignment.objects.filter(patient=patient).select_related("assigned_by"))


def latest_decision(patient: Patient) -> Decision | None:
    """The most recent decision, or None."""
    return Decision.objects.filter(patient=patient).select_related("clinician").first()


def reading_list(patient: Patient) -> list[dict[str, Any]]:
    """Every page for the patient's list: assigned-and-unread first, then other assigned, then the rest.

    Each row: ``page``, ``assigned`` (bool), ``read`` (bool: every assignment read),
    ``assigned_at``, ``read_at``.
    """
    by_page: dict[str, list[EducationAssignment]] = {}
    for a in assignments_for(patient):
        by_page.setdefault(a.page_id, []).append(a)
    rows = []
    for page in content.all_pages():
        mine = by_page.get(page.id, [])
        rows.append({
            "page": page,
            "assigned": bool(mine),
            "read": bool(mine) and all(a.read_at for a in mine),
            "assigned_at": max((a.assigned_at for a in mine), default=None),
            "read_at": max((a.read_at for a in mine if a.read_at), default=None),
        })
    rows.sort(key=lambda r: (not r["assigned"], r["read"]))  # stable: keeps page order within groups
    return rows

