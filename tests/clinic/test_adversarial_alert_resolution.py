"""A clinician's resolution attacked (issue 13, adversarial pass): a resolved alert is not
raised again while its finding's evidence is unchanged. But the same evidence can become more
severe: an administrator lowers the urgent QTc threshold from 500 to 480 ms, and the QTc of
490 ms whose warning a clinician resolved is now urgent. It stayed silent (the evidence had not
changed). A finding more severe than the one resolved raises a new alert."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from speciosa.clinic import alerts, rule_settings, services
from speciosa.clinic.models import Alert

pytestmark = pytest.mark.django_db


def test_a_resolved_warning_that_becomes_urgent_with_the_same_evidence_is_raised_again(clinic):
    services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "qtc", "collected_at": timezone.now() - dt.timedelta(days=2),
        "value": Decimal("490"), "unit": "ms"})
    warning = Alert.objects.get(patient=clinic.patient_a, topic="qt-risk")
    assert warning.severity == "warning"
    alerts.resolve(clinic.clinician_a, warning, "ECG reviewed, cardiology aware")
    alerts.sweep()
    assert not Alert.objects.filter(topic="qt-risk", status__in=Alert.ACTIVE).exists()
    rule_settings.change(clinic.admin, "qtc_urgent_ms", "480", "local protocol")
    alerts.sweep()
    urgent = Alert.objects.get(topic="qt-risk", status__in=Alert.ACTIVE)
    assert urgent.severity == "urgent" and urgent.pk != warning.pk


def test_the_same_finding_at_the_same_severity_stays_resolved(clinic):
    services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "qtc", "collected_at": timezone.now() - dt.timedelta(days=2),
        "value": Decimal("490"), "unit": "ms"})
    alert = Alert.objects.get(topic="qt-risk")
    alerts.resolve(clinic.clinician_a, alert, "reviewed")
    rule_settings.change(clinic.admin, "qtc_urgent_ms", "495", "local protocol")  # still warning
    alerts.sweep()
    assert not Alert.objects.filter(topic="qt-risk", status__in=Alert.ACTIVE).exists()
