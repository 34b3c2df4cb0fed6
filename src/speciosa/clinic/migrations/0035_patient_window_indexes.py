# Issue 18: the doses, assessments and diary days of a sweep chunk are read by windows
# (patient, time); the single-column patient index beside each (patient, ...) index let the
# planner read a patient's whole year and filter the window out. Dropping it leaves the
# indexes that lead with the patient (any patient lookup still uses them). Only the index
# is dropped: the foreign key constraints stay as they are (no revalidation of the tables).

import django.db.models.deletion
from django.db import migrations, models

INDEXES = (
    ("clinic_assessment", "clinic_assessment_patient_id_fadeb20a"),
    ("clinic_diaryday", "clinic_diaryday_patient_id_1e160b23"),
    ("clinic_dose", "clinic_dose_patient_id_92a0fe52"),
)


class Migration(migrations.Migration):

    dependencies = [
        ('clinic', '0034_sweep_chunk_failure'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(f'DROP INDEX IF EXISTS "{index}"',
                                  reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("patient_id")')
                for table, index in INDEXES
            ],
            state_operations=[
                migrations.AlterField(
                    model_name='assessment',
                    name='patient',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='clinic.patient'),
                ),
                migrations.AlterField(
                    model_name='diaryday',
                    name='patient',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='diary_days', to='clinic.patient'),
                ),
                migrations.AlterField(
                    model_name='dose',
                    name='patient',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='clinic.patient'),
                ),
            ],
        ),
    ]
