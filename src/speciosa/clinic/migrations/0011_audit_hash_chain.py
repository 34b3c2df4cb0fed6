"""The audit trail's hash chain (speciosa.clinic.auditchain), and the SQLite hole closed.

- Entries stored before get their positions and hashes in id order (the append-only
  triggers are lifted for that, inside this migration's transaction).
- SQLite rebuilds a table to add a unique column, which drops its triggers: they are made
  again here, with a third one: ``INSERT OR REPLACE`` (and any insert) of an id, uid or
  position that is already stored is refused (REPLACE deleted the old row without firing the
  delete trigger). A later migration that rebuilds the table must make them again
  (``SQLITE_TRIGGERS``); tests/clinic/test_audit_chain.py checks that they exist.
"""

import importlib

from django.db import migrations, models

from speciosa.clinic import auditchain

SQLITE_NO_REPLACE = """CREATE TRIGGER IF NOT EXISTS audit_no_replace BEFORE INSERT ON clinic_auditentry
       WHEN EXISTS (SELECT 1 FROM clinic_auditentry
                    WHERE id = NEW.id OR uid = NEW.uid OR seq = NEW.seq)
       BEGIN SELECT RAISE(ABORT, 'audit entries are append-only'); END;"""


def _triggers():
    return importlib.import_module("speciosa.clinic.migrations.0002_audit_append_only")


def sqlite_triggers():
    return [*_triggers().SQLITE, SQLITE_NO_REPLACE]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        for sql in _triggers().SQLITE_REVERSE:
            schema_editor.execute(sql)
    elif vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("ALTER TABLE clinic_auditentry DISABLE TRIGGER audit_no_update_delete")
    auditchain.backfill(apps.get_model("clinic", "AuditEntry"), apps.get_model("clinic", "AuditChainHead"))
    if vendor == "sqlite":
        for sql in sqlite_triggers():
            schema_editor.execute(sql)
    elif vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("ALTER TABLE clinic_auditentry ENABLE TRIGGER audit_no_update_delete")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS audit_no_replace")
        for sql in _triggers().SQLITE_REVERSE:
            schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0010_submission_bindings'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditChainHead',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('seq', models.BigIntegerField(default=0)),
                ('hash', models.CharField(max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name='auditentry',
            name='hash',
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='prev_hash',
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='seq',
            field=models.BigIntegerField(editable=False, null=True, unique=True),
        ),
        migrations.RunPython(forwards, backwards),
    ]
