"""A date the page fills in is shown in every language (issue 17, adversarial pass).

The date, time and date-time boxes are the browser's own (type="date", "time",
"datetime-local"), which take ISO 8601 only. Django wrote their value in the first of the
language's input formats, "02/12/2026" in Spanish and Thai, which a browser's date box takes
for no date: a clinician correcting a taper plan in Spanish saw every step's dates empty (and
would send them empty), the stop form's "today" was blank, and an optional date filled in from
the record (a medication's stop date) was dropped on the next save."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django import forms
from django.test import Client
from django.urls import reverse
from django.utils import timezone, translation
from tests.conftest import verified_login

from speciosa.clinic import taper
from speciosa.clinic.models import Profile

pytestmark = pytest.mark.django_db

ISO = {"date": r"\d{4}-\d{2}-\d{2}", "time": r"\d{2}:\d{2}(:\d{2})?",
       "datetime-local": r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?"}
BOX = re.compile(r'<input type="(date|time|datetime-local)"[^>]*?value="([^"]*)"')


def boxes(html: str) -> list[tuple[str, str]]:
    found = BOX.findall(html)
    assert found, "no date boxes with a value on the page"
    return found


def assert_iso(html: str) -> None:
    bad = [(kind, value) for kind, value in boxes(html) if not re.fullmatch(ISO[kind], value)]
    assert not bad, f"boxes a browser shows empty: {bad}"


@pytest.mark.parametrize("language", ["en", "es", "th"])
def test_a_browser_box_gets_iso_in_every_language(language):
    class F(forms.Form):
        day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
        at = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}))
        when = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    with translation.override(language):
        form = F(initial={"day": dt.date(2026, 12, 2), "at": dt.time(13, 47),
                          "when": dt.datetime(2026, 12, 2, 13, 47)})
        html = str(form)
        assert_iso(html)
        assert 'value="2026-12-02"' in html  # the same day, never shifted (no Buddhist year)
        # what the browser sends back is read as the same day and time
        sent = F({"day": "2026-12-02", "at": "13:47", "when": "2026-12-02T13:47"})
        assert sent.is_valid(), sent.errors
        assert sent.cleaned_data["day"] == dt.date(2026, 12, 2)
        # the language's own way of writing a date is still read (typed in a plain box)
        if language != "en":
            assert F({"day": "02/12/2026", "at": "13:47", "when": "2026-12-02 13:47"}).is_valid()


@pytest.mark.parametrize("language", ["es", "th"])
def test_the_taper_correct_and_stop_pages_show_their_dates(clinic, language):
    start = timezone.localdate() - dt.timedelta(days=7)
    steps = [{"start": (start + dt.timedelta(days=7 * w)).isoformat(),
              "end": (start + dt.timedelta(days=7 * w + 6)).isoformat(), "amount": a,
              "unit": "g", "doses_per_day": 2} for w, a in enumerate(("3", "2"))]
    plan = taper.record_plan(clinic.clinician_a, clinic.patient_a,
                             {"kind": "kratom", "reason": "agreed: two weeks", "steps": steps})
    Profile.objects.filter(user=clinic.clinician_a).update(language=language)
    client = verified_login(Client(), clinic.clinician_a)
    p = clinic.patient_a
    page = client.get(reverse("taper_plan_correct", args=[p.pk, plan.pk])).content.decode()
    assert f'<html lang="{language}">' in page
    assert_iso(page)
    assert f'value="{start.isoformat()}"' in page  # the first step's start, as recorded
    page = client.get(reverse("taper_plan_stop", args=[p.pk, plan.pk])).content.decode()
    assert_iso(page)
