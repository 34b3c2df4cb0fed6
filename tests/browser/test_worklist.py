"""The worklist in a real browser: an urgent alert shows on every page until acknowledged;
another alert is resolved with a note."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import Alert

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clinician_acknowledges_an_urgent_alert_and_resolves_another(live_server, clinic, desktop, log_in):
    from speciosa.knowledge import instruments

    services.record_lab(clinic.clinician_a, clinic.patient_a, {
        "lab": "prolactin", "collected_at": timezone.now() - dt.timedelta(days=1),
        "value": Decimal("60"), "unit": "ng/mL"})
    phq9 = instruments.get_instrument("phq9")
    services.record_assessment(clinic.clinician_a, clinic.patient_a, "phq9",
                               {i.id: 0 for i in phq9.items if i.scored} | {"self-harm": 1})
    base = live_server.url
    page = desktop
    log_in(page, base, "clin_a", clinic.password)
    page.wait_for_url(f"{base}/patients/")
    assert page.locator(".urgent-banner").is_visible()
    assert "suicide-risk" in page.inner_text(".urgent-banner")
    page.click("nav >> text=Worklist")
    first = page.locator("ol.alerts > li").first
    assert "urgent" in first.inner_text() and "suicide-risk" in first.inner_text()
    first.locator("button:has-text('Acknowledge')").click()
    page.wait_for_load_state()
    assert page.locator(".urgent-banner").count() == 0
    assert Alert.objects.get(topic="suicide-risk").status == "acknowledged"

    high = page.locator("ol.alerts > li", has_text="prolactin-high")
    high.locator("text=Resolve…").click()
    page.click("button:has-text('Resolve')")
    assert "Say how" in page.inner_text("main")
    page.fill("#id_note", "Repeat morning sample booked; medicines reviewed")
    page.click("button:has-text('Resolve')")
    page.wait_for_url(f"{base}/worklist/")
    assert page.locator("ol.alerts > li", has_text="prolactin-high").count() == 0
    alert = Alert.objects.get(topic="prolactin-high")
    assert alert.status == "resolved" and alert.resolved_by == clinic.clinician_a
