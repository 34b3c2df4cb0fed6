"""One patient's chartable record, gathered with a handful of bulk queries.

:func:`chart_data` is the one selector the charts, the table view and the visit report read.
It takes a patient the caller may already see (access is decided in
:mod:`speciosa.clinic.access`) and returns plain values: no model instances leave this module
except the alerts, so the spec builders in :mod:`speciosa.reports.charts` stay pure.

Times
-----
Charts show the *site's* wall-clock time whatever the viewer's browser thinks. Every instant is
converted to the site's local time and written as milliseconds since 1970-01-01 of that wall
time read as UTC (``wall_ms``); the specs use UTC scales and UTC formats, so a dose at 08:30 in
New York sits at 08:30 on the axis in a browser anywhere, and in the PDF.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from speciosa.clinic.models import (
    Alert,
    Assessment,
    Dose,
    LabResult,
    Medication,
    Patient,
    TreatmentEpisode,
    UrinePanel,
)
from speciosa.knowledge import labs as klabs
from speciosa.pharmacology import doses as pdoses

#: Instruments charted as scores over time (others show in the visit report's table only).
SCORE_INSTRUMENTS = ("cows", "sows", "craving-nrs")
#: Assessments the charts and the report read.
CHART_INSTRUMENTS = (*SCORE_INSTRUMENTS, "side-effects")
#: Exposure grid of the charts: 2-hourly points over the whole record, a population of 300
#: simulated subjects for the 5-95 % band (seeded, so the band is the same on every load).
EXPOSURE_STEP_MINUTES = 120
EXPOSURE_SUBJECTS = 300
# The exposure series of a record is cached for this long (it changes when doses change,
# which changes the key, and with the hour)
EXPOSURE_CACHE_SECONDS = 3600

_EPOCH = dt.datetime(1970, 1, 1)


def wall_ms(when: dt.datetime | dt.date, tz: dt.tzinfo) -> int:
    """Milliseconds of ``when``'s wall-clock time in ``tz``, read as UTC (see module docstring).

    A :class:`datetime.date` stands for noon of that day, so a daily bar centres on its day.
    """
    if isinstance(when, dt.datetime):
        local = when.astimezone(tz).replace(tzinfo=None) if when.tzinfo else when
    else:
        local = dt.datetime.combine(when, dt.time(12, 0))
    return int((local - _EPOCH).total_seconds() * 1000)


@dataclass(frozen=True)
class ScorePoint:
    """One instrument score (COWS, SOWS, craving)."""

    instrument: str
    at: dt.datetime
    total: int | None
    band: str
    flags: tuple[str, ...]


@dataclass(frozen=True)
class LabPoint:
    """One quantitative laboratory result in its canonical unit."""

    lab: str
    name: str
    at: dt.datetime
    value: float
    unit: str
    shown: str  # as reported, e.g. "450 m[IU]/L"
    reference_low: float | None
    reference_high: float | None
    flag: str
    reference_source: str = ""  # "laboratory", "catalogue" (the fallback) or "" (unknown)
    sample_state: str = ""  # prolactin: pregnancy at the sample (speciosa.clinic.pregnancy)
    sample_state_note: str = ""

    @property
    def unit_shown(self) -> str:
        """The canonical unit as people write it (``m[IU]/L`` -> ``mIU/L``, ``umol/L`` ->
        ``µmol/L``), for every place a person reads it; ``unit`` stays UCUM for code."""
        return klabs.unit_display(self.unit)

    @property
    def reference_label(self) -> str:
        """Whose range it is, as shown beside it."""
        return {"laboratory": "laboratory range",
                "catalogue": "catalogue range (fallback)"}.get(self.reference_source, "reference")


@dataclass(frozen=True)
class SideEffectReport:
    """A side-effect checklist with at least one symptom ticked."""

    at: dt.datetime
    symptoms: tuple[str, ...]


@dataclass(frozen=True)
class EpisodeBand:
    """One treatment episode (issue 19) as a band on the time axis: from its start to its
    stop (``end`` None: ongoing), how it began (``start``, or ``change`` when it follows a dose
    change) and ended (``stop``, ``change`` when the next episode follows, or ongoing)."""

    drug: str
    formulation: str
    dose: str  # "16 mg a day", "300 mg each injection"
    start: dt.datetime
    end: dt.datetime | None
    began: str  # start / change
    ended: str  # stop / change / "" (ongoing)
    stop_reason: str
    injections: tuple[dt.date, ...] = ()


@dataclass(frozen=True)
class UrineMarker:
    """One urine drug test panel (issue 19) as a marker: when it was collected, what it
    tested, and how it reads (``concern``: unexpected / expected-not-found results, each
    "discuss with the patient; confirm before acting"; ``withheld``: the specimen is not
    valid as it stands)."""

    pk: int
    at: dt.datetime
    panels: str
    method: str
    results: str  # "Buprenorphine, urine positive (expected); ..."
    concerns: tuple[str, ...]
    withheld: bool


@dataclass
class ExposureSeries:
    """What the pharmacology engine estimated, reduced to what the charts draw."""

    times: list[dt.datetime]
    typical_ng_per_ml: list[float]
    p05_ng_per_ml: list[float]
    p95_ng_per_ml: list[float]
    last_dose_at: dt.datetime | None
    hours_to_50_percent: float | None
    hours_to_10_percent: float | None
    time_to_steady_state_h: float | None
    assumptions: list[str]
    unconverted: list[str]
    hours_to_50_percent_range: tuple[float, float] | None = None
    hours_to_10_percent_range: tuple[float, float] | None = None
    label: str = "Model estimate, not a measurement"


@dataclass
class PatientChartData:
    """Everything :mod:`speciosa.reports.charts` and the visit report need for one patient."""

    patient: Patient
    tz: dt.tzinfo
    now: dt.datetime
    first: dt.datetime
    daily_mg: dict[dt.date, float]
    doses_per_day: dict[dt.date, int]
    unconverted_doses: int
    scores: list[ScorePoint]
    labs: list[LabPoint]
    side_effects: list[SideEffectReport]
    alerts: list[Alert]
    medications: list[str]
    exposure: ExposureSeries | None
    exposure_problem: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    #: Doses of 7-hydroxymitragynine products (unit ``mg_7oh``): (time, mg 7-OH, product).
    #: Kratom use, shown apart from leaf doses: the exposure model does not cover them.
    seven_oh_doses: list[tuple[dt.datetime, float, str]] = field(default_factory=list)
    #: Every side effect ticked on the checklist: (time, item code), oldest first (the codes
    #: the safety rules read; ``side_effects`` holds the same reports as labels).
    side_effect_codes: list[tuple[dt.datetime, str]] = field(default_factory=list)
    #: Treatment episodes (oldest first) and urine drug test panels (issue 19).
    episodes: list[EpisodeBand] = field(default_factory=list)
    urine: list[UrineMarker] = field(default_factory=list)

    @property
    def active_alerts(self) -> list[Alert]:
        """Open and acknowledged alerts, most severe first."""
        act = [a for a in self.alerts if a.status in Alert.ACTIVE]
        act.sort(key=lambda a: (Alert.SEVERITY_RANK.get(a.severity, 9), a.first_seen_at))
        return act

    def labs_of(self, code: str) -> list[LabPoint]:
        """This patient's results of one lab, oldest first."""
        return [p for p in self.labs if p.lab == code]

    def lab_codes(self) -> list[str]:
        """Codes of the quantitative labs on record, in catalogue order of first appearance."""
        return list(dict.fromkeys(p.lab for p in self.labs))


def _tz_of(patient: Patient) -> dt.tzinfo:
    try:
        return zoneinfo.ZoneInfo(patient.site.time_zone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def _f(x) -> float | None:
    return float(x) if x is not None else None


def _num(x) -> str:
    return f"{float(x):.3f}".rstrip("0").rstrip(".") if x is not None else "?"


def chart_data(patient: Patient, *, now: dt.datetime | None = None, with_exposure: bool = True,
               exposure_subjects: int = EXPOSURE_SUBJECTS) -> PatientChartData:
    """Gather ``patient``'s doses, scores, labs, side effects, alerts and estimated exposure.

    One query per record type (doses, assessments, labs, alerts, medications), whatever the
    length of the record; the exposure comes from :mod:`speciosa.pharmacology.exposure`.

    Parameters
    ----------
    patient : Patient
        A patient the caller may see (with ``site`` loaded or loadable).
    now : datetime, optional
        The end of the charts' time axis (default: now).
    with_exposure : bool
        Run the exposure model (the patient's own simpler view does not show it).
    exposure_subjects : int
        Simulated subjects for the 5-95 % band.
    """
    tz = _tz_of(patient)
    now = now or timezone.now()

    engine_doses: list[pdoses.Dose] = []
    for taken_at, amount, unit, pct, gpc, product in (
            Dose.objects.current().filter(patient=patient).order_by("taken_at")
            .values_list("taken_at", "amount", "unit", "mitragynine_percent", "grams_per_capsule",
                         "product")):
        engine_doses.append(pdoses.Dose(taken_at=taken_at, amount=float(amount), unit=unit,
                                        mitragynine_percent=_f(pct), grams_per_capsule=_f(gpc),
                                        product=product or None))
    converted, unconverted = pdoses.convert_all(engine_doses)
    daily_mg = pdoses.daily_mitragynine_mg(engine_doses, tz)
    doses_per_day: dict[dt.date, int] = defaultdict(int)
    for d in engine_doses:
        doses_per_day[d.taken_at.astimezone(tz).date()] += 1
    seven_oh = [(d.taken_at, d.amount, d.product or "") for d in engine_doses
                if d.unit == pdoses.SEVEN_OH_UNIT]

    scores: list[ScorePoint] = []
    side_effects: list[SideEffectReport] = []
    side_effect_codes: list[tuple[dt.datetime, str]] = []
    se_labels = side_effect_labels()
    for instrument, at, total, band, flags, items, note in (
            Assessment.objects.current().filter(patient=patient, instrument__in=CHART_INSTRUMENTS)
            .order_by("at").values_list("instrument", "at", "total", "band", "flags", "items", "note")):
        if instrument == "side-effects":
            side_effect_codes.extend((at, k) for k, v in (items or {}).items() if v)
            ticked = [se_labels.get(k, k) for k, v in (items or {}).items() if v]
            if note:
                ticked.append(f"other: {note}")
            if ticked:
                side_effects.append(SideEffectReport(at=at, symptoms=tuple(ticked)))
        else:
            scores.append(ScorePoint(instrument=instrument, at=at, total=total, band=band or "",
                                     flags=tuple(flags or ())))

    labs: list[LabPoint] = []
    names: dict[str, str] = {}
    for code, at, value, unit, cval, cunit, low, high, source, flag, cmp, state, state_note in (
            LabResult.objects.current().filter(patient=patient, canonical_value__isnull=False)
            .order_by("collected_at").values_list(
                "lab", "collected_at", "value", "unit", "canonical_value", "canonical_unit",
                "reference_low", "reference_high", "reference_source", "flag", "comparator",
                "sample_state", "sample_state_note")):
        if code not in names:
            try:
                names[code] = klabs.get_lab(code).name
            except Exception:  # noqa: BLE001 - an imported code the catalogue lacks still charts
                names[code] = code
        labs.append(LabPoint(lab=code, name=names[code], at=at, value=float(cval), unit=cunit,
                             shown=f"{cmp}{_num(value)} {klabs.unit_display(unit)}".strip(),
                             reference_low=low, reference_high=high, flag=flag or "",
                             reference_source=source or "", sample_state=state or "",
                             sample_state_note=state_note or ""))

    alerts = list(Alert.objects.filter(patient=patient).order_by("first_seen_at"))
    today = now.astimezone(tz).date()
    meds = list(Medication.objects.current().filter(patient=patient))
    medications = [m.name for m in meds if m.start <= today and (m.end is None or m.end >= today)]
    # every version of every episode: the bands need the changes (follows) between them
    all_episodes = list(TreatmentEpisode.objects.filter(patient=patient).order_by("start", "pk"))
    current = [e for e in all_episodes if not e.superseded and not e.retracted]
    # ongoing treatment episodes count as medications of their drug (issue 19)
    medications += [e.drug for e in current if e.status == "active" and e.start <= today
                    and (e.end is None or e.end >= today)]

    episodes = episode_bands(all_episodes, tz)
    urine_markers = urine_panels(patient, meds, current, [d.taken_at for d in engine_doses])
    firsts = [x for x in (
        engine_doses[0].taken_at if engine_doses else None,
        scores[0].at if scores else None,
        labs[0].at if labs else None,
        side_effects[0].at if side_effects else None,
        episodes[0].start if episodes else None,
        urine_markers[0].at if urine_markers else None,
    ) if x is not None]
    first = min(firsts) if firsts else now - dt.timedelta(days=30)

    exposure, problem = None, ""
    if with_exposure and converted:
        exposure, problem = _exposure(engine_doses, now, subjects=exposure_subjects)
    elif with_exposure:
        problem = "No dose on record that can be converted to mitragynine."
    if exposure is not None:
        exposure.unconverted = [reason for _i, reason in unconverted]

    return PatientChartData(
        patient=patient, tz=tz, now=now, first=first, daily_mg=daily_mg,
        doses_per_day=dict(doses_per_day), unconverted_doses=len(unconverted), scores=scores,
        labs=labs, side_effects=side_effects, alerts=alerts, medications=medications,
        exposure=exposure, exposure_problem=problem, seven_oh_doses=seven_oh,
        side_effect_codes=side_effect_codes, episodes=episodes, urine=urine_markers)


def _day_start(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=tz)


def episode_bands(rows: list[TreatmentEpisode], tz: dt.tzinfo) -> list[EpisodeBand]:
    """A patient's treatment episodes (``rows``: every version, oldest first) as bands of
    their current versions: a start given as a day begins at its midnight, a stop given as a
    day ends at the next; an episode a dose change followed ends in a change."""
    by_pk = {r.pk: r for r in rows}
    current_of: dict[int, int] = {}  # any version's pk -> the current version's
    for r in rows:
        if r.superseded or r.retracted:
            continue
        node: TreatmentEpisode | None = r
        while node is not None:
            current_of[node.pk] = r.pk
            node = by_pk.get(node.replaces_id) if node.replaces_id else None
    followers = {current_of.get(r.follows_id): r for r in rows
                 if r.follows_id and not r.superseded and not r.retracted}

    def start_of(r: TreatmentEpisode) -> dt.datetime:
        return r.start_at or _day_start(r.start, tz)

    out = []
    for r in rows:
        if r.superseded or r.retracted:
            continue
        start = start_of(r)
        end = r.end_at or (_day_start(r.end + dt.timedelta(days=1), tz) if r.end else None)
        if r.end is not None and r.pk in followers:  # a dose change: where the next begins
            end = start_of(followers[r.pk])
        dose = ""
        if r.dose_mg is not None:
            dose = (f"{r.dose_mg.normalize():f} mg "
                    f"{'each injection' if r.is_injection else 'a day'}")
        ended = "" if r.end is None else ("change" if r.pk in followers else "stop")
        out.append(EpisodeBand(
            drug=r.drug, formulation=r.get_formulation_display(), dose=dose, start=start,
            end=end, began="change" if r.follows_id else "start", ended=ended,
            stop_reason=r.stop_reason,
            injections=tuple(dt.date.fromisoformat(d) for d in r.injection_dates or ())))
    return out


def urine_panels(patient: Patient, medications, episodes, dose_times) -> list[UrineMarker]:
    """The patient's urine drug test panels (current versions), oldest first, each read
    against what was expected then (:func:`speciosa.clinic.urine.expected_from`, from the
    medications, episodes and dose times the charts already read): two queries, whatever
    the number of panels."""
    from speciosa.clinic import integrity, urine
    from speciosa.knowledge import drug_panels

    panels = list(UrinePanel.objects.current().filter(patient=patient)
                  .order_by("collected_at", "pk"))
    if not panels:
        return []
    results: dict[int, dict[str, str]] = defaultdict(dict)
    for panel_id, lab, result in (LabResult.objects.current().filter(panel__in=panels)
                                  .order_by("pk").values_list("panel_id", "lab", "result")):
        results[panel_id][lab] = result
    known = {x.id for x in drug_panels.PANELS}
    zone = integrity.site_zone(patient.site)
    out = []
    for panel in panels:
        expected = urine.expected_from(panel.collected_at, medications, episodes, dose_times,
                                       tz=zone)
        reading = drug_panels.read_panel(results[panel.pk], expected,
                                         specimen=panel.specimen_problems)
        names = ", ".join(drug_panels.get_panel(p).name for p in panel.panels if p in known)
        analytes = "; ".join(
            f"{klabs.get_lab(a.lab).name} {a.result} ({a.flag})" for a in reading.analytes)
        concerns = tuple(f"{klabs.get_lab(a.lab).name}: {a.message}" for a in reading.analytes
                         if a.message)
        concerns += tuple(c for c in reading.concerns if not c.startswith("uds-"))
        out.append(UrineMarker(pk=panel.pk, at=panel.collected_at, panels=names,
                               method=panel.method, results=analytes, concerns=concerns,
                               withheld=reading.withheld))
    return out


#: Seconds a chart payload is reused while its patient's record is unchanged (the key also
#: holds the minute, so the time axis never lags by more than a minute).
PAYLOAD_SECONDS = 300


def record_version(patient: Patient) -> str:
    """A digest that changes whenever anything the charts show of ``patient`` changes: a dose,
    assessment or lab added, corrected (a new row; the old one marked superseded) or retracted;
    any field of an alert, a medication or a treatment episode; a urine panel recorded,
    corrected or withdrawn; the patient's own fields and site time zone.

    Six small queries (the patient's row, counts and maxima on the patient's indexed rows, and the patient's
    few alerts and medications), instead of rebuilding the charts."""
    from django.db.models import Count, Max, Q

    parts: list[Any] = [list(Patient.objects.filter(pk=patient.pk).values_list()),
                        patient.site.time_zone]
    for model in (Dose, Assessment, LabResult, UrinePanel):
        parts.append(sorted(model.objects.filter(patient=patient).aggregate(
            n=Count("pk"), last=Max("pk"), superseded=Count("pk", filter=Q(superseded=True)),
            retracted=Count("pk", filter=Q(retracted=True))).items()))
    for model in (Alert, Medication, TreatmentEpisode):  # few rows, changed in place
        parts.append(list(model.objects.filter(patient=patient).order_by("pk").values_list()))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def cached_payload(patient: Patient, build, *, kind: str, now: dt.datetime | None = None) -> str:
    """The JSON text of a chart payload of ``patient`` (``build()`` returns the dict), reused
    until the record changes (:func:`record_version`) or the minute turns."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    now = now or timezone.now()
    key = (f"charts:{kind}:{patient.pk}:{record_version(patient)}:"
           f"{now.replace(second=0, microsecond=0).isoformat()}")
    text = cache.get(key)
    if text is None:
        text = json.dumps(build(), cls=DjangoJSONEncoder)
        cache.set(key, text, PAYLOAD_SECONDS)
    return text


def side_effect_labels() -> dict[str, str]:
    """The side-effect checklist's item codes and their labels."""
    from speciosa.knowledge import instruments as kinstruments

    try:
        return {i.id: i.label for i in kinstruments.get_instrument("side-effects").items}
    except kinstruments.InstrumentError:
        return {}


def _as_datetimes(times, start: dt.datetime) -> list[dt.datetime]:
    """The engine's time grid as aware datetimes (it may give datetimes, numpy datetime64 or
    hours since ``start``)."""
    out: list[dt.datetime] = []
    for t in times:
        if isinstance(t, dt.datetime):
            out.append(t if t.tzinfo else t.replace(tzinfo=dt.UTC))
        elif hasattr(t, "dtype") and str(t.dtype).startswith("datetime64"):
            ms = int(t.astype("datetime64[ms]").astype("int64"))
            out.append(dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms))
        else:
            out.append(start + dt.timedelta(hours=float(t)))
    return out


def _exposure(engine_doses: list[pdoses.Dose], now: dt.datetime, *,
              subjects: int) -> tuple[ExposureSeries | None, str]:
    """Run :func:`speciosa.pharmacology.exposure.patient_exposure` over the record."""
    try:
        from speciosa.pharmacology import exposure as pexposure
    except ImportError:  # the engine's exposure module is not installed in this build
        return None, "The exposure model is not available in this installation."
    start = min(d.taken_at for d in engine_doses).replace(minute=0, second=0, microsecond=0)
    last = max(d.taken_at for d in engine_doses)
    end = max(now, last + dt.timedelta(hours=1))
    # The model is deterministic (seed 0): the same doses and the same hour give the same
    # series, so it is cached until the record or the hour changes.
    end = end.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    key = _exposure_cache_key(engine_doses, end, subjects)
    cached = cache.get(key)
    if cached is not None:
        return cached
    series = _run_exposure(pexposure, engine_doses, start, end, last, subjects)
    if series[0] is not None:
        cache.set(key, series, EXPOSURE_CACHE_SECONDS)
    return series


def _exposure_cache_key(engine_doses: list[pdoses.Dose], end: dt.datetime, subjects: int) -> str:
    h = hashlib.sha256()
    for d in engine_doses:
        h.update(f"{d.taken_at.isoformat()}|{d.amount}|{d.unit}|{d.mitragynine_percent}|"
                 f"{d.grams_per_capsule}\n".encode())
    h.update(f"{end.isoformat()}|{subjects}|{EXPOSURE_STEP_MINUTES}".encode())
    return f"speciosa:exposure:{h.hexdigest()}"


def _run_exposure(pexposure, engine_doses, start, end, last, subjects) -> tuple[ExposureSeries | None, str]:
    try:
        result = pexposure.patient_exposure(engine_doses, start, end,
                                            step_minutes=EXPOSURE_STEP_MINUTES,
                                            subjects=subjects, seed=0)
    except ValueError as exc:  # e.g. no convertible dose in the window
        return None, str(exc)
    s = result.summary

    def pair(lo, hi) -> tuple[float, float] | None:
        return (float(lo), float(hi)) if lo is not None and hi is not None else None

    return ExposureSeries(
        times=_as_datetimes(result.times, start),
        typical_ng_per_ml=[float(x) for x in result.mitragynine_ng_per_ml],
        p05_ng_per_ml=[float(x) for x in result.p05],
        p95_ng_per_ml=[float(x) for x in result.p95],
        last_dose_at=s.last_dose_at or last,
        hours_to_50_percent=_f(s.hours_to_50_percent_after_last_dose),
        hours_to_10_percent=_f(s.hours_to_10_percent_after_last_dose),
        time_to_steady_state_h=_f(s.time_to_steady_state_h),
        assumptions=[str(a) for a in result.assumptions],
        unconverted=[],
        hours_to_50_percent_range=pair(s.hours_to_50_percent_p05, s.hours_to_50_percent_p95),
        hours_to_10_percent_range=pair(s.hours_to_10_percent_p05, s.hours_to_10_percent_p95),
        label=getattr(result, "label", "Model estimate, not a measurement"),
    ), ""


@dataclass(frozen=True)
class InstrumentScore:
    """The latest score of one instrument, for the visit report."""

    instrument: str
    name: str
    at: dt.datetime
    total: int | None
    band: str
    flags: tuple[str, ...]
    count_in_period: int


def latest_scores(patient: Patient, since: dt.datetime) -> list[InstrumentScore]:
    """Latest total of every scored instrument on record (one query), with how many were
    completed since ``since``; the side-effect checklist is reported separately."""
    from speciosa.knowledge import instruments as kinstruments

    latest: dict[str, tuple] = {}
    counts: dict[str, int] = defaultdict(int)
    for instrument, at, total, band, flags in (
            Assessment.objects.current().filter(patient=patient).exclude(instrument="side-effects")
            .order_by("at").values_list("instrument", "at", "total", "band", "flags")):
        latest[instrument] = (at, total, band, flags)
        if at >= since:
            counts[instrument] += 1
    out = []
    for instrument, (at, total, band, flags) in latest.items():
        try:
            name = kinstruments.get_instrument(instrument).name
        except kinstruments.InstrumentError:
            name = instrument
        out.append(InstrumentScore(instrument=instrument, name=name, at=at, total=total, band=band or "",
                                   flags=tuple(flags or ()), count_in_period=counts[instrument]))
    out.sort(key=lambda s: s.name)
    return out


def decisions(patient: Patient) -> list[Any] | None:
    """Shared decisions recorded for ``patient``, newest first; ``None`` when the decision
    record (``speciosa.education``) is not installed."""
    from django.apps import apps

    if not apps.is_installed("speciosa.education"):
        return None
    try:
        model = apps.get_model("education", "Decision")
    except LookupError:
        return None
    return list(model.objects.filter(patient=patient).select_related("clinician").order_by("-decided_at"))


def prolactin_symptoms(d: PatientChartData) -> list[tuple[str, dt.datetime]]:
    """The symptoms linked to high prolactin the safety rules count now: each code of
    :data:`speciosa.safety.rules.PROLACTIN_SYMPTOMS` ticked within the rules'
    ``prolactin_symptom_window_days`` (the value in force) before ``d.now``, with its latest
    report; and the symptoms named by an open or acknowledged prolactin-symptoms alert (an
    alert stays open until resolved, so the report never says "no symptoms" beside it).
    Oldest first."""
    from speciosa.clinic import rule_settings
    from speciosa.safety.rules import PROLACTIN_SYMPTOMS

    days = rule_settings.in_force()["prolactin_symptom_window_days"]
    since = d.now - dt.timedelta(days=days)
    latest: dict[str, dt.datetime] = {}
    for at, code in d.side_effect_codes:
        if code in PROLACTIN_SYMPTOMS and since <= at <= d.now:
            latest[code] = max(at, latest.get(code, at))
    for alert in d.active_alerts:
        if alert.topic != "prolactin-symptoms":
            continue
        for row in (alert.evidence or {}).get("symptoms", []):
            code = row.get("code")
            if code and code not in latest:
                try:
                    latest[code] = dt.datetime.fromisoformat(row.get("at"))
                except (TypeError, ValueError):
                    latest[code] = alert.first_seen_at
    return sorted(((code, at) for code, at in latest.items()), key=lambda x: x[1])
