"""``speciosa backup`` and ``speciosa restore`` round-trip the demo clinic: every table's
row count and checksum match, also for a backup taken while the app writes."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile

import pytest

from .conftest import HERE

CLINICAL = ("clinic_patient", "clinic_diaryday", "clinic_dose", "clinic_assessment",
            "clinic_labresult", "clinic_note", "clinic_alert", "clinic_auditentry",
            "clinic_substanceuse", "clinic_consent")


@pytest.fixture
def demo_db(new_database):
    db = new_database(migrated=True)
    db.child("demo")
    return db


def test_a_backup_restores_into_an_empty_database_with_every_table_identical(demo_db, new_database, tmp_path):
    backup = tmp_path / "clinic.backup"
    summary = json.loads(demo_db.run("backup", str(backup), "--json").stdout)
    with tarfile.open(backup) as tar:
        database = f"database.{'sqlite3' if demo_db.vendor == 'sqlite' else 'pgdump'}"
        assert sorted(tar.getnames()) == sorted(["manifest.json", database])
        manifest = json.loads(tar.extractfile("manifest.json").read())
    tables = manifest["tables"]
    assert summary["rows"] == sum(t["rows"] for t in tables.values())
    for table in CLINICAL:
        assert tables[table]["clinical"] and len(tables[table]["sha256"]) == 64
    source = demo_db.counts()
    assert source["Patient"] == 6 and source["Dose"] > 100 and source["Alert"] > 0
    assert tables["clinic_dose"]["rows"] == source["Dose"]

    target = new_database()
    restored = json.loads(target.run("restore", str(backup), "--json").stdout)
    assert restored["verified"] and restored["rows"] == summary["rows"]
    assert target.counts() == source
    assert json.loads(target.run("health", "--json").stdout)["migrations"] == "ok"
    # the restored audit trail is still append-only
    again = tmp_path / "again.backup"
    target.run("backup", str(again))
    with tarfile.open(again) as tar:
        assert json.loads(tar.extractfile("manifest.json").read())["tables"] == tables


def test_restore_refuses_a_database_that_is_not_empty(demo_db, tmp_path):
    backup = tmp_path / "clinic.backup"
    demo_db.run("backup", str(backup))
    done = demo_db.run("restore", str(backup), check=False)
    assert done.returncode == 2
    assert "not empty" in done.stderr and "empty database" in done.stderr


def test_restore_refuses_a_file_that_is_not_a_backup(new_database, tmp_path):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello")
    done = new_database().run("restore", str(bogus), check=False)
    assert done.returncode == 2 and "not a Speciosa backup" in done.stderr


def test_a_backup_taken_while_notes_are_written_restores_consistently(demo_db, new_database, tmp_path):
    writer = subprocess.Popen([sys.executable, str(HERE / "ops_child.py"), "--seconds", "4", "write-notes"],
                              env=demo_db.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    demo_db.children.append(writer)
    assert writer.stdout.readline().strip() == "WRITING"
    backup = tmp_path / "live.backup"
    demo_db.run("backup", str(backup))
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    target = new_database()
    restored = json.loads(target.run("restore", str(backup), "--json").stdout)
    assert restored["verified"]
    restored_counts, final = target.counts(), demo_db.counts()
    written = int(out.split()[-1])
    demo_notes = final["Note"] - written  # the demo's notes (loaded without audit entries)
    assert written > 0 and final["AuditEntryNote"] == written
    # a snapshot: every note in the backup came with its audit entry (one transaction each)
    assert restored_counts["AuditEntryNote"] == restored_counts["Note"] - demo_notes
    assert final["Note"] - written <= restored_counts["Note"] <= final["Note"]
