"""Views: parse the request, ask :mod:`speciosa.clinic.access`, call a service or a selector,
render. No view writes to the database by itself."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, crisis, records, selectors, services, writes
from speciosa.clinic.models import Role
from speciosa.interop import smart
from speciosa.knowledge import instruments as kinstruments
from speciosa.reminders import pages as rpages
from speciosa.schedules import pages as spages
from speciosa.schedules import services as sservices

from . import (
    consent_views,
    forms,
    medication_views,
    offline_views,
    taper_views,
    treatment_views,
    urine_views,
)

WORKLIST_PAGE_SIZE = 50
#: Session key: the reasons to show help at once on the page after a diary is saved.
URGENT_HELP_KEY = "speciosa-urgent-help"


_role_required = access.role_required


@login_required
def home(request):
    role = access.role_of(request.user)
    if role == Role.CLINICIAN:
        return redirect("patient_list")
    if role == Role.PATIENT:
        return redirect("me")
    if role == Role.ADMIN:
        return redirect("admin:index")
    if role == Role.RESEARCHER:
        return redirect("research:cohort")
    return render(request, "web/researcher.html")


# --------------------------------------------------------------------------- clinician

@_role_required(Role.CLINICIAN)
def patient_list(request):
    query = (request.GET.get("q") or "").strip()
    today = timezone.localdate()
    visible = access.visible_patients(request.user)
    patients = selectors.patient_rows(visible, query, today)
    # three queries for all (a subquery, not a list of ids: a panel of thousands)
    rates = sservices.completion_rates(visible) if patients else {}
    rows = [{"p": p, "age": p.age_on(today), "abnormal": p.attention, "rate": rates.get(p.pk)}
            for p in patients]
    services.record_list_view(request.user, "patient-list", [r["p"].pk for r in rows], query=query)
    return render(request, "web/patient_list.html", {"rows": rows, "q": query, "today": today})


@_role_required(Role.CLINICIAN)
def patient_detail(request, patient_id):
    # the patient and the list's summary of them in one read (404 outside the user's teams)
    summary = selectors.patient_list(access.visible_patients(request.user).filter(pk=patient_id)).first()
    if summary is None:
        raise Http404("No such patient")
    patient = summary
    services.record_view(request.user, patient)
    try:
        limit = max(10, min(int(request.GET.get("limit", 40)), 2000))
    except ValueError:
        limit = 40
    taper = taper_views.taper_context(patient)  # its plans go on the timeline too: one query
    events = selectors.patient_timeline(patient, limit=limit + 1, taper_plans=taper["all"])
    apps = smart.launchable_apps()
    response = render(request, "web/patient_detail.html", {
        "patient": patient, "events": events[:limit], "more": len(events) > limit, "next_limit": limit * 4,
        "summary": summary,
        "alerts": selectors.active_alerts(patient),
        "age": patient.age_on(timezone.localdate()),
        "instruments": kinstruments.clinician_recorded(),
        "smart_apps": apps,
        "meds": medication_views.medication_context(patient),
        "episodes": treatment_views.treatment_context(patient),
        "taper": taper,
        "urine": urine_views.urine_context(patient),
        "schedule": spages.plan_context(patient),
        "reminders": rpages.patient_context(patient),
        "consents": consent_views.consent_context(patient),
    })
    if apps:  # the launch form is answered by a redirect to the app (CSP form-action)
        response._csp_update = {"form-action": smart.launch_origins(apps)}
    return response


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def assessment_new(request, patient_id, instrument_id):
    patient = access.patient_for(request.user, patient_id)
    instrument = next((i for i in kinstruments.clinician_recorded() if i.id == instrument_id), None)
    if instrument is None:
        raise Http404("No such instrument for a clinician to record")
    form = forms.AssessmentForm(request.POST or None, instrument=instrument)
    if request.method == "POST" and form.is_valid():
        try:
            services.record_assessment(
                request.user, patient, instrument.id, form.items(), at=form.cleaned_data.get("at"),
                note=form.cleaned_data.get("note") or "", token=forms.submission_key(request, form))
            return redirect("patient_detail", patient_id=patient.pk)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc, prefix="")
            for key in list(form.errors):
                if f"item-{key}" in form.fields:
                    form.errors[f"item-{key}"] = form.errors.pop(key)
    return render(request, "web/assessment_form.html", {"patient": patient, "form": form, "instrument": instrument})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def lab_new(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    form = forms.LabForm(request.POST or None, initial={"lab": request.GET.get("lab", "prolactin")})
    needs_confirmation = False
    if request.method == "POST" and form.is_valid():
        try:
            services.record_lab(request.user, patient, form.cleaned_data,
                                token=forms.submission_key(request, form))
            return redirect("patient_detail", patient_id=patient.pk)
        except services.NeedsConfirmation as exc:
            needs_confirmation = True
            forms.apply_service_errors(form, exc)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    return render(request, "web/lab_form.html", {"patient": patient, "form": form,
                                                 "needs_confirmation": needs_confirmation})


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def note_new(request, patient_id):
    patient = access.patient_for(request.user, patient_id)
    form = forms.NoteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.record_note(request.user, patient, form.cleaned_data["text"],
                                 token=forms.submission_key(request, form))
            return redirect("patient_detail", patient_id=patient.pk)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    return render(request, "web/note_form.html", {"patient": patient, "form": form})


def _record_for(user, patient_id, kind, record_id):
    patient = access.patient_for(user, patient_id)
    record_kind = records.kind_of(kind)
    if record_kind is None:
        raise Http404("No such kind of record")
    record = get_object_or_404(record_kind.model, pk=record_id, patient=patient)
    return patient, record


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def record_correct(request, patient_id, kind, record_id):
    patient, record = _record_for(request.user, patient_id, kind, record_id)
    form = forms.CorrectionForm(request.POST or None)
    needs_confirmation = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data.get("retract"):
                services.retract_record(request.user, record, data["reason"])
            else:
                # the fields this kind's correction page offers, as far as they were filled in
                changes = {name: data[name] for name in records.KINDS[kind].on_page
                           if data.get(name) not in (None, "")}
                if not changes:
                    raise ValidationError({"__all__": "Enter the corrected value, or tick 'withdraw this entry'."})
                if data.get("confirmed_unusual") and "confirmed_unusual" in records.KINDS[kind].correctable:
                    changes["confirmed_unusual"] = True
                services.correct_record(request.user, record, changes, data["reason"],
                                        token=forms.submission_key(request, form))
            return redirect(reverse("record_history", args=[patient.pk, kind, record.pk]))
        except services.NeedsConfirmation as exc:
            needs_confirmation = True
            forms.apply_service_errors(form, exc)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    services.record_view(request.user, patient, f"correct:{kind}", record)  # shows current value
    extra = {}
    if kind == "lab":  # the value as shown everywhere, with whose range it was read against
        title, detail, _flagged = selectors.describe_lab(record)
        extra = {"lab_current": title.split(": ", 1)[-1], "lab_detail": detail}
    return render(request, "web/record_correct.html", {**extra, "patient": patient, "record": record, "kind": kind,
                                                       "form": form, "needs_confirmation": needs_confirmation})


@_role_required(Role.CLINICIAN)
def record_history(request, patient_id, kind, record_id):
    patient, record = _record_for(request.user, patient_id, kind, record_id)
    services.record_view(request.user, patient, f"history:{kind}", record)
    versions = selectors.record_history(record)
    describe = {"dose": lambda r: selectors.describe_dose(r),
                "assessment": lambda r: selectors.describe_assessment(r)[:2],
                "lab": lambda r: selectors.describe_lab(r)[:2],
                "note": lambda r: ("Note", r.text),
                "substance": lambda r: (f"Also used: {r.name}", r.detail),
                "medication": lambda r: selectors.describe_medication(r),
                "episode": lambda r: treatment_views.describe_episode(r)}[kind]
    rows = [{"v": v, "title": describe(v)[0], "detail": describe(v)[1]} for v in versions]
    return render(request, "web/record_history.html", {"patient": patient, "rows": rows, "kind": kind})


# --------------------------------------------------------------------------- patient


@_role_required(Role.PATIENT)
@offline_views.offline_copy
def me(request):
    patient = access.own_patient(request.user)
    today = timezone.localdate()
    reasons = request.session.pop(URGENT_HELP_KEY, None)
    from speciosa.clinic import taper

    return render(request, "web/me.html", {
        "patient": patient, "today_diary": selectors.diary_for(patient, today),
        "taper_plan": taper.active_plan(patient),
        "history": selectors.diary_history(patient, days=30),
        "urgent_help": crisis.describe(reasons, get_language()) if reasons else None,
        "numbers": crisis.numbers_for(patient.site, get_language()),
        **spages.my_due_context(patient),
    })


def _reading_zone(browser_tz: str):
    """The zone a diary's times are read in, and what to say about it: the browser's when it
    differs from the clinic's (a patient travelling, or a phone set to another zone), else
    the clinic's. ``browser_tz`` is an IANA name the form has checked, or ``""``."""
    import zoneinfo

    site = timezone.get_current_timezone()
    site_name = getattr(site, "key", str(site))
    if browser_tz and browser_tz != site_name:
        return zoneinfo.ZoneInfo(browser_tz), {
            "zone": browser_tz, "site_zone": site_name, "browser": True,
            "text": gettext("Times are read in your device's time zone, %(here)s (the clinic's "
                            "is %(site)s).") % {"here": browser_tz, "site": site_name}}
    return site, {"zone": site_name, "site_zone": site_name, "browser": False,
                  "text": gettext("Times are in the clinic's time zone, %(site)s.")
                  % {"site": site_name}}


@_role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
@offline_views.offline_copy
def diary(request, day=None):
    patient = access.own_patient(request.user)
    today = timezone.localdate()
    if day is None:
        day = today
    else:
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            raise Http404("Not a date") from None
    if day > today:
        raise Http404("A diary cannot be written for a future day")
    if day < writes.earliest_date(patient):  # 0001-01-01 and the like: outside the record's window
        raise Http404("A diary cannot be written for a day that long before your care began")
    existing = selectors.diary_for(patient, day)
    usual = selectors.usual_capsule(patient)
    posted = request.POST.copy() if request.method == "POST" else None  # mutable: see below
    add_row = posted is not None and "add_dose" in posted
    form = forms.DiaryForm(posted, sex=patient.sex)
    doses = forms.dose_formset(posted, add_row=add_row)
    _tz, zone = _reading_zone(forms.valid_zone(posted.get("browser_tz")) if posted else "")
    if posted is not None and not add_row:
        form_ok, doses_ok = form.is_valid(), doses.is_valid()
        if form_ok and doses_ok:
            tz, zone = _reading_zone(form.cleaned_data.get("browser_tz") or "")
            # today's diary reads a time on the device's today: in Auckland at 21:30 UTC it is
            # already tomorrow, and "09:00" is this morning there, not a day before it
            on = timezone.localdate(timezone=tz) if day == today else day
            dose_rows = []
            index_map = []
            for i, f in enumerate(doses.forms):
                if f.is_blank():
                    continue
                c = f.cleaned_data
                dose_rows.append({
                    "taken_at": dt.datetime.combine(on, c["time"]).replace(tzinfo=tz),
                    "amount": c["amount"], "unit": c["unit"], "product": c.get("product") or "",
                    "mitragynine_percent": c.get("mitragynine_percent"),
                    "grams_per_capsule": c.get("grams_per_capsule"),
                    "confirmed_unusual": bool(c.get("confirmed_unusual")),
                })
                index_map.append(i)
            entry = services.DiaryInput(
                day=day, doses=dose_rows, craving=form.cleaned_data.get("craving"),
                sows=form.sows_items(), side_effects=form.cleaned_data["side_effects"],
                side_effect_other=form.cleaned_data.get("side_effect_other") or "",
                substances=form.cleaned_data["substances"],
                substance_detail=form.cleaned_data.get("substance_detail") or "")
            try:
                key = forms.submission_key(request, form, extra=[
                    {k: v for k, v in f.cleaned_data.items() if k != "DELETE"}
                    for f in doses.forms if not f.is_blank()])
                services.record_diary(request.user, patient, entry, token=key)
                # help at once on the next page (kept in the session: nothing clinical in the URL)
                reasons = crisis.urgent_reasons(entry.side_effects)
                if reasons:
                    request.session[URGENT_HELP_KEY] = reasons
                if offline_views.is_replay(request):  # the phone's queue: a plain "stored"
                    return JsonResponse({"saved": True}, status=201)
                return redirect(reverse("me") + "?saved=1")
            except services.DosesNeedConfirmation as exc:
                _diary_errors(exc, form, doses, index_map)
                _ask(exc, doses, index_map, posted, usual)
            except ValidationError as exc:
                _diary_errors(exc, form, doses, index_map)
    entries = selectors.diary_entries(patient, day)
    # not saved yet (a question, an error, another dose row): an urgent symptom ticked gets
    # the numbers at once all the same; the patient may never finish the save
    unsaved = crisis.urgent_reasons(posted.getlist("side_effects")) if posted is not None else []
    return render(request, "web/diary.html", {
        "urgent_help": crisis.describe(unsaved, get_language()) if unsaved else None, "help_unsaved": True,
        "numbers": crisis.numbers_for(patient.site, get_language()),
        "patient": patient, "form": form, "doses": doses, "day": day, "existing": existing,
        "is_today": day == today,
        "entries": entries, "zone": zone, "usual": usual, "max_doses": forms.MAX_DOSES,
        "correction_days": services.correction_window_start(patient),
        "can_change_day": day >= services.correction_window_start(patient),
    })


def _ask(exc: ValidationError, doses, index_map: list[int], posted, usual) -> None:
    """Show the confirmation box on each dose the service asked about; a capsule dose without
    grams per capsule gets the patient's usual capsule product filled in to check."""
    for location, _messages in writes.error_locations(exc):
        if location[:1] != ("doses",) or len(location) != 3:
            continue
        i = index_map[location[1]]
        target = doses.forms[i]
        target.asked = True
        if location[2] == "grams_per_capsule" and usual:
            prefix = target.prefix
            if not posted.get(f"{prefix}-grams_per_capsule"):
                posted[f"{prefix}-grams_per_capsule"] = str(usual["grams_per_capsule"])
                if not posted.get(f"{prefix}-product") and usual["product"]:
                    posted[f"{prefix}-product"] = usual["product"]
                target.usual_filled = usual


@_role_required(Role.PATIENT)
@require_http_methods(["GET", "POST"])
def my_entry_correct(request, kind, record_id):
    """A patient corrects or removes an entry of their own diary (today's, or of the few days
    before that ``DIARY_CORRECTION_DAYS`` allows); the earlier version stays in the history."""
    from speciosa.clinic.models import Assessment, Dose, SubstanceUse

    patient = access.own_patient(request.user)
    model = {"dose": Dose, "assessment": Assessment, "substance": SubstanceUse}.get(kind)
    if model is None:
        raise Http404("No such kind of diary entry")
    record = get_object_or_404(model.objects.select_related("diary"), pk=record_id, patient=patient,
                               diary__isnull=False)
    if record.superseded:  # an earlier version: open the current one
        if request.method == "POST":  # a double tap: the first one saved it, answer as it was
            sent = forms.MyCorrectionForm(request.POST)
            try:
                saved = sent.is_valid() and writes.replayed(
                    request.user, forms.submission_key(request, sent), model=model, kind="correction",
                    patient=patient)
            except ValidationError:  # the token went with other values: not this correction
                saved = None
            if saved:
                return redirect(reverse("diary_day", args=[record.diary.day.isoformat()]) + "?changed=1")
        current = selectors.record_history(record)[0]
        return redirect("my_entry_correct", kind=kind, record_id=current.pk)
    local = timezone.localtime(record.taken_at) if kind == "dose" else None
    initial = {}
    if kind == "dose":
        initial = {"time": local.time().replace(second=0, microsecond=0), "amount": record.amount,
                   "unit": record.unit, "product": record.product,
                   "mitragynine_percent": record.mitragynine_percent,
                   "grams_per_capsule": record.grams_per_capsule}
    elif kind == "substance":
        initial = {"detail": record.detail}
    form = forms.MyCorrectionForm(request.POST or None, initial=initial)
    asked = False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            if data.get("remove") or kind == "assessment":
                if not data.get("remove"):
                    raise ValidationError({"remove": gettext(
                        "Tick 'Remove this entry' to remove it, then save.")})
                services.retract_record(request.user, record, data["reason"],
                                        token=forms.submission_key(request, form))
            else:
                changes: dict = {}
                if kind == "dose":
                    if data.get("time") is None or data.get("amount") is None or not data.get("unit"):
                        raise ValidationError({"__all__": gettext(
                            "Give the time, amount and unit of the dose.")})
                    tz, _zone = _reading_zone(data.get("browser_tz") or "")
                    # on the date the dose has in the zone the time is read in (the page showed
                    # its time there): a device a day ahead of the clinic moves it by no day
                    on = timezone.localdate(record.taken_at, timezone=tz)
                    changes = {"taken_at": dt.datetime.combine(on, data["time"]).replace(tzinfo=tz),
                               "amount": data["amount"], "unit": data["unit"],
                               "product": data.get("product") or "",
                               "mitragynine_percent": data.get("mitragynine_percent"),
                               "grams_per_capsule": data.get("grams_per_capsule")}
                    if data.get("confirmed_unusual"):
                        changes["confirmed_unusual"] = True
                else:
                    changes = {"detail": data.get("detail") or ""}
                services.correct_record(request.user, record, changes, data["reason"],
                                        token=forms.submission_key(request, form))
            return redirect(reverse("diary_day", args=[record.diary.day.isoformat()]) + "?changed=1")
        except services.NeedsConfirmation as exc:
            asked = True
            forms.apply_service_errors(form, exc)
        except ValidationError as exc:
            forms.apply_service_errors(form, exc)
    if kind == "dose":
        title, detail = selectors.describe_dose(record)
    elif kind == "substance":
        title, detail = (gettext("Also used: %(name)s")
                         % {"name": services.SUBSTANCES.get(record.name, record.name)}), record.detail
    else:
        title, detail = selectors.describe_assessment(record)[:2]
    return render(request, "web/my_entry_correct.html", {
        "patient": patient, "record": record, "kind": kind, "form": form, "asked": asked,
        "title": title, "detail": detail, "may_change": services.patient_may_still_change(record),
        "zone": _reading_zone(forms.valid_zone(request.POST.get("browser_tz")) if request.method == "POST"
                              else "")[1],
        "history": selectors.record_history(record)[1:],
    })


def _diary_errors(exc: ValidationError, form, doses, index_map: list[int]) -> None:
    """Put the service's messages beside their fields, by their structured locations:
    ``("doses", i, field)`` on the i-th dose sent (a dose's ``taken_at`` is its time field),
    ``("sows", item)`` on that SOWS item, ``(field,)`` on the diary form."""
    for location, messages in writes.error_locations(exc):
        if location[:1] == ("doses",) and len(location) == 3:
            target = doses.forms[index_map[location[1]]]
            field = {"taken_at": "time"}.get(location[2], location[2])
            name = field if field in target.fields else None
        else:
            target = form
            name = writes.location_key(location)
            name = name if name in form.fields and name != "token" else None
        for message in messages:
            target.add_error(name, message)


# --------------------------------------------------------------------------- alerts

@_role_required(Role.CLINICIAN)
def worklist(request):
    from django.core.paginator import Paginator
    from django.db.models import Case, IntegerField, Value, When

    from speciosa.clinic import alerts as calerts
    from speciosa.clinic.models import Alert

    severity_order = Case(*[When(severity=s, then=Value(r)) for s, r in Alert.SEVERITY_RANK.items()],
                          default=Value(9), output_field=IntegerField())
    open_first = Case(When(status=Alert.Status.OPEN, then=Value(0)), default=Value(1),
                      output_field=IntegerField())
    active = (calerts.visible_alerts(request.user).filter(status__in=Alert.ACTIVE)
              .select_related("patient", "acknowledged_by")
              .order_by(severity_order, open_first, "first_seen_at", "pk"))
    page = Paginator(active, WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    from speciosa.clinic import medications

    # medicines patients added that no clinician confirmed yet (issue 19)
    waiting = list(medications.awaiting_confirmation(access.visible_patients(request.user))[:100])
    # the page shows each alert's patient and its detail: one entry naming the patients
    services.record_list_view(request.user, "worklist", list(dict.fromkeys(
        [a.patient_id for a in page.object_list] + [m.patient_id for m in waiting])))
    return render(request, "web/worklist.html", {"alerts": page.object_list, "page": page,
                                                 "total": page.paginator.count,
                                                 "to_confirm": waiting})


def _back(request) -> str:
    back = request.POST.get("back") or request.GET.get("back") or ""
    # only a path on this site: never an open redirect
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = reverse("worklist")
    return back


@_role_required(Role.CLINICIAN)
@require_http_methods(["POST"])
def alert_acknowledge(request, alert_id):
    from speciosa.clinic import alerts as calerts

    alert = get_object_or_404(calerts.visible_alerts(request.user), pk=alert_id)
    calerts.acknowledge(request.user, alert)
    return redirect(_back(request))


@_role_required(Role.CLINICIAN)
@require_http_methods(["GET", "POST"])
def alert_resolve(request, alert_id):
    from speciosa.clinic import alerts as calerts

    alert = get_object_or_404(calerts.visible_alerts(request.user).select_related("patient"), pk=alert_id)
    back = _back(request)
    if request.method == "POST":
        try:
            calerts.resolve(request.user, alert, request.POST.get("note", ""))
            return redirect(back)
        except ValidationError as exc:
            return render(request, "web/alert_resolve.html", {"alert": alert, "back": back,
                                                              "error": exc.message_dict["note"][0]},
                          status=400)
    return render(request, "web/alert_resolve.html", {"alert": alert, "back": back})


@login_required
def evidence(request):
    """The evidence registry: every citation and claim, with its type or verdict."""
    from speciosa.knowledge import evidence as kevidence

    citations = sorted(kevidence.all_citations().values(), key=lambda c: (c.authors or "", c.year or 0))
    claims = list(kevidence.all_claims().values())
    return render(request, "web/evidence.html", {"citations": citations, "claims": claims})
