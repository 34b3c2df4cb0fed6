"""Urine drug test panel endpoints (issue 19), through the same service as the page
(:mod:`speciosa.clinic.urine`), with the same messages.

- ``GET/POST patients/{id}/urine-panels/``: the patient's panels (newest first) and record one.
- ``GET patients/{id}/urine-panels/{panel_id}/``: one panel with its reading against what is
  expected (expected / unexpected / missing-expected, caveats, citations).
- ``POST patients/{id}/urine-panels/{panel_id}/correct/``: the whole corrected panel with
  the ``reason``; the answer is its next version (history kept, audited, rules run again).
- ``POST patients/{id}/urine-panels/{panel_id}/withdraw/``: withdraw a panel entered in
  error, with the ``reason`` (kept, retracted; no longer read anywhere).

``POST`` takes an ``Idempotency-Key``; a panel id of another patient is a 404; a refused
panel stores nothing.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from speciosa.clinic import services, urine
from speciosa.clinic.models import UrinePanel

from .views import (
    BAD_REQUEST,
    ERRORS,
    IDEMPOTENCY_KEY,
    PATIENT_ID,
    ApiView,
    IsClinician,
    ListView,
    RecordView,
    _create_responses,
    _created,
    _int,
    _parse,
    record_schema,
)

PANEL_ID = OpenApiParameter("panel_id", int, OpenApiParameter.PATH, description="Urine panel id")


class UrinePanelIn(serializers.Serializer):
    collected_at = serializers.DateTimeField()
    panels = serializers.ListField(child=serializers.CharField(max_length=40), max_length=10)
    method = serializers.CharField(max_length=20)
    method_detail = serializers.CharField(max_length=60, required=False, allow_blank=True)
    creatinine_mg_dl = serializers.CharField(max_length=20, required=False, allow_blank=True,
                                             allow_null=True)
    ph = serializers.CharField(max_length=20, required=False, allow_blank=True, allow_null=True)
    specific_gravity = serializers.CharField(max_length=20, required=False, allow_blank=True,
                                             allow_null=True)
    temperature_in_range = serializers.BooleanField(required=False, allow_null=True, default=None)
    observed = serializers.BooleanField(required=False, allow_null=True, default=None)
    note = serializers.CharField(max_length=500, required=False, allow_blank=True)
    analytes = serializers.DictField(
        help_text="lab code -> 'positive'/'negative'/'indeterminate', or "
                  "{'value', 'cutoff', 'unit'}")


class UrinePanelCorrectIn(UrinePanelIn):
    reason = serializers.CharField(max_length=500)


class UrinePanelWithdrawIn(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class UrinePanelOut(serializers.Serializer):
    id = serializers.IntegerField()
    replaces = serializers.IntegerField(source="replaces_id", allow_null=True)
    superseded = serializers.BooleanField()
    retracted = serializers.BooleanField()
    change_reason = serializers.CharField()
    collected_at = serializers.DateTimeField()
    panels = serializers.ListField(child=serializers.CharField())
    method = serializers.CharField()
    method_detail = serializers.CharField()
    creatinine_mg_dl = serializers.DecimalField(max_digits=7, decimal_places=2, allow_null=True)
    ph = serializers.DecimalField(max_digits=4, decimal_places=2, allow_null=True)
    specific_gravity = serializers.DecimalField(max_digits=6, decimal_places=4, allow_null=True)
    temperature_in_range = serializers.BooleanField(allow_null=True)
    observed = serializers.BooleanField(allow_null=True)
    specimen_problems = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField()
    reading = serializers.SerializerMethodField()

    def get_reading(self, panel: UrinePanel) -> dict[str, Any]:
        reading, expected = urine.read(panel)
        rows = {r.lab: r for r in panel.analytes.current()}
        return {
            "withheld": reading.withheld,
            "flagged": reading.flagged,
            "analytes": [{
                "lab": a.lab, "result": a.result, "flag": a.flag, "message": a.message,
                "loinc": rows[a.lab].loinc if a.lab in rows else "",
                "value": str(rows[a.lab].value) if a.lab in rows and rows[a.lab].value is not None else None,
                "cutoff": str(rows[a.lab].cutoff) if a.lab in rows and rows[a.lab].cutoff is not None else None,
                "unit": rows[a.lab].unit if a.lab in rows else "",
                "expected_because": expected.get(a.lab, ""),
            } for a in reading.analytes],
            "caveats": list(reading.caveats),
            "citations": list(reading.citations),
        }


@extend_schema(tags=["urine drug tests"], parameters=[PATIENT_ID])
class UrinePanelListView(ListView):
    """A patient's urine drug test panels, newest first; or record one."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = UrinePanelOut

    def get_queryset(self):
        patient = self.patient()
        services.record_view(self.request.user, patient, "urine-panels")
        return UrinePanel.objects.current().filter(patient=patient).order_by("-collected_at", "-pk")

    @extend_schema(responses={200: UrinePanelOut(many=True), **BAD_REQUEST, **ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], request=UrinePanelIn,
                   responses=_create_responses(UrinePanelOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Record a panel. Refused with a message per field: an unknown panel or analyte, a
        missing result, a value without its cut-off, a validity measure out of bounds."""
        patient = self.patient()

        def call(token):
            data = dict(_parse(UrinePanelIn, request.data))
            return urine.record_panel(request.user, patient, data, token=token)

        return _created(request, UrinePanel, UrinePanelOut, call, kind="urine-panel",
                        patient=patient)


class UrinePanelDetailView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["urine drug tests"], parameters=[PATIENT_ID, PANEL_ID],
                   responses={200: UrinePanelOut, **ERRORS})
    def get(self, request: Request, patient_id: str, panel_id: str) -> Response:
        """One panel with its reading against what is expected."""
        patient = self.patient()
        panel = UrinePanel.objects.filter(patient=patient, pk=_int(panel_id)).first()
        if panel is None:
            raise Http404("No such urine panel in this patient's record")
        services.record_view(request.user, patient, "urine-panel", panel)
        return Response(UrinePanelOut(panel).data)


class PanelRecord(RecordView):
    record_kwarg = "panel_id"
    record_name = "urine panel"
    model = UrinePanel
    out = UrinePanelOut
    find = staticmethod(urine.panel_for)


@record_schema("urine drug tests", PANEL_ID)
class UrinePanelCorrectView(PanelRecord):
    """Correct the panel as a whole (the body is the whole corrected panel, as to record one,
    with the reason). The old version is kept; the answer is the new one."""

    body = UrinePanelCorrectIn
    audit_kind = "urine-panel-correct"

    def act(self, request, patient, record, ser, token):
        data = dict(ser.validated_data)
        reason = data.pop("reason")
        return urine.correct_panel(request.user, patient, record, data, reason=reason,
                                   token=token)


@record_schema("urine drug tests", PANEL_ID)
class UrinePanelWithdrawView(PanelRecord):
    """Withdraw the panel as entered in error, with the reason (kept, not read)."""

    body = UrinePanelWithdrawIn
    audit_kind = "urine-panel-withdraw"

    def act(self, request, patient, record, ser, token):
        return urine.withdraw_panel(request.user, patient, record,
                                    reason=ser.validated_data["reason"], token=token)
