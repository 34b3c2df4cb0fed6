"""A patient's timeline: everything the safety rules look at, as plain immutable data.

The Django app builds a :class:`Timeline` from bulk queries; the command line builds one
from JSON with :func:`timeline_from_json`. Either way every list is sorted by time once,
when the timeline is made, so rules can find the window they need by bisection instead
of scanning a year of history on every evaluation.

Times are timezone-aware :class:`datetime.datetime` objects. A naive time in JSON is read
in the timeline's ``tz`` (an IANA name, default ``UTC``). Calendar days (diary days,
medication start and end) are :class:`datetime.date` objects in that same zone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from functools import cached_property
from operator import attrgetter, eq
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from speciosa.knowledge import labs as klabs
from speciosa.pharmacology.doses import Dose

__all__ = [
    "COMPARATORS",
    "SEXES",
    "Assessment",
    "LabResult",
    "Medication",
    "Patient",
    "SideEffect",
    "Substance",
    "Timeline",
    "TimelineError",
    "timeline_from_json",
]

#: Sex values accepted for :attr:`Patient.sex` (used to pick sex-specific reference ranges
#: and instrument cut-offs; ``None`` when not recorded).
SEXES = ("female", "male")

_UTC = ZoneInfo("UTC")


class TimelineError(ValueError):
    """A timeline that cannot be read; ``field`` names the offending value.

    Parameters
    ----------
    field : str
        Path of the bad value, e.g. ``labs[2].unit``.
    message : str
        What is wrong and what would be accepted.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Patient:
    """The facts about the patient that change how results are read.

    Parameters
    ----------
    sex : {"female", "male"} or None
        Sex used for reference ranges (prolactin, AUDIT-C cut-off).
    birth_date : date or None
    pregnant : bool
        Pregnancy currently reported.
    breastfeeding : bool
        Currently breastfeeding (lactation raises prolactin physiologically).
    """

    sex: str | None
    birth_date: date | None
    pregnant: bool = False
    breastfeeding: bool = False


@dataclass(frozen=True, slots=True)
class Assessment:
    """One completed instrument.

    Parameters
    ----------
    instrument : str
        Instrument id (``cows``, ``sows``, ``phq9``, ``audit-c``, ...).
    at : datetime
        When it was completed (aware).
    items : Mapping[str, int] or None
        Item responses keyed by item id; scored with the one scorer in
        :mod:`speciosa.knowledge.instruments`.
    total : int or None
        A total recorded without items (used only when ``items`` is absent or incomplete).
    """

    instrument: str
    at: datetime
    items: Mapping[str, int] | None = None
    total: int | None = None


COMPARATORS = klabs.COMPARATORS

#: A prolactin sample's states that set the non-pregnant range aside (Melmed 2011).
SAMPLE_STATES = ("pregnant", "breastfeeding", "hcg-positive", "uncertain")


@dataclass(frozen=True, slots=True)
class LabResult:
    """One laboratory result: as reported, and in the lab's canonical unit.

    The rules read only the canonical attributes (``canonical_value``, ``canonical_low``,
    ``canonical_high``): one value and one range in the same unit, whatever unit the result
    was entered in. They are worked out here, once, with the lab catalogue's conversions
    (:func:`speciosa.knowledge.labs.to_canonical`); a value that cannot be converted (an
    imported unit the catalogue lacks) has ``canonical_value`` None and is not read.

    Parameters
    ----------
    lab : str
        Lab code in the catalogue of :mod:`speciosa.knowledge.labs` (``prolactin``, ``alt``...).
    at : datetime
        Sample time (aware).
    value : float or None
        Numeric result in ``unit``; ``None`` for qualitative results.
    unit : str or None
        Unit as reported (UCUM-style string).
    reference_low, reference_high : float or None
        The reporting laboratory's range, in ``reference_unit``. When given it is preferred
        over the catalogue range (pharmacology.md §6.1: use the reporting laboratory's range).
    result : str or None
        Qualitative result (``positive``/``negative``...) for labs such as ``hcg`` or ``uds-*``.
    comparator : {"<", "<=", ">=", ">"} or None
        The value is a bound, as reported (``<5 U/L``): below or above ``value``.
    iu_factor : float or None
        Prolactin in m[IU]/L: the assay's mIU/L per ng/mL factor (default: the catalogue's).
    reference_unit : str or None
        Unit of ``reference_low``/``reference_high`` when it differs from ``unit``.
    canonical_value : float or None
        ``value`` in the canonical unit; worked out when not given (the database passes the
        value it stored, converted by the same function when the result was entered).
    sample_state : str or None
        Prolactin: the sample was taken in pregnancy (``pregnant``), while breastfeeding, after
        a positive hCG (``hcg-positive``) or possibly in pregnancy (``uncertain``); any of
        these (:data:`SAMPLE_STATES`) sets the non-pregnant range aside, and the prolactin
        rules do not read the result (:mod:`speciosa.clinic.pregnancy` keeps it).
    """

    lab: str
    at: datetime
    value: float | None
    unit: str | None
    reference_low: float | None = None
    reference_high: float | None = None
    result: str | None = None
    comparator: str | None = None
    iu_factor: float | None = None
    reference_unit: str | None = None
    canonical_value: float | None = None
    sample_state: str | None = None
    #: Urine drug tests: the panel (its id) the analyte was part of, and whether that
    #: panel's specimen was out of range (the reading is then withheld).
    panel: int | None = None
    specimen_invalid: bool = False
    canonical_low: float | None = field(init=False, default=None)
    canonical_high: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        put = object.__setattr__
        if self.canonical_value is None and self.value is not None:
            put(self, "canonical_value", _canonical(self.lab, self.value, self.unit, self.iu_factor))
        if self.reference_low is not None or self.reference_high is not None:
            unit = self.reference_unit or self.unit
            put(self, "canonical_low", _canonical(self.lab, self.reference_low, unit, self.iu_factor))
            put(self, "canonical_high",
                _canonical(self.lab, self.reference_high, unit, self.iu_factor))

    def below(self) -> bool:
        """The value is reported as an upper bound (``<5``): the true value is lower."""
        return self.comparator in ("<", "<=")

    def above(self) -> bool:
        """The value is reported as a lower bound (``>2000``): the true value is higher."""
        return self.comparator in (">", ">=")


def _canonical(code: str, value: float | None, unit: str | None,
               iu_factor: float | None) -> float | None:
    """``value`` in the canonical unit of lab ``code``; None when it cannot be converted."""
    if value is None or unit is None:
        return None
    try:
        lab = klabs.get_lab(code)
        if unit == lab.canonical_unit:
            return float(value)
        return klabs.to_canonical(code, value, unit, iu_factor=iu_factor)
    except klabs.LabValueError:
        return None


@dataclass(frozen=True, slots=True)
class SideEffect:
    """A side effect reported at ``at``; ``code`` is an item id of the ``side-effects`` instrument."""

    at: datetime
    code: str


#: Medication statuses read as "taken" (FHIR MedicationStatement statuses; an unknown
#: status counts, so that an interaction is asked about rather than missed).
CURRENT_STATUSES = frozenset({"active", "unknown"})


@dataclass(frozen=True, slots=True)
class Medication:
    """A medication the patient takes from ``start`` until ``end`` (inclusive; ``None``: ongoing).

    ``drug`` is the drug table's generic name when the medication was chosen from the table
    (coded); ``None`` for free text, which the rules read word by word (``lookup``).
    ``status`` is the medication's status: only ``active`` and ``unknown`` are taken
    (a stopped, paused, planned or mistaken entry is not current, whatever its dates)."""

    name: str
    start: date
    end: date | None = None
    drug: str | None = None
    status: str = "active"

    @property
    def lookup(self) -> str:
        """What the drug table is asked about: the coded drug, else the name as entered."""
        return self.drug or self.name

    @property
    def coded(self) -> bool:
        return bool(self.drug)

    def is_current(self, day: date) -> bool:
        """Whether the medication is taken on ``day``."""
        return (self.status in CURRENT_STATUSES and self.start <= day
                and (self.end is None or self.end >= day))


@dataclass(frozen=True, slots=True)
class Substance:
    """Use of a non-prescribed substance (``alcohol``, ``heroin``, ``alprazolam``...) at ``at``."""

    name: str
    at: datetime


_by_at = attrgetter("at")
_by_taken_at = attrgetter("taken_at")
_by_start = attrgetter("start")


@dataclass(frozen=True)
class Timeline:
    """Everything the safety rules read about one patient, sorted by time.

    Construction sorts every list once (stable, so equal times keep their order); the
    indexes the rules use (labs by code, assessments by instrument, side effects by code)
    are built lazily and kept on the instance.

    Parameters
    ----------
    patient : Patient
    doses : tuple of Dose
        Kratom dose log (:class:`speciosa.pharmacology.doses.Dose`).
    assessments : tuple of Assessment
    labs : tuple of LabResult
    side_effects : tuple of SideEffect
    medications : tuple of Medication
    substances : tuple of Substance
    diary_days : tuple of date
        Days on which the patient wrote the diary.
    tz : tzinfo
        The patient's time zone: calendar days (dose days, diary days) are counted in it.
    """

    patient: Patient
    doses: tuple[Dose, ...] = ()
    assessments: tuple[Assessment, ...] = ()
    labs: tuple[LabResult, ...] = ()
    side_effects: tuple[SideEffect, ...] = ()
    medications: tuple[Medication, ...] = ()
    substances: tuple[Substance, ...] = ()
    diary_days: tuple[date, ...] = ()
    tz: tzinfo = field(default=_UTC)

    def __post_init__(self) -> None:
        put = object.__setattr__
        put(self, "doses", tuple(sorted(self.doses, key=_by_taken_at)))
        put(self, "assessments", tuple(sorted(self.assessments, key=_by_at)))
        put(self, "labs", tuple(sorted(self.labs, key=_by_at)))
        put(self, "side_effects", tuple(sorted(self.side_effects, key=_by_at)))
        put(self, "medications", tuple(sorted(self.medications, key=_by_start)))
        put(self, "substances", tuple(sorted(self.substances, key=_by_at)))
        days = sorted(self.diary_days)
        if any(map(eq, days, days[1:])):  # C-level check; dedupe only when needed
            days = list(dict.fromkeys(days))
        put(self, "diary_days", tuple(days))

    @cached_property
    def labs_by_code(self) -> dict[str, tuple[LabResult, ...]]:
        """Lab results grouped by lab code, each group sorted by time."""
        return _group(self.labs, "lab")

    @cached_property
    def assessments_by_instrument(self) -> dict[str, tuple[Assessment, ...]]:
        """Assessments grouped by instrument id, each group sorted by time."""
        return _group(self.assessments, "instrument")

    @cached_property
    def side_effects_by_code(self) -> dict[str, tuple[SideEffect, ...]]:
        """Side effects grouped by code, each group sorted by time."""
        return _group(self.side_effects, "code")


def _group(rows: tuple[Any, ...], attribute: str) -> dict[str, tuple[Any, ...]]:
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(getattr(row, attribute), []).append(row)
    return {key: tuple(value) for key, value in groups.items()}


# --------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------

_TOP_LEVEL = frozenset(
    {
        "tz",
        "patient",
        "doses",
        "assessments",
        "labs",
        "side_effects",
        "medications",
        "substances",
        "diary_days",
    }
)


def timeline_from_json(obj: Any) -> Timeline:
    """Build a :class:`Timeline` from its JSON form (documented in ``docs/timeline.md``).

    Every value is checked against the knowledge base: instrument responses with the one
    scorer, lab codes and units with the lab catalogue, side-effect codes with the
    ``side-effects`` instrument, dose units with the dose converter.

    Parameters
    ----------
    obj : Any
        The decoded JSON document (a dict).

    Returns
    -------
    Timeline

    Raises
    ------
    TimelineError
        For the first bad value; ``field`` names it (e.g. ``labs[2].unit``).
    """
    from speciosa.safety import _validate

    if not isinstance(obj, Mapping):
        raise TimelineError("$", "a timeline is a JSON object")
    unknown = sorted(set(obj) - _TOP_LEVEL)
    if unknown:
        raise TimelineError(unknown[0], f"unknown field; expected one of {sorted(_TOP_LEVEL)}")
    tz = _read_tz(obj.get("tz", "UTC"))
    patient = _read_patient(obj.get("patient"))
    return Timeline(
        patient=patient,
        doses=tuple(_validate.read_dose(f"doses[{i}]", row, tz) for i, row in _rows(obj, "doses")),
        assessments=tuple(
            _validate.read_assessment(f"assessments[{i}]", row, tz, patient.sex)
            for i, row in _rows(obj, "assessments")
        ),
        labs=tuple(_validate.read_lab(f"labs[{i}]", row, tz) for i, row in _rows(obj, "labs")),
        side_effects=tuple(
            _validate.read_side_effect(f"side_effects[{i}]", row, tz)
            for i, row in _rows(obj, "side_effects")
        ),
        medications=tuple(
            _read_medication(f"medications[{i}]", row, tz)
            for i, row in _rows(obj, "medications")
        ),
        substances=tuple(
            _read_substance(f"substances[{i}]", row, tz) for i, row in _rows(obj, "substances")
        ),
        diary_days=tuple(
            read_date(f"diary_days[{i}]", row) for i, row in _rows(obj, "diary_days", dicts=False)
        ),
        tz=tz,
    )


def _rows(obj: Mapping[str, Any], name: str, *, dicts: bool = True):
    rows = obj.get(name, [])
    if rows is None:
        return
    if not isinstance(rows, list):
        raise TimelineError(name, "must be a list")
    for i, row in enumerate(rows):
        if dicts and not isinstance(row, Mapping):
            raise TimelineError(f"{name}[{i}]", "must be an object")
        yield i, row


def _read_tz(value: Any) -> tzinfo:
    if not isinstance(value, str) or not value:
        raise TimelineError("tz", "must be an IANA time zone name such as 'Europe/Berlin'")
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimelineError("tz", f"unknown time zone {value!r}") from None


def _read_patient(value: Any) -> Patient:
    if not isinstance(value, Mapping):
        raise TimelineError("patient", "required: an object with sex, birth_date, pregnant")
    check_fields("patient", value, {"sex", "birth_date", "pregnant", "breastfeeding"})
    sex = value.get("sex")
    if sex is not None and sex not in SEXES:
        raise TimelineError("patient.sex", f"must be one of {list(SEXES)} or null, not {sex!r}")
    birth = value.get("birth_date")
    return Patient(
        sex=sex,
        birth_date=None if birth is None else read_date("patient.birth_date", birth),
        pregnant=read_bool("patient.pregnant", value.get("pregnant", False)),
        breastfeeding=read_bool("patient.breastfeeding", value.get("breastfeeding", False)),
    )


def read_day(where: str, value: Any, tz: tzinfo) -> date:
    """A calendar date ``YYYY-MM-DD``, or a date-time (ISO 8601) read as its day in ``tz``
    (a medication list exported with times: ``2025-03-01T08:30:00+01:00``)."""
    if isinstance(value, str) and len(value) > 10 and value[:10].count("-") == 2 \
            and value[10] in "Tt ":
        return read_time(where, value, tz).astimezone(tz).date()
    if not isinstance(value, str):
        raise TimelineError(where, "required: a date as YYYY-MM-DD or a date-time")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TimelineError(
            where, f"not a date (YYYY-MM-DD) or a date-time (YYYY-MM-DDTHH:MM): {value!r}"
        ) from None


def _read_medication(where: str, row: Mapping[str, Any], tz: tzinfo) -> Medication:
    check_fields(where, row, {"name", "start", "end", "drug", "status"})
    start = read_day(f"{where}.start", row.get("start"), tz)
    end = row.get("end")
    end_day = None if end is None else read_day(f"{where}.end", end, tz)
    if end_day is not None and end_day < start:
        raise TimelineError(f"{where}.end", "is before start")
    drug = row.get("drug")
    status = row.get("status", "active")
    if not isinstance(status, str) or not status:
        raise TimelineError(f"{where}.status", "must be a status such as active or stopped")
    return Medication(name=read_name(f"{where}.name", row.get("name")), start=start, end=end_day,
                      drug=None if drug in (None, "") else read_name(f"{where}.drug", drug),
                      status=status)


def _read_substance(where: str, row: Mapping[str, Any], tz: tzinfo) -> Substance:
    check_fields(where, row, {"name", "at"})
    return Substance(
        name=read_name(f"{where}.name", row.get("name")), at=read_time(f"{where}.at", row.get("at"), tz)
    )


# small readers shared with speciosa.safety._validate ----------------------------------


def check_fields(where: str, row: Mapping[str, Any], allowed: set[str]) -> None:
    """Reject a field not in ``allowed`` (a typo would otherwise be silently ignored)."""
    for key in row:
        if key not in allowed:
            raise TimelineError(f"{where}.{key}", f"unknown field; expected one of {sorted(allowed)}")


def read_name(where: str, value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise TimelineError(where, "required: a non-empty string")
    return value.strip()


def read_bool(where: str, value: Any) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise TimelineError(where, "must be true or false")
    return value


def read_number(where: str, value: Any, *, positive: bool = False) -> float:
    """A finite JSON number (optionally > 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TimelineError(where, "required: a number")
    if positive and value <= 0:
        raise TimelineError(where, "must be greater than 0")
    return float(value)


def read_date(where: str, value: Any) -> date:
    """An ISO 8601 calendar date ``YYYY-MM-DD``."""
    if not isinstance(value, str):
        raise TimelineError(where, "required: a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise TimelineError(where, f"not a date (YYYY-MM-DD): {value!r}") from None


def read_time(where: str, value: Any, tz: tzinfo) -> datetime:
    """An ISO 8601 date-time; a time without offset is read in ``tz``."""
    if not isinstance(value, str):
        raise TimelineError(where, "required: a date-time such as 2025-03-01T08:30:00+01:00")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TimelineError(where, f"not an ISO 8601 date-time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment
