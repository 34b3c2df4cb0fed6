"""writes.record_of: the one lookup of a patient's record by id behind every page and endpoint
that names a medication, treatment episode, taper plan or urine panel."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from speciosa.clinic import medications, treatment, urine, writes
from speciosa.clinic.models import Medication

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("pk", [True, False, "abc", None, 0, -1, 2**63, 10**30, "9" * 40, 1.5j])
def test_an_id_that_is_no_id_is_not_found_and_never_reaches_the_database(clinic, pk):
    with pytest.raises(ValidationError) as exc:
        writes.record_of(Medication, clinic.patient_a, pk, field="medication", missing="none")
    assert exc.value.message_dict == {"medication": ["none"]}


def test_another_patients_row_is_not_found_with_the_same_answer(clinic):
    med = medications.record_medication(clinic.clinician_a, clinic.patient_a,
                                        {"drug": "sertraline", "start": "2026-01-05"})
    assert medications.medication_for(clinic.patient_a, med.pk) == med
    assert medications.medication_for(clinic.patient_a, str(med.pk)) == med
    answers = []
    for pk in (med.pk, med.pk + 1000):
        with pytest.raises(ValidationError) as exc:
            medications.medication_for(clinic.patient_b, pk)
        answers.append(exc.value.message_dict)
    assert answers[0] == answers[1] == {"medication": ["No such medication in this patient's record."]}
    for find, field in ((treatment.episode_for, "episode"), (urine.panel_for, "panel")):
        with pytest.raises(ValidationError) as exc:
            find(clinic.patient_a, 2**63)
        assert list(exc.value.message_dict) == [field]
