"""The diary a patient can trust, in a real browser on a 360 px phone (issue 15): an
implausible amount is asked about and confirmed, a capsule dose without its size is asked
for on the spot (and the usual product remembered), "Add another dose" adds a row, the time
zone is the phone's and said so, and the patient corrects a dose with the history kept."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from decimal import Decimal

import pytest

from speciosa.clinic.models import Dose

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def _fits(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def _shot(page, name: str) -> None:
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


@pytest.fixture
def tokyo_phone(browser):
    # east of UTC: from 15:00 UTC Tokyo's today is the clinic's (UTC) tomorrow
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True,
                                  timezone_id="Asia/Tokyo")
    yield context.new_page()
    context.close()


def test_a_patient_confirms_an_unusual_dose_gives_the_capsule_size_and_corrects_a_dose(
        live_server, clinic, tokyo_phone, desktop, log_in):
    page, base = tokyo_phone, live_server.url
    # today's diary reads the times on the phone's today (Tokyo's): times of the last hour there
    tokyo = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Tokyo"))
    midnight = tokyo.replace(hour=0, minute=0, second=0, microsecond=0)

    def ago(minutes: int) -> str:
        return f"{max(tokyo - dt.timedelta(minutes=minutes), midnight):%H:%M}"

    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    log_in(page, base, "pat_a", clinic.password)
    page.wait_for_url(f"{base}/me/")
    page.goto(f"{base}/me/diary/")
    note = page.inner_text("[data-zone-note]")
    assert note == "Times are read in your device's time zone, Asia/Tokyo (the clinic's is UTC)."

    page.fill("#id_doses-0-time", ago(30))
    page.fill("#id_doses-0-amount", "10000")
    page.select_option("#id_doses-0-unit", "g")
    page.click("button:has-text('Add another dose')")
    page.fill("#id_doses-1-time", ago(60))
    page.fill("#id_doses-1-amount", "4")
    page.select_option("#id_doses-1-unit", "capsule")
    _fits(page)
    # the time and unit fields are not cut off: each is as wide as its content needs
    for sel in ("#id_doses-0-time", "#id_doses-0-unit"):
        box = page.locator(sel).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360 and box["width"] >= 120, (sel, box)
    page.click("button:has-text('Save diary')")

    rows = page.locator("fieldset.dose")
    assert "far above what people report" in rows.nth(0).inner_text()
    assert "How many grams are in one capsule" in rows.nth(1).inner_text()
    assert Dose.objects.count() == 0
    _fits(page)
    _shot(page, "diary-questions-360.png")
    page.check("#id_doses-0-confirmed_unusual")
    page.fill("#id_doses-1-product", "Red Bali")
    page.fill("#id_doses-1-grams_per_capsule", "0.5")
    page.click("button:has-text('Save diary')")
    page.wait_for_url(f"{base}/me/?saved=1")
    big = Dose.objects.get(unit="g")
    assert big.amount == 10000 and big.confirmed_unusual
    assert Dose.objects.get(unit="capsule").mitragynine_mg == pytest.approx(4 * 0.5 * 15)

    # back to today's diary: what is recorded is shown, with a way to correct it
    page.goto(f"{base}/me/diary/")
    already = page.inner_text("section.already")
    assert "Kratom 10000 g leaf" in already and "Kratom 4 capsules" in already
    _shot(page, "diary-already-360.png")
    page.locator("ul.entries li", has_text="10000 g").locator("a:has-text('Correct or remove')").click()
    page.wait_for_url(f"{base}/me/entries/dose/{big.pk}/correct/")
    assert page.input_value("#id_amount") == "10000"  # the stored 10000.000, without its zeros
    assert page.input_value("#id_time") == ago(30)
    page.fill("#id_amount", "10")
    page.fill("#id_reason", "I typed 10000 for 10")
    _fits(page)
    _shot(page, "diary-correct-360.png")
    page.click("button:has-text('Save the change')")
    page.wait_for_url(f"{base}/me/diary/{big.diary.day.isoformat()}/?changed=1")
    assert "Changed" in page.inner_text("main")
    assert "Kratom 10 g leaf" in page.inner_text("section.already")
    big.refresh_from_db()
    fixed = Dose.objects.current().get(unit="g")
    assert big.superseded and fixed.replaces_id == big.pk and fixed.amount == Decimal("10")
    assert fixed.taken_at == big.taken_at  # read back in the same zone it was written in

    # the usual capsules are filled in when capsules are chosen again
    page.fill("#id_doses-0-time", ago(10))
    page.fill("#id_doses-0-amount", "2")
    page.select_option("#id_doses-0-unit", "capsule")
    assert page.input_value("#id_doses-0-grams_per_capsule") == "0.5"
    assert page.input_value("#id_doses-0-product") == "Red Bali"
    page.click("button:has-text('Save diary')")
    page.wait_for_url(f"{base}/me/?saved=1")
    assert Dose.objects.current().filter(unit="capsule").count() == 2
    assert not errors, errors

    log_in(desktop, base, "pat_a", clinic.password)
    desktop.goto(f"{base}/me/diary/")
    _fits(desktop)
    _shot(desktop, "diary-1280.png")
