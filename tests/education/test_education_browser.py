"""On a 360 px phone: the patient opens assigned reading from their home page, reads it
(recorded), and the page fits the screen. Screenshots go to ``$SPECIOSA_SCREENSHOTS``."""

from __future__ import annotations

import os

import pytest

from speciosa.education import services
from speciosa.education.models import EducationAssignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def test_a_patient_reads_an_assigned_page_on_a_phone(live_server, clinic, phone, log_in):
    services.assign_page(clinic.clinician_a, clinic.patient_a, "prolactin")
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    assert "Reading from your care team" in phone.inner_text("main")
    phone.click("text=Prolactin: what it is and why we test it")
    phone.wait_for_url(f"{base}/me/learn/prolactin/")
    main = phone.inner_text("main")
    assert "Marked as read" in main
    assert "one case report" in main
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "learn-360.png"), full_page=False)
        phone.screenshot(path=os.path.join(SHOTS, "learn-360-full.png"), full_page=True)
    assert EducationAssignment.objects.get().read_at is not None
    phone.goto(f"{base}/learn/")
    assert "Read" in phone.inner_text("ul.page-list li:first-child")
