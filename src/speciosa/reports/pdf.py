"""The visit report: one PDF for the chart, made with pip-installed libraries only.

``fpdf2`` lays out the document in Noto Sans, with Noto Sans Thai as its fallback (both
embedded, SIL OFL, vendored in ``reports/fonts`` by ``tools/fonts/vendor.sh``; Thai is shaped
with HarfBuzz so that its vowels and tone marks stack), and
``vl-convert-python`` renders the same Vega-Lite specs the web page shows to PNG with its
bundled engine: no browser, and no network (``allowed_base_urls=[]`` refuses any URL; the specs
carry their data inline).

Contents: patient and period; current alerts; the medication list (coded or not); the charts;
the exposure estimate (labelled as a model estimate); the latest laboratory results with
reference ranges and flags (and the prolactin considerations, read with the same symptoms the
safety rules count); the latest instrument scores and a table of the period's assessments;
side effects; notes; the decisions recorded; the citations used. Every page's footer says the
report is not from a medical device and that exposure is a model estimate.

The report's own words (headings, table headings, the first page's lines, the footer) are in
the language it is asked for in (``language``: by default the language of the person who asks
for it; the request form offers the patient's); what the record holds (alert messages, lab
names, notes) is shown as recorded. Dates are written in that language's month names.

A heading is kept with the start of its content (no heading alone at the foot of a page).
The charts are drawn from their data within the report's period only, at a print scale of
:data:`CHART_SCALE` (``benchmarks/bench_report.py`` times the report).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.utils import dateformat, timezone, translation
from django.utils.translation import gettext, gettext_lazy
from fpdf import FPDF
from fpdf.enums import XPos, YPos

from speciosa.clinic.models import Patient
from speciosa.knowledge import evidence

from . import charts
from .data import (
    PatientChartData,
    chart_data,
    decisions,
    latest_scores,
    prolactin_symptoms,
    side_effect_labels,
    wall_ms,
)

log = logging.getLogger(__name__)

DISCLAIMER = gettext_lazy(
    "Speciosa supports clinical decisions; it is not a medical device. Exposure values are "
    "model estimates, not measurements, and never a dose recommendation.")
PERIOD_DAYS = {"30": 30, "90": 90}
CHART_WIDTH_PX = 760
#: Pixels per chart pixel in the PDF's images: 760 px across the 182 mm text width at 1.5 is
#: about 160 dpi (2 took twice as long to rasterise for no visible gain on paper).
CHART_SCALE = 1.5
#: The least room (mm) a heading needs below it on the page for the start of its content.
KEEP_WITH_HEADING_MM = 30

#: The embedded fonts: Noto Sans (Latin with accents, Greek, Cyrillic) and Noto Sans Thai.
FONT = "NotoSans"
THAI_FONT = "NotoSansThai"
_FONT_FILES = {(FONT, ""): "NotoSans-Regular.ttf", (FONT, "B"): "NotoSans-Bold.ttf",
               (FONT, "I"): "NotoSans-Italic.ttf", (THAI_FONT, ""): "NotoSansThai-Regular.ttf",
               (THAI_FONT, "B"): "NotoSansThai-Bold.ttf"}
#: Text that needs shaping (Thai; the report draws no other complex script).
_COMPLEX = re.compile("[\u0e00-\u0e7f]")
#: Characters the fonts lack, written as people would by hand.
_SUBSTITUTES = str.maketrans({"≈": "~", "→": "->"})


def _t(text: Any) -> str:
    """Text as the embedded fonts draw it."""
    return str(text).translate(_SUBSTITUTES)


def _fonts_dir():
    from importlib import resources

    return resources.files("speciosa.reports").joinpath("fonts")


def resources_path(traversable):
    """A real file for a packaged resource (fpdf2 reads fonts from paths)."""
    from importlib import resources

    return resources.as_file(traversable)


def _day(at: dt.date | dt.datetime, fmt: str = "d M Y") -> str:
    """A date in the active language's month names (``01 Mar 2026``; ``01 มี.ค. 2026``)."""
    return dateformat.format(at, fmt)


def _breakable(word: str, cut: int) -> bool:
    """Whether a line may end before ``word[cut]``: never before a combining mark (a Thai
    vowel above or below, or a tone mark, stays on its consonant) nor a following vowel."""
    ch = word[cut]
    return not (unicodedata.combining(ch) or unicodedata.category(ch) == "Mn"
                or ch in "\u0e30\u0e32\u0e33\u0e45")


def today_for(patient: Patient) -> dt.date:
    """Today's date in the patient's site time zone."""
    from .data import _tz_of

    return timezone.now().astimezone(_tz_of(patient)).date()


class _Report(FPDF):
    title_text = "Visit report"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        folder = _fonts_dir()
        for (family, style), name in _FONT_FILES.items():
            with resources_path(folder.joinpath(name)) as path:
                self.add_font(family, style, str(path))
        # a character Noto Sans lacks (Thai) is drawn from Noto Sans Thai, in the nearest
        # style (Thai has no italic); HarfBuzz places Thai vowels and tone marks
        self.set_fallback_fonts([THAI_FONT], exact_match=False)
        self._shaping: dict[bool, Any] = {}
        self.set_text_shaping(True)
        self._shaping[True] = self.text_shaping
        self.set_text_shaping(False)
        self._shaping[False] = None

    # Shaping doubled the time of an English report (2.1 s against 1.2 s for the test
    # patient's), so each text is shaped only when it holds Thai (complex script).
    def _shape_for(self, text: Any) -> None:
        self.text_shaping = self._shaping[bool(_COMPLEX.search(str(text)))]
        # fpdf2 2.8.9 sets the page's font to the fallback (Thai) font when a cell starts
        # with Thai, and then believes the page's font is the chosen one: the next cell in
        # the same font and size drew its Latin glyph ids without selecting its font (they
        # came out through another font's subset, garbled). Each text selects its font.
        chosen = self.fonts.get(f"{self.font_family}{self.font_style}")
        if chosen is not None:
            self.current_font = chosen
        self.current_font_is_set_on_page = False

    def cell(self, w=None, h=None, text="", *args, **kwargs):
        self._shape_for(text)
        return super().cell(w, h, text, *args, **kwargs)

    def multi_cell(self, w, h=None, text="", *args, **kwargs):
        self._shape_for(text)
        return super().multi_cell(w, h, text, *args, **kwargs)

    def get_string_width(self, s, *args, **kwargs):
        self._shape_for(s)
        return super().get_string_width(s, *args, **kwargs)

    def header(self) -> None:
        self.set_font(FONT, "B", 9)
        self.set_text_color(90)
        self.cell(0, 5, _t(self.title_text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_text_color(0)
        self.ln(1)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FONT, "", 7)
        self.set_text_color(90)
        page = gettext("Page %(page)s/%(pages)s") % {"page": self.page_no(), "pages": "{nb}"}
        self.multi_cell(0, 3.2, _t(f"{DISCLAIMER}  {page}"), align="C")
        self.set_text_color(0)

    # -- building blocks
    def room(self) -> float:
        """The height (mm) left on this page above the bottom margin."""
        return self.h - self.b_margin - self.get_y()

    def h2(self, text: str, keep: float = KEEP_WITH_HEADING_MM) -> None:
        """A section heading, on a new page unless ``keep`` mm of its content fit below it."""
        if self.room() < 11 + keep:
            self.add_page()
        self.ln(2)
        self.set_font(FONT, "B", 12)
        self.cell(0, 7, _t(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.set_draw_color(180)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)

    def para(self, text: str, size: float = 9, style: str = "") -> None:
        """A paragraph across the text width (wrapped at spaces, continued on the next page)."""
        self.set_font(FONT, style, size)
        line_h = size * 0.48
        for line in self._wrap(_t(text), self.epw):
            if self.room() < line_h:
                self.add_page()
                self.set_font(FONT, style, size)
            self.cell(0, line_h, line, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def table(self, headings: list[str], rows: list[list[Any]], widths: tuple[int, ...] | None = None) -> None:
        """A table with ruled cells; a row that does not fit on the page starts the next one,
        under the headings again. A cell wraps only when its text is wider than the column:
        laying out every cell as a paragraph (``FPDF.table``) took half the report's time."""
        if not rows:
            self.para(gettext("None recorded."), style="I")
            return
        widths = widths or tuple(self.epw / len(headings) for _ in headings)
        scale = self.epw / sum(widths)
        widths = tuple(w * scale for w in widths)
        self._table_row([_t(h) for h in headings], widths, heading=True)
        for r in rows:
            for cells in self._row_parts(["" if c is None else _t(c) for c in r], widths):
                if self._table_row(cells, widths, heading=False, dry=True) > self.room():
                    self.add_page()
                    self._table_row([_t(h) for h in headings], widths, heading=True)
                self._table_row(cells, widths, heading=False)
        self.ln(1)

    def _row_parts(self, cells: list[str], widths: tuple[float, ...]) -> list[list[str]]:
        """``cells`` as one row, or, when the row is taller than a page (a note of thousands of
        characters), as rows of at most a page's lines each, continued in order: a row drawn
        past the foot of the page had fpdf break the page at every line."""
        self.set_font(FONT, "", 8)
        most = max(1, int((self.h - self.t_margin - self.b_margin - 24) // self._LINE_MM))
        lines = [self._wrap(text, w - 2 * self._PAD_MM)
                 if self.get_string_width(text) > w - 2 * self._PAD_MM else [text]
                 for text, w in zip(cells, widths, strict=True)]
        if max(len(x) for x in lines) <= most:
            return [cells]
        return [["\n".join(x[start:start + most]) for x in lines]
                for start in range(0, max(len(x) for x in lines), most)]

    _LINE_MM = 4.2
    _PAD_MM = 1.0

    def _wrap(self, text: str, width: float) -> list[str]:
        """``text`` broken into lines at most ``width`` mm wide in the current font (at spaces;
        a word wider than the column is cut where it must, never between a Thai consonant and
        its vowel or tone mark: Thai has no spaces between words, only between phrases)."""
        out: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if self.get_string_width(candidate) <= width:
                    line = candidate
                    continue
                if line:
                    out.append(line)
                while self.get_string_width(word) > width and len(word) > 1:
                    # the longest start of the word that fits, measured letter by letter (a
                    # 5000-letter word cut by shortening it a letter at a time took seconds)
                    cut, used = 0, 0.0
                    while cut < len(word) - 1:
                        used += self.get_string_width(word[cut])
                        if used > width:
                            break
                        cut += 1
                    cut = max(cut, 1)
                    while cut > 1 and not _breakable(word, cut):
                        cut -= 1  # a Thai vowel or tone mark stays with its consonant
                    out.append(word[:cut])
                    word = word[cut:]
                line = word
            out.append(line)
        return out

    def _table_row(self, cells: list[str], widths: tuple[float, ...], *, heading: bool,
                   dry: bool = False) -> float:
        """Draw one row (or, with ``dry``, only measure it); returns its height in mm."""
        self.set_font(FONT, "B" if heading else "", 8)
        lines = []
        for text, w in zip(cells, widths, strict=True):
            if self.get_string_width(text) <= w - 2 * self._PAD_MM:
                lines.append(None)
            else:
                lines.append(self._wrap(text, w - 2 * self._PAD_MM))
        height = max(len(x) if x else 1 for x in lines) * self._LINE_MM + 0.6
        if dry:
            return height
        x, y = self.l_margin, self.get_y()
        self.set_draw_color(200)
        if heading:
            self.set_fill_color(235, 238, 242)
        for text, w, wrapped in zip(cells, widths, lines, strict=True):
            self.rect(x, y, w, height, style="DF" if heading else "D")
            if wrapped is None:
                self.set_xy(x + self._PAD_MM, y + 0.3)
                self.cell(w - 2 * self._PAD_MM, self._LINE_MM, text)
            else:
                for i, line in enumerate(wrapped):
                    self.set_xy(x + self._PAD_MM, y + 0.3 + i * self._LINE_MM)
                    self.cell(w - 2 * self._PAD_MM, self._LINE_MM, line)
            x += w
        self.set_xy(self.l_margin, y + height)
        return height


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def chart_png(spec: dict[str, Any], scale: float = CHART_SCALE) -> bytes:
    """Render a Vega-Lite spec to PNG offline (no URL may be fetched)."""
    import vl_convert as vlc

    return vlc.vegalite_to_png(spec, vl_version=charts.VEGA_LITE_VERSION, scale=scale, allowed_base_urls=[])


def within(spec: Any, lo_ms: int, hi_ms: int) -> Any:
    """``spec`` with each inline data table (rows with a time ``t``, in ms) cut to the rows from
    ``lo_ms`` to ``hi_ms`` and the one row either side (a line or band runs on to the edge);
    tables without times are left whole. The page's chart carries the whole record for its
    range buttons; the report shows one period, and drawing the rest cost most of its time."""
    if isinstance(spec, list):
        return [within(x, lo_ms, hi_ms) for x in spec]
    if not isinstance(spec, dict):
        return spec
    out = {k: within(v, lo_ms, hi_ms) for k, v in spec.items() if k != "values"}
    if "values" in spec:
        rows = spec["values"]
        if isinstance(rows, list) and rows and all(isinstance(r, dict) and "t" in r for r in rows):
            rows = sorted(rows, key=lambda r: r["t"])
            inside = [i for i, r in enumerate(rows) if lo_ms <= r["t"] <= hi_ms]
            rows = rows[max(inside[0] - 1, 0):inside[-1] + 2] if inside else []
        out["values"] = rows
    return out


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
        return (f"Latest prolactin {p.shown} ({_day(p.at.astimezone(d.tz))}): not flagged. "
                f"{p.sample_state_note}"), []
    # the symptoms the safety rules count (and any open prolactin-symptoms alert names): the
    # interpretation must not say "no symptoms are recorded" beside that alert
    symptoms = prolactin_symptoms(d)
    try:
        result = prolactin.interpret(p.value, p.unit, sex=d.patient.sex, pregnant=pregnant,
                                     breastfeeding=breastfeeding, medications=meds,
                                     recent_labs=recent, reference=reference,
                                     symptoms=[code for code, _at in symptoms])
    except ValueError as exc:  # e.g. a unit the interpreter does not take
        return f"Latest prolactin could not be interpreted: {exc}", []
    flag = result.flag or result.flag_note or "not flagged"
    head = f"Latest prolactin {p.shown} ({_day(p.at.astimezone(d.tz))}): {flag}."
    if symptoms:
        labels = side_effect_labels()
        head += (" Symptoms that can come from high prolactin reported: "
                 + ", ".join(f"{labels.get(code, code).lower()} ({_day(at.astimezone(d.tz), 'd M')})"
                             for code, at in symptoms) + ".")
    return head, [(c.text, tuple(c.citations)) for c in result.considerations]


@dataclass
class _Visit:
    """What every section of one report reads: the document, the patient's chart data, the
    period's start, and the citations the sections have used so far (listed at the end)."""

    pdf: _Report
    data: PatientChartData
    start: dt.datetime
    cited: list[str] = field(default_factory=list)
    #: The charts as PNG, drawn before their heading (its room is the first chart's height).
    images: list[tuple[str, bytes]] = field(default_factory=list)

    def day(self, at: dt.datetime) -> str:
        """``at`` as a date at the patient's site (e.g. ``01 Mar 2026``)."""
        return _day(at.astimezone(self.data.tz))


def visit_report(patient: Patient, *, period: str = "90", author=None,
                 now: dt.datetime | None = None, disclosure: str = "",
                 language: str | None = None) -> bytes:
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
    disclosure : str, optional
        When the report is sent to another party: a line naming the recipient and the
        consent, printed on page one with the 42 CFR 2.32 notice.
    language : str, optional
        The language of the report's own words ("en", "es", "th"); default the active one
        (the language of the person who asked for it).
    """
    if language:
        with translation.override(language):
            return visit_report(patient, period=period, author=author, now=now,
                                disclosure=disclosure)
    d = chart_data(patient, now=now)
    start = d.now - dt.timedelta(days=PERIOD_DAYS[period]) if period in PERIOD_DAYS else d.first
    visit = _Visit(pdf=_new_document(patient, d.now.astimezone(d.tz)), data=d, start=start)
    _patient_and_period(visit, period, author)
    if disclosure:
        from speciosa.clinic import consent_texts

        visit.pdf.para(disclosure, size=9, style="B")
        visit.pdf.para(consent_texts.REDISCLOSURE_NOTICE, size=7.5)
    for heading, section in SECTIONS:
        keep = KEEP_WITH_HEADING_MM
        if section is _charts:
            visit.images = _chart_images(visit)
            if visit.images and isinstance(visit.images[0][1], bytes):
                keep = min(_image_height(visit.pdf, visit.images[0][1]), visit.pdf.eph - 20) * 0.7
        visit.pdf.h2(str(heading), keep=keep)
        section(visit)
    return bytes(visit.pdf.output())


def _new_document(patient: Patient, local_now: dt.datetime) -> _Report:
    pdf = _Report(orientation="P", unit="mm", format="A4")
    # the document's title and running header name the record id, not the patient: the title
    # shows in browser tabs, window lists and file dialogs (the name and MRN are on page one)
    pdf.title_text = gettext("Speciosa visit report - record %(record)s - %(day)s") % {
        "record": patient.pk, "day": _day(local_now)}
    pdf.set_title(_t(gettext("Visit report: record %(record)s") % {"record": patient.pk}))
    pdf.set_lang(translation.get_language() or "en")
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
    pdf.set_font(FONT, "B", 16)
    pdf.cell(0, 9, _t(f"{patient.name}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    age = patient.age_on(local_now.date())
    parts = [gettext("MRN %(mrn)s") % {"mrn": patient.identifier},
             gettext("born %(day)s (%(age)s years)") % {"day": _day(patient.birth_date), "age": age},
             patient.get_sex_display().lower()]
    parts += [gettext("pregnant")] if patient.pregnant else []
    parts += [gettext("breastfeeding")] if patient.breastfeeding else []
    parts += [f"{patient.site.name}, {patient.care_team.name}",
              gettext("in care since %(day)s") % {"day": _day(patient.in_care_since)}]
    pdf.para(" - ".join(parts))
    span = (gettext("all records") if period == "all"
            else gettext("last %(days)s days") % {"days": period})
    when = {"start": visit.day(visit.start), "end": _day(local_now), "span": span,
            "generated": _day(local_now, "d M Y H:i"), "zone": d.tz}
    if author is not None:
        when["by"] = author.get_full_name() or author.get_username()
        line = gettext("Period: %(start)s - %(end)s (%(span)s). Generated %(generated)s "
                       "(%(zone)s) by %(by)s.") % when
    else:
        line = gettext("Period: %(start)s - %(end)s (%(span)s). Generated %(generated)s "
                       "(%(zone)s).") % when
    pdf.para(line)


def _current_alerts(visit: _Visit) -> None:
    pdf = visit.pdf
    active = visit.data.active_alerts
    if not active:
        pdf.para(gettext("No open or acknowledged alerts."), style="I")
    for a in active:
        visit.cited.extend(a.citations or [])
        pdf.para(f"{a.severity.upper()} - {a.topic} ({a.get_status_display().lower()}, since "
                 f"{visit.day(a.first_seen_at)})", style="B")
        pdf.para(a.message)
        if a.next_step:
            pdf.para(gettext("Next step to consider: %(step)s") % {"step": a.next_step})
        if a.citations:
            pdf.para(gettext("Evidence: %(ids)s") % {"ids": ", ".join(a.citations)}, size=8)
        pdf.ln(1)


def _chart_images(visit: _Visit) -> list[tuple[str, bytes | Exception]]:
    return chart_images(visit.data, visit.start)


def chart_images(d: PatientChartData, start: dt.datetime) -> list[tuple[str, bytes | Exception]]:
    """The web page's main and lab charts from ``start`` to ``d.now``, as PNG (or the error
    that stopped one), as the report draws them."""
    override = (wall_ms(start, d.tz) - charts.DAY_MS // 2,
                wall_ms(d.now, d.tz) + charts.DAY_MS // 2)
    specs = charts.clinician_specs(d, width=CHART_WIDTH_PX, range_override=override)
    out: list[tuple[str, bytes | Exception]] = []
    for key in ("main", "labs"):
        if key not in specs:
            continue
        try:
            out.append((key, chart_png(within(specs[key], *override))))
        except Exception as exc:  # noqa: BLE001 - the rest of the report still matters
            log.exception("chart rendering failed")
            out.append((key, exc))
    return out


def _charts(visit: _Visit) -> None:
    """The charts drawn by :func:`_chart_images`, each across the page."""
    pdf = visit.pdf
    if not visit.images:
        pdf.para(gettext("Nothing to chart in this period."), style="I")
    for key, png in visit.images:
        if isinstance(png, Exception):
            pdf.para(f"The {key} chart could not be drawn ({png.__class__.__name__}); "
                     "see the tables.", style="I")
            continue
        _place_image(pdf, png)


def _image_height(pdf: _Report, png: bytes) -> float:
    """The height (mm) of ``png`` drawn across the page's text width."""
    from PIL import Image

    w_px, h_px = Image.open(io.BytesIO(png)).size
    return pdf.epw * h_px / w_px


def _place_image(pdf: _Report, png: bytes) -> None:
    """The PNG across the page width; on a new page when less than 70% of it fits on this
    one, and shrunk (keeping its aspect ratio) when it fits on no page. Drawn on white
    (without its alpha channel), which the PDF stores at a third of the cost."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    if image.mode in ("RGBA", "LA"):
        flat = Image.new("RGB", image.size, "white")
        flat.paste(image, mask=image.getchannel("A"))
        image = flat
    w_px, h_px = image.size
    w_mm = pdf.epw
    h_mm = w_mm * h_px / w_px
    room = pdf.h - 20 - pdf.get_y()
    if h_mm > room:
        if room < 0.7 * h_mm:
            pdf.add_page()
            room = pdf.h - 20 - pdf.get_y()
        if h_mm > room:
            w_mm, h_mm = w_mm * room / h_mm, room
    pdf.image(image, x=pdf.l_margin + (pdf.epw - w_mm) / 2, w=w_mm, h=h_mm)
    pdf.ln(2)


def _exposure_estimate(visit: _Visit) -> None:
    pdf = visit.pdf
    summary = charts.exposure_summary(visit.data)
    if not summary["available"]:
        pdf.para(gettext("Not available: %(problem)s") % {"problem": summary["problem"]}, style="I")
        return
    pdf.para(summary["label"], size=8.5)
    for line in summary["lines"]:
        pdf.para(line, size=8.5)
    if summary["assumptions"]:
        pdf.para(gettext("Assumptions: %(list)s") % {"list": " ".join(summary["assumptions"])},
                 size=7.5)


def _latest_labs(visit: _Visit) -> None:
    """The latest result of each test, then what the latest prolactin may mean."""
    pdf = visit.pdf
    latest = {p.lab: p for p in visit.data.labs}  # in time order: the last one stays
    rows = [[p.name, p.shown, f"{_fmt(p.value)} {p.unit_shown}",
             f"{_fmt(p.reference_low)}-{_fmt(p.reference_high)} {p.unit_shown} "
             f"({p.reference_label})",
             (p.flag or "").upper() if p.flag in charts.FLAGGED else (p.flag or ""),
             visit.day(p.at)] for p in latest.values()]
    pdf.table([gettext("Test"), gettext("Result"), gettext("Canonical"), gettext("Reference range"),
               gettext("Flag"), gettext("Collected")], rows,
              widths=(40, 28, 28, 36, 18, 26))
    head, considerations = _prolactin_considerations(visit.data)
    if head:
        pdf.para(head, style="B", size=8.5)
        for text, cites in considerations:
            visit.cited.extend(cites)
            pdf.para(f"- {text}" + (f" [{', '.join(cites)}]" if cites else ""), size=8)


def _instrument_scores(visit: _Visit) -> None:
    scores = latest_scores(visit.data.patient, visit.start)
    visit.pdf.table([gettext("Instrument"), gettext("Latest"), gettext("Band / flags"),
                     gettext("When"), gettext("In period")],
                    [[s.name, gettext("incomplete") if s.total is None else s.total,
                      " - ".join(x for x in (s.band, ", ".join(s.flags)) if x),
                      visit.day(s.at), s.count_in_period] for s in scores],
                    widths=(56, 18, 56, 26, 20))


def _medications(visit: _Visit) -> None:
    """The medication list as on the patient's page: current entries, and those stopped in the
    period; whether each is coded (from the drug table, RxNorm) or free text."""
    from speciosa.clinic import medications, selectors

    start_day = visit.start.astimezone(visit.data.tz).date()
    rows = []
    for m in medications.current_medications(visit.data.patient):
        if not m.is_current_status and m.end is not None and m.end < start_day:
            continue
        title, _detail = selectors.describe_medication(m)
        when = (gettext("since %(day)s") % {"day": _day(m.start)} if not m.end
                else f"{_day(m.start)} - {_day(m.end)}")
        coded = (f"coded: {m.drug}" + (f" (RxNorm {m.rxnorm})" if m.rxnorm else "")) if m.coded else "not coded"
        who = m.get_prescriber_display() if m.prescriber != "unknown" else ""
        if m.source == "patient":
            who = "reported by the patient" + (", confirmed" if m.confirmed_at else ", not yet confirmed")
        rows.append([title, f"{m.get_status_display()} {when}", coded, who])
    visit.pdf.table([gettext("Medicine"), gettext("Status"), gettext("Coded"),
                     gettext("Prescriber / source")], rows, widths=(66, 44, 40, 32))
    review = medications.latest_review(visit.data.patient)
    if review is not None:
        by = review.entered_by.get_full_name() if review.entered_by else ""
        visit.pdf.para((gettext("Last medication review: %(day)s by %(by)s.") if by
                        else gettext("Last medication review: %(day)s."))
                       % {"day": visit.day(review.at), "by": by}, size=8)


def _treatment(visit: _Visit) -> None:
    """Treatment episodes for opioid use disorder (buprenorphine, methadone, naltrexone): the
    ongoing ones and those stopped in the period, with dose, dispensing clinic, injections
    and the reason for stopping (issue 19)."""
    from speciosa.clinic import treatment

    start_day = visit.start.astimezone(visit.data.tz).date()
    rows = []
    for e in treatment.current_episodes(visit.data.patient):
        if e.end is not None and e.end < start_day:
            continue
        dose = (f"{format(e.dose_mg.normalize(), 'f')} mg {e.dose_basis}"
                if e.dose_mg is not None else "dose not recorded")
        when = (gettext("since %(day)s") % {"day": _day(e.start)} if not e.end
                else f"{_day(e.start)} - {_day(e.end)}")
        extra = []
        if e.dispensing_clinic:
            extra.append(f"dispensed by {e.dispensing_clinic}")
        if e.injection_dates:
            extra.append("injections " + ", ".join(e.injection_dates))
        if e.stop_reason:
            extra.append(f"stopped: {e.stop_reason}")
        rows.append([f"{e.get_drug_display()} {e.get_formulation_display()}", dose,
                     f"{e.get_status_display()} {when}", "; ".join(extra)])
    if not rows:
        visit.pdf.para(gettext("No buprenorphine, methadone or naltrexone episode in the period."),
                       size=8)
        return
    visit.pdf.table([gettext("Treatment"), gettext("Dose"), gettext("Status"), gettext("Details")],
                    rows, widths=(56, 36, 50, 40))


def _taper_plans(visit: _Visit) -> None:
    """The taper plans in force in the period (issue 19): the schedule as the clinician
    entered it, the predicted exposure under it (a population model's prediction, not a
    recommendation; cited), and the plan against the diary day by day in the period."""
    from speciosa.clinic import taper
    from speciosa.clinic.models import TaperStatus

    from . import taper as rtaper

    pdf, d = visit.pdf, visit.data
    start_day = visit.start.astimezone(d.tz).date()
    plans = [p for p in taper.current_plans(d.patient)
             if p.end >= start_day and (p.stopped_on is None or p.stopped_on >= start_day)]
    if not plans:
        pdf.para(gettext("No taper plan in the period."), size=8)
        return
    for plan in plans:
        by = plan.entered_by.get_full_name() if plan.entered_by else ""
        pdf.para(f"{plan.get_kind_display().capitalize()}, {_day(plan.start)} - "
                 f"{_day(plan.end)} ({plan.get_status_display()}"
                 + (f" on {_day(plan.stopped_on)}: {plan.stop_reason}" if plan.stopped_on
                    else "") + f"). Recorded {visit.day(plan.entered_at)}"
                 + (f" by {by}" if by else "") + f". Why: {plan.reason}", style="B", size=8.5)
        pdf.table([gettext("From"), gettext("To"), gettext("Each dose"), gettext("Doses a day"),
                   gettext("A day")],
                  [[f"{_day(s.start)}", f"{_day(s.end)}",
                    f"{taper.number(s.amount)} {taper.unit_words(s.unit)}", s.doses_per_day,
                    f"{taper.number(s.per_day)} {taper.unit_words(s.unit)}"]
                   for s in taper.steps_of(plan)], widths=(30, 30, 56, 26, 40))
        if plan.status == TaperStatus.ACTIVE:
            pv = rtaper.preview(plan, now=d.now)
            if pv.available:
                visit.cited.extend(pv.citations)
                pdf.para(rtaper.LABEL + f" [{', '.join(pv.citations)}]", size=8, style="I")
                pdf.table([gettext("Period"), gettext("Schedule"), gettext("Typical ng/mL"),
                           gettext("Band"), gettext("Washout")],
                          [[r["what"], r["amount"], r["level"], r["band"], r["washout"]]
                           for r in rtaper.summary_rows(pv)], widths=(34, 54, 26, 22, 46))
            else:
                pdf.para(f"Predicted exposure not available: {pv.problem}", size=8, style="I")
        rows = taper.planned_vs_taken(plan, since=start_day, until=d.now.astimezone(d.tz).date())
        if rows:
            pdf.para("Planned against taken (the plan's unit where the units measure the same "
                     "thing; mitragynine estimated by the diary's dose conversion; a day "
                     "without a diary is not counted as none taken):", size=8)
            pdf.table([gettext("Day"), gettext("Planned"), gettext("Taken"),
                       gettext("Mitragynine mg planned / taken"), gettext("Reading")],
                      [[_day(r.day, "D d M"), f"{taper.number(r.planned)} {taper.unit_words(r.unit)}",
                        ("no diary" if not r.recorded else
                         f"{taper.number(r.taken)} {taper.unit_words(r.unit)}"
                         if r.taken is not None else f"{r.doses} dose(s) in other units"),
                        f"{'-' if r.planned_mg is None else f'{r.planned_mg:.0f}'} / "
                        f"{'-' if r.taken_mg is None else f'{r.taken_mg:.0f}'}",
                        r.status_text + (f" ({'; '.join(r.notes)})" if r.notes else "")]
                       for r in reversed(rows)], widths=(24, 34, 40, 34, 50))


def _assessments(visit: _Visit) -> None:
    """Every assessment of the period, newest first; the daily craving ratings in one line
    (they are charted), the side-effect checklist in its own section."""
    from speciosa.clinic.models import Assessment
    from speciosa.knowledge import instruments as kinstruments

    names: dict[str, str] = {}
    rows, craving = [], []
    for a in (Assessment.objects.current().filter(patient=visit.data.patient, at__gte=visit.start)
              .exclude(instrument="side-effects").select_related("entered_by").order_by("-at", "-pk")):
        if a.instrument == "craving-nrs":
            if a.total is not None:
                craving.append(a.total)
            continue
        if a.instrument not in names:
            try:
                names[a.instrument] = kinstruments.get_instrument(a.instrument).name
            except kinstruments.InstrumentError:
                names[a.instrument] = a.instrument
        who = (a.entered_by.get_full_name() or "a clinician") if a.source == "clinician" and a.entered_by \
            else a.get_source_display().lower()
        rows.append([visit.day(a.at), names[a.instrument],
                     "incomplete" if a.total is None else a.total,
                     " - ".join(x for x in (a.band, ", ".join(a.flags or ())) if x), who])
    visit.pdf.table([gettext("When"), gettext("Instrument"), gettext("Total"),
                     gettext("Band / flags"), gettext("Entered by")], rows,
                    widths=(24, 68, 14, 42, 34))
    if craving:
        ordered = sorted(craving)
        visit.pdf.para(f"Craving (0-10) rated {len(craving)} times in the period: median "
                       f"{ordered[len(ordered) // 2]}, lowest {ordered[0]}, highest {ordered[-1]} "
                       "(see the chart).", size=8)


def _notes(visit: _Visit) -> None:
    """The clinicians' notes of the period, newest first, with who wrote them."""
    from speciosa.clinic.models import Note

    notes = (Note.objects.current().filter(patient=visit.data.patient, at__gte=visit.start)
             .select_related("entered_by").order_by("-at", "-pk"))
    visit.pdf.table([gettext("When"), gettext("By"), gettext("Note")],
                    [[visit.day(n.at), (n.entered_by.get_full_name() or "a clinician") if n.entered_by else "",
                      n.text + (f" (corrected: {n.change_reason})" if n.replaces_id else "")]
                     for n in notes], widths=(24, 34, 124))


def _side_effects(visit: _Visit) -> None:
    visit.pdf.table([gettext("When"), gettext("Symptoms")],
                    [[visit.day(s.at), ", ".join(s.symptoms)]
                     for s in reversed(visit.data.side_effects) if s.at >= visit.start],
                    widths=(30, 152))


def _decisions(visit: _Visit) -> None:
    recorded = decisions(visit.data.patient)
    if recorded is None:
        visit.pdf.para("The shared decision record is not installed in this deployment "
                       "(speciosa.education); no decisions can be shown.", style="I")
        return
    visit.pdf.table([gettext("Decided"), gettext("Choice"), gettext("Reason"),
                     gettext("Recorded by"), gettext("Agreed by")],
                    [[visit.day(x.decided_at), x.choice_label, x.reason,
                      x.clinician_name, x.patient_agreed_name] for x in recorded],
                    widths=(24, 40, 68, 26, 24))


def _citations_used(visit: _Visit) -> None:
    """Every citation the sections above used, in order of first use, formatted in full."""
    pdf = visit.pdf
    ids = list(dict.fromkeys(visit.cited))
    if not ids:
        pdf.para(gettext("No citation was used in this report."), style="I")
    known = [i for i in ids if not evidence.missing_references([i])]
    for c in evidence.citations_of(known):
        pdf.para(f"[{c.id}] {c.formatted()} ({c.type.replace('-', ' ')})", size=8)
    for missing in evidence.missing_references(ids):
        pdf.para(f"[{missing}] not found in the evidence registry.", size=8, style="I")


#: The report's sections in order, each under its heading. The citations come last: they
#: list what the sections before them cited.
SECTIONS: tuple[tuple[Any, Callable[[_Visit], None]], ...] = (
    (gettext_lazy("Current alerts"), _current_alerts),
    (gettext_lazy("Medications"), _medications),
    (gettext_lazy("Treatment for opioid use disorder"), _treatment),
    (gettext_lazy("Taper plan"), _taper_plans),
    (gettext_lazy("Charts"), _charts),
    (gettext_lazy("Estimated mitragynine exposure (model estimate)"), _exposure_estimate),
    (gettext_lazy("Latest laboratory results"), _latest_labs),
    (gettext_lazy("Instrument scores (latest)"), _instrument_scores),
    (gettext_lazy("Assessments in the period"), _assessments),
    (gettext_lazy("Side effects reported in the period"), _side_effects),
    (gettext_lazy("Notes in the period"), _notes),
    (gettext_lazy("Decisions recorded"), _decisions),
    (gettext_lazy("Citations used"), _citations_used),
)
