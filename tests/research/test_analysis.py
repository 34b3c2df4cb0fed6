"""Cohort analysis: on the synthetic demo clinic it recovers the planted exposure-prolactin
slope within its 95% CI, reports patients and observations, and says what it cannot show."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import defaultdict
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from django.db import transaction
from django.test import override_settings

from speciosa.cli import main
from speciosa.research import analysis, deid

TODAY = dt.date(2026, 11, 20)
NOON_TODAY = dt.datetime(2026, 11, 20, 17, 0, tzinfo=dt.UTC)
DEMO = {"seed": 20261125, "n_patients": 40, "days": 120, "today": TODAY}
KEY = b"analysis-test-research-key-000001"
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="module")
def demo_run(django_db_setup, django_db_blocker):
    """Build the demo clinic once, analyse it, collect what the tests compare, roll back."""
    from speciosa import demo
    from speciosa.clinic.models import Dose, LabResult, Patient

    with django_db_blocker.unblock(), override_settings(PASSWORD_HASHERS=FAST_HASHER):
        with transaction.atomic():
            demo.build_demo_clinic(**DEMO)
            started = time.perf_counter()
            # analysed on the demo's "today" (the withheld recent days count back from it)
            with mock.patch("django.utils.timezone.now", return_value=NOON_TODAY):
                ds, result = analysis.run_cohort_analysis(KEY)
            seconds = time.perf_counter() - started
            draws, _ = analysis.draws_frame(ds.tables)
            # the demo's own exposure E_ij for every prolactin draw, from the stored doses
            d = deid.Deidentifier(KEY)
            # (patient, value) -> the exposures of the draws with that value (one patient may
            # have two draws of the same value)
            planted_e: dict[tuple[str, float], list[float]] = defaultdict(list)
            for p in Patient.objects.select_related("site"):
                from zoneinfo import ZoneInfo

                tz = ZoneInfo(p.site.time_zone)
                day_mg: dict[dt.date, float] = defaultdict(float)
                for taken_at, mg in Dose.objects.filter(patient=p).values_list("taken_at",
                                                                                "mitragynine_mg"):
                    day_mg[taken_at.astimezone(tz).date()] += mg or 0.0
                pid = d.patient_pseudonym(p.site.name, p.identifier)
                for at, value in LabResult.objects.filter(patient=p, lab="prolactin").values_list(
                        "collected_at", "canonical_value"):
                    planted_e[(pid, round(value, 3))].append(demo.recorded_exposure_mg_per_day(
                        dict(day_mg), at.astimezone(tz).date()))
            transaction.set_rollback(True)
    return {"ds": ds, "result": result, "seconds": seconds, "draws": draws,
            "planted_e": planted_e, "beta": demo.PLANTED_PROLACTIN_LOG_SLOPE_PER_100MG}


def test_it_recovers_the_planted_exposure_prolactin_slope_within_its_95_percent_ci(demo_run):
    effect = demo_run["result"].effect("exposure_prolactin", "within")
    assert effect.ci_low <= demo_run["beta"] <= effect.ci_high, (
        f"planted {demo_run['beta']}, estimated {effect.estimate:.3f} "
        f"({effect.ci_low:.3f} to {effect.ci_high:.3f})")
    assert effect.ci_high - effect.ci_low < 0.5  # informative, not a vacuous interval
    assert effect.ratio == pytest.approx(np.exp(effect.estimate))
    assert demo_run["result"].planted["beta_per_100mg"] == demo_run["beta"]


def test_it_reports_patients_and_observations_of_each_model(demo_run):
    result, draws = demo_run["result"], demo_run["draws"]
    effect = result.effect("exposure_prolactin", "within")
    assert effect.n_patients == draws["patient_id"].nunique() >= 20
    assert effect.n_observations == len(draws) >= 60
    assert result.cohort["patients_in_clinic"] == 40
    assert result.cohort["patients_exported"] == len(demo_run["ds"].tables["patients"])
    assert 20 <= result.cohort["patients_exported"] <= result.cohort["patients_consented"] < 40
    for name in ("prolactin_craving", "prolactin_withdrawal"):
        e = result.effect(name, "within")
        assert e.estimable and e.ci_low < e.estimate < e.ci_high
        assert 0 < e.n_observations <= len(draws)


def test_the_exposure_of_each_draw_is_the_demos_planted_exposure(demo_run):
    draws, planted = demo_run["draws"], demo_run["planted_e"]
    assert len(draws)
    for row in draws.itertuples():
        candidates = planted[(row.patient_id, round(row.prolactin_ng_per_ml, 3))]
        assert any(row.exposure_mg_per_day == pytest.approx(e, rel=1e-9, abs=1e-9)
                   for e in candidates), (row, candidates)


def test_draws_above_100_ng_per_ml_are_excluded_and_counted(demo_run):
    result, draws = demo_run["result"], demo_run["draws"]
    assert draws["prolactin_ng_per_ml"].max() <= 100
    labs = demo_run["ds"].tables["labs"]
    high = labs[(labs["lab"] == "prolactin") & (labs["canonical_value"] > 100)]
    assert result.exclusions["above_100_ng_per_ml"] == len(high)


def test_the_analysis_is_fast_enough_for_the_research_page(demo_run):
    assert demo_run["seconds"] < 15


def test_the_statement_says_what_the_data_cannot_show_and_recommends_no_dose(demo_run):
    text = demo_run["result"].statement
    for phrase in ("cannot show", "observational", "causes", "case report", "synthetic",
                   "not evidence", "Nothing here is a recommendation about any kratom dose"):
        assert phrase in text
    assert "you should" not in text.lower()


def test_the_plot_is_a_self_contained_svg_without_script(demo_run):
    fit = demo_run["result"].models[0]
    svg = analysis.scatter_svg(fit)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<circle") == fit.n_observations
    assert "<script" not in svg and "http://" not in svg.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")


# --------------------------------------------------------------------------- small cases

def _tables(rows: list[tuple[str, str, int, float, float]]) -> dict[str, pd.DataFrame]:
    """Minimal tables: (patient, sex, day_in_care, exposure mg/day, prolactin ng/mL)."""
    patients = sorted({(p, s) for p, s, *_ in rows})
    labs, exposure = [], []
    for p, _s, day, mg, prl in rows:
        labs.append({"patient_id": p, "lab": "prolactin", "canonical_value": prl,
                     "canonical_unit": "ng/mL", "day_in_care": day})
        exposure += [{"patient_id": p, "day_in_care": day - k, "mitragynine_mg": mg}
                     for k in range(1, 8)]
    return {
        "patients": pd.DataFrame([{"patient_id": p, "sex": s, "pregnant": False,
                                   "breastfeeding": False} for p, s in patients]),
        "labs": pd.DataFrame(labs),
        "daily_exposure": pd.DataFrame(exposure),
        "assessments": pd.DataFrame(columns=["patient_id", "instrument", "day_in_care", "total"]),
    }


def test_with_too_few_patients_it_says_not_estimable_instead_of_guessing():
    tables = _tables([("P-a", "male", 10, 50, 8.0), ("P-a", "male", 50, 150, 9.5),
                      ("P-b", "female", 10, 80, 12.0)])
    result = analysis.analyze(tables)
    effect = result.effect("exposure_prolactin", "within")
    assert effect.estimate is None and "not estimable" in effect.note
    assert effect.n_patients == 2 and effect.n_observations == 3
    assert "not estimable" in analysis.results_text(result)


def test_on_exact_data_it_finds_the_slope_used_to_make_them():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(12):
        sex = "female" if i % 2 else "male"
        base = np.exp(rng.normal(np.log(9), 0.3))
        for k, day in enumerate((10, 60, 110, 160)):
            mg = float(rng.uniform(20, 300))
            rows.append((f"P-{i:02d}", sex, day + k, mg, float(base * np.exp(0.3 * mg / 100
                                                                              + rng.normal(0, 0.02)))))
    result = analysis.analyze(_tables(rows))
    effect = result.effect("exposure_prolactin", "within")
    assert effect.estimate == pytest.approx(0.3, abs=0.02)
    assert effect.n_patients == 12 and effect.n_observations == 48


@pytest.mark.django_db
def test_speciosa_analyze_prints_json_and_writes_plots(clinic, tmp_path, capsys):
    assert main(["analyze", "--json", "--out", str(tmp_path / "out")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["statement"] == analysis.PLAIN_STATEMENT
    assert {m["name"] for m in data["models"]} == {s.name for s in analysis.SPECS}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "analysis.json", "exposure_prolactin.svg", "prolactin_craving.svg",
        "prolactin_withdrawal.svg", "report.txt"]
    from speciosa.clinic.models import AuditEntry

    assert AuditEntry.objects.filter(action="view", model="ResearchAnalysis").count() == 1
