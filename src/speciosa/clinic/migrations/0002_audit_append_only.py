"""Make the audit trail append-only in the database itself (SQLite and PostgreSQL)."""

from django.db import migrations

SQLITE_NO_UPDATE = """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON clinic_auditentry
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;"""
SQLITE_NO_DELETE = """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON clinic_auditentry
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;"""
SQLITE = [SQLITE_NO_UPDATE, SQLITE_NO_DELETE]
SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS audit_no_update;", "DROP TRIGGER IF EXISTS audit_no_delete;"]

POSTGRES = [
    """CREATE OR REPLACE FUNCTION clinic_audit_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'audit entries are append-only'; END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON clinic_auditentry
       FOR EACH ROW EXECUTE FUNCTION clinic_audit_append_only();""",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER IF EXISTS audit_no_update_delete ON clinic_auditentry;",
    "DROP FUNCTION IF EXISTS clinic_audit_append_only();",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE, "postgresql": POSTGRES}.get(vendor, []):
        schema_editor.execute(sql)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for sql in {"sqlite": SQLITE_REVERSE, "postgresql": POSTGRES_REVERSE}.get(vendor, []):
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
