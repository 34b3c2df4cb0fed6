"""Issue 19 in a real browser: the patient reads their current treatment in plain words on
"My medicines" on a 360 px phone (nothing wider than the screen). Screenshots go to
``$SPECIOSA_SCREENSHOTS``."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from speciosa.clinic import treatment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def test_the_patient_reads_their_treatment_on_a_phone(live_server, clinic, phone, desktop,
                                                      log_in):
    start = timezone.localdate() - dt.timedelta(days=21)
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "xr-injection", "dose_mg": "300",
        "start": start.isoformat(), "injection_dates": [start.isoformat()]})
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "methadone", "formulation": "oral-liquid", "dose_mg": "40",
        "dispensing_clinic": "Harbour Street Opioid Treatment Programme",
        "start": start.isoformat()})
    base = live_server.url
    for page, width in ((phone, 360), (desktop, 1280)):
        log_in(page, base, "pat_a", clinic.password)
        page.goto(f"{base}/me/medicines/")
        card = " ".join(page.inner_text("#my-treatment").split())
        assert "Buprenorphine, 300 mg each injection" in card
        assert "Taken as a slow-release injection given by your care team." in card
        assert f"last injection {start:%-d %b %Y}" in card
        assert "You get it from Harbour Street Opioid Treatment Programme." in card
        assert "keep naloxone close" in card
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= width, f"page is {overflow}px wide at {width}px"
        if SHOTS:
            page.screenshot(path=os.path.join(SHOTS, f"my-treatment-{width}.png"), full_page=True)
