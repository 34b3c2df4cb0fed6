"""``speciosa translations compile``: build the ``.mo`` message catalogues from the ``.po``
files (pure Python; ``make install`` runs it). ``speciosa translations check``: list what keeps
the Spanish and Thai catalogues from being complete (untranslated, fuzzy, placeholders that
differ, strings marked in the source but missing from a catalogue); exit 1 if anything does.
See docs/translation.md."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_translations_compile(args: argparse.Namespace) -> int:
    from speciosa.ops import catalogues

    written = catalogues.compile_catalogues(force=args.force)
    if args.json:
        print(json.dumps({"written": [str(p.relative_to(catalogues.LOCALE_DIR)) for p in written]}))
    else:
        print(f"Message catalogues: {len(written)} compiled"
              + ("" if written else " (all up to date)") + ".")
    return 0


def cmd_translations_check(args: argparse.Namespace) -> int:
    from speciosa.commands.server import setup_django

    setup_django()
    from speciosa.ops import catalogues

    found = catalogues.problems()
    if args.json:
        print(json.dumps({"problems": found}))
    else:
        for line in found:
            print(line)
        print(f"Catalogues {', '.join(catalogues.TRANSLATED)}: "
              + (f"{len(found)} problems." if found else "complete."))
    return 1 if found else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("translations", help="message catalogues: compile them, check them")
    sub = p.add_subparsers(dest="translations_command", metavar="ACTION", required=True)
    c = sub.add_parser("compile", help="build the .mo files from the .po files")
    c.add_argument("--force", action="store_true", help="rebuild every .mo, even if up to date")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_translations_compile)
    k = sub.add_parser("check", help="untranslated, fuzzy or missing entries in es and th")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_translations_check)
