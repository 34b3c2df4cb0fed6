"""Writing and reading messages: access, validation, idempotency, audit, read receipts and
the notice e-mail (see :mod:`speciosa.messaging`)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mass_mail
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from speciosa.clinic import access, writes
from speciosa.clinic.models import Patient, Role

from .models import Message, MessageRead, Thread

log = logging.getLogger(__name__)

SUBJECT_MAX = 120
BODY_MAX = 4000

#: The notice e-mail: that a message is waiting, nothing else (42 CFR Part 2: no clinical
#: content, no name, not the word kratom).
#: Each recipient reads it in their own language (their login's, docs/translation.md).
NOTICE_SUBJECT = gettext_noop("A new message in Speciosa")
NOTICE_BODY = gettext_noop("You have a new message in Speciosa. Log in to read it.\n\n"
                           "This e-mail is sent automatically; do not reply to it.")


def _allowed(user, patient: Patient) -> bool:
    """The patient's own login, or a clinician of the patient's care team."""
    return (access.has_role(user, Role.PATIENT) or access.has_role(user, Role.CLINICIAN)) \
        and access.can_view_patient(user, patient)


def threads_for(user):
    """The threads ``user`` may read (their own as a patient; their care teams' patients'
    as a clinician)."""
    if not (access.has_role(user, Role.PATIENT) or access.has_role(user, Role.CLINICIAN)):
        return Thread.objects.none()
    return Thread.objects.filter(patient__in=access.visible_patients(user))


def thread_for(user, thread_id) -> Thread:
    """One thread ``user`` may read; anyone else's is a 404."""
    thread = threads_for(user).select_related("patient__site").filter(pk=thread_id).first()
    if thread is None:
        raise Http404("No such conversation.")
    return thread


def _incoming(user) -> Q:
    """Messages written to ``user``: the care team's to a patient, the patient's to a clinician."""
    return Q(from_patient=not access.has_role(user, Role.PATIENT))


def unread(user):
    """Messages to ``user`` they have not read."""
    return (Message.objects.filter(thread__in=threads_for(user)).filter(_incoming(user))
            .exclude(author=user)
            .exclude(Exists(MessageRead.objects.filter(message=OuterRef("pk"), user=user))))


def inbox(user):
    """``user``'s threads, newest first, each with ``unread_count`` and ``message_count``."""
    waiting = unread(user).values("pk")
    return (threads_for(user).select_related("patient")
            .annotate(unread_count=Count("messages", filter=Q(messages__pk__in=waiting),
                                         distinct=True),
                      message_count=Count("messages", distinct=True))
            .order_by("-last_message_at", "-id"))


def _body(text) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"body": gettext("Write your message before sending.")})
    if len(text) > BODY_MAX:
        raise ValidationError({"body": gettext(
            "A message can be at most %(max)s characters; this one has %(n)s. Split it in two.")
            % {"max": f"{BODY_MAX:,}", "n": f"{len(text):,}"}})
    return text


def _subject(text) -> str:
    text = " ".join((text or "").split())
    if not text:
        raise ValidationError({"subject": gettext(
            "Give the conversation a subject, e.g. 'Question about my medicines'.")})
    if len(text) > SUBJECT_MAX:
        raise ValidationError({"subject": gettext("Keep the subject to %(max)s characters.")
                              % {"max": SUBJECT_MAX}})
    return text


def _message(user, thread: Thread, body: str) -> Message:
    now = timezone.now()
    message = Message.objects.create(thread=thread, author=user, body=body, sent_at=now,
                                     from_patient=access.has_role(user, Role.PATIENT))
    Thread.objects.filter(pk=thread.pk).update(last_message_at=now)
    writes.audit(user, writes.Action.CREATE, message, patient=thread.patient,
                 after={"thread": thread.pk, "subject": thread.subject, "body": body},
                 reason="message")
    return message


def _after(message: Message) -> None:
    from speciosa import tasks

    transaction.on_commit(lambda: tasks.notify_message.delay(message.pk))


def start_thread(user, patient: Patient, subject, body, *, token=None) -> Thread:
    """A new conversation about ``patient`` with its first message."""
    if not _allowed(user, patient):
        raise Http404("No such patient.")
    subject, body = _subject(subject), _body(body)

    def create():
        thread = Thread.objects.create(patient=patient, subject=subject, started_by=user)
        _message(user, thread, body)
        return thread

    thread, created = writes.once(user, token, "message-thread", create, model=Thread,
                                  patient=patient)
    if created:
        _after(thread.messages.get())
    return thread


def reply(user, thread: Thread, body, *, token=None) -> Message:
    if not _allowed(user, thread.patient):
        raise Http404("No such conversation.")
    body = _body(body)
    message, created = writes.once(user, token, "message", lambda: _message(user, thread, body),
                                   model=Message, patient=thread.patient)
    if created:
        _after(message)
    return message


def mark_read(user, thread: Thread) -> int:
    """Read receipts for the messages of ``thread`` written to ``user``; a clinician's
    opening of the thread is audited as a view. Returns how many became read."""
    if not _allowed(user, thread.patient):
        raise Http404("No such conversation.")
    new = list(unread(user).filter(thread=thread).values_list("pk", flat=True))
    MessageRead.objects.bulk_create([MessageRead(message_id=pk, user=user) for pk in new],
                                    ignore_conflicts=True)
    if not access.has_role(user, Role.PATIENT):
        from speciosa.clinic import services

        services.record_view(user, thread.patient, "messages")
    return len(new)


def receipts(thread: Thread) -> dict[int, tuple[str, object]]:
    """For each message of ``thread``, who on the other side first read it and when:
    ``{message id: (who, read_at)}``."""
    out: dict[int, tuple[str, object]] = {}
    rows = (MessageRead.objects.filter(message__thread=thread).select_related("user", "message")
            .order_by("read_at"))
    for r in rows:
        if r.message_id in out or r.user_id == r.message.author_id:
            continue
        patient_side = r.user_id == thread.patient.user_id
        if patient_side == r.message.from_patient:
            continue  # read by the same side (a colleague), not the addressee
        who = thread.patient.given_name if patient_side else gettext("your care team")
        out[r.message_id] = (who, r.read_at)
    return out


def recipients(message: Message) -> list[str]:
    """Where the notice of ``message`` goes: the patient's e-mail, or the care team's."""
    patient = message.thread.patient
    if message.from_patient:
        members = patient.care_team.members.filter(is_active=True).exclude(email="")
        return sorted(set(members.values_list("email", flat=True)))
    user = patient.user
    return [user.email] if user is not None and user.is_active and user.email else []


def _notice(language: str) -> tuple[str, str]:
    with translation.override(language):
        return gettext(NOTICE_SUBJECT), gettext(NOTICE_BODY)


def _languages(message: Message, addresses: list[str]) -> list[tuple[str, str]]:
    """Each address with the language of its login (the default when it has none)."""
    from django.contrib.auth import get_user_model

    from speciosa.web.middleware import user_language

    users = {u.email: u for u in get_user_model().objects.filter(email__in=addresses)
             .select_related("profile")}
    return [(a, user_language(users.get(a)) or settings.LANGUAGE_CODE) for a in addresses]


def notify(message_id: int) -> int:
    """E-mail the notice of one message, once (a retried task sends nothing). Returns the
    number of recipients."""
    with transaction.atomic():
        message = (Message.objects.select_for_update().select_related("thread__patient")
                   .filter(pk=message_id).first())
        if message is None or message.notified_at is not None:
            return 0
        addresses = recipients(message)
        if addresses:
            send_mass_mail([(*_notice(language), settings.DEFAULT_FROM_EMAIL, [a])
                            for a, language in _languages(message, addresses)],
                           fail_silently=False)
        message.notified_at = timezone.now()
        message.save(update_fields=["notified_at"])
    log.info("message notice sent", extra={"message_id": message_id, "recipients": len(addresses)})
    return len(addresses)
