"""Adversarial pass (issue 18): the patient page's timeline written in Python escapes every
value it writes, end to end (a dose's product, a note, a substance's detail, a correction's
reason, the clinician's name), as the template loop did."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from speciosa.clinic.models import Dose, Note, SubstanceUse

pytestmark = pytest.mark.django_db

HOSTILE = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def test_every_written_value_is_escaped(clinic, login):
    p, who = clinic.patient_a, clinic.clinician_a
    who.first_name, who.last_name = HOSTILE[:30], "<b>x</b>"
    who.save()
    at = timezone.now() - dt.timedelta(hours=3)
    common = {"patient": p, "entered_by": who, "source": "clinician"}
    first = Dose.objects.create(**common, taken_at=at, amount=Decimal("2"), unit="g",
                                product=HOSTILE, superseded=True)
    Dose.objects.create(**common, taken_at=at, amount=Decimal("3"), unit="g", product=HOSTILE,
                        replaces=first, change_reason=HOSTILE)
    Note.objects.create(**common, text=HOSTILE, at=at)
    SubstanceUse.objects.create(**common, at=at, name=HOSTILE[:40], detail=HOSTILE)
    page = login(who).get(reverse("patient_detail", args=[p.pk])).content.decode()
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "<b>x</b>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4
