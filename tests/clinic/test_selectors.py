"""Selectors: the clinician's patient summary counts and latest values, whatever the length of
the record, in a fixed number of queries."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from speciosa.clinic import access, selectors
from speciosa.clinic.models import Alert, DiaryDay, Patient


def _alert(patient, rule, severity="warning", status=Alert.Status.OPEN):
    return Alert.objects.create(patient=patient, rule=rule, topic=rule, severity=severity,
                                message=rule, status=status)


@pytest.mark.django_db
def test_the_summary_counts_alerts_once_however_many_diary_days(clinic):
    today = timezone.localdate()
    for d in range(30):
        DiaryDay.objects.create(patient=clinic.patient_a, day=today - dt.timedelta(days=d + 1))
    _alert(clinic.patient_a, "r1", "urgent")
    _alert(clinic.patient_a, "r2", "urgent", Alert.Status.ACKNOWLEDGED)
    _alert(clinic.patient_a, "r3", "warning")
    _alert(clinic.patient_a, "r4", "urgent", Alert.Status.RESOLVED)
    row = selectors.patient_list(access.visible_patients(clinic.clinician_a)).get(pk=clinic.patient_a.pk)
    assert row.active_alerts == 3  # open and acknowledged
    assert row.urgent_alerts == 1  # open and urgent
    assert row.last_diary == today - dt.timedelta(days=1)


@pytest.mark.django_db
def test_a_patient_without_diary_or_alerts_has_zero_counts_and_no_last_diary(clinic):
    row = selectors.patient_list(access.visible_patients(clinic.clinician_a)).get(pk=clinic.patient_a.pk)
    assert row.active_alerts == 0 and row.urgent_alerts == 0 and row.last_diary is None
    assert "no diary for 7+ days" in selectors.attention_reasons(row, timezone.localdate())


@pytest.mark.django_db
def test_the_patient_list_is_one_query_and_sorted_urgent_first(clinic):
    others = [Patient.objects.create(site=clinic.site_a, care_team=clinic.team_a, identifier=f"S-{i}",
                                     given_name="Sam", family_name=f"Aaron{i}", birth_date=dt.date(1980, 1, 1),
                                     sex="female") for i in range(5)]
    _alert(clinic.patient_a, "r1", "urgent")
    with CaptureQueriesContext(connection) as queries:
        rows = selectors.patient_rows(access.visible_patients(clinic.clinician_a))
    assert len(queries) == 1
    assert rows[0].pk == clinic.patient_a.pk
    assert {p.pk for p in rows} == {clinic.patient_a.pk, *(p.pk for p in others)}
