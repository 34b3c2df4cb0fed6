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
