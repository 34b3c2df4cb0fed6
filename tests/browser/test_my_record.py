"""Issue 16 in a real browser: a patient on a 360 px phone opens "My record" from the diary's
navigation, reads a prolactin result in plain words against the laboratory's range, and
downloads the record as PDF (a real download, not a page)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.utils import timezone

from speciosa.clinic import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def test_a_patient_reads_a_result_and_downloads_the_record_on_a_phone(
        live_server, clinic, phone, desktop, log_in):
    services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "prolactin", "collected_at": timezone.now() - dt.timedelta(days=3),
        "value": Decimal("38"), "unit": "ng/mL", "reference_low": Decimal("4.8"),
        "reference_high": Decimal("23.3")})
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.goto(base + "/me/")
    phone.get_by_role("link", name="My record").click()
    phone.wait_for_url("**/me/record/")
    card = phone.locator("article.result").first
    assert "38 ng/mL" in card.inner_text()
    assert "Your result is above the range" in card.inner_text()
    width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    button = phone.get_by_role("link", name="Download as PDF")
    box = button.bounding_box()
    assert box["height"] >= 44 and box["width"] >= 300  # one thumb, the whole width
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "my-record-360.png"), full_page=True)
    with phone.expect_download() as info:
        button.click()
    download = info.value
    assert download.suggested_filename.startswith("my-record-")
    assert download.suggested_filename.endswith(".pdf")
    if SHOTS:
        log_in(desktop, base, "pat_a", clinic.password)
        desktop.goto(base + "/me/record/")
        desktop.screenshot(path=os.path.join(SHOTS, "my-record-1280.png"), full_page=True)
