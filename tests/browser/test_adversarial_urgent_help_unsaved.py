"""On a 360 px phone, a diary that reports a seizure but comes back with a question (an
unusual dose) shows whom to call at the top, before the question (issue 13, adversarial)."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_numbers_come_first_when_the_diary_asks_a_question(live_server, clinic, phone,
                                                               log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    phone.goto(f"{base}/me/diary/")
    phone.fill("input[name='doses-0-time']", "08:00")
    phone.fill("input[name='doses-0-amount']", "60")
    phone.check("input[name=side_effects][value=seizure]")
    phone.click("button:has-text('Save diary')")
    box = phone.locator("section.urgent-help")
    box.wait_for()
    assert "911" in box.inner_text() and box.bounding_box()["y"] < 740
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    shots = os.environ.get("SPECIOSA_SCREENSHOTS")
    if shots:
        phone.screenshot(path=f"{shots}/diary-unsaved-urgent-360.png", full_page=False)
