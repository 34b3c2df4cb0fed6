"""django-oauth-toolkit's tables in one migration (``MIGRATION_MODULES`` in settings).

django-oauth-toolkit 3.4.1 ships 21 migrations whose SQLite table rebuilds took 20-40 s on a
busy test machine, for every new database (each test process, each ``speciosa migrate``). Its
models were new to Speciosa when this was written, so the tables are created at once from the
models as they are in the pinned version. Upgrading django-oauth-toolkit: run ``speciosa
manage -- makemigrations oauth2_provider`` (``tests/test_migrations.py`` fails until its
model changes have a migration here).
"""
