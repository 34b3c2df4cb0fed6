"""Alerts wait for a clinician (issue 13): an alert whose rule stops firing stays open and
says since when; only a clinician resolves it, with a reason; every event is audited with
its own action; each alert records the rule version and the settings that produced it; the
settings live in the database, changed by an administrator with a reason."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from speciosa import safety
from speciosa.clinic import alerts, rule_settings, services, writes
from speciosa.clinic.models import Alert, AuditEntry, RuleSetting
from speciosa.knowledge import instruments


def _phq9(clinic, item9: int, at=None):
    phq9 = instruments.get_instrument("phq9")
    items = {i.id: 0 for i in phq9.items if i.scored} | {"self-harm": item9}
    return services.record_assessment(clinic.clinician_a, clinic.patient_a, "phq9", items, at=at)


def _actions(alert):
    return list(AuditEntry.objects.filter(model="Alert", object_id=alert.pk).order_by("id")
                .values_list("action", flat=True))


@pytest.mark.django_db
def test_an_unacknowledged_urgent_alert_stays_open_after_its_rule_window_has_passed(clinic, login):
    _phq9(clinic, 2)
    alert = Alert.objects.get(patient=clinic.patient_a, topic="suicide-risk")
    assert alert.severity == "urgent" and alert.status == "open" and alert.stopped_firing_at is None
    later = timezone.now() + dt.timedelta(days=20)  # past the PHQ-9's 14-day window
    timeline = alerts.load_timelines([clinic.patient_a.pk])[clinic.patient_a.pk]
    assert "suicide-risk" not in [f.topic for f in safety.evaluate(timeline, later)]
    result = alerts.sweep(as_of=later)
    alert.refresh_from_db()
    assert alert.status == "open" and alert.resolved_at is None and result.stopped == 1
    stopped = alert.stopped_firing_at
    assert stopped is not None
    # a second sweep neither closes it nor moves the stored time nor audits it again
    assert alerts.sweep(as_of=later + dt.timedelta(days=1)).stopped == 0
    alert.refresh_from_db()
    assert alert.status == "open" and alert.stopped_firing_at == stopped
    assert _actions(alert) == ["alert-raised", "alert-stopped"]
    entry = AuditEntry.objects.get(model="Alert", object_id=alert.pk, action="alert-stopped")
    assert entry.before["stopped_firing_at"] is None
    assert entry.after["stopped_firing_at"] == stopped.isoformat()
    assert entry.patient_id == clinic.patient_a.pk
    # the clinician still sees it, urgent, saying since when it no longer fires
    page = login(clinic.clinician_a).get(reverse("worklist")).content.decode()
    assert "urgent-banner" in page and "no longer firing since" in page
    assert timezone.localtime(stopped).strftime("%-d %b %Y") in page


@pytest.mark.django_db
def test_only_a_clinician_resolves_it_with_a_reason_each_step_audited_apart(clinic, login):
    _phq9(clinic, 1)
    alert = Alert.objects.get(topic="suicide-risk")
    alerts.sweep(as_of=timezone.now() + dt.timedelta(days=20))
    with pytest.raises(Exception, match="Say how"):
        alerts.resolve(clinic.clinician_a, alert, "   ")
    with pytest.raises(writes.AccessDenied):
        alerts.resolve(clinic.clinician_b, alert, "not my patient")  # another team
    with pytest.raises(writes.AccessDenied):
        alerts.resolve(clinic.admin, alert, "admin tidying up")
    alert.refresh_from_db()
    assert alert.status == "open"
    client = login(clinic.clinician_a)
    client.post(reverse("alert_acknowledge", args=[alert.pk]))
    client.post(reverse("alert_resolve", args=[alert.pk]), {"note": "seen today; safety plan made"})
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_by == clinic.clinician_a
    assert _actions(alert) == ["alert-raised", "alert-stopped", "acknowledge", "resolve"]
    assert AuditEntry.objects.get(object_id=alert.pk, action="resolve").reason == \
        "seen today; safety plan made"


@pytest.mark.django_db
def test_an_alert_that_fires_again_is_updated_and_no_longer_marked_stopped(clinic):
    now = timezone.now()
    _phq9(clinic, 1, at=now - dt.timedelta(days=13))
    alert = Alert.objects.get(topic="suicide-risk")
    alerts.sweep(as_of=now + dt.timedelta(days=3))
    alert.refresh_from_db()
    assert alert.stopped_firing_at is not None
    _phq9(clinic, 3)  # a new positive answer today
    alert.refresh_from_db()
    assert alert.stopped_firing_at is None and alert.status == "open"
    assert "answered 3" in alert.message
    assert Alert.objects.filter(topic="suicide-risk").count() == 1
    assert _actions(alert) == ["alert-raised", "alert-stopped", "alert-updated"]
    updated = AuditEntry.objects.get(object_id=alert.pk, action="alert-updated")
    assert "answered 1" in updated.before["message"] and "answered 3" in updated.after["message"]


@pytest.mark.django_db
def test_each_alert_records_the_rule_version_and_the_settings_in_force(clinic):
    rule_settings.change(clinic.admin, "phq9_recent_days", "21", "our PHQ-9 is repeated 3-weekly")
    _phq9(clinic, 1)
    alert = Alert.objects.get(topic="suicide-risk")
    assert alert.rule_version == safety.get_rule("SAF-SUICIDE").version >= 1
    assert alert.settings == {"phq9_recent_days": 21}
    raised = AuditEntry.objects.get(object_id=alert.pk, action="alert-raised")
    assert raised.after["settings"] == {"phq9_recent_days": 21}
    # the stored window decides: 17 days later the 21-day window still holds the answer
    assert alerts.sweep(as_of=timezone.now() + dt.timedelta(days=17)).stopped == 0
    assert alerts.sweep(as_of=timezone.now() + dt.timedelta(days=23)).stopped == 1


@pytest.mark.django_db
def test_a_setting_change_needs_an_administrator_and_a_reason_and_is_audited(clinic):
    with pytest.raises(writes.AccessDenied):
        rule_settings.change(clinic.clinician_a, "withdrawal_cows_moderate", "15", "stricter")
    with pytest.raises(Exception) as exc:
        rule_settings.change(clinic.admin, "withdrawal_cows_moderate", "15", "  ")
    assert "reason" in exc.value.message_dict
    for bad, word in (("0", "above 0"), ("abc", "number"), ("13.5", "whole"), ("13", "already")):
        with pytest.raises(Exception) as exc:
            rule_settings.change(clinic.admin, "withdrawal_cows_moderate", bad, "a reason")
        assert word in exc.value.message_dict["value"][0], bad
    with pytest.raises(Exception, match="no setting"):
        rule_settings.change(clinic.admin, "no_such_setting", "1", "a reason")
    assert not RuleSetting.objects.exists()
    assert not AuditEntry.objects.filter(action="setting-change").exists()
    rule_settings.change(clinic.admin, "withdrawal_cows_moderate", "15", "local protocol 2026-12")
    entry = AuditEntry.objects.get(action="setting-change")
    assert entry.before == {"name": "withdrawal_cows_moderate", "value": 13, "origin": "default"}
    assert entry.after == {"name": "withdrawal_cows_moderate", "value": 15, "origin": "site"}
    assert entry.reason == "local protocol 2026-12" and entry.user == clinic.admin
    assert rule_settings.in_force()["withdrawal_cows_moderate"] == 15
    rule_settings.change(clinic.admin, "withdrawal_cows_moderate", "14", "compromise")
    assert AuditEntry.objects.filter(action="setting-change").count() == 2
    assert AuditEntry.objects.filter(action="setting-change").first().before["value"] == 15


@pytest.mark.django_db
def test_the_settings_page_is_read_only_for_clinicians_and_asks_admins_a_reason(clinic, login):
    url = reverse("safety_setting_change", args=["sows_rise_points"])
    clinician = login(clinic.clinician_a)
    page = clinician.get(reverse("safety_settings")).content.decode()
    assert "sows_rise_points" in page and "Change…" not in page and "convention" in page
    assert clinician.get(url).status_code == 403
    assert clinician.post(url, {"value": "8", "reason": "x", "confirm": "yes"}).status_code == 403
    assert login(clinic.patient_a.user).get(reverse("safety_settings")).status_code == 403
    assert not RuleSetting.objects.exists()
    admin = login(clinic.admin)
    assert "Change…" in admin.get(reverse("safety_settings")).content.decode()
    r = admin.post(url, {"value": "8", "reason": ""})
    assert r.status_code == 400 and "Say why" in r.content.decode()
    r = admin.post(url, {"value": "8", "reason": "our cohort's SD is 8"})
    text = r.content.decode()
    assert r.status_code == 200
    assert 'class="old-value">10<' in text and 'class="new-value">8<' in text
    assert not RuleSetting.objects.exists()  # shown, not saved yet
    r = admin.post(url, {"value": "8", "reason": "our cohort's SD is 8", "confirm": "yes"})
    assert r.status_code == 302
    assert RuleSetting.objects.get(name="sows_rise_points").value == 8
    page = clinician.get(reverse("safety_settings")).content.decode()
    assert "our cohort&#x27;s SD is 8" in page
    assert admin.get(reverse("safety_setting_change", args=["nope"])).status_code == 404


@pytest.mark.django_db
def test_an_imported_total_only_phq9_raises_an_info_alert_asking_for_item_9(clinic):
    from speciosa.clinic.models import Assessment

    Assessment.objects.create(patient=clinic.patient_a, source="import", instrument="phq9",
                              instrument_version="import", at=timezone.now(), items={}, total=21)
    alerts.sweep()
    suicide = Alert.objects.get(patient=clinic.patient_a, topic="suicide-risk")
    assert suicide.severity == "info" and "no answer to item 9" in suicide.message
    severe = Alert.objects.get(patient=clinic.patient_a, topic="depression-severe")
    assert severe.severity == "warning" and severe.evidence["total"] == 21
    assert severe.rule_version == 2 and suicide.rule_version == 2
