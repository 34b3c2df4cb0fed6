"""Reminder preferences, push devices, the delivery run and the delivery log.

Writes check access with :mod:`speciosa.clinic.access` (the patient's own login only: a
clinician reads the log and the preferences, never changes them), run once per submission
token, and are audited. A preference the patient cannot have is refused with the field named
and nothing stored.

The delivery run (:func:`remind`, from the periodic task) reads the patient's due items
(:func:`speciosa.schedules.services.due_items`), works out when each one's reminder goes out
(:mod:`.timing`), and for each channel claims one :class:`~.models.Delivery` row per delivery
key ``(patient, item, due_at, channel)`` before sending: the claim is committed on its own, so
a retried or duplicated run that finds it sends nothing. What is ready at once goes in one
message per channel (the text is the same for every item).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext, pgettext

from speciosa.clinic import access, rule_settings, writes
from speciosa.clinic.models import AuditEntry, DiaryDay, Patient, Role
from speciosa.clinic.numbers import local_number
from speciosa.schedules import due
from speciosa.schedules import services as sservices

from . import channels, timing
from .models import CHANNEL_LABELS, CHANNELS, Delivery, Preference, PushDevice

log = logging.getLogger(__name__)

#: A delivery that failed in a way that may pass is tried again at later runs, this many
#: attempts in all.
MAX_ATTEMPTS = 3
#: The default time of day offered on the preferences page.
DEFAULT_TIME = dt.time(18, 0)
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_B64URL = re.compile(r"^[A-Za-z0-9_\-]+=*$")


# --------------------------------------------------------------------------- preferences

def preference(patient: Patient) -> Preference | None:
    return Preference.objects.filter(patient=patient).first()


def zone_of(patient: Patient, pref: Preference | None) -> dt.tzinfo:
    """The patient's reminder zone: theirs, else the site's (the diary's)."""
    if pref is not None and pref.time_zone:
        try:
            return zoneinfo.ZoneInfo(pref.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    return sservices.time_zone(patient)


def timing_prefs(patient: Patient, pref: Preference) -> timing.Prefs:
    return timing.Prefs(pref.time_of_day, zone_of(patient, pref), pref.quiet_start, pref.quiet_end)


def _time(value: Any, field: str, label: str, *, required: bool) -> dt.time | None:
    if isinstance(value, dt.time):
        return value.replace(second=0, microsecond=0, tzinfo=None)
    text = str(value or "").strip()
    if not text:
        if required:
            raise ValidationError({field: gettext("Give %(what)s as HH:MM, e.g. 18:00.") % {
                "what": label}})
        return None
    try:
        parsed = dt.time.fromisoformat(text)
    except ValueError:
        raise ValidationError({field: gettext(
            "'%(text)s' is not a time: give %(what)s as HH:MM, e.g. 18:00.") % {
                "text": text, "what": label}}) from None
    return parsed.replace(second=0, microsecond=0, tzinfo=None)


def _quiet_length(start: dt.time, end: dt.time) -> dt.timedelta:
    s = dt.timedelta(hours=start.hour, minutes=start.minute)
    e = dt.timedelta(hours=end.hour, minutes=end.minute)
    return (e - s) % dt.timedelta(days=1)


def clean_preferences(patient: Patient, data: Mapping[str, Any]) -> dict[str, Any]:
    """The preference fields from ``data`` (a form's or the API's), or a ValidationError with
    a message per field saying what to fix."""
    errors: dict[str, str] = {}

    def take(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            for k, v in exc.message_dict.items():
                errors.setdefault(k, v[0])
            return None

    stopped = bool(data.get("stopped"))
    out: dict[str, Any] = {"stopped": stopped}
    out["time_of_day"] = take(_time, data.get("time_of_day"), "time_of_day",
                              pgettext("give ... as HH:MM", "the time for your reminders"),
                              required=True)
    zone = str(data.get("time_zone") or "").strip()
    if zone:
        try:
            zoneinfo.ZoneInfo(zone)
            if len(zone) > 64:
                raise ValueError
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = gettext(
                "'%(zone)s' is not a time zone this server knows: choose one from the list, e.g. "
                "America/New_York.") % {"zone": zone[:64]}
            zone = ""
    out["time_zone"] = zone
    qs = take(_time, data.get("quiet_start"), "quiet_start",
              pgettext("give ... as HH:MM", "the start of quiet hours"), required=False)
    qe = take(_time, data.get("quiet_end"), "quiet_end",
              pgettext("give ... as HH:MM", "the end of quiet hours"), required=False)
    if (qs is None) != (qe is None) and "quiet_start" not in errors and "quiet_end" not in errors:
        errors["quiet_end" if qe is None else "quiet_start"] = (
            gettext("Give both the start and the end of quiet hours, or neither."))
    elif qs is not None and qe is not None:
        if qs == qe:
            errors["quiet_end"] = gettext(
                "Quiet hours end when they start: leave both empty for none.")
        elif _quiet_length(qs, qe) > timing.MAX_QUIET:
            hours = int(timing.MAX_QUIET.total_seconds() // 3600)
            errors["quiet_end"] = gettext(
                "Quiet hours can be at most %(most)s hours long (these are %(hours)s).") % {
                    "most": hours,
                    "hours": local_number(f"{_quiet_length(qs, qe).total_seconds() / 3600:g}")}
        elif out["time_of_day"] is not None:
            probe = timing.Prefs(out["time_of_day"], dt.UTC, qs, qe)
            moment = dt.datetime.combine(dt.date(2026, 1, 15), out["time_of_day"], tzinfo=dt.UTC)
            if timing.in_quiet(probe, moment):
                errors["time_of_day"] = gettext(
                    "%(time)s is in your quiet hours (%(start)s to %(end)s): choose a time "
                    "outside them.") % {"time": f"{out['time_of_day']:%H:%M}",
                                        "start": f"{qs:%H:%M}", "end": f"{qe:%H:%M}"}
    out["quiet_start"], out["quiet_end"] = qs, qe
    for c in CHANNELS:
        out[c] = bool(data.get(c))
    number = re.sub(r"[\s().-]", "", str(data.get("sms_number") or ""))
    if number and not E164.match(number):
        errors["sms_number"] = gettext(
            "Give the mobile number with its country code, e.g. +1 555 123 4567.")
    elif out["sms"] and not number:
        errors["sms_number"] = gettext("Give the mobile number for SMS reminders, or untick SMS.")
    out["sms_number"] = number
    user = patient.user
    if out["email"] and not (user is not None and user.email):
        errors["email"] = gettext("Your login has no e-mail address: ask your care team to "
                                  "add one, or choose another way.")
    if not stopped and not any(out[c] for c in CHANNELS):
        errors["channels"] = gettext(
            "Choose at least one way to be reminded, or tick 'Stop all reminders'.")
    if errors:
        raise ValidationError(errors)
    return out


def _snapshot(pref: Preference | None) -> dict[str, Any] | None:
    if pref is None:
        return None
    def t(v: dt.time | None) -> str | None:
        return v.strftime("%H:%M") if v is not None else None

    return {"time_of_day": t(pref.time_of_day), "time_zone": pref.time_zone,
            "quiet_start": t(pref.quiet_start), "quiet_end": t(pref.quiet_end),
            "push": pref.push, "email": pref.email, "sms": pref.sms,
            "sms_number": pref.sms_number, "stopped": pref.stopped}


def _own(user, patient: Patient) -> None:
    if not (access.has_role(user, Role.PATIENT) and patient.user_id == user.pk):
        raise Http404("No such patient.")


def save_preferences(user, patient: Patient, data: Mapping[str, Any], *,
                     token: writes.SubmissionKey | str | None = None) -> Preference:
    """Store the patient's preferences (their own login only), audited with before and after;
    once per token."""
    _own(user, patient)
    fields = clean_preferences(patient, data)

    def store() -> Preference:
        pref = Preference.objects.select_for_update().filter(patient=patient).first()
        before = _snapshot(pref)
        if pref is None:
            pref = Preference(patient=patient, **fields)
        else:
            for k, v in fields.items():
                setattr(pref, k, v)
        pref.updated_at = timezone.now()
        pref.save()
        writes.audit(user, AuditEntry.Action.CREATE if before is None else AuditEntry.Action.CORRECT,
                     pref, patient=patient, before=before, after=_snapshot(pref),
                     reason="reminder preferences")
        return pref

    pref, _ = writes.once(user, token, "reminder-preferences", store, model=Preference,
                          patient=patient)
    return pref


# --------------------------------------------------------------------------- push devices

def devices(patient: Patient) -> list[PushDevice]:
    return list(PushDevice.objects.filter(patient=patient))


def subscribe(user, patient: Patient, data: Any) -> PushDevice:
    """Store a browser's push subscription (``PushSubscription.toJSON()``: ``endpoint`` and
    ``keys`` ``p256dh`` and ``auth``) for the patient; the same endpoint again updates it."""
    _own(user, patient)
    if not isinstance(data, Mapping):
        raise ValidationError({"subscription": "Send the subscription as a JSON object."})
    endpoint = data.get("endpoint")
    keys = data.get("keys") if isinstance(data.get("keys"), Mapping) else {}
    errors = {}
    if not isinstance(endpoint, str) or not endpoint.startswith("https://") or len(endpoint) > 1000:
        errors["endpoint"] = "The push endpoint must be an https:// address (at most 1000 characters)."
    for name, limit in (("p256dh", 200), ("auth", 100)):
        v = keys.get(name)
        if not isinstance(v, str) or not v or len(v) > limit or not _B64URL.match(v):
            errors[f"keys.{name}"] = f"keys.{name} must be the browser's base64url key."
    if errors:
        raise ValidationError(errors)
    label = str(data.get("label") or "")[:120]
    with transaction.atomic():
        device = PushDevice.objects.select_for_update().filter(endpoint=endpoint).first()
        created = device is None or device.patient_id != patient.pk
        if device is None:
            device = PushDevice(endpoint=endpoint)
        device.patient, device.p256dh, device.auth = patient, keys["p256dh"], keys["auth"]
        device.label = label or device.label
        device.save()
        if created:
            writes.audit(user, AuditEntry.Action.CREATE, device, patient=patient,
                         after={"label": device.label}, reason="push device")
    return device


def remove_device(user, patient: Patient, device_id) -> None:
    """Remove one of the patient's devices; another patient's is a 404."""
    _own(user, patient)
    with transaction.atomic():
        device = PushDevice.objects.select_for_update().filter(patient=patient, pk=device_id).first()
        if device is None:
            raise Http404("No such device.")
        writes.audit(user, AuditEntry.Action.RETRACT, device, patient=patient,
                     before={"label": device.label}, reason="push device removed")
        device.delete()


# --------------------------------------------------------------------------- when

@dataclass(frozen=True)
class Candidate:
    """A reminder to send: the plan line ``item``, the occurrence's ``due_on`` and ``due_at``
    (the delivery key's date), and ``send_at``."""

    item: str
    due_on: dt.date
    due_at: dt.datetime
    send_at: dt.datetime


def diary_gap_days() -> int:
    return int(rule_settings.in_force()["diary_gap_days"])


def candidates(patient: Patient, pref: Preference, at: dt.datetime) -> list[Candidate]:
    """The reminders due for ``patient`` at ``at``, sent or not: each open plan item's, with
    the diary's brought forward before the missed-diary alert; and, when the plan holds no
    open diary line, one reminder per diary gap on the day before that alert could fire."""
    tprefs = timing_prefs(patient, pref)
    site_tz = sservices.time_zone(patient)
    today = at.astimezone(site_tz).date()
    gap = diary_gap_days()
    last = (DiaryDay.objects.filter(patient=patient, day__lte=today).order_by("-day")
            .values_list("day", flat=True).first())
    alert_at = timing.diary_alert_at(last, gap, site_tz) if last is not None and gap >= 2 else None
    out = []
    diary_open = False
    for row in sservices.due_items(patient, at, include=("due", "overdue")):
        if row.item.instrument == due.DIARY:
            diary_open = True
            when = timing.diary_send_at(row.due_on, row.due_at, tprefs, alert_at)
        else:
            when = timing.send_at(row.due_on, row.due_at, tprefs)
        out.append(Candidate(row.item.key, row.due_on, row.due_at, when))
    if not diary_open and alert_at is not None and today > last:
        due_on = last + dt.timedelta(days=1)
        due_at = due.local_midnight(due_on, site_tz)
        remind_on = last + dt.timedelta(days=gap - 1)
        when = timing.diary_send_at(remind_on, due.local_midnight(remind_on, site_tz), tprefs,
                                    alert_at)
        out.append(Candidate(due.DIARY, due_on, due_at, max(when, due_at)))
    return out


# --------------------------------------------------------------------------- sending

def _key(patient: Patient, c: Candidate, channel: str) -> dict[str, Any]:
    return {"patient": patient, "item": c.item, "due_at": c.due_at, "channel": channel}


def _hold(patient: Patient, c: Candidate, channel: str, status: str, at: dt.datetime) -> bool:
    """Log that the reminder is held (quiet hours, opted out), unless it was claimed already.
    Returns whether a row was written."""
    key = _key(patient, c, channel)
    try:
        with transaction.atomic():
            Delivery.objects.create(**key, status=status, created_at=at, updated_at=at)
            return True
    except IntegrityError:
        pass
    held = (Delivery.Status.QUIET, Delivery.Status.OPTED_OUT)
    return bool(Delivery.objects.filter(**key, status__in=held).exclude(status=status)
                .update(status=status, updated_at=at))


def _claim(patient: Patient, c: Candidate, channel: str, at: dt.datetime) -> Delivery | None:
    """The key's row, claimed for sending by this run (committed before anything is sent), or
    None when it is another run's or done. A new key is an insert (the unique constraint lets
    one run win); a held row, or a failed one with attempts left, a conditional update."""
    key = _key(patient, c, channel)
    try:
        with transaction.atomic():
            return Delivery.objects.create(**key, status=Delivery.Status.SENDING, attempts=1,
                                           created_at=at, updated_at=at)
    except IntegrityError:
        pass
    again = (Q(status__in=(Delivery.Status.QUIET, Delivery.Status.OPTED_OUT))
             | Q(status=Delivery.Status.FAILED, attempts__lt=MAX_ATTEMPTS))
    won = (Delivery.objects.filter(**key).filter(again)
           .update(status=Delivery.Status.SENDING, attempts=F("attempts") + 1, updated_at=at))
    return Delivery.objects.get(**key) if won else None


def _finish(rows: list[Delivery], status: str, detail: str, *, final: bool) -> None:
    now = timezone.now()
    fields: dict[str, Any] = {"status": status, "detail": detail[:200], "updated_at": now}
    if status == Delivery.Status.SENT:
        fields["sent_at"] = now
    if final:
        fields["attempts"] = MAX_ATTEMPTS
    Delivery.objects.filter(pk__in=[r.pk for r in rows], status=Delivery.Status.SENDING).update(**fields)


def remind(patient: Patient, at: dt.datetime | None = None) -> Counter:
    """Send ``patient``'s reminders that are due at ``at`` (default now), at most once per
    delivery key; log each key's outcome. Returns the count of rows by outcome.

    Run outside a transaction (the task is): each claim must be committed before its send."""
    at = at or timezone.now()
    result: Counter = Counter()
    pref = preference(patient)
    if pref is None or patient.user is None or not patient.user.is_active:
        return result  # never set up, or the login was closed (discharged): nothing goes out
    ready = [c for c in candidates(patient, pref, at) if c.send_at <= at]
    if not ready:
        return result
    quiet = timing.in_quiet(timing_prefs(patient, pref), at)
    for channel in CHANNELS:
        if not getattr(pref, channel):
            continue
        if pref.stopped or quiet:
            status = Delivery.Status.OPTED_OUT if pref.stopped else Delivery.Status.QUIET
            result[status] += sum(_hold(patient, c, channel, status, at) for c in ready)
            continue
        # one run at a time claims a patient's keys (the preference row's lock, held only
        # for the claims, which commit before the send): what is ready goes out in one message
        with transaction.atomic():
            Preference.objects.select_for_update().filter(pk=pref.pk).first()
            claimed = [row for row in (_claim(patient, c, channel, at) for c in ready) if row]
        if not claimed:
            continue
        try:
            from speciosa.web.middleware import user_language

            with translation.override(user_language(patient.user) or settings.LANGUAGE_CODE):
                detail = channels.SENDERS[channel](patient, pref)
        except channels.Permanent as exc:
            _finish(claimed, Delivery.Status.FAILED, str(exc), final=True)
            result[Delivery.Status.FAILED] += len(claimed)
            continue
        except (ImproperlyConfigured, ImportError) as exc:  # the server's set-up: will not pass
            log.error("reminder channel not set up", extra={"channel": channel,
                                                            "error": type(exc).__name__})
            _finish(claimed, Delivery.Status.FAILED,
                    f"{CHANNEL_LABELS[channel]} is not set up on this server ({type(exc).__name__})",
                    final=True)
            result[Delivery.Status.FAILED] += len(claimed)
            continue
        except Exception as exc:  # may pass: tried again at a later run (MAX_ATTEMPTS)
            log.warning("reminder not sent", extra={"patient_id": patient.pk, "channel": channel,
                                                    "error": type(exc).__name__})
            _finish(claimed, Delivery.Status.FAILED, f"{type(exc).__name__}: will try again",
                    final=False)
            result[Delivery.Status.FAILED] += len(claimed)
            continue
        _finish(claimed, Delivery.Status.SENT, detail, final=False)
        result[Delivery.Status.SENT] += len(claimed)
    log.info("reminders", extra={"patient_id": patient.pk, **{str(k): v for k, v in result.items()}})
    return result


def patients_with_reminders():
    """The patients who set reminder preferences (stopped ones too: their log says opted out)."""
    return Patient.objects.filter(pk__in=Preference.objects.values("patient_id")).order_by("pk")


# --------------------------------------------------------------------------- reading

def delivery_log(patient: Patient, limit: int = 50, *, tz: dt.tzinfo | None = None
                 ) -> list[dict[str, Any]]:
    """The patient's latest deliveries, newest first, for their page and the clinician's;
    times in ``tz`` (default the site's zone), due days on the site's calendar."""
    site_tz = sservices.time_zone(patient)
    tz = tz or site_tz
    out = []
    for d in Delivery.objects.filter(patient=patient)[:limit]:
        out.append({"row": d, "label": sservices.label(d.item), "when": d.updated_at.astimezone(tz),
                    "due_on": d.due_at.astimezone(site_tz).date(),
                    "channel": CHANNEL_LABELS.get(d.channel, d.channel),
                    "status": d.get_status_display()})
    return out


def summary(patient: Patient) -> dict[str, Any]:
    """The patient page's reminder section: the preferences in words and the log."""
    pref = preference(patient)
    return {"pref": pref, "zone": str(zone_of(patient, pref)) if pref else None,
            "channels": [CHANNEL_LABELS[c] for c in (pref.channels if pref else [])],
            "devices": PushDevice.objects.filter(patient=patient).count(),
            "log": delivery_log(patient, 20)}
