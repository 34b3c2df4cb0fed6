"""Issue 19, taper plans, adversarial pass: numbers a hurried clinician or a script sends
that the validation must answer with a message under the field (never a server error), and
that the plan must not keep more precisely than the diary it is compared with."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from speciosa.clinic import taper
from speciosa.clinic.models import TaperPlan

from .test_taper import four_weeks

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("unit", ["furlong", ""])
def test_a_huge_amount_in_an_unknown_unit_is_a_message_not_a_crash(clinic, unit):
    # 1e309 is finite as a Decimal; quantizing it to 3 places raised InvalidOperation (500)
    data = four_weeks()
    data["steps"][0].update(amount="1e309", unit=unit)
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, clinic.patient_a, data)
    assert "steps-0-unit" in exc.value.message_dict
    assert TaperPlan.objects.count() == 0


@pytest.mark.parametrize(("change", "key", "words"), [
    # exponent notation is not a number as typed (clinic.numbers.finite_decimal)
    ({"unit": "capsule", "grams_per_capsule": "1e-400"}, "steps-0-grams_per_capsule",
     "as a number"),
    ({"unit": "capsule", "grams_per_capsule": "0.5001"}, "steps-0-grams_per_capsule",
     "at most 3 decimal places"),
    ({"unit": "mg_extract", "amount": "100", "mitragynine_percent": "1e-400"},
     "steps-0-mitragynine_percent", "as a number"),
    ({"unit": "capsule", "grams_per_capsule": "0.0000000001"}, "steps-0-grams_per_capsule",
     "at most 3 decimal places"),
    ({"unit": "mg_extract", "amount": "100", "mitragynine_percent": "1.255"},
     "steps-0-mitragynine_percent", "at most 2 decimal places"),
])
def test_label_numbers_finer_than_the_diary_keeps_are_refused(clinic, change, key, words):
    # a 1e-400 g capsule was stored as 400 digits and read as 0 g by the preview
    data = four_weeks()
    data["steps"][0].update(change)
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, clinic.patient_a, data)
    assert words in " ".join(exc.value.message_dict[key])
    assert TaperPlan.objects.count() == 0


def test_trailing_zeros_are_not_extra_places(clinic):
    data = four_weeks()
    data["steps"][0].update(amount="2.50000", unit="capsule", grams_per_capsule="0.5000")
    plan = taper.record_plan(clinic.clinician_a, clinic.patient_a, data)
    assert plan.steps[0]["amount"] == "2.5" and plan.steps[0]["grams_per_capsule"] == "0.5"


def test_a_withdrawn_episode_cannot_be_linked(clinic):
    # an episode withdrawn as entered in error was accepted as the plan's episode
    import datetime as dt

    from django.utils import timezone

    from speciosa.clinic import services, treatment

    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": "40",
        "dispensing_clinic": "Harbour Street OTP",
        "start": (timezone.localdate() - dt.timedelta(days=20)).isoformat()})
    services.retract_record(clinic.clinician_a, ep, "entered in error")
    with pytest.raises(ValidationError) as exc:
        taper.record_plan(clinic.clinician_a, clinic.patient_a,
                          four_weeks(kind="methadone", episode=ep.pk))
    assert "withdrawn" in " ".join(exc.value.message_dict["episode"])
    assert TaperPlan.objects.count() == 0
