"""Issue 15, item 3 in a real browser: a clinician registers a patient (site, care team,
demographics, consent) and gets a one-time set-up link with its QR code; the patient opens the
link on a 360 px phone, chooses a password and lands on a first page that says what to do."""

from __future__ import annotations

import os

import pytest

from speciosa.clinic.models import Patient

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def test_a_clinician_registers_a_patient_who_sets_up_their_login_on_a_phone(
        live_server, clinic, phone, desktop, log_in):
    base = live_server.url
    log_in(desktop, base, "clin_a", clinic.password)
    desktop.goto(f"{base}/patients/")
    desktop.click("nav >> text=Register")
    desktop.select_option("#id_site", str(clinic.site_a.pk))
    desktop.select_option("#id_care_team", label="Team A — Site A")
    desktop.fill("#id_identifier", "RRC-4242")
    desktop.fill("#id_given_name", "Tove")
    desktop.fill("#id_family_name", "Lindahl")
    desktop.fill("#id_birth_date", "1988-07-21")
    desktop.check("input[name=sex][value=female]")
    # first without consent: refused, nothing stored, the form keeps what was typed
    desktop.click("button:has-text('Register and make the set-up link')")
    assert "consent to care" in desktop.inner_text("main")
    assert not Patient.objects.filter(identifier="RRC-4242").exists()
    assert desktop.input_value("#id_family_name") == "Lindahl"
    desktop.check("#id_consent_care")
    desktop.click("button:has-text('Register and make the set-up link')")
    desktop.wait_for_selector("#setup-link")
    assert desktop.locator("img.qr").evaluate("img => img.naturalWidth") > 0
    link = desktop.inner_text("#setup-link")
    if SHOTS:
        desktop.screenshot(path=os.path.join(SHOTS, "setup-link-1280.png"), full_page=True)
    patient = Patient.objects.get(identifier="RRC-4242")
    assert patient.care_team == clinic.team_a and patient.user is not None

    phone.goto(link)
    assert f"Your username is {patient.user.username}" in phone.inner_text("main")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    phone.fill("#id_new_password1", "lanterns along the river path")
    phone.fill("#id_new_password2", "lanterns along the river path")
    phone.click("button:has-text('Set my password')")
    phone.wait_for_url(f"{base}/me/?welcome=1")
    text = phone.inner_text("main")
    assert "Welcome to Speciosa" in text and "Once a day, write your diary" in text
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "welcome-360.png"), full_page=True)
    # the link was for one use
    phone.goto(link)
    assert "does not work any more" in phone.inner_text("main")
