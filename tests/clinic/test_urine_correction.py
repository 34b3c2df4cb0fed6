"""Issue 19: a urine drug test panel corrected as a whole or withdrawn as entered in error
(clinic.urine.correct_panel / withdraw_panel): the history is kept, each row audited, an
analyte no longer tested withdrawn, a new one created, the rules run again (a co-use
finding from a positive screen stops firing when the test is withdrawn); refused cases
store nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from speciosa.clinic import services, urine
from speciosa.clinic.models import Alert, AuditEntry, LabResult, UrinePanel

pytestmark = pytest.mark.django_db


def panel(**kw):
    data = {"collected_at": timezone.now() - dt.timedelta(hours=2),
            "panels": ["fentanyl", "mitragynine"], "method": "screen",
            "analytes": {"uds-fentanyl": "positive", "uds-mitragynine": "positive"}}
    data.update(kw)
    return data


def kratom_today(clinic):
    at = timezone.now() - dt.timedelta(hours=5)
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localtime(at).date(), doses=[{"taken_at": at, "amount": 3, "unit": "g"}]))


def test_a_correction_versions_the_analytes_withdraws_the_dropped_and_adds_the_new(clinic):
    first = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel())
    old = {r.lab: r for r in LabResult.objects.filter(panel=first)}
    data = urine.panel_data(first)
    data["panels"] = ["mitragynine", "buprenorphine"]
    data["analytes"] = {"uds-mitragynine": {"value": "3.2", "cutoff": "1", "unit": "ng/mL"},
                        "uds-buprenorphine": "negative", "uds-norbuprenorphine": "negative"}
    data["method"] = "confirmation"
    data["method_detail"] = "LC-MS/MS"
    new = urine.correct_panel(clinic.clinician_a, clinic.patient_a, first, data,
                              reason="the confirmation came back", token="c1")
    again = urine.correct_panel(clinic.clinician_a, clinic.patient_a, first, data,
                                reason="the confirmation came back", token="c1")
    assert again == new and UrinePanel.objects.count() == 2
    first.refresh_from_db()
    assert first.superseded and new.replaces == first
    assert new.change_reason == "the confirmation came back" and new.method_detail == "LC-MS/MS"
    rows = {r.lab: r for r in LabResult.objects.current().filter(patient=clinic.patient_a)}
    assert set(rows) == {"uds-mitragynine", "uds-buprenorphine", "uds-norbuprenorphine"}
    assert rows["uds-mitragynine"].replaces == old["uds-mitragynine"]
    assert (rows["uds-mitragynine"].value, rows["uds-mitragynine"].loinc) == (
        Decimal("3.2"), "72732-1")
    assert rows["uds-buprenorphine"].replaces is None  # tested for the first time
    old["uds-fentanyl"].refresh_from_db()
    assert old["uds-fentanyl"].retracted  # no longer in the panel
    actions = sorted(AuditEntry.objects.filter(patient=clinic.patient_a, reason__contains=(
        "confirmation came back")).values_list("model", "action"))
    assert actions == [("LabResult", "correct"), ("LabResult", "create"), ("LabResult", "create"),
                       ("LabResult", "retract"), ("UrinePanel", "correct")]


def test_withdrawing_a_positive_screen_stops_the_co_use_finding(clinic):
    kratom_today(clinic)
    test = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel())
    firing = set(Alert.objects.filter(patient=clinic.patient_a, stopped_firing_at=None)
                 .values_list("rule", flat=True))
    assert "SAF-UDS-UNEXPECTED" in firing  # fentanyl positive, not expected
    urine.withdraw_panel(clinic.clinician_a, clinic.patient_a, test, reason="another patient's")
    still = set(Alert.objects.filter(patient=clinic.patient_a, stopped_firing_at=None)
                .values_list("rule", flat=True))
    assert "SAF-UDS-UNEXPECTED" not in still  # the finding says it stopped firing
    assert Alert.objects.get(patient=clinic.patient_a, rule="SAF-UDS-UNEXPECTED").stopped_firing_at


def test_refused_corrections_and_withdrawals_store_nothing(clinic):
    test = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel())
    rows = LabResult.objects.count()
    with pytest.raises(ValidationError) as exc:
        urine.correct_panel(clinic.clinician_a, clinic.patient_a, test, urine.panel_data(test),
                            reason=" ")
    assert exc.value.message_dict == {"reason": ["Say why the urine drug test is corrected."]}
    bad = {**urine.panel_data(test), "ph": "14.5"}
    with pytest.raises(ValidationError) as exc:
        urine.correct_panel(clinic.clinician_a, clinic.patient_a, test, bad, reason="typo")
    assert "ph" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:  # another patient's test under this patient
        urine.withdraw_panel(clinic.clinician_a, clinic.patient_b, test, reason="x")
    assert exc.value.message_dict == {"panel": ["No such urine drug test in this patient's "
                                                "record."]}
    with pytest.raises(PermissionDenied):
        urine.withdraw_panel(clinic.clinician_b, clinic.patient_a, test, reason="x")
    with pytest.raises(PermissionDenied):
        urine.correct_panel(clinic.patient_a.user, clinic.patient_a, test,
                            urine.panel_data(test), reason="x")
    urine.withdraw_panel(clinic.clinician_a, clinic.patient_a, test, reason="wrong cup")
    with pytest.raises(ValidationError) as exc:  # once withdrawn, nothing more
        urine.correct_panel(clinic.clinician_a, clinic.patient_a, test, urine.panel_data(test),
                            reason="x")
    assert "changed since" in str(exc.value)
    assert UrinePanel.objects.count() == 1 and LabResult.objects.count() == rows
    with pytest.raises(ValidationError):
        urine.panel_for(clinic.patient_a, "9" * 30)  # an id out of range is not found
