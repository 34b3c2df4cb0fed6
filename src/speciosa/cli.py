"""The ``speciosa`` command: parse, call the core, print (text, or JSON with ``--json``).

Subcommands live in ``speciosa.commands.*`` modules, one module per area. Each module has
``register(subparsers)``, which adds its subcommands, and one handler per subcommand named
``cmd_<subcommand>`` (``speciosa export fhir`` -> ``cmd_export_fhir``, ``speciosa
check-deploy`` -> ``cmd_check_deploy``), set as ``func`` on its parser. A handler takes the
parsed ``argparse.Namespace`` and returns the process exit code. Invalid input raises
:class:`UsageError`: exit 2 with the reason on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "speciosa.commands.server",
    "speciosa.commands.instruments",
    "speciosa.commands.knowledge",
    "speciosa.commands.pharmacology",
    "speciosa.commands.safety",
    "speciosa.commands.safety_sweep",
    "speciosa.commands.interop",
    "speciosa.commands.research",
    "speciosa.commands.ops",
    "speciosa.commands.security",
    "speciosa.commands.audit",
    "speciosa.commands.oauth",
    "speciosa.commands.reminders",
    "speciosa.commands.translations",
)


class UsageError(Exception):
    """Input a person can fix; printed on stderr, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speciosa",
        description="Speciosa: supervised recovery when a patient uses kratom. "
        "Not a medical device; it never recommends a kratom dose.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"speciosa {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
