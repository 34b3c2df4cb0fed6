"""Issue 16 in a real browser: a patient on a 360 px phone opens Consents from the navigation,
reads and signs the research consent; a researcher's de-identified export then holds the
patient; the patient revokes on the phone, and the next export does not. The clinician sees
the signed and revoked consent on the patient page (1280 px)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import give_consent

from speciosa.clinic import integrity

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")
KEY = "test-research-key-0123456789"


@pytest.fixture
def research_site(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("SPECIOSA_RESEARCH_KEY", KEY)
    settings.RESEARCH_EXPORT_DIR = tmp_path / "exports"
    settings.RESEARCH_K_ANONYMITY = 1  # two fixture patients
    settings.RESEARCH_KEY_FILE = tmp_path / "no-key-file"
    return settings


def _records(patient):
    from speciosa.clinic.models import DiaryDay, Dose

    tz = ZoneInfo("UTC")
    for k in range(1, 6):
        d = dt.date(2026, 3, 2) - dt.timedelta(days=k)
        diary = DiaryDay.objects.create(patient=patient, day=d)
        Dose.objects.create(patient=patient, source="patient", diary=diary, unit="g",
                            taken_at=dt.datetime(d.year, d.month, d.day, 9, tzinfo=tz),
                            amount=Decimal("2.0"), mitragynine_percent=Decimal("1.5"),
                            mitragynine_mg=30.0)


def _exported_ids(desktop, base, purpose):
    """Ask for a research export on the researcher's page; the ids the audit trail says it
    holds (the page shows only a count, never who)."""
    from speciosa.clinic.models import AuditEntry

    desktop.goto(base + "/research/exports/")
    desktop.get_by_label("Purpose of use").fill(purpose)
    desktop.get_by_role("button", name="Make the export").click()
    desktop.wait_for_url("**/research/exports/")
    desktop.wait_for_selector(f"text={purpose}")
    entry = AuditEntry.objects.filter(model="ResearchExport", action="export").latest("seq")
    assert entry.after["purpose"] == purpose
    return sorted(entry.after["patient_ids"])


def _fits(page):
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width


def test_a_consent_signed_then_revoked_on_a_phone_changes_the_research_export(
        live_server, clinic, phone, desktop, log_in, research_site, browser):
    a, b = clinic.patient_a, clinic.patient_b
    _records(a)
    _records(b)
    give_consent(b, "research")  # someone else is in the cohort throughout
    base = live_server.url
    log_in(desktop, base, "res", clinic.password)
    assert _exported_ids(desktop, base, "Study A before signing") == [b.pk]

    log_in(phone, base, "pat_a", clinic.password)
    phone.goto(base + "/me/")
    phone.get_by_role("link", name="Consents").click()
    phone.wait_for_url("**/me/consents/")
    _fits(phone)
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "consents-360.png"), full_page=True)
    phone.locator("li[data-kind='research']").get_by_role("link", name="Read and sign").click()
    phone.wait_for_url("**/me/consents/documents/*/sign/")
    assert "must have it reviewed by its own legal counsel" in phone.locator("article").inner_text()
    # a wrong name is refused beside the field and nothing is stored
    phone.get_by_label("Type your full name").fill("Someone Else")
    phone.get_by_label("Today's date").fill(integrity.site_today(a.site).isoformat())
    phone.get_by_role("button", name="Sign").click()
    assert "does not match the name your clinic has" in phone.locator(".field.has-error").inner_text()
    from speciosa.clinic.models import ConsentSignature

    assert not ConsentSignature.objects.filter(patient=a).exists()
    phone.get_by_label("Type your full name").fill("Maya Quinn")
    _fits(phone)
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "consent-sign-360.png"), full_page=True)
    phone.get_by_role("button", name="Sign").click()
    phone.wait_for_url("**/me/consents/?done=signed")
    assert "Signed." in phone.locator("p.ok").inner_text()
    assert "In force" in phone.locator("ul.consents.signed").inner_text()

    assert _exported_ids(desktop, base, "Study A after signing") == sorted([a.pk, b.pk])

    phone.locator("ul.consents.signed").get_by_role("link").first.click()
    phone.wait_for_url("**/me/consents/*/")
    _fits(phone)
    if SHOTS:
        phone.screenshot(path=os.path.join(SHOTS, "consent-signed-360.png"), full_page=True)
    with phone.expect_download() as info:
        phone.get_by_role("link", name="Download the signed copy (PDF)").click()
    assert info.value.suggested_filename.endswith(".pdf")
    phone.get_by_label("Why (optional)").fill("I changed my mind")
    phone.get_by_role("button", name="Revoke").click()
    phone.wait_for_url("**/me/consents/?done=revoked")
    assert "Revoked on" in phone.locator("ul.consents.signed").inner_text()

    assert _exported_ids(desktop, base, "Study A after revoking") == [b.pk]

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    clinician = ctx.new_page()
    log_in(clinician, base, "clin_a", clinic.password)
    clinician.goto(f"{base}/patients/{a.pk}/#consents")
    section = clinician.locator("#consents")
    assert "Revoked on" in section.inner_text() and "Research: not in force" in section.inner_text()
    if SHOTS:
        section.screenshot(path=os.path.join(SHOTS, "patient-consents-1280.png"))
    ctx.close()
    if SHOTS:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        wide = ctx.new_page()
        log_in(wide, base, "pat_a", clinic.password)
        wide.goto(base + "/me/consents/")
        wide.screenshot(path=os.path.join(SHOTS, "consents-1280.png"), full_page=True)
        ctx.close()
