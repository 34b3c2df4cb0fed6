"""Doses of 7-hydroxymitragynine products in mg of 7-OH (unit ``mg_7oh``, issue 13).

Recordable through the diary form, the API and ``speciosa evaluate``; kratom use for the
rules; shown apart from leaf doses; never fed into the mitragynine model, which says so; the
``potent-7oh-product`` rule fires on such a dose.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader
from tests.web.conftest import diary_post

from speciosa.cli import main
from speciosa.clinic import selectors, services
from speciosa.clinic.models import Alert, Dose
from speciosa.pharmacology import doses as pdoses
from speciosa.pharmacology import exposure as pexposure
from speciosa.reports import charts
from speciosa.reports import data as rdata

pytestmark = pytest.mark.django_db

NOT_MODELLED = "not 7-OH taken directly"


def _firing(patient, topic):
    return Alert.objects.filter(patient=patient, topic=topic, status__in=Alert.ACTIVE).first()


# ------------------------------------------------------------------ the pharmacology engine

def test_a_7oh_dose_is_never_converted_to_mitragynine_and_the_reason_says_why():
    at = timezone.now() - dt.timedelta(hours=5)
    leaf = pdoses.Dose(taken_at=at, amount=2.0, unit="g")
    seven = pdoses.Dose(taken_at=at, amount=10.0, unit="mg_7oh", mitragynine_percent=50.0)
    ok, bad = pdoses.convert_all([leaf, seven])
    assert [d.mg for d in ok] == [30.0]  # 2 g x 1.5 %: the leaf dose only
    assert bad == [(1, pdoses.SEVEN_OH_NOT_MODELLED)]
    with pytest.raises(pdoses.DoseConversionError, match=NOT_MODELLED):
        pdoses.to_mitragynine(seven)
    day = at.astimezone(dt.UTC).date()
    assert pdoses.daily_mitragynine_mg([leaf, seven], dt.UTC) == {day: 30.0}


def test_the_exposure_estimate_leaves_7oh_out_and_says_so():
    at = timezone.now() - dt.timedelta(hours=30)
    doses = [pdoses.Dose(taken_at=at, amount=2.0, unit="g"),
             pdoses.Dose(taken_at=at + dt.timedelta(hours=1), amount=10.0, unit="mg_7oh")]
    alone = pexposure.patient_exposure(doses[:1], at, at + dt.timedelta(hours=30),
                                       typical_only=True)
    both = pexposure.patient_exposure(doses, at, at + dt.timedelta(hours=30), typical_only=True)
    assert both.mitragynine_ng_per_ml.tolist() == alone.mitragynine_ng_per_ml.tolist()
    assert both.hydroxymitragynine_ng_per_ml.tolist() == alone.hydroxymitragynine_ng_per_ml.tolist()
    assert both.unconverted == [(1, pdoses.SEVEN_OH_NOT_MODELLED)]
    notes = " ".join(both.assumptions)
    assert "1 dose(s) could not be converted and are NOT included" in notes
    assert NOT_MODELLED in notes


# ------------------------------------------------------------------ the diary form (API: tests/api)

def test_the_diary_form_records_a_7oh_dose_apart_from_leaf_and_the_rule_fires(clinic, login):
    client = login(clinic.patient_a.user)
    response = client.post(reverse("diary_today"), diary_post(**{
        "doses-1-time": "00:02", "doses-1-amount": "15", "doses-1-unit": "mg_7oh",
        "doses-1-product": "Blue tablets"}))
    assert response.status_code == 302
    leaf, seven = Dose.objects.order_by("taken_at")
    assert (seven.unit, seven.amount, seven.mitragynine_mg) == ("mg_7oh", Decimal("15.000"), None)
    assert seven.conversion_note == f"Not converted: {pdoses.SEVEN_OH_NOT_MODELLED}"
    assert leaf.mitragynine_mg == 30.0
    title, detail = selectors.describe_dose(seven)
    assert title == "7-OH product 15 mg 7-hydroxymitragynine"
    assert "Blue tablets" in detail and "not in the mitragynine estimate" in detail
    assert selectors.describe_dose(leaf)[0] == "Kratom 2 g leaf"
    alert = _firing(clinic.patient_a, "potent-7oh-product")
    assert alert is not None and alert.severity == "warning" and alert.rule_version == 2
    assert alert.evidence["7oh"][0]["amount_mg_7oh"] == 15.0


def test_a_7oh_dose_counts_as_kratom_use_for_the_pregnancy_rule(clinic):
    clinic.patient_a.pregnant = True
    clinic.patient_a.save()
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localdate(), doses=[{"taken_at": timezone.now() - dt.timedelta(hours=1),
                                          "amount": Decimal(5), "unit": "mg_7oh"}]))
    assert _firing(clinic.patient_a, "pregnancy") is not None


def test_the_report_shows_7oh_apart_and_the_estimate_leaves_it_out(clinic, login):
    now = timezone.now()
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localdate(), doses=[
            {"taken_at": now - dt.timedelta(hours=3), "amount": Decimal(2), "unit": "g"},
            {"taken_at": now - dt.timedelta(hours=2), "amount": Decimal(12), "unit": "mg_7oh"}]))
    data = rdata.chart_data(clinic.patient_a, now=now, exposure_subjects=20)
    assert [(mg, p) for _at, mg, p in data.seven_oh_doses] == [(12.0, "")]
    assert sum(data.daily_mg.values()) == 30.0  # the leaf dose only
    summary = charts.exposure_summary(data)
    line = next(x for x in summary["lines"] if x.startswith("7-OH products"))
    assert "1 dose, 12 mg 7-OH" in line and "does not cover 7-OH taken directly" in line
    pdf = login(clinic.clinician_a).get(
        f"/patients/{clinic.patient_a.pk}/report.pdf?days=all&purpose=treatment")
    text = " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
                    .split())
    assert "7-OH products (7-hydroxymitragynine, a potent opioid): 1 dose, 12 mg 7-OH" in text


def test_only_7oh_doses_give_no_estimate_and_say_why(clinic):
    services.record_diary(clinic.patient_a.user, clinic.patient_a, services.DiaryInput(
        day=timezone.localdate(), doses=[{"taken_at": timezone.now() - dt.timedelta(hours=1),
                                          "amount": Decimal(5), "unit": "mg_7oh"}]))
    summary = charts.exposure_summary(rdata.chart_data(clinic.patient_a, exposure_subjects=20))
    assert summary["available"] is False
    assert "No dose on record that can be converted" in summary["problem"]
    assert "does not cover 7-OH taken directly" in summary["problem"]


# ------------------------------------------------------------------ speciosa evaluate

def test_evaluate_reads_mg_7oh_as_kratom_use_and_raises_the_7oh_and_co_use_findings(
        tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({
        "tz": "UTC", "patient": {"sex": "female", "birth_date": "1980-01-01", "pregnant": True},
        "doses": [{"taken_at": "2025-06-29T08:00:00+00:00", "amount": 10, "unit": "mg_7oh"}],
        "medications": [{"name": "Xanax 1 mg", "start": "2025-06-01"}]}))
    assert main(["evaluate", str(path), "--as-of", "2025-06-30T12:00:00+00:00", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    findings = {f["topic"]: f for f in (out["findings"] if isinstance(out, dict) else out)}
    assert {"potent-7oh-product", "co-use-sedative", "pregnancy"} <= set(findings)
    assert findings["potent-7oh-product"]["evidence"]["7oh"][0]["amount_mg_7oh"] == 10.0
