"""Vega-Lite specs (plain dicts) for the patient page, the patient's own page and the PDF.

The same builder serves the browser (vendored vega-embed, ``static/speciosa/charts.js``) and
the visit report (``vl-convert-python``). Every panel shares one time axis: each x scale is a
UTC scale whose domain is the pair of top-level parameters ``x_start`` and ``x_end`` (ms of
site wall-clock time, see :mod:`speciosa.reports.data`), so the range selector changes two
signals and every panel follows.

``usermeta`` carries what the page needs besides the spec: the range presets (``ranges``,
``default_range``), the horizontal space taken by axes (``gutter``) so the page can size the
panels to its container, and the panel titles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from .data import LabPoint, PatientChartData, wall_ms

SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
#: Vega-Lite version the specs are written for (the vendored browser build and vl-convert).
VEGA_LITE_VERSION = "6.4"
DAY_MS = 86_400_000
RANGE_DAYS = {"30": 30, "90": 90}
RANGE_LABELS = {"30": "Last 30 days", "90": "Last 90 days", "all": "All"}

#: Labs with their own panel on the clinician's page; the rest come "on demand".
MAIN_LABS = ("prolactin",)
#: Order of the on-demand lab panels (liver panel first, then hormones, then the rest).
LAB_ORDER = ("alt", "ast", "bilirubin", "alp", "ggt", "testosterone", "tsh", "creatinine")

COLOURS = {
    "kratom": "#a66a00",
    "exposure": "#1f5f8b",
    "band": "#7fb3d5",
    "cows": "#c4470a",
    "sows": "#6a51a3",
    "craving-nrs": "#1b7e5a",
    "lab": "#444444",
    "flagged": "#c0392b",
    "range": "#2e8b57",
    "urgent": "#c0392b",
    "warning": "#d68910",
    "info": "#2874a6",
    "side-effects": "#8e44ad",
    "buprenorphine": "#2e86c1",
    "methadone": "#7d3c98",
    "naltrexone": "#17a589",
    "urine": "#5d6d7e",
    "urine-flagged": "#c0392b",
    "urine-withheld": "#d68910",
}
#: Rows of the treatment strip, in order (issue 19).
TREATMENT_ROWS = ("Buprenorphine", "Methadone", "Naltrexone", "Urine tests")
#: How an episode began or ended, as a marker shape.
EPISODE_EVENTS = {"start": "triangle-right", "change": "diamond", "stop": "square",
                  "injection": "cross"}
INSTRUMENT_LABELS = {"cows": "COWS", "sows": "SOWS", "craving-nrs": "Craving (0-10)"}
FLAGGED = ("high", "low", "critical", "abnormal")

WHEN_FORMAT = "%a %d %b %Y, %H:%M"
DAY_FORMAT = "%a %d %b %Y"


# ----------------------------------------------------------------------------- helpers

def _when(at: dt.datetime, data: PatientChartData) -> str:
    return at.astimezone(data.tz).strftime(WHEN_FORMAT)


def _x(*, time_unit: str | None = None, labels: bool = True) -> dict[str, Any]:
    enc: dict[str, Any] = {
        "field": "t", "type": "temporal", "title": None,
        "scale": {"type": "utc", "domain": [{"expr": "x_start"}, {"expr": "x_end"}]},
        "axis": {"labels": labels, "labelOverlap": True, "grid": True, "tickCount": 6, "format": "%d %b"},
    }
    if time_unit:
        enc["timeUnit"] = time_unit
    return enc


def _num(x: float | None, places: int = 1) -> float | None:
    return None if x is None else round(float(x), places)


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def ranges(data: PatientChartData, extra_end: dt.datetime | None = None) -> dict[str, list[int]]:
    """The range presets: ``{"30": [start_ms, end_ms], "90": [...], "all": [...]}``.

    The axis ends half a day after now (or after ``extra_end``, a predicted washout time,
    when that is later but within 14 days), and "all" starts half a day before the first record.
    """
    end = wall_ms(data.now, data.tz)
    if extra_end is not None and extra_end > data.now:
        end = min(wall_ms(extra_end, data.tz), end + 14 * DAY_MS)
    end += DAY_MS // 2
    out = {key: [end - days * DAY_MS, end] for key, days in RANGE_DAYS.items()}
    out["all"] = [min(wall_ms(data.first, data.tz) - DAY_MS // 2, out["30"][0]), end]
    return out


def _frame(panels: list[dict[str, Any]], data: PatientChartData, *, default_range: str,
           width: int, gutter: int, title: str, extra_end: dt.datetime | None = None,
           range_override: tuple[int, int] | None = None) -> dict[str, Any]:
    presets = ranges(data, extra_end)
    start, end = range_override or presets[default_range]
    for p in panels:
        p["width"] = width
    return {
        "$schema": SCHEMA,
        "description": title,
        "params": [{"name": "x_start", "value": start}, {"name": "x_end", "value": end}],
        "vconcat": panels,
        "spacing": 14,
        "resolve": {"scale": {"x": "independent", "color": "independent", "shape": "independent"},
                    "legend": {"color": "independent", "shape": "independent"}},
        "config": {
            "font": "DejaVu Sans, Helvetica, Arial, sans-serif",
            "view": {"stroke": "#ddd"},
            "axis": {"labelFontSize": 11, "titleFontSize": 11, "labelColor": "#333", "titleColor": "#333"},
            "axisY": {"minExtent": 34},
            "title": {"anchor": "start", "fontSize": 13, "fontWeight": "bold", "offset": 6},
            "legend": {"orient": "top", "labelFontSize": 11, "titleFontSize": 11},
        },
        "usermeta": {"ranges": presets, "default_range": default_range, "gutter": gutter,
                     "titles": [p.get("title", {}).get("text", "") for p in panels]},
    }


# ----------------------------------------------------------------------------- panels

def daily_rows(data: PatientChartData) -> list[dict[str, Any]]:
    """One row per diary day with kratom: estimated mitragynine mg and the number of doses."""
    rows = []
    for day, mg in sorted(data.daily_mg.items()):
        rows.append({"t": wall_ms(day, data.tz), "mg": _num(mg, 0), "n": data.doses_per_day.get(day, 0),
                     "when": day.strftime(DAY_FORMAT)})
    return rows


def exposure_rows(data: PatientChartData) -> list[dict[str, Any]]:
    """The model's typical concentration and 5-95 % band on its time grid."""
    ex = data.exposure
    if ex is None:
        return []
    return [{"t": wall_ms(t, data.tz), "typ": _num(c, 2), "lo": _num(lo, 2), "hi": _num(hi, 2),
             "when": _when(t, data)}
            for t, c, lo, hi in zip(ex.times, ex.typical_ng_per_ml, ex.p05_ng_per_ml,
                                    ex.p95_ng_per_ml, strict=False)]


def washout_marks(data: PatientChartData) -> list[dict[str, Any]]:
    """Predicted times after the last dose to 50 % and 10 % of the 24-hour average before the
    last dose (the model's estimate; it does not predict withdrawal)."""
    ex = data.exposure
    if ex is None or ex.last_dose_at is None:
        return []
    out = []
    for pct, hours in (("50", ex.hours_to_50_percent), ("10", ex.hours_to_10_percent)):
        if hours is None:
            continue
        at = ex.last_dose_at + dt.timedelta(hours=hours)
        out.append({"t": wall_ms(at, data.tz), "label": f"{pct} %",
                    "text": (f"Model estimate: {pct} % of the 24-hour average before the last "
                             f"dose about {hours:.0f} h after the last dose"),
                    "when": _when(at, data)})
    return out


def washout_end(data: PatientChartData) -> dt.datetime | None:
    """When the model predicts 10 % of the 24-hour average before the last dose (for the axis
    end), if known."""
    ex = data.exposure
    if ex is None or ex.last_dose_at is None or ex.hours_to_10_percent is None:
        return None
    return ex.last_dose_at + dt.timedelta(hours=ex.hours_to_10_percent)


def use_panel(data: PatientChartData, *, with_exposure: bool, height: int = 130) -> dict[str, Any]:
    """Kratom per day (bars, estimated mg mitragynine) with the exposure line and band."""
    bars = {
        "data": {"values": daily_rows(data)},
        "mark": {"type": "bar", "clip": True, "color": COLOURS["kratom"], "opacity": 0.75,
                 "width": {"band": 0.7}},
        "encoding": {
            "x": _x(time_unit="utcyearmonthdate"),
            "y": {"field": "mg", "type": "quantitative", "title": "kratom, mg mitragynine/day",
                  "axis": {"titleColor": COLOURS["kratom"], "orient": "left"}},
            "tooltip": [{"field": "when", "title": "Day"},
                        {"field": "mg", "title": "Mitragynine, mg (estimate)"},
                        {"field": "n", "title": "Doses"}],
        },
    }
    title = "Kratom per day" + (" and estimated mitragynine exposure" if with_exposure else "")
    rows = exposure_rows(data) if with_exposure else []
    if not rows:
        return {"title": {"text": title}, "height": height, **bars}
    y_ex = {"type": "quantitative", "title": "mitragynine ng/mL (model)",
            "axis": {"titleColor": COLOURS["exposure"], "orient": "right"}}
    exposure = {
        "layer": [
            {"data": {"values": rows},
             "mark": {"type": "area", "clip": True, "color": COLOURS["band"], "opacity": 0.35},
             "encoding": {"x": _x(), "y": {"field": "lo", **y_ex}, "y2": {"field": "hi"}}},
            {"data": {"values": rows},
             "mark": {"type": "line", "clip": True, "color": COLOURS["exposure"], "strokeWidth": 1.5},
             "encoding": {"x": _x(), "y": {"field": "typ", **y_ex},
                          "tooltip": [{"field": "when", "title": "Time"},
                                      {"field": "typ", "title": "Typical, ng/mL (model)"},
                                      {"field": "lo", "title": "5th percentile"},
                                      {"field": "hi", "title": "95th percentile"}]}},
        ],
    }
    marks = washout_marks(data)
    if marks:
        exposure["layer"] += [
            {"data": {"values": marks},
             "mark": {"type": "rule", "clip": True, "color": COLOURS["exposure"], "strokeDash": [4, 3]},
             "encoding": {"x": _x(), "tooltip": [{"field": "text", "title": "Washout"},
                                                 {"field": "when", "title": "At"}]}},
            {"data": {"values": marks},
             "mark": {"type": "text", "clip": True, "color": COLOURS["exposure"], "align": "left",
                      "dx": 3, "y": 6, "fontSize": 10},
             "encoding": {"x": _x(), "text": {"field": "label"}}},
        ]
    return {"title": {"text": title}, "height": height, "layer": [bars, exposure],
            "resolve": {"scale": {"y": "independent"}}}


def score_rows(data: PatientChartData, instruments: Iterable[str]) -> list[dict[str, Any]]:
    """Scores of ``instruments`` (with a total), oldest first."""
    wanted = set(instruments)
    return [{"t": wall_ms(s.at, data.tz), "score": s.total, "instrument": INSTRUMENT_LABELS[s.instrument],
             "band": s.band, "when": _when(s.at, data)}
            for s in data.scores if s.instrument in wanted and s.total is not None]


def scores_panel(data: PatientChartData, instruments: tuple[str, ...], title: str, *,
                 y_title: str, y_max: int | None = None, height: int = 110) -> dict[str, Any] | None:
    """Instrument totals as lines with points (one colour per instrument)."""
    rows = score_rows(data, instruments)
    if not rows:
        return None
    names = [INSTRUMENT_LABELS[i] for i in instruments]
    y: dict[str, Any] = {"field": "score", "type": "quantitative", "title": y_title}
    if y_max is not None:
        y["scale"] = {"domain": [0, y_max]}
    color = {"field": "instrument", "type": "nominal", "title": None,
             "scale": {"domain": names, "range": [COLOURS[i] for i in instruments]},
             "legend": {"orient": "top"} if len(instruments) > 1 else None}
    return {
        "title": {"text": title}, "height": height, "data": {"values": rows},
        "mark": {"type": "line", "clip": True, "point": {"filled": True, "size": 28}, "strokeWidth": 1.2,
                 "interpolate": "linear"},
        "encoding": {"x": _x(), "y": y, "color": color,
                     "tooltip": [{"field": "instrument", "title": "Instrument"},
                                 {"field": "score", "title": "Score"},
                                 {"field": "band", "title": "Band"},
                                 {"field": "when", "title": "When"}]},
    }


def lab_rows(points: list[LabPoint], data: PatientChartData) -> list[dict[str, Any]]:
    """Results of one lab with their flags, oldest first."""
    return [{"t": wall_ms(p.at, data.tz), "value": _num(p.value, 2), "shown": p.shown,
             "flag": p.flag or "not flagged", "flagged": p.flag in FLAGGED,
             "range": f"{p.reference_label} {_fmt(p.reference_low)}–{_fmt(p.reference_high)} "
                      f"{p.unit_shown}",
             "when": _when(p.at, data)} for p in points]


def lab_panel(data: PatientChartData, code: str, *, height: int = 100) -> dict[str, Any] | None:
    """One lab over time: the reference range shaded, the results as a line, flagged points red."""
    points = data.labs_of(code)
    if not points:
        return None
    latest = points[-1]
    rows = lab_rows(points, data)
    top = max([p.value for p in points] + [latest.reference_high or 0.0])
    y = {"field": "value", "type": "quantitative", "title": latest.unit_shown,
         "scale": {"domain": [0, round(top * 1.15, 3) or 1], "nice": False}}
    layers: list[dict[str, Any]] = []
    if latest.reference_low is not None or latest.reference_high is not None:
        band = {"low": latest.reference_low or 0.0,
                "high": latest.reference_high if latest.reference_high is not None else max(p.value for p in points),
                "text": f"{latest.reference_label} {_fmt(latest.reference_low)}–"
                        f"{_fmt(latest.reference_high)} {latest.unit_shown}"}
        layers.append({
            "data": {"values": [band]},
            "mark": {"type": "rect", "color": COLOURS["range"], "opacity": 0.13},
            "encoding": {"x": {"value": 0}, "x2": {"value": "width"},
                         "y": {"field": "low", "type": "quantitative", "scale": y["scale"]}, "y2": {"field": "high"},
                         "tooltip": [{"field": "text", "title": "Reference range"}]},
        })
    layers.append({"mark": {"type": "line", "clip": True, "color": COLOURS["lab"], "strokeWidth": 1.2},
                   "encoding": {"x": _x(), "y": y}})
    layers.append({
        "mark": {"type": "point", "clip": True, "filled": True, "size": 46},
        "encoding": {
            "x": _x(), "y": y,
            "color": {"condition": {"test": "datum.flagged", "value": COLOURS["flagged"]},
                      "value": COLOURS["lab"]},
            "shape": {"condition": {"test": "datum.flagged", "value": "triangle-up"}, "value": "circle"},
            "tooltip": [{"field": "shown", "title": latest.name}, {"field": "flag", "title": "Flag"},
                        {"field": "range", "title": "Reference"}, {"field": "when", "title": "Collected"}],
        },
    })
    return {"title": {"text": f"{latest.name} ({latest.unit_shown}), reference range shaded, flagged points red"},
            "height": height, "data": {"values": rows}, "layer": layers}


def event_rows(data: PatientChartData) -> list[dict[str, Any]]:
    """Side-effect reports and alerts as markers."""
    rows = [{"t": wall_ms(s.at, data.tz), "row": "Side effects", "kind": "side-effects",
             "text": ", ".join(s.symptoms), "when": _when(s.at, data)} for s in data.side_effects]
    rows += [{"t": wall_ms(a.first_seen_at, data.tz), "row": "Alerts", "kind": a.severity,
              "text": f"{a.severity}: {a.topic} — {a.get_status_display().lower()}",
              "when": _when(a.first_seen_at, data)} for a in data.alerts]
    return rows


def events_panel(data: PatientChartData) -> dict[str, Any] | None:
    """A strip of markers: side-effect reports and alerts (colour by severity)."""
    rows = event_rows(data)
    if not rows:
        return None
    kinds = ["side-effects", "urgent", "warning", "info"]
    return {
        "title": {"text": "Side effects and alerts"}, "height": 44, "data": {"values": rows},
        "mark": {"type": "point", "clip": True, "filled": True, "size": 60},
        "encoding": {
            "x": _x(),
            "y": {"field": "row", "type": "nominal", "title": None,
                  "scale": {"domain": ["Side effects", "Alerts"]}},
            "shape": {"field": "row", "type": "nominal", "legend": None,
                      "scale": {"domain": ["Side effects", "Alerts"], "range": ["circle", "diamond"]}},
            "color": {"field": "kind", "type": "nominal", "title": None,
                      "scale": {"domain": kinds, "range": [COLOURS[k] for k in kinds]},
                      "legend": {"orient": "top",
                                 "labelExpr": "datum.label == 'side-effects' ? 'side effect' "
                                              ": datum.label + ' alert'"}},
            "tooltip": [{"field": "text", "title": "What"}, {"field": "when", "title": "When"}],
        },
    }


def treatment_rows(data: PatientChartData) -> list[dict[str, Any]]:
    """Treatment episodes as bands (start to stop, or to now) with their start, change, stop
    and injection markers, and urine drug test panels as markers (issue 19)."""
    rows: list[dict[str, Any]] = []
    now_ms = wall_ms(data.now, data.tz)
    for e in data.episodes:
        row = e.drug.capitalize()
        label = f"{e.drug} {e.formulation}" + (f", {e.dose}" if e.dose else "")
        until = _when(e.end, data) if e.end else "ongoing"
        start_ms = wall_ms(e.start, data.tz)
        end_ms = wall_ms(e.end, data.tz) if e.end else now_ms
        rows.append({"kind": "band", "row": row, "drug": e.drug, "t": start_ms,
                     "t2": max(end_ms, start_ms + DAY_MS // 4), "text": label,
                     "when": f"{_when(e.start, data)} to {until}"})
        rows.append({"kind": "event", "row": row, "event": e.began, "t": start_ms,
                     "text": f"{'changed to' if e.began == 'change' else 'started'}: {label}",
                     "when": _when(e.start, data)})
        if e.end is not None and e.ended == "stop":
            rows.append({"kind": "event", "row": row, "event": "stop", "t": end_ms,
                         "text": f"stopped: {label}" + (f" ({e.stop_reason})" if e.stop_reason
                                                        else ""),
                         "when": _when(e.end, data)})
        for day in e.injections:
            rows.append({"kind": "event", "row": row, "event": "injection",
                         "t": wall_ms(day, data.tz), "text": f"injection: {label}",
                         "when": day.strftime(DAY_FORMAT)})
    for u in data.urine:
        status = "urine-withheld" if u.withheld else ("urine-flagged" if u.concerns else "urine")
        what = ("specimen not valid as it stands: results not read" if u.withheld else
                "; ".join(u.concerns) if u.concerns else "as expected")
        rows.append({"kind": "urine", "row": "Urine tests", "status": status,
                     "t": wall_ms(u.at, data.tz), "panel": u.pk,
                     "text": f"{u.panels} ({u.method}): {what}", "results": u.results,
                     "when": _when(u.at, data)})
    return rows


def treatment_panel(data: PatientChartData) -> dict[str, Any] | None:
    """A strip: treatment episodes as bands with start, change, stop and injection markers;
    urine drug tests as markers, an unexpected or an expected-but-not-found result in red
    ("discuss with the patient; confirm before acting"), a specimen not valid in orange."""
    rows = treatment_rows(data)
    if not rows:
        return None
    present = [r for r in TREATMENT_ROWS if any(x["row"] == r for x in rows)]
    y = {"field": "row", "type": "nominal", "title": None, "scale": {"domain": present},
         "axis": {"labelLimit": 90}}
    drugs = ["buprenorphine", "methadone", "naltrexone"]
    statuses = ["urine", "urine-flagged", "urine-withheld"]
    events = list(EPISODE_EVENTS)
    return {
        "title": {"text": "Treatment and urine drug tests",
                  # two short lines: whole on a 360 px phone
                  "subtitle": ["Red: discuss with the patient;", "confirm before acting."],
                  "subtitleFontSize": 11, "subtitleColor": "#555"},
        "height": 22 * len(present) + 10, "data": {"values": rows},
        # the drugs' colours and the urine tests' are two scales, not one
        "resolve": {"scale": {"color": "independent"}, "legend": {"color": "independent"}},
        "layer": [
            {"transform": [{"filter": "datum.kind == 'band'"}],
             "mark": {"type": "bar", "clip": True, "opacity": 0.35, "height": 12},
             "encoding": {"x": _x(), "x2": {"field": "t2"}, "y": y,
                          "color": {"field": "drug", "type": "nominal", "title": None,
                                    "scale": {"domain": drugs,
                                              "range": [COLOURS[d] for d in drugs]},
                                    "legend": None},
                          "tooltip": [{"field": "text", "title": "Treatment"},
                                      {"field": "when", "title": "When"}]}},
            {"transform": [{"filter": "datum.kind == 'event'"}],
             "mark": {"type": "point", "clip": True, "filled": True, "size": 55,
                      "color": "#333"},
             "encoding": {"x": _x(), "y": y,
                          "shape": {"field": "event", "type": "nominal", "title": None,
                                    "scale": {"domain": events,
                                              "range": [EPISODE_EVENTS[e] for e in events]},
                                    "legend": {"orient": "top", "columns": 2}},
                          "tooltip": [{"field": "text", "title": "What"},
                                      {"field": "when", "title": "When"}]}},
            {"transform": [{"filter": "datum.kind == 'urine'"}],
             "mark": {"type": "point", "clip": True, "filled": True, "size": 90,
                      "shape": "circle", "stroke": "#fff", "strokeWidth": 1},
             "encoding": {"x": _x(), "y": y,
                          "color": {"field": "status", "type": "nominal", "title": None,
                                    "scale": {"domain": statuses,
                                              "range": [COLOURS[k] for k in statuses]},
                                    "legend": {"orient": "bottom", "columns": 1,
                                               "labelLimit": 220,
                                               "labelExpr":
                                               "datum.label == 'urine-flagged' ? "
                                               "'urine test: discuss' : datum.label == "
                                               "'urine-withheld' ? 'urine test: specimen not "
                                               "valid' : 'urine test'"}},
                          "tooltip": [{"field": "text", "title": "Urine drug test"},
                                      {"field": "results", "title": "Results"},
                                      {"field": "when", "title": "Collected"}]}},
        ],
    }


# ----------------------------------------------------------------------------- specs

def clinician_specs(data: PatientChartData, *, width: int = 860, default_range: str = "90",
                    range_override: tuple[int, int] | None = None) -> dict[str, dict[str, Any]]:
    """The clinician's charts: ``{"main": spec, "labs": spec or absent}``.

    ``main``: kratom per day with exposure; COWS and SOWS; craving; prolactin; treatment
    episodes and urine drug tests; side effects and alerts. ``labs``: the other laboratory
    results (liver panel, testosterone, ...), one panel each, shown on demand. Both share the
    time axis parameters.
    """
    with_exposure = data.exposure is not None
    panels = [use_panel(data, with_exposure=with_exposure),
              scores_panel(data, ("cows", "sows"), "Withdrawal: COWS and SOWS", y_title="score"),
              scores_panel(data, ("craving-nrs",), "Craving", y_title="0-10", y_max=10),
              *(lab_panel(data, code) for code in MAIN_LABS),
              treatment_panel(data),
              events_panel(data)]
    gutter = 34 + 26 + (62 if with_exposure else 0) + 12
    title = f"Charts of {data.patient.name}"
    out = {"main": _frame([p for p in panels if p], data, default_range=default_range, width=width,
                          gutter=gutter, title=title, extra_end=washout_end(data),
                          range_override=range_override)}
    others = sorted((c for c in data.lab_codes() if c not in MAIN_LABS),
                    key=lambda c: (LAB_ORDER.index(c) if c in LAB_ORDER else len(LAB_ORDER), c))
    lab_panels = [p for p in (lab_panel(data, c, height=80) for c in others) if p]
    if lab_panels:
        out["labs"] = _frame(lab_panels, data, default_range=default_range, width=width,
                             gutter=34 + 26 + 12, title=f"Other laboratory results of {data.patient.name}",
                             extra_end=washout_end(data), range_override=range_override)
    return out


def patient_specs(data: PatientChartData, *, width: int = 320) -> dict[str, dict[str, Any]]:
    """The patient's own simpler view: kratom per day, craving, withdrawal (SOWS)."""
    panels = [use_panel(data, with_exposure=False, height=110),
              scores_panel(data, ("craving-nrs",), "Craving", y_title="0-10", y_max=10, height=90),
              scores_panel(data, ("sows",), "Withdrawal (SOWS)", y_title="0-64", height=90)]
    for p in panels:
        if p and "title" in p:
            p["title"]["text"] = p["title"]["text"].replace("Kratom per day", "My kratom per day")
    return {"main": _frame([p for p in panels if p], data, default_range="30", width=width,
                           gutter=34 + 26 + 8, title="My kratom use, craving and withdrawal")}


# ----------------------------------------------------------------------------- tables

def _table(id: str, caption: str, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"id": id, "caption": caption, "columns": columns, "rows": rows}


def tables(data: PatientChartData, *, simple: bool = False) -> list[dict[str, Any]]:
    """The accessible table view of the charts: the same numbers, newest first."""
    out = [_table("use", "Kratom per day (estimated mitragynine)", ["Day", "Doses", "Mitragynine, mg (estimate)"],
                  [[r["when"], r["n"], r["mg"]] for r in reversed(daily_rows(data))])]
    if not simple and data.exposure is not None:
        # one row per day at the grid point nearest to noon, to keep the table readable
        seen: dict[str, list[Any]] = {}
        for t, c, lo, hi in zip(data.exposure.times, data.exposure.typical_ng_per_ml,
                                data.exposure.p05_ng_per_ml, data.exposure.p95_ng_per_ml, strict=False):
            local = t.astimezone(data.tz)
            if local.hour == 12 or local.strftime(DAY_FORMAT) not in seen:
                seen[local.strftime(DAY_FORMAT)] = [_when(t, data), _fmt(c), _fmt(lo), _fmt(hi)]
        out.append(_table("exposure", "Estimated mitragynine exposure (model estimate, ng/mL, around noon)",
                          ["Time", "Typical", "5th percentile", "95th percentile"], list(reversed(seen.values()))))
    instruments = ("craving-nrs", "sows") if simple else ("cows", "sows", "craving-nrs")
    out.append(_table("scores", "Withdrawal and craving scores", ["When", "Instrument", "Score", "Band"],
                      [[r["when"], r["instrument"], r["score"], r["band"]]
                       for r in reversed(score_rows(data, instruments))]))
    if simple:
        return out
    out.append(_table("labs", "Laboratory results", ["Collected", "Test", "Result", "Canonical", "Reference", "Flag"],
                      [[p.at.astimezone(data.tz).strftime(WHEN_FORMAT), p.name, p.shown,
                        f"{_fmt(p.value)} {p.unit_shown}",
                        f"{p.reference_label} {_fmt(p.reference_low)}–{_fmt(p.reference_high)} "
                        f"{p.unit_shown}", p.flag or ""]
                       for p in reversed(data.labs)]))
    out.append(_table("treatment", "Treatment and urine drug tests", ["When", "Kind", "What"],
                      [[r["when"], "Urine drug test" if r["kind"] == "urine" else "Treatment",
                        r["text"] + (f" — {r['results']}" if r.get("results") else "")]
                       for r in sorted(treatment_rows(data), key=lambda r: r["t"], reverse=True)
                       if r["kind"] != "band"]))
    out.append(_table("events", "Side effects and alerts", ["When", "Kind", "What"],
                      [[r["when"], "Side effects" if r["kind"] == "side-effects" else "Alert", r["text"]]
                       for r in sorted(event_rows(data), key=lambda r: r["t"], reverse=True)]))
    return out


def exposure_summary(data: PatientChartData) -> dict[str, Any]:
    """The exposure band's caption: the washout estimate and the model's assumptions."""
    ex = data.exposure
    seven_oh = seven_oh_line(data)
    if ex is None:
        return {"available": False,
                "problem": " ".join(x for x in (data.exposure_problem, seven_oh) if x)}
    lines = []
    if ex.last_dose_at is not None:
        lines.append(f"Last recorded dose: {_when(ex.last_dose_at, data)}.")
    for pct, hours, band in (("50", ex.hours_to_50_percent, ex.hours_to_50_percent_range),
                             ("10", ex.hours_to_10_percent, ex.hours_to_10_percent_range)):
        if hours is not None:
            spread = f" (90 % of simulated patients: {band[0]:.0f}–{band[1]:.0f} h)" if band else ""
            lines.append(f"Predicted time after the last dose until exposure stays below {pct} % of "
                         f"the level before it: about {hours:.0f} h{spread}.")
    if ex.time_to_steady_state_h is not None:
        lines.append(f"Time to steady state at a constant pattern: about {ex.time_to_steady_state_h:.0f} h.")
    if seven_oh:
        lines.append(seven_oh)
    return {
        "available": True,
        "label": f"{ex.label}: typical mitragynine concentration (line) and "
                 "the 5th-95th percentile band of a simulated population. It does not suggest a dose.",
        "lines": lines,
        "assumptions": ex.assumptions,
        "unconverted": ex.unconverted,
    }


def seven_oh_line(data: PatientChartData) -> str:
    """The 7-hydroxymitragynine product doses, apart from leaf: how many, how much, and that
    the exposure model leaves them out ("" without any)."""
    rows = data.seven_oh_doses
    if not rows:
        return ""
    total = sum(mg for _at, mg, _p in rows)
    last = max(at for at, _mg, _p in rows)
    return (f"7-OH products (7-hydroxymitragynine, a potent opioid): {len(rows)} dose"
            f"{'s' if len(rows) != 1 else ''}, {_fmt(total)} mg 7-OH in all from the label, last "
            f"{_when(last, data)}. Not in the mitragynine estimate: the exposure model does not "
            "cover 7-OH taken directly.")


def unconverted_line(data: PatientChartData) -> str:
    """How many doses the charts could not convert to mitragynine, and so left out of the
    kratom-per-day bars and the exposure estimate ("" when every dose was converted). 7-OH
    product doses are counted by :func:`seven_oh_line` instead."""
    n = data.unconverted_doses - len(data.seven_oh_doses)
    if n <= 0:
        return ""
    return (f"{n} dose{'s' if n != 1 else ''} could not be converted to mitragynine (for example a "
            f"capsule dose without grams per capsule) and {'are' if n != 1 else 'is'} not counted "
            "in the kratom per day or the exposure estimate.")


def payload(data: PatientChartData, *, simple: bool = False) -> dict[str, Any]:
    """The JSON the page's ``charts.js`` reads: specs, tables, exposure caption, range labels."""
    specs = patient_specs(data) if simple else clinician_specs(data)
    return {"specs": specs, "tables": tables(data, simple=simple),
            "note": unconverted_line(data),
            "exposure": None if simple else exposure_summary(data),
            "range_labels": RANGE_LABELS,
            "counts": {"days": len(data.daily_mg), "scores": len(data.scores), "labs": len(data.labs),
                       "events": len(data.side_effects) + len(data.alerts),
                       **({} if simple else {"treatment": len(data.episodes),
                                             "urine": len(data.urine)})}}
