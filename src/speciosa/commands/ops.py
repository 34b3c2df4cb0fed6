"""``speciosa backup``, ``speciosa restore``, ``speciosa health`` and ``speciosa worker``.

``speciosa backup PATH`` writes a consistent online backup of the configured database
(SQLite or PostgreSQL) with a manifest of every table's row count and checksum.
``speciosa restore PATH`` restores it into an empty database and verifies every table.
``speciosa health [--json]`` checks the database, the migrations and the task queue (exit 0
when healthy, 1 when not). ``speciosa worker [--beat] [-- CELERY ARGS]`` runs the Celery
worker (``--beat`` also runs the periodic sweep, urgent-alert e-mail and reminders in it).
See docs/deployment.md.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from speciosa.cli import UsageError


def register(subparsers: Any) -> None:
    """Add ``backup``, ``restore``, ``health`` and ``worker``."""
    p = subparsers.add_parser(
        "backup", help="consistent online backup of the database (SQLite or PostgreSQL)",
        description="Write a backup file: the database (SQLite online backup API, or pg_dump "
        "--format=custom of one snapshot) and a manifest with every table's row count and "
        "SHA-256. Safe while the app runs.")
    p.add_argument("path", help="the backup file to write (replaced atomically if it exists)")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_backup)

    p = subparsers.add_parser(
        "restore", help="restore a backup into an empty database and verify it",
        description="Restore a backup written by 'speciosa backup' into the configured database, "
        "which must be empty (a new PostgreSQL database, or an empty SPECIOSA_DATA_DIR), then "
        "compare every table's row count and checksum with the backup's manifest.")
    p.add_argument("path", help="the backup file")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=cmd_restore)

    p = subparsers.add_parser("health", help="database, migrations and task queue: ok or not",
                              description="The checks of GET /health/; exit 0 when healthy, 1 when not.")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=cmd_health)

    p = subparsers.add_parser(
        "worker", help="run the background worker (Celery; needs CELERY_BROKER_URL)",
        description="Run the Celery worker for Speciosa's background tasks. Extra arguments after "
        "'--' go to 'celery worker' (e.g. -- --concurrency 4).")
    p.add_argument("--beat", action="store_true",
                   help="also schedule the periodic tasks (run exactly one such process)")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("celery_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_worker)


def _setup() -> None:
    from speciosa.commands.server import setup_django

    setup_django()


def cmd_backup(args: argparse.Namespace) -> int:
    _setup()
    from speciosa.ops.backup import BackupError, backup

    started = time.perf_counter()
    try:
        manifest = backup(args.path)
    except BackupError as exc:
        raise UsageError(str(exc)) from None
    tables = manifest["tables"]
    summary = {"path": str(args.path), "vendor": manifest["vendor"], "tables": len(tables),
               "rows": sum(t["rows"] for t in tables.values()),
               "seconds": round(time.perf_counter() - started, 2)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"Backed up {summary['rows']} rows in {summary['tables']} tables ({summary['vendor']}) "
              f"to {args.path} in {summary['seconds']} s.")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    _setup()
    from speciosa.ops.backup import BackupError, restore

    started = time.perf_counter()
    try:
        result = restore(args.path)
    except BackupError as exc:
        raise UsageError(str(exc)) from None
    result["seconds"] = round(time.perf_counter() - started, 2)
    if args.json:
        print(json.dumps({"path": str(args.path), "verified": True, **result}))
    else:
        print(f"Restored {result['rows']} rows in {result['tables']} tables from {args.path}; "
              f"every table's count and checksum match the backup ({result['seconds']} s).")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    _setup()
    from speciosa.ops.health import checks, healthy

    result = checks()
    ok = healthy(result)
    if args.json:
        print(json.dumps({**result, "healthy": ok}))
    else:
        for key, value in result.items():
            print(f"{key:<11} {value}")
    return 0 if ok else 1


def cmd_worker(args: argparse.Namespace) -> int:
    _setup()
    from django.conf import settings

    if not settings.CELERY_BROKER_URL:
        raise UsageError("no task queue configured: set CELERY_BROKER_URL, e.g. "
                         "redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672// "
                         "(without it, tasks run in the web process and no worker is needed)")
    from speciosa.celery import app

    argv = ["worker", f"--loglevel={args.loglevel}"]
    if args.beat:
        argv.append("--beat")
    extra = [a for a in args.celery_args if a != "--"]
    app.worker_main(argv + extra)
    return 0
