"""In a real browser: the Content-Security-Policy is sent, an injected script never runs, and
the charts draw without breaking the policy."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_injected_script_in_a_note_does_not_run_and_charts_need_no_unsafe_eval(live_server, clinic, desktop,
                                                                                  log_in):
    import datetime as dt

    from django.utils import timezone

    from speciosa.clinic import services
    from speciosa.clinic.models import Dose

    for day in range(1, 6):
        Dose.objects.create(patient=clinic.patient_a, entered_by=clinic.patient_a.user, source="patient",
                            taken_at=timezone.now() - dt.timedelta(days=day), amount=3, unit="g",
                            mitragynine_percent=1.5, mitragynine_mg=45.0)
    services.record_note(clinic.clinician_a, clinic.patient_a,
                         '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">', token="b1")
    violations = []
    desktop.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(desktop, live_server.url, "clin_a", clinic.password)
    response = desktop.goto(f"{live_server.url}/patients/{clinic.patient_a.pk}/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    desktop.wait_for_selector("section.charts[data-charts-ready]", timeout=20_000)
    assert desktop.get_attribute("section.charts", "data-charts-ready") == "1"
    assert desktop.evaluate("window.__xss") is None
    assert "<script>window.__xss" in desktop.inner_text("main")  # shown as text
    # no script needs more than 'self' (no eval: Vega's interpreter). Vega's tooltip plugin still
    # tries to inject a default <style>, which style-src 'self' blocks harmlessly (docs/security.md).
    assert [v for v in violations if "script-src" in v] == [], "\n".join(violations)
