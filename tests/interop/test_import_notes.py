"""Clinical notes through FHIR (issue 14): exported as US Core's clinical note
(DocumentReference, category clinical-note, LOINC 11506-3 Progress note) and imported back
with who wrote them and when, the time they are about and their text."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from django.utils import timezone

from speciosa.clinic import models as cmodels
from speciosa.clinic import services
from speciosa.interop import codes as icodes
from speciosa.interop.export import Exporter, validate
from speciosa.interop.importer import import_fhir

from . import ehr
from .r4 import parse_r4

pytestmark = pytest.mark.django_db

WRITTEN = (timezone.now() - dt.timedelta(days=3)).replace(microsecond=0)
ABOUT = WRITTEN - dt.timedelta(hours=2)


def _note(text="Discussed the taper; patient agrees to weekly visits.", **changes):
    res = {
        "resourceType": "DocumentReference",
        "identifier": [{"system": "https://ehr.hospital.example/fhir/sid/note", "value": "N-1"}],
        "status": "current", "docStatus": "final",
        "type": {"coding": [{"system": ehr.LOINC, "code": "11506-3",
                             "display": "Progress note"}]},
        "category": [{"coding": [{"system": icodes.DOC_CATEGORY, "code": "clinical-note"}]}],
        "date": WRITTEN.isoformat(),
        "author": [{"reference": "Practitioner/p1", "display": "Dr Rosa Lee"}],
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                    "data": base64.b64encode(text.encode()).decode()}}],
        "context": {"period": {"start": ABOUT.isoformat()}},
    }
    res.update(changes)
    return res


def _documents(patient):
    out = list(Exporter(cmodels.Patient.objects.filter(pk=patient.pk)).resources(
        ["DocumentReference"]))
    for r in out:
        parse_r4(r)
        validate(r)
    return out


def test_a_note_is_exported_as_a_us_core_clinical_note(clinic):
    services.record_note(clinic.clinician_a, clinic.patient_a, "Discussed taper plan.")
    [doc] = _documents(clinic.patient_a)
    assert doc["category"] == [{"coding": [{
        "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
        "code": "clinical-note", "display": "Clinical Note"}]}]
    assert doc["type"]["coding"][0] == {"system": "http://loinc.org", "code": "11506-3",
                                        "display": "Progress note"}
    assert doc["author"][0]["display"] == "Ada Okafor"


def test_an_ehrs_note_is_imported_with_its_author_and_times_and_exported_again(maya, tmp_path):
    report = ehr.send(tmp_path, maya, _note())
    assert report.ok, report.problems
    assert report.created == {"Note": 1} and report.warnings == []
    note = cmodels.Note.objects.get()
    assert (note.text, note.at, note.source) == (
        "Discussed the taper; patient agrees to weekly visits.", ABOUT, "import")
    [doc] = _documents(maya)
    assert doc["date"] == WRITTEN.isoformat()  # when the author wrote it, not when imported
    assert doc["content"][0]["attachment"]["creation"] == WRITTEN.isoformat()
    assert doc["context"]["period"] == {"start": ABOUT.isoformat()}
    assert doc["author"] == [{"display": "Dr Rosa Lee"}]
    assert doc["identifier"][1] == {"use": "secondary", **_note()["identifier"][0]}
    assert base64.b64decode(doc["content"][0]["attachment"]["data"]).decode() == note.text
    # the same note again changes nothing
    again = ehr.send(tmp_path, maya, _note(), name="n2.json")
    assert again.ok and again.unchanged == 1 and cmodels.Note.objects.count() == 1


def test_a_note_the_patient_wrote_stays_the_patients(maya, tmp_path):
    ref = ehr.urn()
    b = ehr.bundle(ehr.patient(maya.identifier), _note(author=[{"reference": ref}],
                                                       subject={"reference": ref}))
    b["entry"][0]["fullUrl"] = ref
    assert import_fhir(ehr.write(tmp_path / "p.json", b)).ok
    [doc] = _documents(maya)
    assert doc["author"] == [doc["subject"]]


def test_what_a_note_cannot_hold_is_named_and_a_pdf_only_note_is_counted(maya, tmp_path):
    pdf = {"attachment": {"contentType": "application/pdf", "data": "JVBERi0="}}
    mixed = _note()
    mixed["content"].append(pdf)
    mixed["context"]["encounter"] = [{"reference": "Encounter/9"}]
    report = ehr.send(tmp_path, maya, mixed,
                   _note(identifier=[{"system": "urn:x", "value": "N-2"}], content=[pdf]))
    assert report.ok, report.problems
    assert sorted(w.message for w in report.warnings) == [
        "not kept: DocumentReference.content[1] (contentType 'application/pdf': Speciosa "
        "keeps notes as plain text)",
        "not kept: DocumentReference.context.encounter",
    ]
    assert report.files[0].skipped["DocumentReference (no plain-text content: not imported)"] == 1
    assert cmodels.Note.objects.count() == 1


@pytest.mark.parametrize(("changes", "why"), [
    ({"docStatus": "preliminary"}, "docStatus 'preliminary'"),
    ({"status": "superseded"}, "status 'superseded'"),
    ({"content": [{"attachment": {"contentType": "text/plain", "data": "%%%"}}]}, "not base64"),
])
def test_a_draft_or_replaced_or_unreadable_note_is_refused(maya, tmp_path, changes, why):
    [problem] = ehr.send(tmp_path, maya, _note(**changes)).problems
    assert why in problem.message
    assert not cmodels.Note.objects.exists()


def test_entered_in_error_withdraws_the_imported_note(maya, tmp_path):
    assert ehr.send(tmp_path, maya, _note()).ok
    report = ehr.send(tmp_path, maya, _note(status="entered-in-error"), name="w.json")
    assert report.ok, report.problems
    assert cmodels.Note.objects.get().retracted
    assert _documents(maya) == []
