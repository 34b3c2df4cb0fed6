"""Readers for the timeline rows that are checked against the knowledge base.

Each reader raises :class:`~speciosa.safety.timeline.TimelineError` naming the field. The
checks are the knowledge base's own (the one scorer, the lab catalogue, the dose
converter); nothing here keeps a second copy of a range, a scale or a unit list.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs
from speciosa.pharmacology import doses as pdoses
from speciosa.safety.timeline import (
    SAMPLE_STATES,
    Assessment,
    LabResult,
    SideEffect,
    TimelineError,
    check_fields,
    read_name,
    read_number,
    read_time,
)

_DOSE_FIELDS = {"taken_at", "amount", "unit", "mitragynine_percent", "grams_per_capsule",
                "product"}


def read_dose(where: str, row: Mapping[str, Any], tz: tzinfo) -> pdoses.Dose:
    """A dose: ``taken_at``, ``amount`` > 0, ``unit`` and optional product facts."""
    check_fields(where, row, _DOSE_FIELDS)
    taken_at = read_time(f"{where}.taken_at", row.get("taken_at"), tz)
    amount = read_number(f"{where}.amount", row.get("amount"), positive=True)
    unit = row.get("unit")
    if unit not in pdoses.UNITS:
        raise TimelineError(f"{where}.unit", f"must be one of {list(pdoses.UNITS)}, not {unit!r}")
    optional: dict[str, Any] = {}
    for key in ("mitragynine_percent", "grams_per_capsule"):
        if row.get(key) is not None:
            optional[key] = read_number(f"{where}.{key}", row[key], positive=True)
    if row.get("product") is not None:
        optional["product"] = read_name(f"{where}.product", row["product"])
    try:
        dose = pdoses.Dose(taken_at=taken_at, amount=amount, unit=unit, **optional)
    except (pdoses.DoseConversionError, ValueError, TypeError) as exc:
        raise TimelineError(where, str(exc)) from None
    return dose


def read_assessment(where: str, row: Mapping[str, Any], tz: tzinfo, sex: str | None) -> Assessment:
    """An assessment: ``instrument``, ``at`` and ``items`` (scored by the one scorer) or
    ``total`` (checked against the instrument's range)."""
    check_fields(where, row, {"instrument", "at", "items", "total"})
    name = read_name(f"{where}.instrument", row.get("instrument"))
    try:
        inst = kinstruments.get_instrument(name)
    except kinstruments.InstrumentError as exc:
        raise TimelineError(f"{where}.instrument", str(exc)) from None
    at = read_time(f"{where}.at", row.get("at"), tz)
    items = row.get("items")
    total = row.get("total")
    if items is None and total is None:
        raise TimelineError(f"{where}.items", "give the item responses (items) or a total")
    if items is not None:
        if not isinstance(items, Mapping):
            raise TimelineError(f"{where}.items", "must be an object {item_id: value}")
        try:
            kinstruments.score(inst, items, sex=sex)
        except kinstruments.InstrumentError as exc:
            field = f"{where}.items.{exc.item}" if exc.item else f"{where}.items"
            raise TimelineError(field, str(exc)) from None
        items = dict(items)
    if total is not None:
        if isinstance(total, bool) or not isinstance(total, int):
            raise TimelineError(f"{where}.total", "must be an integer")
        if not inst.min_total <= total <= inst.max_total:
            raise TimelineError(
                f"{where}.total",
                f"{inst.label} totals run from {inst.min_total} to {inst.max_total}, not {total}",
            )
    return Assessment(instrument=inst.id, at=at, items=items, total=total)


def read_lab(where: str, row: Mapping[str, Any], tz: tzinfo) -> LabResult:
    """A lab result: ``lab`` code, ``at``, and ``value`` with ``unit`` (quantitative) or
    ``result`` (qualitative; also accepted for ``hcg``, e.g. a urine pregnancy test)."""
    check_fields(where, row, {"lab", "at", "value", "unit", "reference_low", "reference_high",
                              "reference_unit", "comparator", "iu_factor", "result",
                              "sample_state", "panel", "specimen_invalid"})
    code = read_name(f"{where}.lab", row.get("lab"))
    try:
        lab = klabs.get_lab(code)
    except klabs.LabValueError as exc:
        raise TimelineError(f"{where}.lab", exc.message) from None
    at = read_time(f"{where}.at", row.get("at"), tz)
    value, unit, result = row.get("value"), row.get("unit"), row.get("result")
    if result is not None:
        if not isinstance(result, str):
            raise TimelineError(f"{where}.result", "must be a string such as 'positive'")
        if lab.kind == "qualitative":
            try:
                result = klabs.normalise_result(code, result)
            except klabs.LabValueError as exc:
                raise TimelineError(f"{where}.{exc.field}", exc.message) from None
        elif code == "hcg":
            text = result.strip().lower()
            if text not in ("positive", "negative"):
                raise TimelineError(f"{where}.result", "hCG result must be positive or negative")
            result = text
        else:
            raise TimelineError(f"{where}.result", f"{lab.name} is quantitative: give value and unit")
    if lab.kind == "qualitative" or (result is not None and value is None):
        if result is None:
            raise TimelineError(f"{where}.result", f"{lab.name} is qualitative: give a result")
        if value is not None:
            raise TimelineError(f"{where}.value", f"{lab.name} is qualitative: give a result only")
        panel = row.get("panel")
        if panel is not None and (isinstance(panel, bool) or not isinstance(panel, int)):
            raise TimelineError(f"{where}.panel", "the panel a urine drug test analyte was "
                                                  "part of: a whole number, or null")
        invalid = row.get("specimen_invalid", False)
        if not isinstance(invalid, bool):
            raise TimelineError(f"{where}.specimen_invalid", "must be true or false")
        return LabResult(lab=code, at=at, value=None, unit=None, result=result, panel=panel,
                         specimen_invalid=invalid)
    number = read_number(f"{where}.value", value)
    comparator = row.get("comparator")
    if comparator is not None and comparator not in klabs.COMPARATORS:
        raise TimelineError(f"{where}.comparator",
                            f"must be one of {list(klabs.COMPARATORS)} or null, not {comparator!r}")
    factor = row.get("iu_factor")
    if factor is not None:
        factor = read_number(f"{where}.iu_factor", factor, positive=True)
        if code != "prolactin":
            raise TimelineError(f"{where}.iu_factor", "only a prolactin result takes an assay "
                                                      "factor (mIU/L per ng/mL)")
    try:
        unit = klabs.normalise_unit(code, unit)
        klabs.to_canonical(code, number, unit, iu_factor=factor)
    except klabs.LabValueError as exc:
        raise TimelineError(f"{where}.{exc.field}", exc.message) from None
    ref: dict[str, float | None] = {}
    for key in ("reference_low", "reference_high"):
        ref[key] = None if row.get(key) is None else read_number(f"{where}.{key}", row[key])
    ref_unit = row.get("reference_unit")
    if ref_unit is not None:
        try:
            ref_unit = klabs.normalise_unit(code, ref_unit)
        except klabs.LabValueError as exc:
            raise TimelineError(f"{where}.reference_unit", exc.message) from None
    if (ref["reference_low"] is not None and ref["reference_high"] is not None
            and ref["reference_low"] > ref["reference_high"]):
        raise TimelineError(f"{where}.reference_high", "is below reference_low")
    state = row.get("sample_state")
    if state is not None and (code != "prolactin" or state not in SAMPLE_STATES):
        raise TimelineError(f"{where}.sample_state",
                            f"a prolactin result's state at the sample: one of "
                            f"{list(SAMPLE_STATES)} or null")
    return LabResult(lab=code, at=at, value=number, unit=unit, result=result,
                     comparator=comparator, iu_factor=factor, reference_unit=ref_unit,
                     sample_state=state, **ref)


def read_side_effect(where: str, row: Mapping[str, Any], tz: tzinfo) -> SideEffect:
    """A side effect: ``at`` and ``code`` (an item id of the ``side-effects`` checklist)."""
    check_fields(where, row, {"at", "code"})
    code = read_name(f"{where}.code", row.get("code"))
    checklist = kinstruments.get_instrument("side-effects")
    known = [it.id for it in checklist.items]
    if code not in known:
        raise TimelineError(f"{where}.code", f"unknown side effect {code!r}; use one of {known}")
    return SideEffect(at=read_time(f"{where}.at", row.get("at"), tz), code=code)
