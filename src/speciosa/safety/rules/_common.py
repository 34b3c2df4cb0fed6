"""Helpers the rules of several areas share: numbers in messages, lab values in canonical
units and against an upper limit, lab evidence, and scores from the one scorer."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs
from speciosa.safety.timeline import Assessment, LabResult

if TYPE_CHECKING:
    from speciosa.safety.rules._context import Context

_POSITIVE = frozenset({"positive", "pos", "detected", "det", "screen positive", "reactive"})


def iso(moment: datetime | date) -> str:
    """A time or a day for evidence."""
    return moment.isoformat()


def fmt(x: float) -> str:
    """A number for a message: up to 3 significant figures, no trailing zeros."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def shown(result: LabResult, value: float) -> str:
    """A result's canonical value for a message, with its comparator (``<5``, ``>2000``)."""
    return f"{result.comparator or ''}{fmt(value)}"


def over(result: LabResult, value: float | None, threshold: float | None) -> bool:
    """Whether the result is surely above ``threshold`` (both canonical): a value reported as
    an upper bound (``<5``) never is; a lower bound (``>2000``) is when the bound is."""
    if value is None or threshold is None or result.below():
        return False
    return value > threshold


def canonical(result: LabResult) -> float | None:
    """The result's value in the lab's canonical unit (worked out once, when the timeline
    was made), or None when it cannot be converted."""
    return result.canonical_value


def uln(result: LabResult, sex: str | None) -> tuple[float | None, str]:
    """Upper reference limit (canonical unit, like :func:`canonical`) and where it came from.

    The reporting laboratory's limit is preferred (pharmacology.md §6.1); otherwise the
    catalogue's adult range for the patient's sex; with the sex unknown, the higher of the
    two sexes' limits (so that no result is called high that is normal for either sex).
    """
    if result.reference_high is not None:
        return result.canonical_high, "reporting laboratory"
    if sex is not None:
        rng = klabs.reference_range(result.lab, sex)
        high = rng[1] if rng else None
        return high, f"catalogue range for {sex}s"
    highs = [
        rng[1]
        for s in klabs.SEXES
        if (rng := klabs.reference_range(result.lab, s)) is not None and rng[1] is not None
    ]
    return (max(highs) if highs else None), "catalogue range (sex not recorded: higher limit)"


def qualitative_positive(result: LabResult) -> bool:
    """A positive qualitative result, or a value above the laboratory's upper limit."""
    if result.result is not None:
        return result.result.strip().lower() in _POSITIVE
    if result.canonical_value is not None and result.canonical_high is not None:
        return result.canonical_value > result.canonical_high and not result.below()
    return False


def lab_json(result: LabResult, canonical: float | None = None, uln: float | None = None,
             unit: str | None = None) -> dict[str, Any]:
    """A lab result for evidence: as reported, and in the canonical unit when given."""
    out: dict[str, Any] = {"lab": result.lab, "at": iso(result.at)}
    if result.value is not None:
        out["value"] = result.value
        out["unit"] = result.unit
        if result.comparator:
            out["comparator"] = result.comparator
    if result.result is not None:
        out["result"] = result.result
    if canonical is not None and unit is not None:
        out["value_canonical"] = round(canonical, 4)
        out["canonical_unit"] = unit
    if uln is not None:
        out["upper_reference_limit"] = round(uln, 4)
    return out


def score(ctx: Context, a: Assessment) -> tuple[int | None, tuple[str, ...], str | None]:
    """(total, flags, band) of an assessment via the one scorer (``flags_for_total`` for a
    total recorded without items); total falls back to the recorded total when items are
    absent or incomplete."""
    if a.items is not None:
        try:
            s = kinstruments.score(ctx.instrument(a.instrument), a.items, sex=ctx.sex)
        except kinstruments.InstrumentError:
            return a.total, (), None
        total = s.total if s.total is not None else a.total
        return total, s.flags, s.band
    if a.total is None:
        return None, (), None
    inst = ctx.instrument(a.instrument)
    band = inst.band_for(a.total)
    try:
        flags = kinstruments.flags_for_total(inst, a.total, sex=ctx.sex)
    except kinstruments.InstrumentError:  # a total outside the range: no flag can be read
        flags = ()
    return a.total, flags, band.label if band else None


def least_total(ctx: Context, instrument: str, items: dict | None) -> tuple[int | None, list[str]]:
    """The least total an incomplete response can have (its answered scored items, the
    lowest value of each unanswered one) and the unanswered scored items; (None, []) without
    items. A response with an item left unanswered has no total (the one scorer), yet its
    answered items may already reach a threshold."""
    if not items:
        return None, []
    least, unanswered = 0, []
    for item in ctx.instrument(instrument).items:
        if not item.scored:
            continue
        value = items.get(item.id)
        if isinstance(value, int) and not isinstance(value, bool):
            least += value
        else:
            unanswered.append(item.id)
            least += min(item.allowed)
    return least, unanswered


def item_conditions(inst, flag_id: str) -> tuple[tuple[str, int], ...]:
    """(item, at least) pairs of an item flag, read from the instrument definition."""
    for flag in inst.flags:
        if flag.id == flag_id:
            found = tuple((c.item, c.threshold or 0) for c in flag.conditions
                          if c.kind == "item" and c.item)
            if found:
                return found
    raise LookupError(f"the {inst.id} definition has no item flag {flag_id!r}")
