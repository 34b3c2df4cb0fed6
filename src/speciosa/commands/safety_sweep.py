"""``speciosa sweep``: evaluate the safety rules for every patient (time-based rules);
``speciosa sweep --runs N``: the last sweep runs over the task queue and their failed chunks."""

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
    runs = getattr(args, "runs", None)
    if runs is not None:
        if runs < 1:
            raise UsageError("--runs: give 1 or more runs")
        return _show_runs(runs, args.json)
    started = time.perf_counter()
    result = alerts.sweep(as_of=as_of, workers=args.workers)
    seconds = time.perf_counter() - started
    data = {"patients": result.patients, "findings": result.findings, "created": result.created,
            "updated": result.updated, "stopped": result.stopped, "failed": result.failed,
            "rechecked": result.rechecked, "seconds": round(seconds, 3)}
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


def _show_runs(count: int, as_json: bool) -> int:
    """The last ``count`` sweep runs over the task queue (``speciosa.tasks.sweep_all``), newest
    first, with the chunks that failed and why. Exit status 1 when one of them finished
    without being complete (a failed chunk, or patients whose rules raised)."""
    from speciosa.clinic import alerts
    from speciosa.clinic.models import SweepRun

    runs = list(SweepRun.objects.order_by("-started_at", "-pk")[:count])
    out = []
    for run in runs:
        done = run.chunk_set.filter(done_at__isnull=False).count()
        out.append({
            "run": run.pk, "as_of": run.as_of.isoformat(), "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "complete": run.complete, "chunks": run.chunks, "chunks_done": done, "patients": run.patients,
            "findings": run.findings, "created": run.created, "failed_patients": alerts.run_result(run).failed,
            "failed_chunks": [{"first_patient": c.first_patient, "last_patient": c.last_patient,
                               "failed_at": c.failed_at.isoformat(), "worker": c.worker,
                               "error_type": c.error_type, "error": c.error}
                              for c in alerts.failed_chunks(run)]})
    if as_json:
        print(json.dumps(out))
    elif not out:
        print("No sweep run over the task queue yet.")
    for r in [] if as_json else out:
        if r["finished_at"] is None:
            state = f"running: {r['chunks_done']} of {r['chunks']} chunks done"
        else:
            state = "complete" if r["complete"] else "finished, NOT complete"
        print(f"Run {r['run']} as of {r['as_of']}, started {r['started_at']}: {state}; "
              f"{r['patients']} patients, {r['findings']} findings, {r['created']} alerts created.")
        for c in r["failed_chunks"]:
            print(f"  chunk of patients {c['first_patient']}-{c['last_patient']} failed at {c['failed_at']} "
                  f"on {c['worker'] or 'an unnamed worker'}: {c['error_type']}: {c['error']}")
        if r["failed_patients"]:
            print(f"  the safety rules failed for {len(r['failed_patients'])} patients (ids "
                  f"{', '.join(map(str, r['failed_patients'][:20]))}"
                  f"{' ...' if len(r['failed_patients']) > 20 else ''})")
    return 1 if any(r["finished_at"] is not None and not r["complete"] for r in out) else 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("sweep", help="evaluate the safety rules for every patient and update alerts")
    p.add_argument("--as-of", help="evaluate as of this time (ISO 8601 with offset); default now")
    p.add_argument("--workers", type=int, default=1,
                   help="evaluate in this many processes (default 1; e.g. the number of cores)")
    p.add_argument("--runs", type=int, metavar="N",
                   help="do not sweep: show the last N sweep runs over the task queue, with the chunks "
                        "that failed and why (exit status 1 if one finished without being complete)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)
