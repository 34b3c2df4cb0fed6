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
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext

from .models import AuditEntry, Patient, Source, Submission

__all__ = [
    "AFTER_CHANGE_HOOKS",
    "CLOCK_SKEW",
    "AccessDenied",
    "Action",
    "Invalid",
    "Location",
    "NAMESPACES",
    "SubmissionConflict",
    "SubmissionKey",
    "after_change",
    "append_audit",
    "assessment_fields",
    "audit",
    "audit_entry",
    "create_record",
    "earliest_date",
    "error_locations",
    "in_window",
    "install_after_change_hook",
    "location_key",
    "not_in_future",
    "once",
    "replayed",
    "require",
    "snapshot",
    "submission_key",
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
        elif isinstance(value, list | tuple) and value and all(hasattr(v, "pk") for v in value):
            out[key] = sorted(v.pk for v in value)  # a many-to-many relation: the ids, sorted
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

#: Where a submission token came from. A token of one namespace never matches one of another:
#: the stored token carries its namespace (``web:...``, ``api:...``, ``app:...``).
NAMESPACES = ("web", "api", "app")


@dataclass(frozen=True)
class SubmissionKey:
    """A submission token with what it is bound to.

    ``namespace`` is ``"web"`` (a form's one-time token, generated and signed by the server:
    :func:`speciosa.web.forms.submission_key`), ``"api"`` (an ``Idempotency-Key``, hashed with
    the user, method and path: :func:`speciosa.api.idempotency.token_for`) or ``"app"`` (a
    plain string from Python: the command line, an import, a test). ``endpoint`` is the path
    the request was sent to (empty for ``app``).
    """

    namespace: str
    value: str
    endpoint: str = ""
    #: SHA-256 of the request body (canonical JSON) when the caller has one to bind (an API
    #: request): a replay of the key with another body raises :class:`SubmissionBodyMismatch`.
    fingerprint: str = ""

    def __post_init__(self):
        if self.namespace not in NAMESPACES:
            raise ValueError(f"unknown submission namespace {self.namespace!r}")

    @property
    def stored(self) -> str:
        """The token as stored: the namespace, then the value (at most 100 characters)."""
        return f"{self.namespace}:{self.value}"[:100]


def submission_key(token: SubmissionKey | str | None) -> SubmissionKey | None:
    """``token`` as a :class:`SubmissionKey` (a plain string is an ``app`` token)."""
    if not token:
        return None
    if isinstance(token, SubmissionKey):
        return token
    return SubmissionKey("app", str(token))


class SubmissionConflict(ValidationError):
    """A token seen before, but for another kind of record, endpoint, patient or namespace
    (or a record that is gone): refused, never answered with the stored object.

    The API answers 409 (:func:`speciosa.api.errors.api_exception_handler`); a web form shows
    the message (under ``token``)."""

    MESSAGE = ("This submission token was already used for a different request. "
               "Send a new token (a new Idempotency-Key, or reload the form) for a new submission.")

    def __init__(self, detail: str = ""):
        super().__init__({"token": self.MESSAGE + (f" ({detail})" if detail else "")},
                         code="submission_conflict")


class SubmissionBodyMismatch(SubmissionConflict):
    """A token seen before with the same bindings but a different request body: refused
    (the API answers 422), never answered with the first request's object. A web form's
    token sent again with other values (the browser's back button keeps the token) gets
    :attr:`WEB_MESSAGE`."""

    MESSAGE = ("This Idempotency-Key was already used with a different request body. A retry "
               "must send the same body; send a new key for a new submission.")
    WEB_MESSAGE = ("This form was already saved with other values, so nothing was saved now. "
                   "To change what was saved, correct that entry (its history keeps both); "
                   "for another entry, open the form again.")

    def __init__(self, detail: str = "", *, web: bool = False):
        if web:
            ValidationError.__init__(self, {"token": self.WEB_MESSAGE},
                                     code="submission_conflict")
        else:
            super().__init__(detail)


def _label(model: type) -> str:
    return model._meta.label


def _check(seen: Submission, key: SubmissionKey, kind: str | None, model: type,
           patient: Patient | None):
    """The object ``seen`` created, if the replay matches every binding; else
    :class:`SubmissionConflict`."""
    mismatches = []
    if seen.namespace != key.namespace:
        mismatches.append("namespace")
    if seen.endpoint != key.endpoint:
        mismatches.append("endpoint")
    if kind is not None and seen.kind != kind:
        mismatches.append("kind")
    if seen.model != _label(model):
        mismatches.append("record type")
    if patient is not None and seen.patient_id != patient.pk:
        mismatches.append("patient")
    if mismatches:
        raise SubmissionConflict("different " + ", ".join(mismatches))
    if key.fingerprint and seen.fingerprint and key.fingerprint != seen.fingerprint:
        raise SubmissionBodyMismatch(web=key.namespace == "web")
    if seen.object_id is None:
        raise SubmissionConflict("its first request did not finish")
    obj = model.objects.filter(pk=seen.object_id).first()
    owner = getattr(obj, "patient_id", None)
    if obj is None or (seen.patient_id is not None and owner is not None and owner != seen.patient_id):
        raise SubmissionConflict("the record it made is not this patient's")
    return obj


def once(user, token: SubmissionKey | str | None, kind: str, create: Callable[[], T], *,
         model: type, patient: Patient | None = None) -> tuple[T, bool]:
    """Run ``create`` in one transaction unless ``token`` was already used.

    Returns ``(object, created)``. A second submission with the same token (double tap,
    retry, or the same request racing itself: the unique submission row decides) returns
    the first one's object, read again as ``model``, with ``created`` False, but only if the
    replay matches everything the first submission was bound to: the user (tokens are the
    user's own), the namespace, the endpoint, ``kind``, ``model`` and ``patient``; anything
    else raises :class:`SubmissionConflict` and returns nothing.

    Parameters
    ----------
    user : User
        Tokens are the user's own: another user's equal token is another submission.
    token : SubmissionKey, str or None
        The submission token (see :class:`SubmissionKey`; a plain string is an ``app``
        token); None runs ``create`` without a record of it.
    kind : str
        What is created (``"note"``, ``"diary"``, ``"correction"``...).
    create : callable
        Makes the object (and its audit entries); runs inside the transaction.
    model : model class
        The class of the object ``create`` returns.
    patient : Patient, optional
        Whose record the submission writes to.
    """
    key = submission_key(token)
    if key is None:
        with transaction.atomic():
            return create(), True
    seen = Submission.objects.filter(token=key.stored, user=user).first()
    if seen is not None:  # a retry of a submission that already went through
        return _check(seen, key, kind, model, patient), False
    try:
        with transaction.atomic():
            submission = Submission.objects.create(
                token=key.stored, user=user, kind=kind, namespace=key.namespace,
                endpoint=key.endpoint[:200], model=_label(model), patient=patient,
                fingerprint=key.fingerprint)
            obj = create()
            submission.object_id = obj.pk
            submission.save(update_fields=["object_id"])
            return obj, True
    except IntegrityError:
        existing = Submission.objects.filter(token=key.stored, user=user).first()
        if existing is None:
            raise
        return _check(existing, key, kind, model, patient), False


def replayed(user, token: SubmissionKey | str | None, *, model: type[T], kind: str | None = None,
             patient: Patient | None = None) -> T | None:
    """The object an earlier submission with ``token`` created, or None (a first submission).

    For callers that must answer a retry before validating it again (a correction whose
    record has since been superseded by that very correction, the API's replays). The
    bindings are checked as in :func:`once`: a mismatch raises :class:`SubmissionConflict`."""
    key = submission_key(token)
    if key is None:
        return None
    seen = Submission.objects.filter(token=key.stored, user=user).first()
    if seen is None:
        return None
    return _check(seen, key, kind, model, patient)


def create_record(user, token: SubmissionKey | str | None, kind: str, model: type[T], patient: Patient,
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


def new_version(record, user, fields: Mapping[str, Any], *, action: str, reason: str,
                patient: Patient, changed: str | None = None):
    """Inside a transaction: mark ``record`` superseded and store its next version, a copy
    with ``fields`` changed, entered by ``user`` with ``reason``, audited as ``action``
    (a medication's stop, change or confirmation; a treatment episode's). ``changed`` is the
    message when another change got there first."""
    model = type(record)
    locked = model.objects.select_for_update().get(pk=record.pk)
    if locked.superseded or locked.retracted:
        raise ValidationError({"__all__": changed or gettext(
            "This entry was changed since; open the current one.")})
    before = snapshot(locked)
    locked.superseded = True
    locked.save(update_fields=["superseded"])
    keep = {f.name: getattr(locked, f.name) for f in model._meta.concrete_fields
            if f.name not in ("id", "superseded", "retracted", "replaces", "entered_at",
                              "entered_by", "change_reason")}
    keep.update(fields)
    new = model.objects.create(**{**keep, "entered_by": user, "entered_at": timezone.now(),
                                  "replaces": locked, "change_reason": reason[:500]})
    audit(user, action, new, patient=patient, before=before, after=snapshot(new), reason=reason)
    return new


def next_course(record, user, patient: Patient, *, stop: Mapping[str, Any],
                fields: Mapping[str, Any], reason: str, changed: str | None = None):
    """Inside a transaction: a change of a course (a medication's dose, a treatment episode's):
    ``record``'s next version stops with ``stop`` (its end, status, ...) and the reason
    "changed: ...", and the next course, ``fields``, starts following it, entered by ``user``
    as the clinician's, audited. Returns the new course."""
    stopped = new_version(record, user, {**stop, "stop_reason": f"changed: {reason}"[:200]},
                          action=Action.STOP, reason=f"changed: {reason}", patient=patient,
                          changed=changed)
    new = type(record).objects.create(patient=patient, entered_by=user, source=Source.CLINICIAN,
                                      follows=stopped, change_reason=reason[:500], **fields)
    audit(user, Action.CREATE, new, patient=patient, after=snapshot(new), reason=reason)
    return new


# --------------------------------------------------------------------------- time checks

#: The largest primary key a database column holds (a 64-bit signed integer).
MAX_PK = 2**63 - 1


def record_of(model: type[T], patient: Patient, pk: Any, *, field: str, missing: str,
              related: tuple[str, ...] = ("patient__site",)) -> T:
    """The row ``pk`` of ``model`` in ``patient``'s record (any version), for a page or an
    endpoint that names one by id. Another patient's id, a row that does not exist, and an
    id that is no id (a bool, text, a number beyond the column's range) get the same
    answer, so that nothing is disclosed and nothing reaches the database that it would
    refuse with an error.

    Raises
    ------
    ValidationError
        ``missing`` under ``field``."""
    try:
        if isinstance(pk, bool):
            raise ValueError
        number = int(pk)
        if not 0 < number <= MAX_PK:
            raise ValueError
        return model.objects.select_related(*related).get(pk=number, patient=patient)
    except (model.DoesNotExist, TypeError, ValueError, OverflowError):
        raise ValidationError({field: missing}) from None


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


def earliest_date(patient: Patient) -> dt.date:
    """The earliest plausible date of ``patient``'s clinical records: ``DAYS_BEFORE_CARE``
    (a setting, default 365) days before entry into care."""
    from django.conf import settings

    try:
        return patient.in_care_since - dt.timedelta(days=settings.DAYS_BEFORE_CARE)
    except OverflowError:
        return dt.date.min


def in_window(patient: Patient, when: dt.date | dt.datetime, field: str) -> None:
    """Refuse a clinical date (or time) outside the plausible window: from
    :func:`earliest_date` to now (a time may be :data:`CLOCK_SKEW` ahead).

    Raises
    ------
    ValidationError
        Under ``field``, saying which dates are accepted.
    """
    from django.conf import settings

    earliest = earliest_date(patient)
    if isinstance(when, dt.datetime):
        if timezone.is_naive(when):
            raise ValidationError({field: "Give the time with its time zone."})
        try:
            day = timezone.localdate(when)
        except OverflowError:  # year 1 or 9999 moved across midnight by the time zone
            day = when.date()
        late = when > timezone.now() + CLOCK_SKEW
    else:
        day, late = when, when > timezone.localdate()
    if day < earliest or late:
        raise ValidationError({field: (
            f"{day.isoformat()} is outside the dates this record accepts: from "
            f"{earliest.isoformat()} ({settings.DAYS_BEFORE_CARE} days before entry into care on "
            f"{patient.in_care_since.isoformat()}) to today. Check the year.")
            if day < earliest else
            gettext("This time is in the future; give the time it happened.")})


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
