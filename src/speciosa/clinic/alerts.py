"""Safety findings become alerts for the patient's care team.

The rules themselves are pure functions in :mod:`speciosa.safety`; this module feeds them.
Timelines are built from a handful of bulk queries per chunk of patients (never a loop of
per-patient ORM queries), evaluated, and reconciled with the active alerts:

- a finding with no active alert for its rule creates one (``INSERT`` that ignores a
  conflict with the partial unique index ``one_active_alert_per_rule``, so two sweeps running
  at once cannot duplicate an alert);
- a finding with an active alert updates its message, evidence and ``last_seen_at`` (only
  ``last_seen_at`` is written when nothing else changed);
- an active alert whose rule no longer fires stays active and records when it stopped firing
  (``stopped_firing_at``): only a clinician closes an alert, with a reason;
- every event (raised, updated, stopped firing; acknowledged and resolved by a clinician) is
  an audit entry with its own action, and each alert stores the rule's version and the values
  of the settings the rule read.

:func:`evaluate_patients` runs after every change to a patient's data (the after-change hook
of :mod:`speciosa.clinic.writes`, through :func:`speciosa.tasks.after_change`)
and for all patients in :func:`sweep` (``speciosa sweep``), which time-based rules (overdue
tests, missed diaries) need. ``sweep(workers=2)`` splits the chunks between processes.

Lookback
--------
The rules read bounded windows before ``as_of``, so evaluation loads only the rows inside
them for the big tables. :func:`lookback` takes the windows from the rules' own declarations
(:func:`speciosa.safety.data_windows`, with the resolved safety settings, so a site that
widens a window widens the load; ``docs/rules.md`` lists each rule's windows,
``docs/sweep.md`` the figures):

- doses: the longest dose window of any rule (the two fortnights of dose escalation and
  regular use, ``kratom_current_use_days``), plus each patient's last dose before the window
  when there is none inside it (rules that name the last dose, however old, declare it);
- diary days: the diary window plus the days before the last entry that ``diary-missed``
  reads; a patient whose last diary day is older than the window allows gets those days
  before that last day loaded too (so ``diary-missed`` is exact for any gap);
- substance use: the longest substance window;
- assessments, by instrument: each instrument's longest window; side-effect checklists the
  longest side-effect window. Instruments no rule reads (craving scores...) are not loaded;
- labs and medications: full history (the prolactin baseline is the patient's first result).

Every window gets :data:`MARGIN_DAYS` more, for time zones (windows start at local midnight).
:func:`load_timelines` without ``as_of`` loads the full history, as before.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import multiprocessing.util
import re
import traceback
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from django.db import connections, transaction
from django.db.models import FloatField, OuterRef, Q, Subquery
from django.db.models.functions import Cast
from django.utils import timezone, translation
from django.utils.translation import gettext

from speciosa import safety
from speciosa.ops import logs
from speciosa.pharmacology.doses import Dose as PDose
from speciosa.safety.settings import resolve_settings

from . import access, writes
from .models import (
    Alert,
    Assessment,
    AuditEntry,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Patient,
    SubstanceUse,
    SweepChunk,
    SweepRun,
    TreatmentEpisode,
    TreatmentFormulation,
)

log = logging.getLogger(__name__)

CHUNK = 1000
#: Days the records of a finished sweep run (``SweepRun``, ``SweepChunk``) are kept.
KEEP_RUNS_DAYS = 7
#: Rows fetched per round trip (server-side cursor on PostgreSQL).
FETCH = 10_000
#: Days added to every window: windows start at local midnight in the patient's zone.
MARGIN_DAYS = 2
#: The instrument the side-effect checklist is stored as (its items are the side effects).
SIDE_EFFECTS_INSTRUMENT = "side-effects"
#: A sweep's chunk re-evaluates, before reconciling, the patients whose records changed
#: since this long before its load started (:func:`changed_since`): a write's audit entry
#: takes its time before the write commits, so one committed just after the load began
#: carries a time just before it.
CHANGE_MARGIN = dt.timedelta(seconds=60)
#: The audited actions that change what the rules read. Not an alert's own events (a sweep
#: or a re-evaluation wrote them), not a clinician's acknowledgement or resolution (the
#: reconcile locks the alerts against those), not a view or an export.
RECORD_CHANGES = (AuditEntry.Action.CREATE, AuditEntry.Action.CORRECT, AuditEntry.Action.RETRACT,
                  AuditEntry.Action.STOP, AuditEntry.Action.CONFIRM, AuditEntry.Action.REVOKE)


def site_safety_settings() -> dict:
    """The site's overrides of the rules' named thresholds: the deployment's
    ``SPECIOSA_SAFETY_SETTINGS`` (JSON object) and the values an administrator stored
    (:mod:`speciosa.clinic.rule_settings`)."""
    from . import rule_settings

    return rule_settings.overrides()


def _f(x):
    return float(x) if x is not None else None


@dataclass(frozen=True)
class Lookback:
    """How many days before ``as_of`` each table is loaded (``None``: full history)."""

    doses: int
    diary_days: int
    substances: int
    assessments: Mapping[str, int] = field(default_factory=dict)  # instrument -> days; others skipped
    last_dose: bool = True  # also each patient's last dose, however old
    diary_before_last: int = 0  # days before the last diary day, however old, that are read


def lookback(settings: Mapping[str, float | int] | None = None) -> Lookback:
    """The windows the rules declare, with the settings in force (margin included)."""
    w = safety.data_windows(settings or None)

    def days(value: float) -> int:
        return int(value) + 1 + MARGIN_DAYS

    assessments = {instrument: days(n) for instrument, n in w.instruments().items()}
    if "side_effects" in w.days:
        assessments[SIDE_EFFECTS_INSTRUMENT] = days(w.days["side_effects"])
    before_last = int(w.before_last.get("diary_days", 0))
    return Lookback(
        doses=days(w.days.get("doses", 0)),
        # [last - before_last, as_of] lies inside this window whenever the last diary day is
        # inside the diary window itself; older last days are loaded separately
        diary_days=days(w.days.get("diary_days", 0) + before_last),
        substances=days(w.days.get("substances", 0)),
        assessments=assessments,
        last_dose="doses" in w.before_last,
        diary_before_last=before_last,
    )


def _tz(name: str | None) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _rows(qs, *, times: tuple[int, ...] = (), json_columns: tuple[int, ...] = ()) -> Iterator[tuple]:
    """The rows of a ``values_list`` queryset straight from the database cursor, in batches
    of :data:`FETCH` (a server-side cursor on PostgreSQL), without Django's per-value
    converters: only the columns at ``times`` (made aware on SQLite, which stores UTC without
    an offset) and ``json_columns`` (decoded) are touched."""
    conn = connections[qs.db]
    sql, params = qs.query.sql_with_params()
    if conn.vendor == "postgresql":  # JSON comes decoded (psycopg's binary jsonb loader)
        yield from _pg_rows(conn, sql, params)
        return
    naive = conn.vendor == "sqlite"
    tz = conn.timezone
    with conn.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(FETCH):
            if not (naive and times) and not json_columns:
                yield from batch
                continue
            for row in batch:
                row = list(row)
                if naive:
                    for i in times:
                        if row[i] is not None and row[i].tzinfo is None:
                            row[i] = row[i].replace(tzinfo=tz)
                for i in json_columns:
                    if isinstance(row[i], str | bytes):
                        row[i] = json.loads(row[i])
                yield row


def _pg_rows(conn, sql: str, params) -> Iterator[tuple]:
    """PostgreSQL: the rows in the binary protocol, through a plain (server-side binding)
    psycopg cursor on Django's connection. Django's own cursors bind parameters on the client
    and read times as text through a Python loader (about 10 us a row); psycopg's binary
    loaders are in C (times come back aware, in the connection's zone, UTC; ``jsonb`` values
    decoded)."""
    import psycopg

    conn.ensure_connection()
    with conn.wrap_database_errors, psycopg.Cursor(conn.connection) as cursor:
        cursor.execute(sql, params, binary=True)
        while batch := cursor.fetchmany(FETCH):
            yield from batch


#: A JSON value Python reads as true (``if value:``): not 0, false, null, "", [] or {}.
_PG_TRUTHY = ("CASE jsonb_typeof(e.value) WHEN 'number' THEN e.value::text::numeric <> 0 "
              "WHEN 'boolean' THEN e.value::text::boolean WHEN 'string' THEN e.value <> '\"\"'::jsonb "
              "WHEN 'array' THEN jsonb_array_length(e.value) > 0 WHEN 'object' THEN e.value <> '{}'::jsonb "
              "ELSE false END")


def _pg_side_effects(qs) -> Iterator[tuple]:
    """PostgreSQL: ``(patient_id, at, code)`` for each item a side-effect checklist of ``qs``
    has ticked (a true value), read with ``jsonb_each`` instead of decoding each checklist."""
    inner = qs.order_by().values_list("patient_id", "at", "items")
    sql, params = inner.query.sql_with_params()
    sql = (f"SELECT s.patient_id, s.at, e.key FROM ({sql}) AS s(patient_id, at, items) "
           "CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(s.items) = 'object' "
           "THEN s.items ELSE '{}'::jsonb END) AS e WHERE " + _PG_TRUTHY)
    return _pg_rows(connections[qs.db], sql, params)


def _of(qs, column: str, ids: Sequence[int]):
    """``qs`` restricted to rows whose ``column`` is in ``ids``: ``= ANY(%s)`` with one array
    parameter on PostgreSQL (``IN (%s, %s, ...)`` with a thousand parameters costs more to
    build and parse than the rows it selects), ``IN`` elsewhere."""
    if connections[qs.db].vendor == "postgresql":
        return qs.extra(where=[f'"{qs.model._meta.db_table}"."{column}" = ANY(%s)'], params=[list(ids)])
    return qs.filter(**{f"{column}__in": ids})


_FLOAT = FloatField()


def load_timelines(patient_ids: Sequence[int], *, as_of: dt.datetime | None = None,
                   settings: Mapping | None = None) -> dict[int, safety.Timeline]:
    """Build the safety timeline of each patient in ``patient_ids`` with bulk queries.

    With ``as_of``, only the rows the rules can read as of that time are loaded (the
    module's *Lookback*, from ``settings``); without it, the full history.
    """
    with safety.paused_gc():  # a chunk's rows are a few hundred thousand objects, no cycles
        return _load_timelines(patient_ids, as_of, settings)


def _load_timelines(patient_ids: Sequence[int], as_of: dt.datetime | None,
                    settings: Mapping | None) -> dict[int, safety.Timeline]:
    ids = list(patient_ids)
    if not ids:
        return {}
    patients = {}
    for pid, sex, birth, pregnant, breastfeeding, tzname in (
            _of(Patient.objects, "id", ids).order_by()
            .values_list("pk", "sex", "birth_date", "pregnant", "breastfeeding", "site__time_zone")):
        patients[pid] = (safety.Patient(sex=sex, birth_date=birth, pregnant=pregnant, breastfeeding=breastfeeding),
                         _tz(tzname))
    ids = list(patients)
    window = lookback(settings) if as_of is not None else None

    def since(days: int) -> dt.datetime:
        return as_of - dt.timedelta(days=days)

    # -- doses
    doses: dict[int, list] = defaultdict(list)
    dose_fields = ("patient_id", "taken_at", Cast("amount", _FLOAT), "unit", Cast("mitragynine_percent", _FLOAT),
                   Cast("grams_per_capsule", _FLOAT), "product")
    qs = _of(Dose.objects.current(), "patient_id", ids).order_by()
    if window is not None:
        qs = qs.filter(taken_at__gte=since(window.doses))
    seen_dose = set()
    for pid, taken_at, amount, unit, pct, gpc, product in _rows(qs.values_list(*dose_fields), times=(1,)):
        doses[pid].append(PDose(taken_at, amount, unit, pct, gpc, product or None))
        if window is not None and taken_at <= as_of:
            seen_dose.add(pid)
    if window is not None and window.last_dose and len(seen_dose) < len(ids):
        # the last dose before the window (rules name it in their evidence, however old)
        last = (Dose.objects.current().filter(patient_id=OuterRef("pk"), taken_at__lte=as_of)
                .order_by("-taken_at", "-pk").values("pk")[:1])
        pks = [pk for pk in _of(Patient.objects, "id", [p for p in ids if p not in seen_dose]).order_by()
               .annotate(last=Subquery(last)).values_list("last", flat=True) if pk is not None]
        if pks:
            for pid, taken_at, amount, unit, pct, gpc, product in (
                    _of(Dose.objects, "id", pks).order_by().values_list(*dose_fields)):
                doses[pid].append(PDose(taken_at, amount, unit, pct, gpc, product or None))

    # -- assessments and side effects
    assessments: dict[int, list] = defaultdict(list)
    side_effects: dict[int, list] = defaultdict(list)
    current = _of(Assessment.objects.current(), "patient_id", ids)
    pg = connections[Assessment.objects.db].vendor == "postgresql"
    groups, ticked = [], []
    if window is None:
        groups.append(current.exclude(instrument=SIDE_EFFECTS_INSTRUMENT) if pg else current)
        ticked.append(current.filter(instrument=SIDE_EFFECTS_INSTRUMENT))
    else:
        by_days: dict[int, list[str]] = defaultdict(list)
        for instrument, days in window.assessments.items():
            by_days[days].append(instrument)
        for days, instruments in sorted(by_days.items()):
            qs = current.filter(at__gte=since(days))
            if pg and SIDE_EFFECTS_INSTRUMENT in instruments:
                ticked.append(qs.filter(instrument=SIDE_EFFECTS_INSTRUMENT))
                instruments = [i for i in instruments if i != SIDE_EFFECTS_INSTRUMENT]
            if instruments:  # no query for a window that holds only the checklists (or nothing)
                groups.append(qs.filter(instrument__in=instruments))
    if pg:
        # the checklists' reported side effects come from the database as (patient, at, code)
        # rows: a year of weekly checklists is most of the JSON a chunk would decode
        for qs in ticked:
            for pid, at, code in _pg_side_effects(qs):
                side_effects[pid].append(safety.SideEffect(at=at, code=code))
    for qs in groups:
        for pid, instrument, at, items, total in _rows(
                qs.order_by().values_list("patient_id", "instrument", "at", "items", "total"),
                times=(2,), json_columns=(3,)):
            if instrument == SIDE_EFFECTS_INSTRUMENT:
                out = side_effects[pid]
                # only an object's items are ticked side effects (as jsonb_each reads them on
                # PostgreSQL): a list or a scalar stored there ticks nothing, and raises nothing
                for code, value in (items if isinstance(items, dict) else {}).items():
                    if value:
                        out.append(safety.SideEffect(at=at, code=code))
            else:
                assessments[pid].append(safety.Assessment(instrument=instrument, at=at, items=items or None,
                                                          total=total))

    # -- labs (full history: the prolactin baseline is the first result)
    # The stored canonical value and range (canonical unit) reach the rules; the catalogue's
    # range is not passed as if it were the laboratory's: the rules fall back to it themselves.
    labs: dict[int, list] = defaultdict(list)
    laboratory = LabResult.RangeSource.LABORATORY
    for (pid, lab, at, value, unit, cvalue, cunit, low, high, source, result, cmp, factor,
         state, panel, problems) in _rows(
            _of(LabResult.objects.current(), "patient_id", ids).order_by()
            .values_list("patient_id", "lab", "collected_at", Cast("value", _FLOAT), "unit",
                         "canonical_value", "canonical_unit", "reference_low", "reference_high",
                         "reference_source", "result", "comparator", "iu_factor",
                         "sample_state", "panel_id", "panel__specimen_problems"),
            times=(2,), json_columns=(15,)):
        own = source == laboratory
        labs[pid].append(safety.LabResult(
            lab=lab, at=at, value=value, unit=unit or None, result=result or None,
            comparator=cmp or None, iu_factor=factor, canonical_value=cvalue,
            sample_state=state or None, panel=panel, specimen_invalid=bool(problems),
            reference_unit=cunit or None,
            reference_low=low if own else None, reference_high=high if own else None))

    # -- medications (full history) and substance use
    meds: dict[int, list] = defaultdict(list)
    for pid, name, start, end, drug, status in (
            _of(Medication.objects.current(), "patient_id", ids).order_by()
            .values_list("patient_id", "name", "start", "end", "drug", "status")):
        meds[pid].append(safety.Medication(name=name, start=start, end=end, drug=drug or None,
                                           status=status))
    # treatment episodes (buprenorphine, methadone, naltrexone) are current medications of
    # their drug for the rules (issue 19)
    for pid, drug, formulation, start, end, status in (
            _of(TreatmentEpisode.objects.current(), "patient_id", ids).order_by()
            .values_list("patient_id", "drug", "formulation", "start", "end", "status")):
        with translation.override("en"):  # the rules' text is English whatever the page's
            label = str(TreatmentFormulation(formulation).label) if formulation in \
                TreatmentFormulation.values else formulation
        meds[pid].append(safety.Medication(
            name=f"{drug} {label} (treatment episode)", start=start, end=end, drug=drug,
            status="active" if status == "active" else "stopped"))
    substances: dict[int, list] = defaultdict(list)
    qs = _of(SubstanceUse.objects.current(), "patient_id", ids).order_by()
    if window is not None:
        qs = qs.filter(at__gte=since(window.substances))
    for pid, name, at in _rows(qs.values_list("patient_id", "name", "at"), times=(2,)):
        substances[pid].append(safety.Substance(name=name, at=at))

    # -- diary days
    diary = _load_diary_days(ids, patients, as_of, window)

    timelines = {}
    for pid, (patient, tz) in patients.items():
        timelines[pid] = safety.Timeline(
            patient=patient, doses=tuple(doses.get(pid, ())), assessments=tuple(assessments.get(pid, ())),
            labs=tuple(labs.get(pid, ())), side_effects=tuple(side_effects.get(pid, ())),
            medications=tuple(meds.get(pid, ())), substances=tuple(substances.get(pid, ())),
            diary_days=tuple(diary.get(pid, ())), tz=tz)
    return timelines


def _load_diary_days(ids: list[int], patients: dict, as_of: dt.datetime | None,
                     window: Lookback | None) -> dict[int, list[dt.date]]:
    """Diary days of these patients: all of them without a window; with one, the days in the
    window, plus the days before the last diary day (``Lookback.diary_before_last``) of any
    patient whose last day is too old for the window to hold them (``diary-missed`` counts
    those days)."""
    diary: dict[int, list[dt.date]] = defaultdict(list)
    qs = _of(DiaryDay.objects, "patient_id", ids).order_by()
    if window is None:
        for pid, day in qs.values_list("patient_id", "day").iterator(chunk_size=FETCH):
            diary[pid].append(day)
        return diary
    first_day = as_of.astimezone(dt.UTC).date() - dt.timedelta(days=window.diary_days)
    for pid, day in _rows(qs.filter(day__gte=first_day).values_list("patient_id", "day")):
        diary[pid].append(day)
    # patients whose [last - before_last + 1, last] is not inside the loaded days, by their
    # local "today"
    short: dict[dt.date, list[int]] = defaultdict(list)
    before_last = window.diary_before_last
    enough = first_day + dt.timedelta(days=before_last - 1)
    for pid in ids:
        today = as_of.astimezone(patients[pid][1]).date()
        last = max((d for d in diary.get(pid, ()) if d <= today), default=None)
        if last is None or last < enough:
            short[today].append(pid)
    for today, group in short.items():
        newest = (DiaryDay.objects.filter(patient_id=OuterRef("pk"), day__lte=today)
                  .order_by("-day").values("day")[:1])
        lasts = {pid: last for pid, last in _of(Patient.objects, "id", group).order_by()
                 .annotate(last=Subquery(newest)).values_list("pk", "last") if last is not None}
        # one query per 64-day band of last days: bounded by the length of history, not patients
        bands: dict[int, list[int]] = defaultdict(list)
        for pid, last in lasts.items():
            bands[last.toordinal() // 64].append(pid)
        for band, members in bands.items():
            lo, hi = band_days(band, before_last, first_day)
            if hi < lo:
                continue
            for pid, day in (_of(DiaryDay.objects, "patient_id", members).filter(day__gte=lo, day__lte=hi)
                             .order_by().values_list("patient_id", "day")):
                if lasts[pid] - dt.timedelta(days=before_last) <= day:
                    diary[pid].append(day)
    return diary


def _day(ordinal: int) -> dt.date:
    """The date of ``ordinal``, held within the calendar (year 1 to 9999)."""
    return dt.date.fromordinal(min(max(ordinal, 1), dt.date.max.toordinal()))


def _minus(day: dt.date, days: int) -> dt.date:
    try:
        return day - dt.timedelta(days=days)
    except OverflowError:  # before 1 January of year 1
        return dt.date.min


def band_days(band: int, before_last: int, first_day: dt.date) -> tuple[dt.date, dt.date]:
    """The diary days a 64-day band of last days reads, ``(lo, hi)``: from ``before_last`` days
    before the band's first day to its last day (at most the day before ``first_day``). The
    band's days are held within the calendar: band 0 starts at ordinal 0 (not a date) and the
    last band ends after 31 December 9999, which ``date.fromordinal`` refuses."""
    lo = _minus(_day(band * 64), before_last)
    hi = min(_day(band * 64 + 63), _minus(first_day, 1))
    return lo, hi


@dataclass
class SweepResult:
    patients: int = 0
    findings: int = 0
    created: int = 0
    updated: int = 0
    stopped: int = 0  # active alerts whose rule stopped firing in this run (they stay open)
    #: Patients whose rules raised: not evaluated, their alerts left as they were (logged).
    failed: list[int] = field(default_factory=list)
    #: ``(first, last)`` patient ids of the chunks whose task failed (over the queue only).
    failed_chunks: list[tuple[int, int]] = field(default_factory=list)
    #: Patients evaluated again before the reconcile: their records changed after the load.
    rechecked: int = 0

    def add(self, other: SweepResult) -> None:
        """Add another result's counts to this one."""
        self.failed += other.failed
        self.failed_chunks += other.failed_chunks
        self.rechecked += other.rechecked
        self.patients += other.patients
        self.findings += other.findings
        self.created += other.created
        self.updated += other.updated
        self.stopped += other.stopped


_ALERT_FIELDS = ("severity", "message", "next_step", "evidence", "citations", "last_seen_at",
                 "status", "stopped_firing_at", "rule_version", "settings")
#: What an alert's audit entries hold of it (``before`` / ``after``).
_AUDITED = ("status", "severity", "message", "evidence", "rule_version", "settings",
            "stopped_firing_at")


def _audited(alert: Alert) -> dict:
    out = {name: getattr(alert, name) for name in _AUDITED}
    if out["stopped_firing_at"] is not None:
        out["stopped_firing_at"] = out["stopped_firing_at"].isoformat()
    return out


def _rule_settings(rule_id: str, settings: Mapping) -> tuple[int | None, dict]:
    """The version of a rule and the values of the settings it reads."""
    try:
        r = safety.get_rule(rule_id)
    except KeyError:
        return None, {}
    return r.version, {name: settings[name] for name in r.settings}


def _reconcile(findings_by_patient: dict[int, list], now: dt.datetime, result: SweepResult,
               settings: Mapping | None = None,
               refresh: Callable[[list[int]], dict[int, list]] | None = None) -> None:
    """Bring the alerts of these patients in line with their findings.

    A finding without an active alert raises one (audited ``alert-raised``); a changed
    finding updates its alert (``alert-updated``; an alert that had stopped firing fires
    again); an active alert whose rule no longer fires stays active and records when it
    stopped (``alert-stopped``, once). Only a clinician closes an alert (:func:`resolve`).

    ``refresh`` (a sweep's chunk) is called with the patients' ids once their active alerts
    are locked, and returns the findings to reconcile (those of patients whose records
    changed since the chunk's load evaluated again; a patient left out is not reconciled).
    """
    settings = resolve_settings(settings or None)
    ids = list(findings_by_patient)
    # Locked until the chunk commits (in pk order, so two sweeps wait rather than deadlock):
    # the changed ones are written back whole, status included, and a clinician's
    # acknowledgement or resolution committed in between would be overwritten (a resolved
    # alert back on the worklist as open). acknowledge() and resolve() lock the alert too.
    active = {(a.patient_id, a.rule): a for a in
              Alert.objects.filter(patient_id__in=ids, status__in=Alert.ACTIVE).order_by("pk")
              .select_for_update(of=("self",))
              .only("id", "patient_id", "rule", "topic", *_ALERT_FIELDS)}
    if refresh is not None:
        # A write committed since the chunk's load (a diary saved, then re-evaluated by
        # after_change) is newer than these findings: reconciled against them, the alerts it
        # raised would be marked as no longer firing. Its patients are evaluated again now,
        # their alerts locked: a write committed after this point re-evaluates after this
        # transaction, waiting on those locks.
        findings_by_patient = refresh(ids)
        active = {key: a for key, a in active.items() if key[0] in findings_by_patient}
    # A clinician's resolution stands while the finding's evidence is unchanged and it is
    # no more severe than what was resolved (the same QTc is urgent once the urgent
    # threshold is lowered: a new alert).
    resolved = {}
    for pid, rule, evidence, severity in (
            Alert.objects.filter(patient_id__in=ids, status=Alert.Status.RESOLVED)
            .order_by("resolved_at").values_list("patient_id", "rule", "evidence", "severity")):
        resolved[(pid, rule)] = (evidence, Alert.SEVERITY_RANK.get(severity, 9))
    to_create, to_update, seen = [], [], []
    trail: list = []
    fired = set()
    for pid, findings in findings_by_patient.items():
        for f in findings:
            key = (pid, f.rule)
            fired.add(key)
            # as JSON holds it; a non-finite number (an infinite lab value in a bad record) as
            # text: neither jsonb nor SQLite's JSON check takes Infinity or NaN as a number
            # (PostgreSQL refused the whole chunk; SQLite's INSERT OR IGNORE dropped the alert)
            evidence = json.loads(json.dumps(f.evidence, default=str), parse_constant=str)
            existing = active.get(key)
            citations = list(f.citations)
            version, used = _rule_settings(f.rule, settings)
            if existing is None:
                earlier = resolved.get(key)
                if earlier is not None and earlier[0] == evidence \
                        and Alert.SEVERITY_RANK.get(f.severity, 9) >= earlier[1]:
                    continue
                to_create.append(Alert(
                    patient_id=pid, rule=f.rule, topic=f.topic, severity=f.severity,
                    message=f.message, next_step=f.next_step, evidence=evidence,
                    citations=citations, first_seen_at=now, last_seen_at=now,
                    rule_version=version, settings=used))
                continue
            changed = (existing.severity != f.severity or existing.message != f.message
                       or existing.evidence != evidence or existing.stopped_firing_at is not None
                       or existing.rule_version != version or existing.settings != used)
            if not changed and existing.next_step == f.next_step and existing.citations == citations:
                seen.append(existing.pk)  # only last_seen_at moves
                continue
            before = _audited(existing)
            existing.severity, existing.message = f.severity, f.message
            existing.next_step, existing.evidence = f.next_step, evidence
            existing.citations, existing.last_seen_at = citations, now
            existing.rule_version, existing.settings = version, used
            existing.stopped_firing_at = None  # firing (again)
            if changed and existing.status == Alert.Status.ACKNOWLEDGED and f.severity == "urgent":
                existing.status = Alert.Status.OPEN  # a new urgent finding needs a new look
            to_update.append(existing)
            trail.append(writes.audit_entry(
                None, writes.Action.ALERT_UPDATED, existing, patient=Patient(pk=pid),
                before=before, after=_audited(existing), at=now,
                reason="the finding changed when the rules were re-evaluated"))
    if to_create:
        Alert.objects.bulk_create(to_create, ignore_conflicts=True, batch_size=500)
        # the rows this run inserted (a concurrent sweep's insert of the same alert was ignored)
        keys = {(a.patient_id, a.rule) for a in to_create}
        created = [a for a in Alert.objects.filter(patient_id__in={k[0] for k in keys},
                                                   status__in=Alert.ACTIVE, first_seen_at=now)
                   .order_by("pk") if (a.patient_id, a.rule) in keys]
        result.created += len(created)
        trail += [writes.audit_entry(None, writes.Action.ALERT_RAISED, a,
                                     patient=Patient(pk=a.patient_id), after=_audited(a), at=now,
                                     reason="raised by the safety rules")
                  for a in created]
    if to_update:
        Alert.objects.bulk_update(to_update, list(_ALERT_FIELDS), batch_size=500)
    for start in range(0, len(seen), 5000):
        Alert.objects.filter(pk__in=seen[start:start + 5000]).update(last_seen_at=now)
    result.updated += len(to_update) + len(seen)
    stopping = [a for key, a in active.items() if key not in fired and a.stopped_firing_at is None]
    if stopping:
        pks = [a.pk for a in stopping]
        result.stopped += Alert.objects.filter(
            pk__in=pks, status__in=Alert.ACTIVE, stopped_firing_at__isnull=True,
        ).update(stopped_firing_at=now)
        for a in stopping:
            before = _audited(a)
            a.stopped_firing_at = now
            trail.append(writes.audit_entry(
                None, writes.Action.ALERT_STOPPED, a, patient=Patient(pk=a.patient_id),
                before=before, after=_audited(a), at=now,
                reason="the rule no longer fires; the alert stays open until a clinician resolves it"))
    if trail:
        writes.append_audit(trail)


def reconcile(findings_by_patient: dict[int, list], settings: Mapping | None = None) -> SweepResult:
    """Reconcile these patients' alerts with their findings in one transaction (what a
    sweep does after evaluating a chunk; the benchmark times it on its own)."""
    result = SweepResult()
    with safety.paused_gc(), transaction.atomic():
        _reconcile(findings_by_patient, timezone.now(), result, settings)
    return result


def _evaluate(timelines: dict, as_of: dt.datetime, settings: Mapping, failed: list[int]) -> dict[int, list]:
    try:
        return safety.evaluate_many(timelines, as_of, settings)
    except Exception:
        # One patient's record that a rule cannot read must not cost the chunk's other
        # patients their alerts: evaluate them one by one, and leave the alerts of any whose
        # rules raise as they are (not "stopped firing"), logged and counted as failed.
        findings = {}
        for pid, timeline in timelines.items():
            try:
                findings[pid] = safety.evaluate(timeline, as_of, settings)
            except Exception:
                log.exception("safety rules failed for a patient; their alerts were left as they were",
                              extra={"patient_id": pid})
                failed.append(pid)
        return findings


def last_audit_id() -> int:
    """The id of the newest audit entry stored (0 for none): one read of the primary key's
    index. An entry stored after this read has a larger id."""
    return AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def changed_since(patient_ids: Sequence[int], since: dt.datetime, *, after_id: int | None = None) -> list[int]:
    """The patients among these with a record written (created, corrected, retracted,
    stopped, confirmed; audited) at or after ``since``, or (``after_id``) in an audit entry
    whose id is beyond it, whatever its time: one query on the audit trail's time and
    primary-key indexes, which hold a few rows for the last minutes.

    The id catches what the time cannot: an entry's ``at`` is the writing server's clock (one
    running minutes behind the worker's), taken before its transaction commits (a FHIR
    import's are stamped when its one transaction began). The time catches what the id
    cannot: an id taken before ``after_id`` was read by a transaction that commits after."""
    ids = list(patient_ids)
    # two queries, not one with OR: PostgreSQL read the whole audit trail for the OR (18 ms
    # on 110,000 entries, a sequential scan) and each half on its own index (0.4 and 0.2 ms)
    changed = [Q(at__gte=since)] if after_id is None else [Q(at__gte=since), Q(pk__gt=after_id)]
    return sorted({pid for which in changed
                   for pid in AuditEntry.objects.filter(which, patient_id__in=ids, action__in=RECORD_CHANGES)
                   .order_by().values_list("patient_id", flat=True).distinct()})


def _evaluate_chunk(chunk: Sequence[int], as_of: dt.datetime, settings: Mapping, *,
                    recheck: bool = False, as_of_fixed: bool = True) -> SweepResult:
    """Load, evaluate and reconcile one chunk. ``recheck`` (a sweep): in the reconcile's
    transaction, the patients whose records changed since the load started
    (:func:`changed_since`: an audit entry stored since, or timed since less
    :data:`CHANGE_MARGIN`) are loaded and evaluated again,
    as of ``as_of`` when it is fixed, else as of then."""
    # One pause of the collector for the whole chunk: resumed between the phases, it would
    # walk the chunk's timelines once more (speciosa.safety.paused_gc: the inner pauses of
    # the load and evaluate_many are no-ops). The timelines are freed after evaluating.
    with safety.paused_gc():
        return _evaluate_chunk_paused(chunk, as_of, settings, recheck=recheck, as_of_fixed=as_of_fixed)


def _evaluate_chunk_paused(chunk: Sequence[int], as_of: dt.datetime, settings: Mapping, *,
                           recheck: bool, as_of_fixed: bool) -> SweepResult:
    result = SweepResult()
    loaded_at, seen = timezone.now(), last_audit_id() if recheck else None
    findings = _evaluate(load_timelines(chunk, as_of=as_of, settings=settings), as_of, settings, result.failed)

    def refresh(ids: list[int]) -> dict[int, list]:
        changed = changed_since(ids, loaded_at - CHANGE_MARGIN, after_id=seen)
        if changed:
            at = as_of if as_of_fixed else timezone.now()
            for pid in changed:
                del findings[pid]  # evaluated again below, or failed this time
            findings.update(_evaluate(load_timelines(changed, as_of=at, settings=settings), at, settings,
                                      result.failed))
            result.rechecked += len(changed)
        return findings

    with transaction.atomic():
        _reconcile(findings, timezone.now(), result, settings, refresh if recheck else None)
    result.patients += len(findings)
    result.findings += sum(len(v) for v in findings.values())
    return result


def evaluate_patients(patient_ids: Iterable[int], *, as_of: dt.datetime | None = None,
                      settings: dict | None = None, recheck: bool = False,
                      as_of_fixed: bool | None = None) -> SweepResult:
    """Evaluate the rules for these patients and reconcile their alerts (``recheck``, as a
    sweep does: see :func:`_evaluate_chunk`)."""
    fixed = as_of is not None if as_of_fixed is None else as_of_fixed
    as_of = as_of or timezone.now()
    settings = site_safety_settings() if settings is None else settings
    result = SweepResult()
    ids = list(patient_ids)
    for start in range(0, len(ids), CHUNK):
        result.add(_evaluate_chunk(ids[start:start + CHUNK], as_of, settings, recheck=recheck, as_of_fixed=fixed))
    return result


def _all_patient_ids() -> Iterator[int]:
    return Patient.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=CHUNK)


def _worker_start() -> None:
    # A forked worker never uses (or closes) the parent's database connections: it opens its
    # own, and closes them when it exits.
    for conn in connections.all(initialized_only=True):
        conn.connection = None
    multiprocessing.util.Finalize(None, connections.close_all, exitpriority=10)


def _worker_chunk(task: tuple[list[int], dt.datetime, Mapping, bool]) -> SweepResult:
    chunk, as_of, settings, fixed = task
    return _evaluate_chunk(chunk, as_of, settings, recheck=True, as_of_fixed=fixed)


def sweep(*, as_of: dt.datetime | None = None, workers: int = 1) -> SweepResult:
    """Evaluate every patient (time-based rules). Safe to run often and concurrently.

    ``workers`` > 1 evaluates chunks of patients in that many processes (``fork``; each has
    its own database connection). Chunks never share a patient, and the partial unique index
    keeps one active alert per rule even against another sweep running at the same time.
    """
    fixed = as_of is not None
    as_of = as_of or timezone.now()
    settings = site_safety_settings()
    ids = list(_all_patient_ids())
    chunks = [ids[start:start + CHUNK] for start in range(0, len(ids), CHUNK)]
    workers = min(workers, len(chunks))
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return evaluate_patients(ids, as_of=as_of, settings=settings, recheck=True, as_of_fixed=fixed)
    result = SweepResult()
    connections.close_all()
    pool = multiprocessing.get_context("fork").Pool(workers, initializer=_worker_start)
    try:
        for part in pool.imap_unordered(_worker_chunk, [(c, as_of, settings, fixed) for c in chunks]):
            result.add(part)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
    return result


# --------------------------------------------------------------------------- the task queue

def plan_sweep(key: str, *, as_of: dt.datetime | None = None, chunk: int | None = None) -> SweepRun:
    """The sweep run ``key`` (the ``sweep_all`` task's id), planned now if it is new: the
    patients' ids cut into ranges of ``chunk`` patients (:data:`CHUNK`), one
    :class:`SweepChunk` each, and the safety settings in force. A run planned before (a
    redelivered task) is returned as it is."""
    run = SweepRun.objects.filter(key=key).first()
    if run is not None:
        return run
    size = chunk or CHUNK
    if size < 1:
        raise ValueError("a sweep chunk holds at least one patient")
    # a run every 15 minutes: the records of finished runs are kept for KEEP_RUNS_DAYS
    SweepRun.objects.filter(finished_at__lt=timezone.now() - dt.timedelta(days=KEEP_RUNS_DAYS)).delete()
    ids = list(_all_patient_ids())
    ranges = [(ids[i], ids[min(i + size, len(ids)) - 1]) for i in range(0, len(ids), size)]
    with transaction.atomic():
        run, made = SweepRun.objects.get_or_create(key=key, defaults={
            "as_of": as_of or timezone.now(), "as_of_fixed": as_of is not None,
            "settings": site_safety_settings(), "chunk_size": size, "chunks": len(ranges)})
        if made:
            SweepChunk.objects.bulk_create([SweepChunk(run=run, first_patient=a, last_patient=b)
                                            for a, b in ranges])
    return run


def pending_chunks(run: SweepRun) -> list[tuple[int, int]]:
    """``(first, last)`` of the run's chunks not done yet, in order."""
    return list(run.chunk_set.filter(done_at__isnull=True).order_by("first_patient")
                .values_list("first_patient", "last_patient"))


def run_chunk(run_id: int, first: int, last: int, *, worker: str = "") -> SweepResult | None:
    """Evaluate one chunk of a sweep run, once: the chunk's row is locked for the whole
    evaluation, so a duplicated task waits and then finds it done (None); the alerts and the
    chunk's ``done_at`` are committed together, so a worker lost half-way leaves neither and
    the redelivered task does the chunk again."""
    with transaction.atomic():
        # the chunk's row only (``of``): locking the joined run row too would make every other
        # chunk of the run wait for this one, and the workers take turns instead of sharing
        chunk = (SweepChunk.objects.select_for_update(of=("self",)).select_related("run")
                 .filter(run_id=run_id, first_patient=first, last_patient=last).first())
        if chunk is None or chunk.done_at is not None:
            return None
        run = chunk.run
        # A periodic run evaluates each chunk as of when it runs: a chunk taken from a backlog
        # or redelivered after a lost worker (an hour later, Redis's visibility timeout) as of
        # the planning time would overwrite alerts that a change evaluated since raised on
        # newer data (a 7-OH dose logged after the planning: 'no longer firing'). A run given
        # an as_of keeps it.
        as_of = run.as_of if run.as_of_fixed else timezone.now()
        ids = list(Patient.objects.filter(pk__gte=first, pk__lte=last).order_by("pk")
                   .values_list("pk", flat=True))
        result = SweepResult()
        for start in range(0, len(ids), CHUNK):
            result.add(_evaluate_chunk(ids[start:start + CHUNK], as_of, run.settings, recheck=True,
                                       as_of_fixed=run.as_of_fixed))
        chunk.done_at, chunk.worker = timezone.now(), worker[:200]
        chunk.evaluations += 1
        for name in ("patients", "findings", "created", "updated", "stopped"):
            setattr(chunk, name, getattr(result, name))
        chunk.failed_patients = result.failed
        chunk.failed_at, chunk.error_type, chunk.error = None, "", ""  # an earlier failure, redone
        chunk.save()
    return result


#: A value the database quotes at the end of its message ('invalid input syntax for type
#: integer: "Ana"') or names ('value "123456789012" is out of range').
_QUOTED_VALUE = re.compile(r'(: |\bvalue )"[^"]*"')


def failure_text(exc: BaseException) -> str:
    """What a failed chunk keeps of its error, shown by ``speciosa sweep --runs``: never a
    patient's data, as the log (which keeps an exception's type and frames, not its message).
    A database error: its first line, the values it quotes taken out (PostgreSQL's DETAIL,
    HINT and CONTEXT lines that follow carry the row met: 'Key (site_id, identifier)=(1, Q-0)
    already exists', 'Failing row contains (...)'). Another error (a bug, whose message is
    whatever it was given, a patient's name included): where it was raised."""
    from django.db import Error as DatabaseError

    if isinstance(exc, DatabaseError):
        first_line = (str(exc).strip().splitlines() or [""])[0]
        text = _QUOTED_VALUE.sub(r'\1"[value]"', first_line)
    else:
        frames = traceback.extract_tb(exc.__traceback__)
        text = (f"raised at {'/'.join(frames[-1].filename.split('/')[-3:])}:{frames[-1].lineno} "
                f"in {frames[-1].name} (the message is not kept: it may hold a patient's data)"
                if frames else "the message is not kept: it may hold a patient's data")
    return logs.redact(text)[:SweepChunk.ERROR_CHARS]


def fail_chunk(run_id: int, first: int, last: int, exc: BaseException, *, worker: str = "") -> bool:
    """Record that a chunk's task failed for a reason other than a patient's record (its
    transaction rolled back: no alert written, not done): when, the error's type and what
    can be kept of its message (:func:`failure_text`), the worker. Nothing when the chunk is
    done (a duplicate delivery did it meanwhile). True when recorded."""
    with transaction.atomic():
        chunk = (SweepChunk.objects.select_for_update()
                 .filter(run_id=run_id, first_patient=first, last_patient=last).first())
        if chunk is None or chunk.done_at is not None:
            return False
        kind = type(exc)
        chunk.failed_at, chunk.worker = timezone.now(), worker[:200]
        chunk.error_type = f"{kind.__module__}.{kind.__qualname__}"[:200]
        chunk.error = failure_text(exc)
        chunk.save(update_fields=["failed_at", "worker", "error_type", "error"])
    return True


def finish_run(run_id: int) -> bool:
    """Record the run's completion once every chunk is done or failed (True for the call
    that does; the run's row is locked, so two chunks finishing at once cannot both). A run
    with failed chunks is finished but not complete; when a failed chunk is done later (a
    redelivery), the next call records the totals again (True again)."""
    from django.db.models import Sum

    with transaction.atomic():
        run = SweepRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.chunk_set.filter(done_at__isnull=True, failed_at__isnull=True).exists():
            return False
        failed_chunks = run.chunk_set.filter(done_at__isnull=True).count()
        if run.finished_at is not None and run.failed_chunks == failed_chunks:
            return False  # recorded before, and nothing changed since
        totals = run.chunk_set.aggregate(**{n: Sum(n) for n in ("patients", "findings", "created",
                                                                 "updated", "stopped")})
        for name, value in totals.items():
            setattr(run, name, value or 0)
        run.failed = sum(len(ids) for ids in run.chunk_set.values_list("failed_patients", flat=True))
        run.failed_chunks = failed_chunks
        if run.finished_at is None:
            run.finished_at = timezone.now()
        run.save()
    return True


def failed_chunks(run: SweepRun) -> list[SweepChunk]:
    """The run's chunks whose task failed (not done), in order."""
    return list(run.chunk_set.filter(done_at__isnull=True, failed_at__isnull=False).order_by("first_patient"))


def run_result(run: SweepRun) -> SweepResult:
    failed = [pid for ids in run.chunk_set.order_by("first_patient").values_list("failed_patients", flat=True)
              for pid in ids]
    return SweepResult(patients=run.patients, findings=run.findings, created=run.created,
                       updated=run.updated, stopped=run.stopped, failed=failed,
                       failed_chunks=[(c.first_patient, c.last_patient) for c in failed_chunks(run)])


def after_change(patient: Patient) -> None:
    evaluate_patients([patient.pk])


# --------------------------------------------------------------------------- clinician steps

def visible_alerts(user):
    return Alert.objects.filter(patient__in=access.visible_patients(user))


def acknowledge(user, alert: Alert) -> Alert:
    """Mark an open alert as seen (audited as ``acknowledge``); any other status is left as it is."""
    writes.require(access.can_write_clinical(user, alert.patient),
                   "Only the patient's care team acknowledges their alerts.")
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.status != Alert.Status.OPEN:
            return locked
        locked.status, locked.acknowledged_by, locked.acknowledged_at = (
            Alert.Status.ACKNOWLEDGED, user, timezone.now())
        locked.save(update_fields=["status", "acknowledged_by", "acknowledged_at"])
        writes.audit(user, writes.Action.ACKNOWLEDGE, locked, patient=locked.patient,
                     before={"status": "open"}, after={"status": "acknowledged"}, reason="acknowledged")
    return locked


def resolve(user, alert: Alert, note: str) -> Alert:
    """Close an active alert with the clinician's note (audited as ``resolve``)."""
    from django.core.exceptions import ValidationError

    writes.require(access.can_write_clinical(user, alert.patient),
                   "Only the patient's care team resolves their alerts.")
    note = (note or "").strip()
    if not note:
        raise ValidationError({"note": gettext("Say how this alert was dealt with.")})
    with transaction.atomic():
        locked = Alert.objects.select_for_update().get(pk=alert.pk)
        if locked.status not in Alert.ACTIVE:
            return locked
        before = locked.status
        locked.status, locked.resolved_by, locked.resolved_at = Alert.Status.RESOLVED, user, timezone.now()
        locked.resolution_note = note[:500]
        locked.save(update_fields=["status", "resolved_by", "resolved_at", "resolution_note"])
        writes.audit(user, writes.Action.RESOLVE, locked, patient=locked.patient,
                     before={"status": before}, after={"status": "resolved"}, reason=note)
    return locked
