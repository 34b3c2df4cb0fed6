from django.apps import AppConfig
from django.db.backends.signals import connection_created


def _sqlite_pragmas(sender, connection, **kwargs):
    """Embedded database: write-ahead log and enforced foreign keys."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL;")
            cursor.execute("PRAGMA foreign_keys=ON;")
            cursor.execute("PRAGMA synchronous=NORMAL;")


class ClinicConfig(AppConfig):
    name = "speciosa.clinic"
    label = "clinic"
    verbose_name = "Clinic"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        connection_created.connect(_sqlite_pragmas, dispatch_uid="speciosa-sqlite-pragmas")
        from speciosa import tasks

        from . import writes

        # The write kernel's after-change hook is installed here, and only here: re-evaluate
        # the safety rules now (eager, no broker) or on a worker (speciosa.tasks).
        writes.install_after_change_hook(tasks.after_change)
