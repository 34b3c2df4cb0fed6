"""Build FHIR R4 (4.0.1) resources from the clinical record.

The hot path builds plain ``dict`` resources straight from ``values()`` rows (no model
instances, no pydantic): that is what makes a bulk export of a large clinic fast. Every
resource type built here is parsed with fhirclient's R4 models and validated against the
``fhir.resources.R4B`` models in the tests (``tests/interop``) and, for a sample, in the
benchmark; :func:`validate` does the latter on demand.

Only current versions are exported (``Model.objects.current()``); a corrected record's
Provenance names the version it replaces and the reason.

Resource ids (stable within an installation):

==========================  ==========================================
``Patient/<pk>``            patient
``Practitioner/<pk>``       clinician login (user)
``CareTeam/<pk>``           care team
``Questionnaire/<id>``      instrument definition (e.g. ``phq9``)
``QuestionnaireResponse/a<pk>``  assessment
``Observation/lab<pk>``     lab result
``Observation/score<pk>``   instrument total (derived from the response)
``Observation/sub<pk>``     substance use (social history)
``MedicationStatement/dose<pk>``, ``/med<pk>``  kratom dose, medication
``MedicationRequest/rx<pk>``  a medication this clinic prescribes (the same as ``med<pk>``)
``MedicationStatement/ep<pk>``  treatment episode (buprenorphine, methadone, naltrexone)
``DiagnosticReport/uds<pk>``, ``Specimen/uds<pk>``  urine drug test panel, its specimen
``Observation/uvcr<pk>`` ...  the panel's specimen validity (``uvcr``, ``uvph``, ``uvsg``, ``uvtemp``)
``DocumentReference/note<pk>``  clinical note
``Consent/<pk>``, ``Flag/<pk>``  consent, safety alert
``Provenance/<kind><pk>``   who entered a record, when, by which route
==========================  ==========================================

A corrected record keeps the id of its first version (``<pk>`` above is that row's).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils import translation

from speciosa.clinic import models as cm
from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs

from . import codes as c
from . import treatment as itreatment
from .models import ImportedResource

Resource = dict[str, Any]

#: Resource types in bulk-export order (one NDJSON file each).
RESOURCE_TYPES = (
    "Patient", "Practitioner", "CareTeam", "Questionnaire", "QuestionnaireResponse",
    "Observation", "MedicationStatement", "MedicationRequest", "DiagnosticReport", "Specimen",
    "DocumentReference", "Condition", "Flag", "Consent", "Provenance",
)

#: ``Observation`` id prefixes and the rows behind them, etc.: used to resolve ``[type]/[id]``.
ID_PREFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    "Observation": (("lab", "labs"), ("score", "assessments"), ("sub", "substances"),
                    ("uvcr", "panels"), ("uvph", "panels"), ("uvsg", "panels"),
                    ("uvtemp", "panels")),
    "QuestionnaireResponse": (("a", "assessments"),),
    "MedicationStatement": (("dose", "doses"), ("med", "medications"), ("ep", "episodes")),
    "MedicationRequest": (("rx", "medications"),),
    "DiagnosticReport": (("uds", "panels"),),
    "Specimen": (("uds", "panels"),),
    "DocumentReference": (("note", "notes"),),
    "Provenance": (("lab", "labs"), ("a", "assessments"), ("dose", "doses"),
                   ("sub", "substances"), ("med", "medications"), ("note", "notes"),
                   ("ep", "episodes"), ("uds", "panels")),
}

_CAT_LAB = [{"coding": [{"system": c.OBS_CATEGORY, "code": "laboratory", "display": "Laboratory"}]}]
_CAT_SOCIAL = [{"coding": [{"system": c.OBS_CATEGORY, "code": "social-history",
                         "display": "Social History"}]}]
_CAT_SURVEY = [{"coding": [{"system": c.OBS_CATEGORY, "code": "survey", "display": "Survey"}]}]
_MS_PATIENT = {"coding": [{"system": c.MS_CATEGORY, "code": "patientspecified",
                           "display": "Patient Specified"}]}
_MS_COMMUNITY = {"coding": [{"system": c.MS_CATEGORY, "code": "community", "display": "Community"}]}
_META = {"security": list(c.PART2_SECURITY)}
_KRATOM = {"system": c.CS_SUBSTANCE, "code": c.KRATOM_CODE, "display": c.KRATOM_DISPLAY}
_AGENT_AUTHOR = {"coding": [{"system": c.PROVENANCE_AGENT, "code": "author", "display": "Author"}]}
_AGENT_PERFORMER = {"coding": [{"system": c.PROVENANCE_AGENT, "code": "performer",
                                "display": "Performer"}]}
_AGENT_ASSEMBLER = {"coding": [{"system": c.PROVENANCE_AGENT, "code": "assembler",
                                "display": "Assembler"}]}
_ACT_CREATE = {"coding": [{"system": c.DATA_OPERATION, "code": "CREATE", "display": "create"}]}
_ACT_UPDATE = {"coding": [{"system": c.DATA_OPERATION, "code": "UPDATE", "display": "revise"}]}
_IMPORTED = {"display": "Imported from another system"}


def _iso(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _num(value: Decimal | float | int) -> float | int:
    """A JSON number for a FHIR decimal: integral values as int, others as float."""
    if isinstance(value, Decimal):
        value = value.normalize()
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _ucum(value: float | int, unit: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": c.UCUM, "code": unit}


class Exporter:
    """Builds the resources of a set of patients.

    Parameters
    ----------
    patients : QuerySet of Patient, optional
        The patients in scope (already restricted by :mod:`speciosa.clinic.access` when it
        serves a user); ``None`` exports every patient.
    history : bool
        Render superseded and retracted rows too (for vread and ``_history``, with ``pk``).
    notes : bool
        Export clinical notes (``DocumentReference``); the API leaves them out for a patient's
        own login, as the web does (notes are the care team's).

    Versions: a corrected record keeps its **logical id** (``lab<pk of the first version>``)
    and its identifier; ``meta.versionId`` counts the versions (1 for the first) and
    ``meta.lastUpdated`` is when the current version was entered. Resources without a
    version history (Patient, Flag, Consent, CareTeam, Practitioner, Questionnaire) carry a
    ``versionId`` derived from their content (it changes whenever they do) and, where the
    record keeps one, the time of the last change.
    """

    def __init__(self, patients: QuerySet | None = None, *, history: bool = False,
                 notes: bool = True) -> None:
        self.patients_qs = patients if patients is not None else cm.Patient.objects.all()
        self.scoped = patients is not None
        self.history = history
        self._parents: dict[type, dict[int, int]] = {}
        self._first_rows: dict[type, dict[int, tuple[dt.datetime, int | None, str]]] = {}
        self.include_notes = notes
        self._patient_refs: dict[int, dict[str, Any]] | None = None
        self._mrn_systems: dict[int, str] | None = None
        self._user_refs: dict[int, dict[str, Any]] | None = None
        self.referenced_users: set[int] = set()
        self._original: dict[str, dict[int, dict[str, str]]] = {}
        self._panel_readings: dict[int, tuple[int, str, Any]] | None = None

    # ------------------------------------------------------------------ lookups
    def _in_scope(self, qs: QuerySet) -> QuerySet:
        return qs.filter(patient__in=self.patients_qs) if self.scoped else qs

    def patient_refs(self) -> dict[int, dict[str, Any]]:
        """Patient pk -> ``Reference`` (with the MRN identifier, so a file stands alone)."""
        if self._patient_refs is None:
            rows = self.patients_qs.values_list("pk", "identifier", "site_id")
            systems = self.mrn_systems()
            self._patient_refs = {
                pk: {"reference": f"Patient/{pk}",
                     "identifier": {"system": systems[site], "value": ident}}
                for pk, ident, site in rows}
        return self._patient_refs

    def mrn_systems(self) -> dict[int, str]:
        """Site id -> the site's MRN identifier system (unique, stable)."""
        if self._mrn_systems is None:
            from .models import mrn_systems

            self._mrn_systems = mrn_systems()
        return self._mrn_systems

    def user_refs(self) -> dict[int, dict[str, Any]]:
        """User pk -> Reference: a patient login points to its Patient, others to Practitioner."""
        if self._user_refs is None:
            patient_users = dict(cm.Patient.objects.exclude(user=None).values_list("user_id", "pk"))
            refs: dict[int, dict[str, Any]] = {}
            for pk, first, last in get_user_model().objects.values_list(
                    "pk", "first_name", "last_name"):
                if pk in patient_users:
                    refs[pk] = {"reference": f"Patient/{patient_users[pk]}"}
                else:
                    refs[pk] = {"reference": f"Practitioner/{pk}",
                                "display": f"{first} {last}".strip() or f"Staff member {pk}"}
            self._user_refs = refs
        return self._user_refs

    def _user(self, user_id: int | None) -> dict[str, Any] | None:
        if user_id is None:
            return None
        ref = self.user_refs().get(user_id)
        if ref and ref["reference"].startswith("Practitioner/"):
            self.referenced_users.add(user_id)
        return ref

    def original_identifiers(self, model: str) -> dict[int, dict[str, str]]:
        """object_id -> the identifier an imported row had in its source system."""
        return {oid: sent["identifier"] for oid, sent in self.imported(model).items()}

    def imported(self, model: str) -> dict[int, dict[str, Any]]:
        """object_id -> what the sender said of an imported row that the row does not hold
        (:class:`~speciosa.interop.models.ImportedResource`): ``identifier``, ``status``,
        ``recorded_at``, ``reported_by``, ``author``, ``codings``."""
        if model not in self._original:
            qs = ImportedResource.objects.filter(model=model)
            if self.scoped:
                qs = qs.filter(patient__in=self.patients_qs)
            self._original[model] = {
                oid: {"identifier": {"use": "secondary", "system": s, "value": v},
                      "status": status, "recorded_at": recorded, "reported_by": by,
                      "author": author, "codings": codings or []}
                for oid, s, v, status, recorded, by, author, codings in qs.values_list(
                    "object_id", "system", "value", "source_status", "recorded_at",
                    "reported_by", "author", "codings").order_by("version")}
        return self._original[model]

    # ------------------------------------------------------------------ versions
    def _rows(self, model) -> QuerySet:
        """The rows exported: current versions (every version in history mode)."""
        return self._in_scope(model.objects.all() if self.history else model.objects.current())

    def parents(self, model) -> dict[int, int]:
        """pk -> the pk it replaces, for every correction in scope."""
        if model not in self._parents:
            self._parents[model] = dict(self._in_scope(model.objects.filter(
                replaces__isnull=False)).values_list("pk", "replaces_id"))
        return self._parents[model]

    def logical(self, model, pk: int) -> tuple[int, int]:
        """``(pk of the first version, version number)`` of row ``pk``."""
        parents = self.parents(model)
        root, n = pk, 1
        while root in parents:
            root, n = parents[root], n + 1
        return root, n

    def chain(self, model, root: int) -> list[int]:
        """The rows of the record whose first version is ``root``, oldest first; empty when
        ``root`` is not a first version in scope."""
        if not self._in_scope(model.objects.filter(pk=root, replaces__isnull=True)).exists():
            return []
        children = {old: new for new, old in self.parents(model).items()}
        rows = [root]
        while rows[-1] in children:
            rows.append(children[rows[-1]])
        return rows

    def _firsts(self, model) -> dict[int, tuple[dt.datetime, int | None, str]]:
        """First version pk -> (entered_at, entered_by_id, source), for corrected records."""
        if model not in self._first_rows:
            roots = {self.logical(model, pk)[0] for pk in self.parents(model)}
            self._first_rows[model] = {
                pk: (at, by, src) for pk, at, by, src in model.objects.filter(pk__in=roots)
                .values_list("pk", "entered_at", "entered_by_id", "source")}
        return self._first_rows[model]

    def _versioned(self, model, row: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Put the logical pk into ``row["pk"]`` and the first version's authorship into
        ``row["first_*"]``; returns the row's own pk and its meta."""
        own = row["pk"]
        row["pk"], version = self.logical(model, own)
        row["version"] = version
        if version > 1:
            first = self._firsts(model)[row["pk"]]
        else:
            first = (row["entered_at"], row["entered_by_id"], row["source"])
        row["first_entered_at"], row["first_entered_by_id"], row["first_source"] = first
        return own, record_meta(version, row["entered_at"])

    @staticmethod
    def _as_first(row: dict[str, Any]) -> dict[str, Any]:
        """``row`` with the authorship of its first version (who reported it, by which route,
        when): a correction does not turn a patient's report into a clinician's."""
        return dict(row, entered_at=row["first_entered_at"],
                    entered_by_id=row["first_entered_by_id"], source=row["first_source"])

    def _provenance(self, kind: str, pk: int, targets: list[str], patient_ref: dict[str, Any],
                    row: dict[str, Any], original: dict[str, str] | None,
                    sent: dict[str, Any] | None = None) -> Resource:
        """Who entered a record, when and by which route. An imported record names the
        sender's author (the patient, or a clinician by name) and the time the sender
        recorded it, with the importer as ``assembler``."""
        first_source = row.get("first_source", row["source"])
        who = self._user(row.get("first_entered_by_id", row["entered_by_id"]))
        agent: dict[str, Any] = {"type": _AGENT_AUTHOR, "who": who or _IMPORTED}
        if first_source == cm.Source.IMPORT:
            agent["type"] = _AGENT_ASSEMBLER
        version = row.get("version", 1)
        prov: Resource = {
            "resourceType": "Provenance", "id": f"{kind}{pk}",
            "meta": record_meta(version, row["entered_at"]),
            "target": [{"reference": f"{t}/_history/{version}"} for t in targets],
            # first recorded (occurred) and this version (recorded)
            "occurredDateTime": row.get("first_entered_at", row["entered_at"]).isoformat(),
            "recorded": row["entered_at"].isoformat(),
            "activity": _ACT_UPDATE if row["replaces_id"] else _ACT_CREATE,
            "agent": [agent],
        }
        entities = []
        if row["replaces_id"]:
            entities.append({"role": "revision", "what": {
                "reference": f"{targets[0]}/_history/{version - 1}"}})
            if row["change_reason"]:
                prov["reason"] = [{"text": row["change_reason"]}]
        if original:
            entities.append({"role": "source", "what": {"identifier": {
                "system": original["system"], "value": original["value"]}}})
        if entities:
            prov["entity"] = entities
        if first_source == cm.Source.IMPORT and sent:
            by = sent.get("reported_by")
            author = patient_ref if by == "patient" else sent.get("author")
            if author:
                prov["agent"].insert(0, {"type": _AGENT_AUTHOR, "who": author})
            if sent.get("recorded_at"):
                prov["occurredDateTime"] = sent["recorded_at"].isoformat()
        if first_source == cm.Source.PATIENT or (
                first_source == cm.Source.IMPORT and sent and sent.get("reported_by") == "patient"):
            prov["agent"].append({"type": {"coding": [{"system": c.PROVENANCE_AGENT,
                                                       "code": "informant", "display": "Informant"}]},
                                  "who": patient_ref})
        if row["replaces_id"]:  # who made this version (the correction)
            prov["agent"].append({"type": _AGENT_PERFORMER,
                                  "who": self._user(row["entered_by_id"]) or _IMPORTED})
        return prov

    # ------------------------------------------------------------------ resources
    def patients(self, pk: int | None = None) -> Iterator[Resource]:
        qs = self.patients_qs if pk is None else self.patients_qs.filter(pk=pk)
        for row in qs.values("pk", "identifier", "given_name", "family_name", "birth_date", "sex",
                             "pregnant", "breastfeeding", "care_team_id", "site_id",
                             "in_care_since", "created_at").order_by("pk"):
            ext = [{"url": c.EXT_CARE_TEAM, "valueReference": {"reference": f"CareTeam/{row['care_team_id']}"}},
                   {"url": c.EXT_IN_CARE_SINCE, "valueDate": row["in_care_since"].isoformat()}]
            if row["pregnant"]:
                ext.append({"url": c.EXT_PREGNANT, "valueBoolean": True})
            if row["breastfeeding"]:
                ext.append({"url": c.EXT_BREASTFEEDING, "valueBoolean": True})
            yield with_content_meta({
                "resourceType": "Patient", "id": str(row["pk"]), "meta": _META, "extension": ext,
                "identifier": [{"use": "usual", "type": {"coding": [{"system": c.V2_0203, "code": "MR",
                                                                      "display": "Medical record number"}]},
                                "system": self.mrn_systems()[row["site_id"]], "value": row["identifier"]}],
                "active": True,
                "name": [{"family": row["family_name"], "given": [row["given_name"]]}],
                "gender": row["sex"],
                "birthDate": row["birth_date"].isoformat(),
            }, row["created_at"])

    def care_teams(self, pk: int | None = None) -> Iterator[Resource]:
        qs = cm.CareTeam.objects.all()
        if self.scoped:
            qs = qs.filter(pk__in=self.patients_qs.values("care_team_id"))
        if pk is not None:
            qs = qs.filter(pk=pk)
        members: dict[int, list[int]] = {}
        for team_id, user_id in cm.CareTeam.members.through.objects.filter(
                careteam__in=qs).values_list("careteam_id", "user_id").order_by("user_id"):
            members.setdefault(team_id, []).append(user_id)
        for team_id, name, site in qs.values_list("pk", "name", "site__name").order_by("pk"):
            team: Resource = {"resourceType": "CareTeam", "id": str(team_id),
                              "identifier": [{"system": c.sid("care-team"), "value": str(team_id)}],
                              "status": "active", "name": f"{name} ({site})"}
            parts = [{"member": self._user(u)} for u in members.get(team_id, ())]
            if parts:
                team["participant"] = parts
            yield with_content_meta(team)

    def practitioners(self, pk: int | None = None, *, ids: Iterable[int] | None = None) -> Iterator[Resource]:
        """Practitioners for ``ids`` (default: every clinician referenced so far)."""
        wanted = {pk} if pk is not None else set(ids if ids is not None else self.referenced_users)
        patient_users = set(cm.Patient.objects.exclude(user=None).values_list("user_id", flat=True))
        users = get_user_model().objects.filter(pk__in=wanted - patient_users).order_by("pk")
        for u in users.values("pk", "first_name", "last_name"):
            # the installation's staff id, never the login name (half of a credential)
            prac: Resource = {"resourceType": "Practitioner", "id": str(u["pk"]),
                              "identifier": [{"system": c.sid("user"), "value": str(u["pk"])}],
                              "active": True}
            name: dict[str, Any] = {}
            if u["last_name"]:
                name["family"] = u["last_name"]
            if u["first_name"]:
                name["given"] = [u["first_name"]]
            name["text"] = f"{u['first_name']} {u['last_name']}".strip() or f"Staff member {u['pk']}"
            prac["name"] = [name]
            yield with_content_meta(prac)

    def questionnaires(self, ident: str | None = None) -> Iterator[Resource]:
        for inst in kinstruments.all_instruments():
            if ident is None or inst.id == ident:
                yield with_content_meta(questionnaire(inst))

    def labs(self, pk: int | None = None, want: frozenset[str] = frozenset(RESOURCE_TYPES)) -> Iterator[Resource]:
        qs = self._rows(cm.LabResult)
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        original = self.imported("LabResult")
        catalogue = {lab.code: lab for lab in klabs.all_labs()}
        for row in qs.values("pk", "patient_id", "lab", "loinc", "collected_at", "value", "unit",
                             "result", "method", "reference_low", "reference_high",
                             "reference_source", "comparator", "iu_factor",
                             "reported_interpretation", "flag", "canonical_unit", "confirmed_unusual",
                             "entered_by_id", "entered_at", "source", "replaces_id",
                             "change_reason", "panel_id", "cutoff").order_by("pk").iterator(2000):
            own, meta = self._versioned(cm.LabResult, row)
            pk_ = row["pk"]
            subject = refs[row["patient_id"]]
            sent = original.get(own)
            orig = sent["identifier"] if sent else None
            if "Observation" in want:
                obs = lab_observation(row, subject, catalogue.get(row["lab"]), orig)
                obs["meta"] = meta
                if row["panel_id"] is not None:
                    root, detail, reading = self._panel_of(row["panel_id"])
                    flags = {a.lab: a.flag for a in reading.analytes} if reading else {}
                    obs = itreatment.analyte_parts(obs, row, catalogue.get(row["lab"]), root,
                                                   detail, flags.get(row["lab"]))
                first = self._as_first(row)  # who reported it: the patient, or the clinician
                who = self._user(first["entered_by_id"])
                if first["source"] == cm.Source.PATIENT:
                    obs["performer"] = [subject]
                elif who:
                    obs["performer"] = [who]
                yield as_sent(obs, sent, subject)
            if "Provenance" in want:
                yield self._provenance("lab", pk_, [f"Observation/lab{pk_}"], subject, row, orig, sent)

    def assessments(self, pk: int | None = None,
                    want: frozenset[str] = frozenset(RESOURCE_TYPES)) -> Iterator[Resource]:
        qs = self._rows(cm.Assessment)
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        original = self.imported("Assessment")
        instruments = {i.id: i for i in kinstruments.all_instruments()}
        for row in qs.values("pk", "patient_id", "instrument", "instrument_version", "at", "items",
                             "total", "band", "complete", "flags", "note", "entered_by_id", "entered_at",
                             "source", "replaces_id", "change_reason").order_by("pk").iterator(2000):
            own, meta = self._versioned(cm.Assessment, row)
            pk_ = row["pk"]
            subject = refs[row["patient_id"]]
            sent = original.get(own)
            orig = sent["identifier"] if sent else None
            inst = instruments.get(row["instrument"])
            first = self._as_first(row)
            author = self._user(first["entered_by_id"])
            # a total recorded without items (an imported total-only Observation) is only
            # its total: there is no response to send
            total_only = not row["items"] and row["total"] is not None
            if "QuestionnaireResponse" in want and not total_only:
                qr = questionnaire_response(first, subject, inst, author, orig)
                qr["meta"] = meta
                yield as_sent(qr, sent, subject)
            if "Observation" in want and row["total"] is not None:
                score = score_observation(row, subject, inst)
                score["meta"] = meta
                if total_only:
                    del score["derivedFrom"]
                    score["identifier"] = _identifiers("assessment", pk_, orig)
                    score = as_sent(score, sent, subject)
                elif sent and sent["status"] == "amended":  # as its response says
                    score["status"] = "amended"
                yield score
            if "Provenance" in want:
                targets = [] if total_only else [f"QuestionnaireResponse/a{pk_}"]
                if row["total"] is not None:
                    targets.append(f"Observation/score{pk_}")
                yield self._provenance("a", pk_, targets, subject, row, orig, sent)

    def doses(self, pk: int | None = None, want: frozenset[str] = frozenset(RESOURCE_TYPES)) -> Iterator[Resource]:
        qs = self._rows(cm.Dose)
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        original = self.imported("Dose")
        for row in qs.values("pk", "patient_id", "taken_at", "amount", "unit", "product",
                             "mitragynine_percent", "grams_per_capsule", "mitragynine_mg",
                             "conversion_note", "entered_by_id", "entered_at", "source",
                             "replaces_id", "change_reason").order_by("pk").iterator(2000):
            own, meta = self._versioned(cm.Dose, row)
            pk_ = row["pk"]
            subject = refs[row["patient_id"]]
            sent = original.get(own)
            orig = sent["identifier"] if sent else None
            if "MedicationStatement" in want:
                first = self._as_first(row)
                ms = dose_statement(first, subject, self._user(first["entered_by_id"]), orig)
                ms["meta"] = meta
                yield as_sent(ms, sent, subject)
            if "Provenance" in want:
                yield self._provenance("dose", pk_, [f"MedicationStatement/dose{pk_}"], subject, row, orig, sent)

    def substances(self, pk: int | None = None, want: frozenset[str] = frozenset(RESOURCE_TYPES)) -> Iterator[Resource]:
        from speciosa.clinic.services import SUBSTANCES

        qs = self._rows(cm.SubstanceUse)
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        original = self.imported("SubstanceUse")
        for row in qs.values("pk", "patient_id", "at", "name", "detail", "entered_by_id", "entered_at",
                             "source", "replaces_id", "change_reason").order_by("pk").iterator(2000):
            own, meta = self._versioned(cm.SubstanceUse, row)
            pk_ = row["pk"]
            subject = refs[row["patient_id"]]
            sent = original.get(own)
            orig = sent["identifier"] if sent else None
            first = self._as_first(row)
            if "Observation" in want:
                label = str(SUBSTANCES.get(row["name"], row["name"]))
                obs: Resource = {
                    "resourceType": "Observation", "id": f"sub{pk_}", "meta": meta,
                    "identifier": _identifiers("substance", pk_, orig),
                    "status": "amended" if row["replaces_id"] else "final",
                    "category": _CAT_SOCIAL,
                    "code": {"coding": [{"system": c.CS_SUBSTANCE_USE, "code": row["name"],
                                         "display": f"{label}: used"}],
                             "text": f"{label}: used"},
                    "subject": subject,
                    "effectiveDateTime": row["at"].isoformat(),
                    "issued": row["entered_at"].isoformat(),
                    "valueBoolean": True,
                }
                who = self._user(first["entered_by_id"])
                if first["source"] == cm.Source.PATIENT:
                    obs["performer"] = [subject]  # patient-reported
                elif who:
                    obs["performer"] = [who]
                if row["detail"]:
                    obs["note"] = [{"text": row["detail"]}]
                yield as_sent(obs, sent, subject)
            if "Provenance" in want:
                yield self._provenance("sub", pk_, [f"Observation/sub{pk_}"], subject, row, orig, sent)

    def notes(self, pk: int | None = None,
              want: frozenset[str] = frozenset(RESOURCE_TYPES)) -> Iterator[Resource]:
        """Clinical notes as ``DocumentReference`` (plain text, base64), for readers that may
        see them (:attr:`include_notes`)."""
        if not self.include_notes:
            return
        qs = self._rows(cm.Note)
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        original = self.imported("Note")
        for row in qs.values("pk", "patient_id", "at", "text", "entered_by_id", "entered_at",
                             "source", "replaces_id", "change_reason").order_by("pk").iterator(2000):
            own, meta = self._versioned(cm.Note, row)
            pk_ = row["pk"]
            subject = refs[row["patient_id"]]
            sent = original.get(own)
            orig = sent["identifier"] if sent else None
            if "DocumentReference" in want:
                doc = note_document(row, subject,
                                    self._user(self._as_first(row)["entered_by_id"]), meta, orig)
                yield as_sent(doc, sent, subject)
            if "Provenance" in want:
                yield self._provenance("note", pk_, [f"DocumentReference/note{pk_}"], subject, row,
                                       orig, sent)

    def medications(self, pk: int | None = None,
                    want: frozenset[str] = frozenset(RESOURCE_TYPES)) -> Iterator[Resource]:
        """The medication list as ``MedicationStatement`` (every medication) and, for this
        clinic's prescriptions (``prescriber=clinic``), also as ``MedicationRequest`` (intent
        ``order``, the same identifier: an import takes one medication of the two)."""
        qs = self._rows(cm.Medication)
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        original = self.imported("Medication")
        for row in qs.values(*MEDICATION_COLUMNS).order_by("pk").iterator(2000):
            own, meta = self._versioned(cm.Medication, row)
            pk_ = row["pk"]
            subject = refs[row["patient_id"]]
            sent = original.get(own)
            orig = sent["identifier"] if sent else None
            confirmed = self._user(row["confirmed_by_id"])
            if "MedicationStatement" in want:
                ms = medication_statement(row, subject, orig, self._user(row["first_entered_by_id"]),
                                          confirmed)
                ms["meta"] = meta
                yield as_sent(ms, sent, subject)
            if "MedicationRequest" in want and row["prescriber"] == cm.Prescriber.CLINIC:
                mr = medication_request(row, subject, orig, self._user(row["first_entered_by_id"]),
                                        confirmed)
                mr["meta"] = meta
                yield as_sent(mr, sent, subject)
            if "Provenance" in want:
                targets = [f"MedicationStatement/med{pk_}"]
                if row["prescriber"] == cm.Prescriber.CLINIC:
                    targets.append(f"MedicationRequest/rx{pk_}")
                yield self._provenance("med", pk_, targets, subject, row, orig, sent)

    def episodes(self, pk: int | None = None,
                 want: frozenset[str] = frozenset(RESOURCE_TYPES)) -> Iterator[Resource]:
        """Treatment episodes as ``MedicationStatement`` (:mod:`speciosa.interop.treatment`)."""
        qs = self._rows(cm.TreatmentEpisode)
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        original = self.imported("TreatmentEpisode")
        decisions = self._decision_names(qs)
        for row in qs.values(*itreatment.EPISODE_COLUMNS).order_by("pk").iterator(2000):
            own, meta = self._versioned(cm.TreatmentEpisode, row)
            pk_ = row["pk"]
            subject = refs[row["patient_id"]]
            sent = original.get(own)
            orig = sent["identifier"] if sent else None
            if "MedicationStatement" in want:
                follows = (self.logical(cm.TreatmentEpisode, row["follows_id"])[0]
                           if row["follows_id"] else None)
                why = row["change_reason"]
                if follows is not None and row["replaces_id"]:  # the change's, not a correction's
                    why = cm.TreatmentEpisode.objects.values_list(
                        "change_reason", flat=True).get(pk=row["pk"])
                ms = itreatment.episode_statement(
                    row, subject, orig, self._user(row["first_entered_by_id"]), follows=follows,
                    change_reason=why if follows is not None else "",
                    decision=decisions.get(row["decision_id"]))
                ms["meta"] = meta
                yield as_sent(ms, sent, subject)
            if "Provenance" in want:
                yield self._provenance("ep", pk_, [f"MedicationStatement/ep{pk_}"], subject, row,
                                       orig, sent)

    @staticmethod
    def _decision_names(qs: QuerySet) -> dict[int, str]:
        from speciosa.education.models import Decision

        ids = {d for d in qs.values_list("decision_id", flat=True) if d}
        return {d.pk: f"Shared decision of {d.decided_at:%Y-%m-%d}: {d.choice_label}"
                for d in Decision.objects.filter(pk__in=ids)}

    def _panel_of(self, panel_id: int) -> tuple[int, str, Any]:
        """A panel row's logical id, its laboratory method and its reading against what was
        expected (``None`` for a past or withdrawn version). Every panel in scope is read at
        the first call, from the patients' medications, episodes and dose times read once
        (:func:`speciosa.clinic.urine.expected_from`): a handful of queries for any number
        of panels."""
        if self._panel_readings is None:
            self._panel_readings = self._read_panels()
        found = self._panel_readings.get(panel_id)
        if found is None:  # outside the scope read (not expected): read it alone
            panel = cm.UrinePanel.objects.select_related("patient").get(pk=panel_id)
            from speciosa.clinic import urine

            reading = urine.read(panel)[0] if not (panel.superseded or panel.retracted) else None
            found = (self.logical(cm.UrinePanel, panel_id)[0], panel.method_detail, reading)
        return found

    def _read_panels(self) -> dict[int, tuple[int, str, Any]]:
        from speciosa.clinic import integrity, urine
        from speciosa.knowledge import drug_panels

        rows = list(self._in_scope(cm.UrinePanel.objects.all()).values_list(
            "pk", "patient_id", "collected_at", "method_detail", "specimen_problems",
            "superseded", "retracted"))
        current = [r for r in rows if not r[5] and not r[6]]
        patients = {r[1] for r in current}
        results: dict[int, dict[str, str]] = {}
        for panel_id, lab, result in (cm.LabResult.objects.current()
                                      .filter(panel_id__in=[r[0] for r in current])
                                      .order_by("pk").values_list("panel_id", "lab", "result")):
            results.setdefault(panel_id, {})[lab] = result
        meds: dict[int, list[Any]] = {}
        for m in cm.Medication.objects.current().filter(patient_id__in=patients):
            meds.setdefault(m.patient_id, []).append(m)
        episodes: dict[int, list[Any]] = {}
        for e in cm.TreatmentEpisode.objects.current().filter(patient_id__in=patients):
            episodes.setdefault(e.patient_id, []).append(e)
        doses: dict[int, list[dt.datetime]] = {}
        for patient_id, at in cm.Dose.objects.current().filter(
                patient_id__in=patients).values_list("patient_id", "taken_at"):
            doses.setdefault(patient_id, []).append(at)
        zones = {pk: integrity.zone_named(name) or dt.UTC for pk, name in cm.Patient.objects
                 .filter(pk__in=patients).values_list("pk", "site__time_zone")}
        out: dict[int, tuple[int, str, Any]] = {}
        for pk, patient_id, at, detail, problems, superseded, retracted in rows:
            reading = None
            if not superseded and not retracted:
                expected = urine.expected_from(at, meds.get(patient_id, ()),
                                               episodes.get(patient_id, ()),
                                               doses.get(patient_id, ()), tz=zones[patient_id])
                reading = drug_panels.read_panel(results.get(pk, {}), expected,
                                                 specimen=problems)
            out[pk] = (self.logical(cm.UrinePanel, pk)[0], detail, reading)
        return out

    def panels(self, pk: int | None = None,
               want: frozenset[str] = frozenset(RESOURCE_TYPES)) -> Iterator[Resource]:
        """Urine drug test panels: ``DiagnosticReport`` with its ``Specimen`` and specimen
        validity ``Observation``s (the analytes are lab results, :meth:`labs`)."""
        qs = self._rows(cm.UrinePanel)
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        original = self.imported("UrinePanel")
        analytes: dict[int, list[int]] = {}
        rows_of = self._rows(cm.LabResult).filter(panel__in=qs.values("pk"))
        for panel_id, lab_pk in rows_of.values_list("panel_id", "pk").order_by("pk"):
            analytes.setdefault(panel_id, []).append(self.logical(cm.LabResult, lab_pk)[0])
        for row in qs.values(*itreatment.PANEL_COLUMNS).order_by("pk").iterator(2000):
            own, meta = self._versioned(cm.UrinePanel, row)
            pk_ = row["pk"]
            subject = refs[row["patient_id"]]
            sent = original.get(own)
            orig = sent["identifier"] if sent else None
            validity = itreatment.validity_observations(row, subject)
            if "DiagnosticReport" in want:
                # read against what is expected: the current version only
                reading = self._panel_of(own)[2]
                first = self._as_first(row)
                results = [f"lab{p}" for p in analytes.get(own, ())] + [v["id"] for v in validity]
                report = itreatment.panel_report(row, subject, orig, results, reading,
                                                 self._user(first["entered_by_id"]))
                report["meta"] = meta
                yield report
            if "Specimen" in want:
                spec = itreatment.panel_specimen(row, subject, orig)
                spec["meta"] = meta
                yield spec
            if "Observation" in want:
                for obs in validity:
                    obs["meta"] = meta
                    yield obs
            if "Provenance" in want:
                yield self._provenance("uds", pk_, [f"DiagnosticReport/uds{pk_}",
                                                    f"Specimen/uds{pk_}"], subject, row, orig,
                                       sent)

    def consents(self, pk: int | None = None) -> Iterator[Resource]:
        """Each consent answer as ``Consent``: ``active`` while it is the current answer and in
        force; ``inactive`` once replaced, revoked (``provision.type`` deny, ``dateTime`` the
        revocation) or past its expiry; ``rejected`` for a refusal. A signed answer names its
        document version and signed copy (``sourceAttachment``); a 42 CFR Part 2 consent has
        scope ``patient-privacy``, the recipient as ``provision.actor`` (role IRCP), the
        purpose as ``provision.purpose`` and the expiry as ``provision.period.end``."""
        from speciosa.clinic import integrity

        qs = self._in_scope(cm.Consent.objects.all())
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        with translation.override("en"):  # a resource's text is English, not the page's
            labels = {k: str(v) for k, v in cm.Consent.Kind.choices}
        today = {s.pk: integrity.site_today(s) for s in cm.Site.objects.all()}
        rows = qs.values_list(
            "pk", "patient_id", "kind", "given", "at", "recorded_by_id", "superseded_by__id",
            "signature_id", "signature__source", "signature__signed_on", "signature__signed_at",
            "signature__recipient", "signature__purpose", "signature__expires_on",
            "signature__document__title", "signature__document__version", "revocation_id",
            "patient__site_id").order_by("pk")
        for (pk_, patient_id, kind, given, at, recorded_by, superseded, sig, source, signed_on,
             signed_at, recipient, purpose, expires_on, title, version, revocation,
             site_id) in rows.iterator(2000):
            part2 = kind == cm.Consent.Kind.PART2
            scope = ("research" if kind == cm.Consent.Kind.RESEARCH
                     else "patient-privacy" if part2 else "treatment")
            expired = expires_on is not None and expires_on < today.get(site_id, expires_on)
            if given:
                status = "inactive" if superseded or expired else "active"
            else:
                status = "inactive" if revocation else "rejected"
            consent: Resource = {
                "resourceType": "Consent", "id": str(pk_), "meta": _META,
                "identifier": [{"system": c.sid("consent"), "value": str(pk_)}],
                "status": status,
                "scope": {"coding": [{"system": c.CONSENT_SCOPE, "code": scope}]},
                "category": [{"coding": [{"system": c.CS_CONSENT_KIND, "code": kind,
                                          "display": labels.get(kind, kind)}],
                              "text": labels.get(kind, kind)}],
                "patient": refs[patient_id],
                "dateTime": at.isoformat(),
                "performer": [refs[patient_id]],
                "policyRule": {"coding": [{"system": c.V3_ACT_CODE,
                                           "code": "OPTIN" if given else "OPTOUT"}]},
                "provision": {"type": "permit" if given else "deny"},
            }
            if sig is not None:
                consent["sourceAttachment"] = {
                    "contentType": "application/pdf",
                    "title": f"{title} (version {version}), signed copy"
                             if version else f"{title} (no document text held)",
                    "creation": signed_at.isoformat()}
            if part2 and sig is not None:
                consent["policy"] = [{"authority": "https://www.ecfr.gov/current/title-42/part-2",
                                      "uri": "https://www.ecfr.gov/current/title-42/section-2.31"}]
                provision = consent["provision"]
                provision["actor"] = [{
                    "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                         "code": "IRCP", "display": "information recipient"}]},
                    "reference": {"display": recipient}}]
                provision["purpose"] = [{"display": purpose}]
                provision["period"] = {"start": signed_on.isoformat(), "end": expires_on.isoformat()}
            who = self._user(recorded_by)
            if who and who["reference"].startswith("Practitioner/") and source != "patient":
                consent["provision"].setdefault("actor", []).append({
                    "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                         "code": "AUT", "display": "author"}]},
                    "reference": who})
            yield with_content_meta(consent, at)

    def alerts(self, pk: int | None = None) -> Iterator[Resource]:
        """Safety alerts (issue 4) as ``Flag``; nothing when the model is absent."""
        alert_model = getattr(cm, "Alert", None)
        if alert_model is None:  # hook: alerts not built in this installation
            return
        qs = self._in_scope(alert_model.objects.all())
        if pk is not None:
            qs = qs.filter(pk=pk)
        refs = self.patient_refs()
        active = {str(s) for s in getattr(alert_model, "ACTIVE", ("open", "acknowledged"))}
        for row in qs.values("pk", "patient_id", "rule", "topic", "severity", "message", "status",
                             "first_seen_at", "last_seen_at", "acknowledged_at",
                             "resolved_at").order_by("pk").iterator(2000):
            period: dict[str, str] = {"start": row["first_seen_at"].isoformat()}
            is_active = row["status"] in active
            if not is_active:
                period["end"] = (row["resolved_at"] or row["last_seen_at"]).isoformat()
            changed = max(t for t in (row["first_seen_at"], row["last_seen_at"],
                                      row["acknowledged_at"], row["resolved_at"]) if t)
            yield with_content_meta({
                "resourceType": "Flag", "id": str(row["pk"]), "meta": _META,
                "extension": [{"url": c.EXT_SEVERITY, "valueCode": row["severity"]},
                              {"url": c.EXT_ALERT_STATUS, "valueCode": row["status"]}],
                "identifier": [{"system": c.sid("alert"), "value": str(row["pk"])}],
                "status": "active" if is_active else "inactive",
                "category": [{"coding": [{"system": c.FLAG_CATEGORY, "code": "clinical",
                                          "display": "Clinical"}], "text": row["topic"]}],
                "code": {"coding": [{"system": c.CS_SAFETY_RULE, "code": row["rule"]}],
                         "text": row["message"]},
                "subject": refs[row["patient_id"]],
                "period": period,
            }, changed)

    def conditions(self, pk: int | None = None) -> Iterator[Resource]:
        """Hook: Speciosa stores no diagnoses yet, so no ``Condition`` is exported.

        When a problem-list model lands, build ``Condition`` here (SNOMED CT codes from
        instruments.md 7.3, e.g. opioid withdrawal 87132004).
        """
        return iter(())

    # ------------------------------------------------------------------ everything
    def resources(self, types: Iterable[str] | None = None) -> Iterator[Resource]:
        """Every resource in scope, grouped by table (Practitioners last: they are the
        clinicians the other resources referenced, plus care-team members)."""
        want = frozenset(types or RESOURCE_TYPES)
        if "Patient" in want:
            yield from self.patients()
        teams = list(self.care_teams()) if ("CareTeam" in want or "Practitioner" in want) else []
        if "CareTeam" in want:
            yield from teams
        if "Questionnaire" in want:
            yield from self.questionnaires()
        if want & {"Observation", "Provenance"}:
            yield from self.labs(want=want)
        if want & {"QuestionnaireResponse", "Observation", "Provenance"}:
            yield from self.assessments(want=want)
        if want & {"Observation", "Provenance"}:
            yield from self.substances(want=want)
        if want & {"MedicationStatement", "Provenance"}:
            yield from self.doses(want=want)
        if want & {"MedicationStatement", "MedicationRequest", "Provenance"}:
            yield from self.medications(want=want)
        if want & {"MedicationStatement", "Provenance"}:
            yield from self.episodes(want=want)
        if want & {"DiagnosticReport", "Specimen", "Observation", "Provenance"}:
            yield from self.panels(want=want)
        if want & {"DocumentReference", "Provenance"}:
            yield from self.notes(want=want)
        if "Condition" in want:
            yield from self.conditions()
        if "Flag" in want:
            yield from self.alerts()
        if "Consent" in want:
            yield from self.consents()
        if "Practitioner" in want:
            yield from self.practitioners()

    def read(self, resource_type: str, ident: str) -> Resource | None:
        """The resource ``resource_type/ident`` in scope, or ``None``."""
        if resource_type == "Questionnaire":
            return next(self.questionnaires(ident), None)
        if resource_type in ("Patient", "CareTeam", "Consent", "Flag", "Practitioner", "Condition"):
            try:
                pk = int(ident)
            except ValueError:
                return None
            if resource_type == "Practitioner":
                members = set(cm.CareTeam.members.through.objects.filter(
                    careteam__in=self.patients_qs.values("care_team_id")).values_list("user_id", flat=True))
                return next(self.practitioners(ids=members & {pk}), None)
            gen = {"Patient": self.patients, "CareTeam": self.care_teams, "Consent": self.consents,
                   "Flag": self.alerts, "Condition": self.conditions}[resource_type]
            return next(gen(pk), None)
        found = self._record(resource_type, ident)
        if found is None:
            return None
        table, model, rows = found
        if model.objects.filter(pk=rows[-1], retracted=True).exists():
            raise Gone(f"{resource_type}/{ident} was withdrawn as entered in error.")
        return next((r for r in getattr(self, table)(rows[-1], want=frozenset({resource_type}))
                     if r["id"] == ident), None)

    def _record(self, resource_type: str, ident: str):
        """``(table, model, rows oldest first)`` of a versioned ``resource_type/ident``."""
        if resource_type == "DocumentReference" and not self.include_notes:
            return None
        for prefix, table in ID_PREFIXES.get(resource_type, ()):
            rest = ident[len(prefix):]
            if ident.startswith(prefix) and rest.isdigit():
                rows = self.chain(TABLE_MODELS[table], int(rest))
                if rows:
                    return table, TABLE_MODELS[table], rows
        return None

    def versions(self, resource_type: str, ident: str) -> list[tuple[str, Resource | None]] | None:
        """Every version of ``resource_type/ident``, newest first, as ``(versionId, resource)``;
        a withdrawn record's last entry is ``(versionId, None)`` (a deletion). Resources
        without a history give their current version only. ``None``: no such resource."""
        found = self._record(resource_type, ident)
        if found is None:
            current = self.read(resource_type, ident)
            return None if current is None else [(current["meta"]["versionId"], current)]
        table, model, rows = found
        past = Exporter(self.patients_qs if self.scoped else None, history=True,
                        notes=self.include_notes)
        out: list[tuple[str, Resource | None]] = []
        for pk in rows:
            res = next((r for r in getattr(past, table)(pk, want=frozenset({resource_type}))
                        if r["id"] == ident), None)
            if res is not None:
                out.append((res["meta"]["versionId"], res))
        if model.objects.filter(pk=rows[-1], retracted=True).exists():
            out.append((str(len(rows) + 1), None))
        return out[::-1]


class Gone(Exception):
    """The record was withdrawn (retracted): a read answers 410."""


#: Exporter table method -> the model behind it.
TABLE_MODELS = {"labs": cm.LabResult, "assessments": cm.Assessment, "doses": cm.Dose,
                "substances": cm.SubstanceUse, "medications": cm.Medication, "notes": cm.Note,
                "episodes": cm.TreatmentEpisode, "panels": cm.UrinePanel}


def record_meta(version: int, updated: dt.datetime) -> dict[str, Any]:
    """``meta`` of a version of a clinical record (with the 42 CFR Part 2 label)."""
    return {"versionId": str(version), "lastUpdated": updated.isoformat(), **_META}


def with_content_meta(resource: Resource, updated: dt.datetime | None = None) -> Resource:
    """``resource`` with ``meta.versionId`` derived from its content (16 hex digits of a
    SHA-256: it changes whenever the resource does) and ``meta.lastUpdated`` when known;
    for resources whose past versions are not kept."""
    body = {k: v for k, v in resource.items() if k != "meta"}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"),
                                       ensure_ascii=False).encode()).hexdigest()[:16]
    meta: dict[str, Any] = {"versionId": digest}
    if updated is not None:
        meta["lastUpdated"] = updated.isoformat()
    meta.update(resource.get("meta") or {})
    return {"resourceType": resource["resourceType"], "id": resource["id"], "meta": meta,
            **{k: v for k, v in body.items() if k not in ("resourceType", "id")}}


#: Statuses an imported row keeps on export, by resource type (the import's status policy,
#: docs/fhir.md): any other status the sender gave was refused on import.
_KEPT_STATUS = {
    "Observation": ("final", "amended", "corrected"),
    "QuestionnaireResponse": ("completed", "amended"),
    "MedicationStatement": ("completed", "active", "stopped"),
    "DocumentReference": ("final", "amended"),  # its docStatus
}


def as_sent(resource: Resource, sent: dict[str, Any] | None, subject: dict[str, Any]) -> Resource:
    """``resource`` (an imported row's) with what the sender said and the row does not hold:
    its status, the time it was recorded (``issued``, ``dateAsserted``), who reported it
    (``performer``; ``author``/``source``; ``informationSource`` and the
    ``patientspecified`` category) and its other codings. Unchanged for a row not imported."""
    if not sent:
        return resource
    rtype = resource["resourceType"]
    status = sent.get("status")
    if rtype == "DocumentReference":
        if status in _KEPT_STATUS[rtype]:
            resource["docStatus"] = status
        status = None
    if status in _KEPT_STATUS.get(rtype, ()) and resource.get("status") != "in-progress":
        if rtype != "MedicationStatement" or resource["id"].startswith("dose"):
            resource["status"] = status  # a medication stores its own status
    recorded = sent.get("recorded_at")
    by, author = sent.get("reported_by"), sent.get("author")
    who = subject if by == "patient" else author
    if rtype == "Observation":
        if recorded:
            resource["issued"] = recorded.isoformat()
        if who:
            resource["performer"] = [who]
        else:
            resource.pop("performer", None)
        if sent.get("codings") and "code" in resource:
            have = {(cd.get("system"), cd.get("code")) for cd in resource["code"]["coding"]}
            resource["code"]["coding"] += [cd for cd in sent["codings"]
                                           if (cd.get("system"), cd.get("code")) not in have]
    elif rtype == "QuestionnaireResponse":
        resource.pop("author", None)
        resource.pop("source", None)
        if who:
            resource["author"] = who
        if by == "patient":
            resource["source"] = subject
    if rtype in ("MedicationStatement", "MedicationRequest") and sent.get("codings") \
            and "medicationCodeableConcept" in resource:
        concept = resource["medicationCodeableConcept"]
        have = {(cd.get("system"), cd.get("code")) for cd in concept.get("coding", ())}
        extra = [cd for cd in sent["codings"] if (cd.get("system"), cd.get("code")) not in have]
        if extra:
            concept["coding"] = [*concept.get("coding", ()), *extra]
    if rtype == "DocumentReference":
        if recorded:  # when the author first wrote it, in the sender's record
            resource["date"] = recorded.isoformat()
            resource["content"][0]["attachment"]["creation"] = recorded.isoformat()
        resource.pop("author", None)
        if who:
            resource["author"] = [who]
    if rtype == "MedicationRequest":
        if recorded:
            resource["authoredOn"] = recorded.isoformat()
    elif rtype == "MedicationStatement":
        if recorded:
            resource["dateAsserted"] = recorded.isoformat()
        resource.pop("informationSource", None)
        if who:
            resource["informationSource"] = who
        if by == "patient":
            resource["category"] = _MS_PATIENT
    return resource


def _identifiers(kind: str, pk: int, original: dict[str, str] | None) -> list[dict[str, str]]:
    ids = [{"system": c.sid(kind), "value": str(pk)}]
    if original:
        ids.append(original)
    return ids


# ---------------------------------------------------------------------- builders

def _lab_quantity(value: float | int, unit: str) -> dict[str, Any]:
    """A lab Quantity: ``unit`` as people write it (mIU/L), ``code`` the UCUM (m[IU]/L)."""
    return {"value": value, "unit": klabs.unit_display(unit) or unit, "system": c.UCUM, "code": unit}


def _in_unit(lab: klabs.LabTest | None, canonical: float | None, unit: str,
             iu_factor: float | None = None) -> float | None:
    """A canonical value (a stored range limit) in the result's own ``unit``
    (:func:`speciosa.knowledge.labs.canonical_in_unit`, as the API shows it)."""
    if lab is None:
        return None
    return klabs.canonical_in_unit(lab.code, canonical, unit, iu_factor=iu_factor)


_RANGE_TEXT = {"laboratory": c.LABORATORY_RANGE_TEXT, "catalogue": c.CATALOGUE_RANGE_TEXT}


def lab_observation(row: dict[str, Any], subject: dict[str, Any], lab: klabs.LabTest | None,
                    original: dict[str, str] | None = None) -> Resource:
    """A lab result as ``Observation`` (category laboratory, LOINC, UCUM, range, flag).

    The LOINC code follows the unit the value is reported in (prolactin in m[IU]/L is
    15081-3, bilirubin in umol/L 14631-6: :func:`speciosa.knowledge.labs.loinc_for`), and
    the reference range is given in that same unit (it is stored in the canonical unit).
    """
    name = lab.name if lab else row["lab"]
    loinc = row["loinc"]
    if lab is not None and lab.kind == "qualitative" and row["method"]:
        loinc = lab.method_loinc.get(row["method"]) or loinc
    elif lab is not None and lab.kind == "quantity" and row["unit"]:
        loinc = klabs.loinc_for(lab.code, row["unit"]) or loinc
    coding = []
    if loinc:
        coding.append({"system": c.LOINC, "code": loinc, "display": name})
    coding.append({"system": c.CS_LAB, "code": row["lab"], "display": name})
    obs: Resource = {
        "resourceType": "Observation", "id": f"lab{row['pk']}", "meta": _META,
        "identifier": _identifiers("lab", row["pk"], original),
        "status": "amended" if row["replaces_id"] else "final",
        "category": _CAT_LAB,
        "code": {"coding": coding, "text": name},
        "subject": subject,
        "effectiveDateTime": row["collected_at"].isoformat(),
        "issued": row["entered_at"].isoformat(),
    }
    if row["result"]:
        obs["valueCodeableConcept"] = {"coding": [{"system": c.CS_LAB_RESULT, "code": row["result"]}],
                                       "text": row["result"]}
        code, display = c.QUALITATIVE_INTERPRETATION.get(row["result"], (None, None))
        if code:
            obs["interpretation"] = [{"coding": [{"system": c.OBS_INTERPRETATION, "code": code,
                                                  "display": display}]}]
    elif row["value"] is not None:
        unit = row["unit"]
        obs["valueQuantity"] = _lab_quantity(_num(row["value"]), unit)
        if row.get("comparator"):
            obs["valueQuantity"]["comparator"] = row["comparator"]
        code, display = c.INTERPRETATION.get(row["flag"], (None, None))
        if row.get("reported_interpretation"):  # the laboratory's own, as received
            obs["interpretation"] = row["reported_interpretation"]
        elif code:
            obs["interpretation"] = [{"coding": [{"system": c.OBS_INTERPRETATION, "code": code,
                                                  "display": display}], "text": row["flag"]}]
        elif row["flag"]:
            obs["interpretation"] = [{"coding": [{"system": c.CS_LAB_FLAG, "code": row["flag"]}],
                                      "text": row["flag"]}]
        rr: dict[str, Any] = {}
        factor = row.get("iu_factor")
        low = _in_unit(lab, row["reference_low"], unit, factor)
        high = _in_unit(lab, row["reference_high"], unit, factor)
        if low is not None:
            rr["low"] = _lab_quantity(low, unit)
        if high is not None:
            rr["high"] = _lab_quantity(high, unit)
        if rr:
            text = _RANGE_TEXT.get(row.get("reference_source") or "")
            if text:
                rr["text"] = text
            obs["referenceRange"] = [rr]
    if row["method"]:
        obs["method"] = {"coding": [{"system": c.CS_LAB_METHOD, "code": row["method"]}],
                         "text": row["method"]}
    extensions = []
    if row["confirmed_unusual"]:
        extensions.append({"url": c.EXT_CONFIRMED_UNUSUAL, "valueBoolean": True})
    if row.get("iu_factor") is not None:
        extensions.append({"url": c.EXT_IU_FACTOR, "valueDecimal": row["iu_factor"]})
    if extensions:
        obs["extension"] = extensions
    return obs


def _score_code(inst_id: str, label: str) -> dict[str, Any]:
    coding = []
    if inst_id in c.SCORE_LOINC:
        code, display = c.SCORE_LOINC[inst_id]
        coding.append({"system": c.LOINC, "code": code, "display": display})
    coding.append({"system": c.CS_SCORE, "code": inst_id, "display": f"{label} total score"})
    return {"coding": coding, "text": f"{label} total score"}


def score_observation(row: dict[str, Any], subject: dict[str, Any],
                      inst: kinstruments.Instrument | None) -> Resource:
    """An instrument total as ``Observation`` (category survey, ``{score}``), derived from
    its QuestionnaireResponse."""
    label = inst.label if inst else row["instrument"]
    obs: Resource = {
        "resourceType": "Observation", "id": f"score{row['pk']}", "meta": _META,
        "status": "amended" if row["replaces_id"] else "final",
        "category": _CAT_SURVEY,
        "code": _score_code(row["instrument"], label),
        "subject": subject,
        "effectiveDateTime": row["at"].isoformat(),
        "valueQuantity": _ucum(row["total"], "{score}"),
        "derivedFrom": [{"reference": f"QuestionnaireResponse/a{row['pk']}"}],
    }
    if row["band"]:
        obs["interpretation"] = [{"coding": [{"system": c.CS_BAND, "code": row["band"]}],
                                  "text": row["band"]}]
    return obs


def questionnaire_response(row: dict[str, Any], subject: dict[str, Any],
                           inst: kinstruments.Instrument | None, author: dict[str, Any] | None,
                           original: dict[str, str] | None = None) -> Resource:
    """An assessment as ``QuestionnaireResponse`` (answers as the Questionnaire's codings)."""
    items = row["items"] or {}
    answers: list[dict[str, Any]] = []
    item_defs = {it.id: it for it in inst.items} if inst else {}
    measurements = {it.measurement.key: it for it in inst.items if it.measurement} if inst else {}
    order = [it.id for it in inst.items] if inst else []
    order += [k for k in measurements if k in items]
    order += sorted(k for k in items if k not in order)
    for key in order:
        if key not in items:
            continue
        value = items[key]
        item = item_defs.get(key)
        if item is not None:
            anchor = next((v.anchor for v in item.values if v.value == value), "")
            coding = answer_coding(inst.id, key, value, anchor)
            answers.append({"linkId": key, "text": item.label, "answer": [{"valueCoding": coding}]})
        else:
            answers.append({"linkId": key, "answer": [{"valueInteger": int(value)}]})
    qr: Resource = {
        "resourceType": "QuestionnaireResponse", "id": f"a{row['pk']}", "meta": _META,
        "identifier": {"system": c.sid("assessment"), "value": str(row["pk"])},
        "questionnaire": f"{c.QUESTIONNAIRE_BASE}/{row['instrument']}|{row['instrument_version']}",
        "status": ("amended" if row["replaces_id"] else "completed") if row["complete"] else "in-progress",
        "subject": subject,
        "authored": row["at"].isoformat(),
    }
    if original:
        qr["identifier"] = {k: v for k, v in original.items() if k != "use"}
    if author:
        qr["author"] = author
    if row["source"] == cm.Source.PATIENT:
        qr["source"] = subject
    ext = [{"url": c.EXT_ASSESSMENT_FLAG, "valueCode": f} for f in row.get("flags") or ()]
    if row["note"]:
        ext.append({"url": c.EXT_NOTE, "valueString": row["note"]})
    if ext:
        qr["extension"] = ext
    if answers:
        qr["item"] = answers
    return qr


def answer_coding(inst_id: str, item_id: str, value: int, anchor: str) -> dict[str, Any]:
    """The coding of an answer option: the LOINC answer code where one is confirmed for the
    anchor (PHQ-9, GAD-7), otherwise Speciosa's (code = the item value)."""
    loinc = c.answer_loinc(inst_id, anchor)
    if loinc:
        return {"system": c.LOINC, "code": loinc, "display": anchor}
    coding = {"system": f"{c.QUESTIONNAIRE_BASE}/{inst_id}/{item_id}", "code": str(value)}
    if anchor:
        coding["display"] = anchor
    return coding


def questionnaire(inst: kinstruments.Instrument) -> Resource:
    """An instrument definition as ``Questionnaire`` (generated, never a second copy)."""
    items = []
    item_loinc = c.ITEM_LOINC.get(inst.id, {})
    for it in inst.items:
        options = [{"extension": [{"url": c.ORDINAL_VALUE, "valueDecimal": v.value}],
                    "valueCoding": answer_coding(inst.id, it.id, v.value, v.anchor)}
                   for v in it.values]
        codes = [{"system": c.item_system(inst.id), "code": it.id, "display": it.label}]
        if it.id in item_loinc:
            codes.insert(0, {"system": c.LOINC, "code": item_loinc[it.id]})
        # the neutral label, never licensed wording (a site may load that for its own use)
        entry: dict[str, Any] = {"linkId": it.id, "code": codes, "text": it.label,
                                 "type": "choice", "required": it.required,
                                 "answerOption": options}
        if not it.scored:
            entry["extension"] = [{"url": f"{c.EXT}/not-scored", "valueBoolean": True}]
        items.append(entry)
        if it.measurement:
            m = it.measurement
            items.append({"linkId": m.key, "type": "integer", "required": False,
                          "text": f"{it.label}: measured value ({m.unit}), scored as '{it.id}'"})
    name = "".join(ch for ch in inst.id.title() if ch.isalnum())
    q: Resource = {
        "resourceType": "Questionnaire", "id": inst.id,
        "url": f"{c.QUESTIONNAIRE_BASE}/{inst.id}",
        "identifier": [{"system": c.CS_SCORE, "value": inst.id}],
        "version": inst.version, "name": name or "Instrument", "title": inst.name,
        "status": "active",
        "subjectType": ["Patient"],
        "item": items,
    }
    if inst.id in c.PANEL_LOINC:
        code, display = c.PANEL_LOINC[inst.id]
        q["code"] = [{"system": c.LOINC, "code": code, **({"display": display} if display else {})}]
    if inst.description:
        q["description"] = inst.description
    if inst.licence:
        q["copyright"] = inst.licence
    return q


def note_document(row: dict[str, Any], subject: dict[str, Any], author: dict[str, Any] | None,
                  meta: dict[str, Any], original: dict[str, str] | None = None) -> Resource:
    """A clinical note as ``DocumentReference`` (US Core's clinical note: category
    ``clinical-note``, type LOINC 11506-3 Progress note): the text as a ``text/plain``
    attachment, ``date`` when it was first written, ``context.period.start`` the time it is
    about."""
    doc: Resource = {
        "resourceType": "DocumentReference", "id": f"note{row['pk']}", "meta": meta,
        "identifier": _identifiers("note", row["pk"], original),
        "status": "current",
        "docStatus": "amended" if row["replaces_id"] else "final",
        "type": {"coding": [{"system": c.LOINC, "code": c.NOTE_LOINC[0],
                             "display": c.NOTE_LOINC[1]},
                            {"system": c.CS_NOTE_TYPE, "code": "clinical-note",
                             "display": "Clinical note"}], "text": "Clinical note"},
        "category": [{"coding": [{"system": c.DOC_CATEGORY, "code": "clinical-note",
                                  "display": "Clinical Note"}]}],
        "subject": subject,
        "date": row["first_entered_at"].isoformat(),
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "data": base64.b64encode(row["text"].encode("utf-8")).decode("ascii"),
            "title": "Clinical note", "creation": row["first_entered_at"].isoformat()}}],
        "context": {"period": {"start": row["at"].isoformat()}},
    }
    if author:
        doc["author"] = [author]
    return doc


def dose_statement(row: dict[str, Any], subject: dict[str, Any], source: dict[str, Any] | None,
                   original: dict[str, str] | None = None) -> Resource:
    """A kratom dose as ``MedicationStatement`` with amount, unit and product."""
    ucum, unit_text = c.DOSE_UNITS.get(row["unit"], (row["unit"], row["unit"]))
    amount = _num(row["amount"])
    ext: list[dict[str, Any]] = [{"url": c.EXT_DOSE_UNIT, "valueCode": row["unit"]}]
    if row["mitragynine_percent"] is not None:
        ext.append({"url": c.EXT_MITRAGYNINE_PERCENT, "valueDecimal": _num(row["mitragynine_percent"])})
    if row["grams_per_capsule"] is not None:
        ext.append({"url": c.EXT_GRAMS_PER_CAPSULE, "valueDecimal": _num(row["grams_per_capsule"])})
    if row["mitragynine_mg"] is not None:
        ext.append({"url": c.EXT_MITRAGYNINE_MG, "valueQuantity": _ucum(round(row["mitragynine_mg"], 3), "mg")})
    if row["conversion_note"]:
        ext.append({"url": c.EXT_CONVERSION_NOTE, "valueString": row["conversion_note"]})
    med: dict[str, Any] = {"coding": [_KRATOM], "text": row["product"] or c.KRATOM_DISPLAY}
    ms: Resource = {
        "resourceType": "MedicationStatement", "id": f"dose{row['pk']}", "meta": _META,
        "extension": ext,
        "identifier": _identifiers("dose", row["pk"], original),
        "status": "completed",
        "category": _MS_PATIENT if row["source"] == cm.Source.PATIENT else _MS_COMMUNITY,
        "medicationCodeableConcept": med,
        "subject": subject,
        "effectiveDateTime": row["taken_at"].isoformat(),
        "dateAsserted": row["entered_at"].isoformat(),
        "dosage": [{"text": f"{amount} {unit_text}" + (f" ({row['product']})" if row["product"] else ""),
                    "doseAndRate": [{"doseQuantity": {"value": amount, "unit": unit_text,
                                                      "system": c.UCUM, "code": ucum}}]}],
    }
    if row["product"]:
        ext.insert(1, {"url": c.EXT_PRODUCT, "valueString": row["product"]})
    if source:
        ms["informationSource"] = source
    return ms


#: The Medication columns the export reads.
MEDICATION_COLUMNS = (
    "pk", "patient_id", "name", "drug", "rxnorm", "category", "strength", "strength_unit", "form",
    "dose_amount", "dose_unit", "frequency", "route", "start", "start_at", "end", "end_at",
    "status", "stop_reason", "prescriber", "prescriber_name", "indication", "notes",
    "confirmed_by_id", "confirmed_at", "entered_by_id", "entered_at", "source", "replaces_id",
    "change_reason")


def medication_concept(row: dict[str, Any]) -> dict[str, Any]:
    """What the medication is: its RxNorm ingredient code, Speciosa's drug-table name (a coded
    medication) and the name as shown (``text``)."""
    coding = []
    if row["rxnorm"]:
        coding.append({"system": c.RXNORM, "code": row["rxnorm"]})
    if row["drug"]:
        coding.append({"system": c.CS_DRUG, "code": row["drug"], "display": row["drug"]})
    concept: dict[str, Any] = {"text": row["name"]}
    if coding:
        concept = {"coding": coding, "text": row["name"]}
    return concept


def _moment(day: dt.date | None, at: dt.datetime | None) -> str | None:
    """A FHIR dateTime: the time when it was given, otherwise the day."""
    if at is not None:
        return at.isoformat()
    return day.isoformat() if day is not None else None


def dosage_text(row: dict[str, Any]) -> str:
    """The dosage as one line ("2 tablet by mouth, twice daily")."""
    from speciosa.clinic.medications import ROUTES

    parts = []
    if row["dose_amount"] is not None:
        parts.append(f"{_num(row['dose_amount'])} {row['dose_unit']}")
    if row["route"]:
        parts.append(ROUTES.get(row["route"], row["route"]))
    text = " ".join(parts)
    if row["frequency"]:
        text = f"{text}, {row['frequency']}" if text else row["frequency"]
    return text


def medication_dosage(row: dict[str, Any]) -> dict[str, Any] | None:
    """A medication's ``Dosage``: text, route (SNOMED CT where known, and Speciosa's code),
    how often (``timing.code.text``) and the dose (``doseAndRate.doseQuantity``, UCUM)."""
    from speciosa.clinic.medications import ROUTES

    dosage: dict[str, Any] = {}
    text = dosage_text(row)
    if text:
        dosage["text"] = text
    if row["frequency"]:
        dosage["timing"] = {"code": {"text": row["frequency"]}}
    if row["route"]:
        coding = []
        if row["route"] in c.ROUTE_SNOMED:
            code, display = c.ROUTE_SNOMED[row["route"]]
            coding.append({"system": c.SNOMED, "code": code, "display": display})
        coding.append({"system": c.CS_ROUTE, "code": row["route"]})
        dosage["route"] = {"coding": coding, "text": ROUTES.get(row["route"], row["route"])}
    if row["dose_amount"] is not None:
        dosage["doseAndRate"] = [{"doseQuantity": {
            "value": _num(row["dose_amount"]), "unit": row["dose_unit"], "system": c.UCUM,
            "code": c.MEDICATION_DOSE_UCUM.get(row["dose_unit"], row["dose_unit"])}}]
    return dosage or None


def _medication_common(row: dict[str, Any], confirmed: dict[str, Any] | None) -> dict[str, Any]:
    """Extensions, reason, notes and status reason shared by the statement and the request."""
    ext: list[dict[str, Any]] = []
    if row["strength"] is not None:
        ext.append({"url": c.EXT_STRENGTH, "valueQuantity": {
            "value": _num(row["strength"]), "unit": row["strength_unit"], "system": c.UCUM,
            "code": c.MEDICATION_STRENGTH_UCUM.get(row["strength_unit"], row["strength_unit"])}})
    if row["form"]:
        ext.append({"url": c.EXT_FORM, "valueCode": row["form"]})
    if row["category"]:
        ext.append({"url": c.EXT_MEDICATION_CATEGORY, "valueCode": row["category"]})
    ext.append({"url": c.EXT_PRESCRIBER, "valueCode": row["prescriber"]})
    if row["prescriber_name"]:
        ext.append({"url": c.EXT_PRESCRIBER_NAME, "valueString": row["prescriber_name"]})
    if confirmed is not None:
        ext.append({"url": c.EXT_CONFIRMED_BY, "valueReference": confirmed})
    if row["confirmed_at"] is not None:
        ext.append({"url": c.EXT_CONFIRMED_AT, "valueDateTime": row["confirmed_at"].isoformat()})
    out: dict[str, Any] = {"extension": ext}
    if row["stop_reason"]:
        out["statusReason"] = [{"text": row["stop_reason"]}]
    if row["indication"]:
        out["reasonCode"] = [{"text": row["indication"]}]
    if row["notes"]:
        out["note"] = [{"text": row["notes"]}]
    return out


def medication_statement(row: dict[str, Any], subject: dict[str, Any],
                         original: dict[str, str] | None, source: dict[str, Any] | None,
                         confirmed: dict[str, Any] | None = None) -> Resource:
    """A medication of the list as ``MedicationStatement``: status as recorded, the course
    as ``effectivePeriod`` (date-times when the time was given), dosage, route, reason."""
    period: dict[str, str] = {"start": _moment(row["start"], row["start_at"]) or ""}
    end = _moment(row["end"], row["end_at"])
    if end:
        period["end"] = end
    common = _medication_common(row, confirmed)
    ms: Resource = {"resourceType": "MedicationStatement", "id": f"med{row['pk']}",
                    "extension": common.pop("extension"),
                    "identifier": _identifiers("medication", row["pk"], original),
                    "status": row["status"], "category": _MS_COMMUNITY,
                    "medicationCodeableConcept": medication_concept(row),
                    "subject": subject, "effectivePeriod": period,
                    "dateAsserted": row["first_entered_at"].isoformat()}
    if row["prescriber"] == cm.Prescriber.CLINIC:
        ms["basedOn"] = [{"reference": f"MedicationRequest/rx{row['pk']}"}]
    ms.update(common)
    if source:
        ms["informationSource"] = source
    dosage = medication_dosage(row)
    if dosage:
        ms["dosage"] = [dosage]
    return ms


#: Medication status -> MedicationRequest status (R4 medicationrequest-status).
_REQUEST_STATUS = {"active": "active", "on-hold": "on-hold", "stopped": "stopped",
                   "completed": "completed", "intended": "draft", "not-taken": "cancelled",
                   "unknown": "unknown", "entered-in-error": "entered-in-error"}


def medication_request(row: dict[str, Any], subject: dict[str, Any],
                       original: dict[str, str] | None, requester: dict[str, Any] | None,
                       confirmed: dict[str, Any] | None = None) -> Resource:
    """A medication this clinic prescribes as ``MedicationRequest`` (intent ``order``): the
    course as ``dosageInstruction.timing.repeat.boundsPeriod``, ``authoredOn`` when it was
    recorded, the requester the clinician who entered it (or the prescriber's name)."""
    common = _medication_common(row, confirmed)
    mr: Resource = {"resourceType": "MedicationRequest", "id": f"rx{row['pk']}",
                    "extension": common.pop("extension"),
                    "identifier": _identifiers("medication", row["pk"], original),
                    "status": _REQUEST_STATUS.get(row["status"], "unknown"), "intent": "order",
                    "category": [{"coding": [{"system": c.MR_CATEGORY, "code": "community",
                                              "display": "Community"}]}],
                    "medicationCodeableConcept": medication_concept(row),
                    "subject": subject, "authoredOn": row["first_entered_at"].isoformat()}
    if row["prescriber_name"]:
        mr["requester"] = {"display": row["prescriber_name"]}
    elif requester:
        mr["requester"] = requester
    mr.update(common)
    bounds: dict[str, str] = {"start": _moment(row["start"], row["start_at"]) or ""}
    end = _moment(row["end"], row["end_at"])
    if end:
        bounds["end"] = end
    dosage = medication_dosage(row) or {}
    dosage.setdefault("timing", {})["repeat"] = {"boundsPeriod": bounds}
    mr["dosageInstruction"] = [dosage]
    return mr


# ---------------------------------------------------------------------- bundles, files

def dumps(resource: Resource) -> str:
    """Compact JSON, as NDJSON wants it (no whitespace, UTF-8)."""
    return json.dumps(resource, separators=(",", ":"), ensure_ascii=False)


def searchset(resources: Iterable[Resource], *, base: str = "") -> Resource:
    """A ``searchset`` Bundle of ``resources``."""
    entries = [{"fullUrl": f"{base}{r['resourceType']}/{r['id']}", "resource": r,
                "search": {"mode": "match"}} for r in resources]
    return {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}


def write_ndjson(out_dir: str | Path, exporter: Exporter | None = None) -> dict[str, int]:
    """Write one ``<Type>.ndjson`` file per resource type into ``out_dir``.

    Returns the number of resources written per type. Types without resources get no file
    (Bulk Data: the manifest lists only files that exist). Files are written to a temporary
    name and renamed when complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exporter = exporter or Exporter()
    handles: dict[str, Any] = {}
    counts: dict[str, int] = {}
    encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    try:
        for res in exporter.resources():
            rtype = res["resourceType"]
            fh = handles.get(rtype)
            if fh is None:
                fh = handles[rtype] = open(out / f"{rtype}.ndjson.part", "w", encoding="utf-8")  # noqa: SIM115
                counts[rtype] = 0
            fh.write(encode(res))
            fh.write("\n")
            counts[rtype] += 1
    finally:
        for fh in handles.values():
            fh.close()
    for rtype in handles:
        (out / f"{rtype}.ndjson.part").replace(out / f"{rtype}.ndjson")
    return counts


# ---------------------------------------------------------------------- validation

def model_class(resource_type: str):
    """The ``fhir.resources.R4B`` model class of ``resource_type``."""
    import importlib

    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    return getattr(module, resource_type)


def validate(resource: Resource):
    """Validate ``resource`` with the R4B models; returns the model, raises on error."""
    return model_class(resource["resourceType"]).model_validate(resource)
