"""``speciosa sweep``: evaluate the safety rules for every patient (time-based rules)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any


def cmd_sweep(args: argparse.Namespace) -> int:
    from speciosa.cli import UsageError
    from speciosa.commands.server import setup_django

    setup_django()
    from speciosa.clinic import alerts

    as_of = None
    if args.as_of:
        try:
            as_of = dt.datetime.fromisoformat(args.as_of)
        except ValueError:
            raise UsageError(f"--as-of: {args.as_of!r} is not an ISO 8601 time") from None
        if as_of.tzinfo is None:
            raise UsageError("--as-of: give the time with its offset, e.g. 2026-11-25T08:00:00+00:00")
    if args.workers < 1:
        raise UsageError("--workers: give 1 or more processes")
    started = time.perf_counter()
    result = alerts.sweep(as_of=as_of, workers=args.workers)
    seconds = time.perf_counter() - started
    data = {"patients": result.patients, "findings": result.findings, "created": result.created,
            "updated": result.updated, "stopped": result.stopped, "failed": result.failed,
            "seconds": round(seconds, 3)}
    if args.json:
        print(json.dumps(data))
    else:
        print(f"Swept {result.patients} patients in {seconds:.2f} s: {result.findings} findings; "
              f"{result.created} alerts created, {result.updated} updated, "
              f"{result.stopped} stopped firing (left open).")
        if result.failed:
            print(f"The safety rules failed for {len(result.failed)} patients (ids "
                  f"{', '.join(map(str, result.failed[:20]))}{' ...' if len(result.failed) > 20 else ''}): "
                  "they were not evaluated and their alerts were left as they were; the log has each "
                  "error.", file=sys.stderr)
    return 1 if result.failed else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sweep", help="evaluate the safety rules for every patient and update alerts")
    p.add_argument("--as-of", help="evaluate as of this time (ISO 8601 with offset); default now")
    p.add_argument("--workers", type=int, default=1,
                   help="evaluate in this many processes (default 1; e.g. the number of cores)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)
