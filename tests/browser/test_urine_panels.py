"""Issue 19 in a real browser: a clinician records a urine drug test panel with buprenorphine
but no norbuprenorphine for a patient on buprenorphine and sees it flagged "discuss with the
patient; confirm before acting". Screenshots go to ``$SPECIOSA_SCREENSHOTS`` (360 and 1280 px)."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from speciosa.clinic import treatment
from speciosa.clinic.models import UrinePanel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def test_a_clinician_records_a_panel_and_sees_it_flagged(live_server, clinic, desktop, phone,
                                                         log_in):
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": timezone.localdate() - dt.timedelta(days=20)})
    base, pid = live_server.url, clinic.patient_a.pk
    at = timezone.localtime() - dt.timedelta(hours=2)
    for page, width in ((desktop, 1280), (phone, 360)):
        log_in(page, base, "clin_a", clinic.password)
        page.goto(f"{base}/patients/{pid}/urine-panels/new/")
        page.fill("#id_collected_date", at.date().isoformat())
        page.fill("#id_collected_time", at.strftime("%H:%M"))
        page.check("input[name=panels][value=buprenorphine]")
        page.fill("#id_creatinine_mg_dl", "90")
        page.fill("#id_ph", "6.1")
        page.fill("#id_specific_gravity", "1.018")
        page.select_option("#id_temperature_in_range", "yes")
        page.select_option("#id_observed", "no")
        page.select_option("[name='r_uds-buprenorphine']", "positive")
        page.select_option("[name='r_uds-norbuprenorphine']", "negative")
        _shot(page, f"urine-panel-form-{width}.png")
        page.click("button:has-text('Save panel')")
        page.wait_for_url(f"{base}/patients/{pid}/urine-panels/*/")
        body = " ".join(page.inner_text("main").split())
        assert "suggests buprenorphine was added to the specimen" in body
        assert "discuss with the patient; confirm before acting" in body
        assert "do not detect mitragynine" in body
        _shot(page, f"urine-panel-{width}.png")
        page.goto(f"{base}/patients/{pid}/#urine")
        section = " ".join(page.inner_text("#urine").split())
        assert "discuss with the patient; confirm before acting" in section
    assert UrinePanel.objects.count() == 2
