"""The sweep's windowed tables have one index that leads with the patient, and no index on the
patient alone beside it (issue 18, migration 0035).

With both, PostgreSQL read a chunk's doses through the single-column index (smaller, and
perfectly correlated with a clinic generated patient by patient) and filtered the window
out: 832,000 of 911,000 dose rows read were thrown away for 1,000 patients, the diary days
and the checklists the same; the database server's CPU for loading halved without it
(docs/sweep.md, "Indexes"). Any lookup by patient alone uses the composite index.
"""

from __future__ import annotations

import pytest
from django.db import connection

WINDOWED = {
    "clinic_dose": ["patient_id", "taken_at"],
    "clinic_assessment": ["patient_id", "instrument", "at"],
    "clinic_diaryday": ["patient_id", "day"],
}


@pytest.mark.django_db
@pytest.mark.parametrize("table", sorted(WINDOWED))
def test_no_patient_only_index_beside_the_window_index(table):
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    indexes = [c["columns"] for c in constraints.values() if c["index"] or c["unique"]]
    assert WINDOWED[table] in indexes
    assert ["patient_id"] not in indexes, f"{table} has an index on patient_id alone again"
