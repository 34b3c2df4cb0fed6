"""The visit report: one PDF for the chart, made with pip-installed libraries only.

``fpdf2`` lays out the document (core Helvetica font, so no font files are needed) and
``vl-convert-python`` renders the same Vega-Lite specs the web page shows to PNG with its
bundled engine: no browser, and no network (``allowed_base_urls=[]`` refuses any URL; the specs
carry their data inline).

Contents: patient and period; current alerts; the exposure estimate (labelled as a model
estimate); the charts; the latest laboratory results with reference ranges and flags (and the
prolactin considerations); instrument scores; side effects; the decisions recorded; the
citations used. Every page's footer says the report is not from a medical device and that
exposure is a model estimate.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from speciosa.clinic.models import Patient
from speciosa.knowledge import evidence

from . import charts
from .data import PatientChartData, chart_data, decisions, latest_scores, wall_ms

log = logging.getLogger(__name__)

DISCLAIMER = ("Speciosa supports clinical decisions; it is not a medical device. Exposure values are "
              "model estimates, not measurements, and never a dose recommendation.")
PERIOD_DAYS = {"30": 30, "90": 90}
CHART_WIDTH_PX = 760

_LATIN1 = str.maketrans({"–": "-", "—": "-", "≈": "~", "≥": ">=", "≤": "<=", "µ": "u", "μ": "u",
                         "·": "-", "’": "'", "‘": "'", "“": '"', "”": '"', "×": "x", "…": "...",
                         "→": "->", "−": "-", " ": " "})


def _t(text: Any) -> str:
    """Text in the core fonts' Latin-1 (typographic characters replaced, others dropped)."""
    return str(text).translate(_LATIN1).encode("latin-1", "replace").decode("latin-1")


def today_for(patient: Patient) -> dt.date:
    """Today's date in the patient's site time zone."""
    from .data import _tz_of

    return timezone.now().astimezone(_tz_of(patient)).date()


class _Report(FPDF):
    title_text = "Visit report"

    def header(self) -> None:
        self.set_font("Helvetica", "B", 9)
        self.set_text_color(90)
        self.cell(0, 5, _t(self.title_text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.ln(1)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font("Helvetica", "", 7)
        self.set_text_color(90)
        self.multi_cell(0, 3.2, _t(f"{DISCLAIMER}  Page {self.page_no()}/{{nb}}"), align="C")
        self.set_text_color(0)

    # -- building blocks
    def h2(self, text: str) -> None:
        if self.get_y() > self.h - 40:
            self.add_page()
        self.ln(2)
        self.set_font("Helvetica", "B", 12)
        self.cell(0, 7, _t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(180)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)

    def para(self, text: str, size: float = 9, style: str = "") -> None:
        self.set_font("Helvetica", style, size)
        self.multi_cell(0, size * 0.48, _t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def table(self, headings: list[str], rows: list[list[Any]], widths: tuple[int, ...] | None = None) -> None:
        if not rows:
            self.para("None recorded.", style="I")
            return
        self.set_font("Helvetica", "", 8)
        with super().table(col_widths=widths, text_align="LEFT", line_height=4.2,
                           headings_style=_heading_style(), first_row_as_headings=True) as tbl:
            tbl.row([_t(h) for h in headings])
            for r in rows:
                tbl.row(["" if c is None else _t(c) for c in r])
        self.ln(1)


def _heading_style():
    from fpdf.fonts import FontFace

    return FontFace(emphasis="BOLD", fill_color=(235, 238, 242))


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def chart_png(spec: dict[str, Any]) -> bytes:
    """Render a Vega-Lite spec to PNG offline (no URL may be fetched)."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(spec, vl_version=charts.VEGA_LITE_VERSION, scale=2, allowed_base_urls=[])


def _prolactin_considerations(d: PatientChartData) -> tuple[str, list[tuple[str, tuple[str, ...]]]]:
    """The interpretation of the latest prolactin (considerations with their citations)."""
    from speciosa.knowledge import prolactin

    points = d.labs_of("prolactin")
    if not points:
        return "", []
    p = points[-1]
    recent = {code: (d.labs_of(code)[-1].value, d.labs_of(code)[-1].unit)
              for code in ("tsh", "creatinine") if d.labs_of(code)}
    meds = list(d.medications)
    if d.daily_mg and max(d.daily_mg) >= (p.at.astimezone(d.tz).date() - dt.timedelta(days=30)):
        meds.append("kratom")
    reference = ((p.reference_low, p.reference_high)
                 if p.reference_source == "laboratory" and p.reference_low is not None
                 and p.reference_high is not None else None)
    # the state at the sample decides (speciosa.clinic.pregnancy), not today's status; for a
    # male patient the record's status reaches the interpretation, which names the contradiction
    male = d.patient.sex == "male"
    pregnant = d.patient.pregnant if male else p.sample_state in ("pregnant", "hcg-positive")
    breastfeeding = d.patient.breastfeeding if male else p.sample_state == "breastfeeding"
    if p.sample_state == "uncertain" and not male:
        return (f"Latest prolactin {p.shown} ({p.at.astimezone(d.tz):%d %b %Y}): not flagged. "
                f"{p.sample_state_note}"), []
    try:
        result = prolactin.interpret(p.value, p.unit, sex=d.patient.sex, pregnant=pregnant,
                                     breastfeeding=breastfeeding, medications=meds,
                                     recent_labs=recent, reference=reference)
    except ValueError as exc:  # e.g. a unit the interpreter does not take
        return f"Latest prolactin could not be interpreted: {exc}", []
    flag = result.flag or result.flag_note or "not flagged"
    head = f"Latest prolactin {p.shown} ({p.at.astimezone(d.tz):%d %b %Y}): {flag}."
    return head, [(c.text, tuple(c.citations)) for c in result.considerations]


@dataclass
class _Visit:
    """What every section of one report reads: the document, the patient's chart data, the
    period's start, and the citations the sections have used so far (listed at the end)."""

    pdf: _Report
    data: PatientChartData
    start: dt.datetime
    cited: list[str] = field(default_factory=list)

    def day(self, at: dt.datetime) -> str:
        """``at`` as a date at the patient's site (e.g. ``01 Mar 2026``)."""
        return f"{at.astimezone(self.data.tz):%d %b %Y}"


def visit_report(patient: Patient, *, period: str = "90", author=None,
                 now: dt.datetime | None = None) -> bytes:
    """The visit report of ``patient`` as PDF bytes.

    Parameters
    ----------
    patient : Patient
        A patient the caller may see (access is the caller's job).
    period : {"30", "90", "all"}
        The period the charts, scores and side effects cover.
    author : User, optional
        Who asked for it (named on the first page).
    now : datetime, optional
        The report's "now" (default: now).
    """
    d = chart_data(patient, now=now)
    start = d.now - dt.timedelta(days=PERIOD_DAYS[period]) if period in PERIOD_DAYS else d.first
    visit = _Visit(pdf=_new_document(patient, d.now.astimezone(d.tz)), data=d, start=start)
    _patient_and_period(visit, period, author)
    for heading, section in SECTIONS:
        visit.pdf.h2(heading)
        section(visit)
    return bytes(visit.pdf.output())


def _new_document(patient: Patient, local_now: dt.datetime) -> _Report:
    pdf = _Report(orientation="P", unit="mm", format="A4")
    # the document's title and running header name the record id, not the patient: the title
    # shows in browser tabs, window lists and file dialogs (the name and MRN are on page one)
    pdf.title_text = f"Speciosa visit report - record {patient.pk} - {local_now:%d %b %Y}"
    pdf.set_title(_t(f"Visit report: record {patient.pk}"))
    pdf.set_author("Speciosa")
    pdf.set_creator("Speciosa (fpdf2, vl-convert)")
    pdf.alias_nb_pages()
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(14, 12, 14)
    pdf.add_page()
    return pdf


def _patient_and_period(visit: _Visit, period: str, author) -> None:
    pdf, d = visit.pdf, visit.data
    patient, local_now = d.patient, d.now.astimezone(d.tz)
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _t(f"{patient.name}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    age = patient.age_on(local_now.date())
    pdf.para(f"MRN {patient.identifier} - born {patient.birth_date:%d %b %Y} ({age} years) - "
             f"{patient.get_sex_display().lower()}"
             + (" - pregnant" if patient.pregnant else "")
             + (" - breastfeeding" if patient.breastfeeding else "")
             + f" - {patient.site.name}, {patient.care_team.name}"
             f" - in care since {patient.in_care_since:%d %b %Y}")
    by = f" by {author.get_full_name() or author.get_username()}" if author is not None else ""
    pdf.para(f"Period: {visit.day(visit.start)} - {local_now:%d %b %Y} "
             f"({'all records' if period == 'all' else f'last {period} days'}). "
             f"Generated {local_now:%d %b %Y %H:%M} ({d.tz}){by}.")


def _current_alerts(visit: _Visit) -> None:
    pdf = visit.pdf
    active = visit.data.active_alerts
    if not active:
        pdf.para("No open or acknowledged alerts.", style="I")
    for a in active:
        visit.cited.extend(a.citations or [])
        pdf.para(f"{a.severity.upper()} - {a.topic} ({a.get_status_display().lower()}, since "
                 f"{visit.day(a.first_seen_at)})", style="B")
        pdf.para(a.message)
        if a.next_step:
            pdf.para(f"Next step to consider: {a.next_step}")
        if a.citations:
            pdf.para(f"Evidence: {', '.join(a.citations)}", size=8)
        pdf.ln(1)


def _charts(visit: _Visit) -> None:
    """The web page's main and lab charts, drawn over the report's period."""
    pdf, d = visit.pdf, visit.data
    override = (wall_ms(visit.start, d.tz) - charts.DAY_MS // 2,
                wall_ms(d.now, d.tz) + charts.DAY_MS // 2)
    specs = charts.clinician_specs(d, width=CHART_WIDTH_PX, range_override=override)
    for key in ("main", "labs"):
        if key not in specs:
            continue
        try:
            png = chart_png(specs[key])
        except Exception as exc:  # noqa: BLE001 - the rest of the report still matters
            log.exception("chart rendering failed")
            pdf.para(f"The {key} chart could not be drawn ({exc.__class__.__name__}); "
                     "see the tables.", style="I")
            continue
        _place_image(pdf, png)


def _place_image(pdf: _Report, png: bytes) -> None:
    """The PNG across the page width; on a new page when less than 70% of it fits on this
    one, and shrunk (keeping its aspect ratio) when it fits on no page."""
    from PIL import Image

    w_px, h_px = Image.open(io.BytesIO(png)).size
    w_mm = pdf.epw
    h_mm = w_mm * h_px / w_px
    room = pdf.h - 20 - pdf.get_y()
    if h_mm > room:
        if room < 0.7 * h_mm:
            pdf.add_page()
            room = pdf.h - 20 - pdf.get_y()
        if h_mm > room:
            w_mm, h_mm = w_mm * room / h_mm, room
    pdf.image(io.BytesIO(png), x=pdf.l_margin + (pdf.epw - w_mm) / 2, w=w_mm, h=h_mm)
    pdf.ln(2)


def _exposure_estimate(visit: _Visit) -> None:
    pdf = visit.pdf
    summary = charts.exposure_summary(visit.data)
    if not summary["available"]:
        pdf.para(f"Not available: {summary['problem']}", style="I")
        return
    pdf.para(summary["label"], size=8.5)
    for line in summary["lines"]:
        pdf.para(line, size=8.5)
    if summary["assumptions"]:
        pdf.para("Assumptions: " + " ".join(summary["assumptions"]), size=7.5)


def _latest_labs(visit: _Visit) -> None:
    """The latest result of each test, then what the latest prolactin may mean."""
    pdf = visit.pdf
    latest = {p.lab: p for p in visit.data.labs}  # in time order: the last one stays
    rows = [[p.name, p.shown, f"{_fmt(p.value)} {p.unit_shown}",
             f"{_fmt(p.reference_low)}-{_fmt(p.reference_high)} {p.unit_shown} "
             f"({p.reference_label})",
             (p.flag or "").upper() if p.flag in charts.FLAGGED else (p.flag or ""),
             visit.day(p.at)] for p in latest.values()]
    pdf.table(["Test", "Result", "Canonical", "Reference range", "Flag", "Collected"], rows,
              widths=(40, 28, 28, 36, 18, 26))
    head, considerations = _prolactin_considerations(visit.data)
    if head:
        pdf.para(head, style="B", size=8.5)
        for text, cites in considerations:
            visit.cited.extend(cites)
            pdf.para(f"- {text}" + (f" [{', '.join(cites)}]" if cites else ""), size=8)


def _instrument_scores(visit: _Visit) -> None:
    scores = latest_scores(visit.data.patient, visit.start)
    visit.pdf.table(["Instrument", "Latest", "Band / flags", "When", "In period"],
                    [[s.name, "incomplete" if s.total is None else s.total,
                      " - ".join(x for x in (s.band, ", ".join(s.flags)) if x),
                      visit.day(s.at), s.count_in_period] for s in scores],
                    widths=(56, 18, 56, 26, 20))


def _side_effects(visit: _Visit) -> None:
    visit.pdf.table(["When", "Symptoms"],
                    [[visit.day(s.at), ", ".join(s.symptoms)]
                     for s in reversed(visit.data.side_effects) if s.at >= visit.start],
                    widths=(30, 152))


def _decisions(visit: _Visit) -> None:
    recorded = decisions(visit.data.patient)
    if recorded is None:
        visit.pdf.para("The shared decision record is not installed in this deployment "
                       "(speciosa.education); no decisions can be shown.", style="I")
        return
    visit.pdf.table(["Decided", "Choice", "Reason", "Recorded by", "Agreed by"],
                    [[visit.day(x.decided_at), x.choice_label, x.reason,
                      x.clinician_name, x.patient_agreed_name] for x in recorded],
                    widths=(24, 40, 68, 26, 24))


def _citations_used(visit: _Visit) -> None:
    """Every citation the sections above used, in order of first use, formatted in full."""
    pdf = visit.pdf
    ids = list(dict.fromkeys(visit.cited))
    if not ids:
        pdf.para("No citation was used in this report.", style="I")
    known = [i for i in ids if not evidence.missing_references([i])]
    for c in evidence.citations_of(known):
        pdf.para(f"[{c.id}] {c.formatted()} ({c.type.replace('-', ' ')})", size=8)
    for missing in evidence.missing_references(ids):
        pdf.para(f"[{missing}] not found in the evidence registry.", size=8, style="I")


#: The report's sections in order, each under its heading. The citations come last: they
#: list what the sections before them cited.
SECTIONS: tuple[tuple[str, Callable[[_Visit], None]], ...] = (
    ("Current alerts", _current_alerts),
    ("Charts", _charts),
    ("Estimated mitragynine exposure (model estimate)", _exposure_estimate),
    ("Latest laboratory results", _latest_labs),
    ("Instrument scores", _instrument_scores),
    ("Side effects reported in the period", _side_effects),
    ("Decisions recorded", _decisions),
    ("Citations used", _citations_used),
)
