"""Reads: what views, the API and reports show. Access is checked by the caller through
:mod:`speciosa.clinic.access` (these functions take querysets already limited to what the
user may see)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import formats, timezone
from django.utils.translation import get_language, gettext, gettext_noop, ngettext, pgettext

from speciosa.knowledge import instruments as kinstruments
from speciosa.safety.rules import PROLACTIN_SYMPTOMS

from . import records
from .models import (
    Assessment,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Note,
    Patient,
    SubstanceUse,
    TreatmentEpisode,
)

WITHDRAWAL_INSTRUMENTS = ("cows", "sows")
# Side effects highlighted for the clinician: those linked to high prolactin (the rules' own
# list) plus the checklist's flags (seizure, dark urine or yellow eyes).
PROLACTIN_LINKED_SIDE_EFFECTS = PROLACTIN_SYMPTOMS


def _count(qs):
    """The number of rows of ``qs`` (filtered on ``patient=OuterRef("pk")``) as a subquery."""
    counted = qs.order_by().values("patient").annotate(n=Count("pk")).values("n")[:1]
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def patient_list(patients):
    """Annotate each patient with the summary a clinician scans for.

    Every value is a correlated subquery on an indexed column: no join and no GROUP BY, so the
    cost grows with the number of patients, not with the length of their records (joining the
    diary days and alerts and grouping made PostgreSQL evaluate the other subqueries once per
    joined row: 2.5 s for a panel of 200 patients with 60 days each).
    """
    from .models import Alert

    latest_withdrawal = Assessment.objects.current().filter(
        patient=OuterRef("pk"), instrument__in=WITHDRAWAL_INSTRUMENTS).order_by("-at")
    latest_prl = LabResult.objects.current().filter(patient=OuterRef("pk"), lab="prolactin").order_by("-collected_at")
    alerts = Alert.objects.filter(patient=OuterRef("pk"))
    return patients.select_related("care_team", "site").annotate(
        last_diary=Subquery(DiaryDay.objects.filter(patient=OuterRef("pk")).order_by("-day").values("day")[:1]),
        active_alerts=_count(alerts.filter(status__in=["open", "acknowledged"])),
        urgent_alerts=_count(alerts.filter(status="open", severity="urgent")),
        withdrawal_instrument=Subquery(latest_withdrawal.values("instrument")[:1]),
        withdrawal_total=Subquery(latest_withdrawal.values("total")[:1]),
        withdrawal_band=Subquery(latest_withdrawal.values("band")[:1]),
        withdrawal_at=Subquery(latest_withdrawal.values("at")[:1]),
        prolactin_value=Subquery(latest_prl.values("canonical_value")[:1]),
        prolactin_unit=Subquery(latest_prl.values("canonical_unit")[:1]),
        prolactin_flag=Subquery(latest_prl.values("flag")[:1]),
        prolactin_state_note=Subquery(latest_prl.values("sample_state_note")[:1]),
        prolactin_at=Subquery(latest_prl.values("collected_at")[:1]),
    )


def attention_reasons(p: Patient, today: dt.date) -> list[str]:
    """Why a patient from :func:`patient_list` needs attention, most pressing first."""
    reasons = []
    active = getattr(p, "active_alerts", 0) or 0
    if active:
        urgent = getattr(p, "urgent_alerts", 0) or 0
        text = ngettext("%(n)s alert", "%(n)s alerts", active) % {"n": active}
        if urgent:
            text = pgettext("alerts of a patient, some urgent", "%(alerts)s (%(n)s urgent)") % {
                "alerts": text, "n": urgent}
        reasons.append(text)
    if p.prolactin_flag == "high":
        reasons.append(pgettext("attention on the patient list", "prolactin high"))
    elif p.prolactin_flag == "critical":
        reasons.append(pgettext("attention on the patient list", "prolactin critical"))
    if p.withdrawal_instrument == "cows" and (p.withdrawal_total or 0) >= 13:
        reasons.append(f"COWS {p.withdrawal_total}")
    if p.last_diary is None or (today - p.last_diary).days >= 7:
        reasons.append(gettext("no diary for 7+ days"))
    return reasons


def patient_rows(patients, query: str = "", today: dt.date | None = None) -> list[Patient]:
    """Patients with their summary and ``attention`` reasons: urgent first, then those needing
    attention, then by name."""
    qs = patient_list(patients)
    query = (query or "").strip()
    if query:
        qs = qs.filter(Q(family_name__icontains=query) | Q(given_name__icontains=query) |
                       Q(identifier__icontains=query))
    today = today or timezone.localdate()
    rows = list(qs)
    for p in rows:
        p.attention = attention_reasons(p, today)
    rows.sort(key=lambda p: (-(p.urgent_alerts or 0), not p.attention, p.family_name, p.given_name, p.pk))
    return rows


@dataclass
class TimelineEvent:
    at: dt.datetime
    kind: str  # dose, assessment, lab, note, substance, medication, treatment, taper
    title: str
    detail: str
    record: Any
    abnormal: bool = False
    history: list = field(default_factory=list)

    @property
    def record_kind(self) -> str:
        kind = records.kind_of(self.record)
        return kind.name if kind else ""


def _fmt_num(value) -> str:
    """A number for a page: at most 3 decimals, no trailing zeros, with the decimal
    separator of the page's language ("1,5" in Spanish); the forms read it back the same
    way (speciosa.web.forms.decimal_text)."""
    if value is None:
        return "?"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text.replace(".", formats.get_format("DECIMAL_SEPARATOR"))


#: A dose's unit as a page names it (translated when shown: only the one a dose has).
DOSE_UNITS = {"g": gettext_noop("g leaf"), "capsule": gettext_noop("capsules"),
              "glass": gettext_noop("glasses of tea"), "mg_extract": gettext_noop("mg extract"),
              "mg_mitragynine": gettext_noop("mg mitragynine")}


def describe_dose(d: Dose) -> tuple[str, str]:
    """A dose's title and detail, in the page's language."""
    if d.unit == "mg_7oh":  # a 7-OH product, shown apart from leaf: not in the estimate
        bits = [d.product] if d.product else []
        bits.append(gettext("7-OH product (potent opioid); not in the mitragynine estimate: the "
                            "exposure model does not cover 7-OH taken directly"))
        return (gettext("7-OH product %(amount)s mg 7-hydroxymitragynine")
                % {"amount": _fmt_num(d.amount)}), " · ".join(bits)
    unit = gettext(DOSE_UNITS[d.unit]) if d.unit in DOSE_UNITS else d.unit
    title = gettext("Kratom %(amount)s %(unit)s") % {"amount": _fmt_num(d.amount), "unit": unit}
    bits = []
    if d.product:
        bits.append(d.product)
    if d.mitragynine_percent is not None:
        bits.append(gettext("%(percent)s %% mitragynine (label)")
                    % {"percent": _fmt_num(d.mitragynine_percent)})
    if d.mitragynine_mg is not None:
        bits.append(gettext("≈%(mg)s mg mitragynine (estimate)")
                    % {"mg": formats.number_format(round(d.mitragynine_mg), 0)})
    elif d.conversion_note:
        bits.append(d.conversion_note)
    if getattr(d, "confirmed_unusual", False):
        # asked on entry (an amount above the plausibility limit, a capsule without its size
        # or a repeated dose) and confirmed as right by whoever entered it
        bits.append(gettext("confirmed as right when entered"))
    return title, " · ".join(bits)


def describe_assessment(a: Assessment) -> tuple[str, str, bool]:
    try:
        inst = kinstruments.get_instrument(a.instrument)
        name = inst.name
    except kinstruments.InstrumentError:
        inst, name = None, a.instrument
    if a.instrument == "side-effects":
        labels = []
        if inst:  # the checklist's items in the reader's language (its overlay), else English
            shown = kinstruments.localized(inst, get_language()).instrument
            labels = [i.label for i in shown.items if a.items.get(i.id)]
        if a.note:
            labels.append(gettext("other: %(note)s") % {"note": a.note})
        flagged = bool(a.flags) or any(a.items.get(code) for code in PROLACTIN_LINKED_SIDE_EFFECTS)
        return gettext("Side effects"), ", ".join(labels) or gettext("none reported"), flagged
    title = f"{name}: {a.total if a.total is not None else gettext('incomplete')}"
    detail = a.band or ""
    if a.flags:
        detail = (detail + " · " if detail else "") + ", ".join(a.flags)
    abnormal = bool(a.flags) or (a.instrument == "cows" and (a.total or 0) >= 13)
    return title, detail, abnormal


def describe_medication(m) -> tuple[str, str]:
    """A medication as a title (name, strength, dose, how often) and a detail line (status,
    dates, prescriber, coded or not, confirmation)."""
    def num(x):
        return _fmt_num(x) if x is not None else ""

    title = " ".join(p for p in (
        m.name, f"{num(m.strength)} {m.strength_unit}".strip() if m.strength is not None else "",
        f"· {num(m.dose_amount)} {m.dose_unit}" if m.dose_amount is not None else "",
        m.frequency) if p)
    when = f"since {m.start.isoformat()}" if not m.end else (
        f"{m.start.isoformat()} to {m.end.isoformat()}")
    bits = [m.get_status_display(), when]
    if m.route:
        bits.append(m.route)
    if m.prescriber != "unknown":
        bits.append(m.get_prescriber_display() + (f" ({m.prescriber_name})"
                                                  if m.prescriber_name else ""))
    bits.append(f"coded: {m.drug}" if m.drug else "not coded")
    if m.source == "patient":
        bits.append("reported by the patient" + (
            f", confirmed {m.confirmed_at:%d %b %Y}" if m.confirmed_at else ", not yet confirmed"))
    if m.stop_reason:
        bits.append(f"stopped: {m.stop_reason}")
    return title, " · ".join(bits)


def describe_episode(e) -> tuple[str, str]:
    """A treatment episode as a title (drug, formulation, dose) and a detail line (status,
    dates, dispensing clinic, injections, reason for stopping)."""
    dose = (f"{format(e.dose_mg.normalize(), 'f')} mg {e.dose_basis}" if e.dose_mg is not None
            else "no dose")
    title = f"{e.get_drug_display().capitalize()} {e.get_formulation_display()}: {dose}"
    when = (f"{e.start.isoformat()} to {e.end.isoformat()}" if e.end
            else f"since {e.start.isoformat()}")
    bits = [e.get_status_display(), when]
    if e.dispensing_clinic:
        bits.append(f"dispensed by {e.dispensing_clinic}")
    if e.injection_dates:
        bits.append("injections " + ", ".join(e.injection_dates))
    if e.stop_reason:
        bits.append(f"stopped: {e.stop_reason}")
    return title, " · ".join(bits)


def _site_zone(patient: Patient) -> dt.tzinfo:
    from .medications import site_time_zone

    return site_time_zone(patient)


def describe_lab(r: LabResult) -> tuple[str, str, bool]:
    from speciosa.knowledge import labs as klabs

    try:
        name = klabs.get_lab(r.lab).name
    except Exception:  # noqa: BLE001 - unknown code from an import still displays
        name = r.lab
    if r.result:
        detail = r.method
        if r.value is not None and r.cutoff is not None:  # a urine panel's value (issue 19)
            unit = klabs.unit_display(r.unit)
            detail += f" · {_fmt_num(r.value)} {unit} (cut-off {_fmt_num(r.cutoff)} {unit})"
        if r.panel_id:
            detail += " · urine drug test panel"
        return f"{name}: {r.result}", detail, r.result == "positive"
    ref = ""
    if r.reference_low is not None or r.reference_high is not None:
        label = (LabResult.RangeSource(r.reference_source).label if r.reference_source
                 else "reference range")
        ref = (f"{label} {_fmt_num(r.reference_low)}–{_fmt_num(r.reference_high)} "
               f"{klabs.unit_display(r.canonical_unit)}")
    shown = f"{r.comparator}{_fmt_num(r.value)} {klabs.unit_display(r.unit)}"
    if r.unit != r.canonical_unit and r.canonical_value is not None:
        shown += (f" (= {_fmt_num(round(r.canonical_value, 3))} "
                  f"{klabs.unit_display(r.canonical_unit)})")
    assay = f"assay {_fmt_num(r.iu_factor)} mIU/L per ng/mL" if r.iu_factor else ""
    reported = ", ".join(cd.get("code", "") for concept in r.reported_interpretation or ()
                         if isinstance(concept, dict) for cd in concept.get("coding") or ()
                         if isinstance(cd, dict))
    reported = f"laboratory's interpretation {reported}" if reported else ""
    detail = " · ".join(x for x in (ref, assay, r.flag, reported) if x)
    return f"{name}: {shown}", detail, r.flag in ("high", "low", "critical", "abnormal")


def patient_timeline(patient: Patient, *, since: dt.datetime | None = None, limit: int | None = 200,
                     taper_plans=None):
    """The patient's record in date order, newest first: current versions, each with its
    earlier versions (corrections) attached. ``taper_plans``: the patient's current taper
    plans when the caller has read them already (the patient page), else they are read."""
    events: list[TimelineEvent] = []
    # With a limit, once ``limit`` entries are known nothing older than the limit-th newest of
    # them can be shown: the next kinds are read from that time on only (with 60 days of diary,
    # about 60 rows instead of 41 of each kind). The same entries as reading ``limit`` of each.
    cut: dt.datetime | None = None

    def q(model, time_field):
        qs = model.objects.filter(patient=patient, superseded=False).select_related("entered_by")
        start = max(t for t in (since, cut) if t is not None) if since or cut else None
        if start:
            qs = qs.filter(**{f"{time_field}__gte": start})
        # ties on time broken by id, newest first, as the page orders them: cut at the limit
        # without it, the database keeps any of the entries sharing the cut's time
        return qs.order_by(f"-{time_field}", "-pk")[:limit] if limit else qs

    def tighten() -> None:
        nonlocal cut
        if limit and len(events) >= limit:
            cut = sorted((e.at for e in events), reverse=True)[limit - 1]

    for d in q(Dose, "taken_at"):
        t, detail = describe_dose(d)
        events.append(TimelineEvent(d.taken_at, "dose", t, detail, d))
    tighten()
    for a in q(Assessment, "at"):
        t, detail, ab = describe_assessment(a)
        events.append(TimelineEvent(a.at, "side-effects" if a.instrument == "side-effects" else "assessment",
                                    t, detail, a, ab))
    tighten()
    for r in q(LabResult, "collected_at"):
        t, detail, ab = describe_lab(r)
        events.append(TimelineEvent(r.collected_at, "lab", t, detail, r, ab))
    tighten()
    for n in q(Note, "at"):
        events.append(TimelineEvent(n.at, "note", "Note", n.text, n))
    tighten()
    for s in q(SubstanceUse, "at"):
        events.append(TimelineEvent(s.at, "substance", f"Also used: {s.name}", s.detail, s))
    # medications and treatment episodes (issue 19): one line at the start of each course
    tz = _site_zone(patient)
    for model, kind, describe in ((Medication, "medication", describe_medication),
                                  (TreatmentEpisode, "treatment", describe_episode)):
        qs = model.objects.filter(patient=patient, superseded=False).select_related("entered_by")
        if since:
            qs = qs.filter(start__gte=since.astimezone(tz).date())
        qs = qs.order_by("-start", "-pk")
        for m in (qs[:limit] if limit else qs):
            at = m.start_at or dt.datetime.combine(m.start, dt.time(0), tzinfo=tz)
            title, detail = describe(m)
            label = "Medication" if kind == "medication" else "Treatment"
            events.append(TimelineEvent(at, kind, f"{label}: {title}", detail, m))
    # taper plans (issue 19): when each version was recorded (a plan is a schedule ahead)
    from .models import TaperPlan

    if taper_plans is None:
        plans = TaperPlan.objects.filter(patient=patient, superseded=False).select_related("entered_by")
        if since:
            plans = plans.filter(entered_at__gte=since)
        taper_plans = plans.order_by("-entered_at")[:limit] if limit else plans
    elif since:
        taper_plans = [t for t in taper_plans if t.entered_at >= since]
    for t in taper_plans:
        what = {"active": "recorded", "replaced": "replaced by a later plan",
                "stopped": "stopped"}.get(t.status, t.status)
        events.append(TimelineEvent(
            t.entered_at, "taper", f"Taper plan {what}: {t.get_kind_display()}, "
                                   f"{t.start:%-d %b} to {t.end:%-d %b %Y}",
            t.stop_reason if t.status != "active" and t.stop_reason else t.reason, t))
    events.sort(key=lambda e: (e.at, e.record.pk), reverse=True)
    if limit:
        events = events[:limit]
    return events


def record_history(record) -> list:
    """Every version of ``record``, newest first (walks the ``replaces`` chain)."""
    versions = [record]
    cur = record
    while cur.replaces_id:
        cur = type(record).objects.get(pk=cur.replaces_id)
        versions.append(cur)
    nxt = record
    while True:
        try:
            nxt = nxt.replaced_by
        except type(record).DoesNotExist:
            break
        versions.insert(0, nxt)
    return versions


def active_alerts(patient: Patient):
    from .models import Alert

    alerts = list(Alert.objects.filter(patient=patient, status__in=Alert.ACTIVE).select_related(
        "patient", "acknowledged_by"))
    alerts.sort(key=lambda a: (Alert.SEVERITY_RANK.get(a.severity, 9), a.first_seen_at))
    return alerts


def diary_for(patient: Patient, day: dt.date) -> DiaryDay | None:
    return DiaryDay.objects.filter(patient=patient, day=day).first()


def diary_history(patient: Patient, days: int = 60):
    since = timezone.localdate() - dt.timedelta(days=days)
    diaries = list(DiaryDay.objects.filter(patient=patient, day__gte=since).order_by("-day"))
    doses = Dose.objects.current().filter(diary__in=diaries)
    assessments = Assessment.objects.current().filter(diary__in=diaries)
    by_day: dict[int, dict] = {d.pk: {"diary": d, "doses": [], "craving": None, "sows": None,
                                      "side_effects": None} for d in diaries}
    for d in doses:
        by_day[d.diary_id]["doses"].append(describe_dose(d)[0])
    for a in assessments:
        slot = by_day[a.diary_id]
        if a.instrument == "craving-nrs":
            slot["craving"] = a.total
        elif a.instrument == "sows":
            slot["sows"] = a.total
        elif a.instrument == "side-effects":
            slot["side_effects"] = describe_assessment(a)[1]
    return [by_day[d.pk] for d in diaries]


def usual_capsule(patient: Patient) -> dict | None:
    """The patient's usual capsule product: the product and grams per capsule of their latest
    current capsule dose that had its grams per capsule (None without one). The diary offers
    it when a capsule dose comes without its size, for the patient to check."""
    row = (Dose.objects.current().filter(patient=patient, unit="capsule", grams_per_capsule__isnull=False)
           .order_by("-taken_at", "-pk").values("product", "grams_per_capsule").first())
    if row is None:
        return None
    return {"product": row["product"], "grams_per_capsule": _fmt_num(row["grams_per_capsule"])}


def diary_entries(patient: Patient, day: dt.date) -> list[dict]:
    """What one diary day already holds (current versions, in time order), for the diary page:
    each entry's kind (as in URLs), record, time, title and detail."""
    out: list[dict] = []
    for d in Dose.objects.current().filter(patient=patient, diary__day=day).select_related("diary"):
        title, detail = describe_dose(d)
        out.append({"kind": "dose", "record": d, "at": d.taken_at, "title": title, "detail": detail})
    for a in Assessment.objects.current().filter(patient=patient, diary__day=day).select_related("diary"):
        title, detail, _flag = describe_assessment(a)
        out.append({"kind": "assessment", "record": a, "at": a.at, "title": title, "detail": detail})
    for s in SubstanceUse.objects.current().filter(patient=patient, diary__day=day).select_related("diary"):
        out.append({"kind": "substance", "record": s, "at": s.at,
                    "title": gettext("Also used: %(name)s") % {"name": s.name}, "detail": s.detail})
    out.sort(key=lambda e: (e["at"], e["kind"], e["record"].pk))
    return out
