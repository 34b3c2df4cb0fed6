"""The walking skeleton end to end in a real browser: the patient writes today's diary on a
360 px phone, logs out; the clinician logs in and sees it on the patient's page."""

from __future__ import annotations

import os

import pytest

from speciosa.clinic.models import Dose

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def test_a_patient_writes_a_diary_on_a_phone_and_the_clinician_sees_it(live_server, clinic, phone, desktop, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    phone.click("text=Write today's diary")
    phone.fill("#id_doses-0-time", "00:00")  # never later than now (08:30 failed before 08:30 UTC)
    phone.fill("#id_doses-0-amount", "3.5")
    phone.select_option("#id_doses-0-unit", "g")
    phone.click("label.pill:has(input[name=craving][value='6'])")
    phone.check("input[name=side_effects][value=constipation]")
    # the page fits a 360 px screen: no horizontal scrolling
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "diary-360.png"), full_page=True)
    phone.click("button:has-text('Save diary')")
    phone.wait_for_url(f"{base}/me/?saved=1")
    assert "Saved" in phone.inner_text("main")
    assert "3.5 g leaf" in phone.inner_text("main")
    phone.click("text=Log out")
    phone.wait_for_url(f"{base}/login/")

    dose = Dose.objects.get(patient=clinic.patient_a)
    assert float(dose.amount) == 3.5 and dose.unit == "g"

    log_in(desktop, base, "clin_a", clinic.password)
    desktop.wait_for_url(f"{base}/patients/")
    desktop.click("text=Quinn, Maya")
    desktop.wait_for_url(f"{base}/patients/{clinic.patient_a.pk}/")
    desktop.wait_for_load_state("load")
    desktop.locator("ol.timeline").wait_for()
    body = desktop.inner_text("main")
    assert "Kratom 3.5 g leaf" in body
    assert "Craving" in body and ": 6" in body
    assert "Constipation" in body or "constipation" in body
    if SHOTS:
        desktop.screenshot(path=os.path.join(SHOTS, "patient-1280.png"), full_page=True)


def test_a_bad_diary_entry_shows_the_message_beside_the_field_and_keeps_the_input(live_server, clinic, phone, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    phone.goto(f"{base}/me/diary/")
    phone.fill("#id_doses-0-time", "08:30")
    phone.fill("#id_doses-0-amount", "-2")
    phone.fill("#id_side_effect_other", "headache")
    phone.click("button:has-text('Save diary')")
    assert "more than 0" in phone.inner_text("fieldset.dose")
    assert phone.input_value("#id_side_effect_other") == "headache"
    assert phone.input_value("#id_doses-0-amount") == "-2"
    assert Dose.objects.count() == 0
