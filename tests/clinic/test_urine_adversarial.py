"""Issue 19, urine drug test panels, adversarial pass."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from speciosa.clinic import urine
from speciosa.clinic.models import LabResult, UrinePanel

from .test_urine_panel import panel

pytestmark = pytest.mark.django_db


def test_a_cut_off_of_0_is_refused(clinic):
    # every value is >= 0: a cut-off of 0 stored a measured 0 ng/mL as a positive screen
    with pytest.raises(ValidationError) as exc:
        urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
            panels=["mitragynine"], method="confirmation",
            analytes={"uds-mitragynine": {"value": "0", "cutoff": "0", "unit": "ng/mL"}}))
    assert "a cut-off of 0" in " ".join(exc.value.message_dict["analytes.uds-mitragynine"])
    assert UrinePanel.objects.count() == 0 and LabResult.objects.count() == 0


def test_a_panel_is_read_against_the_treatment_of_its_day_not_todays(clinic):
    # buprenorphine positive while on buprenorphine (expected on its page); the episode
    # stopped since: the rule read today's medications and called the positive 'unexpected'
    import datetime as dt

    from django.utils import timezone

    from speciosa.clinic import treatment
    from speciosa.clinic.models import Alert

    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": timezone.localdate() - dt.timedelta(days=20)})
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        collected_at=timezone.now() - dt.timedelta(days=5), panels=["buprenorphine"],
        analytes={"uds-buprenorphine": "positive", "uds-norbuprenorphine": "positive"}))
    reading, _expected = urine.read(p)
    assert not reading.flagged
    treatment.stop_episode(clinic.clinician_a, clinic.patient_a, ep, reason="moved away",
                           at=(timezone.localdate() - dt.timedelta(days=2)).isoformat())
    reading, _expected = urine.read(p)
    assert not reading.flagged
    assert not Alert.objects.filter(patient=clinic.patient_a, topic="uds-unexpected",
                                    stopped_firing_at=None).exists()


def test_a_medication_stopped_since_the_panel_was_still_expected_in_it(clinic):
    # alprazolam taken when the specimen was collected, stopped since: the page called the
    # positive 'unexpected' once the medicine was stopped (the rule reads the collection day)
    import datetime as dt

    from django.utils import timezone

    from speciosa.clinic import medications
    from speciosa.clinic.models import Alert

    med = medications.record_medication(clinic.clinician_a, clinic.patient_a, {
        "drug": "alprazolam", "start": timezone.localdate() - dt.timedelta(days=30)})
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        collected_at=timezone.now() - dt.timedelta(days=5), panels=["benzodiazepines"],
        analytes={"uds-benzodiazepines": "positive"}))
    assert not urine.read(p)[0].flagged
    medications.stop_medication(clinic.clinician_a, clinic.patient_a, med, reason="tapered off",
                                at=(timezone.localdate() - dt.timedelta(days=2)).isoformat())
    reading, expected = urine.read(p)
    assert "uds-benzodiazepines" in expected and not reading.flagged
    assert not Alert.objects.filter(patient=clinic.patient_a, topic="uds-unexpected",
                                    stopped_firing_at=None).exists()
