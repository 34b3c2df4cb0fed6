"""Secure messages (issue 16): a round trip between a patient and their care team with unread
counts and read receipts; e-mail notices that say only that a message is waiting, sent once;
the emergency and crisis numbers on every message page; another patient's or another team's
threads a 404; a retried submission stores one message; bad input stores nothing."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from tests.conftest import form_token, verified_login

from speciosa.clinic.models import AuditEntry
from speciosa.messaging import services
from speciosa.messaging.models import Message, MessageRead, Thread

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _on_commit_runs(monkeypatch):
    """The notice task is queued after the commit (``transaction.on_commit``); the test's
    transaction never commits, so the callbacks run at once here."""
    from django.db import transaction

    monkeypatch.setattr(transaction, "on_commit", lambda fn, using=None, robust=False: fn())


def _emails(clinic):
    clinic.patient_a.user.email = "maya@example.org"
    clinic.patient_a.user.save()
    clinic.clinician_a.email = "ada@clinic.example"
    clinic.clinician_a.save()


def _as(user):
    """A client of its own, logged in as ``user`` (the ``login`` fixture shares one)."""
    from django.test import Client

    return verified_login(Client(), user)


def _nav_count(page: str) -> str | None:
    m = re.search(r'>Messages(?: <span class="badge warn">(\d+)</span>)?</a>', page)
    assert m, "no Messages link in the navigation"
    return m.group(1)


def test_a_message_round_trip_with_unread_counts_receipts_and_notices(clinic, login, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _emails(clinic)
    maya, ada = clinic.patient_a, clinic.clinician_a
    patient = _as(maya.user)
    response = patient.post("/me/messages/", {"token": form_token("m1"), "subject": "My dose",
                                              "body": "I slept badly after the taper step."})
    assert response.status_code == 302
    thread = Thread.objects.get()
    assert response.url == f"/me/messages/{thread.pk}/"
    # the care team is told that a message is waiting, and nothing else
    [notice] = mail.outbox
    assert notice.to == ["ada@clinic.example"]
    text = (notice.subject + notice.body).lower()
    for secret in ("kratom", "taper", "slept", "maya", "quinn", "my dose"):
        assert secret not in text, secret

    clinician = _as(ada)
    assert _nav_count(clinician.get("/worklist/").content.decode()) == "1"
    inbox = clinician.get("/messages/").content.decode()
    assert "My dose" in inbox and "1 new" in inbox and "Maya Quinn" in inbox
    page = clinician.get(f"/messages/{thread.pk}/").content.decode()
    assert "I slept badly after the taper step." in page
    assert MessageRead.objects.filter(user=ada).count() == 1
    assert AuditEntry.objects.filter(user=ada, action="view", patient=maya).exists()
    assert _nav_count(clinician.get("/worklist/").content.decode()) is None
    clinician.post(f"/messages/{thread.pk}/", {"token": form_token("r1"),
                                               "body": "Thank you. Let us talk on Monday."})
    assert mail.outbox[-1].to == ["maya@example.org"]
    assert "Monday" not in mail.outbox[-1].body

    # the patient sees the reply as new, and that their own message was read
    assert _nav_count(patient.get("/me/").content.decode()) == "1"
    page = patient.get(f"/me/messages/{thread.pk}/").content.decode()
    assert "Thank you. Let us talk on Monday." in page
    assert "Read by your care team" in page
    assert _nav_count(patient.get("/me/").content.decode()) is None
    # and the clinician sees that the patient read the reply
    assert "Read by Maya" in clinician.get(f"/messages/{thread.pk}/").content.decode()
    assert Message.objects.count() == 2
    created = AuditEntry.objects.filter(action="create", model="Message")
    assert created.count() == 2


def test_every_message_page_shows_that_messages_are_not_watched_and_the_numbers(clinic, login):
    site = clinic.patient_a.site
    site.country, site.clinic_phone = "GB", "020 7946 0000"
    site.save()
    thread = services.start_thread(clinic.clinician_a, clinic.patient_a, "Hello", "How are you?")
    patient = login(clinic.patient_a.user)
    for url in ("/me/messages/", f"/me/messages/{thread.pk}/"):
        page = patient.get(url).content.decode()
        assert "Messages are not watched around the clock" in page, url
        assert 'href="tel:999"' in page and "020 7946 0000" in page, url  # the site's country


def test_a_retried_message_is_stored_once_and_a_bad_one_not_at_all(clinic, login, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _emails(clinic)
    patient = login(clinic.patient_a.user)
    data = {"token": form_token("same"), "subject": "Twice", "body": "Sent on a bad connection"}
    first = patient.post("/me/messages/", data)
    again = patient.post("/me/messages/", data)
    assert first.url == again.url
    assert Thread.objects.count() == 1 and Message.objects.count() == 1
    assert len(mail.outbox) == 1
    for bad, field_error in (({"subject": "", "body": "x"}, "Give the conversation a subject"),
                             ({"subject": "s", "body": "   "}, "Write your message"),
                             ({"subject": "s", "body": "x" * 4001}, "at most 4,000 characters")):
        response = patient.post("/me/messages/", {"token": form_token(str(bad)), **bad})
        assert response.status_code == 200
        page = response.content.decode()
        assert field_error in page or "Ensure this value has at most" in page, bad
    assert Thread.objects.count() == 1 and Message.objects.count() == 1


def test_another_patients_and_another_teams_threads_are_404(clinic, login):
    theirs = services.start_thread(clinic.patient_b.user, clinic.patient_b, "team B only",
                                   "team B only")
    mine = services.start_thread(clinic.patient_a.user, clinic.patient_a, "mine", "mine")
    for user, url in ((clinic.patient_a.user, f"/me/messages/{theirs.pk}/"),
                      (clinic.clinician_a, f"/messages/{theirs.pk}/"),
                      (clinic.clinician_b, f"/messages/{mine.pk}/"),
                      (clinic.clinician_a, f"/patients/{clinic.patient_b.pk}/messages/new/")):
        client = login(user)
        for method in ("get", "post"):
            response = getattr(client, method)(url, {"token": form_token(url + method),
                                                     "body": "x", "subject": "x"})
            assert response.status_code == 404, (user, method, url)
            assert "team B only" not in response.content.decode()
    assert "team B only" not in login(clinic.clinician_a).get("/messages/").content.decode()
    assert Message.objects.count() == 2
    # researchers and administrators have no messages at all
    for user in (clinic.researcher, clinic.admin):
        assert login(user).get("/messages/").status_code in (403, 404)
        with pytest.raises(Exception):  # noqa: B017 - Http404 from the service
            services.start_thread(user, clinic.patient_a, "s", "b")


def test_a_retried_notice_task_sends_nothing_twice(clinic, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    _emails(clinic)
    thread = services.start_thread(clinic.clinician_a, clinic.patient_a, "Hello", "How are you?")
    message = thread.messages.get()
    assert len(mail.outbox) == 1  # sent by the task after the commit (eager here)
    assert services.notify(message.pk) == 0
    assert len(mail.outbox) == 1
