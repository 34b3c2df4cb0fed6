"""Import FHIR R4 labs, questionnaire responses, medication statements and requests,
treatment episodes and urine drug test panels (a DiagnosticReport with the Observations
and the Specimen it names, :mod:`speciosa.interop.treatment`).

``import_fhir(path)`` reads a Bundle (``.json``), one NDJSON file, or a folder of NDJSON
files (Bulk Data output). Each resource is

1. parsed and validated against the ``fhir.resources.R4B`` model of its type;
2. matched to a patient (:class:`_Patients`) only on identifier **system and value**, for a
   system the patient's site trusts (its own MRN system or a
   :class:`~speciosa.interop.models.TrustedIdentifierSystem`), from ``subject.identifier``
   or the ``Patient`` resource ``subject.reference`` names (a Bundle ``fullUrl`` such as
   ``urn:uuid:...``, or ``Patient/<id>``); that Patient's birth date, sex and family name
   must agree with the chart. Anything else is a mismatch: the file is refused;
3. validated with the clinic's own validators (:func:`speciosa.clinic.services.validate_lab`,
   :func:`~speciosa.clinic.services.validate_items`,
   :func:`~speciosa.clinic.services.validate_dose`) - the same checks a form or the API
   applies; nothing is trusted because it came from another system.

**Meaning is kept**: a status is stored and exported again, or the resource is refused,
by the stated policy (:data:`OBSERVATION_STATUS`, :data:`RESPONSE_STATUS`,
:data:`USE_STATUS`, :data:`MEDICATION_STATUS`; never silently made final or active); the
sender's recording time, who reported it and its other codings are kept in
:class:`~speciosa.interop.models.ImportedResource`. Instrument totals sent as LOINC-coded
Observations are assessments without items; a response may name the LOINC panel.

**All or nothing per file** (default): a file with any bad resource stores nothing; each
problem is reported with its line (NDJSON) or entry number (Bundle), the resource and the
reason. With ``per_resource`` the good resources are stored and the others reported, but a
patient mismatch still refuses the whole file. A file is stored in one transaction with
``source="import"`` and one audit entry per row.

**Idempotent, with versions**: each stored resource is remembered by its source identifier
with a digest of its content; the same content again changes nothing. New content under the
same identifier is a new version of the record (``replaces``, as a correction; audited as
one), ``entered-in-error`` withdraws it; an update that names another patient, or of a
record corrected in Speciosa since, is refused.

Patients are created only when the operator asks (``create_patients``, the CLI's
``--create-patients``, for seeding a new installation). A ``Provenance`` is read for who
reported the records it names and when, where the record itself does not say; other
resource types (Practitioner, derived score Observations, ...) are skipped and counted.
What a stored resource holds that its record cannot keep is reported as a warning with its
path (``not kept: MedicationStatement.dosage[1] ...``); a refused file is audited
(``import-refused``: who, the file's SHA-256, why).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.exceptions import ParseError

from speciosa.api import parsers
from speciosa.clinic import models as cm
from speciosa.clinic import services, writes
from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs

from . import codes as c
from . import treatment as itreatment
from .export import model_class
from .models import ImportedResource, TrustedIdentifierSystem

IMPORTED_TYPES = ("Observation", "QuestionnaireResponse", "MedicationStatement",
                  "MedicationRequest", "DocumentReference", "DiagnosticReport")


class ImportError_(Exception):
    """A path that cannot be imported at all (missing, unreadable, not FHIR)."""


@dataclass
class Problem:
    """One bad resource: where it is and what to fix."""

    file: str
    line: int
    message: str
    resource: str = ""
    #: a patient mismatch: the whole file is refused, whatever the mode
    fatal: bool = False

    def __str__(self) -> str:
        what = f"{self.resource}: " if self.resource else ""
        return f"{self.file}:{self.line}: {what}{self.message}"


@dataclass
class FileReport:
    """What happened to one file."""

    file: str
    created: Counter = field(default_factory=Counter)
    unchanged: int = 0
    skipped: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    #: what was stored with a caveat: an element the record cannot hold (``not kept:`` and
    #: its path), a code taken differently from how it was sent
    warnings: list[Problem] = field(default_factory=list)
    patient_ids: set[int] = field(default_factory=set)
    per_resource: bool = False

    @property
    def stored(self) -> bool:
        """Whether the file's resources were stored: all of them (no problem), or, per
        resource, all but those with a problem (none when a patient did not match)."""
        if not self.problems:
            return True
        return self.per_resource and not any(p.fatal for p in self.problems) \
            and not any(p.line == 0 for p in self.problems)


@dataclass
class ImportReport:
    files: list[FileReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every resource of every file was taken (no problem anywhere)."""
        return not any(f.problems for f in self.files)

    @property
    def problems(self) -> list[Problem]:
        return [p for f in self.files for p in f.problems]

    @property
    def warnings(self) -> list[Problem]:
        return [w for f in self.files for w in f.warnings]

    @property
    def created(self) -> Counter:
        total: Counter = Counter()
        for f in self.files:
            total.update(f.created)
        return total

    @property
    def unchanged(self) -> int:
        return sum(f.unchanged for f in self.files)


class _Bad(Exception):
    """A resource-level problem (message says what to fix)."""


class _Skip(Exception):  # noqa: N818 - not an error: the resource is counted as skipped
    """A resource Speciosa does not take, counted in the report under ``str(exc)``."""


class _Mismatch(_Bad):
    """The resource names a patient whose chart disagrees: the whole file is refused."""


@dataclass
class _Pending:
    """A validated resource waiting to be stored with the rest of its file.

    ``action``: ``create`` (a new record), ``update`` (a new version of the record
    ``replaces``, imported before under the same identifier) or ``withdraw`` (the sender
    marked it ``entered-in-error``: ``replaces`` is withdrawn)."""

    line: int
    resource_type: str
    system: str
    value: str
    digest: str
    patient: cm.Patient
    model: type
    fields: dict[str, Any]
    sender: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    action: str = "create"
    replaces: Any = None
    version: int = 1


# ---------------------------------------------------------------------- reading

#: Bundle types that answer a request (their entries are outcomes, not records).
RESPONSE_BUNDLES = frozenset({"transaction-response", "batch-response"})
#: ``Bundle.entry.request.method`` values of an entry that stores its resource.
STORE_METHODS = frozenset({"POST", "PUT"})


def _read_file(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line, parsed JSON or exception, fullUrl)`` per resource of an NDJSON file or a
    Bundle (``line`` is the entry number in a Bundle, counted from 1)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ndjson" or (not text.lstrip().startswith("{") or "\n{" in text.strip()):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield n, parsers.loads(line), None
            except json.JSONDecodeError as exc:
                yield n, _Bad(f"not valid JSON ({exc.msg} at column {exc.colno})"), None
            except ParseError as exc:  # nested too deeply, or text no database can hold
                yield n, _Bad(str(exc.detail)), None
        return
    try:
        bundle = parsers.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, _Bad(f"not valid JSON ({exc.msg} at line {exc.lineno})"), None
        return
    except ParseError as exc:
        yield 1, _Bad(str(exc.detail)), None
        return
    if not isinstance(bundle, dict):
        yield 1, _Bad("expected a FHIR resource (a JSON object)"), None
        return
    if bundle.get("resourceType") != "Bundle":
        yield 1, bundle, None
        return
    if bundle.get("type") in RESPONSE_BUNDLES:
        yield 1, _Bad(f"Bundle.type {bundle['type']}: a server's answer to a request (what it "
                      "did), not records to file; send the records themselves (a transaction, "
                      "batch or collection Bundle)"), None
        return
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        yield 1, _Bad("Bundle.entry: a list of entries"), None
        return
    for n, entry in enumerate(entries, 1):
        res = entry.get("resource") if isinstance(entry, dict) else None
        full_url = entry.get("fullUrl") if isinstance(entry, dict) else None
        request = entry.get("request") if isinstance(entry, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        if method is not None and method not in STORE_METHODS:
            yield n, _Bad(f"Bundle entry with request.method {method}: only entries that store "
                          "a record (POST, PUT) are imported, a deletion or a change request is "
                          "never applied (a record sent again with status entered-in-error "
                          "withdraws it)"), None
        elif not isinstance(res, dict):
            yield n, _Bad("Bundle entry without a resource"), None
        else:
            yield n, res, full_url if isinstance(full_url, str) and full_url else None


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".ndjson", ".json") and p.is_file())
        if not files:
            raise ImportError_(f"{path}: no .ndjson or .json files in this folder")
        return files
    if not path.exists():
        raise ImportError_(f"{path}: no such file or folder")
    return [path]


# ---------------------------------------------------------------------- helpers

def _pydantic_reason(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors()[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
            parts.append(f"{loc or 'resource'}: {err.get('msg')}")
        return "not a valid FHIR R4 resource: " + "; ".join(parts)
    return f"not a valid FHIR R4 resource: {exc}"


def _validation_reason(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" if k != "__all__" else " ".join(v)
                         for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def _datetime(value: Any, what: str) -> dt.datetime:
    if not isinstance(value, str):
        raise _Bad(f"{what}: give a date-time with a time zone")
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _Bad(f"{what}: {value!r} is not a FHIR dateTime") from None
    if timezone.is_naive(when):
        raise _Bad(f"{what}: {value!r} has no time zone; give one (e.g. +00:00)")
    return when


def _date(value: Any, what: str) -> dt.date:
    if not isinstance(value, str) or len(value) < 10:
        raise _Bad(f"{what}: give a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise _Bad(f"{what}: {value!r} is not a date") from None


def _ext(resource: dict[str, Any], url: str) -> Any:
    for e in resource.get("extension") or ():
        if e.get("url") == url:
            for k, v in e.items():
                if k.startswith("value"):
                    return v
    return None


def _codes(concept: dict[str, Any] | None, system: str) -> list[str]:
    return [cd.get("code") for cd in (concept or {}).get("coding") or () if cd.get("system") == system]


def _local_refs(value: Any) -> Any:
    """``value`` with every Bundle-local reference (``urn:uuid:...``, new in every
    transaction an EHR sends) made the same: the content, not the envelope, is compared."""
    if isinstance(value, dict):
        return {k: ("urn:uuid" if k == "reference" and isinstance(v, str)
                    and v.startswith("urn:uuid:") else _local_refs(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_local_refs(v) for v in value]
    return value


#: Resource types a urine panel is made of, read ahead of the panel.
_PART_TYPES = ("DiagnosticReport", "Observation", "Specimen")


def _content_digest(res: dict[str, Any], patients: _Patients) -> str:
    """The digest of what a resource says: a urine panel's DiagnosticReport with its parts
    (an analyte changed is a new version of the panel)."""
    if res.get("resourceType") != "DiagnosticReport" or not itreatment.is_panel(res):
        return _digest(res)
    refs = [*(res.get("specimen") or ()), *(res.get("result") or ())]
    return _digest({"report": res, "parts": [patients.part(r) for r in refs]})


def _digest(resource: dict[str, Any]) -> str:
    """SHA-256 of a resource's content (not ``meta``, ``text`` or Bundle-local references;
    the patient is compared on its own)."""
    content = _local_refs({k: v for k, v in resource.items() if k not in ("meta", "text")})
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _identifier(resource: dict[str, Any]) -> tuple[str, str]:
    ids = resource.get("identifier")
    if isinstance(ids, dict):
        ids = [ids]
    ids = [i for i in ids or () if i.get("value")]
    primary = [i for i in ids if i.get("use") != "secondary"] or ids
    if primary:
        return (primary[0].get("system") or f"urn:speciosa:no-system:{resource['resourceType']}",
                str(primary[0]["value"]))
    if resource.get("id"):
        return f"urn:speciosa:source-id:{resource['resourceType']}", str(resource["id"])
    raise _Bad("give the resource an identifier (or an id) so that a re-import recognises it")


def _folded(text: Any) -> str:
    """A name compared without case, accents, hyphens or extra spaces."""
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(plain.replace("-", " ").replace("'", "").split())


def _mrn_key(value: str) -> str:
    """An identifier value compared without case, spaces, punctuation or leading zeros."""
    plain = "".join(ch for ch in str(value).casefold() if ch.isalnum())
    return re.sub(r"(?<!\d)0+(?=\d)", "", plain)


def _person_key(p: cm.Patient) -> tuple[str, str, dt.date]:
    return _folded(p.family_name), _folded(p.given_name), p.birth_date


def _shown(ident: dict[str, Any]) -> str:
    return f"{ident.get('system') or '(no system)'}|{ident.get('value')}"


def _identifiers_of(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The identifiers with a value (and a text system, when one is given)."""
    ids = res.get("identifier")
    if isinstance(ids, dict):
        ids = [ids]
    if not isinstance(ids, list):
        return []
    return [i for i in ids if isinstance(i, dict) and isinstance(i.get("value"), (str, int))
            and str(i["value"]) and isinstance(i.get("system"), (str, type(None)))]


def _demographics_disagree(res: dict[str, Any], patient: cm.Patient) -> list[str]:
    """What of a Patient resource's birth date, sex and family name disagrees with the chart
    (empty: they agree, or were not given). Says what the resource holds, never the chart."""
    wrong = []
    birth = res.get("birthDate")
    if isinstance(birth, str) and birth and not patient.birth_date.isoformat().startswith(birth):
        wrong.append(f"birth date {birth}")
    gender = res.get("gender")
    if gender not in (None, "", "unknown") and gender != patient.sex:
        wrong.append(f"sex {gender!r}")
    families = [_folded(n.get("family")) for n in res.get("name") or ()
                if isinstance(n, dict) and n.get("family")]
    if families and _folded(patient.family_name) not in families:
        wrong.append(f"family name {families[0]!r}")
    return wrong


class _Patients:
    """Finds the patient a resource is about, refusing every match that is not certain.

    A patient is matched only on an identifier's system **and** value, for a system trusted
    at the patient's site (the site's own MRN system, or a
    :class:`~speciosa.interop.models.TrustedIdentifierSystem`); when the import carries the
    patient's demographics (a ``Patient`` resource named by ``subject.reference`` or with
    the same identifier), their birth date, sex and family name must agree with the chart.
    With ``create`` (the operator's ``--create-patients``, for seeding), a ``Patient``
    resource whose trusted identifier matches nobody becomes a new, still unsaved patient at
    ``site``; the first file stored that needs it saves it.
    """

    def __init__(self, site: cm.Site | None, *, create: bool = False,
                 care_team: cm.CareTeam | None = None) -> None:
        if create and site is None:
            raise ImportError_("creating patients needs the site to create them at (--site)")
        if care_team is not None and site is not None and care_team.site_id != site.pk:
            raise ImportError_(f"the care team {care_team.name!r} is not at {site.name}")
        self.site = site
        self.create = create
        self.care_team = care_team
        #: Provenance resources of the import by the reference of their target
        self.provenance: dict[str, dict[str, Any]] = {}
        #: Observations and Specimens of the import by reference (``Type/id``, fullUrl):
        #: the parts a urine panel's DiagnosticReport names (None: two, ambiguous)
        self.parts: dict[str, dict[str, Any] | None] = {}
        #: the references urine panels' DiagnosticReports name as results
        self.panel_results: set[str] = set()
        self.by_ref: dict[str, dict[str, Any] | None] = {}  # None: two resources, ambiguous
        self.by_ident: dict[tuple[str, str], dict[str, Any]] = {}
        self._cache: dict[tuple[str, str], cm.Patient] = {}
        self.unsaved: dict[tuple[int, str], cm.Patient] = {}
        sites = cm.Site.objects.all() if site is None else cm.Site.objects.filter(pk=site.pk)
        self.trusted: dict[str, set[int]] = {}
        #: name-derived systems several sites' names share (before issue 14) -> the names
        self.shared: dict[str, list[str]] = {}
        from .models import mrn_systems

        own = mrn_systems()
        legacy = Counter(c.legacy_mrn_system(n) for n in cm.Site.objects.values_list("name",
                                                                                    flat=True))
        for pk, name in sites.values_list("pk", "name"):
            self.trusted.setdefault(own[pk], set()).add(pk)
            # the system derived from the name alone (exports before issue 14) is still read;
            # when several sites' names share it, it names none of them for certain
            old = c.legacy_mrn_system(name)
            self.trusted.setdefault(old, set()).add(pk)
            if legacy[old] > 1:
                self.shared[old] = sorted({*self.shared.get(old, ()), name})
        rows = TrustedIdentifierSystem.objects.filter(site__in=sites)
        for pk, system in rows.values_list("site_id", "system"):
            self.trusted.setdefault(system, set()).add(pk)

    # -------------------------------------------------------------- Patient resources
    def _key(self, ref: str, res: dict[str, Any]) -> None:
        if ref in self.by_ref and self.by_ref[ref] is not res:
            self.by_ref[ref] = None
        else:
            self.by_ref[ref] = res

    def add_patient_resource(self, res: dict[str, Any], full_url: str | None = None) -> None:
        """Remember a ``Patient`` resource by its ``fullUrl``, ``Patient/<id>`` and its
        identifiers, so that references to it resolve whatever the order of the import."""
        if res.get("id"):
            self._key(f"Patient/{res['id']}", res)
        if full_url:
            self._key(full_url, res)
            tail = full_url.rstrip("/").split("/")
            if len(tail) >= 2 and tail[-2] == "Patient" and "://" in full_url:
                self._key(f"Patient/{tail[-1]}", res)
        for ident in _identifiers_of(res):
            if ident.get("system"):
                self.by_ident[(ident["system"], str(ident["value"]))] = res

    def add_provenance(self, res: dict[str, Any]) -> None:
        """Remember a ``Provenance`` by each of its targets (``Type/id`` without a version,
        a ``urn:uuid:`` or an absolute URL), so the record it describes can read it."""
        for target in res.get("target") or ():
            ref = target.get("reference") if isinstance(target, dict) else None
            if isinstance(ref, str) and ref:
                for key in _ref_keys(ref):
                    self.provenance.setdefault(key, res)

    def add_part(self, res: dict[str, Any], full_url: str | None = None) -> None:
        """Remember an Observation or a Specimen a urine panel may name, and the results a
        panel's DiagnosticReport names (whatever the order or the file they are in)."""
        rtype = res.get("resourceType")
        if rtype == "DiagnosticReport":
            if itreatment.is_panel(res):
                for ref in res.get("result") or ():
                    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                        self.panel_results.update(_ref_keys(ref["reference"]))
            return
        keys = [full_url] if full_url else []
        if isinstance(res.get("id"), str):
            keys.append(f"{rtype}/{res['id']}")
        if full_url and "://" in full_url:
            keys += _ref_keys(full_url)[2:]
        for key in keys:
            if key in self.parts and self.parts[key] is not res:
                self.parts[key] = None
            else:
                self.parts[key] = res

    def part(self, ref: Any) -> dict[str, Any] | None:
        """The Observation or Specimen of the import ``ref`` (a Reference) names."""
        target = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(target, str):
            return None
        return next((self.parts[k] for k in _ref_keys(target) if self.parts.get(k)), None)

    def is_panel_part(self, res: dict[str, Any], full_url: str | None) -> bool:
        """An Observation that is part of a urine panel: a specimen validity measure, or an
        analyte a panel's DiagnosticReport of the import names (imported with it)."""
        if _codes(res.get("code"), c.CS_URINE_VALIDITY):
            return True
        keys = [full_url] if full_url else []
        if isinstance(res.get("id"), str):
            keys.append(f"Observation/{res['id']}")
        return any(k in self.panel_results for k in keys)

    def provenance_of(self, res: dict[str, Any], full_url: str | None) -> dict[str, Any] | None:
        keys = [full_url] if full_url else []
        if isinstance(res.get("id"), str):
            keys.append(f"{res['resourceType']}/{res['id']}")
        return next((self.provenance[k] for k in keys if k in self.provenance), None)

    def check_patient_resource(self, res: dict[str, Any]) -> cm.Patient | None:
        """The patient a ``Patient`` resource is (refusing a mismatch), a new unsaved one
        (``create``), or None when none of its identifiers is trusted here or it matches
        nobody (the resources that refer to it are refused then, saying so)."""
        usable = [i for i in _identifiers_of(res) if i.get("system") in self.trusted]
        if not usable:
            return None
        return self._identify(usable, res, "Patient", missing_ok=True)

    # -------------------------------------------------------------- matching
    def _find(self, system: str, value: str) -> cm.Patient | None:
        key = (system, value)
        if key in self._cache:
            return self._cache[key]
        sites = self.trusted[system]
        if system in self.shared and len(sites) > 1:
            raise _Bad(f"patient identifier system {system} was the system of several sites "
                       f"({', '.join(self.shared[system])}) before each site had its own: "
                       "name the site the file's patients are at (--site)")
        found = list(cm.Patient.objects.filter(site_id__in=sites, identifier=value)[:2])
        if len(found) > 1:
            raise _Bad(f"patient identifier {system}|{value} is trusted at several sites and "
                       "matches a patient at more than one; name the site to import into (--site)")
        if not found:
            found = [p for (site_pk, v), p in self.unsaved.items() if v == value and site_pk in sites]
        if found:
            self._cache[key] = found[0]
            return found[0]
        return None

    def _identify(self, usable: list[dict[str, Any]], res: dict[str, Any] | None,
                  what: str, *, missing_ok: bool = False) -> cm.Patient | None:
        matches: dict[int, tuple[cm.Patient, dict[str, Any]]] = {}
        for ident in usable:
            patient = self._find(ident["system"], str(ident["value"]))
            if patient is not None:
                matches.setdefault(id(patient), (patient, ident))
        if len(matches) > 1:
            shown = ", ".join(_shown(i) for _p, i in matches.values())
            raise _Mismatch(f"patient mismatch: {what}: the identifiers {shown} are different "
                       "patients in this clinic; nothing of this file is stored")
        if not matches:
            if self.create and res is not None and res.get("resourceType") == "Patient":
                return self._new_patient(res, usable)
            if missing_ok:
                return None
            shown = ", ".join(_shown(i) for i in usable)
            hint = (" (include its Patient resource to create it)" if self.create else
                    "; an operator seeding a new installation may create patients "
                    "(--create-patients)")
            raise _Bad(f"{what}: no patient with identifier {shown} in this clinic{hint}")
        patient, ident = next(iter(matches.values()))
        if res is not None:
            wrong = _demographics_disagree(res, patient)
            if wrong:
                raise _Mismatch(f"patient mismatch: {what}: the patient with identifier "
                           f"{_shown(ident)} in this clinic does not have the {', '.join(wrong)} "
                           "this import gives; refused, nothing of this file is stored")
        return patient

    def resolve(self, ref: Any, what: str = "subject", contained: Any = None) -> cm.Patient:
        """The patient ``ref`` (a Reference) is about; raises :class:`_Bad` saying why not.

        ``contained`` is the referring resource's ``contained`` list: a ``#id`` reference
        names a Patient there, whose identifiers and demographics count as a Bundle
        entry's do (never ignored in favour of ``ref.identifier``)."""
        if not isinstance(ref, dict):
            raise _Bad(f"{what}: refer to the patient (a Reference with an identifier)")
        res: dict[str, Any] | None = None
        candidates: list[dict[str, Any]] = []
        reference = ref.get("reference")
        if isinstance(reference, str) and reference.startswith("#"):
            found = [r for r in contained or () if isinstance(r, dict)
                     and r.get("resourceType") == "Patient" and r.get("id") == reference[1:]]
            if len(found) != 1:
                raise _Bad(f"{what}.reference {reference!r} names "
                           f"{'no' if not found else 'more than one'} contained Patient")
            res = found[0]
            candidates += _identifiers_of(res)
        elif reference:
            if reference in self.by_ref and self.by_ref[reference] is None:
                raise _Bad(f"{what}.reference {reference!r} names two different Patient "
                           "resources in this import")
            res = self.by_ref.get(reference)
            if res is not None:
                candidates += _identifiers_of(res)
            elif not isinstance(ref.get("identifier"), dict):
                raise _Bad(f"{what}.reference {reference!r} names no Patient resource in this "
                           f"import; include it, or give {what}.identifier (system and value)")
        if isinstance(ref.get("identifier"), dict) and ref["identifier"].get("value"):
            ident = ref["identifier"]
            candidates.append(ident)
            if res is None and ident.get("system"):
                res = self.by_ident.get((ident["system"], str(ident["value"])))
        if not candidates:
            raise _Bad(f"{what}: give the patient's identifier (system and value), or include "
                       "the Patient resource it refers to")
        usable = [i for i in candidates if i.get("system") in self.trusted]
        if not usable:
            reasons = []
            for i in candidates:
                if not i.get("system"):
                    reasons.append(f"identifier {i.get('value')!r} has no system (a patient is "
                                   "matched on system and value, never on a value alone)")
                else:
                    reasons.append(f"identifier system {i['system']!r} is not trusted "
                                   f"{'at ' + self.site.name if self.site else 'at any site'}")
            raise _Bad(f"patient not matched: {what}: {'; '.join(reasons)}. An administrator "
                       "marks a system trusted (admin: Trusted identifier systems) once its "
                       "values are known to be the site's record numbers")
        patient = self._identify(usable, res, what)
        assert patient is not None
        return patient

    def _new_patient(self, res: dict[str, Any], usable: list[dict[str, Any]]) -> cm.Patient:
        site = self.site
        assert site is not None  # create needs a site (checked in __init__)
        ident = next((i for i in usable if site.pk in self.trusted[i["system"]]), None)
        if ident is None:
            raise _Bad(f"Patient: none of its identifiers is trusted at {site.name}")
        value = str(ident["value"])
        names = [n for n in res.get("name") or () if isinstance(n, dict) and n.get("family")]
        given = (names[0].get("given") or [""])[0] if names else ""
        if not names or not given:
            raise _Bad("Patient: give the family and given name to create the patient")
        if res.get("gender") not in (cm.Sex.FEMALE, cm.Sex.MALE):
            raise _Bad(f"Patient: gender {res.get('gender')!r}; Speciosa's reference ranges "
                       "need female or male to create the patient")
        team = self.care_team
        if team is None:
            teams = list(cm.CareTeam.objects.filter(site=site)[:2])
            if len(teams) != 1:
                raise _Bad(f"Patient: {site.name} has {len(teams) or 'no'} care teams; name the "
                           "one new patients join (--care-team)")
            team = self.care_team = teams[0]
        patient = cm.Patient(
            site=site, care_team=team, identifier=value, given_name=str(given),
            family_name=str(names[0]["family"]), birth_date=_date(res.get("birthDate"), "birthDate"),
            sex=res["gender"], pregnant=bool(_ext(res, c.EXT_PREGNANT)),
            breastfeeding=bool(_ext(res, c.EXT_BREASTFEEDING)))
        since = _ext(res, c.EXT_IN_CARE_SINCE)
        if since is not None:  # the sender's entry into care: the chart's records' window
            patient.in_care_since = _date(since, "extension[in-care-since]")
        try:
            patient.full_clean(exclude=["site", "care_team", "user"], validate_unique=False)
        except ValidationError as exc:
            raise _Bad(f"Patient: {_validation_reason(exc)}") from None
        self._refuse_likely_duplicate(patient)
        self.unsaved[(site.pk, value)] = patient
        self._cache[(ident["system"], value)] = patient
        return patient

    def _refuse_likely_duplicate(self, new: cm.Patient) -> None:
        """A patient is created only when nobody at the site is likely the same person: an
        identifier that differs only in case, spaces, punctuation or leading zeros, or the
        same family and given name and birth date (a seeding import never guesses)."""
        key, person = _mrn_key(new.identifier), _person_key(new)
        rows = cm.Patient.objects.filter(site=new.site).values_list(
            "identifier", "family_name", "given_name", "birth_date")
        others = [(i, (_folded(f), _folded(g), b)) for i, f, g, b in rows]
        others += [(p.identifier, _person_key(p)) for (site_pk, _v), p in self.unsaved.items()
                   if site_pk == new.site_id]
        for identifier, other in others:
            if _mrn_key(identifier) == key or other == person:
                same = "an identifier that differs only in case, spaces, punctuation or " \
                    "leading zeros" if _mrn_key(identifier) == key else "the same name and " \
                    "birth date"
                raise _Bad(f"Patient: not created: {new.site.name} already has a patient with "
                           f"{same} ({identifier!r}); likely the same person. Check the "
                           "identifier; an administrator merges or corrects the chart")

    def saved(self, patient: cm.Patient) -> None:
        """``patient`` (created by this import) is in the database now."""
        self.unsaved.pop((patient.site_id, patient.identifier), None)

    def forget(self, patients: Iterable[cm.Patient]) -> None:
        """A file's transaction was rolled back: the patients it created are unsaved again."""
        for p in patients:
            p.pk = None
            self.unsaved[(p.site_id, p.identifier)] = p


# ---------------------------------------------------------------------- conversion

def _lab_fields(res: dict[str, Any], patient: cm.Patient) -> dict[str, Any]:
    code = res.get("code") or {}
    method = None
    own = _codes(code, c.CS_LAB)
    lab = None
    if own:
        try:
            lab = klabs.get_lab(own[0])
        except klabs.LabValueError as exc:
            raise _Bad(str(exc)) from None
    else:
        for loinc in _codes(code, c.LOINC):
            for candidate in klabs.all_labs():
                if candidate.loinc == loinc or loinc in candidate.loinc_by_unit.values():
                    lab = candidate
                    break
                for m, mloinc in candidate.method_loinc.items():
                    if mloinc == loinc:
                        lab, method = candidate, m
                        break
                if lab:
                    break
            if lab:
                break
    if lab is None:
        raise _Bad("code: not a laboratory test Speciosa knows (give its LOINC code or a "
                   f"{c.CS_LAB} code)")
    methods = _codes(res.get("method"), c.CS_LAB_METHOD) or ([method] if method else [])
    when = res.get("effectiveDateTime") or (res.get("effectivePeriod") or {}).get("start") \
        or res.get("effectiveInstant")
    data: dict[str, Any] = {"lab": lab.code, "collected_at": _datetime(when, "effectiveDateTime"),
                            "method": methods[0] if methods else "",
                            "confirmed_unusual": bool(_ext(res, c.EXT_CONFIRMED_UNUSUAL))}
    if lab.kind == "qualitative":
        concept = res.get("valueCodeableConcept")
        result = (_codes(concept, c.CS_LAB_RESULT) or [(concept or {}).get("text") or res.get("valueString")])[0]
        try:
            data["result"] = klabs.normalise_result(lab.code, str(result or ""), data["method"] or None)
        except klabs.LabValueError as exc:
            raise _Bad(f"valueCodeableConcept: {exc}") from None
    else:
        q = res.get("valueQuantity")
        if not isinstance(q, dict) or q.get("value") is None:
            raise _Bad(f"valueQuantity: {lab.name} needs a value with its UCUM unit")
        data["value"] = Decimal(str(q["value"]))
        data["unit"] = q.get("code") or q.get("unit") or ""
        _loinc_agrees_with_unit(lab, code, data["unit"])
        data["comparator"] = q.get("comparator") or ""
        data.update(_laboratory_range(res, data["unit"]))
        factor = _ext(res, c.EXT_IU_FACTOR)
        if factor is not None:
            data["iu_factor"] = factor
        interpretation = res.get("interpretation")
        if interpretation:
            if not isinstance(interpretation, list):
                raise _Bad("interpretation: a list of coded concepts")
            data["reported_interpretation"] = interpretation
    try:
        return services.validate_lab(patient, data)
    except services.NeedsConfirmation as exc:
        raise _Bad(f"{_validation_reason(exc)} If the value is right, mark it with the extension "
                   f"{c.EXT_CONFIRMED_UNUSUAL} = true.") from None
    except ValidationError as exc:
        raise _Bad(_validation_reason(exc)) from None


def _loinc_agrees_with_unit(lab: klabs.LabTest, code: dict[str, Any], unit: str) -> None:
    """Refuse a result whose LOINC code names another property than its unit (prolactin
    2842-3, mass per volume, with a value in m[IU]/L, whose code is 15081-3): one of the two
    is wrong, and Speciosa cannot tell which (a factor of about 21 for prolactin). It is
    never recoded silently; the policy is in docs/fhir.md ("LOINC and units")."""
    own = {lab.loinc, *lab.loinc_by_unit.values()}
    expected = klabs.loinc_for(lab.code, unit)
    for given in _codes(code, c.LOINC):
        if given in own and expected and given != expected:
            raise _Bad(f"code: LOINC {given} and the unit {unit!r} disagree: a {lab.name} "
                       f"result in {unit} is LOINC {expected}. Speciosa does not guess which "
                       f"of the two is wrong (it does not recode {given} to {expected}): send "
                       "the code of the unit, or the value in the unit of the code. Not "
                       "imported (docs/fhir.md, LOINC and units)")


def _laboratory_range(res: dict[str, Any], value_unit: str) -> dict[str, Any]:
    """The reporting laboratory's range (the first ``referenceRange`` with a limit that is
    not marked as a catalogue's fallback) as ``reference_low``/``reference_high`` with its
    unit; ``{}`` when there is none."""
    for rr in res.get("referenceRange") or ():
        if not isinstance(rr, dict):
            raise _Bad("referenceRange: each range is an object with low and/or high")
        limits = {k: rr.get(k) for k in ("low", "high") if isinstance(rr.get(k), dict)}
        if not limits or rr.get("text") == c.CATALOGUE_RANGE_TEXT:
            # a range given only as text cannot be read against; a catalogue's fallback
            # range (Speciosa's own export) is not the laboratory's: this catalogue's is used
            continue
        units = {q.get("code") or q.get("unit") or value_unit for q in limits.values()}
        if len(units) > 1:
            raise _Bad(f"referenceRange: low and high are in different units ({', '.join(units)})")
        out: dict[str, Any] = {"reference_unit": units.pop()}
        for key, q in limits.items():
            if q.get("value") is None:
                raise _Bad(f"referenceRange.{key}: give the limit's value")
            out[f"reference_{key}"] = Decimal(str(q["value"]))
        return out
    return {}


#: Instruments by the LOINC code of their panel (a Questionnaire an EHR names
#: ``http://loinc.org/q/44249-1``) and of their total (a total-only Observation).
PANEL_INSTRUMENT = {code: inst for inst, (code, _display) in c.PANEL_LOINC.items()}
TOTAL_INSTRUMENT = {code: inst for inst, (code, _display) in c.SCORE_LOINC.items()}
#: The instrument's item id by its LOINC item code (a linkId an EHR may use).
ITEM_BY_LOINC = {inst: {code: item for item, code in items.items()}
                 for inst, items in c.ITEM_LOINC.items()}


def _instrument_for(canonical: Any) -> tuple[kinstruments.Instrument, str | None]:
    """The instrument a ``questionnaire`` canonical names: Speciosa's
    ``.../Questionnaire/<id>``, or the instrument's LOINC panel (``http://loinc.org/q/44249-1``
    or any URL ending in the panel code), with its ``|version`` if given."""
    if not isinstance(canonical, str) or not canonical:
        raise _Bad("questionnaire: name the Questionnaire (canonical URL)")
    url, _, version = canonical.partition("|")
    inst_id = url.rstrip("/").rsplit("/", 1)[-1]
    if inst_id in PANEL_INSTRUMENT:
        return kinstruments.get_instrument(PANEL_INSTRUMENT[inst_id]), None
    try:
        return kinstruments.get_instrument(inst_id), version or None
    except kinstruments.InstrumentError as exc:
        raise _Bad(f"questionnaire: {exc}") from None


def _loinc_answer(inst: kinstruments.Instrument, link: Any, code: Any) -> int:
    """The item value a LOINC answer code stands for (PHQ-9, GAD-7 anchors)."""
    item = next((it for it in inst.items if it.id == link), None)
    value = next((v.value for v in (item.values if item else ())
                  if c.answer_loinc(inst.id, v.anchor) == code), None)
    if value is None:
        raise _Bad(f"item {link!r}: LOINC answer {code!r} is not an answer of this item")
    return value


def _assessment_fields(res: dict[str, Any], patient: cm.Patient) -> dict[str, Any]:
    inst, version = _instrument_for(res.get("questionnaire"))
    if version and version != inst.version:
        raise _Bad(f"questionnaire: version {version!r} of {inst.label}; this installation scores "
                   f"version {inst.version!r}")
    items: dict[str, Any] = {}
    by_loinc = ITEM_BY_LOINC.get(inst.id, {})
    for item in res.get("item") or ():
        link = item.get("linkId")
        if link in TOTAL_INSTRUMENT:
            continue  # the sender's total: the one scorer computes it from the items
        link = by_loinc.get(link, link)
        answers = item.get("answer") or []
        if not answers:
            continue
        ans = answers[0]
        if "valueCoding" in ans and ans["valueCoding"].get("system") == c.LOINC:
            value = _loinc_answer(inst, link, ans["valueCoding"].get("code"))
        elif "valueCoding" in ans:
            value = ans["valueCoding"].get("code")
        elif "valueInteger" in ans:
            value = ans["valueInteger"]
        elif "valueDecimal" in ans:
            value = ans["valueDecimal"]
        else:
            raise _Bad(f"item {link!r}: answer with valueCoding (the option's code) or valueInteger")
        if link in items:
            raise _Bad(f"item {link!r} is answered twice")
        items[link] = value
    complete = res.get("status") in ("completed", "amended")
    try:
        _inst, clean, score = services.validate_items(inst.id, items, sex=patient.sex,
                                                      require_complete=complete)
    except ValidationError as exc:
        raise _Bad(_validation_reason(exc)) from None
    except (kinstruments.InstrumentError, TypeError) as exc:
        raise _Bad(str(exc)) from None
    return {"at": _authored(res, patient), "note": str(_ext(res, c.EXT_NOTE) or "")[:500],
            **writes.assessment_fields(inst, clean, score)}


def _total_instrument(res: dict[str, Any]) -> kinstruments.Instrument | None:
    """The instrument whose total an Observation is (its LOINC total code, or Speciosa's
    score code), or None."""
    for code in _codes(res.get("code"), c.LOINC):
        if code in TOTAL_INSTRUMENT:
            return kinstruments.get_instrument(TOTAL_INSTRUMENT[code])
    for code in _codes(res.get("code"), c.CS_SCORE):
        try:
            return kinstruments.get_instrument(code)
        except kinstruments.InstrumentError as exc:
            raise _Bad(f"code: {exc}") from None
    return None


def _total_fields(inst: kinstruments.Instrument, res: dict[str, Any],
                  patient: cm.Patient) -> dict[str, Any]:
    """An instrument total sent as an Observation: an assessment without items, its band
    and the flags a total alone can show (those that need items, such as PHQ-9 item 9,
    cannot be read: the safety rules say so)."""
    q = res.get("valueQuantity")
    raw = q.get("value") if isinstance(q, dict) else res.get("valueInteger")
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw != int(raw):
        raise _Bad(f"valueQuantity: the {inst.label} total as a whole number")
    total = int(raw)
    try:
        flags = kinstruments.flags_for_total(inst, total, sex=patient.sex)
    except kinstruments.InstrumentError as exc:
        raise _Bad(f"valueQuantity: {exc}") from None
    at = _datetime(res.get("effectiveDateTime"), "effectiveDateTime")
    try:
        writes.in_window(patient, at, "effectiveDateTime")
    except ValidationError as exc:
        raise _Bad(_validation_reason(exc)) from None
    band = inst.band_for(total)
    return {"instrument": inst.id, "instrument_version": inst.version, "items": {},
            "total": total, "band": band.label if band else "", "complete": False,
            "flags": list(flags), "at": at, "note": ""}


def _authored(res: dict[str, Any], patient: cm.Patient) -> dt.datetime:
    at = _datetime(res.get("authored"), "authored")
    try:
        writes.in_window(patient, at, "authored")
    except ValidationError as exc:
        raise _Bad(_validation_reason(exc)) from None
    return at


def _substance_fields(name: str, when: Any, field: str, res: dict[str, Any],
                      patient: cm.Patient) -> dict[str, Any]:
    """A substance use (from a MedicationStatement or a social-history Observation)."""
    if name not in services.SUBSTANCES:
        raise _Bad(f"unknown substance {name!r}; use one of {', '.join(services.SUBSTANCES)}")
    at = _datetime(when, field)
    try:
        writes.in_window(patient, at, field)
    except ValidationError as exc:
        raise _Bad(_validation_reason(exc)) from None
    detail = " ".join(n.get("text", "") for n in res.get("note") or ()).strip()[:200]
    return {"at": at, "name": name, "detail": detail}


#: ``MedicationStatement.status`` of a medication (not kratom, not a substance use): every
#: status is stored on the medication as sent (``Medication.status``, which the safety rules
#: read: ``active`` and ``unknown`` count as taken, within the start and stop days; on hold,
#: intended and not taken do not). Completed and stopped need the day it ended
#: (``effectivePeriod.end``), so a stopped medication is never current (and never raises a
#: co-use alert); ``active`` with an end in the past is refused (which is right?).
MEDICATION_STATUS: dict[str, str | None] = {
    "active": None, "completed": None, "stopped": None, "on-hold": None, "intended": None,
    "not-taken": None, "unknown": None,
}


def _statement(res: dict[str, Any], patient: cm.Patient) -> tuple[type, dict[str, Any]]:
    """The model and fields of a MedicationStatement (fields empty when it withdraws an
    earlier import, ``entered-in-error``)."""
    concept = res.get("medicationCodeableConcept")
    if not isinstance(concept, dict):
        raise _Bad("medicationCodeableConcept: say what was taken (Speciosa does not read a "
                   "medicationReference)")
    substance = _codes(concept, c.CS_SUBSTANCE)
    text = (concept.get("text") or "").strip()
    withdrawn = res.get("status") == WITHDRAWN
    if c.KRATOM_CODE in substance or (not substance and "kratom" in text.lower()):
        if withdrawn:
            return cm.Dose, {}
        _status(res, USE_STATUS, "kratom dose")
        dosage = (res.get("dosage") or [{}])[0]
        qty = ((dosage.get("doseAndRate") or [{}])[0]).get("doseQuantity") or {}
        unit = _ext(res, c.EXT_DOSE_UNIT)
        if unit is None:
            by_ucum = {"g": "g", "{capsule}": "capsule", "{capsules}": "capsule",
                       "{glass}": "glass"}
            unit = by_ucum.get(qty.get("code") or "")
            if unit is None and qty.get("code") == "mg":
                raise _Bad("dosage.doseQuantity: mg of what? Mark the unit with the extension "
                           f"{c.EXT_DOSE_UNIT} (mg_extract, mg_mitragynine or mg_7oh)")
        product = _ext(res, c.EXT_PRODUCT)
        if product is None and text and text != c.KRATOM_DISPLAY:
            product = text
        data = {"taken_at": _datetime(res.get("effectiveDateTime"), "effectiveDateTime"),
                "amount": qty.get("value"), "unit": unit, "product": product or "",
                "mitragynine_percent": _ext(res, c.EXT_MITRAGYNINE_PERCENT),
                "grams_per_capsule": _ext(res, c.EXT_GRAMS_PER_CAPSULE)}
        try:
            return cm.Dose, services.validate_dose(data, patient)
        except ValidationError as exc:
            raise _Bad(_validation_reason(exc)) from None
    if substance:
        if withdrawn:
            return cm.SubstanceUse, {}
        _status(res, USE_STATUS, "substance use")
        return cm.SubstanceUse, _substance_fields(substance[0], res.get("effectiveDateTime"),
                                                  "effectiveDateTime", res, patient)
    if withdrawn:
        return cm.Medication, {}
    raise _MedicationList


class _MedicationList(Exception):
    """Not a dose or a substance use: a medication of the list (:func:`_medication`)."""


#: ``MedicationRequest.status`` of a prescription -> the medication's status, or why refused.
REQUEST_STATUS: dict[str, str | None] = {
    "active": None, "completed": None, "stopped": None,
    "on-hold": None, "unknown": None,
    "cancelled": "a cancelled prescription was never taken (send the MedicationStatement "
                 "'not-taken' if the list should say so)",
    "draft": "a draft prescription is not issued yet",
}
#: ``MedicationRequest.intent`` taken as a prescription of the medication list.
REQUEST_INTENTS = ("order", "original-order", "reflex-order", "filler-order", "instance-order")

_TEXT = {"text": True}
_CONCEPT = {"text": True, "coding": True}
_QUANTITY = {"value": True, "unit": True, "system": True, "code": True}
_DOSAGE = {"text": True, "route": _CONCEPT, "timing": {"code": _CONCEPT},
           "doseAndRate": {"doseQuantity": _QUANTITY}}
#: The elements of a medication's MedicationStatement / MedicationRequest the import reads
#: (anything else present is named in the report as not kept). ``text`` is the narrative
#: (generated from the data), ``meta`` the sender's bookkeeping.
MEDICATION_READ: dict[str, dict[str, Any]] = {
    "MedicationStatement": {
        "resourceType": True, "id": True, "meta": True, "text": True, "identifier": True,
        "status": True, "statusReason": _CONCEPT, "category": True,
        "medicationCodeableConcept": True, "subject": True, "contained": True,
        "effectiveDateTime": True, "effectivePeriod": {"start": True, "end": True},
        "dateAsserted": True, "informationSource": True, "basedOn": True,
        "reasonCode": _CONCEPT, "reasonReference": {"display": True}, "note": _TEXT,
        "dosage": _DOSAGE, "extension": True},
    "MedicationRequest": {
        "resourceType": True, "id": True, "meta": True, "text": True, "identifier": True,
        "status": True, "statusReason": _CONCEPT, "intent": True, "category": True,
        "medicationCodeableConcept": True, "subject": True, "contained": True,
        "authoredOn": True, "requester": {"display": True, "reference": True, "type": True,
                                          "identifier": True},
        "reasonCode": _CONCEPT, "reasonReference": {"display": True}, "note": _TEXT,
        "dosageInstruction": {**_DOSAGE, "timing": {
            "code": _CONCEPT, "repeat": {"boundsPeriod": {"start": True, "end": True}}}},
        "extension": True},
}
_MEDICATION_EXTENSIONS = {c.EXT_STRENGTH, c.EXT_FORM, c.EXT_MEDICATION_CATEGORY,
                          c.EXT_PRESCRIBER, c.EXT_PRESCRIBER_NAME}


def _unread(value: Any, spec: Any, path: str) -> list[str]:
    """The paths of ``value`` that ``spec`` (``True``: read whole; a dict: the keys read,
    each with its own spec; a list's items each against the spec) does not read."""
    if spec is True:
        return []
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _unread(v, spec, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return []
    out = []
    for key, sub in value.items():
        if key not in spec:
            out.append(f"{path}.{key}")
        else:
            out += _unread(sub, spec[key], f"{path}.{key}")
    return out


def _concept_text(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    return str(concept.get("text") or next((cd.get("display") for cd in concept.get("coding")
                                             or () if isinstance(cd, dict) and cd.get("display")),
                                            "") or "").strip()


def _ucum_unit(quantity: dict[str, Any], known: tuple[str, ...], ucum: Any) -> str:
    """Speciosa's unit of a UCUM quantity (``ug`` is mcg, ``{tablet}`` tablet), or ``""``."""
    by_ucum = {v: k for k, v in ucum.items()}
    for raw in (quantity.get("code"), quantity.get("unit")):
        if not isinstance(raw, str) or not raw:
            continue
        if raw in by_ucum:
            return by_ucum[raw]
        plain = raw.strip("{}").rstrip("s") if raw.startswith("{") else raw
        if plain in known:
            return plain
    return ""


def _route(concept: Any) -> tuple[str, bool]:
    """``(route key, whether the concept was read)`` of a Dosage route."""
    from speciosa.clinic.medications import ROUTES

    if not isinstance(concept, dict):
        return "", False
    by_snomed = {code: key for key, (code, _d) in c.ROUTE_SNOMED.items()}
    for cd in concept.get("coding") or ():
        if not isinstance(cd, dict):
            continue
        if cd.get("system") == c.CS_ROUTE and cd.get("code") in ROUTES:
            return cd["code"], True
        if cd.get("system") == c.SNOMED and cd.get("code") in by_snomed:
            return by_snomed[cd["code"]], True
    text = _concept_text(concept).lower()
    for key, label in ROUTES.items():
        if text in (key, label) or text == f"{key} route":
            return key, True
    return "", False


def _medication(res: dict[str, Any], patient: cm.Patient
                ) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """A medication of the list from a MedicationStatement or a MedicationRequest: the
    fields :func:`speciosa.clinic.medications.validate_medication` returns (the same checks
    as the form and the API), the sender's codings Speciosa's own do not hold (kept and
    exported again) and the warnings: each element not kept, by path."""
    from speciosa.clinic import medications as cmedications
    from speciosa.knowledge import drugs as kdrugs

    rtype = res["resourceType"]
    request = rtype == "MedicationRequest"
    warnings = [f"not kept: {p}" for p in _unread(res, MEDICATION_READ[rtype], rtype)]
    if request:
        intent = res.get("intent")
        if intent not in REQUEST_INTENTS:
            raise _Bad(f"intent {intent!r}: only a prescription (intent order) goes on the "
                       "medication list; a plan or proposal is not a medication taken")
        status = _status(res, REQUEST_STATUS, "prescription")
    else:
        status = _status(res, MEDICATION_STATUS, "medication statement")
    concept = res.get("medicationCodeableConcept") or {}
    name = str(concept.get("text") or next((cd.get("display") or cd.get("code")
                                            for cd in concept.get("coding") or ()), "")).strip()
    if not name:
        raise _Bad("medicationCodeableConcept: give the medication's name (text or coding)")
    drug, rxnorm, codings = "", "", []
    for cd in concept.get("coding") or ():
        if not isinstance(cd, dict):
            continue
        if cd.get("system") == c.CS_DRUG and not drug:
            drug = str(cd.get("code") or "")
        elif cd.get("system") == c.RXNORM and not rxnorm and any(
                d.rxnorm == str(cd.get("code")) for d in kdrugs.all_drugs()):
            rxnorm = str(cd["code"])  # an ingredient RxCUI of the drug table
        elif cd.get("system", "").startswith(c.CODE_BASE):
            warnings.append(f"not kept: {rtype}.medicationCodeableConcept.coding "
                            f"{cd.get('system')}|{cd.get('code')} (not a Speciosa code)")
        else:  # a clinical drug, NDC, SNOMED CT code ...: kept as sent, exported again
            codings.append({k: cd[k] for k in ("system", "version", "code", "display") if k in cd})
    if rxnorm and not drug:
        entry = next(d for d in kdrugs.all_drugs() if d.rxnorm == rxnorm)
        drug = entry.name
    dosages = res.get("dosageInstruction" if request else "dosage") or []
    if not isinstance(dosages, list):
        dosages = [dosages]
    key = "dosageInstruction" if request else "dosage"
    dosage = dosages[0] if dosages and isinstance(dosages[0], dict) else {}
    warnings += [f"not kept: {rtype}.{key}[{i}] (only the first dosage is kept)"
                 for i in range(1, len(dosages))]
    data: dict[str, Any] = {"name": name[:120], "drug": drug, "rxnorm": rxnorm,
                            "status": status}
    route, read = _route(dosage.get("route"))
    if dosage.get("route") and not read:
        warnings.append(f"not kept: {rtype}.{key}[0].route ({_concept_text(dosage['route'])!r}"
                        " is none of Speciosa's routes)")
    data["route"] = route
    rates = dosage.get("doseAndRate") or []
    qty = (rates[0] if rates and isinstance(rates[0], dict) else {}).get("doseQuantity")
    if isinstance(qty, dict) and qty.get("value") is not None:
        unit = _ucum_unit(qty, cmedications.DOSE_UNITS, c.MEDICATION_DOSE_UCUM)
        if unit:
            data["dose_amount"], data["dose_unit"] = qty["value"], unit
        else:
            warnings.append(f"not kept: {rtype}.{key}[0].doseAndRate[0].doseQuantity (unit "
                            f"{qty.get('code') or qty.get('unit')!r} is none of Speciosa's)")
    warnings += [f"not kept: {rtype}.{key}[0].doseAndRate[{i}]" for i in range(1, len(rates))]
    timing = dosage.get("timing") or {}
    frequency = _concept_text(timing.get("code"))
    text = str(dosage.get("text") or "").strip()
    data["frequency"] = frequency
    notes = " ".join(str(n.get("text") or "") for n in res.get("note") or ()
                     if isinstance(n, dict)).strip()
    ext = {e.get("url"): e for e in res.get("extension") or () if isinstance(e, dict)}
    strength = (ext.get(c.EXT_STRENGTH) or {}).get("valueQuantity")
    if isinstance(strength, dict) and strength.get("value") is not None:
        data["strength"] = strength["value"]
        data["strength_unit"] = _ucum_unit(strength, cmedications.STRENGTH_UNITS,
                                           c.MEDICATION_STRENGTH_UCUM) or strength.get("unit")
    data["form"] = (ext.get(c.EXT_FORM) or {}).get("valueCode") or ""
    data["category"] = (ext.get(c.EXT_MEDICATION_CATEGORY) or {}).get("valueCode") or ""
    data["prescriber"] = (ext.get(c.EXT_PRESCRIBER) or {}).get("valueCode") or (
        cm.Prescriber.OUTSIDE if request else cm.Prescriber.UNKNOWN)
    data["prescriber_name"] = (ext.get(c.EXT_PRESCRIBER_NAME) or {}).get("valueString") or (
        str((res.get("requester") or {}).get("display") or "") if request else "")
    for url in ext:
        if url in (c.EXT_CONFIRMED_BY, c.EXT_CONFIRMED_AT):
            warnings.append(f"not kept: {rtype}.extension[{url}] (a confirmation by a "
                            "clinician of another installation; confirm it here)")
        elif url not in _MEDICATION_EXTENSIONS:
            warnings.append(f"not kept: {rtype}.extension[{url}]")
    if request and (res.get("requester") or {}).get("reference") and not data["prescriber_name"]:
        warnings.append(f"not kept: {rtype}.requester.reference (give requester.display)")
    # the dosage as the sender wrote it, when it says more than the structured fields
    generated = _export_dosage_text(data)
    if text and text != generated:
        if not frequency and len(text) <= 80:
            data["frequency"] = text
        else:
            notes = f"Dosage as sent: {text}" + (f"\n{notes}" if notes else "")
    data["notes"] = notes[:2000]
    reasons = [_concept_text(r) for r in res.get("reasonCode") or ()]
    for i, r in enumerate(res.get("reasonCode") or ()):
        if isinstance(r, dict) and r.get("coding"):
            warnings.append(f"not kept: {rtype}.reasonCode[{i}].coding (kept as text: "
                            f"{_concept_text(r)!r})")
    reasons += [str(r.get("display") or "") for r in res.get("reasonReference") or ()
                if isinstance(r, dict)]
    data["indication"] = "; ".join(r for r in reasons if r)[:200]
    data["stop_reason"] = _concept_text((res.get("statusReason") or [None])[0]
                                        if isinstance(res.get("statusReason"), list)
                                        else res.get("statusReason"))
    for i, r in enumerate(res.get("statusReason") or () if isinstance(
            res.get("statusReason"), list) else ()):
        if isinstance(r, dict) and r.get("coding"):
            warnings.append(f"not kept: {rtype}.statusReason[{i}].coding (kept as text)")
    if request:
        period = ((timing.get("repeat") or {}).get("boundsPeriod") or {})
        start_raw = period.get("start") or res.get("authoredOn")
        where = f"{key}[0].timing.repeat.boundsPeriod"
    else:
        period = res.get("effectivePeriod") or {}
        start_raw = period.get("start") or res.get("effectiveDateTime")
        where = "effectivePeriod"
    if not isinstance(start_raw, str) or not start_raw:
        raise _Bad(f"{where}.start: give the day the medication was started")
    start = _date(start_raw, f"{where}.start")
    end = _date(period["end"], f"{where}.end") if period.get("end") else None
    if end and end < start:
        raise _Bad(f"{where}: the end is before the start")
    if start > timezone.localdate() + dt.timedelta(days=1):
        raise _Bad(f"{where}.start is in the future")
    if status in ("completed", "stopped") and end is None:
        raise _Bad(f"status {status!r} without {where}.end: Speciosa's medication list "
                   "holds a medication that ended only with the day it ended (without it the "
                   f"medication would be read as current); give {where}.end")
    if status == "active" and end is not None and end < timezone.localdate():
        raise _Bad(f"status 'active' with {where}.end {end.isoformat()} in the past: "
                   "say which is right (completed or stopped, or the end to come)")
    data["start"] = start_raw if len(start_raw) > 10 else start
    data["end"] = (period["end"] if len(period["end"]) > 10 else end) if end else None
    system, value = _identifier(res)
    exclude = tuple(ImportedResource.objects.filter(
        resource_type=rtype, system=system[:255],
        value=value[:255], model="Medication").values_list("object_id", flat=True))
    if system == c.sid("medication") and value.isdigit():
        # this installation's own export coming back (left out later): not a duplicate of itself
        chain = {int(value)}
        while True:
            more = set(cm.Medication.objects.filter(replaces_id__in=chain, patient=patient)
                       .values_list("pk", flat=True)) - chain
            if not more:
                break
            chain |= more
        exclude += tuple(chain)
    # a medication started before the window of the chart's records (an EHR's medication
    # history: taken for years) keeps its start; every other check applies
    earliest = writes.earliest_date(patient)
    started = (data["start"], start)
    if start < earliest:
        data["start"] = earliest
    try:
        fields = cmedications.validate_medication(patient, data, exclude=exclude)
        if start < earliest:
            fields["start"] = start
            fields["start_at"] = _datetime(started[0], f"{where}.start") \
                if isinstance(started[0], str) else None
    except ValidationError as exc:
        reason = _validation_reason(exc)
        raise _Bad(reason.replace("start:", f"{where}.start:").replace("end:", f"{where}.end:")
                   ) from None
    return fields, codings, warnings


def _export_dosage_text(data: dict[str, Any]) -> str:
    from .export import dosage_text

    amount = data.get("dose_amount")
    return dosage_text({"dose_amount": Decimal(str(amount)) if amount is not None else None,
                        "dose_unit": data.get("dose_unit", ""), "route": data.get("route", ""),
                        "frequency": data.get("frequency", "")})


def _is_lab(res: dict[str, Any]) -> bool:
    cats = [cd.get("code") for cat in res.get("category") or () for cd in cat.get("coding") or ()]
    if "laboratory" in cats:
        return True
    if cats:
        return False
    return bool(_codes(res.get("code"), c.CS_LAB))


# ---------------------------------------------------------------------- the import

#: What the import does with each ``Observation.status`` (labs and substance use): ``None``
#: stores it and keeps the status (exported again as received); a text refuses the resource
#: with that reason. ``entered-in-error`` withdraws what an earlier import stored under the
#: same identifier (nothing to do when there is none). Stated in docs/fhir.md.
OBSERVATION_STATUS: dict[str, str | None] = {
    "final": None, "amended": None, "corrected": None,
    "preliminary": "Speciosa stores only final results (its safety rules read every stored "
                   "result as final); import the result when the laboratory releases it as "
                   "final, amended or corrected",
    "registered": "the test is ordered but there is no result yet",
    "cancelled": "the test was cancelled: there is no result",
    "unknown": "the sender does not know the result's status (unknown); Speciosa cannot "
               "tell a final result from a preliminary one",
}

#: ``QuestionnaireResponse.status``: completed and amended are stored complete, in-progress
#: as incomplete (scored as far as answered); entered-in-error withdraws.
RESPONSE_STATUS: dict[str, str | None] = {
    "completed": None, "amended": None, "in-progress": None,
    "stopped": "the response was stopped before it was finished and will not be completed",
}

#: ``MedicationStatement.status`` of a kratom dose or a substance use (a use at one time).
USE_STATUS: dict[str, str | None] = {
    "completed": None, "active": None,
    "intended": "an intended use is not a use: nothing was taken",
    "not-taken": "not taken: nothing was taken",
    "stopped": "a dose or a use is taken at one time; 'stopped' says nothing was taken then",
    "on-hold": "a dose or a use on hold was not taken",
    "unknown": "the sender does not know whether it was taken (unknown)",
}

WITHDRAWN = "entered-in-error"


def _status(res: dict[str, Any], policy: dict[str, str | None], what: str) -> str:
    status = res.get("status")
    if status == WITHDRAWN:
        return status
    if status not in policy:
        raise _Bad(f"status {status!r}: not a FHIR status of a {what}")
    why = policy[status]
    if why is not None:
        raise _Bad(f"status {status!r}: {why}. Not imported (docs/fhir.md, status policy)")
    return status


def _reporter(ref: Any, subject: Any, patients: _Patients) -> tuple[str, dict[str, Any] | None]:
    """``(reported_by, author)`` of a reference to who reported a resource: ``patient`` when
    it names the subject (the same reference, or a Patient resource of the import with the
    same identifiers); otherwise the reference's display and identifier, never the
    reference itself (it names a resource on the sender's server)."""
    if not isinstance(ref, dict):
        return "", None
    target = ref.get("reference")
    subject = subject if isinstance(subject, dict) else {}
    if isinstance(target, str) and target:
        if target == subject.get("reference"):
            return ImportedResource.ReportedBy.PATIENT, None
        named = patients.by_ref.get(target)
        mine = patients.by_ref.get(subject.get("reference") or "")
        if named is not None and named is mine:
            return ImportedResource.ReportedBy.PATIENT, None
    ident = ref.get("identifier")
    if isinstance(ident, dict) and ident == subject.get("identifier"):
        return ImportedResource.ReportedBy.PATIENT, None
    kept = {k: ref[k] for k in ("display", "identifier") if k in ref}
    kind = str(ref.get("type") or (target or "").split("/")[0].rsplit(":", 1)[-1])
    if kind in ("Practitioner", "PractitionerRole"):
        return ImportedResource.ReportedBy.PRACTITIONER, kept or None
    return ImportedResource.ReportedBy.OTHER, kept or None


def _ref_keys(ref: str) -> list[str]:
    """A reference as it is looked up: as written, without ``/_history/<n>``, and the last
    ``Type/id`` of an absolute URL."""
    plain = ref.split("/_history/")[0]
    keys = [ref, plain]
    parts = plain.rstrip("/").split("/")
    if "://" in plain and len(parts) >= 2:
        keys.append("/".join(parts[-2:]))
    return keys


#: Provenance agent types that say who reported a record (author, informant, enterer).
_REPORTING_AGENTS = ("author", "informant", "enterer", "source", "attester")


def _from_provenance(prov: dict[str, Any] | None, subject: Any, patients: _Patients,
                     sender: dict[str, Any]) -> None:
    """Fill who reported a record and when it was first recorded from its ``Provenance``,
    where the record itself does not say (``performer``, ``author``, ``informationSource``,
    ``issued``): the patient when a reporting agent names the subject, otherwise the
    ``author`` agent; ``occurredDateTime`` (else ``recorded``) as the recorded time."""
    if not prov:
        return
    agents = [a for a in prov.get("agent") or () if isinstance(a, dict)]

    def kind(agent: dict[str, Any]) -> str:
        codes = _codes(agent.get("type"), c.PROVENANCE_AGENT)
        return codes[0] if codes else ("author" if not agent.get("type") else "")

    if not sender.get("reported_by"):
        found: tuple[str, dict[str, Any] | None] = ("", None)
        for agent in agents:
            if kind(agent) in _REPORTING_AGENTS:
                by, author = _reporter(agent.get("who"), subject, patients)
                if by == ImportedResource.ReportedBy.PATIENT:
                    found = (by, None)
                    break
                if kind(agent) == "author" and not found[0]:
                    found = (by, author)
        if found[0]:
            sender["reported_by"], sender["author"] = found
    if not sender.get("recorded_at"):
        when = prov.get("occurredDateTime") or prov.get("recorded")
        sender["recorded_at"] = _recorded(when, "Provenance.occurredDateTime")


def _recorded(value: Any, what: str) -> dt.datetime | None:
    """The sender's recording time (``issued``, ``dateAsserted``); a date without a time
    is not a time and is not kept."""
    if not isinstance(value, str) or len(value) <= 10:
        return None
    return _datetime(value, what)


def _other_codings(concept: Any, ours: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The sender's codings that Speciosa's own coding of the concept does not repeat."""
    out = []
    for cd in (concept or {}).get("coding") or () if isinstance(concept, dict) else ():
        if not isinstance(cd, dict) or (cd.get("system"), cd.get("code")) in ours:
            continue
        if cd.get("system", "").startswith(c.CODE_BASE):
            continue
        out.append({k: cd[k] for k in ("system", "version", "code", "display") if k in cd})
    return out


def _panel_fields(res: dict[str, Any], patient: cm.Patient,
                  patients: _Patients) -> tuple[dict[str, Any], list[str]]:
    """A urine panel's fields as :func:`speciosa.clinic.urine.validate_panel` returns them
    (the same checks as the form), from its DiagnosticReport and the parts it names."""
    from speciosa.clinic import urine

    refs = [*(res.get("specimen") or ()), *(res.get("result") or ())]
    parts = {r["reference"]: patients.part(r) for r in refs
             if isinstance(r, dict) and isinstance(r.get("reference"), str)}
    for ref, part in parts.items():  # every part about this patient: never another's result
        if part is not None and part.get("subject") is not None:
            other = patients.resolve(part["subject"], contained=part.get("contained"))
            if other is not patient and (other.pk is None or other.pk != patient.pk):
                raise _Mismatch(f"patient mismatch: {ref} of this panel is about another "
                                "patient; a panel's results and specimen are the patient's own")
    try:
        data, warnings = itreatment.panel_data(res, parts)
    except itreatment.Refused as exc:
        raise _Bad(str(exc)) from None
    data["collected_at"] = _datetime(data["collected_at"], "effectiveDateTime")
    try:
        return urine.validate_panel(patient, data), warnings
    except ValidationError as exc:
        raise _Bad(_validation_reason(exc)) from None


def _imported_as(res: dict[str, Any], patient: cm.Patient) -> tuple[int, ...]:
    """The row an earlier import stored under this resource's identifier (for this
    patient), whose next version the resource would be: an episode does not overlap its own
    earlier version."""
    try:
        system, value = _identifier(res)
    except _Bad:
        return ()
    known = ImportedResource.objects.filter(
        resource_type=res["resourceType"], system=system[:255], value=value[:255],
        patient=patient).order_by("-version").first()
    return (known.object_id,) if known else ()


def _episode_fields(res: dict[str, Any], patient: cm.Patient, sender: dict[str, Any],
                    exclude: tuple[int, ...] = ()) -> tuple[dict[str, Any], list[str]]:
    """A treatment episode's fields as :func:`speciosa.clinic.treatment.validate_episode`
    returns them (the same checks as the form and the API; ``exclude``: the earlier version
    it updates); the episode a dose change follows is kept in ``sender["follows"]`` until
    the rows exist."""
    from speciosa.clinic import treatment

    try:
        data, follows, reason, warnings = itreatment.episode_data(res)
    except itreatment.Refused as exc:
        raise _Bad(str(exc)) from None
    try:
        fields = treatment.validate_episode(patient, data, exclude=exclude)
    except services.NeedsConfirmation as exc:
        raise _Bad(f"{_validation_reason(exc)} If the dose is right, mark it with the extension "
                   f"{c.EXT_DOSE_CONFIRMED} = true.") from None
    except ValidationError as exc:
        raise _Bad(_validation_reason(exc)) from None
    if follows:
        sender["follows"] = follows
        fields["change_reason"] = reason
    return fields, warnings


@dataclass
class _Converted:
    model: type
    patient: cm.Patient
    fields: dict[str, Any]
    sender: dict[str, Any]
    withdraw: bool = False
    warnings: list[str] = field(default_factory=list)


def _convert(res: dict[str, Any], patients: _Patients,
             full_url: str | None = None) -> _Converted | None:
    """The record a resource becomes, with who reported it and when (from the resource,
    else from its Provenance in the import)."""
    converted = _convert_resource(res, patients)
    if converted is not None:
        _from_provenance(patients.provenance_of(res, full_url), res.get("subject"), patients,
                         converted.sender)
    return converted


def _convert_resource(res: dict[str, Any], patients: _Patients) -> _Converted | None:
    rtype = res["resourceType"]
    subject = res.get("subject")
    sender: dict[str, Any] = {"source_status": res.get("status") or ""}
    if rtype == "Observation":
        total_of = _total_instrument(res)
        if total_of is not None:
            if res.get("derivedFrom"):
                return None  # a total derived from a response: the response is imported
            status = _status(res, OBSERVATION_STATUS, "total score")
            patient = patients.resolve(subject, contained=res.get("contained"))
            performers = res.get("performer") or [None]
            sender["reported_by"], sender["author"] = _reporter(performers[0], subject, patients)
            sender["recorded_at"] = _recorded(res.get("issued"), "issued")
            if status == WITHDRAWN:
                return _Converted(cm.Assessment, patient, {}, sender, withdraw=True)
            return _Converted(cm.Assessment, patient, _total_fields(total_of, res, patient),
                              sender)
        used = _codes(res.get("code"), c.CS_SUBSTANCE_USE)
        if not used and not _is_lab(res):
            return None  # derived scores and other observations are not imported
        status = _status(res, OBSERVATION_STATUS, "result")
        patient = patients.resolve(subject, contained=res.get("contained"))
        performers = res.get("performer") or [None]
        sender["reported_by"], sender["author"] = _reporter(performers[0], subject, patients)
        sender["recorded_at"] = _recorded(res.get("issued"), "issued")
        model = cm.SubstanceUse if used else cm.LabResult
        if status == WITHDRAWN:
            return _Converted(model, patient, {}, sender, withdraw=True)
        warnings = _unkept(res, SUBSTANCE_OBSERVATION_READ if used else LAB_READ)
        if used:  # substance use, exported as a social-history Observation
            fields = _substance_fields(used[0], res.get("effectiveDateTime"),
                                       "effectiveDateTime", res, patient)
            sender["codings"] = _other_codings(res.get("code"), set())
            return _Converted(model, patient, fields, sender, warnings=warnings)
        fields = _lab_fields(res, patient)
        sender["codings"] = _other_codings(res.get("code"), {(c.LOINC, fields.get("loinc"))})
        ranges = [r for r in res.get("referenceRange") or () if isinstance(r, dict)
                  and (r.get("low") or r.get("high"))]
        warnings += [f"not kept: Observation.referenceRange[{i}] (only the laboratory's first "
                     "range is kept)" for i in range(1, len(ranges))]
        return _Converted(model, patient, fields, sender, warnings=warnings)
    if rtype == "QuestionnaireResponse":
        status = _status(res, RESPONSE_STATUS, "questionnaire response")
        patient = patients.resolve(subject, contained=res.get("contained"))
        by, author = _reporter(res.get("author"), subject, patients)
        if by != ImportedResource.ReportedBy.PATIENT and isinstance(res.get("source"), dict):
            source_by, _ = _reporter(res["source"], subject, patients)
            by = source_by if source_by == ImportedResource.ReportedBy.PATIENT else by
        sender["reported_by"], sender["author"] = by, author
        if status == WITHDRAWN:
            return _Converted(cm.Assessment, patient, {}, sender, withdraw=True)
        return _Converted(cm.Assessment, patient, _assessment_fields(res, patient), sender)
    if rtype == "DiagnosticReport":
        if not itreatment.is_panel(res):
            return None
        patient = patients.resolve(subject, contained=res.get("contained"))
        performers = res.get("performer") or [None]
        sender["reported_by"], sender["author"] = _reporter(performers[0], subject, patients)
        sender["recorded_at"] = _recorded(res.get("issued"), "issued")
        if res.get("status") == WITHDRAWN:
            return _Converted(cm.UrinePanel, patient, {}, sender, withdraw=True)
        _status(res, OBSERVATION_STATUS, "urine drug test panel")
        fields, warnings = _panel_fields(res, patient, patients)
        return _Converted(cm.UrinePanel, patient, fields, sender, warnings=warnings)
    if rtype == "MedicationStatement" and itreatment.is_episode(res):
        patient = patients.resolve(subject, contained=res.get("contained"))
        sender.update(reported_by=_reporter(res.get("informationSource"), subject, patients)[0],
                      author=_reporter(res.get("informationSource"), subject, patients)[1],
                      recorded_at=_recorded(res.get("dateAsserted"), "dateAsserted"))
        if res.get("status") == WITHDRAWN:
            return _Converted(cm.TreatmentEpisode, patient, {}, sender, withdraw=True)
        _status(res, itreatment.EPISODE_STATUS, "treatment episode")
        fields, warnings = _episode_fields(res, patient, sender, _imported_as(res, patient))
        return _Converted(cm.TreatmentEpisode, patient, fields, sender, warnings=warnings)
    if rtype == "MedicationStatement":
        patient = patients.resolve(subject, contained=res.get("contained"))
        by, author = _reporter(res.get("informationSource"), subject, patients)
        categories = _codes(res.get("category"), c.MS_CATEGORY)
        if "patientspecified" in categories and not author:
            by = ImportedResource.ReportedBy.PATIENT
        sender.update(reported_by=by, author=author,
                      recorded_at=_recorded(res.get("dateAsserted"), "dateAsserted"))
        try:
            model, fields = _statement(res, patient)
        except _MedicationList:
            fields, sender["codings"], warnings = _medication(res, patient)
            return _Converted(cm.Medication, patient, fields, sender, warnings=warnings)
        if res.get("status") == WITHDRAWN:
            return _Converted(model, patient, {}, sender, withdraw=True)
        return _Converted(model, patient, fields, sender, warnings=_unkept(
            res, DOSE_READ if model is cm.Dose else SUBSTANCE_STATEMENT_READ))
    if rtype == "MedicationRequest":
        patient = patients.resolve(subject, contained=res.get("contained"))
        by, author = _reporter(res.get("requester"), subject, patients)
        sender.update(reported_by=by, author=author,
                      recorded_at=_recorded(res.get("authoredOn"), "authoredOn"))
        if res.get("status") == WITHDRAWN:
            return _Converted(cm.Medication, patient, {}, sender, withdraw=True)
        if not isinstance(res.get("medicationCodeableConcept"), dict):
            raise _Bad("medicationCodeableConcept: say what is prescribed (Speciosa does not "
                       "read a medicationReference)")
        fields, sender["codings"], warnings = _medication(res, patient)
        return _Converted(cm.Medication, patient, fields, sender, warnings=warnings)
    if rtype == "DocumentReference":
        if not _is_clinical_note(res):
            return None
        patient = patients.resolve(subject, contained=res.get("contained"))
        authors = res.get("author") or [None]
        sender["reported_by"], sender["author"] = _reporter(authors[0], subject, patients)
        sender["recorded_at"] = _recorded(res.get("date"), "date")
        if res.get("status") == WITHDRAWN or res.get("docStatus") == WITHDRAWN:
            sender["source_status"] = WITHDRAWN
            return _Converted(cm.Note, patient, {}, sender, withdraw=True)
        _status(res, NOTE_STATUS, "document reference")
        doc_status = res.get("docStatus") or "final"
        if doc_status not in NOTE_DOC_STATUS:
            raise _Bad(f"docStatus {doc_status!r}: not a FHIR docStatus")
        if NOTE_DOC_STATUS[doc_status]:
            raise _Bad(f"docStatus {doc_status!r}: {NOTE_DOC_STATUS[doc_status]}. Not imported "
                       "(docs/fhir.md, status policy)")
        sender["source_status"] = doc_status
        fields, warnings = _note_fields(res, patient)
        warnings += [f"not kept: DocumentReference.author[{i}] (the first author is kept)"
                     for i in range(1, len(res.get("author") or ()))]
        return _Converted(cm.Note, patient, fields, sender, warnings=warnings)
    return None


#: ``DocumentReference.status`` of a note: ``current`` is imported; ``entered-in-error``
#: withdraws what an earlier import stored.
NOTE_STATUS: dict[str, str | None] = {
    "current": None,
    "superseded": "a note replaced by another; import the current one",
}
#: ``DocumentReference.docStatus``: ``final`` and ``amended`` are kept (exported again as
#: received); a draft is refused.
NOTE_DOC_STATUS: dict[str, str | None] = {
    "final": None, "amended": None,
    "preliminary": "a note still being written is not part of the record yet",
}
_NOTE_TYPES = {(c.LOINC, c.NOTE_LOINC[0]), (c.CS_NOTE_TYPE, "clinical-note")}
_NOTE_READ = {
    "resourceType": True, "id": True, "meta": True, "text": True, "identifier": True,
    "status": True, "docStatus": True, "type": True, "category": True, "subject": True,
    "contained": True, "date": True, "author": True,
    "content": {"attachment": {"contentType": True, "data": True, "title": True,
                               "creation": True, "language": True, "size": True, "hash": True},
                "format": True},
    "context": {"period": {"start": True}},
}


_COMMON_READ = {"resourceType": True, "id": True, "meta": True, "text": True,
                "identifier": True, "status": True, "category": True, "subject": True,
                "contained": True}
#: What the import reads of a lab Observation, a substance-use Observation, a kratom dose's
#: and a substance use's MedicationStatement (anything else is reported as not kept, with
#: its path, as for medications). A dose's mitragynine estimate and conversion note are
#: recomputed by the one converter, so read.
LAB_READ: dict[str, Any] = {
    **_COMMON_READ, "code": True, "effectiveDateTime": True, "effectivePeriod": {"start": True},
    "effectiveInstant": True, "issued": True, "performer": True,
    "valueQuantity": {**_QUANTITY, "comparator": True}, "valueCodeableConcept": True,
    "valueString": True, "interpretation": True, "method": True,
    "referenceRange": {"low": _QUANTITY, "high": _QUANTITY, "text": True},
    "extension": {"url": True, "valueBoolean": True, "valueDecimal": True}}
SUBSTANCE_OBSERVATION_READ: dict[str, Any] = {
    **_COMMON_READ, "code": True, "effectiveDateTime": True, "issued": True, "performer": True,
    "valueBoolean": True, "note": _TEXT}
DOSE_READ: dict[str, Any] = {
    **_COMMON_READ, "medicationCodeableConcept": True, "effectiveDateTime": True,
    "dateAsserted": True, "informationSource": True, "extension": True,
    "dosage": {"text": True, "doseAndRate": {"doseQuantity": _QUANTITY}}}
SUBSTANCE_STATEMENT_READ: dict[str, Any] = {
    **_COMMON_READ, "medicationCodeableConcept": True, "effectiveDateTime": True,
    "dateAsserted": True, "informationSource": True, "note": _TEXT}
_KNOWN_EXTENSIONS = {
    "Observation": {c.EXT_CONFIRMED_UNUSUAL, c.EXT_IU_FACTOR},
    "MedicationStatement": {c.EXT_DOSE_UNIT, c.EXT_PRODUCT, c.EXT_MITRAGYNINE_PERCENT,
                            c.EXT_GRAMS_PER_CAPSULE, c.EXT_MITRAGYNINE_MG,
                            c.EXT_CONVERSION_NOTE}}


def _unkept(res: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """The warnings for what of ``res`` the import does not read (``spec``): each element by
    path, an unknown extension by its URL, a second performer or dosage."""
    rtype = res["resourceType"]
    out = [f"not kept: {p}" for p in _unread({k: v for k, v in res.items() if k != "extension"},
                                              spec, rtype)]
    known = _KNOWN_EXTENSIONS.get(rtype, set())
    out += [f"not kept: {rtype}.extension[{e.get('url')}]" for e in res.get("extension") or ()
            if isinstance(e, dict) and e.get("url") not in known]
    for key in ("performer", "dosage"):
        if key in spec and isinstance(res.get(key), list) and len(res[key]) > 1:
            out += [f"not kept: {rtype}.{key}[{i}] (only the first is kept)"
                    for i in range(1, len(res[key]))]
    return out


def _is_clinical_note(res: dict[str, Any]) -> bool:
    """A DocumentReference Speciosa takes as a note: US Core's ``clinical-note`` category,
    or the note type Speciosa exports (LOINC 11506-3, Speciosa's ``clinical-note``)."""
    cats = {(cd.get("system"), cd.get("code")) for cat in res.get("category") or ()
            if isinstance(cat, dict) for cd in cat.get("coding") or () if isinstance(cd, dict)}
    kinds = {(cd.get("system"), cd.get("code")) for cd in (res.get("type") or {}).get("coding")
             or () if isinstance(cd, dict)}
    return (c.DOC_CATEGORY, "clinical-note") in cats or bool(kinds & _NOTE_TYPES)


def _note_fields(res: dict[str, Any], patient: cm.Patient) -> tuple[dict[str, Any], list[str]]:
    """A note's text (the plain-text attachments, decoded) and the time it is about
    (``context.period.start``, else ``date``), with what is not kept."""
    import base64
    import binascii

    warnings = [f"not kept: {p}" for p in _unread(res, _NOTE_READ, "DocumentReference")]
    texts = []
    for i, content in enumerate(res.get("content") or ()):
        att = (content or {}).get("attachment") or {}
        kind = str(att.get("contentType") or "").split(";")[0].strip().lower()
        if kind not in ("text/plain", "") or "data" not in att:
            why = (f"contentType {att.get('contentType')!r}: Speciosa keeps notes as plain text"
                   if kind not in ("text/plain", "") else
                   "no data: Speciosa does not fetch an attachment's url")
            warnings.append(f"not kept: DocumentReference.content[{i}] ({why})")
            continue
        try:
            texts.append(base64.b64decode(str(att["data"]), validate=True).decode("utf-8"))
        except (binascii.Error, ValueError):
            raise _Bad(f"content[{i}].attachment.data: not base64 of UTF-8 text") from None
    text = "\n\n".join(t.strip() for t in texts if t.strip())
    if not text:
        raise _Skip("DocumentReference (no plain-text content: not imported)")
    if len(text) > 5000:
        raise _Bad(f"content: the note has {len(text)} characters; a note holds at most 5,000")
    period = (res.get("context") or {}).get("period") or {}
    when = period.get("start") or res.get("date")
    at = _datetime(when, "context.period.start")
    try:
        writes.in_window(patient, at, "context.period.start")
    except ValidationError as exc:
        raise _Bad(_validation_reason(exc)) from None
    return {"at": at, "text": text}, warnings


_OWN_KIND = {cm.LabResult: "lab", cm.Assessment: "assessment", cm.Dose: "dose",
             cm.SubstanceUse: "substance", cm.Medication: "medication", cm.Note: "note",
             cm.TreatmentEpisode: "episode", cm.UrinePanel: "urine-panel"}


def _drop_native(pending: list[_Pending], report: FileReport) -> None:
    """Our own export imported back into the same installation: those rows are already here
    (same id, same patient), so they are left out."""
    here: set[tuple[type, int, int]] = set()
    for model, kind in _OWN_KIND.items():
        pks = [int(p.value) for p in pending if p.model is model and p.system == c.sid(kind)
               and p.value.isdigit()]
        for i in range(0, len(pks), 900):
            here.update((model, pk, patient_id) for pk, patient_id in model.objects.filter(
                pk__in=pks[i:i + 900]).values_list("pk", "patient_id"))
    if not here:
        return
    keep = []
    for p in pending:
        if p.value.isdigit() and (p.model, int(p.value), p.patient.pk) in here \
                and p.system == c.sid(_OWN_KIND[p.model]):
            report.unchanged += 1
        else:
            keep.append(p)
    pending[:] = keep


def _describe(res: Any, full_url: str | None) -> str:
    """How a problem names the resource: its type and identifier, id or fullUrl."""
    if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
        return full_url or ""
    rtype = res["resourceType"]
    ids = _identifiers_of(res)
    if ids:
        return f"{rtype} {_shown(ids[0])}"
    if isinstance(res.get("id"), str):
        return f"{rtype}/{res['id']}"
    return f"{rtype} {full_url}" if full_url else rtype


def import_file(path: Path, patients: _Patients, *, user=None, validate_models: bool = True,
                per_resource: bool = False) -> FileReport:
    """Import one file: all or nothing, or (``per_resource``) every resource without a
    problem. See the module docstring."""
    report = FileReport(file=path.name, per_resource=per_resource)
    pending: list[_Pending] = []
    seen: dict[tuple[str, str, str], int] = {}
    known: dict[str, dict[tuple[str, str], str]] = {}
    entries = list(_read_file(path))
    # Patients first, so that references resolve whatever the order of the file
    for _line, res, full_url in entries:
        if isinstance(res, dict) and res.get("resourceType") == "Patient":
            patients.add_patient_resource(res, full_url)
        elif isinstance(res, dict) and res.get("resourceType") == "Provenance":
            patients.add_provenance(res)
        elif isinstance(res, dict) and res.get("resourceType") in _PART_TYPES:
            patients.add_part(res, full_url)
    new_patients: list[tuple[int, cm.Patient]] = []
    statements, based_on = _statement_keys(entries)
    for line, res, full_url in entries:
        try:
            if isinstance(res, _Bad):
                raise res
            if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
                raise _Bad("expected a FHIR resource with a resourceType")
            rtype = res["resourceType"]
            if rtype not in IMPORTED_TYPES and rtype != "Patient":
                report.skipped[rtype] += 1  # read for nothing: not validated either
                continue
            if rtype == "Observation" and patients.is_panel_part(res, full_url):
                report.skipped["Observation (part of a urine drug test panel: imported with "
                               "its DiagnosticReport)"] += 1
                continue
            if rtype in IMPORTED_TYPES:
                if rtype not in known:
                    # the latest version's digest (ascending versions: the last one wins)
                    known[rtype] = {(s_, v_): (d_, p_) for s_, v_, d_, p_ in
                                    ImportedResource.objects.filter(resource_type=rtype).order_by(
                                        "version").values_list("system", "value", "digest",
                                                               "patient_id").iterator(5000)}
                system, value = _identifier(res)
                digest, patient_id = known[rtype].get((system, value), (None, None))
                if digest == _content_digest(res, patients):
                    # the same content again: still about the same patient?
                    same = patients.resolve(res.get("subject"), contained=res.get("contained"))
                    if same.pk != patient_id:
                        raise _Mismatch(f"patient mismatch: {rtype} {system}|{value} was imported "
                                   "before into another patient's chart; an update never "
                                   "moves a record to another chart")
                    key = (rtype, system, value)
                    if key in seen:
                        raise _Bad(f"identifier {system}|{value} also on line {seen[key]} of "
                                   "this file")
                    seen[key] = line
                    report.unchanged += 1  # imported before, same content: nothing to do
                    continue
            if validate_models:
                try:
                    model_class(rtype).model_validate(res)
                except ModuleNotFoundError:
                    raise _Bad(f"unknown resourceType {rtype!r}") from None
                except ValueError as exc:  # pydantic.ValidationError is a ValueError
                    raise _Bad(_pydantic_reason(exc)) from None
            if rtype == "Patient":
                patient = patients.check_patient_resource(res)
                if patient is not None and patient.pk is None:
                    new_patients.append((line, patient))
                elif patient is None:
                    report.skipped["Patient (no chart here)"] += 1
                else:
                    report.skipped[rtype] += 1
                continue
            if rtype == "MedicationRequest" and _has_statement(res, full_url, statements,
                                                               based_on):
                report.skipped["MedicationRequest (the same medication as its "
                               "MedicationStatement)"] += 1
                continue
            try:
                converted = _convert(res, patients, full_url)
            except _Skip as skip:
                report.skipped[str(skip)] += 1
                continue
            if converted is None:
                report.skipped[f"{rtype} (not imported)"] += 1
                continue
            system, value = _identifier(res)
            key = (rtype, system, value)
            if key in seen:
                raise _Bad(f"identifier {system}|{value} also on line {seen[key]} of this file")
            seen[key] = line
            pending.append(_Pending(
                line, rtype, system, value, _content_digest(res, patients), converted.patient,
                converted.model,
                converted.fields, converted.sender, converted.warnings,
                action="withdraw" if converted.withdraw else "create"))
        except _Bad as exc:
            report.problems.append(Problem(path.name, line, str(exc), _describe(res, full_url),
                                           fatal=isinstance(exc, _Mismatch)))
    _refuse_overlapping_episodes(pending, report, path.name)
    if report.problems and not report.stored:
        return report
    _drop_native(pending, report)
    _check_known(pending, report, path.name)
    if report.problems and not report.stored:
        return report
    for p in pending:
        if p.patient.pk is None and all(q is not p.patient for _l, q in new_patients):
            new_patients.append((p.line, p.patient))
    try:
        _store(pending, new_patients, patients, report, path.name, user)
    except IntegrityError as exc:  # a concurrent import of the same file
        report.created.clear()
        report.patient_ids.clear()
        report.problems.append(Problem(path.name, 0, f"not stored: {exc}; import the file again"))
        return report
    report.warnings += [Problem(path.name, p.line, w, f"{p.resource_type} {p.system}|{p.value}")
                        for p in pending for w in p.warnings]
    return report


def _refuse_overlapping_episodes(pending: list[_Pending], report: FileReport, name: str) -> None:
    """Two episodes of one drug of the same patient in one import that overlap: refused as
    the form refuses the second (each is checked against the chart when converted, not yet
    against the others of the file)."""
    from speciosa.clinic import treatment

    seen: list[_Pending] = []
    keep = []
    for p in pending:
        if p.model is not cm.TreatmentEpisode or p.action == "withdraw":
            keep.append(p)
            continue
        f = p.fields
        clash = next((q for q in seen if (q.patient is p.patient or q.patient.pk == p.patient.pk)
                      and q.fields["drug"] == f["drug"]
                      and treatment.overlap(f["start"], f["end"], q.fields["start"],
                                            q.fields["end"])), None)
        if clash is not None:
            until = clash.fields["end"].isoformat() if clash.fields["end"] else "ongoing"
            report.problems.append(Problem(
                name, p.line, f"drug: a {f['drug']} episode of this import (line {clash.line}) "
                f"already runs from {clash.fields['start'].isoformat()} to {until}; two "
                "episodes of one drug cannot overlap", f"{p.resource_type} {p.system}|{p.value}"))
            continue
        seen.append(p)
        keep.append(p)
    pending[:] = keep


def _statement_keys(entries: list[tuple[int, Any, str | None]]
                    ) -> tuple[set[tuple[str, str]], set[str]]:
    """The identifiers of the file's MedicationStatements and what their ``basedOn`` names
    (references and ``system|value`` of identifiers)."""
    keys: set[tuple[str, str]] = set()
    named: set[str] = set()
    for _line, res, _url in entries:
        if not isinstance(res, dict) or res.get("resourceType") != "MedicationStatement":
            continue
        try:
            keys.add(_identifier(res))
        except _Bad:
            pass
        for ref in res.get("basedOn") or ():
            if isinstance(ref, dict):
                if isinstance(ref.get("reference"), str):
                    named.add(ref["reference"])
                ident = ref.get("identifier")
                if isinstance(ident, dict) and ident.get("value"):
                    named.add(f"{ident.get('system')}|{ident['value']}")
    return keys, named


def _has_statement(res: dict[str, Any], full_url: str | None, statements: set[tuple[str, str]],
                   based_on: set[str]) -> bool:
    """Whether a MedicationRequest is the same medication as a MedicationStatement of the
    import (the same identifier, or named by its ``basedOn``) or of an earlier import."""
    try:
        key = _identifier(res)
    except _Bad:
        return False
    if key in statements or ImportedResource.objects.filter(
            resource_type="MedicationStatement", system=key[0][:255], value=key[1][:255]).exists():
        return True
    names = {full_url, f"MedicationRequest/{res.get('id')}" if res.get("id") else None}
    names |= {f"{i.get('system')}|{i.get('value')}" for i in _identifiers_of(res)}
    return bool(names & based_on)


_MODELS = {m.__name__: m for m in _OWN_KIND}


def _check_known(pending: list[_Pending], report: FileReport, name: str) -> None:
    """Against what earlier imports stored under the same identifiers: the same content is
    left alone; new content is an update (a new version of the record); entered-in-error
    withdraws it. A change Speciosa cannot apply safely is refused, saying why."""
    latest: dict[tuple[str, str, str], ImportedResource] = {}
    for rtype in {p.resource_type for p in pending}:
        values = [p.value for p in pending if p.resource_type == rtype]
        for i in range(0, len(values), 900):
            for row in ImportedResource.objects.filter(
                    resource_type=rtype, value__in=values[i:i + 900]).order_by("version"):
                latest[(rtype, row.system, row.value)] = row
    keep = []
    for p in pending:
        known = latest.get((p.resource_type, p.system, p.value))
        what = f"{p.resource_type} {p.system}|{p.value}"
        if known is None:
            if p.action == "withdraw":
                report.skipped[f"{p.resource_type} entered-in-error (never imported)"] += 1
            else:
                keep.append(p)
            continue
        problem = None
        record = _MODELS[known.model].objects.filter(pk=known.object_id).first() \
            if known.model in _MODELS else None
        if known.patient_id != p.patient.pk:
            problem = (f"patient mismatch: {what} was imported before into another patient's "
                       "chart; an update never moves a record to another chart")
        elif known.digest == p.digest:
            report.unchanged += 1
            continue
        elif known.source_status == WITHDRAWN:
            problem = (f"{what} was withdrawn (entered-in-error) by an earlier import; "
                       "send it under a new identifier")
        elif record is None or known.model != p.model.__name__:
            problem = (f"{what} was imported before as a {known.model}, now it is a "
                       f"{p.model.__name__}; refused")
        elif record.superseded or record.retracted:
            problem = (f"{what} was corrected or withdrawn in Speciosa since it was imported; "
                       "the sender's new version is not applied over it: reconcile it by hand")
        if problem:
            report.problems.append(Problem(name, p.line, problem, what,
                                           fatal=problem.startswith("patient mismatch")))
            continue
        p.action = "withdraw" if p.action == "withdraw" else "update"
        p.replaces, p.version = record, known.version + 1
        keep.append(p)
    pending[:] = keep


def _imported(p: _Pending, row, name: str, now: dt.datetime) -> ImportedResource:
    sender = p.sender
    return ImportedResource(
        resource_type=p.resource_type, system=p.system[:255], value=p.value[:255],
        version=p.version, digest=p.digest, model=p.model.__name__, object_id=row.pk,
        patient=p.patient, file_name=name[:255], imported_at=now,
        source_status=str(sender.get("source_status") or "")[:24],
        recorded_at=sender.get("recorded_at"), reported_by=sender.get("reported_by") or "",
        author=sender.get("author"), codings=sender.get("codings") or [])


def _new_version(p: _Pending, entered_by, now: dt.datetime, name: str,
                 audits: list[cm.AuditEntry]):
    """Apply an update (a new version replacing ``p.replaces``, as a correction does) or a
    withdrawal (``p.replaces`` marked retracted), with its audit entry; returns the row the
    import now points at."""
    model = p.model
    locked = model.objects.select_for_update().get(pk=p.replaces.pk)
    if locked.superseded or locked.retracted:
        raise IntegrityError(f"{p.resource_type} {p.system}|{p.value} changed meanwhile")
    before = writes.snapshot(locked)
    reason = (f"FHIR import {name} line {p.line}: {p.resource_type} {p.system}|{p.value} "
              f"version {p.version} from the sender")
    if p.action == "withdraw":
        if model is cm.UrinePanel:  # the panel's analytes go with it
            for row in cm.LabResult.objects.select_for_update().filter(
                    panel=locked, superseded=False, retracted=False):
                old = writes.snapshot(row)
                cm.LabResult.objects.filter(pk=row.pk).update(
                    retracted=True, change_reason=f"{reason}: entered in error"[:500])
                row.refresh_from_db()
                audits.append(writes.audit_entry(entered_by, writes.Action.RETRACT, row,
                                                 patient=p.patient, at=now, before=old,
                                                 after=writes.snapshot(row),
                                                 reason=reason[:500]))
        model.objects.filter(pk=locked.pk).update(
            retracted=True, change_reason=f"{reason}: entered in error"[:500])
        locked.refresh_from_db()
        audits.append(writes.audit_entry(entered_by, writes.Action.RETRACT, locked,
                                         patient=p.patient, at=now, before=before,
                                         after=writes.snapshot(locked), reason=reason[:500]))
        return locked
    if model is cm.UrinePanel:
        return _store_panel(p, entered_by, now, name, replaces=locked)
    locked.superseded = True
    locked.save(update_fields=["superseded"])
    extra = {"diary": locked.diary} if hasattr(locked, "diary") and "diary" not in p.fields else {}
    fields = {k: v for k, v in p.fields.items() if k != "change_reason"}
    if model is cm.TreatmentEpisode:
        extra["follows"] = locked.follows
    new = model.objects.create(patient=p.patient, entered_by=entered_by, source=cm.Source.IMPORT,
                               entered_at=now, replaces=locked, change_reason=reason[:500],
                               **fields, **extra)
    audits.append(writes.audit_entry(entered_by, writes.Action.CORRECT, new, patient=p.patient,
                                     at=now, before=before, after=writes.snapshot(new),
                                     reason=reason[:500]))
    return new


def _store_panel(p: _Pending, entered_by, now: dt.datetime, name: str, *,
                 replaces=None) -> cm.UrinePanel:
    """A urine panel of the import with its analytes (audited as the form's), or its next
    version (``replaces``)."""
    from speciosa.clinic import urine

    reason = f"FHIR import {name} line {p.line}: {p.resource_type} {p.system}|{p.value}"
    if replaces is not None:
        reason += f" version {p.version} from the sender"
    panel = urine.store_panel(entered_by, p.patient, p.fields, source=cm.Source.IMPORT,
                              replaces=replaces, reason=reason, entered_at=now)
    return panel


def _link_follows(pending: list[_Pending], imported: list[ImportedResource],
                  audits: list[cm.AuditEntry]) -> None:
    """Point each imported episode that follows another (a dose change) at the row the
    sender's identifier of that episode became, in this import or an earlier one."""
    wanted = [p for p in pending if p.model is cm.TreatmentEpisode and p.sender.get("follows")]
    if not wanted:
        return
    rows = {(i.system, i.value): i.object_id for i in imported if i.model == "TreatmentEpisode"}
    for p in wanted:
        ref = p.sender["follows"]
        key = (ref["system"][:255], ref["value"][:255])
        target = rows.get(key)
        if target is None:
            earlier = ImportedResource.objects.filter(
                model="TreatmentEpisode", system=key[0], value=key[1],
                patient=p.patient).order_by("-version").first()
            target = earlier.object_id if earlier else None
        mine = next((i.object_id for i in imported if i.model == "TreatmentEpisode"
                     and (i.system, i.value) == (p.system[:255], p.value[:255])), None)
        if target is not None and mine is not None:
            cm.TreatmentEpisode.objects.filter(pk=mine).update(follows_id=target)


def _store(pending: list[_Pending], new_patients: list[tuple[int, cm.Patient]],
           patients: _Patients, report: FileReport, name: str, user) -> None:
    if not pending and not new_patients:
        return
    now = timezone.now()
    entered_by = user if getattr(user, "is_authenticated", False) else None
    created_patients: list[cm.Patient] = []
    try:
        with transaction.atomic():
            audits: list[cm.AuditEntry] = []
            for line, patient in new_patients:
                if cm.Patient.objects.filter(site=patient.site,
                                             identifier=patient.identifier).exists():
                    raise IntegrityError(f"a patient {patient.identifier!r} was added meanwhile")
                patient.save()
                created_patients.append(patient)
                audits.append(writes.audit_entry(
                    entered_by, writes.Action.CREATE, patient, patient=patient, at=now,
                    after=writes.snapshot(patient),
                    reason=f"FHIR import {name} line {line}: patient created (--create-patients)"))
            by_model: dict[type, list[_Pending]] = {}
            for p in pending:
                if p.action == "create":
                    by_model.setdefault(p.model, []).append(p)
            imported: list[ImportedResource] = []
            for p in by_model.pop(cm.UrinePanel, []):  # a panel is stored with its analytes
                row = _store_panel(p, entered_by, now, name)
                imported.append(_imported(p, row, name, now))
                report.created["UrinePanel"] += 1
                report.patient_ids.add(p.patient.pk)
            for model, items in by_model.items():
                rows = [model(patient=p.patient, entered_by=entered_by, source=cm.Source.IMPORT,
                              entered_at=now, **p.fields) for p in items]
                created = model.objects.bulk_create(rows, batch_size=500)
                for p, row in zip(items, created, strict=True):
                    imported.append(_imported(p, row, name, now))
                    audits.append(writes.audit_entry(
                        entered_by, writes.Action.CREATE, row, patient=p.patient, at=now,
                        after=writes.snapshot(row),
                        reason=f"FHIR import {name} line {p.line}: {p.resource_type} "
                               f"{p.system}|{p.value}"))
                report.created[model.__name__] += len(created)
                report.patient_ids.update(p.patient.pk for p in items)
            for p in pending:
                if p.action != "create":
                    row = _new_version(p, entered_by, now, name, audits)
                    imported.append(_imported(p, row, name, now))
                    counted = "withdrawn" if p.action == "withdraw" else "updated"
                    report.created[f"{p.model.__name__} ({counted})"] += 1
                    report.patient_ids.add(p.patient.pk)
            ImportedResource.objects.bulk_create(imported, batch_size=500)
            _link_follows(pending, imported, audits)
            writes.append_audit(audits)
            # bulk_create sends no post_save: an imported prolactin or hCG has its patient's
            # samples' pregnancy states read again here (speciosa.clinic.pregnancy)
            from speciosa.clinic import pregnancy

            for patient in {p.patient.pk: p.patient for p in pending
                            if p.fields.get("lab") in ("hcg", "prolactin")}.values():
                pregnancy.restate_samples(patient, entered_by, reevaluate=False)
    except BaseException:
        patients.forget(created_patients)
        raise
    for patient in created_patients:
        patients.saved(patient)
    if created_patients:
        report.created["Patient"] += len(created_patients)


def _audit_refusal(path: Path, report: FileReport, user) -> None:
    """One audit entry for a file the import refused, whole or in part: who tried (the user,
    and the operating-system account of a command-line import), which file (its name and
    SHA-256) and why (the problems, as reported). Nothing else of a refused file is stored."""
    import getpass

    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = ""
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        os_user = ""
    whole = not report.stored
    problems = [{"line": p.line, "resource": p.resource[:200], "message": p.message[:500],
                 "refuses_file": p.fatal} for p in report.problems[:50]]
    first = report.problems[0]
    reason = (f"FHIR import refused {'the file' if whole else 'resources of'} {path.name} "
              f"(sha256 {digest[:16]}): {len(report.problems)} problem(s); "
              f"line {first.line}: {first.message}")
    writes.append_audit([writes.audit_entry(
        user, cm.AuditEntry.Action.IMPORT_REFUSED, model="fhir-import", reason=reason[:500],
        after={"file": path.name[:255], "sha256": digest, "size": _size(path),
               "stored": "nothing" if whole else "the resources without a problem",
               "os_user": os_user, "problems": problems,
               "more_problems": max(0, len(report.problems) - len(problems))})])


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def import_fhir(path: str | Path, *, user=None, site: cm.Site | None = None,
                evaluate_safety: bool = True, validate_models: bool = True,
                create_patients: bool = False, care_team: cm.CareTeam | None = None,
                per_resource: bool = False) -> ImportReport:
    """Import a Bundle, an NDJSON file or a folder of NDJSON files; see the module docstring.

    Parameters
    ----------
    path : str or Path
    user : User, optional
        Recorded as ``entered_by`` and in the audit trail (the CLI imports without a login).
    site : Site, optional
        Match patients only at this site (still only for identifier systems it trusts).
    create_patients : bool
        The operator's option for seeding a new installation (never the default): a
        ``Patient`` resource whose trusted identifier matches nobody at ``site`` (required)
        creates that patient, in ``care_team`` (default: the site's only care team).
    per_resource : bool
        Store the resources of a file that have no problem and report the others (default:
        all or nothing per file). A patient mismatch still refuses the whole file.
    evaluate_safety : bool
        Re-evaluate the safety rules of every patient who got new records (the same hook
        every other write runs).
    validate_models : bool
        Validate each resource with the ``fhir.resources.R4B`` model first (default).

    Raises
    ------
    ImportError_
        If ``path`` does not exist or holds no importable files.
    """
    files = _files(Path(path))
    patients = _Patients(site, create=create_patients, care_team=care_team)
    # Patients first, so that references resolve whatever the file order.
    # (and medication statements before requests: a request with a statement's identifier
    # is the same medication, taken once)
    ordered = sorted(files, key=lambda p: (not p.name.startswith("Patient"),
                                           not p.name.startswith("MedicationStatement"), p.name))
    report = ImportReport()
    touched: set[int] = set()
    for f in ordered:  # Provenance files first read for who reported the records they name
        if f.name.startswith("Provenance"):
            for _line, res, _url in _read_file(f):
                if isinstance(res, dict) and res.get("resourceType") == "Provenance":
                    patients.add_provenance(res)
    # urine panels: their DiagnosticReports, then (when there are any) the Observations and
    # Specimens of every file, so that a panel finds its parts in the other files
    for prefixes in (("DiagnosticReport",), ("Observation", "Specimen")):
        if prefixes[0] == "Observation" and not patients.panel_results:
            break
        for f in ordered:
            if f.name.startswith(prefixes) and f.suffix == ".ndjson":
                for _line, res, url in _read_file(f):
                    if isinstance(res, dict) and res.get("resourceType") in _PART_TYPES:
                        patients.add_part(res, url)
    for f in ordered:
        fr = import_file(f, patients, user=user, validate_models=validate_models,
                         per_resource=per_resource)
        report.files.append(fr)
        if fr.problems:
            _audit_refusal(f, fr, user)
        if fr.stored:
            touched |= fr.patient_ids
    if evaluate_safety and touched:
        for patient in cm.Patient.objects.filter(pk__in=touched):
            writes.after_change(patient)
    return report

