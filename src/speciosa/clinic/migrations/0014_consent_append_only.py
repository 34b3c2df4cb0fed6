"""Consents become append-only: each consent may supersede the one before it.

Existing consents are kept; per patient and kind they are linked in the order the research
export used to read them (``at``, then id), so the current consent (the one nothing
supersedes) is the one that was in force before this migration.
"""

import django.db.models.deletion
from django.db import migrations, models


def link_history(apps, schema_editor):
    Consent = apps.get_model("clinic", "Consent")
    previous = {}
    for consent in Consent.objects.order_by("patient_id", "kind", "at", "id"):
        key = (consent.patient_id, consent.kind)
        if key in previous:
            Consent.objects.filter(pk=consent.pk).update(supersedes_id=previous[key])
        previous[key] = consent.pk


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0013_site_help_numbers'),
    ]

    operations = [
        migrations.AddField(
            model_name='consent',
            name='supersedes',
            field=models.OneToOneField(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='superseded_by', to='clinic.consent'),
        ),
        migrations.RunPython(link_history, migrations.RunPython.noop),
    ]
