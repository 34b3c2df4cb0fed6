"""The shipped default plan templates (issue 16), offered at every site (``site`` empty):
the daily diary, PHQ-9 and GAD-7 every 14 days, ASEX every 30 days (monthly), AUDIT-C every
90 days (three months); the taper template adds SOWS daily. The lines are
:data:`speciosa.schedules.defaults.DEFAULTS`, copied here so that this migration means the
same whatever that module becomes (a test keeps the two equal)."""

from django.db import migrations

STANDARD = [
    {"instrument": "diary", "every_days": 1, "for_days": None},
    {"instrument": "phq9", "every_days": 14, "for_days": None},
    {"instrument": "gad7", "every_days": 14, "for_days": None},
    {"instrument": "asex", "every_days": 30, "for_days": None},
    {"instrument": "audit-c", "every_days": 90, "for_days": None},
]
TAPER = [STANDARD[0], {"instrument": "sows", "every_days": 1, "for_days": None}, *STANDARD[1:]]

DEFAULTS = [
    ("Supervised recovery", "Daily diary; PHQ-9 and GAD-7 every two weeks; ASEX monthly; "
                            "AUDIT-C every three months.", STANDARD),
    ("Supervised recovery during a taper", "As supervised recovery, with SOWS every day of "
                                           "the taper (set the end date when the taper ends).",
     TAPER),
]


def add(apps, schema_editor):
    PlanTemplate = apps.get_model("schedules", "PlanTemplate")
    for name, description, items in DEFAULTS:
        if not PlanTemplate.objects.filter(site__isnull=True, name=name).exists():
            PlanTemplate.objects.create(site=None, name=name, description=description, items=items)


def remove(apps, schema_editor):
    PlanTemplate = apps.get_model("schedules", "PlanTemplate")
    PlanTemplate.objects.filter(site__isnull=True, name__in=[d[0] for d in DEFAULTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("schedules", "0001_initial")]
    operations = [migrations.RunPython(add, remove)]
