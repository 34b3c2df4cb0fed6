"""Issue 19 on the shared time axis: treatment episodes as bands with start, change, stop and
injection markers; urine drug test panels as markers, an unexpected or an expected-but-not-
found result highlighted; the table view says the same; the chart payload's cache follows
every write (a panel recorded, corrected, withdrawn; an episode changed); the visit report's
chart holds the strip and renders."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.utils import timezone

from speciosa.clinic import treatment, urine
from speciosa.reports import charts
from speciosa.reports import data as rdata

pytestmark = pytest.mark.django_db


def days_ago(n):
    return timezone.localdate() - dt.timedelta(days=n)


def seed(clinic):
    user, patient = clinic.clinician_a, clinic.patient_a
    bup = treatment.record_episode(user, patient, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": days_ago(40).isoformat()})
    xr = treatment.change_episode(user, patient, bup, {"formulation": "xr-injection",
                                                       "dose_mg": "300"},
                                  reason="monthly injection", at=days_ago(20).isoformat())
    treatment.add_injection(user, patient, xr, days_ago(20))
    nal = treatment.record_episode(user, patient, {
        "drug": "naltrexone", "formulation": "oral-tablet", "dose_mg": "50",
        "start": days_ago(60).isoformat()})
    treatment.stop_episode(user, patient, nal, reason="nausea", at=days_ago(45).isoformat())
    at = timezone.now() - dt.timedelta(days=10)
    fine = urine.record_panel(user, patient, {
        "collected_at": at, "panels": ["buprenorphine"], "method": "screen",
        "analytes": {"uds-buprenorphine": "positive", "uds-norbuprenorphine": "positive"}})
    odd = urine.record_panel(user, patient, {
        "collected_at": at + dt.timedelta(days=5), "panels": ["buprenorphine", "fentanyl"],
        "method": "screen",
        "analytes": {"uds-buprenorphine": "positive", "uds-norbuprenorphine": "negative",
                     "uds-fentanyl": "positive"}})
    dilute = urine.record_panel(user, patient, {
        "collected_at": at + dt.timedelta(days=7), "panels": ["fentanyl"], "method": "screen",
        "creatinine_mg_dl": "10", "analytes": {"uds-fentanyl": "negative"}})
    return fine, odd, dilute


def strip(spec):
    return next(p for p in spec["vconcat"] if p["title"]["text"].startswith("Treatment"))


def test_episodes_are_bands_with_start_change_stop_and_injection_markers(clinic):
    seed(clinic)
    d = rdata.chart_data(clinic.patient_a, with_exposure=False)
    rows = charts.treatment_rows(d)
    bands = [r for r in rows if r["kind"] == "band"]
    assert [(b["row"], b["text"]) for b in bands] == [
        ("Naltrexone", "naltrexone oral tablet, 50 mg a day"),
        ("Buprenorphine", "buprenorphine sublingual tablet, 16 mg a day"),
        ("Buprenorphine", "buprenorphine extended-release injection, 300 mg each injection")]
    nal, bup, xr = bands
    # a day-stop ends at the next midnight; the change is where the next band starts
    assert nal["t2"] - nal["t"] == 16 * charts.DAY_MS
    assert bup["t2"] == xr["t"]
    assert xr["t2"] == rdata.wall_ms(d.now, d.tz)  # ongoing: to now
    events = [(r["row"], r["event"], r["text"]) for r in rows if r["kind"] == "event"]
    assert ("Naltrexone", "stop", "stopped: naltrexone oral tablet, 50 mg a day (nausea)") in events
    assert ("Buprenorphine", "start", "started: buprenorphine sublingual tablet, 16 mg a day") \
        in events
    assert ("Buprenorphine", "change", "changed to: buprenorphine extended-release injection, "
            "300 mg each injection") in events
    assert [e for e in events if e[1] == "injection"] == [
        ("Buprenorphine", "injection",
         "injection: buprenorphine extended-release injection, 300 mg each injection")]
    # a change is not a stop
    assert not any(e[1] == "stop" and e[0] == "Buprenorphine" for e in events)


def test_urine_panels_are_markers_and_the_unexpected_ones_are_highlighted(clinic):
    fine, odd, dilute = seed(clinic)
    d = rdata.chart_data(clinic.patient_a, with_exposure=False)
    marks = {r["panel"]: r for r in charts.treatment_rows(d) if r["kind"] == "urine"}
    assert marks[fine.pk]["status"] == "urine"
    assert "as expected" in marks[fine.pk]["text"]
    assert marks[odd.pk]["status"] == "urine-flagged"
    assert "Fentanyl, urine: Unexpected positive: discuss with the patient; confirm before " \
           "acting." in marks[odd.pk]["text"]
    assert "suggests buprenorphine was added to the specimen" in marks[odd.pk]["text"]
    assert marks[dilute.pk]["status"] == "urine-withheld"
    assert "specimen not valid" in marks[dilute.pk]["text"]
    spec = charts.clinician_specs(d)["main"]
    panel = strip(spec)
    assert panel["layer"][2]["encoding"]["color"]["scale"]["domain"] == [
        "urine", "urine-flagged", "urine-withheld"]
    assert panel["layer"][2]["encoding"]["color"]["scale"]["range"][1] == "#c0392b"
    # on the shared axis: every layer's x follows x_start / x_end
    for layer in panel["layer"]:
        assert layer["encoding"]["x"]["scale"]["domain"] == [{"expr": "x_start"},
                                                             {"expr": "x_end"}]
    table = next(t for t in charts.tables(d) if t["id"] == "treatment")
    assert table["rows"][0][1] == "Urine drug test" and "specimen not valid" in table["rows"][0][2]
    assert any("changed to" in r[2] for r in table["rows"])


def test_a_withdrawn_panel_leaves_the_chart_and_a_correction_reads_again(clinic):
    fine, odd, dilute = seed(clinic)
    urine.withdraw_panel(clinic.clinician_a, clinic.patient_a, dilute, reason="wrong patient")
    data = urine.panel_data(odd)
    data["analytes"]["uds-norbuprenorphine"] = {"result": "positive"}
    data["analytes"]["uds-fentanyl"] = {"result": "negative"}
    fixed = urine.correct_panel(clinic.clinician_a, clinic.patient_a, odd, data, reason="misread")
    d = rdata.chart_data(clinic.patient_a, with_exposure=False)
    marks = {r["panel"]: r["status"] for r in charts.treatment_rows(d) if r["kind"] == "urine"}
    assert marks == {fine.pk: "urine", fixed.pk: "urine"}


def test_the_chart_payload_cache_follows_every_write(clinic):
    patient = clinic.patient_a
    now = timezone.now()
    built = []

    def payload():
        return rdata.cached_payload(patient, lambda: built.append(1) or charts.payload(
            rdata.chart_data(patient, with_exposure=False)), kind="test", now=now)

    first = payload()
    assert payload() == first and len(built) == 1  # unchanged record: reused
    fine, odd, dilute = seed(clinic)
    second = payload()
    assert second != first and '"status": "urine-flagged"' in second
    urine.withdraw_panel(clinic.clinician_a, patient, odd, reason="wrong patient")
    third = payload()
    assert third != second and '"status": "urine-flagged"' not in third
    data = urine.panel_data(fine)
    data["note"] = "checked"
    urine.correct_panel(clinic.clinician_a, patient, fine, data, reason="note")
    assert payload() != third
    before = payload()
    ongoing = treatment.current_episodes(patient).filter(status="active").first()
    treatment.change_episode(clinic.clinician_a, patient, ongoing, {"dose_mg": "100"},
                             reason="lower", at=days_ago(1).isoformat())
    assert payload() != before
    assert len(built) == 5  # built once per version of the record


def test_the_query_count_does_not_grow_with_panels_and_episodes(clinic,
                                                                django_assert_max_num_queries):
    seed(clinic)
    with django_assert_max_num_queries(8):
        rdata.chart_data(clinic.patient_a, with_exposure=False)


def test_the_visit_reports_chart_holds_the_strip_and_renders(clinic, monkeypatch):
    import vl_convert as vlc

    from speciosa.reports import pdf

    seed(clinic)
    seen = []
    real = charts.clinician_specs

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(out)
        return out

    monkeypatch.setattr(charts, "clinician_specs", spy)
    body = pdf.visit_report(clinic.patient_a, period="all", author=clinic.clinician_a)
    assert body[:5] == b"%PDF-"
    assert seen and any(p["title"]["text"].startswith("Treatment and urine drug tests")
                        for p in seen[0]["main"]["vconcat"])
    png = vlc.vegalite_to_png(strip_only(seen[0]["main"]), vl_version=charts.VEGA_LITE_VERSION)
    assert png[:4] == b"\x89PNG"
    shots = os.environ.get("SPECIOSA_SCREENSHOTS")
    if shots:
        with open(os.path.join(shots, "visit-report-treatment-strip.png"), "wb") as fh:
            fh.write(png)


def strip_only(spec):
    return {**spec, "vconcat": [strip(spec)]}
