"""The patient's side in Thai and Spanish on a 360 px phone (issue 17; docs/translation.md):
every page the patient reaches, in each language, with no console error and no sideways
scrolling; Thai drawn with a font that has its glyphs (Noto Sans Thai from this server when
the phone has none) and broken into lines without spaces; the diary saves a Spanish "1,5".
Screenshots of the diary in each language go to ``$SPECIOSA_SCREENSHOTS``
(docs/screenshots/diary-th-360.png, diary-es-360.png)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal

import pytest
from tests.browser.test_crawl import crawl

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")
START = ["/", "/me/", "/me/diary/", "/me/record/", "/me/medicines/", "/me/plan/",
         "/me/messages/", "/me/reminders/", "/me/consents/", "/account/security/",
         "/account/password/"]


@pytest.fixture
def demo_clinic(transactional_db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from speciosa.demo import build_demo_clinic

    return build_demo_clinic(seed=7, n_patients=6, days=40, today=dt.date.today())


def _speaking(username: str, language: str) -> None:
    from speciosa.clinic.models import Profile

    Profile.objects.filter(user__username=username).update(language=language)


def _phone(browser):
    # not is_mobile: a phone's browser widens its layout viewport to fit a page that is too
    # wide, and innerWidth would grow with it (as in test_crawl)
    return browser.new_context(viewport={"width": 360, "height": 740}, has_touch=True)


@pytest.mark.parametrize("language", ["th", "es"])
def test_every_patient_page_in_thai_and_spanish_fits_a_360_px_phone(
        language, live_server, demo_clinic, browser, log_in):
    _speaking("patient01", language)
    context = _phone(browser)
    page = context.new_page()
    try:
        log_in(page, live_server.url, "patient01", "speciosa-demo")
        visited, problems = crawl(page, live_server.url, START)
        page.goto(live_server.url + "/me/")
        lang = page.evaluate("document.documentElement.lang")
    finally:
        context.close()
    print(f"{language}: {len(visited)} pages:", " ".join(visited))
    assert lang == language
    assert len(visited) >= len(START) - 1, visited
    assert problems == [], "\n".join(problems)


def test_thai_is_drawn_with_thai_glyphs_and_wraps_without_spaces(live_server, demo_clinic,
                                                                  browser, log_in):
    _speaking("patient01", "th")
    context = _phone(browser)
    page = context.new_page()
    try:
        log_in(page, live_server.url, "patient01", "speciosa-demo")
        page.goto(live_server.url + "/me/diary/")
        page.wait_for_load_state("networkidle")
        page.evaluate("document.fonts.ready")
        # the Thai text is laid out in a font that has it: this machine has no Thai font of
        # its own, so it is the pages' Noto Sans Thai (loaded for Thai characters only)
        assert page.evaluate("""() => document.fonts.check('16px "Speciosa Noto Sans Thai"', 'บันทึก')
            && [...document.fonts].some(f => f.family.includes('Noto Sans Thai') && f.status === 'loaded')""")
        assert "บันทึกประจำวัน" in page.inner_text("h1")
        # a long Thai sentence (no spaces inside its words) wraps inside the screen
        box = page.evaluate("""() => { const p = document.querySelector('footer .translation-draft');
            const r = p.getBoundingClientRect(); return [r.left, r.right, r.height,
            parseFloat(getComputedStyle(p).lineHeight)]; }""")
        assert box[0] >= 0 and box[1] <= 360 and box[2] > 1.5 * box[3], box  # several lines
        # nothing on the page breaks words anywhere or refuses to wrap running text
        assert page.evaluate("""() => [...document.querySelectorAll(
                'main p, main legend, main label, main h1, main h2, footer p')]
            .filter(e => getComputedStyle(e).wordBreak === 'break-all' || getComputedStyle(e).whiteSpace === 'nowrap')
            .length""") == 0
        assert page.evaluate("[document.documentElement.scrollWidth, innerWidth]") == [360, 360]
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            page.screenshot(path=os.path.join(SHOTS, "diary-th-360.png"), full_page=True)
    finally:
        context.close()


def test_a_spanish_diary_takes_1_comma_5_and_shows_it_back(live_server, demo_clinic, browser,
                                                           log_in):
    from speciosa.clinic.models import Dose, Patient

    _speaking("patient01", "es")
    patient = Patient.objects.get(user__username="patient01")
    before = set(Dose.objects.filter(patient=patient).values_list("pk", flat=True))
    context = _phone(browser)
    page = context.new_page()
    try:
        log_in(page, live_server.url, "patient01", "speciosa-demo")
        page.goto(live_server.url + "/me/diary/")
        page.wait_for_load_state("networkidle")
        if SHOTS:
            os.makedirs(SHOTS, exist_ok=True)
            page.screenshot(path=os.path.join(SHOTS, "diary-es-360.png"), full_page=True)
        assert page.get_attribute("#id_doses-0-amount", "type") == "text"
        page.fill("#id_doses-0-time", "00:05")
        page.fill("#id_doses-0-amount", "1,5")
        page.click("button.sticky[type=submit]")
        page.wait_for_load_state()
        body = page.inner_text("main")
        if "¿" in body and "Sí, es correcto" in body:  # a repeat or plausibility question
            page.check("input[name$='confirmed_unusual']")
            page.click("button.sticky[type=submit]")
            page.wait_for_load_state()
        new = Dose.objects.filter(patient=patient).exclude(pk__in=before)
        assert [d.amount for d in new] == [Decimal("1.5")]
        page.goto(live_server.url + "/me/diary/")
        assert "Kratom 1,5 g de hoja" in page.inner_text("main")
    finally:
        context.close()
