"""A pregnant (or breastfeeding) patient at 300 ng/mL: no flag, no prolactin alert, and no
hyperprolactinaemia work-up, on every path (issue 13).

The non-pregnant range does not apply in pregnancy or breastfeeding, so the stored flag is
empty, the prolactin rules do not fire, the patient page says why there is no flag, and the
PDF's interpretation says the range does not apply and stops. Above 250 ng/mL outside
pregnancy the flag is "high" (prolactin has no critical value) and the alert a warning.
"""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from pypdf import PdfReader

from speciosa.clinic import services
from speciosa.clinic.models import Alert

pytestmark = pytest.mark.django_db

WORKUP = ("confirm hyperprolactin", "macroprolactin", "prolactinoma", "MRI", "CRITICAL",
          "refer promptly")


def _prolactin(clinic, value="300", unit="ng/mL", **extra):
    return services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "prolactin", "collected_at": timezone.now() - dt.timedelta(hours=3),
        "value": Decimal(value), "unit": unit, **extra})


def _status(patient, state):
    for name, on in state.items():
        setattr(patient, name, on)
        if on:  # since a month ago: the default (the day it is recorded) is today in UTC, and
            # between 00:00 and 03:00 UTC the sample of three hours ago is from yesterday
            setattr(patient, f"{name}_since", timezone.localdate() - dt.timedelta(days=30))
    patient.save()


def _pdf_text(client, patient) -> str:
    response = client.get(f"/patients/{patient.pk}/report.pdf?days=all&purpose=treatment")
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.content))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


STATES = [{"pregnant": True}, {"breastfeeding": True}]


@pytest.mark.parametrize("state", STATES, ids=["pregnant", "breastfeeding"])
@pytest.mark.parametrize(("value", "unit", "extra"), [
    ("300", "ng/mL", {}),
    ("6360", "mIU/L", {}),
    (">300", "ng/mL", {}),  # a bound, which skips the interpretation: still no flag
], ids=["ng", "miu", "bound"])
def test_a_pregnant_patient_at_300_is_not_flagged_and_raises_no_prolactin_alert(
        clinic, login, state, value, unit, extra):
    patient = clinic.patient_a  # female
    _status(patient, state)
    if value.startswith(">"):
        extra = {"comparator": ">"}
        value = value[1:]
    row = _prolactin(clinic, value, unit, **extra)
    assert row.canonical_value == pytest.approx(300.0)
    assert row.flag == ""
    assert not Alert.objects.filter(patient=patient, topic__startswith="prolactin").exists()

    client = login(clinic.clinician_a)
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    assert "not flagged: " in page and "the non-pregnant range does not apply" in page
    assert "critical" not in page.lower()

    text = _pdf_text(client, patient)
    assert "not flagged: the non-pregnant reference range does not apply" in text
    assert "does not apply" in text
    for word in WORKUP:
        assert word not in text, word


def test_outside_pregnancy_300_is_high_and_a_prompt_referral_warning_not_urgent(clinic, login):
    row = _prolactin(clinic)
    assert row.flag == "high"
    [alert] = Alert.objects.filter(patient=clinic.patient_a, topic__startswith="prolactin",
                                   status__in=Alert.ACTIVE)
    assert (alert.topic, alert.severity) == ("prolactin-very-high", "warning")
    assert "prompt endocrinology referral" in alert.next_step
    assert alert.rule_version == 2

    client = login(clinic.clinician_a)
    page = client.get(f"/patients/{clinic.patient_a.pk}/").content.decode()
    tile = page[page.index("Latest prolactin"):][:400]
    assert '<div class="small muted">high' in tile and "critical" not in tile
    text = _pdf_text(client, clinic.patient_a)
    assert "HIGH" in text and "CRITICAL" not in text
    assert "refer promptly to endocrinology" in text and "not same-day emergency care" in text


def test_a_patient_who_becomes_pregnant_stops_the_prolactin_alerts_from_firing(clinic):
    _prolactin(clinic)
    alert = Alert.objects.get(patient=clinic.patient_a, topic="prolactin-very-high")
    _status(clinic.patient_a, {"pregnant": True})
    services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "tsh", "collected_at": timezone.now() - dt.timedelta(hours=1),
        "value": Decimal("2"), "unit": "mIU/L"})  # any write re-runs the rules
    alert.refresh_from_db()
    # the open alert waits for a clinician (issue 13) but says the rule no longer fires
    assert alert.status in Alert.ACTIVE and alert.stopped_firing_at is not None


def test_a_male_patient_marked_pregnant_at_300_is_still_high_and_referred(clinic, login):
    """Pregnancy recorded for a male patient is a contradiction in the record: it must not
    silence a prolactinoma referral (issue 13, adversarial pass)."""
    from speciosa.knowledge import prolactin as kprolactin

    man = clinic.patient_b  # male
    for state in ({"pregnant": True}, {"breastfeeding": True}):
        result = kprolactin.interpret(300, "ng/mL", sex="male", **state)
        assert result.flag == "high" and result.flag_note == ""
        assert result.codes()[0] == "status-contradiction"
        assert "prolactinoma-suggested" in result.codes()
    # the record itself refuses pregnancy for a male patient (issue 15's integrity rules and
    # check constraint); breastfeeding recorded for him is the contradiction left to read
    with pytest.raises(ValidationError, match="Pregnancy is recorded only when the sex is female"):
        _status(man, {"pregnant": True})
    man.refresh_from_db()
    _status(man, {"breastfeeding": True})
    row = services.record_lab(clinic.clinician_b, man, {
        "lab": "prolactin", "collected_at": timezone.now() - dt.timedelta(hours=3),
        "value": Decimal("300"), "unit": "ng/mL"})
    assert row.flag == "high"
    [alert] = Alert.objects.filter(patient=man, topic="prolactin-very-high")
    assert alert.severity == "warning"
    text = _pdf_text(login(clinic.clinician_b), man)
    assert "check the record" in text and "refer promptly to endocrinology" in text
