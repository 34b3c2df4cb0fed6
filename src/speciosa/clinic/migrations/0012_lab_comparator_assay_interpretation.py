"""Lab results keep a comparator (``<5``), the prolactin assay's mIU/L per ng/mL factor and
the laboratory's own interpretation as received."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("clinic", "0011_audit_hash_chain"),
    ]

    operations = [
        migrations.AddField(
            model_name="labresult",
            name="comparator",
            field=models.CharField(
                blank=True,
                choices=[("<", "below (<)"), ("<=", "at or below (<=)"),
                         (">=", "at or above (>=)"), (">", "above (>)")],
                max_length=2,
            ),
        ),
        migrations.AddField(
            model_name="labresult",
            name="iu_factor",
            field=models.FloatField(blank=True, null=True,
                                    verbose_name="mIU/L per ng/mL (prolactin assay)"),
        ),
        migrations.AddField(
            model_name="labresult",
            name="reported_interpretation",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
