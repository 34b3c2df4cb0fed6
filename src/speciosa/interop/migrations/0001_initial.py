import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("clinic", "0002_audit_append_only"),
    ]

    operations = [
        migrations.CreateModel(
            name="ImportedResource",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("resource_type", models.CharField(max_length=40)),
                ("system", models.CharField(max_length=255)),
                ("value", models.CharField(max_length=255)),
                ("digest", models.CharField(max_length=64)),
                ("model", models.CharField(max_length=40)),
                ("object_id", models.BigIntegerField()),
                ("file_name", models.CharField(blank=True, max_length=255)),
                ("imported_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("patient", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="clinic.patient")),
            ],
            options={
                "indexes": [models.Index(fields=["model", "object_id"], name="interop_imp_model_4b1f0e_idx")],
                "constraints": [models.UniqueConstraint(fields=("resource_type", "system", "value"), name="imported_resource_unique_identifier")],
            },
        ),
    ]
