import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("clinic", "0003_alerts"),
    ]

    operations = [
        migrations.CreateModel(
            name="UrgentAlertNotice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("claimed_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("sent_at", models.DateTimeField(blank=True, null=True)),
                ("recipients", models.PositiveIntegerField(default=0)),
                ("alert", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                               to="clinic.alert")),
            ],
        ),
    ]
