"""The lab correction page (issue 13, adversarial pass) at 360 and 1280 px: the current value
with whose range it is read against, and the laboratory's range asked again with the unit."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import LabResult

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_correcting_a_unit_asks_for_the_laboratory_range_again(live_server, clinic, log_in,
                                                               request, size):
    page = request.getfixturevalue(size)
    row = services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "alt", "collected_at": timezone.now() - dt.timedelta(days=1),
        "value": Decimal("5"), "unit": "U/L", "reference_low": "0.1", "reference_high": "0.5",
        "confirmed_unusual": True})  # the range is far from the usual one: confirmed in haste
    base = live_server.url
    log_in(page, base, "clin_a", clinic.password)
    page.goto(f"{base}/patients/{clinic.patient_a.pk}/lab/{row.pk}/correct/")
    page.fill("input[name=unit]", "ukat/L")
    page.fill("input[name=reason]", "the report gives ukat/L")
    page.click("button:has-text('Save correction')")
    page.wait_for_load_state()
    assert "enter it again" in page.content()
    shots = os.environ.get("SPECIOSA_SCREENSHOTS")
    if shots:
        page.screenshot(path=f"{shots}/lab-correction-{size}.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    page.fill("input[name=reference_low]", "0.1")
    page.fill("input[name=reference_high]", "0.5")
    page.click("button:has-text('Save correction')")
    page.wait_for_url("**/history/")
    assert LabResult.objects.current().get().reference_high == 30.0
