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


@pytest.mark.parametrize(("language", "title", "draft_note"), [
    ("th", "นาล็อกโซน: ยาที่แก้ภาวะใช้ยาเกินขนาดได้", "คำแปลนี้ยังไม่ได้รับการตรวจทาน"),
    ("es", "Naloxona: el medicamento que puede revertir una sobredosis",
     "Esta traducción todavía no ha sido revisada."),
])
def test_an_education_page_in_thai_and_spanish_fits_a_phone(live_server, clinic, phone, log_in,
                                                            language, title, draft_note):
    """Issue 17: the page in the patient's language, marked draft, with the link to the
    English; Thai breaks into lines without spaces and nothing is wider than 360 px."""
    user = clinic.patient_a.user
    user.profile.language = language
    user.profile.save()
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    phone.goto(f"{base}/me/learn/naloxone/")
    main = phone.inner_text("main")
    assert title in main and draft_note in main
    assert phone.get_attribute("article.learn-page", "lang") == language
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    # Thai wraps inside a sentence (no spaces between words): the first statement takes
    # several lines at 360 px, and no line runs out of its box
    lines = phone.evaluate("""() => {
        const el = document.querySelector('.stmt-text');
        const r = document.createRange(); r.selectNodeContents(el);
        const tops = new Set([...r.getClientRects()].map(x => Math.round(x.top)));
        return {lines: tops.size, wide: el.scrollWidth > el.clientWidth};
    }""")
    assert lines["lines"] >= 2 and not lines["wide"]
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, f"education-{language}-360.png"), full_page=False)
    phone.click("text=" + ("อ่านต้นฉบับภาษาอังกฤษ" if language == "th" else "Leer el original en inglés"))
    phone.wait_for_url(f"{base}/me/learn/naloxone/?original=1")
    assert "Naloxone: the medicine that can undo an overdose" in phone.inner_text("main")
