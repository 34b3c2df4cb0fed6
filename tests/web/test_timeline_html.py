"""The patient page's timeline entries written by ``{% timeline_items %}`` (issue 18): the same
HTML, byte for byte, as the template loop they replaced (kept below), for every kind of entry,
every badge and link, text that needs escaping, a time zone and each of the page languages."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.template import engines
from django.utils import timezone, translation

from speciosa.clinic.models import (
    Assessment,
    Dose,
    LabResult,
    Medication,
    Note,
    Patient,
    SubstanceUse,
    TaperPlan,
    TreatmentEpisode,
)
from speciosa.clinic.selectors import TimelineEvent

#: The loop of web/patient_detail.html before issue 18, verbatim (with its ``{% load i18n %}``).
OLD_LOOP = (Path(__file__).parent / "timeline_loop_before_issue18.html").read_text(encoding="utf-8")

AT = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)


def _events():
    user = get_user_model()
    named = user(pk=7, username="kim", first_name="Kim", last_name="O'Hara <b>")
    nameless = user(pk=8, username="x")
    records = [Dose(pk=11, source="patient"), Assessment(pk=12, source="clinician"),
               LabResult(pk=13, source="import"), Note(pk=14, source="clinician"),
               SubstanceUse(pk=15, source="patient"),
               Medication(pk=16, source="clinician"), TreatmentEpisode(pk=17, source="clinician"),
               TaperPlan(pk=18, source="clinician")]
    kinds = ["dose", "assessment", "lab", "note", "substance", "medication", "treatment", "taper"]
    events = []
    for n, ((record, kind), who, retracted, replaces, abnormal, detail) in enumerate(itertools.product(
            zip(records, kinds, strict=True), (named, nameless, None), (False, True), (None, 3), (False, True),
            ("", 'a & b "c" <i>'))):
        r = type(record)(pk=record.pk * 100 + n, source=record.source, entered_by=who, retracted=retracted,
                         replaces_id=replaces, change_reason="typo <x>" if n % 3 else None)
        events.append(TimelineEvent(AT - dt.timedelta(hours=5 * n), kind, f"Title {n} <&>", detail, r,
                                    abnormal=abnormal))
    return events


@pytest.mark.parametrize("language", ["en", "es", "th"])
@pytest.mark.parametrize("zone", ["UTC", "America/Chicago", "Asia/Bangkok"])
def test_the_entries_are_the_old_loops_html(language, zone):
    patient = Patient(pk=42)
    events = _events()
    assert len(events) == 8 * 3 * 2 * 2 * 2 * 2
    old = engines["django"].from_string(OLD_LOOP)
    new = engines["django"].from_string("{% load timeline %}{% timeline_items events patient %}")
    with translation.override(language), timezone.override(zone):
        for chunk in (events, events[:1], []):
            ctx = {"events": chunk, "patient": patient}
            assert new.render(ctx) == old.render(ctx)


def test_the_page_still_escapes_what_a_record_says():
    patient = Patient(pk=1)
    e = TimelineEvent(AT, "note", "<script>alert(1)</script>", "<img src=x>",
                      Note(pk=2, source="clinician", text="x"))
    html = engines["django"].from_string("{% load timeline %}{% timeline_items events patient %}").render(
        {"events": [e], "patient": patient})
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;img src=x&gt;" in html
