"""``speciosa audit verify``: check the audit trail's hash chain (see
:mod:`speciosa.clinic.auditchain` and docs/security.md).

Exit 0 when every entry matches its hash and its link to the entry before, and the chain
head matches the last entry; exit 1 with the first broken entry otherwise. ``--json``
prints the result as JSON. Keep the printed head hash outside the database (a ticket, a
log shipped elsewhere): a later run whose chain does not pass through it shows a rewrite of
the whole chain too.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from .server import setup_django

    setup_django()
    from speciosa.clinic import auditchain

    result = auditchain.verify()
    if args.json:
        print(json.dumps(result.as_dict(), sort_keys=True))
    elif result.ok:
        print(f"Audit trail intact: {result.entries} entries; head {result.head}.")
    else:
        where = f"entry id {result.broken_id}" if result.broken_id is not None else "the chain head"
        print(f"Audit trail broken at {where} (position {result.broken_seq}): {result.reason}. "
              f"The {result.entries} entries before it are intact (head {result.head}).")
    return 0 if result.ok else 1


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("audit", help="the audit trail")
    sub = p.add_subparsers(dest="audit_command", metavar="SUBCOMMAND")
    v = sub.add_parser("verify", help="check the audit trail's hash chain; report the first broken entry")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(func=cmd_audit_verify)
