"""Alerts: findings become one active alert per rule and patient, steps are audited,
sweeps are safe to run concurrently."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic import alerts, services
from speciosa.clinic.models import Alert, AuditEntry


def _prolactin(clinic, value, days_ago=1, token=None, patient=None):
    return services.record_lab(clinic.clinician_a, patient or clinic.patient_a, {
        "lab": "prolactin", "collected_at": timezone.now() - dt.timedelta(days=days_ago),
        "value": Decimal(str(value)), "unit": "ng/mL"}, token=token)


@pytest.mark.django_db
def test_a_high_prolactin_opens_one_alert_for_the_care_team(clinic):
    _prolactin(clinic, 60)
    alert = Alert.objects.get(patient=clinic.patient_a, topic="prolactin-high")
    assert alert.status == "open" and alert.severity in ("warning", "urgent")
    assert alert.citations and "60" in alert.message
    # a second high value updates the alert instead of duplicating it
    _prolactin(clinic, 70, days_ago=0)
    assert Alert.objects.filter(patient=clinic.patient_a, topic="prolactin-high").count() == 1
    assert "70" in Alert.objects.get(patient=clinic.patient_a, topic="prolactin-high").message


@pytest.mark.django_db
def test_a_normal_prolactin_opens_no_prolactin_alert(clinic):
    _prolactin(clinic, 10)
    assert not Alert.objects.filter(topic__startswith="prolactin-high").exists()


@pytest.mark.django_db
def test_a_corrected_value_leaves_the_alert_open_as_no_longer_firing(clinic):
    lab = _prolactin(clinic, 60)
    services.correct_record(clinic.clinician_a, lab, {"value": Decimal("12")}, "transcription error")
    alert = Alert.objects.get(patient=clinic.patient_a, topic="prolactin-high")
    # only a clinician closes an alert: the correction is shown, the alert waits
    assert alert.status == "open" and alert.stopped_firing_at is not None
    assert alert.resolved_at is None


@pytest.mark.django_db
def test_phq9_item_9_opens_an_urgent_alert_shown_on_every_clinician_page(clinic, login):
    from speciosa.knowledge import instruments

    phq9 = instruments.get_instrument("phq9")
    items = {i.id: 0 for i in phq9.items if i.scored}
    items["self-harm"] = 1
    services.record_assessment(clinic.clinician_a, clinic.patient_a, "phq9", items)
    alert = Alert.objects.get(patient=clinic.patient_a, topic="suicide-risk")
    assert alert.severity == "urgent"
    client = login(clinic.clinician_a)
    for url in (reverse("patient_list"), reverse("worklist"), reverse("evidence")):
        assert "urgent-banner" in client.get(url).content.decode(), url
    # the other care team's clinician is not shown it
    assert "urgent-banner" not in login(clinic.clinician_b).get(reverse("patient_list")).content.decode()
    client = login(clinic.clinician_a)
    client.post(reverse("alert_acknowledge", args=[alert.pk]), {"back": "/worklist/"})
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == clinic.clinician_a
    assert "urgent-banner" not in client.get(reverse("patient_list")).content.decode()
    assert AuditEntry.objects.filter(model="Alert", object_id=alert.pk, reason="acknowledged").exists()


@pytest.mark.django_db
def test_resolving_needs_a_note_and_is_audited(clinic, login):
    _prolactin(clinic, 60)
    alert = Alert.objects.get(topic="prolactin-high")
    client = login(clinic.clinician_a)
    r = client.post(reverse("alert_resolve", args=[alert.pk]), {"note": ""})
    assert r.status_code == 400 and "Say how" in r.content.decode()
    client.post(reverse("alert_resolve", args=[alert.pk]), {"note": "repeat test booked"})
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolution_note == "repeat test booked"
    assert AuditEntry.objects.filter(model="Alert", reason="repeat test booked").count() == 1
    # the same evidence does not reopen it
    alerts.sweep()
    assert Alert.objects.filter(topic="prolactin-high", status__in=Alert.ACTIVE).count() == 0


@pytest.mark.django_db
def test_another_teams_clinician_cannot_act_on_an_alert(clinic, login):
    _prolactin(clinic, 60)
    alert = Alert.objects.get(topic="prolactin-high")
    client = login(clinic.clinician_b)
    assert client.post(reverse("alert_acknowledge", args=[alert.pk])).status_code == 404
    assert client.get(reverse("alert_resolve", args=[alert.pk])).status_code == 404
    assert "Quinn" not in client.get(reverse("worklist")).content.decode()


@pytest.mark.django_db
def test_the_worklist_orders_urgent_first(clinic, login):
    from speciosa.knowledge import instruments

    _prolactin(clinic, 60)
    phq9 = instruments.get_instrument("phq9")
    items = {i.id: 0 for i in phq9.items if i.scored} | {"self-harm": 2}
    services.record_assessment(clinic.clinician_a, clinic.patient_a, "phq9", items)
    page = login(clinic.clinician_a).get(reverse("worklist")).content.decode()
    assert page.index("suicide-risk") < page.index("prolactin-high")


@pytest.mark.django_db
def test_a_sweep_finds_a_missed_diary_only_as_time_passes(clinic):
    from speciosa.clinic.models import DiaryDay

    today = timezone.localdate()
    for n in range(10, 30):
        DiaryDay.objects.create(patient=clinic.patient_a, day=today - dt.timedelta(days=n))
    alerts.sweep(as_of=timezone.now() - dt.timedelta(days=14))
    assert not Alert.objects.filter(topic="diary-missed").exists()
    alerts.sweep()
    assert Alert.objects.filter(patient=clinic.patient_a, topic="diary-missed", status="open").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_never_duplicate_an_alert(clinic):
    from speciosa.clinic.models import LabResult

    for p in (clinic.patient_a, clinic.patient_b):
        LabResult.objects.create(patient=p, entered_by=clinic.clinician_a, source="clinician", lab="prolactin",
                                 collected_at=timezone.now() - dt.timedelta(days=1), value=80, unit="ng/mL",
                                 canonical_value=80, canonical_unit="ng/mL")
    errors = []

    def run():
        try:
            for _ in range(3):
                alerts.sweep()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for p in (clinic.patient_a, clinic.patient_b):
        assert Alert.objects.filter(patient=p, topic="prolactin-high", status__in=Alert.ACTIVE).count() == 1


@pytest.mark.django_db
def test_a_resolved_missed_diary_alert_stays_resolved_as_days_pass(clinic):
    from speciosa.clinic.models import DiaryDay

    today = timezone.localdate()
    for n in range(10, 40):
        DiaryDay.objects.create(patient=clinic.patient_a, day=today - dt.timedelta(days=n))
    alerts.sweep(as_of=timezone.now() - dt.timedelta(days=1))
    alert = Alert.objects.get(topic="diary-missed", status="open")
    alerts.resolve(clinic.clinician_a, alert, "phoned; on holiday")
    alerts.sweep()  # a day later, same episode
    assert not Alert.objects.filter(topic="diary-missed", status__in=Alert.ACTIVE).exists()


@pytest.mark.django_db
def test_the_worklist_shows_fifty_alerts_a_page_most_severe_first(clinic, login):
    from speciosa.clinic.models import Patient

    now = timezone.now()
    patients = [Patient.objects.create(site=clinic.site_a, care_team=clinic.team_a, identifier=f"W{i}",
                                       given_name="W", family_name=f"P{i:03d}", birth_date=dt.date(1990, 1, 1),
                                       sex="male") for i in range(60)]
    Alert.objects.bulk_create([Alert(patient=p, rule="SAF-X", topic="prolactin-high", severity="warning",
                                     message="m", first_seen_at=now) for p in patients])
    Alert.objects.create(patient=patients[-1], rule="SAF-Y", topic="suicide-risk", severity="urgent", message="u",
                         first_seen_at=now)
    client = login(clinic.clinician_a)
    first = client.get(reverse("worklist")).content.decode()
    assert "(61 open)" in first and "Page 1 of 2" in first
    assert first.count('class="alert sev-') == 50
    assert first.index("suicide-risk") < first.index("prolactin-high")
    second = client.get(reverse("worklist") + "?page=2").content.decode()
    assert second.count('class="alert sev-') == 11 and 'class="alert sev-urgent' not in second
