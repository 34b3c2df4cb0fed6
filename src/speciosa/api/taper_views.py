"""Taper plan endpoints (issue 19): the same operations as the pages, through the same
service (:mod:`speciosa.clinic.taper`), with the same messages.

- ``GET/POST patients/{id}/taper-plans/``: the patient's plans (current versions, newest
  first) and a new one (refused while another is active).
- ``GET patients/{id}/taper-plans/{plan_id}/``: one plan (any version), with the plan
  against the diary day by day (``planned_vs_taken``).
- ``POST .../{plan_id}/correct/``: a corrected copy replaces the plan (``change_reason``).
- ``POST .../{plan_id}/replace/``: a new plan takes over from the active one.
- ``POST .../{plan_id}/stop/``: the active plan stops (``stop_reason``, ``stopped_on``).

Speciosa proposes no dose: a plan's steps are what the caller sends. Every ``POST`` takes an
``Idempotency-Key``; a plan id of another patient is a 404; a refused plan stores nothing.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from speciosa.clinic import services, taper
from speciosa.clinic.models import TaperPlan

from .serializers import _person
from .views import (
    BAD_REQUEST,
    ERRORS,
    IDEMPOTENCY_KEY,
    PATIENT_ID,
    IsClinician,
    ListView,
    RecordView,
    _create_responses,
    _created,
    _parse,
    record_schema,
)

PLAN_ID = OpenApiParameter("plan_id", int, OpenApiParameter.PATH,
                           description="Taper plan id (any version)")


class _PlanFields(serializers.Serializer):
    kind = serializers.CharField(max_length=20, help_text="kratom, buprenorphine or methadone")
    reason = serializers.CharField(max_length=2000, allow_blank=True)
    # the service reads each step and says what to fix (under steps-<i>-<field>)
    steps = serializers.ListField(child=serializers.DictField(), max_length=taper.MAX_STEPS + 1,
                                  help_text="each step: start, end (YYYY-MM-DD, both "
                                            "included), amount (per dose, as text), unit (g, "
                                            "capsule, glass, mg_extract, mg_mitragynine, "
                                            "mg_7oh), doses_per_day (1-12); grams_per_capsule "
                                            "for capsules, mitragynine_percent for an extract")
    episode = serializers.IntegerField(required=False, allow_null=True)
    decision = serializers.IntegerField(required=False, allow_null=True)


class TaperPlanIn(_PlanFields):
    pass


class TaperPlanCorrectIn(serializers.Serializer):
    change_reason = serializers.CharField(max_length=500)
    kind = serializers.CharField(max_length=20, required=False)
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    steps = serializers.ListField(child=serializers.DictField(), max_length=taper.MAX_STEPS + 1,
                                  required=False)
    episode = serializers.IntegerField(required=False, allow_null=True)
    decision = serializers.IntegerField(required=False, allow_null=True)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.validated_data.items() if k != "change_reason"}


class TaperPlanReplaceIn(_PlanFields):
    change_reason = serializers.CharField(max_length=500)


class TaperPlanStopIn(serializers.Serializer):
    stop_reason = serializers.CharField(max_length=200)
    stopped_on = serializers.DateField(required=False, allow_null=True)


class DayOut(serializers.Serializer):
    day = serializers.DateField()
    unit = serializers.CharField()
    planned = serializers.DecimalField(max_digits=12, decimal_places=3, allow_null=True,
                                       coerce_to_string=False)
    taken = serializers.FloatField(allow_null=True)
    planned_mg = serializers.FloatField(allow_null=True)
    taken_mg = serializers.FloatField(allow_null=True)
    doses = serializers.IntegerField()
    recorded = serializers.BooleanField()
    status = serializers.CharField()
    notes = serializers.ListField(child=serializers.CharField())


class TaperPlanOut(serializers.Serializer):
    id = serializers.IntegerField()
    patient = serializers.IntegerField(source="patient_id")
    kind = serializers.CharField()
    reason = serializers.CharField()
    steps = serializers.ListField(child=serializers.DictField())
    start = serializers.DateField()
    end = serializers.DateField()
    status = serializers.CharField()
    stopped_on = serializers.DateField(allow_null=True)
    stop_reason = serializers.CharField()
    episode = serializers.IntegerField(source="episode_id", allow_null=True)
    decision = serializers.IntegerField(source="decision_id", allow_null=True)
    follows = serializers.IntegerField(source="follows_id", allow_null=True)
    replaces = serializers.IntegerField(source="replaces_id", allow_null=True)
    superseded = serializers.BooleanField()
    entered_by = serializers.SerializerMethodField()
    entered_at = serializers.DateTimeField()
    change_reason = serializers.CharField()

    def get_entered_by(self, obj) -> str | None:
        return _person(obj.entered_by)


class TaperPlanDetailOut(TaperPlanOut):
    planned_vs_taken = serializers.SerializerMethodField()

    @extend_schema_field(DayOut(many=True))
    def get_planned_vs_taken(self, obj) -> list[dict[str, Any]]:
        return DayOut(taper.planned_vs_taken(obj), many=True).data


class PlanRecord(RecordView):
    record_kwarg = "plan_id"
    record_name = "taper plan"
    model = TaperPlan
    out = TaperPlanOut
    find = staticmethod(taper.plan_for)


@extend_schema(tags=["taper plans"], parameters=[PATIENT_ID])
class TaperPlanListView(ListView):
    """A patient's taper plans, newest first; or record one."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = TaperPlanOut

    def get_queryset(self):
        patient = self.patient()
        services.record_view(self.request.user, patient, "taper-plans")
        return taper.current_plans(patient)

    @extend_schema(responses={200: TaperPlanOut(many=True), **BAD_REQUEST, **ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], request=TaperPlanIn,
                   responses=_create_responses(TaperPlanOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Record a plan as agreed with the patient (its steps as sent). Refused with a
        message per field (``steps-1-end``, ``steps-0-unit``...): a step ending before it
        starts, overlapping steps, an unknown unit, an amount above the diary's plausibility
        limit, another patient's episode or decision, another plan still active."""
        patient = self.patient()

        def call(token):
            data = dict(_parse(TaperPlanIn, request.data))
            return taper.record_plan(request.user, patient, data, token=token)

        return _created(request, TaperPlan, TaperPlanOut, call, kind="taper-plan",
                        patient=patient)


@record_schema("taper plans", PLAN_ID)
class TaperPlanDetailView(PlanRecord):
    """One plan (the version asked for) with the plan against the diary, day by day up to
    today: ``planned`` and ``taken`` in the plan's unit (``taken`` null when the doses cannot
    all be expressed in it, or there is no diary), and in estimated mg mitragynine."""

    out = TaperPlanDetailOut
    view_kind = "taper-plan"


@record_schema("taper plans", PLAN_ID)
class TaperPlanCorrectView(PlanRecord):
    """Correct a plan entered wrongly: send ``change_reason`` and the fields that change; the
    answer is the new version (``replaces`` names the old one)."""

    body = TaperPlanCorrectIn
    audit_kind = "taper-plan-correction"

    def act(self, request, patient, record, ser, token):
        return taper.correct_plan(request.user, patient, record, ser.changes(),
                                  reason=ser.validated_data["change_reason"], token=token)


@record_schema("taper plans", PLAN_ID)
class TaperPlanReplaceView(PlanRecord):
    """A new plan takes over from the active one (kept, marked replaced); the answer is the
    new plan (``follows`` names the old one)."""

    body = TaperPlanReplaceIn
    audit_kind = "taper-plan-replace"

    def act(self, request, patient, record, ser, token):
        data = dict(ser.validated_data)
        reason = data.pop("change_reason")
        return taper.replace_plan(request.user, patient, record, data, reason=reason,
                                  token=token)


@record_schema("taper plans", PLAN_ID)
class TaperPlanStopView(PlanRecord):
    """Stop the active plan on ``stopped_on`` (default today) with the reason."""

    body = TaperPlanStopIn
    audit_kind = "taper-plan-stop"

    def act(self, request, patient, record, ser, token):
        data = ser.validated_data
        return taper.stop_plan(request.user, patient, record, reason=data["stop_reason"],
                               on=data.get("stopped_on"), token=token)
