"""Benchmark: what the audit trail's hash chain costs, against a plain insert of the same
entries measured in the same run, and how long ``speciosa audit verify`` takes.

Usage::

    .venv/bin/python benchmarks/bench_audit_chain.py [--entries 2000] [--repeat 3]

A throw-away SQLite database in a temporary folder (or, with ``DATABASE_URL``, the database it
names: give it a throw-away one).

What is timed (best of ``--repeat``)
------------------------------------
- **plain insert**: ``--entries`` audit entries, one transaction each, inserted by the
  queryset's parent ``bulk_create`` of one row (no chain: the floor of storing an entry);
- **chained append**: the same number through :func:`speciosa.clinic.writes.audit` (holds
  the chain head, hashes, inserts, moves the head), one transaction each;
- **bulk**: the same number through :func:`speciosa.clinic.writes.append_audit` at once;
- **verify**: :func:`speciosa.clinic.auditchain.verify` over the chained entries (once).

It prints times per entry and the ratio chained / plain. It is not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def _setup() -> None:
    if "DATABASE_URL" not in os.environ:
        os.environ["SPECIOSA_DATA_DIR"] = tempfile.mkdtemp(prefix="speciosa-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "speciosa.settings")
    os.environ.setdefault("SPECIOSA_SECRET_KEY", "benchmark-only-" + "x" * 40)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import django

    django.setup()


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    _setup()
    from django.core.management import call_command
    from django.db import connection, models, transaction

    from speciosa.clinic import auditchain, writes
    from speciosa.clinic.models import AuditEntry

    call_command("migrate", verbosity=0)
    after = {"lab": "prolactin", "value": "12.5", "unit": "ng/mL", "note": "x" * 80}

    def plain() -> None:
        for i in range(args.entries):
            with transaction.atomic():
                entry = writes.audit_entry(None, writes.Action.VIEW, model=f"plain{i}", after=after)
                models.QuerySet.bulk_create(AuditEntry.objects.all(), [entry])

    def chained() -> None:
        for i in range(args.entries):
            writes.audit(None, writes.Action.VIEW, model=f"chain{i}", after=after)

    def bulk() -> None:
        writes.append_audit([writes.audit_entry(None, writes.Action.VIEW, model=f"bulk{i}", after=after)
                             for i in range(args.entries)])

    t_chain = best_of(chained, args.repeat)
    t_bulk = best_of(bulk, args.repeat)
    n_chained = AuditEntry.objects.count()
    t0 = time.perf_counter()
    assert auditchain.verify().ok
    t_verify = time.perf_counter() - t0
    t_plain = best_of(plain, args.repeat)  # last: its rows have no chain position
    per = 1e6 / args.entries
    print(f"database: {connection.vendor}, {args.entries} entries, best of {args.repeat}")
    print(f"plain insert     {t_plain * per:8.1f} us/entry")
    print(f"chained append   {t_chain * per:8.1f} us/entry  ({t_chain / t_plain:.2f}x plain)")
    print(f"bulk (chained)   {t_bulk * per:8.1f} us/entry")
    print(f"verify           {t_verify:8.3f} s for {n_chained} entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
