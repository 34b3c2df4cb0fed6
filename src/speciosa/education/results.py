"""A patient's own lab results in plain words (issue 16, "The patient's own record").

Each result says what was measured, the value as the laboratory reported it, the range it
was read against (whose range: the laboratory's, or a usual adult range as a guide), where
the value lies, and that the care team will talk about it. Prolactin also says what
prolactin is, from the cited statements of its education page, and why a result taken in
pregnancy or while breastfeeding is not read against the usual range. Nothing here
interprets a result beyond its place against the range, suggests a diagnosis, or gives a
dose: that is the clinician's conversation with the patient. Every clinical sentence is a
:class:`~speciosa.education.content.Statement` with its evidence ids.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from speciosa.knowledge import labs as klabs
from speciosa.knowledge import translations

from .content import Statement, get_page, translate_page

#: Where a value lies, in words, by the stored flag of the result.
_POSITION = {
    "high": "above the range",
    "low": "below the range",
    "normal": "within the range",
    "abnormal": "not the expected result",
}

#: A result's state at the sample (prolactin, :mod:`speciosa.clinic.pregnancy`), in words.
_STATE = {
    "pregnant": Statement(
        "This test was taken while you were pregnant. Prolactin is naturally higher in "
        "pregnancy, so the usual range does not apply.", ("pregnancy-raises-prolactin",)),
    "breastfeeding": Statement(
        "This test was taken while you were breastfeeding. Prolactin is naturally higher "
        "then, so the usual range does not apply.", ("pregnancy-raises-prolactin",)),
    "hcg-positive": Statement(
        "This test was taken after a positive pregnancy test. Prolactin goes up in "
        "pregnancy. So the usual range does not apply.", ("pregnancy-raises-prolactin",)),
    "uncertain": Statement(
        "You may have been pregnant when this test was taken. If so, the usual range does "
        "not apply, because prolactin is naturally higher in pregnancy. Your care team will "
        "check the dates with you.", ("pregnancy-raises-prolactin",)),
}

#: The education page each test links to, when there is one.
LEARN_MORE = {"prolactin": "prolactin"}

TALK = "Your care team will talk with you about this result and what it means for you."

#: How a range is written; the numbers and the unit come from the result, in every language.
RANGE_BOTH = "{low} to {high} {unit}"
RANGE_UP_TO = "up to {high} {unit}"
RANGE_FROM = "from {low} {unit}"
RANGE_WHOSE = "{span} ({whose})"
WHOSE_LABORATORY = "the laboratory's range"
WHOSE_USUAL = "a usual adult range, as a guide: your laboratory's may differ"
NO_RESULT = "no result"

#: The content id of these explanations in :mod:`speciosa.knowledge.translations`.
CONTENT = "record/lab-results"


def strings() -> list[str]:
    """Every English string of the explanations a translation must cover (the tests' names
    included)."""
    return [*_POSITION.values(), *(st.text for st in _STATE.values()), TALK, RANGE_BOTH,
            RANGE_UP_TO, RANGE_FROM, RANGE_WHOSE, WHOSE_LABORATORY, WHOSE_USUAL, NO_RESULT,
            *(lab.name for lab in klabs.all_labs())]


def shown_in(language: str | None) -> translations.Shown:
    """How the explanations are shown to a reader of ``language``."""
    return translations.shown(CONTENT, language, strings())


@dataclass(frozen=True)
class ExplainedResult:
    """One result as the patient reads it."""

    lab: str
    name: str
    collected_at: dt.datetime
    shown: str  # the value as reported, e.g. "38 ng/mL" or "positive"
    range_text: str  # e.g. "4.8 to 23.3 ng/mL (the laboratory's range)"; "" without one
    position: str  # e.g. "above the range"; "" when not compared
    statements: tuple[Statement, ...] = field(default_factory=tuple)
    learn_more: str = ""  # an education page id
    talk: str = TALK
    #: the language the explanation is shown in, and the note about its translation
    shown_in: translations.Shown = field(default_factory=lambda: translations.Shown("en", "en"))


def _num(value) -> str:
    text = f"{float(value):.4f}".rstrip("0").rstrip(".")
    return text or "0"


def _range_text(row, t=str) -> str:
    low, high = row.reference_low, row.reference_high  # stored in the canonical unit
    if (low is None and high is None) or not row.unit:
        return ""
    try:
        lo = None if low is None else klabs.canonical_in_unit(row.lab, low, row.unit,
                                                              iu_factor=row.iu_factor)
        hi = None if high is None else klabs.canonical_in_unit(row.lab, high, row.unit,
                                                               iu_factor=row.iu_factor)
    except klabs.LabValueError:
        return ""
    if lo is None and hi is None:
        return ""
    unit = klabs.unit_display(row.unit)
    low = "" if lo is None else _num(lo)
    high = "" if hi is None else _num(hi)
    if lo is not None and hi is not None:
        span = t(RANGE_BOTH).format(low=low, high=high, unit=unit)
    elif hi is not None:
        span = t(RANGE_UP_TO).format(high=high, unit=unit)
    else:
        span = t(RANGE_FROM).format(low=low, unit=unit)
    whose = t(WHOSE_LABORATORY if row.reference_source == "laboratory" else WHOSE_USUAL)
    return t(RANGE_WHOSE).format(span=span, whose=whose)


def _about(lab_code: str, language: str) -> tuple[Statement, ...]:
    """What the test is: its education page's first section (cited there), in ``language``
    when the page is translated."""
    page_id = LEARN_MORE.get(lab_code)
    if page_id is None:
        return ()
    page, _shown = translate_page(get_page(page_id), language)
    return page.sections[0].statements


def explain(row, language: str | None = None,
            shown: translations.Shown | None = None) -> ExplainedResult:
    """``row``: a :class:`~speciosa.clinic.models.LabResult` of the patient, explained in
    ``language`` when the explanations are translated into it (else in English)."""
    shown = shown or shown_in(language)
    t = shown.text
    try:
        name = t(klabs.get_lab(row.lab).name)
    except (KeyError, ValueError, klabs.LabValueError):
        name = row.lab
    if row.value is not None:
        value = f"{row.comparator}{_num(row.value)} {klabs.unit_display(row.unit)}".strip()
    else:
        value = row.result or t(NO_RESULT)
    state = _STATE.get(getattr(row, "sample_state", "") or "")
    statements = list(_about(row.lab, shown.language))
    if state is not None:
        statements.append(Statement(t(state.text), state.cite, state.unknown, state.bullet))
    position = _POSITION.get(row.flag or "", "")
    return ExplainedResult(
        lab=row.lab, name=name, collected_at=row.collected_at, shown=value,
        range_text="" if state is not None else _range_text(row, t),
        position="" if state is not None or not position else t(position),
        statements=tuple(statements), learn_more=LEARN_MORE.get(row.lab, ""),
        talk=t(TALK), shown_in=shown)


def explain_all(rows, language: str | None = None) -> list[ExplainedResult]:
    """Newest first, in ``language`` when translated."""
    shown = shown_in(language)
    return [explain(r, shown=shown)
            for r in sorted(rows, key=lambda r: r.collected_at, reverse=True)]
