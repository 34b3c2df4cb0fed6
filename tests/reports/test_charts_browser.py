"""The charts in a real browser (Debian's chromium) on a small demo clinic: data points drawn,
the range selector moving every panel's time axis, the table view, the phone layout."""

from __future__ import annotations

import datetime as dt
import os

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")
PASSWORD = "speciosa-demo"


@pytest.fixture
def demo(db):
    """Three demo patients, 120 days (patient 0: prolactin 40-60 ng/mL, on Team A of site 1)."""
    from speciosa.clinic.models import Patient
    from speciosa.demo import build_demo_clinic

    summary = build_demo_clinic(seed=7, n_patients=3, days=120, today=dt.date.today())
    patient = Patient.objects.select_related("user", "care_team").order_by("pk").first()
    clinician = patient.care_team.members.order_by("username").first()
    return summary, patient, clinician


def _wait_ready(page, selector: str = "section.charts") -> None:
    page.wait_for_selector(f"{selector}[data-charts-ready]", timeout=20_000)
    assert page.get_attribute(selector, "data-charts-ready") == "1"


def _x_domain(page, key: str = "main") -> list[float]:
    return page.evaluate(
        """(key) => { const v = window.speciosaCharts[0].views[key];
                      return [v.signal('x_start'), v.signal('x_end')]; }""", key)


def test_the_clinician_sees_charts_with_data_zooms_and_reads_the_table(live_server, demo, desktop, log_in):
    _summary, patient, clinician = demo
    base = live_server.url
    log_in(desktop, base, clinician.username, PASSWORD)
    desktop.wait_for_url(f"{base}/patients/")
    desktop.goto(f"{base}/patients/{patient.pk}/")
    _wait_ready(desktop)

    # data points drawn: bars of kratom per day, exposure line, score and prolactin symbols
    assert desktop.locator("section.charts svg path.mark-rect path, section.charts svg g.mark-rect path").count() > 20
    assert desktop.locator("section.charts svg g.mark-symbol path").count() > 10
    assert desktop.locator("section.charts svg g.mark-line path").count() >= 3
    # the bars are the days with kratom inside the 90-day window (Vega's own view of its marks)
    bars = desktop.evaluate("""() => {
        const v = window.speciosaCharts[0].views.main; let n = 0;
        (function walk(node) {
            if (!node) return;
            if (node.marktype === 'rect' && node.name && node.name.includes('layer_0_marks'))
                n += node.items.filter(i => i.width > 0).length;
            (node.items || []).forEach(walk);
        })(v.scenegraph().root);
        return n; }""")
    assert bars > 20
    assert "Model estimate" in desktop.inner_text("section.charts [data-exposure]")
    desktop.click("section.charts [data-exposure] summary")
    assert "compartment" in desktop.inner_text("section.charts [data-exposure]").lower()
    desktop.click("section.charts [data-exposure] summary")

    # range selector: 90 days is the default; 30 days narrows every panel; All widens it
    assert desktop.get_attribute("button[data-range='90']", "aria-pressed") == "true"
    start90, end90 = _x_domain(desktop)
    assert round((end90 - start90) / 86_400_000) == 90
    desktop.click("button[data-range='30']")
    desktop.wait_for_function("() => document.querySelector('section.charts').dataset.currentRange === '30'")
    start30, end30 = _x_domain(desktop)
    assert round((end30 - start30) / 86_400_000) == 30 and end30 == end90
    domain = desktop.evaluate("() => window.speciosaCharts[0].views.main.scale('concat_1_x').domain().map(Number)")
    assert domain == [start30, end30]
    desktop.click("button[data-range='all']")
    start_all, _ = _x_domain(desktop)
    assert start_all < start90
    desktop.click("button[data-range='90']")

    # on-demand labs
    desktop.click("section.charts details.chart-more summary")
    desktop.wait_for_selector("section.charts[data-labs-ready]")
    assert desktop.locator("[data-chart='labs'] svg g.mark-symbol path").count() > 0

    # table view: accessible tables with captions and header cells
    desktop.click("button[data-table-toggle]")
    assert desktop.get_attribute("button[data-table-toggle]", "aria-expanded") == "true"
    assert desktop.locator("#charts-tables table caption").count() >= 4
    assert desktop.locator("#table-use tbody tr").count() > 30
    assert desktop.locator("#table-labs thead th[scope=col]").count() == 6
    assert "Prolactin" in desktop.inner_text("#table-labs")
    desktop.click("button[data-table-toggle]")

    if SHOTS:
        desktop.locator("section.charts").screenshot(path=os.path.join(SHOTS, "charts-1280.png"))
    link = desktop.get_attribute("a:has-text('Visit report (PDF)')", "href")
    assert link == f"/patients/{patient.pk}/report.pdf"


def test_the_patient_sees_their_own_charts_on_a_phone(live_server, demo, phone, log_in):
    _summary, patient, _clinician = demo
    base = live_server.url
    log_in(phone, base, patient.user.username, PASSWORD)
    phone.wait_for_url(f"{base}/me/")
    _wait_ready(phone)
    assert phone.locator("section.charts svg g.mark-symbol path").count() > 10
    assert phone.get_attribute("button[data-range='30']", "aria-pressed") == "true"
    # fits a 360 px screen
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    width = phone.evaluate("parseFloat(document.querySelector('section.charts svg').getAttribute('width'))")
    assert 250 < width <= 340
    phone.click("button[data-range='90']")
    start, end = _x_domain(phone)
    assert round((end - start) / 86_400_000) == 90
    phone.click("button[data-range='30']")
    phone.click("button[data-table-toggle]")
    assert phone.locator("#table-scores tbody tr").count() > 5
    phone.click("button[data-table-toggle]")
    if SHOTS:
        phone.locator("section.charts").screenshot(path=os.path.join(SHOTS, "my-charts-360.png"))
