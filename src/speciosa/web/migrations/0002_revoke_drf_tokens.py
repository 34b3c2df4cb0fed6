"""Revoke the API tokens of Django REST framework's ``authtoken`` app (issue #11, item 4).

Those keys were stored in clear and never expired. They cannot be hashed afterwards (a hash
of a key the admin could read is no protection), so every one is revoked and the table is
dropped: programs log in again at ``POST /api/v1/auth/token/`` and get a hashed, expiring
token (django-rest-knox; docs/security.md). There is no way back.
"""

from django.db import migrations

TABLE = "authtoken_token"


def revoke_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if TABLE not in connection.introspection.table_names(cursor):
            return
    schema_editor.execute(f"DELETE FROM {TABLE}")
    schema_editor.execute(f"DROP TABLE {TABLE}")


class Migration(migrations.Migration):

    dependencies = [
        ("web", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(revoke_drf_tokens, migrations.RunPython.noop),
    ]
