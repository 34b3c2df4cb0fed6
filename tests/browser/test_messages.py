"""Issue 16 in a real browser: a patient on a 360 px phone writes to the care team (the page
says messages are not watched around the clock, with the numbers), the clinician sees one
unread message in the navigation and answers, and the patient reads the answer."""

from __future__ import annotations

import os

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def test_a_message_round_trip_between_a_phone_and_the_clinic(
        live_server, clinic, phone, desktop, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.goto(base + "/me/")
    phone.get_by_role("link", name="Messages").click()
    phone.wait_for_url("**/me/messages/")
    assert "not watched around the clock" in phone.locator("aside.not-watched").inner_text()
    phone.get_by_label("Subject").fill("Question about my sleep")
    phone.get_by_role("textbox", name="Message", exact=True).fill("I sleep badly since Tuesday.")
    phone.get_by_role("button", name="Send").click()
    phone.wait_for_url("**/me/messages/*/")
    assert "I sleep badly since Tuesday." in phone.locator("ol.messages").inner_text()
    assert "Not read yet" in phone.locator("ol.messages").inner_text()
    width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width

    log_in(desktop, base, "clin_a", clinic.password)
    desktop.goto(base + "/worklist/")
    assert desktop.locator("nav a[href='/messages/'] .badge").inner_text() == "1"
    desktop.locator("nav a[href='/messages/']").click()
    desktop.get_by_role("link", name="Question about my sleep").click()
    desktop.get_by_label("Your reply").fill("Thank you, Maya. We will call you tomorrow.")
    desktop.get_by_role("button", name="Send").click()
    desktop.wait_for_url("**/messages/*/")
    assert desktop.locator("nav a[href='/messages/'] .badge").count() == 0
    if SHOTS:
        desktop.screenshot(path=os.path.join(SHOTS, "messages-1280.png"), full_page=True)

    phone.goto(base + "/me/")
    assert phone.locator("nav a[href='/me/messages/'] .badge").inner_text() == "1"
    phone.locator("nav a[href='/me/messages/']").click()
    phone.get_by_role("link", name="Question about my sleep").click()
    text = phone.locator("ol.messages").inner_text()
    assert "We will call you tomorrow." in text and "Read by your care team" in text
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "messages-360.png"), full_page=True)
