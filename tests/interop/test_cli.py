"""``speciosa export fhir`` and ``speciosa import fhir``."""

from __future__ import annotations

import json

import pytest

from speciosa.cli import main
from speciosa.clinic import models as cm

pytestmark = pytest.mark.django_db(transaction=False)


def test_export_fhir_writes_one_ndjson_file_per_type(demo_clinic, tmp_path, capsys, ndjson):
    assert main(["export", "fhir", "--purpose", "treatment", "--out", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    files = {p.name for p in tmp_path.iterdir()}
    assert files == {f"{t}.ndjson" for t in out["counts"]}
    assert len(ndjson(tmp_path)["Patient"]) == 6 == out["counts"]["Patient"]


def test_export_of_one_patient_by_record_number(demo_clinic, tmp_path, capsys, ndjson):
    patient = cm.Patient.objects.order_by("pk").first()
    assert main(["export", "fhir", "--purpose", "treatment", "--out", str(tmp_path),
                 "--patient", patient.identifier]) == 0
    data = ndjson(tmp_path)
    assert [p["id"] for p in data["Patient"]] == [str(patient.pk)]
    assert {o["subject"]["reference"] for o in data["Observation"]} == {f"Patient/{patient.pk}"}


def test_export_of_an_unknown_patient_exits_2(db, tmp_path, capsys):
    assert main(["export", "fhir", "--purpose", "treatment", "--out", str(tmp_path), "--patient", "NOPE"]) == 2
    assert "NOPE" in capsys.readouterr().err


def test_import_reports_problems_on_stderr_and_exits_2(clinic, tmp_path, capsys):
    (tmp_path / "Observation.ndjson").write_text('{"resourceType": "Observation"}\n{oops\n')
    assert main(["import", "fhir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "Observation.ndjson:1:" in err and "Observation.ndjson:2: not valid JSON" in err


def test_import_of_a_missing_path_exits_2(db, tmp_path, capsys):
    assert main(["import", "fhir", str(tmp_path / "missing")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_export_then_import_into_another_site(demo_clinic, tmp_path, capsys):
    assert main(["export", "fhir", "--purpose", "treatment", "--out", str(tmp_path)]) == 0
    assert main(["import", "fhir", str(tmp_path)]) == 0  # our own export: nothing new
    out = capsys.readouterr().out
    assert "nothing new" in out
    assert main(["import", "fhir", str(tmp_path), "--site", "Nowhere"]) == 2


def test_other_modules_can_add_an_export_format(capsys):
    import argparse

    from speciosa.commands.interop import export_subparsers, register

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    export_subparsers(sub).add_parser("research").set_defaults(func=lambda a: 0)
    register(sub)
    args = parser.parse_args(["export", "research"])
    assert args.func(args) == 0
    args = parser.parse_args(["export", "fhir", "--purpose", "treatment", "--out", "x"])
    assert args.func.__name__ == "cmd_export_fhir"


def test_an_export_is_audited_with_its_purpose_and_needs_one(demo_clinic, tmp_path, capsys):
    from speciosa.clinic.models import AuditEntry, Patient

    patient = Patient.objects.order_by("pk").first()
    assert main(["export", "fhir", "--purpose", "transfer of care", "--out", str(tmp_path),
                 "--patient", patient.identifier]) == 0
    entry = AuditEntry.objects.get(action="export", model="fhir-bulk")
    assert entry.patient == patient and entry.reason == "purpose of use: transfer of care"
    assert entry.after["counts"]["Patient"] == 1
    assert main(["export", "fhir", "--purpose", "  ", "--out", str(tmp_path / "b")]) == 2
    with pytest.raises(SystemExit):
        main(["export", "fhir", "--out", str(tmp_path / "c")])


def test_the_export_help_says_fhir_r4_4_0_1(capsys):
    """The help named 4.3.0/R4B, which is not the release Speciosa exports (issue 14)."""
    with pytest.raises(SystemExit):
        main(["export", "fhir", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "FHIR R4 (4.0.1)" in out
    assert "4.3.0" not in out and "R4B" not in out
