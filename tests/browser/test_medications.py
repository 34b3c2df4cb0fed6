"""Issue 19 in a real browser: a clinician records buprenorphine and a benzodiazepine for a
patient who uses kratom and sees the co-use and interaction findings; a patient adds a
supplement on a 360 px phone and the clinician confirms it. Screenshots go to
``$SPECIOSA_SCREENSHOTS`` (360 px and 1280 px)."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import Alert, Medication

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def _kratom_today(clinic):
    at = timezone.localtime() - dt.timedelta(hours=2)
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=at.date(), doses=[{"taken_at": at, "amount": 3, "unit": "g"}]))


def _add(page, base, pid, name, **fields):
    page.goto(f"{base}/patients/{pid}/medications/new/")
    page.fill("#id_drug_name", name)
    for key, value in fields.items():
        target = f"#id_{key}"
        if page.locator(target).evaluate("e => e.tagName") == "SELECT":
            page.select_option(target, value)
        else:
            page.fill(target, value)
    page.click("button:has-text('Save medication')")
    page.wait_for_url(f"{base}/patients/{pid}/#medications")


def test_a_clinician_records_buprenorphine_and_a_benzodiazepine_and_sees_the_findings(
        live_server, clinic, desktop, phone, log_in):
    _kratom_today(clinic)
    base, pid = live_server.url, clinic.patient_a.pk
    log_in(desktop, base, "clin_a", clinic.password)
    start = (timezone.localdate() - dt.timedelta(days=7)).isoformat()
    desktop.goto(f"{base}/patients/{pid}/medications/new/")
    # the medicine box offers the drug table's names, brands included
    assert desktop.locator("datalist#drug-table option[value='Subutex']").count() == 1
    _add(desktop, base, pid, "Subutex", strength="8", strength_unit="mg",
         form="sublingual-tablet", dose_amount="2", dose_unit="tablet", frequency="once daily",
         route="sublingual", start_date=start, indication="opioid use disorder")
    _add(desktop, base, pid, "Xanax", strength="0.5", strength_unit="mg", form="tablet",
         dose_amount="1", dose_unit="tablet", frequency="at night", route="oral",
         start_date=start, prescriber="outside", prescriber_name="Dr Lee")
    meds = " ".join(desktop.inner_text("#medications").split())
    assert "Subutex 8 mg" in meds and "Xanax 0.5 mg" in meds and "not coded" not in meds
    alerts = desktop.inner_text("section[aria-label=Alerts]")
    assert "co-use-sedative" in alerts
    topics = set(Alert.objects.filter(patient=clinic.patient_a).values_list("topic", flat=True))
    assert "co-use-sedative" in topics and any("cyp3a" in t for t in topics), topics
    assert {m.drug for m in Medication.objects.current()} == {"buprenorphine", "alprazolam"}
    _shot(desktop, "medications-patient-page-1280.png")

    # a bad unit posted by a stale page gets the service's message, beside the field
    desktop.goto(f"{base}/patients/{pid}/medications/new/")
    desktop.fill("#id_drug_name", "gabapentin")
    desktop.fill("#id_start_date", start)
    desktop.fill("#id_strength", "300")
    desktop.click("button:has-text('Save medication')")
    assert "Give the unit of the strength" in desktop.inner_text(".has-error")
    _shot(desktop, "medication-form-error-1280.png")

    log_in(phone, base, "clin_a", clinic.password)
    phone.goto(f"{base}/patients/{pid}/#medications")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    _shot(phone, "medications-patient-page-360.png")


def test_a_patient_adds_a_supplement_on_a_phone_and_the_clinician_confirms_it(
        live_server, clinic, phone, desktop, log_in):
    base = live_server.url
    log_in(phone, base, "pat_a", clinic.password)
    phone.wait_for_url(f"{base}/me/")
    phone.click("nav >> text=My medicines")
    phone.wait_for_url(f"{base}/me/medicines/")
    phone.fill("#id_drug_name", "Magnesium glycinate")
    phone.check("input[name=category][value=supplement]")
    phone.fill("#id_dose_amount", "1")
    phone.select_option("#id_dose_unit", "capsule")
    phone.fill("#id_frequency", "every evening")
    phone.fill("#id_start_date", (timezone.localdate() - dt.timedelta(days=14)).isoformat())
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    _shot(phone, "my-medicines-form-360.png")
    phone.click("button:has-text('Add to my list')")
    phone.wait_for_url(f"{base}/me/medicines/?saved=1")
    assert "waiting for your clinician to confirm" in phone.inner_text("main")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    _shot(phone, "my-medicines-waiting-360.png")
    med = Medication.objects.get()
    assert (med.source, med.prescriber, med.coded) == ("patient", "none", False)

    log_in(desktop, base, "clin_a", clinic.password)
    desktop.goto(f"{base}/worklist/")
    assert "Magnesium glycinate" in desktop.inner_text("main")
    desktop.click("text=Quinn, Maya")
    row = desktop.locator(f"#medication-{med.pk}")
    assert "not yet confirmed" in row.inner_text()
    _shot(desktop, "medications-to-confirm-1280.png")
    row.locator("button:has-text('Confirm')").click()
    desktop.wait_for_load_state()
    confirmed = Medication.objects.current().get()
    assert confirmed.confirmed_by == clinic.clinician_a
    assert "not yet confirmed" not in desktop.inner_text("#medications")

    phone.goto(f"{base}/me/medicines/")
    assert "confirmed by your clinician" in phone.inner_text("main")
    _shot(phone, "my-medicines-confirmed-360.png")
    phone.click("text=I stopped taking this")
    phone.fill("#id_at_date", timezone.localdate().isoformat())
    phone.fill("#id_stop_reason", "ran out")
    phone.click("button:has-text('Save')")
    phone.wait_for_url(f"{base}/me/medicines/?stopped=1")
    assert Medication.objects.current().get().status == "stopped"


def test_a_clinician_starts_a_methadone_episode_and_sees_the_qt_finding(
        live_server, clinic, desktop, phone, log_in):
    from speciosa.clinic.models import TreatmentEpisode

    _kratom_today(clinic)
    base, pid = live_server.url, clinic.patient_a.pk
    log_in(desktop, base, "clin_a", clinic.password)
    desktop.goto(f"{base}/patients/{pid}/")
    desktop.click("text=Start a treatment episode")
    desktop.select_option("#id_drug", "methadone")
    desktop.select_option("#id_formulation", "oral-liquid")
    desktop.fill("#id_dose_mg", "120")
    desktop.fill("#id_dispensing_clinic", "Harbour Street OTP")
    desktop.fill("#id_start_date", (timezone.localdate() - dt.timedelta(days=3)).isoformat())
    desktop.click("button:has-text('Save episode')")
    assert "site convention" in desktop.inner_text(".has-error")
    _shot(desktop, "episode-confirm-1280.png")
    desktop.check("#id_confirmed_dose")
    desktop.click("button:has-text('Save episode')")
    desktop.wait_for_url(f"{base}/patients/{pid}/#treatment")
    section = " ".join(desktop.inner_text("#treatment").split())
    assert "Methadone oral liquid" in section and "120 mg per day" in section
    assert "qt-risk" in desktop.inner_text("section[aria-label=Alerts]")
    assert TreatmentEpisode.objects.get().confirmed_dose
    _shot(desktop, "treatment-section-1280.png")
    log_in(phone, base, "clin_a", clinic.password)
    phone.goto(f"{base}/patients/{pid}/treatment/new/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    _shot(phone, "episode-form-360.png")
