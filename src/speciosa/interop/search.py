"""FHIR search on the exported resources: the parameters each type supports, and how a value
of each parameter type matches (https://hl7.org/fhir/R4/search.html).

:data:`PARAMS` is the one table of what is searchable: the ``/fhir/[type]`` search reads it
and ``/fhir/metadata`` declares exactly it, so the CapabilityStatement cannot promise a
parameter the server ignores.

Matching is done on the built resource (the same ``dict`` a read returns), so a search finds
what a client would see in the resource: ``identifier=system|value`` matches an
``identifier`` element of the resource, ``code=system|code`` a coding of ``code``.

Parameter types
---------------
- **token** ``[system]|[code]``: ``system|code``, ``code`` (any system), ``system|`` (any code
  of the system), ``|code`` (a code without a system); commas are OR.
- **reference** ``[type]/[id]``, ``[id]`` or an absolute URL ending in ``[type]/[id]``.
- **string**: case- and accent-insensitive *starts with*; ``:exact`` and ``:contains``.
- **uri**: exact match (a canonical ``url|version`` also matches its ``url``).
- **date**: every precision (``2026``, ``2026-01``, ``2026-01-05``, ``2026-01-05T10:00Z``,
  seconds and fractions) and every prefix (``eq ne lt gt le ge sa eb ap``) with the range
  semantics of the specification: a value stands for the range its precision implies, and
  so does the resource's (a ``date`` is a whole day, a ``Period`` its start to its end, open
  when it has no end). Values without a time of day are taken in UTC; a value with a time
  must give its time zone (the ``dateTime`` type requires it). ``ap`` widens the searched
  range by 10% of the time between now and the value (at least a day) on each side: the
  specification leaves the width to the server, and 10% is the figure it suggests.

A parameter repeated is AND; commas within one value are OR.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

Resource = dict[str, Any]

UTC = dt.UTC
#: Bounds for open ranges (a Period without an end).
MIN_TIME = dt.datetime.min.replace(tzinfo=UTC)
MAX_TIME = dt.datetime.max.replace(tzinfo=UTC)
_TICK = dt.timedelta(microseconds=1)

#: ``ap``: the searched range widens by this share of |now - value| (the spec's example).
APPROXIMATE_SHARE = 0.10

PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")


class SearchError(ValueError):
    """A search value or parameter the server cannot apply; the message says what to fix.

    ``param`` is the parameter as the client wrote it (with any modifier); ``code`` the
    OperationOutcome issue code (``not-supported`` for a parameter the server does not know,
    ``invalid`` for a malformed value)."""

    def __init__(self, param: str, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


# --------------------------------------------------------------------------- extractors

def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _codings(*paths: str) -> Callable[[Resource], list[tuple[str | None, str]]]:
    """Tokens of CodeableConcept elements (``code``, ``category``...)."""
    def get(res: Resource) -> list[tuple[str | None, str]]:
        out = []
        for path in paths:
            for concept in _list(res.get(path)):
                for coding in concept.get("coding") or ():
                    if coding.get("code"):
                        out.append((coding.get("system"), coding["code"]))
        return out
    return get


def _identifiers(res: Resource) -> list[tuple[str | None, str]]:
    return [(i.get("system"), i["value"]) for i in _list(res.get("identifier")) if i.get("value")]


def _code(path: str) -> Callable[[Resource], list[tuple[str | None, str]]]:
    """Tokens of a ``code`` element (no system of its own)."""
    def get(res: Resource) -> list[tuple[str | None, str]]:
        return [(None, v) for v in _list(res.get(path)) if v]
    return get


def _ids(res: Resource) -> list[tuple[str | None, str]]:
    return [(None, res["id"])]


def _refs(*paths: str) -> Callable[[Resource], list[str]]:
    def get(res: Resource) -> list[str]:
        out = []
        for path in paths:
            for ref in _list(res.get(path)):
                if isinstance(ref, dict) and ref.get("reference"):
                    out.append(ref["reference"])
        return out
    return get


def _patient_refs(*paths: str) -> Callable[[Resource], list[str]]:
    refs = _refs(*paths)
    return lambda res: [r for r in refs(res) if r.startswith("Patient/")]


def _provenance_patient(res: Resource) -> list[str]:
    # A Provenance names the patient whose record it describes only through its targets and
    # the patient-informant agent; the exporter scopes it by that patient (see the view).
    return [a["who"]["reference"] for a in res.get("agent") or ()
            if str(a.get("who", {}).get("reference", "")).startswith("Patient/")]


def _names(res: Resource) -> list[str]:
    out = []
    for name in _list(res.get("name")):
        if isinstance(name, str):
            out.append(name)
            continue
        out += [name.get("family", ""), *name.get("given", ()), name.get("text", "")]
    return [n for n in out if n]


def _name_part(part: str) -> Callable[[Resource], list[str]]:
    def get(res: Resource) -> list[str]:
        out: list[str] = []
        for name in _list(res.get("name")):
            out += _list(name.get(part))
        return out
    return get


def _strings(path: str) -> Callable[[Resource], list[str]]:
    return lambda res: [v for v in _list(res.get(path)) if v]


def _uri(path: str) -> Callable[[Resource], list[str]]:
    return lambda res: [v for v in _list(res.get(path)) if v]


def _dates(*paths: str) -> Callable[[Resource], list[tuple[dt.datetime, dt.datetime]]]:
    """Ranges (first and last instant, inclusive) of date, dateTime, instant or Period
    elements; ``meta.lastUpdated`` as ``"meta.lastUpdated"``."""
    def get(res: Resource) -> list[tuple[dt.datetime, dt.datetime]]:
        out = []
        for path in paths:
            value: Any = res
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            for v in _list(value):
                if isinstance(v, dict):  # Period
                    lo = _range(v["start"])[0] if v.get("start") else MIN_TIME
                    hi = _range(v["end"])[1] if v.get("end") else MAX_TIME
                    out.append((lo, hi))
                elif v:
                    out.append(_range(v))
        return out
    return get


# --------------------------------------------------------------------------- parameters

@dataclass(frozen=True)
class Param:
    """One search parameter of one resource type."""

    name: str
    type: str  # token, reference, string, uri, date
    values: Callable[[Resource], list[Any]]
    documentation: str
    #: the parameter's SearchParameter (declared in the CapabilityStatement)
    definition: str = ""


def _p(rtype: str, name: str, ptype: str, values, doc: str) -> Param:
    base = "Resource" if name.startswith("_") else rtype
    return Param(name, ptype, values, doc,
                 f"http://hl7.org/fhir/SearchParameter/{base}-{name.lstrip('_')}")


def _common(rtype: str) -> list[Param]:
    return [_p(rtype, "_id", "token", _ids, "The logical id of the resource."),
            _p(rtype, "_lastUpdated", "date", _dates("meta.lastUpdated"),
               "When the resource last changed (meta.lastUpdated).")]


def _patient_params(rtype: str, *paths: str) -> list[Param]:
    get = _patient_refs(*paths)
    return [_p(rtype, "patient", "reference", get, "The patient (Patient/[id] or [id])."),
            _p(rtype, "subject", "reference", get, "The patient (Patient/[id]); as patient.")]


def _build() -> dict[str, dict[str, Param]]:
    t: dict[str, list[Param]] = {
        "Patient": [
            _p("Patient", "identifier", "token", _identifiers,
               "A medical record number: system|value, value, or system|."),
            _p("Patient", "name", "string", _names, "Any part of the name (starts with)."),
            _p("Patient", "family", "string", _name_part("family"), "The family name."),
            _p("Patient", "given", "string", _name_part("given"), "A given name."),
            _p("Patient", "birthdate", "date", _dates("birthDate"), "The date of birth."),
            _p("Patient", "gender", "token", _code("gender"), "female or male."),
        ],
        "Practitioner": [
            _p("Practitioner", "identifier", "token", _identifiers, "The login's identifier."),
            _p("Practitioner", "name", "string", _names, "Any part of the name."),
        ],
        "CareTeam": [
            _p("CareTeam", "identifier", "token", _identifiers, "The care team's identifier."),
            _p("CareTeam", "status", "token", _code("status"), "Always active."),
        ],
        "Questionnaire": [
            _p("Questionnaire", "url", "uri", _uri("url"), "The canonical URL."),
            _p("Questionnaire", "identifier", "token", _identifiers, "Speciosa's instrument id."),
            _p("Questionnaire", "code", "token", _codings("code"),
               "A code of the questionnaire (LOINC panel where one exists)."),
            _p("Questionnaire", "name", "string", _strings("name"), "The computer name."),
            _p("Questionnaire", "title", "string", _strings("title"), "The instrument's name."),
            _p("Questionnaire", "status", "token", _code("status"), "active."),
        ],
        "QuestionnaireResponse": [
            *_patient_params("QuestionnaireResponse", "subject"),
            _p("QuestionnaireResponse", "authored", "date", _dates("authored"),
               "When the instrument was answered."),
            _p("QuestionnaireResponse", "questionnaire", "reference", _uri("questionnaire"),
               "The Questionnaire's canonical URL (with or without |version)."),
            _p("QuestionnaireResponse", "identifier", "token", _identifiers, "The identifier."),
            _p("QuestionnaireResponse", "status", "token", _code("status"),
               "completed, amended or in-progress."),
        ],
        "Observation": [
            *_patient_params("Observation", "subject"),
            _p("Observation", "code", "token", _codings("code"),
               "LOINC or Speciosa code: system|code, code, system|; commas are OR."),
            _p("Observation", "category", "token", _codings("category"),
               "laboratory, survey or social-history."),
            _p("Observation", "date", "date", _dates("effectiveDateTime", "effectivePeriod"),
               "The clinical time (collected, answered, used)."),
            _p("Observation", "identifier", "token", _identifiers, "The identifier."),
            _p("Observation", "status", "token", _code("status"), "final or amended."),
            _p("Observation", "specimen", "reference", _refs("specimen"),
               "The specimen (a urine drug test panel's: Specimen/[id])."),
        ],
        "DiagnosticReport": [
            *_patient_params("DiagnosticReport", "subject"),
            _p("DiagnosticReport", "code", "token", _codings("code"),
               "A catalogue panel of a urine drug test (Speciosa's urine-drug-panel codes)."),
            _p("DiagnosticReport", "category", "token", _codings("category"), "LAB."),
            _p("DiagnosticReport", "date", "date", _dates("effectiveDateTime"),
               "When the specimen was collected."),
            _p("DiagnosticReport", "issued", "date", _dates("issued"), "When it was recorded."),
            _p("DiagnosticReport", "identifier", "token", _identifiers, "The identifier."),
            _p("DiagnosticReport", "status", "token", _code("status"), "final or amended."),
            _p("DiagnosticReport", "result", "reference", _refs("result"),
               "An Observation of the panel (Observation/[id])."),
            _p("DiagnosticReport", "specimen", "reference", _refs("specimen"),
               "The panel's specimen (Specimen/[id])."),
        ],
        "Specimen": [
            *_patient_params("Specimen", "subject"),
            _p("Specimen", "type", "token", _codings("type"), "UR (urine, HL7 v2 table 0487)."),
            _p("Specimen", "collected", "date", _dates("collection.collectedDateTime"),
               "When it was collected."),
            _p("Specimen", "identifier", "token", _identifiers, "The identifier."),
            _p("Specimen", "status", "token", _code("status"),
               "unsatisfactory when a validity measure is out of range."),
        ],
        "MedicationStatement": [
            *_patient_params("MedicationStatement", "subject"),
            _p("MedicationStatement", "code", "token", _codings("medicationCodeableConcept"),
               "The medication's code (kratom: Speciosa's substance code system)."),
            _p("MedicationStatement", "effective", "date",
               _dates("effectiveDateTime", "effectivePeriod"),
               "When it was taken (a dose) or the period of a medication."),
            _p("MedicationStatement", "status", "token", _code("status"),
               "active, completed, stopped, on-hold, ..."),
            _p("MedicationStatement", "category", "token", _codings("category"),
               "patientspecified or community; treatment-episode (Speciosa's record-kind) for "
               "medication for opioid use disorder."),
            _p("MedicationStatement", "identifier", "token", _identifiers, "The identifier."),
        ],
        "MedicationRequest": [
            *_patient_params("MedicationRequest", "subject"),
            _p("MedicationRequest", "code", "token", _codings("medicationCodeableConcept"),
               "The medication's code (RxNorm, Speciosa's drug table)."),
            _p("MedicationRequest", "authoredon", "date", _dates("authoredOn"),
               "When the prescription was recorded."),
            _p("MedicationRequest", "status", "token", _code("status"),
               "active, stopped, completed, on-hold, ..."),
            _p("MedicationRequest", "intent", "token", _code("intent"), "order."),
            _p("MedicationRequest", "identifier", "token", _identifiers, "The identifier."),
        ],
        "DocumentReference": [
            *_patient_params("DocumentReference", "subject"),
            _p("DocumentReference", "date", "date", _dates("date"), "When the note was written."),
            _p("DocumentReference", "period", "date", _dates("context.period"),
               "The time the note is about."),
            _p("DocumentReference", "type", "token", _codings("type"), "clinical-note."),
            _p("DocumentReference", "status", "token", _code("status"), "current."),
            _p("DocumentReference", "identifier", "token", _identifiers, "The identifier."),
        ],
        "Condition": [
            *_patient_params("Condition", "subject"),
            _p("Condition", "code", "token", _codings("code"), "The condition's code."),
        ],
        "Flag": [
            *_patient_params("Flag", "subject"),
            _p("Flag", "date", "date", _dates("period"), "The period the alert is active."),
            _p("Flag", "identifier", "token", _identifiers, "The identifier."),
        ],
        "Consent": [
            _p("Consent", "patient", "reference", _patient_refs("patient"), "The patient."),
            _p("Consent", "date", "date", _dates("dateTime"), "When consent was given or refused."),
            _p("Consent", "status", "token", _code("status"), "active or rejected."),
            _p("Consent", "scope", "token", _codings("scope"), "treatment or research."),
            _p("Consent", "category", "token", _codings("category"), "Speciosa's consent kind."),
            _p("Consent", "identifier", "token", _identifiers, "The identifier."),
        ],
        "Provenance": [
            _p("Provenance", "patient", "reference", _provenance_patient,
               "The patient whose record it describes (Patient/[id] or [id])."),
            _p("Provenance", "target", "reference", _refs("target"),
               "The resource it describes ([type]/[id])."),
            _p("Provenance", "recorded", "date", _dates("recorded"), "When it was recorded."),
        ],
    }
    return {rtype: {p.name: p for p in [*_common(rtype), *params]} for rtype, params in t.items()}


#: Search parameters by resource type and name.
PARAMS: dict[str, dict[str, Param]] = _build()

#: Result parameters (not matched against resources).
RESULT_PARAMS = ("_count", "_offset", "_sort", "_summary", "_format")

#: Parameters naming the patient: applied by narrowing the patients in scope (through
#: :mod:`speciosa.clinic.access`) rather than by matching.
PATIENT_PARAMS = ("patient", "subject")

MODIFIERS = {"string": ("exact", "contains"), "token": (), "reference": (), "uri": (),
             "date": ()}


def date_params(rtype: str) -> list[str]:
    return [n for n, p in PARAMS.get(rtype, {}).items() if p.type == "date"]


# --------------------------------------------------------------------------- date values

_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?P<f>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$")


def _range(text: str) -> tuple[dt.datetime, dt.datetime]:
    """The first and last instant (inclusive) a FHIR date/dateTime/instant stands for.

    Raises ValueError for a malformed value, OverflowError for one outside the years
    1-9999 once in UTC (``9999-12-31T23:00-05:00``)."""
    m = _DATE_RE.match(text.strip())
    if not m:
        raise ValueError(text)
    y, mo, d = int(m["y"]), m["m"], m["d"]
    if m["H"] is not None:
        if m["tz"] is None:
            raise ValueError("no time zone")
        tz = UTC if m["tz"] == "Z" else dt.datetime.strptime(m["tz"], "%z").tzinfo
        frac = m["f"] or ""
        start = dt.datetime(y, int(mo), int(d), int(m["H"]), int(m["M"]), int(m["S"] or 0),
                            int((frac[1:] + "000000")[:6]) if frac else 0, tzinfo=tz)
        if m["S"] is None:
            step = dt.timedelta(minutes=1)
        elif frac:
            step = dt.timedelta(microseconds=10 ** max(0, 6 - (len(frac) - 1)))
        else:
            step = dt.timedelta(seconds=1)
        return start.astimezone(UTC), (start + (step - _TICK)).astimezone(UTC)
    if d is not None:
        start = dt.datetime(y, int(mo), int(d), tzinfo=UTC)
        return start, start + (dt.timedelta(days=1) - _TICK)
    if mo is not None:
        start = dt.datetime(y, int(mo), 1, tzinfo=UTC)
        days = calendar.monthrange(y, int(mo))[1]
        return start, start + (dt.timedelta(days=days) - _TICK)
    start = dt.datetime(y, 1, 1, tzinfo=UTC)
    return start, start + (dt.timedelta(days=366 if calendar.isleap(y) else 365) - _TICK)


@dataclass(frozen=True)
class DateValue:
    prefix: str
    low: dt.datetime
    high: dt.datetime  # inclusive

    def matches(self, lo: dt.datetime, hi: dt.datetime) -> bool:
        within = self.low <= lo and hi <= self.high
        p = self.prefix
        if p == "eq":
            return within
        if p == "ne":
            return not within
        if p == "gt":
            return hi > self.high
        if p == "lt":
            return lo < self.low
        if p == "ge":
            return hi > self.high or within
        if p == "le":
            return lo < self.low or within
        if p == "sa":
            return lo > self.high
        if p == "eb":
            return hi < self.low
        # ap: overlaps the range widened on each side
        gap = abs(timezone.now() - self.low)
        widen = max(dt.timedelta(days=1), gap * APPROXIMATE_SHARE)
        low = self.low - widen if self.low - MIN_TIME > widen else MIN_TIME
        high = self.high + widen if MAX_TIME - self.high > widen else MAX_TIME
        return lo <= high and hi >= low


def parse_date(param: str, raw: str) -> DateValue:
    prefix, text = (raw[:2], raw[2:]) if raw[:2] in PREFIXES else ("eq", raw)
    try:
        low, high = _range(text)
    except OverflowError:
        raise SearchError(param, f"{param}={raw}: the date is too far in the future to search "
                                 "by (give a date before the year 9999 ends)") from None
    except ValueError:
        raise SearchError(param, f"{param}={raw}: give a date (2026, 2026-01, 2026-01-31) or a "
                                 "date-time with a time zone (2026-01-31T10:00:00Z), with an "
                                 f"optional prefix ({' '.join(PREFIXES)})") from None
    return DateValue(prefix, low, high)


# --------------------------------------------------------------------------- matching

def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def parse_reference(raw: str, default_type: str | None = None) -> str:
    """``Patient/1``, ``1`` or ``http://host/fhir/Patient/1`` -> ``Patient/1``."""
    raw = raw.strip().rstrip("/")
    parts = raw.split("/")
    if "_history" in parts:  # a versioned reference names the resource
        parts = parts[:parts.index("_history")]
    if len(parts) >= 2:
        return f"{parts[-2]}/{parts[-1]}"
    return f"{default_type}/{raw}" if default_type else raw


@dataclass(frozen=True)
class Criterion:
    """One parameter occurrence: its alternatives (OR) for one :class:`Param`."""

    param: Param
    modifier: str
    alternatives: tuple[Any, ...]
    raw: str  # as written, for the self link

    def matches(self, res: Resource) -> bool:
        values = self.param.values(res)
        kind = self.param.type
        for alt in self.alternatives:
            if kind == "token":
                system, code = alt
                for vs, vc in values:
                    if (code is None or vc == code) and (
                            system is None or (system == "" and vs is None) or vs == system):
                        return True
            elif kind == "date":
                if any(alt.matches(lo, hi) for lo, hi in values):
                    return True
            elif kind == "reference":  # a canonical (url|version) names its url
                if any(parse_reference(v.split("|", 1)[0]) == alt for v in values):
                    return True
            elif kind == "uri":
                if any(v == alt or v.split("|", 1)[0] == alt for v in values):
                    return True
            else:  # string
                wanted = alt if self.modifier == "exact" else _fold(alt)
                for v in values:
                    if self.modifier == "exact" and v == wanted:
                        return True
                    if self.modifier == "contains" and wanted in _fold(v):
                        return True
                    if not self.modifier and _fold(v).startswith(wanted):
                        return True
        return False


def _split(raw: str) -> list[str]:
    """Split on commas not escaped with a backslash (FHIR search escaping)."""
    parts, cur, esc = [], [], False
    for ch in raw:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def criterion(rtype: str, key: str, raw: str) -> Criterion:
    """The criterion of ``key=raw`` for ``rtype``; raises :class:`SearchError` when the
    parameter (or its modifier) is not supported or the value is malformed."""
    name, _, modifier = key.partition(":")
    param = PARAMS.get(rtype, {}).get(name)
    if param is None:
        raise SearchError(key, f"The search parameter {key!r} is not supported for {rtype}; "
                               f"supported: {', '.join(PARAMS.get(rtype, {}))}, "
                               f"{', '.join(RESULT_PARAMS)}.", "not-supported")
    if modifier and modifier not in MODIFIERS[param.type]:
        raise SearchError(key, f"The modifier :{modifier} is not supported on {name} "
                               f"({param.type}).", "not-supported")
    alts: list[Any] = []
    for part in _split(raw):
        if param.type == "token":
            if "|" in part:
                system, code = part.split("|", 1)
                alts.append((system, code or None))
            else:
                alts.append((None, part))
            if alts[-1] == ("", None):
                raise SearchError(key, f"{key}={raw}: give a code, system|code or system|.")
        elif param.type == "date":
            alts.append(parse_date(key, part))
        elif param.type == "reference":
            alts.append(parse_reference(part.split("|", 1)[0],
                                        "Patient" if name in PATIENT_PARAMS else None))
        elif not part:
            raise SearchError(key, f"{key}: give a value.")
        else:
            alts.append(part)
    return Criterion(param, modifier, tuple(alts), raw)


def sort_key(rtype: str, spec: str) -> Callable[[Resource], Any]:
    """A key function for ``_sort`` (date parameters of ``rtype``, ``-`` for descending);
    resources without the value sort last either way."""
    keys = []
    for part in spec.split(","):
        part = part.strip()
        desc = part.startswith("-")
        name = part.lstrip("-")
        param = PARAMS.get(rtype, {}).get(name)
        if param is None or param.type != "date":
            raise SearchError("_sort", f"_sort={spec}: sort by {', '.join(date_params(rtype))} "
                                       "(a '-' first for newest first)")
        keys.append((param, desc))

    def key(res: Resource) -> tuple:
        out = []
        for param, desc in keys:
            ranges = param.values(res)
            if not ranges:
                out.append((1, 0.0))
                continue
            ts = min(lo for lo, _ in ranges).timestamp()
            out.append((0, -ts if desc else ts))
        return tuple(out)

    return key


def matching(resources: Iterable[Resource], criteria: list[Criterion]) -> Iterator[Resource]:
    for res in resources:
        if all(c.matches(res) for c in criteria):
            yield res
