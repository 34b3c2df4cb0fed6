"""``clinic.records``: one table of what a correction may change, read by the service, the web
page and the API alike."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from speciosa.clinic import records, services
from speciosa.clinic.models import Dose, LabResult, Note

pytestmark = pytest.mark.django_db


def _lab(clinic):
    return services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "prolactin", "collected_at": timezone.now() - dt.timedelta(days=1),
        "value": "18", "unit": "ng/mL"})


def test_the_service_refuses_a_field_a_correction_may_not_change(clinic):
    # a correction of a prolactin may not turn it into another test
    lab = _lab(clinic)
    with pytest.raises(ValidationError) as exc:
        services.correct_record(clinic.clinician_a, lab, {"lab": "tsh", "value": "2"}, "typo")
    assert exc.value.message_dict == {"lab": ["A lab has no field 'lab' to correct."]}
    assert LabResult.objects.get().lab == "prolactin" and LabResult.objects.count() == 1


def test_the_api_refuses_the_same_fields_as_the_service(clinic, verified_login_of):
    from rest_framework.test import APIClient

    lab = _lab(clinic)
    client = verified_login_of(APIClient(), clinic.clinician_a)
    r = client.post(f"/api/v1/patients/{clinic.patient_a.pk}/records/lab/{lab.pk}/corrections/",
                    {"reason": "typo", "text": "hello"}, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert r.status_code == 400, r.content
    assert "A lab has no field 'text' to correct." in r.content.decode()


def test_every_kind_names_its_model_and_the_page_offers_only_correctable_fields():
    assert {name: kind.model for name, kind in records.KINDS.items()} == services.CORRECTABLE
    for kind in records.KINDS.values():
        assert set(kind.on_page) <= set(kind.correctable), kind.name


def test_the_kind_of_a_record_or_a_name(clinic):
    note = Note(patient=clinic.patient_a, text="x")
    assert records.kind_of(note).name == "note"
    assert records.kind_of("dose").model is Dose
    assert records.kind_of("patient") is None and records.kind_of(clinic.patient_a) is None
