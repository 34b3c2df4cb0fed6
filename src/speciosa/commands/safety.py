"""``speciosa rules`` and ``speciosa evaluate``: list the safety rules, evaluate a timeline.

``speciosa rules [--json | --markdown]`` prints every rule with its id, topic, severity,
description, settings (with defaults) and citations; ``--markdown`` prints ``docs/rules.md``
(``speciosa rules --markdown > docs/rules.md`` after changing a rule).

``speciosa evaluate TIMELINE.json [--as-of TIME] [--set NAME=VALUE ...] [--json]`` reads a
timeline (format: ``docs/timeline.md``; ``-`` reads standard input) and prints the findings,
urgent first, without a database. Bad input exits 2 naming the field that is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from speciosa.cli import UsageError

# speciosa.safety is imported inside the commands, so that `speciosa --help` and every
# other subcommand work even while a dependency of the rules is missing or broken.


def register(subparsers: Any) -> None:
    """Add the ``rules`` and ``evaluate`` subcommands."""
    p = subparsers.add_parser(
        "rules",
        help="list the safety rules (id, topic, severity, settings, citations)",
        description="Every safety rule with its topic, highest severity, description, "
        "settings with their defaults, and evidence citations.",
    )
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print JSON for programs")
    shape.add_argument("--markdown", action="store_true",
                       help="print docs/rules.md (generated from the rule registry)")
    p.set_defaults(func=cmd_rules)

    e = subparsers.add_parser(
        "evaluate",
        help="evaluate the safety rules on a timeline read from JSON",
        description="Evaluate every safety rule on a patient timeline (docs/timeline.md), "
        "without a database. Prints the findings, urgent first.",
    )
    e.add_argument("timeline", help="timeline JSON file ('-' for standard input)")
    e.add_argument(
        "--as-of",
        metavar="TIME",
        help="evaluate as of this ISO 8601 time (a date means the end of that day; "
        "a time without offset is read in the timeline's zone); default: now",
    )
    e.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="override a setting (see `speciosa rules`); may be repeated",
    )
    e.add_argument("--json", action="store_true", help="print JSON for programs")
    e.set_defaults(func=cmd_evaluate)


def cmd_rules(args: argparse.Namespace) -> int:
    """Print every rule."""
    from speciosa.safety.rules import DEFAULT_SETTINGS, RULES, SETTINGS, markdown

    if args.markdown:
        sys.stdout.write(markdown())
        return 0
    if args.json:
        out = {
            "rules": [r.as_json() for r in RULES],
            "settings": [
                {
                    "name": s.name,
                    "default": s.default,
                    "unit": s.unit,
                    "description": s.description,
                    "source": s.source,
                    "citations": list(s.citations),
                }
                for s in SETTINGS
            ],
        }
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    for r in RULES:
        print(f"{r.id}  {r.topic}  [{r.severity}]")
        print(f"  {r.description}")
        if r.settings:
            shown = ", ".join(f"{n}={DEFAULT_SETTINGS[n]}" for n in r.settings)
            print(f"  settings: {shown}")
        print(f"  citations: {', '.join(r.citations)}")
        print()
    return 0


def _read_timeline(path: str) -> Any:
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}): "
                         f"{exc.msg}") from None


def _parse_as_of(text: str | None, tz: Any) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of: not an ISO 8601 time: {text!r}") from None
    if len(text) == 10:  # a date: the end of that day
        moment = moment.replace(hour=23, minute=59, second=59)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment


def _parse_settings(pairs: list[str]) -> dict[str, float] | None:
    if not pairs:
        return None
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--set: expected NAME=VALUE, got {pair!r}")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            raise UsageError(f"--set {name}: not a number: {value!r}") from None
        out[name] = int(number) if number.is_integer() else number
    return out


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate the rules on a timeline file."""
    from speciosa.safety import TimelineError, evaluate, timeline_from_json

    raw = _read_timeline(args.timeline)
    try:
        timeline = timeline_from_json(raw)
    except TimelineError as exc:
        raise UsageError(f"{args.timeline}: {exc.field}: {exc.message}") from None
    as_of = _parse_as_of(args.as_of, timeline.tz)
    try:
        findings = evaluate(timeline, as_of, _parse_settings(args.set))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        out = {"as_of": as_of.isoformat(), "findings": [f.as_json() for f in findings]}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    if not findings:
        print(f"No findings as of {as_of.isoformat()}.")
        return 0
    print(f"{len(findings)} finding(s) as of {as_of.isoformat()}:")
    for f in findings:
        print()
        print(f"[{f.severity.upper()}] {f.topic} ({f.rule})")
        print(f"  {f.message}")
        print(f"  Next step: {f.next_step}")
        print(f"  Evidence: {', '.join(f.citations)}")
    return 0
