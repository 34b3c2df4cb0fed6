"""Every consent answer rests on what it came from (after 0027 linked the existing ones)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("clinic", "0027_consent_documents"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name='consent',
            constraint=models.CheckConstraint(condition=models.Q(('given', False), ('signature__isnull', False), _connector='OR'), name='consent_given_rests_on_a_signature', violation_error_message='A given consent rests on a signature.'),
        ),
        migrations.AddConstraint(
            model_name='consent',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('kind', 'part2'), _negated=True), ('signature__isnull', False), _connector='OR'), name='consent_part2_rests_on_a_signature', violation_error_message='A Part 2 consent rests on a signature.'),
        ),
    ]
