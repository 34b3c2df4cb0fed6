"""Issue 19 in a real browser: a clinician enters a four-week taper plan (the form starts
empty: Speciosa proposes no dose) and sees its predicted exposure drawn with its band, next
to the course the diary gives; the patient sees "Your plan" on a 360 px phone. Screenshots go
to ``$SPECIOSA_SCREENSHOTS`` (360 and 1280 px)."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import TaperPlan

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SPECIOSA_SCREENSHOTS")


def _shot(page, name):
    if SHOTS:
        page.screenshot(path=os.path.join(SHOTS, name), full_page=True)


def _diary(patient, days=10):
    """Ten days of 3 g twice a day before the plan."""
    for n in range(days, 0, -1):
        on = timezone.localdate() - dt.timedelta(days=n)
        doses = [{"taken_at": dt.datetime.combine(on, dt.time(h), tzinfo=dt.UTC), "amount": 3,
                  "unit": "g"} for h in (8, 20)]
        services.record_diary(patient.user, patient, services.DiaryInput(day=on, doses=doses))


def test_a_clinician_enters_a_four_week_plan_and_the_patient_sees_it(live_server, clinic,
                                                                      desktop, phone, log_in):
    p = clinic.patient_a
    _diary(p)
    base = live_server.url
    start = timezone.localdate() - dt.timedelta(days=2)
    problems: list[str] = []
    for page, width in ((desktop, 1280), (phone, 360)):
        # a script or style the Content-Security-Policy blocks, or a chart that fails to draw
        page.on("console", lambda m, w=width: problems.append(f"{w}: {m.type}: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e, w=width: problems.append(f"{w}: script error: {e}"))
        log_in(page, base, "clin_a", clinic.password)
        page.goto(f"{base}/patients/{p.pk}/#taper")
        if width == 1280:
            page.click("a:has-text('Enter a taper plan')")
        else:  # the first plan was saved at 1280 px: the phone enters the next one
            page.click("a:has-text('Predicted exposure and planned against taken')")
            page.click("a:has-text('Change the plan')")
        page.wait_for_selector("#id_steps-0-amount")
        if width == 1280:
            for i in range(4):
                assert page.input_value(f"#id_steps-{i}-amount") == ""
                assert page.input_value(f"#id_steps-{i}-doses_per_day") == ""
                assert page.input_value(f"#id_steps-{i}-unit") == ""
        page.select_option("#id_kind", "kratom")
        page.fill("#id_reason", "Agreed with Maya: one step down a week over four weeks.")
        for week, amount in enumerate(("2.5", "2", "1.5", "1") if width == 1280
                                      else ("2.5", "2", "1.5", "0.5")):
            begin = start + dt.timedelta(days=7 * week)
            page.fill(f"#id_steps-{week}-start", begin.isoformat())
            page.fill(f"#id_steps-{week}-end", (begin + dt.timedelta(days=6)).isoformat())
            page.fill(f"#id_steps-{week}-amount", amount)
            page.select_option(f"#id_steps-{week}-unit", "g")
            page.fill(f"#id_steps-{week}-doses_per_day", "2")
        if width == 360:
            page.fill("#id_change_reason", "last week lower, as she asked")
        _shot(page, f"taper-form-{width}.png")
        page.click("button:has-text('Save plan')")
        page.wait_for_url(f"{base}/patients/{p.pk}/taper-plans/*/?saved=1")
        page.wait_for_selector("#preview[data-charts-ready='1']", timeout=30000)
        assert page.locator("#preview svg").count() >= 1
        body = " ".join(page.inner_text("main").split())
        assert "Prediction from a population model, not a recommendation" in body
        assert "2.5 g of leaf × 2 a day = 5 g of leaf a day" in body
        assert "After the plan's last dose" in body and "[tanna-2022]" in body
        assert "more than planned" in body.split("Planned against taken")[1]  # 6 g against 5 g
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width + 1, (width, scroll)  # nothing pushes the page sideways
        _shot(page, f"taper-plan-{width}.png")
        page.click("button:has-text('Table view')")
        assert page.locator("#table-taper tbody tr").count() > 20  # one row a day
    assert problems == []
    assert TaperPlan.objects.current().filter(status="active").count() == 1
    assert TaperPlan.objects.current().filter(status="replaced").count() == 1

    context = phone.context.browser.new_context(viewport={"width": 360, "height": 740},
                                                is_mobile=True, has_touch=True)
    phone = context.new_page()  # a phone of her own
    log_in(phone, base, "pat_a", clinic.password)
    phone.goto(f"{base}/me/")
    phone.click("a:has-text('Your plan')")
    phone.wait_for_url(f"{base}/me/plan/")
    body = " ".join(phone.inner_text("main").split())
    assert "Your plan" in body and "today 5 g of leaf" in body.lower()
    assert "2.5 g of leaf, 2 times a day: 5 g of leaf a day" in body
    assert "0.5 g of leaf, 2 times a day: 1 g of leaf a day" in body
    assert phone.evaluate("document.documentElement.scrollWidth") <= 361
    _shot(phone, "my-plan-360.png")
    phone.goto(f"{base}/me/")
    _shot(phone, "me-with-plan-360.png")
    context.close()
