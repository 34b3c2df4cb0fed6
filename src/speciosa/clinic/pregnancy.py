"""Pregnancy and breastfeeding at the time of a prolactin sample (issue 13).

Pregnancy and breastfeeding raise prolactin physiologically: the non-pregnant reference range
does not apply, and routine measurement in pregnancy is not advised (Melmed 2011). What
matters for a result is the state **at the sample**, not today's: a prolactin taken in
pregnancy stays "taken in pregnancy" after the birth, and a high prolactin taken weeks before
a pregnancy was recorded may have been taken in it.

The record keeps no full history of pregnancy, so each prolactin result keeps its own state
(:attr:`LabResult.sample_state`), with the reason in words:

- **from a recorded status** (``basis`` ``status``): a sample taken on or after the day the
  pregnancy (``Patient.pregnant_since``) or breastfeeding (``breastfeeding_since``) was known
  is *taken in pregnancy* (or *while breastfeeding*); one taken in the
  ``hcg_positive_valid_days`` (280, the length of a pregnancy) before that day is *possibly
  taken in pregnancy*. These states are the history: unticking pregnancy later leaves them.
- **from hCG results** (``basis`` ``hcg``): a sample after a positive hCG (within the same
  window, no negative hCG in between) is *taken after a positive hCG*; one in the window
  before a positive hCG (no negative hCG in between) is *possibly taken in pregnancy*. These
  are read again whenever an hCG is recorded or corrected, so a mistyped positive hCG can be
  undone by correcting it.

A result with any of these states is not flagged against the non-pregnant range (the flag is
empty and the note says why), and the prolactin rules do not read it as the baseline or the
latest value. A patient whose sex for reference ranges is male has no such state (pregnancy is
refused for him; breastfeeding recorded for him is a contradiction the interpretation names).
Every change of a stored state is in the audit trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction

from speciosa.safety.timeline import SAMPLE_STATES

from . import integrity

#: States that set the non-pregnant prolactin range aside.
PAUSED = SAMPLE_STATES

_POSITIVE = frozenset({"positive", "pos", "detected", "reactive"})


@dataclass(frozen=True)
class State:
    state: str = ""  # a SampleState value
    basis: str = ""  # a SampleStateBasis value
    note: str = ""

    @property
    def paused(self) -> bool:
        return self.state in PAUSED


NONE = State()


@dataclass(frozen=True)
class _Hcg:
    at: dt.datetime
    positive: bool


def window_days() -> int:
    """How far a pregnancy reaches back (the rule setting ``hcg_positive_valid_days``)."""
    from . import rule_settings

    return int(rule_settings.in_force()["hcg_positive_valid_days"])


def _day(patient, at: dt.datetime) -> dt.date:
    import zoneinfo

    try:
        tz = zoneinfo.ZoneInfo(patient.site.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, AttributeError):
        return at.date()
    return at.astimezone(tz).date()


def _fmt(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


def default_since(patient) -> None:
    """``pregnant_since``/``breastfeeding_since``: today at the site when ticked without a
    date, cleared when unticked."""
    today = integrity.site_today(patient.site if patient.site_id else None)
    if patient.pregnant:
        patient.pregnant_since = patient.pregnant_since or today
    else:
        patient.pregnant_since = None
    if patient.breastfeeding:
        patient.breastfeeding_since = patient.breastfeeding_since or today
    else:
        patient.breastfeeding_since = None


_WATCHED = ("sex", "pregnant", "pregnant_since", "breastfeeding", "breastfeeding_since")


def status_changed(patient) -> bool:
    """Whether saving ``patient`` changes what its prolactin samples' states read."""
    from .models import Patient

    if patient.pk is None:
        return False  # a new patient has no results yet
    before = Patient.objects.filter(pk=patient.pk).values(*_WATCHED).first()
    if before is None:
        return False
    return any(before[k] != getattr(patient, k) for k in _WATCHED)


def from_status(patient, at: dt.datetime) -> State:
    """The state a sample taken at ``at`` has from the patient's recorded status."""
    if patient.sex == "male":
        return NONE
    day, window = _day(patient, at), window_days()
    today = integrity.site_today(patient.site if patient.site_id else None)
    recorded = [(patient.pregnant, patient.pregnant_since, "pregnant", "pregnancy"),
                (patient.breastfeeding, patient.breastfeeding_since, "breastfeeding",
                 "breastfeeding")]
    for on, since, state, _what in recorded:
        if on and day >= (since or today):
            return State(state, "status", (
                f"Taken {'in pregnancy' if state == 'pregnant' else 'while breastfeeding'} "
                f"(recorded from {_fmt(since or today)}): the non-pregnant range does not apply."))
    for on, since, _state, what in recorded:
        since = since or today
        if on and since - dt.timedelta(days=window) <= day < since:
            return State("uncertain", "status", (
                f"{what.capitalize()} recorded from {_fmt(since)}, {(since - day).days} days "
                "after this sample: it may have been taken in pregnancy, when the non-pregnant "
                "range does not apply. Check the dates."))
    return NONE


def _hcgs(patient) -> list[_Hcg]:
    from .models import LabResult

    if patient.pk is None:
        return []  # a patient an import is about to create has no results yet
    rows = (LabResult.objects.current().filter(patient=patient, lab="hcg")
            .order_by("collected_at")
            .values_list("collected_at", "result", "canonical_value", "reference_high",
                         "reference_source"))
    out = []
    for at, result, value, high, source in rows:
        if result:
            positive = result.strip().lower() in _POSITIVE
        elif value is not None and high is not None and source == LabResult.RangeSource.LABORATORY:
            positive = value > high  # above the laboratory's cut-off
        else:
            continue  # a value without the laboratory's cut-off: neither positive nor negative
        out.append(_Hcg(at, positive))
    return out


def from_hcg(patient, at: dt.datetime, hcgs: Sequence[_Hcg] | None = None) -> State:
    """The state a sample taken at ``at`` has from the patient's hCG results."""
    if patient.sex == "male":
        return NONE
    hcgs = _hcgs(patient) if hcgs is None else hcgs
    window = dt.timedelta(days=window_days())
    before = [h for h in hcgs if at - window <= h.at <= at]
    if before and before[-1].positive:
        return State("hcg-positive", "hcg", (
            f"Taken after a positive hCG ({_fmt(_day(patient, before[-1].at))}): the "
            "non-pregnant range does not apply."))
    for h in hcgs:
        if not at < h.at <= at + window:
            continue
        if not h.positive:
            return NONE  # a negative hCG after the sample: it was not taken in that pregnancy
        return State("uncertain", "hcg", (
            f"Positive hCG on {_fmt(_day(patient, h.at))}, {(h.at - at).days} days after this "
            "sample: it may have been taken in pregnancy, when the non-pregnant range does not "
            "apply. Check the dates."))
    return NONE


def state_at(patient, at: dt.datetime, hcgs: Sequence[_Hcg] | None = None) -> State:
    """The state of a new prolactin sample taken at ``at``: a recorded status first, then hCG."""
    state = from_status(patient, at)
    return state if state.state else from_hcg(patient, at, hcgs)


def _rank(state: str) -> int:
    return {"pregnant": 2, "breastfeeding": 2, "uncertain": 1}.get(state, 0)


def _restated(patient, record, hcgs: Sequence[_Hcg]) -> State:
    """A stored result's state after a change: a state from a recorded status is history
    and only moves towards the more certain; one from hCG results is read again."""
    if patient.sex == "male":
        return NONE
    stored = State(record.sample_state, record.sample_state_basis, record.sample_state_note)
    status = from_status(patient, record.collected_at)
    if stored.basis == "status":
        return status if _rank(status.state) > _rank(stored.state) else stored
    return status if status.state else from_hcg(patient, record.collected_at, hcgs)


def restate_samples(patient, user=None, *, reevaluate: bool = True) -> int:
    """Read the states of ``patient``'s current prolactin results again (after pregnancy,
    breastfeeding, the sex or an hCG changed); store and audit each change, re-flag the
    result, and re-evaluate the rules (unless ``reevaluate`` is false: an import evaluates
    once at its end). Returns how many results changed."""
    from .models import AuditEntry, LabResult
    from .services import prolactin_flag
    from .writes import after_change, audit

    hcgs = _hcgs(patient)
    changed = 0
    with transaction.atomic():
        for record in (LabResult.objects.current().select_for_update()
                       .filter(patient=patient, lab="prolactin")):
            new = _restated(patient, record, hcgs)
            if (new.state, new.basis, new.note) == (record.sample_state, record.sample_state_basis,
                                                   record.sample_state_note):
                continue
            before = {"sample_state": record.sample_state, "flag": record.flag}
            record.sample_state, record.sample_state_basis = new.state, new.basis
            record.sample_state_note = new.note[:200]
            record.flag = prolactin_flag(patient, record)
            record.save(update_fields=["sample_state", "sample_state_basis", "sample_state_note",
                                       "flag"])
            audit(user, AuditEntry.Action.CORRECT, record, patient=patient, before=before,
                  after={"sample_state": record.sample_state, "flag": record.flag},
                  reason=("Pregnancy or breastfeeding at the sample read again: "
                          + (new.note or "neither applies."))[:500])
            changed += 1
    if changed and reevaluate:
        after_change(patient)
    return changed


def hcg_saved(sender, instance, created, **kwargs) -> None:
    """An hCG result stored or corrected (``post_save``): its patient's samples read again."""
    if instance.superseded and not instance.retracted:
        return  # a correction: its new version's save follows
    if instance.lab == "hcg" and not kwargs.get("raw"):
        restate_samples(instance.patient)
