"""On a 360 px phone, a diary that reports slow breathing is followed at once by the numbers
to call, readable without scrolling sideways (issue 13)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_patient_reporting_slow_breathing_sees_whom_to_call_on_a_phone(live_server, clinic,
                                                                          phone, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    phone.goto(f"{base}/me/diary/")
    phone.check("input[name=side_effects][value=oversedation-slow-breathing]")
    phone.click("button:has-text('Save diary')")
    phone.wait_for_url(f"{base}/me/?saved=1")
    box = phone.locator("section.urgent-help")
    box.wait_for()
    text = box.inner_text()
    assert "Get help now" in text and "911" in text and "988" in text and "clinic" in text
    assert phone.locator("section.urgent-help a[href='tel:911']").is_visible()
    # at the top of the page, within the first screen, and no sideways scrolling
    assert box.bounding_box()["y"] < 740
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    phone.reload()
    assert phone.locator("section.urgent-help").count() == 0
