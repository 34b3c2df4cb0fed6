"""Fixtures for the operations tests: real ``speciosa`` processes on a database of their own.

Which database: the one the suite runs on. Under ``DATABASE_URL=postgres://...`` each test gets
a temporary PostgreSQL database on that server (``speciosa_ops_<pid>_<n>``, created and
dropped here; no other database is touched); otherwise a temporary SQLite file.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
_n = itertools.count(1)
COUNTED = {
    "Patient": "clinic_patient", "DiaryDay": "clinic_diaryday", "Dose": "clinic_dose",
    "Assessment": "clinic_assessment", "LabResult": "clinic_labresult", "Note": "clinic_note",
    "AuditEntry": "clinic_auditentry", "Submission": "clinic_submission", "Alert": "clinic_alert",
    "ImportedResource": "interop_importedresource",
}


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(SPECIOSA_SECRET_KEY="ops-tests-" + "x" * 50, PYTHONPATH=str(HERE),
               SPECIOSA_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass
class Database:
    """A database for child processes: ``env`` points ``speciosa`` at it."""

    vendor: str
    env: dict[str, str]
    name: str
    children: list = field(default_factory=list)

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """``speciosa ARGS`` against this database."""
        done = subprocess.run([str(BIN / "speciosa"), *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"speciosa {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def child(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """``python tests/ops/ops_child.py ARGS`` against this database."""
        done = subprocess.run([sys.executable, str(HERE / "ops_child.py"), *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"ops_child {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def counts(self) -> dict[str, int]:
        """Row counts read straight from the database (no Django, no child process)."""
        queries = {name: f"SELECT count(*) FROM {table}" for name, table in COUNTED.items()}
        for model in ("Dose", "LabResult", "Note"):
            queries[f"AuditEntry{model}"] = f"SELECT count(*) FROM clinic_auditentry WHERE model = '{model}'"
        if self.vendor == "sqlite":
            conn = sqlite3.connect(self.name, timeout=20)
        else:
            conn = psycopg.connect(self.env["DATABASE_URL"], autocommit=True)
        try:
            return {name: conn.execute(sql).fetchone()[0] for name, sql in queries.items()}
        finally:
            conn.close()


def _pg_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


def _psql(url: str, sql: str) -> None:
    admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    subprocess.run(["psql", admin, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True,
                   capture_output=True, text=True)


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory):
    """A migrated database, made once per test process, that new databases are copied from."""
    folder = tmp_path_factory.mktemp("ops-template")
    url = _pg_url()
    if url:
        name = f"speciosa_ops_{os.getpid()}_template"
        _psql(url, f"DROP DATABASE IF EXISTS {name}")
        _psql(url, f"CREATE DATABASE {name}")
        db = Database("postgresql", base_env(
            DATABASE_URL=urlunsplit(urlsplit(url)._replace(path=f"/{name}")),
            SPECIOSA_DATA_DIR=str(folder)), name)
    else:
        db = Database("sqlite", base_env(SPECIOSA_DATA_DIR=str(folder)), str(folder / "speciosa.sqlite3"))
    db.run("migrate")
    yield db
    if url:
        _psql(url, f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")


@pytest.fixture
def new_database(tmp_path, request):
    """``new_database(migrated=False)`` makes a database (dropped after the test): empty, or
    with every migration applied (a copy of a template migrated once per test process)."""
    made: list[Database] = []

    def make(migrated: bool = False) -> Database:
        n = next(_n)
        url = _pg_url()
        template = request.getfixturevalue("_migrated_template") if migrated else None
        if url:
            name = f"speciosa_ops_{os.getpid()}_{n}"
            _psql(url, f"DROP DATABASE IF EXISTS {name}")
            _psql(url, f"CREATE DATABASE {name}" + (f" TEMPLATE {template.name}" if template else ""))
            db_url = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
            db = Database("postgresql", base_env(DATABASE_URL=db_url,
                                                 SPECIOSA_DATA_DIR=str(tmp_path / f"data{n}")), name)
        else:
            folder = tmp_path / f"data{n}"
            if template:
                folder.mkdir()
                shutil.copyfile(template.name, folder / "speciosa.sqlite3")
            db = Database("sqlite", base_env(SPECIOSA_DATA_DIR=str(folder)),
                          str(folder / "speciosa.sqlite3"))
        made.append(db)
        return db

    yield make
    url = _pg_url()
    for db in made:
        for proc in db.children:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if url and db.vendor == "postgresql":
            _psql(url, f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
