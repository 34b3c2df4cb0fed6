"""Schedule endpoints (issue 16), through the same services as the pages
(:mod:`speciosa.schedules.services`), with the same messages.

Clinician:

- ``GET plan-templates/``: the templates offered at the clinician's site (its own, then the
  shipped defaults);
- ``GET/POST patients/{id}/plan/``: the current plan with what is due and the completion
  rate; a new plan or its next version (from a template, or line by line);
- ``GET patients/{id}/plan/history/``: every version, newest first;
- ``POST patients/{id}/plan/stop/``: stop the current plan (with a reason).

Patient:

- ``GET me/due/``: what is due, overdue or done now, in the patient's time zone, and the
  completion rate;
- ``GET/PUT me/questionnaires/{instrument_id}/draft/``: the answers so far (kept on the
  server; PUT merges answers, ``null`` clears one);
- ``POST me/questionnaires/{instrument_id}/submission/``: score the draft with the one
  scorer and store it (``source`` patient); ``urgent_help`` when PHQ-9 item 9 is above 0.

Every ``POST`` takes an ``Idempotency-Key``; another team's patient is a 404; a refused
write stores nothing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from speciosa.clinic import access, crisis
from speciosa.clinic import services as cservices
from speciosa.clinic.models import Assessment
from speciosa.schedules import services
from speciosa.schedules.models import PatientPlan

from . import serializers as s
from .views import (
    BAD_REQUEST,
    ERRORS,
    IDEMPOTENCY_KEY,
    PATIENT_ID,
    ApiView,
    IsClinician,
    IsPatient,
    ListView,
    _create_responses,
    _created,
    _help_for,
    _parse,
)

INSTRUMENT_ID = OpenApiParameter("instrument_id", str, OpenApiParameter.PATH,
                                 description="Instrument id (phq9, gad7, audit-c, asex, sows...)")


class PlanLineSerializer(serializers.Serializer):
    instrument = serializers.CharField(help_text='an instrument id, or "diary" for the daily diary')
    every_days = serializers.IntegerField()
    start = serializers.DateField()
    end = serializers.DateField(allow_null=True)


class PlanOut(serializers.ModelSerializer):
    items = PlanLineSerializer(many=True)
    status = serializers.SerializerMethodField()
    entered_by = serializers.SerializerMethodField()

    class Meta:
        model = PatientPlan
        fields = ["id", "name", "template", "items", "status", "entered_at", "entered_by",
                  "source", "replaces", "change_reason"]

    def get_status(self, plan: PatientPlan) -> str:
        return "stopped" if plan.retracted else "replaced" if plan.superseded else "current"

    def get_entered_by(self, plan: PatientPlan) -> str | None:
        return access.display_name(plan.entered_by) if plan.entered_by else None


class PlanIn(serializers.Serializer):
    """Either ``template`` (with an optional ``start``, default today) or ``items``."""

    template = serializers.IntegerField(required=False)
    start = serializers.DateField(required=False)
    items = serializers.ListField(child=serializers.DictField(), required=False, max_length=30,
                                  help_text="lines {instrument, every_days, start, end}")
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    reason = serializers.CharField(max_length=500, required=False, allow_blank=True)

    def validate(self, data):
        if ("template" in data) == ("items" in data):
            raise serializers.ValidationError({"items": ["Give either a template or the plan's items."]})
        return data


class StopIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class DueItemOut(serializers.Serializer):
    instrument = serializers.CharField(source="item.instrument")
    label = serializers.SerializerMethodField()
    every_days = serializers.IntegerField(source="item.every_days")
    due_on = serializers.DateField()
    due_at = serializers.DateTimeField()
    closes_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["due", "overdue", "done", "missed"])
    done_at = serializers.SerializerMethodField(help_text="when it was completed (a date for a diary day)")

    def get_label(self, row) -> str:
        return services.label(row.item.instrument)

    def get_done_at(self, row) -> str | None:
        return row.done_at.isoformat() if row.done_at is not None else None


class RateOut(serializers.Serializer):
    done = serializers.IntegerField()
    expected = serializers.IntegerField()
    percent = serializers.IntegerField(allow_null=True)
    since = serializers.DateField()
    until = serializers.DateField()


class PlanStateOut(serializers.Serializer):
    plan = PlanOut(allow_null=True)
    due = DueItemOut(many=True)
    completion = RateOut(allow_null=True)
    time_zone = serializers.CharField()


class TemplateOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    name = serializers.CharField()
    description = serializers.CharField()
    site = serializers.IntegerField(source="site_id", allow_null=True)
    items = serializers.ListField(child=serializers.DictField())


def _state(patient) -> dict[str, Any]:
    plan, rows, rate = services.plan_state(patient)
    return {"plan": plan, "due": rows, "completion": rate,
            "time_zone": str(getattr(services.time_zone(patient), "key", "UTC"))}


@extend_schema(tags=["schedules"], responses={200: TemplateOut(many=True), **BAD_REQUEST, **ERRORS})
class PlanTemplateListView(ListView):
    """The plan templates offered at your site: the site's own, then the shipped defaults."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = TemplateOut

    def get_queryset(self):
        profile = getattr(self.request.user, "profile", None)
        return services.templates_for(getattr(profile, "site", None))


class PlanView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["schedules"], parameters=[PATIENT_ID], responses={200: PlanStateOut, **ERRORS})
    def get(self, request: Request, patient_id: str) -> Response:
        """The current plan (null without one), each line's current occurrence and the
        completion rate over the last 28 days."""
        patient = self.patient()
        cservices.record_view(request.user, patient, "plan")
        return Response(PlanStateOut(_state(patient)).data)

    @extend_schema(tags=["schedules"], parameters=[PATIENT_ID, IDEMPOTENCY_KEY], request=PlanIn,
                   responses=_create_responses(PlanOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Give the patient a plan, or store its next version (the last stays in the history).
        Refused with a message per line and field (``items-1-every_days``)."""
        patient = self.patient()

        def call(token):
            data = _parse(PlanIn, request.data)
            template = None
            if "template" in data:
                template = services.template_for(patient.site, data["template"])
                start = data.get("start") or services.today(patient)
                lines = services.lines_from_template(template, start)
            else:
                lines = data["items"]
                current = services.current_plan(patient)
                template = current.template if current else None
            return services.save_plan(request.user, patient, lines, name=data.get("name") or "",
                                      template=template, reason=data.get("reason") or "",
                                      token=token)

        return _created(request, PatientPlan, PlanOut, call, kind="plan", patient=patient)


@extend_schema(tags=["schedules"], parameters=[PATIENT_ID], responses={200: PlanOut(many=True), **BAD_REQUEST,
                                                                       **ERRORS})
class PlanHistoryView(ListView):
    """Every version of the patient's plans, newest first (replaced and stopped ones too)."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = PlanOut

    def get_queryset(self):
        patient = self.patient()
        cservices.record_view(self.request.user, patient, "plan-history")
        return services.plan_history(patient)


class PlanStopView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["schedules"], parameters=[PATIENT_ID, IDEMPOTENCY_KEY], request=StopIn,
                   responses=_create_responses(PlanOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Stop the current plan; the patient is asked to complete nothing on a schedule."""
        patient = self.patient()

        def call(token):
            data = _parse(StopIn, request.data)
            return services.stop_plan(request.user, patient, data["reason"], token=token)

        return _created(request, PatientPlan, PlanOut, call, kind="plan-stop", patient=patient)


# --------------------------------------------------------------------------- patient

class MyDueView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsPatient]

    @extend_schema(tags=["me"], responses={200: PlanStateOut, **ERRORS})
    def get(self, request: Request) -> Response:
        """What you have to complete now (overdue first), what is done, and your completion
        rate over the last 28 days, in your time zone."""
        return Response(PlanStateOut(_state(access.own_patient(request.user))).data)


class DraftOut(serializers.Serializer):
    instrument = serializers.CharField()
    instrument_version = serializers.CharField()
    answers = serializers.DictField(child=serializers.IntegerField())
    answered = serializers.IntegerField()
    questions = serializers.IntegerField()
    missing = serializers.ListField(child=serializers.CharField(),
                                    help_text="required questions not answered yet")
    updated_at = serializers.DateTimeField(allow_null=True)


class DraftIn(serializers.Serializer):
    answers = serializers.DictField(child=serializers.IntegerField(allow_null=True), allow_empty=False)


def _draft_out(patient, inst) -> dict[str, Any]:
    draft = services.open_draft(patient, inst.id)
    answers = dict(draft.answers) if draft else {}
    return {"instrument": inst.id, "instrument_version": inst.version, "answers": answers,
            "answered": len(answers), "questions": len(inst.items),
            "missing": [it.id for it in inst.items if it.required and it.id not in answers],
            "updated_at": draft.updated_at if draft else None}


class MyDraftView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsPatient]

    @extend_schema(tags=["me"], parameters=[INSTRUMENT_ID], responses={200: DraftOut, **ERRORS})
    def get(self, request: Request, instrument_id: str) -> Response:
        """Your answers so far to a questionnaire of your plan (empty before the first)."""
        patient = access.own_patient(request.user)
        inst = services.questionnaire(patient, instrument_id)
        return Response(DraftOut(_draft_out(patient, inst)).data)

    @extend_schema(tags=["me"], parameters=[INSTRUMENT_ID], request=DraftIn,
                   responses={200: DraftOut, **BAD_REQUEST, **ERRORS})
    def put(self, request: Request, instrument_id: str) -> Response:
        """Keep answers (question id -> value; null clears one) in your draft. An answer
        that is not one of the question's values stores nothing and names the question."""
        patient = access.own_patient(request.user)
        inst = services.questionnaire(patient, instrument_id)
        data = _parse(DraftIn, request.data)
        services.save_answers(request.user, patient, inst.id, data["answers"])
        return Response(DraftOut(_draft_out(patient, inst)).data)


class SubmittedOut(s.AssessmentOut):
    """The assessment just stored, with ``urgent_help`` when PHQ-9 item 9 (thoughts of
    death or self-harm) was answered above 0: show it to the patient straight away."""

    urgent_help = serializers.SerializerMethodField()

    class Meta(s.AssessmentOut.Meta):
        fields = [*s.AssessmentOut.Meta.fields, "urgent_help"]

    @extend_schema_field(s.UrgentHelpOut(allow_null=True))
    def get_urgent_help(self, obj) -> dict[str, Any] | None:
        return self.context.get("urgent_help")


def _help_after(assessment: Assessment, patient) -> dict[str, Any] | None:
    return _help_for(crisis.urgent_reasons(
        phq9_items=assessment.items if assessment.instrument == "phq9" else None), patient)


class MySubmissionView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsPatient]

    @extend_schema(tags=["me"], parameters=[INSTRUMENT_ID, IDEMPOTENCY_KEY], request=None,
                   responses=_create_responses(SubmittedOut))
    def post(self, request: Request, instrument_id: str) -> Response:
        """Send your draft: it is scored (the one scorer) and stored as your assessment. With
        a required question unanswered nothing is stored and the message names it."""
        patient = access.own_patient(request.user)
        inst = services.questionnaire(patient, instrument_id)

        def out(assessment):
            return SubmittedOut(assessment, context={"urgent_help": _help_after(assessment, patient)})

        def call(token):
            return services.submit(request.user, patient, inst.id, token=token)

        return _created(request, Assessment, out, call, kind="assessment",
                        patient=patient)
