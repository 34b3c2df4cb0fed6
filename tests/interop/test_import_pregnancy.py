"""An imported hCG reads the prolactin samples' pregnancy states again (issue 13): the import
stores its rows with ``bulk_create``, which sends no signal, so the importer does it itself."""

from __future__ import annotations

import pytest

from speciosa.clinic import models as cmodels
from speciosa.interop.importer import import_fhir
from speciosa.interop.models import TrustedIdentifierSystem

from . import ehr

pytestmark = pytest.mark.django_db


def _hcg(value: float, *, high: float | None = 5.0, ident: str = "H-1",
         at: str = "2026-11-18T08:00:00+00:00") -> dict:
    res = {
        "resourceType": "Observation", "status": "final",
        "identifier": [{"system": ehr.HOSPITAL_LAB, "value": ident}],
        "category": [{"coding": [{"system": ehr.OBS_CATEGORY, "code": "laboratory"}]}],
        "code": {"coding": [{"system": ehr.LOINC, "code": "21198-7"}], "text": "Beta-hCG"},
        "effectiveDateTime": at,
        "valueQuantity": {"value": value, "unit": "mIU/mL", "system": ehr.UCUM,
                          "code": "m[IU]/mL"},
    }
    if high is not None:
        res["referenceRange"] = [{"high": {"value": high, "unit": "mIU/mL", "system": ehr.UCUM,
                                           "code": "m[IU]/mL"}}]
    return res


@pytest.mark.parametrize(("hcg", "state", "flag"), [
    (_hcg(5000.0), "hcg-positive", ""),           # above the laboratory's cut-off
    (_hcg(2.0), "", "high"),                      # below it: negative
    (_hcg(5000.0, high=None), "", "high"),        # no cut-off: neither (not guessed)
], ids=["positive", "negative", "no-cutoff"])
def test_an_imported_hcg_and_prolactin_in_one_file(clinic, tmp_path, hcg, state, flag):
    maya = clinic.patient_a
    TrustedIdentifierSystem.objects.create(site=clinic.site_a, system=ehr.HOSPITAL_MRN, note="t")
    # the prolactin comes first in the file: it is validated before the hCG is stored
    prl = ehr.prolactin({}, 300.0)
    path = ehr.write(tmp_path / "b.json", ehr.with_patient(ehr.patient(maya.identifier), prl, hcg))
    report = import_fhir(path)
    assert report.ok, report.problems
    row = cmodels.LabResult.objects.get(patient=maya, lab="prolactin")
    assert (row.sample_state, row.flag) == (state, flag)
