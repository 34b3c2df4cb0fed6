"""Issue 19 in a real browser: on the patient page's shared time axis the clinician sees the
treatment episodes as bands (start, change, stop, injection markers) and the urine drug tests
as markers, the unexpected one in red with "discuss with the patient; confirm before acting"
in its tooltip, at 1280 and 360 px; the range buttons move the strip with every panel.
Screenshots go to ``$SPECIOSA_SCREENSHOTS``."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from speciosa.clinic import treatment, urine

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")

ITEMS = """(kind) => {
    const v = window.speciosaCharts[0].views.main; const out = [];
    (function walk(node) {
        if (!node) return;
        (node.items || []).forEach(i => {
            if (i.datum && i.datum.kind === kind && i.x !== undefined)
                out.push({status: i.datum.status || '', event: i.datum.event || '',
                          text: i.datum.text, x: i.x, width: i.width || 0,
                          fill: i.fill || ''});
            walk(i);
        });
    })(v.scenegraph().root);
    return out; }"""


def days_ago(n):
    return timezone.localdate() - dt.timedelta(days=n)


def seed(clinic):
    user, patient = clinic.clinician_a, clinic.patient_a
    bup = treatment.record_episode(user, patient, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": days_ago(50).isoformat()})
    xr = treatment.change_episode(user, patient, bup, {"formulation": "xr-injection",
                                                       "dose_mg": "300"},
                                  reason="monthly injection", at=days_ago(25).isoformat())
    treatment.add_injection(user, patient, xr, days_ago(25))
    nal = treatment.record_episode(user, patient, {
        "drug": "naltrexone", "formulation": "oral-tablet", "dose_mg": "50",
        "start": days_ago(80).isoformat()})
    treatment.stop_episode(user, patient, nal, reason="nausea", at=days_ago(60).isoformat())
    for ago, panels, analytes in (
            (30, ["buprenorphine"], {"uds-buprenorphine": "positive",
                                     "uds-norbuprenorphine": "positive"}),
            (12, ["buprenorphine", "fentanyl"], {"uds-buprenorphine": "positive",
                                                 "uds-norbuprenorphine": "positive",
                                                 "uds-fentanyl": "positive"}),
            (4, ["buprenorphine"], {"uds-buprenorphine": "positive",
                                    "uds-norbuprenorphine": "positive"})):
        urine.record_panel(user, patient, {
            "collected_at": timezone.now() - dt.timedelta(days=ago), "panels": panels,
            "method": "screen", "analytes": analytes})


def test_the_treatment_strip_shows_bands_and_highlights_the_unexpected_test(
        live_server, clinic, desktop, phone, log_in):
    seed(clinic)
    base, pid = live_server.url, clinic.patient_a.pk
    for page, width in ((desktop, 1280), (phone, 360)):
        log_in(page, base, "clin_a", clinic.password)
        page.goto(f"{base}/patients/{pid}/")
        page.wait_for_selector("section.charts[data-charts-ready]", timeout=20_000)
        assert page.get_attribute("section.charts", "data-charts-ready") == "1"
        bands = page.evaluate(ITEMS, "band")
        assert len(bands) == 3 and all(b["width"] > 0 for b in bands)
        events = sorted(e["event"] for e in page.evaluate(ITEMS, "event"))
        assert events == ["change", "injection", "start", "start", "stop"]
        marks = page.evaluate(ITEMS, "urine")
        assert sorted(m["status"] for m in marks) == ["urine", "urine", "urine-flagged"]
        flagged = next(m for m in marks if m["status"] == "urine-flagged")
        assert flagged["fill"] == "#c0392b"
        assert "Unexpected positive: discuss with the patient; confirm before acting" in \
            flagged["text"]
        # the marker sits inside the plot (not clipped off the axis) and on the shared axis
        plot = page.evaluate("() => window.speciosaCharts[0].views.main.width()")
        assert 0 < flagged["x"] <= plot + 1
        before = flagged["x"]
        page.click("button[data-range='30']")
        page.wait_for_function(
            "() => document.querySelector('section.charts').dataset.currentRange === '30'")
        after = next(m for m in page.evaluate(ITEMS, "urine") if m["status"] == "urine-flagged")
        # 30 days: the test 12 days back moves from about 87 % to 60 % of the width, as every
        # panel's points do (one time axis)
        assert after["x"] / plot == pytest.approx(18 / 30, abs=0.03)
        assert before / plot == pytest.approx(78 / 90, abs=0.03)
        page.click("button[data-range='90']")
        page.wait_for_function(
            "() => document.querySelector('section.charts').dataset.currentRange === '90'")
        if SHOTS:
            page.locator("section.charts").screenshot(
                path=os.path.join(SHOTS, f"charts-treatment-{width}.png"))
        # the table view says the same in words
        page.click("button[data-table-toggle]")
        table = " ".join(page.inner_text("#table-treatment").split())
        assert "Urine drug test" in table and "changed to" in table
        assert "discuss with the patient; confirm before acting" in table
