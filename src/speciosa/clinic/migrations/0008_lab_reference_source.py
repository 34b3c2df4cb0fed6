"""Lab results say whose reference range they were read against.

Before this migration every stored range came from the lab catalogue (the entry services
wrote the catalogue's adult range for the patient's sex, in the canonical unit), so the
existing rows with a range are marked ``catalogue``.
"""

from django.db import migrations, models


def mark_catalogue(apps, schema_editor):
    LabResult = apps.get_model("clinic", "LabResult")
    LabResult.objects.filter(
        models.Q(reference_low__isnull=False) | models.Q(reference_high__isnull=False)
    ).update(reference_source="catalogue")


class Migration(migrations.Migration):

    dependencies = [
        ("clinic", "0007_alerts_wait_for_a_clinician"),
    ]

    operations = [
        migrations.AddField(
            model_name="labresult",
            name="reference_source",
            field=models.CharField(
                blank=True,
                choices=[("laboratory", "laboratory range"),
                         ("catalogue", "catalogue range (fallback)")],
                max_length=12,
            ),
        ),
        migrations.RunPython(mark_catalogue, migrations.RunPython.noop),
    ]
