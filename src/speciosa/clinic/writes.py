"""The write kernel: the one way clinical data are stored, whichever package stores them.

:mod:`speciosa.clinic.services`, :mod:`speciosa.clinic.alerts`,
:mod:`speciosa.education.services`, the FHIR importer (:mod:`speciosa.interop.importer`) and
the demo all write through these pieces, so that a retry, an audit entry, a time check or a
stored score means the same thing whichever way the data came in:

- :func:`once` runs a create at most once per submission token (a double tap, a network
  retry or the same request racing itself stores one record), and :func:`create_record`
  stores one clinical record with its audit entry that way, then runs the after-change hook;
- :func:`audit` appends one entry to the audit trail (:func:`audit_entry` +
  :func:`append_audit` append many at once); :class:`Action` names what happened, and
  :func:`snapshot` is the JSON form of a row that ``before``/``after`` hold;
- :func:`after_change` runs the hooks in :data:`AFTER_CHANGE_HOOKS` after a change to a
  patient's data. The kernel knows no hook itself: ``speciosa.clinic.apps.ClinicConfig.ready``
  installs :func:`speciosa.tasks.after_change` (re-evaluate the safety rules now, or on a
  worker) with :func:`install_after_change_hook`;
- :func:`not_in_future` is the time check (a phone's clock may run :data:`CLOCK_SKEW` ahead);
- :func:`assessment_fields` is the one mapping from a scored instrument response to the
  stored fields of an :class:`~speciosa.clinic.models.Assessment`;
- :class:`AccessDenied` is the one permission error every service raises (a Django
  ``PermissionDenied``, so the web answers 403 without a handler of its own, and a
  ``PermissionError``); :class:`Invalid` is a ``ValidationError`` whose messages carry
  structured locations (``("doses", 0, "amount")``), read with :func:`error_locations`.

Nothing here checks who may write: the services ask :mod:`speciosa.clinic.access` first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from .models import AuditEntry, Patient, Submission

__all__ = [
    "AFTER_CHANGE_HOOKS",
    "CLOCK_SKEW",
    "AccessDenied",
    "Action",
    "Invalid",
    "Location",
    "after_change",
    "append_audit",
    "assessment_fields",
    "audit",
    "audit_entry",
    "create_record",
    "error_locations",
    "install_after_change_hook",
    "location_key",
    "not_in_future",
    "once",
    "replayed",
    "require",
    "snapshot",
]

#: A phone's clock may run a little ahead of the server's.
CLOCK_SKEW = dt.timedelta(minutes=5)

#: What an audit entry records (``AuditEntry.action``).
Action = AuditEntry.Action

T = TypeVar("T")


# --------------------------------------------------------------------------- errors

class AccessDenied(PermissionDenied, PermissionError):
    """The user may not make this change.

    The one permission error of every service. It is Django's ``PermissionDenied``, so a web
    view that lets it through answers 403 (Django's own handler), and the API maps it once
    (:func:`speciosa.api.errors.api_exception_handler`); it is also a ``PermissionError`` for
    callers outside the web.
    """


def require(condition: bool, message: str = "You may not change this record.") -> None:
    """Raise :class:`AccessDenied` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AccessDenied(message)


#: Where a message belongs: ``("doses", 0, "amount")``; ``()`` is the submission as a whole.
Location = tuple[str | int, ...]


def location_key(location: Location) -> str:
    """The flat spelling of a location, as ``message_dict`` and the API show it:
    ``("doses", 0, "amount")`` -> ``"doses-0-amount"``, ``()`` -> ``"__all__"``."""
    return "-".join(str(part) for part in location) if location else NON_FIELD_ERRORS


class Invalid(ValidationError):
    """A ``ValidationError`` whose messages know where they belong.

    ``message_dict`` keeps the flat keys the API has always shown (``doses-0-amount``,
    ``sows-nausea``); :func:`error_locations` gives each message's structured location, so a
    form puts it beside the right field without parsing the key.

    Parameters
    ----------
    errors : mapping of location to message(s)
        A location is a tuple (see :data:`Location`); a plain string is a one-part location.
    """

    def __init__(self, errors: Mapping[Location | str, str | Iterable[str]], code=None, params=None):
        flat: dict[str, list[str]] = {}
        self.locations: dict[str, Location] = {}
        for where, messages in errors.items():
            location = (where,) if isinstance(where, str) else tuple(where)
            if location == (NON_FIELD_ERRORS,):
                location = ()
            key = location_key(location)
            self.locations[key] = location
            flat.setdefault(key, []).extend([messages] if isinstance(messages, str) else list(messages))
        super().__init__(flat, code, params)

    @staticmethod
    def under(prefix: Location, exc: ValidationError) -> dict[Location, list[str]]:
        """The messages of ``exc`` placed under ``prefix`` (``("doses", 2)``): ready to merge
        into the errors of a bigger submission. A message about the part as a whole keeps
        the key ``<prefix>-__all__``."""
        out: dict[Location, list[str]] = {}
        for location, messages in error_locations(exc):
            out[tuple(prefix) + (location or (NON_FIELD_ERRORS,))] = messages
        return out


def error_locations(exc: ValidationError) -> list[tuple[Location, list[str]]]:
    """``(location, messages)`` pairs of any ``ValidationError``.

    An :class:`Invalid` gives its structured locations; a plain error with a dict gives
    one-part locations (``("amount",)``); ``__all__`` and an error without fields give ``()``.
    """
    if not hasattr(exc, "error_dict"):
        return [((), list(exc.messages))]
    locations: Mapping[str, Location] = getattr(exc, "locations", {})
    out = []
    for key, messages in exc.message_dict.items():
        if key in locations:
            location = locations[key]
        else:
            location = () if key == NON_FIELD_ERRORS else (key,)
        out.append((location, messages))
    return out


# --------------------------------------------------------------------------- audit

def snapshot(obj) -> dict[str, Any]:
    """A row as plain JSON (dates as ISO text, decimals as exact text, relations as ids):
    what an audit entry's ``before`` and ``after`` hold."""
    data = model_to_dict(obj)
    data["id"] = obj.pk
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dt.datetime | dt.date):
            out[key] = value.isoformat()
        elif isinstance(value, Decimal):
            out[key] = format(value.normalize(), "f")
        elif hasattr(value, "pk"):
            out[key] = value.pk
        else:
            out[key] = value
    return out


def audit_entry(user, action: str, obj=None, *, patient: Patient | None = None, before=None, after=None,
                reason: str = "", model: str | None = None, at: dt.datetime | None = None) -> AuditEntry:
    """An audit entry, not yet stored (see :func:`append_audit`); the arguments of :func:`audit`."""
    fields: dict[str, Any] = {} if at is None else {"at": at}
    return AuditEntry(
        user=user if getattr(user, "is_authenticated", False) else None,
        action=action,
        model=model or (type(obj).__name__ if obj is not None else ""),
        object_id=getattr(obj, "pk", None),
        patient=patient,
        before=before,
        after=after,
        reason=(reason or "")[:500],
        **fields,
    )


def audit(user, action: str, obj=None, *, patient: Patient | None = None, before=None, after=None,
          reason: str = "", model: str | None = None) -> AuditEntry:
    """Append one entry to the audit trail.

    Parameters
    ----------
    user : User or None
        Who did it (an anonymous user is stored as nobody: the command line, the demo).
    action : str
        One of :class:`Action`.
    obj : model instance, optional
        The row it concerns (``model`` and ``object_id`` are taken from it).
    patient : Patient, optional
        Whose record it concerns.
    before, after : JSON, optional
        The row before and after a change (see :func:`snapshot`).
    reason : str
        Why (the correction's reason, a purpose of use); at most 500 characters are kept.
    model : str, optional
        What was touched when there is no row (``"visit-report"``, ``"fhir:$everything"``).
    """
    entry = audit_entry(user, action, obj, patient=patient, before=before, after=after, reason=reason,
                        model=model)
    entry.save()
    return entry


def append_audit(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Store many entries of :func:`audit_entry` at once (a bulk import: one insert per 500)."""
    return AuditEntry.objects.bulk_create(entries, batch_size=500)


# --------------------------------------------------------------------------- after a change

#: Called with the patient after every change to their data (see the module docstring for who
#: installs what).
AFTER_CHANGE_HOOKS: list[Callable[[Patient], None]] = []


def install_after_change_hook(hook: Callable[[Patient], None]) -> None:
    """Add ``hook`` to :data:`AFTER_CHANGE_HOOKS` (once, however often it is installed)."""
    if hook not in AFTER_CHANGE_HOOKS:
        AFTER_CHANGE_HOOKS.append(hook)


def after_change(patient: Patient) -> None:
    """Run every after-change hook for ``patient`` (after the write has been stored)."""
    for hook in AFTER_CHANGE_HOOKS:
        hook(patient)


# --------------------------------------------------------------------------- create once

def once(user, token: str | None, kind: str, create: Callable[[], T], *, model: type,
         patient: Patient | None = None) -> tuple[T, bool]:
    """Run ``create`` in one transaction unless ``token`` was already used.

    Returns ``(object, created)``. A second submission with the same token (double tap,
    retry, or the same request racing itself: the unique submission row decides) returns
    the first one's object, read again as ``model``, with ``created`` False.

    Parameters
    ----------
    user : User
        Tokens are the user's own: another user's equal token is another submission.
    token : str or None
        The submission token (a form's one-time token, or the API's key); None runs
        ``create`` without a record of it.
    kind : str
        What is created (``"note"``, ``"diary"``, ``"correction"``...).
    create : callable
        Makes the object (and its audit entries); runs inside the transaction.
    model : model class
        The class of the object ``create`` returns.
    patient : Patient, optional
        Whose record the submission writes to.
    """
    if not token:
        with transaction.atomic():
            return create(), True
    token = token[:64]
    seen = Submission.objects.filter(token=token, user=user).first()
    if seen is not None:  # a retry of a submission that already went through
        return model.objects.get(pk=seen.object_id), False
    try:
        with transaction.atomic():
            submission = Submission.objects.create(token=token, user=user, kind=kind)
            obj = create()
            submission.object_id = obj.pk
            submission.save(update_fields=["object_id"])
            return obj, True
    except IntegrityError:
        existing = Submission.objects.filter(token=token, user=user).first()
        if existing is None:
            raise
        return model.objects.get(pk=existing.object_id), False


def replayed(user, token: str | None, *, model: type[T]) -> T | None:
    """The object an earlier submission with ``token`` created, or None (a first submission).

    For callers that must answer a retry before validating it again (a correction whose
    record has since been superseded by that very correction)."""
    if not token:
        return None
    seen = Submission.objects.filter(token=token[:64], user=user).first()
    if seen is None or seen.object_id is None:
        return None
    return model.objects.filter(pk=seen.object_id).first()


def create_record(user, token: str | None, kind: str, model: type[T], patient: Patient,
                  fields: Mapping[str, Any], *, reevaluate: bool = True) -> T:
    """Create one clinical record with its audit entry, once per submission token.

    A retry returns the first record; after a new record the after-change hooks run (the
    patient's safety rules are re-evaluated) unless ``reevaluate`` is False.
    """

    def create():
        obj = model.objects.create(patient=patient, entered_by=user, **fields)
        audit(user, Action.CREATE, obj, patient=patient, after=snapshot(obj))
        return obj

    obj, created = once(user, token, kind, create, model=model, patient=patient)
    if created and reevaluate:
        after_change(patient)
    return obj


# --------------------------------------------------------------------------- time checks

def not_in_future(at: dt.datetime, field: str,
                  message: str = "This time is in the future; give the time it happened.") -> None:
    """Refuse a time without a time zone, or later than now (plus :data:`CLOCK_SKEW`).

    Raises
    ------
    ValidationError
        With ``message`` under ``field``.
    """
    if not isinstance(at, dt.datetime) or timezone.is_naive(at):
        raise ValidationError({field: "Give the time with its time zone."})
    if at > timezone.now() + CLOCK_SKEW:
        raise ValidationError({field: message})


# --------------------------------------------------------------------------- scored responses

def assessment_fields(instrument, items: Mapping[str, int], score) -> dict[str, Any]:
    """The stored fields of an :class:`~speciosa.clinic.models.Assessment` for one scored
    response: ``instrument`` (a :class:`speciosa.knowledge.instruments.Instrument`), the
    cleaned ``items`` and their ``score`` (:func:`speciosa.knowledge.instruments.score`).

    The one mapping, so that a diary, a clinician's form, a correction, an import and the
    demo store a total, band, completeness and flags the same way (a band the scorer does
    not give is stored as ``""``)."""
    return {"instrument": instrument.id, "instrument_version": instrument.version, "items": dict(items),
            "total": score.total, "band": score.band or "", "complete": score.complete,
            "flags": list(score.flags)}
