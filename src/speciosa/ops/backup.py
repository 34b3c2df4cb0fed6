"""Consistent online backup and verified restore, for SQLite and PostgreSQL.

A backup is one tar file::

    manifest.json      format, vendor, Django migrations applied, and for every table its
                       row count and the SHA-256 of its canonical row dump
    database.sqlite3   SQLite: a page-by-page copy made with SQLite's online backup API
    database.pgdump    PostgreSQL: ``pg_dump --format=custom``

Consistency while the app runs: SQLite's backup API copies a single snapshot (it restarts
when another connection writes, and WAL readers never block writers); the manifest is
computed from the copy. On PostgreSQL one REPEATABLE READ transaction exports its snapshot,
``pg_dump --snapshot`` dumps exactly that snapshot, and the manifest is computed inside the
same transaction, so the dump and its checksums describe the same moment.

Restore goes only into an empty database (no tables), then recomputes every table's count
and checksum and compares them with the manifest.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "speciosa-backup/1"
CLINICAL_APPS = ("clinic", "interop", "education")
SNAPSHOT_ALIAS = "speciosa_backup_snapshot"


class BackupError(Exception):
    """A problem the operator can fix; the message says what to do."""


@dataclass
class TableSum:
    table: str
    rows: int
    sha256: str
    clinical: bool


# --------------------------------------------------------------------------- checksums

def _canon(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return str(value)


def _models():
    from django.apps import apps

    seen = set()
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.proxy or not meta.managed or meta.db_table in seen:
            continue
        seen.add(meta.db_table)
        yield model


def table_sums(alias: str = "default") -> list[TableSum]:
    """Count and SHA-256 of every table's rows, read through Django in primary-key order.

    Each row is the JSON array of its column values (dates in UTC ISO 8601, decimals
    normalised, JSON fields with sorted keys), one line per row.
    """
    from django.db import connections

    present = set(connections[alias].introspection.table_names())
    out = []
    for model in sorted(_models(), key=lambda m: m._meta.db_table):
        meta = model._meta
        if meta.db_table not in present:  # an app whose migrations are not applied here
            continue
        columns = [f.attname for f in meta.concrete_fields]
        digest = hashlib.sha256()
        n = 0
        rows = model._base_manager.using(alias).order_by("pk").values_list(*columns)
        for row in rows.iterator(chunk_size=2000):
            digest.update(json.dumps(row, default=_canon, sort_keys=True, separators=(",", ":"))
                          .encode())
            digest.update(b"\n")
            n += 1
        out.append(TableSum(meta.db_table, n, digest.hexdigest(), meta.app_label in CLINICAL_APPS))
    return out


def _applied_migrations(alias: str) -> list[str]:
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connections[alias])
    return sorted(f"{a}.{n}" for a, n in recorder.applied_migrations())


def _manifest(alias: str, vendor: str) -> dict[str, Any]:
    from django.utils import timezone

    sums = table_sums(alias)
    return {
        "format": FORMAT, "vendor": vendor, "created_at": timezone.now().isoformat(),
        "migrations": _applied_migrations(alias),
        "tables": {s.table: {"rows": s.rows, "sha256": s.sha256, "clinical": s.clinical} for s in sums},
    }


@contextmanager
def _sqlite_alias(path: Path) -> Iterator[str]:
    """A temporary Django database alias for the SQLite file at ``path``."""
    from django.db import connections

    settings = dict(connections.databases["default"])
    settings.update(NAME=str(path), OPTIONS={"timeout": 20})
    connections.databases[SNAPSHOT_ALIAS] = settings
    try:
        yield SNAPSHOT_ALIAS
    finally:
        if SNAPSHOT_ALIAS in connections:
            connections[SNAPSHOT_ALIAS].close()
            del connections[SNAPSHOT_ALIAS]
        connections.databases.pop(SNAPSHOT_ALIAS, None)


# --------------------------------------------------------------------------- backup

def _write_tar(path: Path, manifest: dict[str, Any], db_file: Path, arcname: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with tarfile.open(tmp, "w:gz" if arcname.endswith("sqlite3") else "w") as tar:
        data = json.dumps(manifest, indent=2, sort_keys=True).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size, info.mtime, info.mode = len(data), int(dt.datetime.now().timestamp()), 0o600
        tar.addfile(info, io.BytesIO(data))
        tar.add(db_file, arcname=arcname)
    os.chmod(tmp, 0o600)  # a backup holds patient data
    os.replace(tmp, path)  # never a half-written backup under the final name


def backup(path: str | Path) -> dict[str, Any]:
    """Back the configured database up to ``path``; returns the manifest."""
    from django.db import connection

    path = Path(path)
    if path.exists() and path.is_dir():
        raise BackupError(f"{path} is a folder; give a file name such as {path / 'speciosa.backup'}")
    with tempfile.TemporaryDirectory(prefix="speciosa-backup-") as tmp:
        if connection.vendor == "sqlite":
            copy = Path(tmp) / "database.sqlite3"
            source = sqlite3.connect(str(connection.settings_dict["NAME"]), timeout=20)
            target = sqlite3.connect(str(copy))
            try:
                source.backup(target, pages=1024)
            finally:
                target.close()
                source.close()
            with _sqlite_alias(copy) as alias:
                manifest = _manifest(alias, "sqlite")
            _write_tar(path, manifest, copy, "database.sqlite3")
        elif connection.vendor == "postgresql":
            dump = Path(tmp) / "database.pgdump"
            manifest = _pg_backup(dump)
            _write_tar(path, manifest, dump, "database.pgdump")
        else:
            raise BackupError(f"backup supports SQLite and PostgreSQL, not {connection.vendor}")
    return manifest


def _pg_env(settings_dict: dict[str, Any], name: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"),
                     ("PASSWORD", "PGPASSWORD")):
        if settings_dict.get(key):
            env[var] = str(settings_dict[key])
    env["PGDATABASE"] = name or settings_dict["NAME"]
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} is not installed: install the PostgreSQL client tools "
                          "(Debian: apt-get install postgresql-client) in the server's major version")
    return found


def _pg_backup(dump: Path) -> dict[str, Any]:
    from django.db import connection, transaction

    pg_dump = _tool("pg_dump")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
        done = subprocess.run(
            [pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
             "--file", str(dump)],
            env=_pg_env(connection.settings_dict), capture_output=True, text=True)
        if done.returncode != 0:
            raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
        return _manifest("default", "postgresql")


# --------------------------------------------------------------------------- restore

def read_manifest(path: str | Path) -> dict[str, Any]:
    try:
        with tarfile.open(path) as tar:
            member = tar.extractfile("manifest.json")
            manifest = json.loads(member.read()) if member else None
    except (OSError, KeyError, tarfile.TarError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path} is not a Speciosa backup ({exc})") from None
    if not manifest or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a Speciosa backup (format {FORMAT} expected)")
    return manifest


def existing_tables() -> list[str]:
    from django.db import connection

    return sorted(connection.introspection.table_names())


def restore(path: str | Path) -> dict[str, Any]:
    """Restore ``path`` into the configured (empty) database and verify it.

    Returns ``{"tables": n, "rows": n, "mismatches": [...]}``; raises :class:`BackupError`
    when the target is not empty, the backup is of the other database kind, or a table's
    count or checksum differs from the manifest.
    """
    from django.db import connection

    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    manifest = read_manifest(path)
    vendor = connection.vendor
    if manifest["vendor"] != vendor:
        raise BackupError(f"this backup is of a {manifest['vendor']} database; the configured "
                          f"database is {vendor} (set DATABASE_URL accordingly)")
    tables = existing_tables()
    if tables:
        raise BackupError(
            f"the target database is not empty ({len(tables)} tables, e.g. {tables[0]}); restore "
            "only into a new, empty database: create one (PostgreSQL: createdb NAME) or point "
            "SPECIOSA_DATA_DIR at an empty folder, and run restore again")
    with tempfile.TemporaryDirectory(prefix="speciosa-restore-") as tmp:
        with tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
        if vendor == "sqlite":
            _sqlite_restore(Path(tmp) / "database.sqlite3")
        else:
            _pg_restore(Path(tmp) / "database.pgdump")
    connection.close()
    return verify(manifest)


def _sqlite_restore(copy: Path) -> None:
    from django.db import connection

    target_path = str(connection.settings_dict["NAME"])
    connection.close()
    source = sqlite3.connect(str(copy))
    target = sqlite3.connect(target_path, timeout=20)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _pg_restore(dump: Path) -> None:
    from django.db import connection

    pg_restore = _tool("pg_restore")
    settings_dict = connection.settings_dict
    connection.close()
    done = subprocess.run(
        [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
         "--dbname", settings_dict["NAME"], str(dump)],
        env=_pg_env(settings_dict), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed (nothing was restored): {done.stderr.strip()}")


def verify(manifest: dict[str, Any], alias: str = "default") -> dict[str, Any]:
    """Compare the database's tables with ``manifest``; raise on any difference."""
    now = {s.table: s for s in table_sums(alias)}
    mismatches = []
    for table, expected in sorted(manifest["tables"].items()):
        got = now.get(table)
        if got is None:
            mismatches.append(f"{table}: missing")
        elif (got.rows, got.sha256) != (expected["rows"], expected["sha256"]):
            mismatches.append(f"{table}: {got.rows} rows (backup: {expected['rows']}), "
                              f"checksum {'differs' if got.sha256 != expected['sha256'] else 'same'}")
    if mismatches:
        raise BackupError("the restored database differs from the backup:\n  " + "\n  ".join(mismatches))
    return {"tables": len(manifest["tables"]),
            "rows": sum(t["rows"] for t in manifest["tables"].values()), "mismatches": []}
