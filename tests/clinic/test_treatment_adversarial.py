"""Issue 19, treatment episodes, adversarial pass: two tabs starting the same drug at once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from speciosa.clinic import treatment
from speciosa.clinic.models import AuditEntry, Source, TreatmentEpisode

pytestmark = pytest.mark.django_db


def bup(days_ago=10):
    return {"drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
            "start": (timezone.localdate() - dt.timedelta(days=days_ago)).isoformat()}


def test_an_episode_stored_by_another_tab_after_validation_is_still_refused(clinic,
                                                                            monkeypatch):
    # Two tabs send a buprenorphine start together: both pass validate_episode (nothing is
    # stored yet), then each creates its row. The second must see the first under the lock.
    real = treatment.validate_episode

    def other_tab_commits_first(patient, data, **kw):
        fields = real(patient, data, **kw)
        TreatmentEpisode.objects.create(patient=patient, entered_by=clinic.clinician_a,
                                        source=Source.CLINICIAN, **fields)
        return fields

    monkeypatch.setattr(treatment, "validate_episode", other_tab_commits_first)
    audits = AuditEntry.objects.count()
    with pytest.raises(ValidationError) as exc:
        treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup(),
                                 token="tab-two")
    assert "already runs from" in " ".join(exc.value.message_dict["drug"])
    assert TreatmentEpisode.objects.filter(patient=clinic.patient_a).count() == 1
    assert AuditEntry.objects.count() == audits


def test_a_single_start_is_stored_audited_once_per_token(clinic):
    first = treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup(), token="t1")
    again = treatment.record_episode(clinic.clinician_a, clinic.patient_a, bup(), token="t1")
    assert first.pk == again.pk
    assert TreatmentEpisode.objects.filter(patient=clinic.patient_a).count() == 1
    assert AuditEntry.objects.filter(object_id=first.pk, action="create").count() == 1
