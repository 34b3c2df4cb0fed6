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

        # The rules of integrity for the rows Django writes without our save(): a care team's
        # members, and a login becoming a superuser.
        from django.contrib.auth import get_user_model
        from django.db.models.signals import m2m_changed, pre_save

        from . import integrity
        from .models import CareTeam

        m2m_changed.connect(integrity.members_changed, sender=CareTeam.members.through,
                            dispatch_uid="speciosa-care-team-members")
        pre_save.connect(integrity.user_saved, sender=get_user_model(),
                         dispatch_uid="speciosa-superuser-is-admin")

        # An hCG recorded or corrected, by any path: the prolactin samples' pregnancy states
        # are read again (speciosa.clinic.pregnancy).
        from django.db.models.signals import post_save

        from . import pregnancy
        from .models import LabResult

        post_save.connect(pregnancy.hcg_saved, sender=LabResult,
                          dispatch_uid="speciosa-hcg-restates-prolactin")
