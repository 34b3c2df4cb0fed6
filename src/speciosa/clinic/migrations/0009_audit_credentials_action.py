# The audit action "credentials" (issue #11, item 4).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0008_lab_reference_source'),
    ]

    operations = [
        migrations.AlterField(
            model_name='auditentry',
            name='action',
            field=models.CharField(choices=[('create', 'Create'), ('correct', 'Correct'), ('retract', 'Retract'), ('acknowledge', 'Acknowledge'), ('resolve', 'Resolve'), ('view', 'View'), ('export', 'Export'), ('login', 'Login'), ('login-failed', 'Login Failed'), ('lockout', 'Lockout'), ('second-factor', 'Second Factor'), ('logout-all', 'Logout All'), ('alert-raised', 'Alert Raised'), ('alert-updated', 'Alert Updated'), ('alert-stopped', 'Alert Stopped'), ('setting-change', 'Setting Change'), ('credentials', 'Credentials')], max_length=16),
        ),
    ]
