"""Issue 16 in a real browser at 360 px: a clinician on a phone assigns a plan from a template
and sees the completion rate; the patient finds the PHQ-9 overdue on their home page,
answers it one question a screen (stopping half-way and coming back), sends it, and sees it
counted; the clinician's list counts it too. Screenshots at 360 and 1280 px."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def no_sideways_scroll(page):
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width


def test_a_clinician_assigns_a_plan_and_a_patient_completes_a_scheduled_phq9(
        live_server, clinic, browser, phone, desktop, log_in):
    from speciosa.clinic.models import Assessment, DiaryDay
    from speciosa.schedules import defaults

    defaults.ensure()  # the live server's database is emptied after each transactional test
    base = live_server.url
    patient = clinic.patient_a
    today = timezone.localdate()
    start = today - dt.timedelta(days=3)
    for d in (0, 2):  # the diary on two of the three days before today
        DiaryDay.objects.create(patient=patient, day=start + dt.timedelta(days=d))

    clinician_phone = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True,
                                          has_touch=True).new_page()
    log_in(clinician_phone, base, "clin_a", clinic.password)
    clinician_phone.goto(f"{base}/patients/{patient.pk}/")
    clinician_phone.get_by_role("link", name="Assign a plan").click()
    clinician_phone.wait_for_url(f"**/patients/{patient.pk}/plan/")
    clinician_phone.get_by_label("Start from", exact=True).select_option(label="Supervised recovery")
    clinician_phone.get_by_label("Starting on").fill(start.isoformat())
    clinician_phone.get_by_role("button", name="Use this template").click()
    clinician_phone.wait_for_url("**/plan/?saved=1")
    rate = clinician_phone.get_by_test_id("completion-rate")
    # the diary 2 of 3 days (today's is not counted yet); PHQ-9, GAD-7, ASEX and AUDIT-C
    # were due on the first day and are overdue: 2 of 7
    assert rate.inner_text() == "29 %"
    section = clinician_phone.locator("#plan").inner_text()
    assert "(2 of 7 due in the last 28 days)" in section
    assert "PHQ-9 every 14 days" in section and "overdue since" in section
    no_sideways_scroll(clinician_phone)
    shot(clinician_phone, "plan-360.png")

    log_in(phone, base, "pat_a", clinic.password)
    phone.goto(f"{base}/me/")
    due = phone.locator("section.due")
    assert "PHQ-9" in due.inner_text() and "overdue since" in due.inner_text()
    shot(phone, "me-due-360.png")
    due.get_by_role("link", name="PHQ-9").click()
    phone.wait_for_url("**/me/questionnaires/phq9/")
    assert "Question 1 of 10" in phone.get_by_test_id("progress").inner_text()
    assert "Over the last 2 weeks" in phone.locator("legend").inner_text()
    no_sideways_scroll(phone)
    shot(phone, "questionnaire-360.png")
    answers = ["several days", "not at all", "more than half the days", "not at all"]
    for label in answers:
        phone.get_by_role("button", name=label, exact=True).click()
        phone.wait_for_load_state()
    assert "Question 5 of 10" in phone.get_by_test_id("progress").inner_text()
    phone.get_by_role("link", name="Stop for now").click()  # interrupted
    phone.wait_for_url("**/me/")
    assert not Assessment.objects.filter(instrument="phq9").exists()
    phone.goto(f"{base}/me/questionnaires/phq9/")  # back later: where they stopped
    assert "Question 5 of 10" in phone.get_by_test_id("progress").inner_text()
    assert "4 answered" in phone.get_by_test_id("progress").inner_text()
    for _ in range(5):
        phone.get_by_role("button", name="not at all", exact=True).click()
        phone.wait_for_load_state()
    assert "Question 10 of 10" in phone.get_by_test_id("progress").inner_text()  # optional
    phone.get_by_role("link", name="Skip").click()
    phone.wait_for_load_state()
    assert "Check your answers" in phone.get_by_test_id("progress").inner_text()
    no_sideways_scroll(phone)
    shot(phone, "questionnaire-review-360.png")
    phone.get_by_role("button", name="Send to my care team").click()
    phone.wait_for_url("**/me/?completed=phq9")
    assert "Sent to your care team" in phone.locator("main").inner_text()
    assert "Done: PHQ-9" in phone.locator("section.due").inner_text()
    assert phone.get_by_test_id("my-rate").inner_text() == \
        "You completed 3 of 7 (43 %) in the last 4 weeks."
    stored = Assessment.objects.get(instrument="phq9")
    assert (stored.total, stored.source) == (3, "patient")
    shot(phone, "me-done-360.png")

    clinician_phone.goto(f"{base}/patients/")
    row = clinician_phone.locator("tr", has_text="Quinn")
    counted = row.get_by_test_id("plan-rate").inner_text()
    assert counted.startswith("43 %") and "(3/7, 4 weeks)" in counted
    no_sideways_scroll(clinician_phone)
    shot(clinician_phone, "patient-list-plan-360.png")

    log_in(desktop, base, "clin_a", clinic.password)
    desktop.goto(f"{base}/patients/")
    shot(desktop, "patient-list-plan-1280.png")
    desktop.goto(f"{base}/patients/{patient.pk}/plan/")
    assert desktop.get_by_test_id("completion-rate").inner_text() == "43 %"
    assert desktop.get_by_role("link", name="Change the plan").count() == 0  # on that very page
    shot(desktop, "plan-1280.png")
    clinician_phone.context.close()

    patient_desktop = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    log_in(patient_desktop, base, "pat_a", clinic.password)
    patient_desktop.goto(f"{base}/me/")
    assert "GAD-7" in patient_desktop.locator("section.due").inner_text()
    shot(patient_desktop, "me-due-1280.png")
    patient_desktop.locator("section.due").get_by_role("link", name="GAD-7").click()
    patient_desktop.wait_for_url("**/me/questionnaires/gad7/")
    assert "Question 1 of 7" in patient_desktop.get_by_test_id("progress").inner_text()
    shot(patient_desktop, "questionnaire-1280.png")
    patient_desktop.context.close()
