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

from .content import Statement, get_page

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


def _num(value) -> str:
    text = f"{float(value):.4f}".rstrip("0").rstrip(".")
    return text or "0"


def _range_text(row) -> str:
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
    if lo is not None and hi is not None:
        span = f"{_num(lo)} to {_num(hi)} {unit}"
    elif hi is not None:
        span = f"up to {_num(hi)} {unit}"
    else:
        span = f"from {_num(lo)} {unit}"
    whose = ("the laboratory's range" if row.reference_source == "laboratory"
             else "a usual adult range, as a guide: your laboratory's may differ")
    return f"{span} ({whose})"


def _about(lab_code: str) -> tuple[Statement, ...]:
    """What the test is: its education page's first section (cited there)."""
    page_id = LEARN_MORE.get(lab_code)
    if page_id is None:
        return ()
    return get_page(page_id).sections[0].statements


def explain(row) -> ExplainedResult:
    """``row``: a :class:`~speciosa.clinic.models.LabResult` of the patient."""
    try:
        name = klabs.get_lab(row.lab).name
    except (KeyError, ValueError, klabs.LabValueError):
        name = row.lab
    if row.value is not None:
        shown = f"{row.comparator}{_num(row.value)} {klabs.unit_display(row.unit)}".strip()
    else:
        shown = row.result or "no result"
    state = _STATE.get(getattr(row, "sample_state", "") or "")
    statements = list(_about(row.lab))
    if state is not None:
        statements.append(state)
    return ExplainedResult(
        lab=row.lab, name=name, collected_at=row.collected_at, shown=shown,
        range_text="" if state is not None else _range_text(row),
        position="" if state is not None else _POSITION.get(row.flag or "", ""),
        statements=tuple(statements), learn_more=LEARN_MORE.get(row.lab, ""))


def explain_all(rows) -> list[ExplainedResult]:
    """Newest first."""
    return [explain(r) for r in sorted(rows, key=lambda r: r.collected_at, reverse=True)]
