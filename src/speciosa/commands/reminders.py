"""``speciosa reminders send``: send the reminders that are due now (what the periodic task
does, once; for a cron job where no beat runs). ``speciosa reminders vapid-keys``: print a new
VAPID key pair for Web Push (environment lines to paste)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import Counter
from typing import Any


def cmd_reminders_send(args: argparse.Namespace) -> int:
    from speciosa.cli import UsageError
    from speciosa.commands.server import setup_django

    at = None
    if args.as_of:
        try:
            at = dt.datetime.fromisoformat(args.as_of)
        except ValueError:
            raise UsageError(f"--as-of: {args.as_of!r} is not an ISO 8601 time") from None
        if at.tzinfo is None:
            raise UsageError("--as-of: give the time with its offset, e.g. 2026-11-25T18:00:00+00:00")
    setup_django()
    from speciosa.reminders import services

    total: Counter = Counter()
    patients = 0
    for patient in services.patients_with_reminders().select_related("site", "user"):
        total.update(services.remind(patient, at))
        patients += 1
    data = {"patients": patients, **{str(k): v for k, v in sorted(total.items())}}
    if args.json:
        print(json.dumps(data))
    else:
        done = ", ".join(f"{v} {k}" for k, v in sorted(total.items())) or "nothing due"
        print(f"Reminders for {patients} patients: {done}.")
    return 0


def cmd_reminders_vapid_keys(args: argparse.Namespace) -> int:
    from speciosa.reminders import vapid

    private, public = vapid.new_keys()
    if args.json:
        print(json.dumps({"SPECIOSA_VAPID_PRIVATE_KEY": private, "SPECIOSA_VAPID_PUBLIC_KEY": public}))
    else:
        print("# Web Push keys for Speciosa: keep the private key secret (docs/reminders.md)")
        print(f"SPECIOSA_VAPID_PRIVATE_KEY={private}")
        print(f"SPECIOSA_VAPID_PUBLIC_KEY={public}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("reminders", help="patient reminders: send the due ones, make Web Push keys")
    sub = p.add_subparsers(dest="reminders_command", metavar="ACTION", required=True)
    s = sub.add_parser("send", help="send the reminders due now (once per item and channel)")
    s.add_argument("--as-of", help="as at this time (ISO 8601 with offset); default now")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_reminders_send)
    k = sub.add_parser("vapid-keys", help="print a new VAPID key pair for Web Push")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=cmd_reminders_vapid_keys)
