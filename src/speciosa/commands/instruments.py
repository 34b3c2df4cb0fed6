"""``speciosa instruments`` and ``speciosa score``: list instrument definitions, score a response.

``speciosa instruments [ID] [--json]`` prints every instrument (or one) with its items in
order, allowed values and anchors, bands, flags, citations and licence note.

``speciosa score INSTRUMENT [--sex female|male] [--json]`` reads a JSON object
``{item_id: value}`` on standard input and prints the score. Bad JSON, an unknown instrument
or item, or a value the item does not allow exits 2 with the reason on standard error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from speciosa.cli import UsageError
from speciosa.knowledge.instruments import (
    SEXES,
    DefinitionError,
    Instrument,
    InstrumentError,
    Score,
    all_instruments,
    get_instrument,
    score,
)


def register(subparsers: Any) -> None:
    """Add the ``instruments`` and ``score`` subcommands."""
    p = subparsers.add_parser(
        "instruments",
        help="list the clinical instruments (items, allowed values, bands)",
        description="Every instrument with its items in order, allowed values and anchors, "
        "bands, flags, citations and licence note.",
    )
    p.add_argument("instrument", nargs="?", help="show only this instrument id")
    p.add_argument("--json", action="store_true", help="print JSON for programs")
    p.set_defaults(func=cmd_instruments)

    s = subparsers.add_parser(
        "score",
        help="score a response read as JSON on stdin",
        description='Score a response. Reads a JSON object {"item_id": value, ...} on stdin. '
        'COWS also accepts the measured pulse as "pulse-bpm".',
    )
    s.add_argument("instrument", help="instrument id (see `speciosa instruments`)")
    s.add_argument("--sex", choices=SEXES, help="patient's sex, for sex-specific cut-offs (AUDIT-C)")
    s.add_argument("--json", action="store_true", help="print JSON for programs")
    s.set_defaults(func=cmd_score)


def _lookup(instrument_id: str) -> Instrument:
    try:
        return get_instrument(instrument_id)
    except (InstrumentError, DefinitionError) as exc:
        raise UsageError(str(exc)) from exc


def instrument_as_dict(inst: Instrument) -> dict[str, Any]:
    """The JSON form of an instrument definition."""
    return {
        "id": inst.id,
        "name": inst.name,
        "short_name": inst.label,
        "version": inst.version,
        "completed_by": inst.completed_by,
        "description": inst.description,
        "items": [
            {
                "id": it.id,
                "label": it.label,
                "values": list(it.allowed),
                "anchors": [{"value": v.value, "anchor": v.anchor} for v in it.values],
                "text": it.text,
                "scored": it.scored,
                "required": it.required,
                "measurement": None
                if it.measurement is None
                else {"key": it.measurement.key, "unit": it.measurement.unit},
            }
            for it in inst.items
        ],
        "scoring": inst.scoring,
        "min_total": inst.min_total,
        "max_total": inst.max_total,
        "bands": [{"label": b.label, "min": b.min, "max": b.max} for b in inst.bands],
        "band_note": inst.band_note,
        "flags": [{"id": f.id, "description": f.description} for f in inst.flags],
        "citations": list(inst.citations),
        "licence": inst.licence,
    }


def _anchors_text(inst: Instrument, item_index: int) -> str:
    item = inst.items[item_index]
    anchored = [v for v in item.values if v.anchor]
    if len(anchored) < len(item.values):  # a numeric range with anchored ends
        ends = "; ".join(f"{v.value} = {v.anchor}" for v in anchored)
        return f"{item.allowed[0]}-{item.allowed[-1]}" + (f" ({ends})" if ends else "")
    return "; ".join(f"{v.value} = {v.anchor}" for v in item.values)


def _instrument_text(inst: Instrument) -> str:
    lines = [
        f"{inst.id}: {inst.name} (version {inst.version}; completed by {inst.completed_by})",
    ]
    for i, it in enumerate(inst.items):
        notes = []
        if not it.scored:
            notes.append("not scored")
        if not it.required:
            notes.append("optional")
        if it.measurement:
            notes.append(f"or the measurement '{it.measurement.key}' in {it.measurement.unit}")
        extra = f" [{'; '.join(notes)}]" if notes else ""
        lines.append(f"  {i + 1:>2}. {it.id}: {it.label}{extra}")
        lines.append(f"      values: {_anchors_text(inst, i)}")
    lines.append(f"  total: {inst.min_total}-{inst.max_total} ({inst.scoring})")
    if inst.bands:
        lines.append(
            "  bands: " + "; ".join(f"{b.min}-{b.max} {b.label}" for b in inst.bands)
        )
    else:
        lines.append("  bands: none")
    if inst.band_note:
        lines.append(f"  note: {inst.band_note}")
    for f in inst.flags:
        lines.append(f"  flag {f.id}: {f.description}")
    lines.append(f"  citations: {', '.join(inst.citations) or 'none'}")
    lines.append(f"  licence: {inst.licence}")
    return "\n".join(lines)


def cmd_instruments(args: argparse.Namespace) -> int:
    """List instruments (text, or JSON with ``--json``)."""
    try:
        instruments = [_lookup(args.instrument)] if args.instrument else all_instruments()
    except DefinitionError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        print(json.dumps([instrument_as_dict(i) for i in instruments], indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(_instrument_text(i) for i in instruments))
    return 0


def score_as_dict(result: Score) -> dict[str, Any]:
    """The JSON form of a score."""
    return {
        "instrument": result.instrument,
        "version": result.version,
        "total": result.total,
        "band": result.band,
        "complete": result.complete,
        "flags": list(result.flags),
        "missing": list(result.missing),
    }


def _read_responses() -> dict[str, Any]:
    raw = sys.stdin.read()
    if not raw.strip():
        raise UsageError('expected a JSON object {"item_id": value, ...} on standard input')
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"standard input is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(
            f'expected a JSON object {{"item_id": value, ...}}, got {type(data).__name__}'
        )
    return data


def _score_text(inst: Instrument, result: Score) -> str:
    head = f"{inst.label} (version {result.version}): "
    if result.total is None:
        head += "no total (incomplete)"
    else:
        head += f"total {result.total} of {inst.max_total}"
        if result.band:
            head += f", {result.band}"
        elif inst.band_note:
            head += f", no band. {inst.band_note}"
        else:
            head += ", no band"
        if not result.complete:
            head += " (prorated: incomplete)"
    lines = [head]
    if result.missing:
        lines.append("missing: " + ", ".join(result.missing))
    descriptions = {f.id: f.description for f in inst.flags}
    for flag in result.flags:
        base = flag.removesuffix("-depends-on-sex")
        if flag != base:
            lines.append(f"flag {flag}: give --sex to decide. {descriptions.get(base, '')}".rstrip())
        else:
            lines.append(f"flag {flag}: {descriptions.get(flag, '')}".rstrip(": "))
    return "\n".join(lines)


def cmd_score(args: argparse.Namespace) -> int:
    """Score the JSON response on stdin (text, or JSON with ``--json``)."""
    inst = _lookup(args.instrument)
    responses = _read_responses()
    try:
        result = score(inst, responses, sex=args.sex)
    except InstrumentError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        print(json.dumps(score_as_dict(result), indent=2))
    else:
        print(_score_text(inst, result))
    return 0
