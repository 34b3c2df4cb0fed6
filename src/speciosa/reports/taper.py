"""The predicted exposure under a taper plan, next to the course the diary gives so far.

A prediction from a population model, **not a recommendation**: the clinician entered the
schedule (:mod:`speciosa.clinic.taper`); :func:`speciosa.pharmacology.exposure.taper_preview`
only shows the mitragynine exposure it would give a typical patient, with the 5th-95th
percentile band of a simulated population and the expected washout after its last dose.

:func:`preview` runs the engine twice on the same grid (2-hourly, 300 simulated patients,
seed 0, as the patient page's charts): the diary's doses as recorded (the current course),
and the diary's doses before the plan starts followed by the plan's doses (the prediction).
The result is cached until the record or the plan changes (a new version of a plan is a new
row) or the hour turns. :func:`payload` is the JSON the page's ``charts.js`` draws
(the same shape as :func:`speciosa.reports.charts.payload`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.core.cache import cache
from django.utils import timezone

from speciosa.clinic import taper
from speciosa.clinic.models import Dose, TaperPlan
from speciosa.pharmacology import doses as pdoses
from speciosa.pharmacology import exposure as pexposure

from . import charts
from .data import (
    EXPOSURE_STEP_MINUTES,
    EXPOSURE_SUBJECTS,
    _tz_of,
    cached_payload,
    record_version,
    wall_ms,
)

__all__ = ["FOLLOW_DAYS", "LEAD_DAYS", "StepExposure", "TaperPreview", "payload", "preview"]

#: Days of the course shown before the plan starts, and after its last planned dose.
LEAD_DAYS = 14
FOLLOW_DAYS = 14
PREVIEW_CACHE_SECONDS = 3600
LABEL = ("Prediction from a population model, not a recommendation: the exposure the schedule "
         "the clinician entered would give, if it is followed. Speciosa does not propose doses.")
COLOURS = {"plan": "#1f5f8b", "band": "#7fb3d5", "diary": "#a66a00"}


@dataclass(frozen=True)
class StepExposure:
    """One step of the plan with the predicted mitragynine level over its days (ng/mL): the
    typical course's mean, and the mean of the 5th and 95th percentile curves."""

    step: taper.Step
    planned_mg_per_day: float | None
    mean_ng_per_ml: float | None
    p05_ng_per_ml: float | None
    p95_ng_per_ml: float | None


@dataclass
class TaperPreview:
    """What the plan page, its chart and the visit report show of one plan."""

    plan_id: int
    tz: dt.tzinfo
    now: dt.datetime
    start: dt.datetime
    end: dt.datetime
    planned_from: dt.datetime | None
    times: list[dt.datetime] = field(default_factory=list)
    plan_typical: list[float] = field(default_factory=list)
    plan_p05: list[float] = field(default_factory=list)
    plan_p95: list[float] = field(default_factory=list)
    diary_typical: list[float | None] = field(default_factory=list)
    steps: list[StepExposure] = field(default_factory=list)
    #: The current course: mean typical level over the 7 days before now (or before the plan
    #: starts, when it starts later), and the washout after the last recorded dose.
    current_mean_ng_per_ml: float | None = None
    current_last_dose_at: dt.datetime | None = None
    current_washout: dict[str, Any] = field(default_factory=dict)
    #: The washout after the plan's last planned dose: hours to 50 % and 10 % with ranges.
    plan_last_dose_at: dt.datetime | None = None
    plan_washout: dict[str, Any] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    unconverted: list[str] = field(default_factory=list)
    citations: tuple[str, ...] = ()
    problem: str = ""

    @property
    def available(self) -> bool:
        return not self.problem


def _diary_doses(plan: TaperPlan) -> list[pdoses.Dose]:
    out = []
    for taken_at, amount, unit, pct, gpc in (
            Dose.objects.current().filter(patient=plan.patient).order_by("taken_at")
            .values_list("taken_at", "amount", "unit", "mitragynine_percent",
                         "grams_per_capsule")):
        out.append(pdoses.Dose(taken_at=taken_at, amount=float(amount), unit=unit,
                               mitragynine_percent=None if pct is None else float(pct),
                               grams_per_capsule=None if gpc is None else float(gpc)))
    return out


def _washout(summary: pexposure.ExposureSummary) -> dict[str, Any]:
    def pair(lo, hi):
        return (float(lo), float(hi)) if lo is not None and hi is not None else None

    return {"h50": summary.hours_to_50_percent_after_last_dose,
            "h50_range": pair(summary.hours_to_50_percent_p05, summary.hours_to_50_percent_p95),
            "h10": summary.hours_to_10_percent_after_last_dose,
            "h10_range": pair(summary.hours_to_10_percent_p05, summary.hours_to_10_percent_p95)}


def _key(plan: TaperPlan, now: dt.datetime) -> str:
    h = hashlib.sha256(f"{plan.pk}|{record_version(plan.patient)}|"
                       f"{now.replace(minute=0, second=0, microsecond=0).isoformat()}".encode())
    return f"speciosa:taper-preview:{h.hexdigest()}"


def preview(plan: TaperPlan, *, now: dt.datetime | None = None,
            subjects: int = EXPOSURE_SUBJECTS) -> TaperPreview:
    """The predicted exposure under ``plan`` next to the diary's course (cached; see the
    module docstring)."""
    now = now or timezone.now()
    key = _key(plan, now) + f":{subjects}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    result = _compute(plan, now, subjects)
    cache.set(key, result, PREVIEW_CACHE_SECONDS)
    return result


def _compute(plan: TaperPlan, now: dt.datetime, subjects: int) -> TaperPreview:
    tz = _tz_of(plan.patient)
    steps = taper.steps_of(plan)
    plan_start = dt.datetime.combine(plan.start, dt.time.min, tzinfo=tz)
    start = (min(plan_start, now.astimezone(tz)).replace(minute=0, second=0, microsecond=0)
             - dt.timedelta(days=LEAD_DAYS))
    end = dt.datetime.combine(plan.end + dt.timedelta(days=FOLLOW_DAYS + 1), dt.time.min,
                              tzinfo=tz)
    out = TaperPreview(plan_id=plan.pk, tz=tz, now=now, start=start, end=end, planned_from=None,
                       citations=pexposure.model_citations())
    diary = _diary_doses(plan)
    history = [d for d in diary if d.taken_at < plan_start]
    planned = taper.planned_doses(plan)
    try:
        result = pexposure.taper_preview(history, planned, start=start, end=end,
                                         step_minutes=EXPOSURE_STEP_MINUTES, subjects=subjects,
                                         seed=0)
    except ValueError as exc:
        out.problem = str(exc)
        return out
    ok_planned, bad_planned = pdoses.convert_all(planned)
    if not ok_planned:
        out.problem = ("The plan's doses cannot be converted to mitragynine"
                       + (f" ({bad_planned[0][1]})" if bad_planned else "") + ".")
        return out
    n_hist = len(history)
    out.unconverted = [f"{'diary' if i < n_hist else 'planned'} dose: {why}"
                       for i, why in result.unconverted]
    out.planned_from = result.planned_from
    out.times = result.times
    out.plan_typical = [float(x) for x in result.mitragynine_ng_per_ml]
    out.plan_p05 = [float(x) for x in result.p05]
    out.plan_p95 = [float(x) for x in result.p95]
    out.plan_last_dose_at = result.summary.last_dose_at
    out.plan_washout = _washout(result.summary)
    out.assumptions = list(result.assumptions) + [
        "Planned doses are placed evenly between 08:00 and 22:00 (site time) on each day of "
        "a step; the diary's doses before the plan starts are counted as recorded."]
    times_h = np.asarray(result.times_h)
    for step in steps:
        lo = (dt.datetime.combine(step.start, dt.time.min, tzinfo=tz) - start).total_seconds() / 3600
        hi = (dt.datetime.combine(step.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
              - start).total_seconds() / 3600
        sel = (times_h >= lo) & (times_h < hi)
        ok, _bad = pdoses.convert_all([step.dose(plan_start)])
        mg_day = ok[0].mg * step.doses_per_day if ok else None
        if np.any(sel):
            out.steps.append(StepExposure(step, mg_day, float(result.mitragynine_ng_per_ml[sel].mean()),
                                          float(result.p05[sel].mean()),
                                          float(result.p95[sel].mean())))
        else:
            out.steps.append(StepExposure(step, mg_day, None, None, None))
    converted, _ = pdoses.convert_all([d for d in diary if d.taken_at <= now])
    if converted:
        course_end = min(now, end)
        if course_end > start:
            current = pexposure.patient_exposure(
                [d for d in diary if d.taken_at <= now], start, end,
                step_minutes=EXPOSURE_STEP_MINUTES, subjects=subjects, seed=0)
            upto = (course_end - start).total_seconds() / 3600
            out.diary_typical = [float(c) if h <= upto + 1e-9 else None
                                 for h, c in zip(times_h, current.mitragynine_ng_per_ml,
                                                 strict=True)]
            ref_end = min(now, plan_start)
            win = ((times_h >= (ref_end - start).total_seconds() / 3600 - 7 * 24)
                   & (times_h <= (ref_end - start).total_seconds() / 3600))
            if np.any(win):
                out.current_mean_ng_per_ml = float(current.mitragynine_ng_per_ml[win].mean())
            out.current_last_dose_at = current.summary.last_dose_at
            out.current_washout = _washout(current.summary)
        else:
            out.current_last_dose_at = max(d.taken_at for d in converted)
    return out


# --------------------------------------------------------------------------- text

def _hours(w: dict[str, Any], pct: str) -> str:
    hours, band = w.get(f"h{pct}"), w.get(f"h{pct}_range")
    if hours is None:
        return "—"
    spread = f" (90 % of simulated patients {band[0]:.0f}–{band[1]:.0f} h)" if band else ""
    return f"about {hours:.0f} h{spread}"


def _ng(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def summary_rows(p: TaperPreview) -> list[dict[str, str]]:
    """The short table beside the chart: the current course, each step, and after the plan."""
    rows = [{"what": "Current course (the diary so far)",
             "when": (f"last recorded dose {p.current_last_dose_at.astimezone(p.tz):%d %b %Y %H:%M}"
                      if p.current_last_dose_at else "no dose recorded"),
             "amount": "as recorded",
             "level": (f"{_ng(p.current_mean_ng_per_ml)} (mean of the 7 days before "
                       f"{'the plan' if p.planned_from and p.planned_from < p.now else 'now'})"
                       if p.current_mean_ng_per_ml is not None else "—"),
             "band": "",
             "washout": (f"50 %: {_hours(p.current_washout, '50')}; 10 %: "
                         f"{_hours(p.current_washout, '10')}") if p.current_washout else "—"}]
    for s in p.steps:
        st = s.step
        rows.append({
            "what": f"{st.start:%d %b} – {st.end:%d %b %Y}",
            "when": f"{st.days} day{'s' if st.days != 1 else ''}",
            "amount": (f"{taper.number(st.amount)} {taper.unit_words(st.unit)} × "
                       f"{st.doses_per_day} a day = {taper.number(st.per_day)} "
                       f"{taper.unit_words(st.unit)} a day"
                       + (f" (≈{s.planned_mg_per_day:.0f} mg mitragynine)"
                          if s.planned_mg_per_day is not None else "")),
            "level": _ng(s.mean_ng_per_ml),
            "band": (f"{_ng(s.p05_ng_per_ml)}–{_ng(s.p95_ng_per_ml)}"
                     if s.p05_ng_per_ml is not None else ""),
            "washout": ""})
    if p.plan_last_dose_at is not None:
        rows.append({"what": "After the plan's last dose",
                     "when": f"{p.plan_last_dose_at.astimezone(p.tz):%d %b %Y %H:%M}",
                     "amount": "none planned", "level": "", "band": "",
                     "washout": (f"50 %: {_hours(p.plan_washout, '50')}; 10 %: "
                                 f"{_hours(p.plan_washout, '10')}")})
    return rows


# --------------------------------------------------------------------------- chart

def _rows(p: TaperPreview) -> list[dict[str, Any]]:
    from_h = p.planned_from
    out = []
    for i, t in enumerate(p.times):
        row: dict[str, Any] = {"t": wall_ms(t, p.tz),
                               "when": t.astimezone(p.tz).strftime(charts.WHEN_FORMAT)}
        if from_h is not None and t >= from_h - dt.timedelta(hours=EXPOSURE_STEP_MINUTES / 60):
            row.update(plan=round(p.plan_typical[i], 2), lo=round(p.plan_p05[i], 2),
                       hi=round(p.plan_p95[i], 2))
        if i < len(p.diary_typical) and p.diary_typical[i] is not None:
            row["diary"] = round(p.diary_typical[i], 2)
        out.append(row)
    return out


def spec(p: TaperPreview, *, width: int = 860, height: int = 220) -> dict[str, Any]:
    """One Vega-Lite panel: the diary's estimated course, the predicted course under the
    plan with its band, the plan's start, now, and the washout marks; the range presets are
    the plan's window (``plan``) and the same from the diary's start (``all``)."""
    rows = _rows(p)
    x = {"field": "t", "type": "temporal", "title": None,
         "scale": {"type": "utc", "domain": [{"expr": "x_start"}, {"expr": "x_end"}]},
         "axis": {"labelOverlap": True, "grid": True, "tickCount": 6, "format": "%d %b"}}
    y = {"type": "quantitative", "title": "mitragynine ng/mL (model)"}
    series = [
        {"data": {"values": rows}, "transform": [{"filter": "isValid(datum.lo)"}],
         "mark": {"type": "area", "clip": True, "color": COLOURS["band"], "opacity": 0.35},
         "encoding": {"x": x, "y": {"field": "lo", **y}, "y2": {"field": "hi"}}},
        {"data": {"values": rows}, "transform": [{"filter": "isValid(datum.plan)"}],
         "mark": {"type": "line", "clip": True, "color": COLOURS["plan"], "strokeWidth": 1.8},
         "encoding": {"x": x, "y": {"field": "plan", **y},
                      "tooltip": [{"field": "when", "title": "Time"},
                                  {"field": "plan", "title": "Predicted under the plan, ng/mL"},
                                  {"field": "lo", "title": "5th percentile"},
                                  {"field": "hi", "title": "95th percentile"}]}},
        {"data": {"values": rows}, "transform": [{"filter": "isValid(datum.diary)"}],
         "mark": {"type": "line", "clip": True, "color": COLOURS["diary"], "strokeWidth": 1.4,
                  "strokeDash": [5, 2]},
         "encoding": {"x": x, "y": {"field": "diary", **y},
                      "tooltip": [{"field": "when", "title": "Time"},
                                  {"field": "diary", "title": "Estimated from the diary, ng/mL"}]}},
    ]
    marks = []
    if p.planned_from is not None:
        marks.append({"t": wall_ms(p.planned_from, p.tz), "label": "plan", "ly": 8,
                      "text": f"First planned dose {p.planned_from.astimezone(p.tz):%d %b %Y %H:%M}"})
    if p.start < p.now < p.end:
        marks.append({"t": wall_ms(p.now, p.tz), "label": "now", "ly": 20, "text": "Now"})
    if p.plan_last_dose_at is not None:
        for pct, ly in (("50", 8), ("10", 20)):
            hours = p.plan_washout.get(f"h{pct}")
            if hours is not None:
                at = p.plan_last_dose_at + dt.timedelta(hours=hours)
                marks.append({"t": wall_ms(at, p.tz), "label": f"{pct} %", "ly": ly,
                              "text": f"Predicted {pct} % of the level before the plan's last "
                                      f"dose, about {hours:.0f} h after it"})
    if marks:
        series += [
            {"data": {"values": marks},
             "mark": {"type": "rule", "clip": True, "color": "#555", "strokeDash": [3, 3]},
             "encoding": {"x": x, "tooltip": [{"field": "text", "title": "Marker"}]}},
            {"data": {"values": marks},
             "mark": {"type": "text", "clip": True, "color": "#333", "align": "left", "dx": 3,
                      "fontSize": 10},
             "encoding": {"x": x, "y": {"field": "ly", "type": "quantitative", "scale": None},
                          "text": {"field": "label"}}}]
    # the legend is the page's (two swatches above the chart): a Vega legend wider than a
    # phone's chart would widen the drawing past its box
    panel = {"title": {"text": "Mitragynine (model)"},
             "height": height, "width": width, "layer": series}
    s0, e0 = wall_ms(p.start, p.tz), wall_ms(p.end, p.tz)
    all_start = min([s0] + ([r["t"] for r in rows if "diary" in r][:1]))
    ranges = {"plan": [s0, e0], "all": [all_start, e0]}
    return {
        "$schema": charts.SCHEMA, "description": "Taper plan preview",
        "params": [{"name": "x_start", "value": s0}, {"name": "x_end", "value": e0}],
        "vconcat": [panel], "spacing": 14,
        "config": {"font": "DejaVu Sans, Helvetica, Arial, sans-serif", "view": {"stroke": "#ddd"},
                   "axis": {"labelFontSize": 11, "titleFontSize": 11},
                   "axisY": {"minExtent": 34},
                   "title": {"anchor": "start", "fontSize": 13, "fontWeight": "bold", "offset": 6},
                   "legend": {"orient": "top", "labelFontSize": 11}},
        "usermeta": {"ranges": ranges, "default_range": "plan", "gutter": 34 + 26 + 12,
                     "titles": [panel["title"]["text"]]},
    }


def build_payload(p: TaperPreview) -> dict[str, Any]:
    """The JSON of the plan page's chart (read by ``charts.js``)."""
    if not p.available:
        return {"specs": {"main": spec(p)}, "tables": [], "note": "",
                "exposure": {"available": False, "problem": p.problem},
                "range_labels": {"plan": "The plan", "all": "All"}, "counts": {"points": 0}}
    by_day: dict[str, list[str]] = {}
    for r in _rows(p):
        hour = dt.datetime.fromtimestamp(r["t"] / 1000, dt.UTC).hour  # wall time read as UTC
        day = r["when"][:15]
        if hour == 12 or day not in by_day:
            by_day[day] = [r["when"], charts._fmt(r.get("diary")), charts._fmt(r.get("plan")),
                           charts._fmt(r.get("lo")), charts._fmt(r.get("hi"))]
    table_rows = list(by_day.values())
    lines = [LABEL] + [
        f"{row['what']}: {row['amount']}; level {row['level']}"
        + (f", band {row['band']}" if row["band"] else "")
        + (f"; washout {row['washout']}" if row["washout"] else "") for row in summary_rows(p)]
    return {
        "specs": {"main": spec(p)},
        "tables": [charts._table(
            "taper", "Predicted mitragynine exposure (model, ng/mL, around noon)",
            ["Time", "Estimated from the diary", "Predicted under the plan", "5th percentile",
             "95th percentile"], list(reversed(table_rows)))],
        "note": "",
        "exposure": {"available": True, "label": LABEL, "lines": lines[1:],
                     "assumptions": p.assumptions, "unconverted": p.unconverted},
        "range_labels": {"plan": "The plan", "all": "All"},
        "counts": {"points": len(p.times)},
    }


def payload(plan: TaperPlan) -> str:
    """The chart JSON of ``plan`` as text, cached with the patient's charts."""
    return cached_payload(plan.patient, lambda: build_payload(preview(plan)),
                          kind=f"taper-{plan.pk}")
