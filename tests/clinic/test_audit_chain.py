"""Issue 11, item 6: the audit trail is tamper-evident (a hash chain checked by
``speciosa audit verify``), SQLite's ``INSERT OR REPLACE`` no longer rewrites an entry, and
on PostgreSQL the application's role of the deployment guide cannot update, delete,
truncate or disable the triggers of the audit table."""

from __future__ import annotations

import io
import json
import os
import re
import threading
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, connections, transaction

from speciosa import cli
from speciosa.clinic import auditchain, services, writes
from speciosa.clinic.models import AuditChainHead, AuditEntry

DEPLOYMENT = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def _lift_triggers():
    """Lift the append-only triggers for this test's transaction only (DDL is rolled back
    with the test on SQLite and on PostgreSQL): what an attacker with the owner's rights does."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name in ("audit_no_update", "audit_no_delete", "audit_no_replace"):
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign-key checks
            cursor.execute("ALTER TABLE clinic_auditentry DISABLE TRIGGER audit_no_update_delete")


def _verify() -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main(["audit", "verify"])
    return code, out.getvalue()


def _five_entries(clinic) -> list[AuditEntry]:
    for i in range(3):
        services.record_note(clinic.clinician_a, clinic.patient_a, f"note {i}")
    services.record_view(clinic.clinician_a, clinic.patient_a)
    writes.audit(None, writes.Action.EXPORT, model="test", before={"x": 1.0, "y": [1, 2.5]},
                 after={"big": 1e16, "small": 1e-7, "text": "é"})
    return list(AuditEntry.objects.order_by("seq"))


@pytest.mark.django_db
def test_each_entry_is_chained_to_the_one_before_and_verify_says_intact(clinic):
    entries = _five_entries(clinic)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == auditchain.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(entries, entries[1:], strict=False))
    assert len({e.hash for e in entries}) == 5 and all(len(e.hash) == 64 for e in entries)
    head = AuditChainHead.objects.get()
    assert (head.seq, head.hash) == (5, entries[-1].hash)
    code, out = _verify()
    assert code == 0 and out.startswith("Audit trail intact: 5 entries; head " + entries[-1].hash)


@pytest.mark.django_db
def test_a_bulk_append_is_chained_too(clinic):
    writes.audit(None, writes.Action.VIEW, model="first")
    writes.append_audit([writes.audit_entry(None, writes.Action.CREATE, model=f"m{i}") for i in range(7)])
    assert list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 9))
    assert auditchain.verify().ok


@pytest.mark.django_db
def test_an_entry_changed_behind_the_apps_back_is_reported_as_the_first_broken_one(clinic):
    entries = _five_entries(clinic)
    _lift_triggers()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE clinic_auditentry SET reason = 'nothing happened' WHERE id = %s", [entries[2].pk])
    code, out = _verify()
    assert code == 1
    assert f"broken at entry id {entries[2].pk} (position 3)" in out and "content does not match" in out
    result = auditchain.verify()
    assert (result.ok, result.broken_id, result.entries) == (False, entries[2].pk, 2)


@pytest.mark.django_db
def test_a_rewritten_hash_breaks_the_link_of_the_next_entry(clinic):
    entries = _five_entries(clinic)
    _lift_triggers()
    forged = auditchain.entry_hash(entries[0].hash, seq=2, uid=entries[1].uid, at=entries[1].at,
                                   user_id=None, action="view", model="x", object_id=None,
                                   patient_id=None, before=None, after=None, reason="")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE clinic_auditentry SET user_id = NULL, action = 'view', model = 'x', "
                       "object_id = NULL, patient_id = NULL, before = NULL, after = NULL, hash = %s "
                       "WHERE id = %s", [forged, entries[1].pk])
    result = auditchain.verify()
    assert (result.ok, result.broken_id) == (False, entries[2].pk)
    assert "link to the previous entry" in result.reason


@pytest.mark.django_db
def test_a_removed_entry_and_a_removed_last_entry_are_found(clinic):
    entries = _five_entries(clinic)
    _lift_triggers()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM clinic_auditentry WHERE id = %s", [entries[4].pk])
    result = auditchain.verify()
    assert not result.ok and result.broken_id is None and "head is at position 5" in result.reason
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM clinic_auditentry WHERE id = %s", [entries[1].pk])
    result = auditchain.verify()
    assert (result.ok, result.broken_id, result.broken_seq) == (False, entries[2].pk, 3)
    assert "position 2 is missing" in result.reason


@pytest.mark.django_db
def test_an_entry_inserted_around_the_app_is_found(clinic):
    _five_entries(clinic)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO clinic_auditentry (uid, at, action, model, reason, before, after, "
                       "prev_hash, hash) VALUES (%s, %s, 'view', 'x', '', NULL, NULL, '', '')",
                       ["0" * 32 if connection.vendor == "sqlite" else "00000000-0000-0000-0000-000000000000",
                        "2026-01-01 00:00:00"])
    result = auditchain.verify()
    assert not result.ok and "without a chain position" in result.reason
    code, out = _verify()
    assert code == 1 and "without a chain position" in out


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="SQLite only: INSERT OR REPLACE")
@pytest.mark.django_db
def test_sqlite_insert_or_replace_cannot_rewrite_an_entry(clinic):
    entries = _five_entries(clinic)
    target = entries[1]
    with connection.cursor() as cursor:
        names = {row[0] for row in cursor.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'clinic_auditentry'")}
    assert {"audit_no_update", "audit_no_delete", "audit_no_replace"} <= names
    for sql, args in [
        ("INSERT OR REPLACE INTO clinic_auditentry (id, uid, at, action, model, reason, prev_hash, hash) "
         "VALUES (%s, %s, '2026-01-01 00:00:00', 'view', 'forged', '', '', '')",
         [target.pk, "f" * 32]),
        ("REPLACE INTO clinic_auditentry (id, uid, at, action, model, reason, prev_hash, hash) "
         "VALUES (%s, %s, '2026-01-01 00:00:00', 'view', 'forged', '', '', '')",
         [999, target.uid.hex]),  # the same uid under a new id: REPLACE would delete the old row
        ("INSERT INTO clinic_auditentry (id, uid, at, action, model, reason, prev_hash, hash) "
         "VALUES (%s, %s, '2026-01-01 00:00:00', 'view', 'forged', '', '', '') "
         "ON CONFLICT(id) DO UPDATE SET reason = 'forged'", [target.pk, "e" * 32]),
        ("INSERT OR REPLACE INTO clinic_auditentry (uid, at, action, model, reason, seq, prev_hash, hash) "
         "VALUES (%s, '2026-01-01 00:00:00', 'view', 'forged', '', %s, '', '')", ["d" * 32, target.seq]),
    ]:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), \
                connection.cursor() as cursor:
            cursor.execute(sql, args)
    target.refresh_from_db()
    assert (target.model, target.reason) == ("Note", "") and AuditEntry.objects.count() == 5
    assert auditchain.verify().ok


@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="PostgreSQL only")
@pytest.mark.django_db
def test_postgresql_upsert_cannot_rewrite_an_entry(clinic):
    target = _five_entries(clinic)[1]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as c:
        c.execute("INSERT INTO clinic_auditentry (id, uid, at, action, model, reason, prev_hash, hash) "
                  "VALUES (%s, gen_random_uuid(), now(), 'view', 'forged', '', '', '') "
                  "ON CONFLICT (id) DO UPDATE SET reason = 'forged'", [target.pk])
    target.refresh_from_db()
    assert target.reason == "" and auditchain.verify().ok


def _app_role_sql() -> str:
    text = DEPLOYMENT.read_text()
    block = text.split("<!-- speciosa-app-role -->", 1)[1]
    return re.search(r"```sql\n(.*?)```", block, re.S).group(1)


@pytest.mark.skipif(not os.environ.get("DATABASE_URL"), reason="PostgreSQL only: database roles")
@pytest.mark.django_db
def test_the_app_role_of_the_deployment_guide_cannot_rewrite_the_trail(clinic):
    """The test database is owned by the migrating role (as in production); the block of
    docs/deployment.md makes the application's role (named per test process: roles are
    shared by the whole server; the test's transaction rolls it back)."""
    entries = _five_entries(clinic)
    role = f"speciosa_app_test_{os.getpid()}"
    with connection.cursor() as cursor:
        cursor.execute(_app_role_sql().replace("speciosa_app", role))
        cursor.execute(f"SET ROLE {role}")
    try:
        # what the app does still works as that role: a new entry at the head of the chain
        services.record_note(clinic.clinician_a, clinic.patient_a, "as the app role")
        writes.append_audit([writes.audit_entry(None, writes.Action.VIEW, model="bulk")])
        assert AuditEntry.objects.count() == len(entries) + 2
        for sql in [
            "UPDATE clinic_auditentry SET reason = 'x'",
            "DELETE FROM clinic_auditentry",
            "TRUNCATE clinic_auditentry CASCADE",
            "ALTER TABLE clinic_auditentry DISABLE TRIGGER audit_no_update_delete",
            "ALTER TABLE clinic_auditentry DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_no_update_delete ON clinic_auditentry",
            "SET session_replication_role = replica",
        ]:
            with pytest.raises(DatabaseError, match="permission denied|must be owner"), \
                    transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
    assert AuditEntry.objects.filter(reason="x").count() == 0
    assert auditchain.verify().ok


@pytest.mark.django_db(transaction=True)
def test_two_writers_at_once_never_fork_the_chain(clinic):
    """Two threads (two connections) append at the same time; the head is held per append."""
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(15):
                writes.audit(None, writes.Action.VIEW, model=f"w{n}-{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    before = AuditEntry.objects.exclude(model__startswith="w").count()
    result = auditchain.verify()
    assert result.ok, result
    assert result.entries == before + 30
    assert sorted(AuditEntry.objects.values_list("seq", flat=True)) == list(range(1, before + 31))


@pytest.mark.django_db
def test_the_migration_chains_entries_stored_before_the_chain(clinic):
    """Entries of an older version (no position, no hash) are chained in id order."""
    from django.db.migrations.loader import MigrationLoader

    _five_entries(clinic)
    _lift_triggers()
    with connection.cursor() as cursor:
        cursor.execute("UPDATE clinic_auditentry SET seq = NULL, prev_hash = '', hash = ''")
        cursor.execute("DELETE FROM clinic_auditchainhead")
    assert not auditchain.verify().ok
    apps = MigrationLoader(connection).project_state(("clinic", "0011_audit_hash_chain")).apps
    assert auditchain.backfill(apps.get_model("clinic", "AuditEntry"),
                               apps.get_model("clinic", "AuditChainHead")) == 5
    ids = list(AuditEntry.objects.order_by("seq").values_list("id", flat=True))
    assert ids == sorted(ids)
    # the head of migration 0011 has no HMAC until migration 0019 anchors it
    assert "HMAC" in auditchain.verify().reason
    auditchain.anchor(MigrationLoader(connection).project_state(
        ("clinic", "0019_audit_head_hmac")).apps.get_model("clinic", "AuditChainHead"))
    assert auditchain.verify().ok


@pytest.mark.django_db
def test_verify_prints_json_on_request(clinic):
    _five_entries(clinic)
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["audit", "verify", "--json"]) == 0
    data = json.loads(out.getvalue())
    assert data["ok"] is True and data["entries"] == 5 and data["broken_id"] is None


# An attacker who rewrites a stored value into something the application cannot read (a
# time that is no time, a uid that is no uid, a position that is text) must not make
# ``verify`` crash with a traceback instead of naming the entry. SQLite only: PostgreSQL's
# typed columns refuse such values.
@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="SQLite only: untyped columns")
@pytest.mark.django_db
@pytest.mark.parametrize("column, value", [("at", "garbage"), ("uid", "not-a-uid"),
                                           ("seq", "three"), ("after", "{bad json")])
def test_an_entry_rewritten_into_unreadable_values_is_reported_not_a_crash(clinic, column, value):
    entries = _five_entries(clinic)
    _lift_triggers()
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA ignore_check_constraints = ON")
        cursor.execute(f"UPDATE clinic_auditentry SET {column} = %s WHERE id = %s",
                       [value, entries[2].pk])
        cursor.execute("PRAGMA ignore_check_constraints = OFF")
    # a position that is text sorts after every number: the walk stops where it went missing
    # (JSON that does not parse reads back as its text: a changed entry)
    broken, why = {"seq": (entries[3], "position 3 is missing"),
                   "after": (entries[2], "does not match its hash")}.get(
                       column, (entries[2], "cannot be read"))
    result = auditchain.verify()
    assert (result.ok, result.broken_id, result.entries) == (False, broken.pk, 2)
    assert why in result.reason
    code, out = _verify()
    assert code == 1 and f"entry id {broken.pk}" in out and why in out


@pytest.mark.django_db
def test_a_head_whose_hash_alone_was_changed_is_reported_as_such(clinic):
    _five_entries(clinic)
    AuditChainHead.objects.filter(pk=auditchain.HEAD_ID).update(hash="f" * 64)
    result = auditchain.verify()
    assert not result.ok and result.entries == 5
    assert "hash of the chain head does not match the last entry" in result.reason
    assert "at position 5 but the last entry is at 5" not in result.reason


# --------------------------------------------------------------------------- the HMAC anchor


def _recompute_whole_chain():
    """What someone with database access but without the audit key can do: rewrite an
    entry, recompute every hash after it and the head, so the chain itself is consistent."""
    _lift_triggers()
    prev, seq = auditchain.GENESIS, 0
    for entry in AuditEntry.objects.order_by("seq"):
        seq += 1
        if seq == 2:
            entry.reason = "nothing to see"
        h = auditchain.entry_hash(prev, seq=seq, uid=entry.uid, at=entry.at,
                                  user_id=entry.user_id, action=entry.action, model=entry.model,
                                  object_id=entry.object_id, patient_id=entry.patient_id,
                                  before=entry.before, after=entry.after, reason=entry.reason)
        with connection.cursor() as cursor:
            cursor.execute("UPDATE clinic_auditentry SET reason = %s, prev_hash = %s, hash = %s "
                           "WHERE id = %s", [entry.reason, prev, h, entry.pk])
        prev = h
    AuditChainHead.objects.filter(pk=auditchain.HEAD_ID).update(seq=seq, hash=prev)
    return seq, prev


@pytest.mark.django_db
def test_a_chain_recomputed_without_the_key_fails_verification(clinic, settings):
    settings.AUDIT_HMAC_KEY = "kept-outside-the-database"
    _five_entries(clinic)
    assert auditchain.verify().ok
    head = AuditChainHead.objects.get(pk=auditchain.HEAD_ID)
    assert head.mac == auditchain.head_mac(head.seq, head.hash) and len(head.mac) == 64
    _recompute_whole_chain()
    result = auditchain.verify()
    assert not result.ok and result.entries == 5  # every link and hash is consistent...
    assert "HMAC does not match" in result.reason  # ...but the anchor is not
    code, out = _verify()
    assert code == 1 and "HMAC does not match" in out


@pytest.mark.django_db
def test_a_recomputed_chain_with_a_guessed_or_old_mac_fails_and_only_the_key_passes(clinic,
                                                                                     settings):
    settings.AUDIT_HMAC_KEY = "kept-outside-the-database"
    _five_entries(clinic)
    old_mac = AuditChainHead.objects.get(pk=auditchain.HEAD_ID).mac
    seq, head_hash = _recompute_whole_chain()
    AuditChainHead.objects.filter(pk=auditchain.HEAD_ID).update(mac=old_mac)
    assert not auditchain.verify().ok
    settings.AUDIT_HMAC_KEY = "a-guess"
    AuditChainHead.objects.filter(pk=auditchain.HEAD_ID).update(
        mac=auditchain.head_mac(seq, head_hash))
    settings.AUDIT_HMAC_KEY = "kept-outside-the-database"
    assert not auditchain.verify().ok
    # with the key (which the database does not hold) the same rewrite would pass: the key
    # is what the anchor rests on
    AuditChainHead.objects.filter(pk=auditchain.HEAD_ID).update(
        mac=auditchain.head_mac(seq, head_hash))
    assert auditchain.verify().ok


@pytest.mark.django_db
def test_every_append_moves_the_anchor_and_a_changed_key_is_reported(clinic, settings):
    settings.AUDIT_HMAC_KEY = "key-one"
    _five_entries(clinic)
    first = AuditChainHead.objects.get(pk=auditchain.HEAD_ID).mac
    services.record_note(clinic.clinician_a, clinic.patient_a, "one more")
    assert AuditChainHead.objects.get(pk=auditchain.HEAD_ID).mac != first
    assert auditchain.verify().ok
    settings.AUDIT_HMAC_KEY = "key-two"
    assert "SPECIOSA_AUDIT_HMAC_KEY changed" in auditchain.verify().reason
