"""Sending reminders (speciosa.reminders.services.remind and the tasks): the e-mail in Django's
outbox, the push payload and VAPID claims at pywebpush's boundary, the SMS file backend's
line; once per due item and channel (the task run twice, a retry after the send, a failure
that may pass); quiet hours, opting out, the patient's chosen time; and a missed diary
reminded before the clinician's alert fires (the real sweep)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.core import mail
from django.db import OperationalError
from tests.reminders.conftest import add_device, at_ny, set_prefs, sms_lines, today_ny

from speciosa import tasks
from speciosa.clinic import alerts
from speciosa.clinic.models import Alert, AuditEntry, DiaryDay
from speciosa.knowledge import drugs as kdrugs
from speciosa.knowledge import instruments as kinstruments
from speciosa.reminders import content, services, timing
from speciosa.reminders.models import Delivery

pytestmark = pytest.mark.django_db

TEXT = "You have something to complete in Speciosa."


def statuses(patient):
    return sorted((d.item, d.channel, d.status) for d in Delivery.objects.filter(patient=patient))


# --------------------------------------------------------------------------- channels

def test_the_email_goes_out_at_the_chosen_time_with_only_the_fixed_sentence(patient, vapid):
    set_prefs(patient, time_of_day="18:00")
    day = today_ny()
    assert services.remind(patient, at_ny(day, "17:59")) == {}
    assert mail.outbox == []
    result = services.remind(patient, at_ny(day, "18:00"))
    assert result == {"sent": 2}  # the diary and the PHQ-9, in one e-mail
    assert len(mail.outbox) == 1
    m = mail.outbox[0]
    assert m.to == ["maya@example.org"]
    assert m.subject == "A reminder from Speciosa"
    assert m.body.splitlines()[0] == TEXT
    assert "https://speciosa.clinic.example/me/" in m.body
    assert statuses(patient) == [("diary", "email", "sent"), ("phq9", "email", "sent")]
    row = Delivery.objects.get(patient=patient, item="phq9")
    assert row.due_at == at_ny(day, "00:00") and row.attempts == 1 and row.sent_at is not None


def test_the_push_payload_and_vapid_claims_at_the_webpush_boundary(patient, vapid, pushes):
    private, _public = vapid
    set_prefs(patient, email=False, push=True)
    add_device(patient, 1)
    add_device(patient, 2)
    at = at_ny(today_ny(), "18:05")
    assert services.remind(patient, at) == {"sent": 2}
    assert len(pushes) == 2  # one per device, one message for both items
    call = pushes[0]
    assert json.loads(call["data"]) == {"title": "Speciosa", "body": TEXT, "url": "/me/",
                                        "tag": "speciosa-reminder"}
    assert call["subscription_info"]["endpoint"] == "https://fcm.googleapis.com/fcm/send/device-1-abc"
    assert call["vapid_private_key"] == private
    claims = call["vapid_claims"]
    assert claims["sub"] == "mailto:care@clinic.example"
    assert claims["aud"] == "https://fcm.googleapis.com"
    assert 11 * 3600 < claims["exp"] - dt.datetime.now(dt.UTC).timestamp() <= 12 * 3600
    assert call["ttl"] == 12 * 3600
    assert Delivery.objects.get(patient=patient, item="diary").detail == "2 of 2 devices"
    assert mail.outbox == []


def test_a_push_subscription_the_service_says_is_gone_is_removed(patient, vapid, monkeypatch):
    import pywebpush
    import requests

    def gone(**kw):
        resp = requests.Response()
        resp.status_code = 410
        raise pywebpush.WebPushException("Push failed: 410 Gone", response=resp)

    monkeypatch.setattr(pywebpush, "webpush", gone)
    set_prefs(patient, email=False, push=True)
    add_device(patient)
    services.remind(patient, at_ny(today_ny(), "18:05"))
    assert services.devices(patient) == []
    row = Delivery.objects.get(patient=patient, item="diary")
    assert (row.status, row.detail, row.attempts) == ("failed", "0 of 1 devices; 1 gone, removed", 3)


def test_the_sms_file_backend_writes_the_sentence_and_the_link(patient, vapid, sms_file):
    set_prefs(patient, email=False, sms=True, sms_number="+1 (555) 123-4567")
    services.remind(patient, at_ny(today_ny(), "18:00"))
    lines = sms_lines(sms_file)
    assert [(x["to"], x["body"]) for x in lines] == [
        ("+15551234567", f"{TEXT} https://speciosa.clinic.example/me/")]


def test_the_console_sms_backend_prints_it(patient, vapid, settings, capsys):
    settings.SPECIOSA_SMS_BACKEND = "speciosa.reminders.sms.ConsoleBackend"
    set_prefs(patient, email=False, sms=True, sms_number="+15551234567")
    services.remind(patient, at_ny(today_ny(), "18:00"))
    assert f"SMS to +15551234567: {TEXT}" in capsys.readouterr().out


def forbidden_words() -> set[str]:
    words = {"kratom", "speciosa mitragyna", "mitragynine", "result", "score", "prolactin",
             "withdrawal", "craving", "dose", "depression", "anxiety", "alcohol", "opioid"}
    for inst in kinstruments.all_instruments():
        words.update({inst.id, inst.label, inst.name})
    for drug in kdrugs.all_drugs():
        words.add(drug.name)
        words.update(drug.synonyms)
        words.update(drug.brands)
    return {w.lower() for w in words if w and len(w) >= 3}


def test_no_channel_payload_holds_a_clinical_word(patient, vapid, pushes, sms_file):
    set_prefs(patient, push=True, email=True, sms=True, sms_number="+15551234567")
    add_device(patient)
    services.remind(patient, at_ny(today_ny(), "18:00"))
    m = mail.outbox[0]
    payloads = {"email": f"{m.subject}\n{m.body}", "push": pushes[0]["data"],
                "sms": sms_lines(sms_file)[0]["body"]}
    forbidden = forbidden_words()
    assert {"kratom", "phq-9", "patient health questionnaire-9", "buprenorphine", "phq9"} <= forbidden
    for channel, text in payloads.items():
        words = set(re.findall(r"[a-z0-9][a-z0-9\-]*", text.lower()))
        lowered = text.lower()
        hits = {w for w in forbidden if (w in words) or (" " in w and w in lowered)}
        assert hits == set(), (channel, hits)
        assert "Maya" not in text and "Quinn" not in text and patient.identifier not in text
    assert content.TEXT == TEXT


# --------------------------------------------------------------------------- once per key

def test_the_task_run_twice_sends_each_item_once(patient, vapid, pushes):
    set_prefs(patient, push=True)
    add_device(patient)
    at = at_ny(today_ny(), "18:30").isoformat()
    assert tasks.send_reminders.delay(at).get() == 1
    assert tasks.send_reminders.delay(at).get() == 1
    tasks.remind_patient.delay(patient.pk, at)  # a duplicated message of the queue
    assert len(mail.outbox) == 1 and len(pushes) == 1
    assert Delivery.objects.filter(patient=patient).count() == 4  # 2 items x 2 channels


def test_a_retry_after_the_send_sends_nothing_again(patient, vapid, monkeypatch):
    """The worker sends the e-mail, then the database goes away before the row says 'sent':
    Celery retries the task (autoretry_for OperationalError); the claimed row stops it."""
    set_prefs(patient)
    real = services._finish
    calls = {"n": 0}

    def flaky(rows, status, detail, *, final):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(rows, status, detail, final=final)

    monkeypatch.setattr(services, "_finish", flaky)
    monkeypatch.setattr(tasks.remind_patient, "retry_backoff", False)
    monkeypatch.setattr(tasks.app.conf, "task_eager_propagates", False)
    result = tasks.remind_patient.apply(args=(patient.pk, at_ny(today_ny(), "18:30").isoformat()))
    assert result.successful() and result.get() == {}  # the retry found the rows claimed
    assert calls["n"] == 1
    assert len(mail.outbox) == 1
    # the rows stay claimed ("sending, not confirmed"): no later run sends them
    services.remind(patient, at_ny(today_ny(), "19:30"))
    assert len(mail.outbox) == 1
    assert {d.status for d in Delivery.objects.filter(patient=patient)} == {"sending"}


def test_a_failure_that_may_pass_is_tried_again_at_the_next_run_up_to_three_times(patient, vapid, monkeypatch):
    set_prefs(patient)
    from django.core.mail.backends.locmem import EmailBackend

    real = EmailBackend.send_messages
    state = {"fail": 2}

    def down(self, messages):
        if state["fail"]:
            state["fail"] -= 1
            raise ConnectionRefusedError("mail server down")
        return real(self, messages)

    monkeypatch.setattr(EmailBackend, "send_messages", down)
    day = today_ny()
    assert services.remind(patient, at_ny(day, "18:00")) == {"failed": 2}
    row = Delivery.objects.get(patient=patient, item="diary")
    assert (row.status, row.attempts, row.detail) == ("failed", 1, "ConnectionRefusedError: will try again")
    assert services.remind(patient, at_ny(day, "18:05")) == {"failed": 2}
    assert services.remind(patient, at_ny(day, "18:10")) == {"sent": 2}
    assert len(mail.outbox) == 1
    assert Delivery.objects.get(patient=patient, item="diary").attempts == 3
    assert services.remind(patient, at_ny(day, "18:15")) == {}


def test_a_delivery_key_is_unique_in_the_database(patient):
    from django.db import IntegrityError, transaction

    at = at_ny(today_ny(), "00:00")
    Delivery.objects.create(patient=patient, item="diary", due_at=at, channel="email", status="sent")
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.create(patient=patient, item="diary", due_at=at, channel="email", status="sending")


# --------------------------------------------------------------------------- what holds it

def test_quiet_hours_hold_a_reminder_and_it_goes_out_when_they_end(patient, vapid):
    """An overdue PHQ-9 reminder becomes due in the night (the task was down at 18:00):
    logged 'skipped: quiet hours', sent at 07:00."""
    set_prefs(patient, time_of_day="18:00", quiet_start="22:00", quiet_end="07:00")
    day = today_ny() + dt.timedelta(days=1)  # PHQ-9 (from yesterday's start) is overdue
    DiaryDay.objects.create(patient=patient, day=day - dt.timedelta(days=1))
    DiaryDay.objects.create(patient=patient, day=day)
    night = at_ny(day, "23:30")
    assert services.remind(patient, night) == {"quiet": 1}
    assert statuses(patient) == [("phq9", "email", "quiet")]
    assert mail.outbox == []
    morning = at_ny(day + dt.timedelta(days=1), "07:00")
    result = services.remind(patient, morning)
    assert result["sent"] == 1
    row = Delivery.objects.get(patient=patient, item="phq9")
    assert row.status == "sent" and row.attempts == 1


def test_a_patient_who_stops_all_reminders_gets_none_and_the_log_says_opted_out(patient, vapid, pushes):
    set_prefs(patient, push=True, stopped=True)
    add_device(patient)
    assert services.remind(patient, at_ny(today_ny(), "18:30")) == {"opted-out": 4}
    assert mail.outbox == [] and pushes == []
    assert {d.status for d in Delivery.objects.filter(patient=patient)} == {"opted-out"}
    # starting them again the same evening sends the held ones, once
    set_prefs(patient, push=True, stopped=False)
    assert services.remind(patient, at_ny(today_ny(), "18:35")) == {"sent": 4}
    assert len(mail.outbox) == 1 and len(pushes) == 1


def test_a_patient_without_preferences_gets_nothing(patient, vapid):
    assert services.remind(patient, at_ny(today_ny(), "18:30")) == {}
    assert mail.outbox == [] and not Delivery.objects.exists()


def test_a_completed_item_is_not_reminded(patient, vapid):
    set_prefs(patient)
    DiaryDay.objects.create(patient=patient, day=today_ny())
    assert services.remind(patient, at_ny(today_ny(), "18:30")) == {"sent": 1}
    assert statuses(patient) == [("phq9", "email", "sent")]


def test_the_chosen_time_is_read_in_the_patients_own_zone(patient, vapid):
    # the site is in New York; the patient lives in Los Angeles and chose 18:00 there
    set_prefs(patient, time_of_day="18:00", time_zone="America/Los_Angeles")
    day = today_ny()
    assert services.remind(patient, at_ny(day, "20:59")) == {}
    assert services.remind(patient, at_ny(day, "21:00")) == {"sent": 2}


def test_an_email_channel_without_an_address_is_logged_failed(patient, vapid):
    set_prefs(patient)
    patient.user.email = ""
    patient.user.save()
    patient.refresh_from_db()
    services.remind(patient, at_ny(today_ny(), "18:30"))
    row = Delivery.objects.get(patient=patient, item="diary")
    assert (row.status, row.detail) == ("failed", "no e-mail address on the patient's login")


# --------------------------------------------------------------------------- before the alert

def _usual_writer(patient, last: dt.date):
    for k in range(28):
        DiaryDay.objects.create(patient=patient, day=last - dt.timedelta(days=k))


@pytest.mark.parametrize("with_plan", [True, False])
def test_a_missed_diary_is_reminded_before_the_clinicians_alert_fires(clinic, patient, vapid, with_plan):
    """A patient who wrote every day up to ``last`` stops. SAF-DIARY-GAP (7 days) fires at
    the first sweep from midnight of last+7; the reminder went out before it. Without the
    diary in the plan the reminder goes out on the day before the alert could fire."""
    from speciosa.schedules.models import PatientPlan

    if not with_plan:
        PatientPlan.objects.filter(patient=patient).update(retracted=True)
    last = today_ny()
    _usual_writer(patient, last)
    set_prefs(patient, time_of_day="20:00", quiet_start="22:00", quiet_end="07:00")
    sent_at = None
    tick = at_ny(last, "00:00")
    end = at_ny(last + dt.timedelta(days=8), "00:00")
    while tick < end:  # every 15 minutes, as the beat would
        services.remind(patient, tick)
        if Delivery.objects.filter(patient=patient, item="diary", status="sent").exists():
            sent_at = tick
            break
        tick += dt.timedelta(minutes=15)
    assert sent_at is not None
    assert mail.outbox[-1].body.startswith(TEXT)
    expected_day = last + dt.timedelta(days=1 if with_plan else 6)
    assert sent_at == at_ny(expected_day, "20:00")
    row = Delivery.objects.get(patient=patient, item="diary", status="sent")
    assert row.due_at == at_ny(last + dt.timedelta(days=1), "00:00")
    # the real rule and sweep: nothing at the reminder, nor a minute before midnight of last+7
    alerts.sweep(as_of=sent_at)
    alerts.sweep(as_of=at_ny(last + dt.timedelta(days=7), "00:00") - dt.timedelta(minutes=1))
    assert not Alert.objects.filter(patient=patient, rule="SAF-DIARY-GAP").exists()
    fires = at_ny(last + dt.timedelta(days=7), "00:00")
    alerts.sweep(as_of=fires)
    assert Alert.objects.filter(patient=patient, rule="SAF-DIARY-GAP").count() == 1
    assert fires - sent_at >= timing.LEAD


def test_preferences_are_audited_with_before_and_after(patient):
    set_prefs(patient, time_of_day="18:00")
    set_prefs(patient, time_of_day="08:15")
    entries = AuditEntry.objects.filter(patient=patient, model="Preference").order_by("pk")
    assert [e.action for e in entries] == ["create", "correct"]
    assert entries[1].before["time_of_day"] == "18:00" and entries[1].after["time_of_day"] == "08:15"
    assert entries[1].user == patient.user


def test_a_patient_whose_login_was_closed_gets_no_reminder(patient, vapid, sms_file):
    set_prefs(patient, sms=True, sms_number="+15551234567")
    patient.user.is_active = False
    patient.user.save()
    patient.refresh_from_db()
    assert services.remind(patient, at_ny(today_ny(), "18:30")) == {}
    assert mail.outbox == [] and sms_lines(sms_file) == [] and not Delivery.objects.exists()


@pytest.mark.parametrize("day,chosen,utc", [
    (dt.date(2027, 3, 14), "02:30", dt.datetime(2027, 3, 14, 7, 0, tzinfo=dt.UTC)),  # skipped: 03:00 EDT
    (dt.date(2027, 11, 7), "01:30", dt.datetime(2027, 11, 7, 5, 30, tzinfo=dt.UTC)),  # twice: the first (EDT)
    (dt.date(2027, 11, 8), "01:30", dt.datetime(2027, 11, 8, 6, 30, tzinfo=dt.UTC)),  # the day after: EST
])
def test_the_reminder_goes_out_at_the_chosen_wall_time_on_a_dst_change_day(clinic, patient, vapid,
                                                                            day, chosen, utc):
    from speciosa.schedules import services as sservices

    sservices.save_plan(clinic.clinician_a, patient, [
        {"instrument": "diary", "every_days": 1, "start": today_ny().isoformat()}], name="Diary")
    set_prefs(patient, time_of_day=chosen)
    assert services.remind(patient, utc - dt.timedelta(minutes=1)) == {}
    assert services.remind(patient, utc) == {"sent": 1}
    row = Delivery.objects.get(patient=patient)
    assert row.item == "diary" and row.due_at == at_ny(day, "00:00")


def test_a_channel_the_server_has_not_set_up_fails_for_good_and_says_so(patient, vapid, settings):
    settings.SPECIOSA_SMS_BACKEND = "nowhere.sms.Backend"
    set_prefs(patient, email=False, sms=True, sms_number="+15551234567")
    assert services.remind(patient, at_ny(today_ny(), "18:30")) == {"failed": 2}
    row = Delivery.objects.get(patient=patient, item="diary")
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.detail == "SMS is not set up on this server (ModuleNotFoundError)"
    assert services.remind(patient, at_ny(today_ny(), "18:35")) == {}


def test_a_device_that_raises_does_not_resend_to_the_one_that_accepted(patient, vapid, monkeypatch):
    """Adversarial pass (issue 16): device 1 accepted the push, then device 2's keys made the
    library raise (a ValueError, not a WebPushException); the whole send counted as a
    failure that may pass, so every later run pushed device 1 again."""
    import pywebpush

    sent = []

    def webpush(subscription_info, **kw):
        if "device-2" in subscription_info["endpoint"]:
            raise ValueError("Could not deserialize key data")
        sent.append(subscription_info["endpoint"])

    monkeypatch.setattr(pywebpush, "webpush", webpush)
    set_prefs(patient, email=False, push=True)
    add_device(patient, 1)
    add_device(patient, 2)
    day = today_ny()
    services.remind(patient, at_ny(day, "18:05"))
    services.remind(patient, at_ny(day, "18:35"))
    services.remind(patient, at_ny(day, "19:05"))
    assert len(sent) == 1
    row = Delivery.objects.get(patient=patient, item="diary")
    assert row.status == "sent" and row.attempts == 1
    assert row.detail.startswith("1 of 2 devices")


# --------------------------------------------------------------------------- language

def test_a_reminder_goes_out_in_the_patients_language_and_still_says_nothing_clinical(
        patient, vapid, pushes, sms_file):
    """Sent by the periodic task, outside any request: in the language of the patient's
    login (Profile.language), the same one sentence (docs/translation.md)."""
    from speciosa.clinic.models import Profile

    Profile.objects.filter(user=patient.user).update(language="es")
    set_prefs(patient, push=True, email=True, sms=True, sms_number="+15551234567")
    add_device(patient)
    services.remind(patient, at_ny(today_ny(), "18:00"))
    spanish = "Tiene algo que completar en Speciosa."
    m = mail.outbox[0]
    assert m.subject == "Un recordatorio de Speciosa"
    assert m.body.startswith(spanish + "\n\n")
    assert json.loads(pushes[0]["data"])["body"] == spanish
    assert sms_lines(sms_file)[0]["body"].startswith(spanish + " ")
    for text in (m.subject, m.body, pushes[0]["data"], sms_lines(sms_file)[0]["body"]):
        assert "kratom" not in text.lower() and "Maya" not in text


def test_a_message_notice_is_in_each_recipients_language(clinic, monkeypatch):
    from django.db import transaction

    from speciosa.clinic.models import Profile
    from speciosa.messaging import services as mservices

    monkeypatch.setattr(transaction, "on_commit", lambda fn, *a, **k: None)
    patient = clinic.patient_a
    patient.user.email = "a@example.org"
    patient.user.save()
    Profile.objects.filter(user=patient.user).update(language="th")
    thread = mservices.start_thread(clinic.clinician_a, patient, "Hi", "Hello")
    assert mservices.notify(thread.messages.get().pk) == 1
    notice = mail.outbox[-1]
    assert notice.subject == "มีข้อความใหม่ใน Speciosa"
    assert "Speciosa" in notice.body and "Hello" not in notice.body
    assert "kratom" not in notice.body.lower() and "กระท่อม" not in notice.body
