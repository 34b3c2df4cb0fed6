"""One value, one finding, whatever unit it was entered in.

Values entered through the service layer (the path of the web form, the API and the FHIR
import) reach the rules as one canonical value with one range in the same unit: the
findings and the numbers in their messages equal those of ``speciosa evaluate`` on the
same values written in canonical units (the laboratory's range and a comparator included).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from speciosa.clinic import services
from speciosa.clinic.models import Alert, LabResult


def _lab(clinic, code, value, unit, *, days_ago=1, patient=None, **extra):
    return services.record_lab(clinic.clinician_a, patient or clinic.patient_a, {
        "lab": code, "collected_at": timezone.now() - dt.timedelta(days=days_ago),
        "value": Decimal(str(value)), "unit": unit, **extra})


def _active(patient, topic):
    return Alert.objects.filter(patient=patient, topic=topic, status__in=Alert.ACTIVE).first()


@pytest.mark.django_db
def test_a_normal_bilirubin_in_umol_per_litre_raises_no_liver_alert(clinic):
    # 15 umol/L = 0.877 mg/dL, below the upper limit of 1.2 mg/dL: the old path compared
    # 15 umol/L with 1.2 read as umol/L and reported "12.5 x ULN"
    row = _lab(clinic, "bilirubin", 15, "umol/L")
    assert row.flag == "normal"
    assert _active(clinic.patient_a, "liver-injury") is None


@pytest.mark.django_db
def test_an_alt_of_5_ukat_per_litre_is_300_u_per_litre_and_raises_the_liver_alert(clinic):
    # patient_a is female: ALT upper limit 45 U/L; 5 ukat/L = 300 U/L = 6.7 x ULN
    _lab(clinic, "alt", 5, "ukat/L")
    alert = _active(clinic.patient_a, "liver-injury")
    assert alert is not None, "300 U/L is 6.7 x ULN and must raise a finding"
    assert "ALT 300 U/L" in alert.message and "6.7 x ULN" in alert.message
    assert alert.evidence["labs"]["alt"]["upper_reference_limit"] == 45.0


@pytest.mark.django_db
def test_a_prolactin_in_miu_per_litre_is_read_against_the_limit_in_the_same_unit(clinic):
    # 636 mIU/L / 21.2 = 30 ng/mL; female upper limit 23.3 ng/mL: 1.3 x ULN
    _lab(clinic, "prolactin", 636, "mIU/L")
    alert = _active(clinic.patient_a, "prolactin-high")
    assert alert is not None
    assert "Prolactin 30 ng/mL" in alert.message
    assert "(23.3 ng/mL), 1.3 x ULN" in alert.message
    assert "1.1 ng/mL" not in alert.message and "27.3" not in alert.message


@pytest.mark.django_db
def test_the_pdf_report_shows_the_same_numbers_as_the_alert(clinic, login):
    from io import BytesIO

    from pypdf import PdfReader

    _lab(clinic, "prolactin", 636, "mIU/L")
    response = login(clinic.clinician_a).get(
        f"/patients/{clinic.patient_a.pk}/report.pdf?days=all&purpose=treatment")
    assert response.status_code == 200
    text = " ".join(page.extract_text() for page in PdfReader(BytesIO(response.content)).pages)
    text = " ".join(text.split())
    assert "Prolactin 30 ng/mL" in text
    assert "1.1 ng/mL" not in text and "27.3" not in text


@pytest.mark.django_db
def test_the_stored_canonical_value_and_range_share_one_unit(clinic):
    row = _lab(clinic, "bilirubin", 34.2, "umol/L")
    row.refresh_from_db()
    assert row.canonical_unit == "mg/dL"
    assert row.canonical_value == pytest.approx(2.0)
    assert (row.reference_low, row.reference_high) == (0.0, 1.2)
    assert row.reference_source == LabResult.RangeSource.CATALOGUE


# ------------------------------------------------------------------ property: DB path = CLI path

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from speciosa.knowledge import labs as klabs  # noqa: E402

QUANTITY_LABS = [lab for lab in klabs.all_labs() if lab.kind == "quantity"]
#: The labs the rules read: drawn more often, so that most examples give the rules work.
RULE_LABS = [lab for lab in QUANTITY_LABS
             if lab.code in ("alt", "ast", "alp", "ggt", "bilirubin", "inr", "prolactin", "hcg")]


def _upper(lab) -> float:
    highs = [hi for _, hi in lab.reference.values() if hi is not None]
    return max(highs) if highs else (lab.plausible_high or 100.0) / 10


@st.composite
def lab_entry(draw, labs=QUANTITY_LABS):
    """One result of a catalogue lab, in one of its accepted units, as a clinician types it
    (at most 4 decimals), from a tenth of the upper limit to 40 times it (log-uniform), with
    its sample time in days before now."""
    lab = draw(st.sampled_from(labs))
    unit = draw(st.sampled_from(sorted(lab.units)))
    canonical = _upper(lab) * 10 ** draw(st.floats(min_value=-1.0, max_value=1.6))
    typed = Decimal(str(round(klabs.from_canonical(lab.code, canonical, unit), 4)))
    if typed <= 0:
        typed = Decimal("0.0001")
    days = draw(st.integers(min_value=0, max_value=45))
    extra = {}
    if draw(st.booleans()):  # the laboratory's own range, in any accepted unit
        ref_unit = draw(st.sampled_from(sorted(lab.units)))
        high = _upper(lab) * 10 ** draw(st.floats(min_value=-0.5, max_value=0.5))
        low = high * draw(st.floats(min_value=0.0, max_value=0.5))
        extra = {"reference_unit": ref_unit,
                 "reference_low": round(klabs.from_canonical(lab.code, low, ref_unit), 4),
                 "reference_high": round(klabs.from_canonical(lab.code, high, ref_unit), 4)}
        if extra["reference_low"] > extra["reference_high"]:
            extra["reference_low"] = extra["reference_high"]
    comparator = draw(st.sampled_from(["", "", "", "<", ">"]))
    if comparator:
        extra["comparator"] = comparator
    return lab.code, typed, unit, days, extra


def _findings_of_the_sweep(patient):
    from speciosa.clinic import alerts

    alerts.evaluate_patients([patient.pk], as_of=timezone.now())
    return sorted((a.rule, a.severity, a.message, a.next_step)
                  for a in Alert.objects.filter(patient=patient, status__in=Alert.ACTIVE,
                                                stopped_firing_at__isnull=True))


def _canonical_row(r):
    """The stored result as a timeline row in canonical units: its canonical value, and the
    laboratory's range (stored in the canonical unit) when it has one."""
    row = {"lab": r.lab, "at": r.collected_at.isoformat(),
           "value": klabs.to_canonical(r.lab, float(r.value), r.unit),
           "unit": klabs.get_lab(r.lab).canonical_unit}
    if r.comparator:
        row["comparator"] = r.comparator
    if r.reference_source == LabResult.RangeSource.LABORATORY:
        row["reference_low"], row["reference_high"] = r.reference_low, r.reference_high
    return row


def _findings_of_evaluate(patient, now):
    """``speciosa evaluate``'s function on the same results written in canonical units."""
    from speciosa.safety import evaluate, timeline_from_json

    rows = LabResult.objects.current().filter(patient=patient)
    doc = {"tz": patient.site.time_zone or "UTC",
           "patient": {"sex": patient.sex, "birth_date": patient.birth_date.isoformat()},
           "labs": [_canonical_row(r) for r in rows]}
    return sorted((f.rule, f.severity, f.message, f.next_step)
                  for f in evaluate(timeline_from_json(doc), now))


@pytest.mark.django_db
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(entries=st.lists(st.one_of(lab_entry(RULE_LABS), lab_entry()), min_size=1, max_size=5),
       sex=st.sampled_from(["female", "male"]))
def test_any_value_in_any_unit_gives_the_findings_evaluate_gives_in_canonical_units(
        clinic, entries, sex):
    from tests.conftest import make_patient

    patient = make_patient(clinic.site_a, clinic.team_a, None, "", sex=sex)
    now = timezone.now()
    for code, typed, unit, days, extra in entries:
        services.record_lab(clinic.clinician_a, patient, {
            "lab": code, "collected_at": now - dt.timedelta(days=days, minutes=1),
            "value": typed, "unit": unit, "confirmed_unusual": True, **extra})
    swept = _findings_of_the_sweep(patient)
    assert swept == _findings_of_evaluate(patient, timezone.now())
