"""API views: parse, ask :mod:`speciosa.clinic.access`, call a service or a selector, shape.

No view writes to the database by itself: creates go through :mod:`speciosa.clinic.services`
(the idempotency lookup in :mod:`speciosa.api.idempotency` only reads). Roles and patients
are decided by :mod:`speciosa.clinic.access` exactly as for the web: a patient outside the
caller's reach is a 404; an endpoint outside the caller's role is a 403.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, permissions, serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from speciosa.clinic import access, onboarding, records, selectors, services
from speciosa.clinic.models import Assessment, DiaryDay, LabResult, Note, Patient, Role
from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs
from speciosa.web import security

from . import idempotency, tokens
from . import selectors as api_selectors
from . import serializers as s
from .errors import api_exception_handler
from .parsers import SafeJSONParser

# --------------------------------------------------------------------------- plumbing


class Page(PageNumberPagination):
    """``?page=N`` (from 1) and ``?page_size=N`` (default 50, at most 200)."""

    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        """The page size asked for; anything but a whole number from 1 to 200 is a 400."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= self.max_page_size):
            raise serializers.ValidationError(
                {self.page_size_query_param: [f"Send a whole number from 1 to {self.max_page_size}."]})
        return int(raw)

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.page_query_param:
                p["schema"]["minimum"] = 1
            if p["name"] == self.page_size_query_param:
                p["schema"].update(minimum=1, maximum=self.max_page_size)
        return params


class RoleRequired(permissions.BasePermission):
    """The endpoint belongs to one role (decided by :func:`access.role_of`)."""

    role: str = ""
    message = "This endpoint is not part of your role."

    def has_permission(self, request: Request, view: APIView) -> bool:
        return access.has_role(request.user, self.role)


class IsClinician(RoleRequired):
    role = Role.CLINICIAN


class IsPatient(RoleRequired):
    role = Role.PATIENT


ERRORS = {
    401: OpenApiResponse(s.DetailSerializer, description="Not logged in, or a bad token."),
    403: OpenApiResponse(s.DetailSerializer, description="Not part of your role."),
    404: OpenApiResponse(s.DetailSerializer, description="No such object, or not yours to see."),
}
BAD_REQUEST = {400: OpenApiResponse(s.ErrorSerializer, description="What to fix, per field.")}
PATIENT_ID = OpenApiParameter("patient_id", int, OpenApiParameter.PATH, description="Patient id")
RECORD_KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(s.RECORD_KINDS))
RECORD_ID = OpenApiParameter("record_id", int, OpenApiParameter.PATH)
IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER, {"type": "string", "minLength": 1, "maxLength": idempotency.MAX_LENGTH},
    OpenApiParameter.HEADER, required=True,
    description="A new unique value (e.g. a UUID) per create; resend it on retries.")
ANY_RECORD = PolymorphicProxySerializer(
    component_name="Record", serializers=list(s.RECORD_SERIALIZERS.values()), resource_type_field_name="kind")


def _int(value: Any) -> int:
    """A path id; anything but a plain number is a 404, like an unknown id."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise Http404
    return int(text)


class ApiView(APIView):
    """JSON in, JSON out; errors in the shape of :mod:`speciosa.api.errors`."""

    parser_classes = [SafeJSONParser]

    def get_exception_handler(self):
        return api_exception_handler

    def patient(self) -> Any:
        return access.patient_for(self.request.user, _int(self.kwargs["patient_id"]))


class ListView(ApiView, generics.ListAPIView):
    """A paged list: ``{"count", "next", "previous", "results"}``."""

    pagination_class = Page


def _parse(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    ser = serializer_class(data=data, **kwargs)
    ser.is_valid(raise_exception=True)
    return ser.validated_data


def _created(request: Request, model, out: type[serializers.Serializer], call, *, kind: str,
             patient) -> Response:
    """Run a create once per ``Idempotency-Key``: 201 the first time, 200 with the same
    object (and ``Idempotent-Replayed: true``) when the key was seen before for the same
    endpoint, ``kind`` of record, ``patient`` and body (another body: 422; anything else: 409)."""
    token = idempotency.token_for(request)
    earlier = idempotency.replayed(request, token, model, kind=kind, patient=patient)
    if earlier is not None:
        return Response(out(earlier).data, status=status.HTTP_200_OK, headers={"Idempotent-Replayed": "true"})
    obj = call(token)
    return Response(out(obj).data, status=status.HTTP_201_CREATED)


def _create_responses(out) -> dict:
    return {201: out, 200: OpenApiResponse(out, description="A retry: the object the first request made."),
            409: OpenApiResponse(s.ErrorSerializer, description="The key was used for a different request."),
            422: OpenApiResponse(s.ErrorSerializer,
                                 description="The key was used with a different request body."),
            **BAD_REQUEST, **ERRORS}


class RecordView(ApiView):
    """One versioned record of a patient the user may see, named by ``record_kwarg`` in the
    URL and found by ``find(patient, pk)`` (a service's ``*_for``: a ``ValidationError`` for
    another patient's or no record, answered 404 here, as for a patient one may not see).

    ``GET`` shows it (``view_kind`` in the audit trail); ``POST`` runs :meth:`act` once per
    ``Idempotency-Key`` on the body parsed with ``body`` (``audit_kind`` keys the replay).
    Subclasses set the class attributes and :meth:`act`; :func:`record_schema` documents
    them. The description of an endpoint is its class's docstring."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    record_kwarg: str
    record_name: str
    model: type
    out: type[serializers.Serializer]
    body: type[serializers.Serializer] = s.EmptyIn
    view_kind: str = ""
    audit_kind: str = ""
    find = staticmethod(lambda patient, pk: None)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # only the methods it has: another is a 405, as on any view
        super().__init_subclass__(**kwargs)
        cls.http_method_names = [m for m, on in (("get", cls.view_kind), ("head", cls.view_kind),
                                                 ("post", cls.audit_kind)) if on] + ["options"]

    def record(self) -> tuple[Any, Any]:
        patient = self.patient()
        try:
            return patient, type(self).find(patient, _int(self.kwargs[self.record_kwarg]))
        except ValidationError:
            raise Http404(f"No such {self.record_name} in this patient's record") from None

    def act(self, request: Request, patient, record, ser: serializers.Serializer, token):
        raise NotImplementedError

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient, record = self.record()
        services.record_view(request.user, patient, self.view_kind, record)
        return Response(self.out(record).data)

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        patient, record = self.record()

        def call(token):
            ser = self.body(data=request.data)
            ser.is_valid(raise_exception=True)
            return self.act(request, patient, record, ser, token)

        return _created(request, self.model, self.out, call, kind=self.audit_kind,
                        patient=patient)


def record_schema(tag: str, record_param: OpenApiParameter):
    """The OpenAPI description of a :class:`RecordView`: ``GET`` when it has a
    ``view_kind``, ``POST`` (with its body and the idempotent answers) when it has an
    ``audit_kind``."""

    def wrap(cls):
        methods = {}
        if cls.view_kind:
            methods["get"] = extend_schema(tags=[tag], parameters=[PATIENT_ID, record_param],
                                           responses={200: cls.out, **ERRORS})
        if cls.audit_kind:
            methods["post"] = extend_schema(
                tags=[tag], parameters=[PATIENT_ID, record_param, IDEMPOTENCY_KEY],
                request=cls.body, responses=_create_responses(cls.out))
        return extend_schema_view(**methods)(cls)

    return wrap


# --------------------------------------------------------------------------- auth


class TokenView(ApiView):
    """Exchange a username and password for a new API token, which expires (8 hours for
    staff, 30 days for patients by default; ``expiry`` in the answer).

    A user who needs a second factor (staff; patients who opted in) also sends ``otp``: the
    current authenticator code or a recovery code. Without it no token is issued, so a token
    never carries less assurance than a verified session (docs/security.md).
    """

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    # per client address (trusted proxies only), shared with the web login form
    throttle_classes = [security.AddressThrottle]

    @extend_schema(request=s.TokenIn, responses={
        200: s.TokenOut, **BAD_REQUEST,
        429: OpenApiResponse(s.DetailSerializer, description="Too many attempts; wait and retry.")},
        auth=[], tags=["auth"])
    def post(self, request: Request) -> Response:
        data = _parse(s.TokenIn, request.data)
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                {"__all__": ["Unable to log in with the username and password given."]})
        if security.needs_second_factor(user):
            if not data.get("otp"):
                raise serializers.ValidationError(
                    {"otp": ["This login needs a second factor: send the authenticator code as otp."]})
            if security.verify_code(user, data["otp"]) is None:
                raise serializers.ValidationError(
                    {"otp": ["That code did not match (or too many tries: wait a little and retry)."]})
        row, key = tokens.issue(user)
        security.audit_login(user, request._request, via="api-token", expiry=row.expiry.isoformat())
        return Response({"token": key, "expiry": row.expiry})


# --------------------------------------------------------------------------- clinician


@extend_schema(tags=["patients"], parameters=[
    OpenApiParameter("q", {"type": "string", "maxLength": 100}, description="Search name or record number")],
    responses={200: s.PatientSummary(many=True), **BAD_REQUEST, 401: ERRORS[401], 403: ERRORS[403],
               404: OpenApiResponse(s.DetailSerializer, description="No such page.")})
class PatientListView(ListView):
    """The patients of the clinician's care teams, those needing attention first."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = s.PatientSummary

    class Query(serializers.Serializer):
        q = s.StrictCharField(required=False, allow_blank=True, max_length=100)

    def get_queryset(self):
        query = _parse(self.Query, self.request.query_params.dict())
        return api_selectors.patient_rows(self.request.user, query.get("q", ""))

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "today": timezone.localdate()}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The page, and one audit entry naming the patients on it."""
        response = super().list(request, *args, **kwargs)
        services.record_list_view(request.user, "api:patient-list",
                                  [row["id"] for row in response.data["results"]],
                                  query=request.query_params.get("q", ""))
        return response

    @extend_schema(tags=["patients"], parameters=[IDEMPOTENCY_KEY], request=s.PatientIn,
                   responses=_create_responses(s.PatientSummary))
    def post(self, request: Request) -> Response:
        """Register a patient in one of your care teams, with their consents (issue 15).
        Every rule of the record is checked (a team of the patient's site, dates not in the
        future and in order, pregnancy only with a female sex); nothing is stored when one
        fails."""
        today = timezone.localdate()

        def out(patient):
            summary = api_selectors.patient_summary(request.user, patient)
            return s.PatientSummary(summary, context={"today": today})

        def call(token: str):
            data = _parse(s.PatientIn, request.data)
            return onboarding.register_patient(request.user, data, token=token)

        return _created(request, Patient, out, call, kind="register-patient", patient=None)


class PatientDetailView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["patients"], parameters=[PATIENT_ID], responses={200: s.PatientSummary, **ERRORS})
    def get(self, request: Request, patient_id: str) -> Response:
        """One patient with the summary. Opening a record is audited."""
        patient = self.patient()
        services.record_view(request.user, patient)
        summary = api_selectors.patient_summary(request.user, patient)
        return Response(s.PatientSummary(summary, context={"today": timezone.localdate()}).data)


@extend_schema(tags=["patients"], parameters=[PATIENT_ID],
               responses={200: s.TimelineEventOut(many=True), **BAD_REQUEST, **ERRORS})
class TimelineView(ListView):
    """The patient's record, newest first: current versions, withdrawn ones marked."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = s.TimelineEventOut

    def get_queryset(self):
        patient = self.patient()
        services.record_view(self.request.user, patient, "timeline")
        return api_selectors.timeline_rows(patient)


class AssessmentCreateView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["records"], parameters=[PATIENT_ID, IDEMPOTENCY_KEY], request=s.AssessmentIn,
                   responses=_create_responses(s.AssessmentOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Record a clinician-rated instrument (COWS, PHQ-9, GAD-7, AUDIT-C, ASEX)."""
        patient = self.patient()

        def call(token: str):
            data = _parse(s.AssessmentIn, request.data)
            return services.record_assessment(
                request.user, patient, data["instrument"], data["items"], at=data.get("at"),
                note=data.get("note") or "", token=token)

        return _created(request, Assessment, s.AssessmentOut, call, kind="assessment", patient=patient)


class LabCreateView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["records"], parameters=[PATIENT_ID, IDEMPOTENCY_KEY], request=s.LabIn,
                   responses=_create_responses(s.LabOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Record a lab result. An implausible value answers 400 with
        ``"code": "needs_confirmation"``: check it and resend with ``confirmed_unusual: true``."""
        patient = self.patient()

        def call(token: str):
            data = _parse(s.LabIn, request.data)
            return services.record_lab(request.user, patient, data, token=token)

        return _created(request, LabResult, s.LabOut, call, kind="lab", patient=patient)


class NoteCreateView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["records"], parameters=[PATIENT_ID, IDEMPOTENCY_KEY], request=s.NoteIn,
                   responses=_create_responses(s.NoteOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Write a clinical note."""
        patient = self.patient()

        def call(token: str):
            data = _parse(s.NoteIn, request.data)
            return services.record_note(request.user, patient, data["text"], token=token)

        return _created(request, Note, s.NoteOut, call, kind="note", patient=patient)


class RecordMixin:
    """The record ``kind``/``record_id`` of a patient the user may see (else 404)."""

    def record(self):
        patient = self.patient()
        kind = records.kind_of(self.kwargs["kind"])
        if kind is None:
            raise Http404("No such kind of record")
        model = kind.model
        return patient, model, get_object_or_404(model, pk=_int(self.kwargs["record_id"]), patient=patient)


class CorrectionView(RecordMixin, ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["records"], parameters=[PATIENT_ID, RECORD_KIND, RECORD_ID, IDEMPOTENCY_KEY],
                   request=s.CorrectionIn, responses=_create_responses(ANY_RECORD))
    def post(self, request: Request, patient_id: str, kind: str, record_id: str) -> Response:
        """Correct a record: a new version replaces it; the earlier one stays in its history.
        Send the reason and only the fields that change."""
        patient, model, record = self.record()
        out = s.RECORD_SERIALIZERS[kind]

        def call(token: str):
            ser = s.CorrectionIn(data=request.data)
            ser.is_valid(raise_exception=True)
            changes = ser.changes_for(kind)
            if not changes and kind != "note":
                raise serializers.ValidationError(
                    {"__all__": ["Enter the corrected value, or withdraw the entry instead."]})
            return services.correct_record(request.user, record, changes, ser.validated_data["reason"],
                                           token=token)

        return _created(request, model, out, call, kind="correction", patient=patient)


class RetractionView(RecordMixin, ApiView):
    permission_classes = [permissions.IsAuthenticated, IsClinician]

    @extend_schema(tags=["records"], parameters=[PATIENT_ID, RECORD_KIND, RECORD_ID], request=s.RetractionIn,
                   responses={200: ANY_RECORD, **BAD_REQUEST, **ERRORS})
    def post(self, request: Request, patient_id: str, kind: str, record_id: str) -> Response:
        """Withdraw a record entered in error; it stays in the history, marked retracted.
        Withdrawing an already withdrawn record changes nothing (safe to retry)."""
        patient, model, record = self.record()
        data = _parse(s.RetractionIn, request.data)
        if not record.retracted:
            if record.superseded:
                raise serializers.ValidationError(
                    {"__all__": ["This entry was already corrected; withdraw the current version."]})
            record = services.retract_record(request.user, record, data["reason"])
        return Response(s.RECORD_SERIALIZERS[self.kwargs["kind"]](record).data)


@extend_schema(tags=["records"], parameters=[PATIENT_ID, RECORD_KIND, RECORD_ID],
               responses={200: ANY_RECORD, **BAD_REQUEST, **ERRORS})
class RecordHistoryView(RecordMixin, ListView):
    """Every version of a record, newest first."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]

    def get_serializer_class(self):
        return s.RECORD_SERIALIZERS.get(self.kwargs.get("kind"), s.NoteOut)

    def get_queryset(self):
        patient, _, record = self.record()
        services.record_view(self.request.user, patient, f"history:{self.kwargs['kind']}", record)
        return selectors.record_history(record)


# --------------------------------------------------------------------------- everyone


class MeView(ApiView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(tags=["me"], responses={200: s.MeOut, 401: ERRORS[401]})
    def get(self, request: Request) -> Response:
        """Who is calling, their role, and (for a patient) their own record's header."""
        user = request.user
        patient = access.own_patient(user) if access.has_role(user, Role.PATIENT) else None
        return Response(s.MeOut({"username": user.get_username(), "name": user.get_full_name(),
                                 "role": access.role_of(user), "patient": patient}).data)


# --------------------------------------------------------------------------- patient



@extend_schema(tags=["me"])
class MyDiaryView(ListView):
    """The patient's own diary: list the days (newest first), or add to a day."""

    permission_classes = [permissions.IsAuthenticated, IsPatient]
    serializer_class = s.DiaryDayOut

    def get_queryset(self):
        return DiaryDay.objects.filter(patient=access.own_patient(self.request.user)).order_by("-day")

    @extend_schema(responses={200: s.DiaryDayOut(many=True), **BAD_REQUEST, **ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], request=s.DiaryIn, responses=_create_responses(s.DiarySavedOut))
    def post(self, request: Request) -> Response:
        """Add doses, craving, SOWS, side effects or other substances to today's diary (or an
        earlier day's). A second entry for the same day adds to it. When the entry reports a
        seizure, dark urine or yellow eyes, or oversedation or slow breathing, the answer
        (a retry's too) carries ``urgent_help``: the emergency number, the crisis line and
        how to reach the clinic, to show the patient at once."""
        patient = access.own_patient(request.user)
        help_now = _urgent_help(request.data, patient)
        out = functools.partial(s.DiarySavedOut, context={"urgent_help": help_now})
        if help_now is not None:
            # a diary refused (a question, an error) is no less urgent: the answer carries it
            try:
                return self._save(request, patient, out)
            except Exception as exc:  # noqa: BLE001 - answered by the API's handler, plus help
                response = api_exception_handler(exc, {"request": request, "view": self})
                if response is None or not isinstance(response.data, dict):
                    raise
                response.data["urgent_help"] = help_now
                return response
        return self._save(request, patient, out)

    def _save(self, request: Request, patient, out) -> Response:

        def call(token: str):
            data = _parse(s.DiaryIn, request.data)
            entry = services.DiaryInput(
                day=data.get("day") or timezone.localdate(),
                doses=[dict(d) for d in data.get("doses", [])],
                craving=data.get("craving"), sows=data.get("sows") or None,
                side_effects=data.get("side_effects", []),
                side_effect_other=data.get("side_effect_other", ""),
                substances=data.get("substances", []),
                substance_detail=data.get("substance_detail", ""))
            return services.record_diary(request.user, patient, entry, token=token)

        return _created(request, DiaryDay, out, call, kind="diary", patient=patient)


MY_ENTRY_KINDS = ("dose", "assessment", "substance")
MY_ENTRY_KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=list(MY_ENTRY_KINDS))


def _my_entry(request: Request, kind: str, record_id: str):
    """An entry of the calling patient's own diary (404 for anyone else's, or another kind)."""
    from speciosa.clinic.models import Dose, SubstanceUse

    model = {"dose": Dose, "assessment": Assessment, "substance": SubstanceUse}.get(kind)
    if model is None:
        raise Http404("No such kind of diary entry")
    patient = access.own_patient(request.user)
    return patient, model, get_object_or_404(model, pk=_int(record_id), patient=patient,
                                             diary__isnull=False)


@extend_schema(tags=["me"])
class MyEntryCorrectionView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsPatient]

    @extend_schema(parameters=[MY_ENTRY_KIND, RECORD_ID, IDEMPOTENCY_KEY], request=s.MyCorrectionIn,
                   responses=_create_responses(ANY_RECORD))
    def post(self, request: Request, kind: str, record_id: str) -> Response:
        """Correct an entry of one's own diary, of today or of the few days before that the
        clinic allows (``DIARY_CORRECTION_DAYS``): a new version replaces it, the earlier one
        stays in the history. An older entry is a 400 saying to ask the care team; an amount
        above the plausibility limit is a 400 with ``code: needs_confirmation`` until resent
        with ``confirmed_unusual: true``."""
        patient, model, record = _my_entry(request, kind, record_id)

        def call(token: str):
            ser = s.MyCorrectionIn(data=request.data)
            ser.is_valid(raise_exception=True)
            changes = ser.changes_for(kind)
            if not changes:
                raise serializers.ValidationError(
                    {"__all__": ["Send the corrected values, or remove the entry instead."]})
            return services.correct_record(request.user, record, changes, ser.validated_data["reason"],
                                           token=token)

        return _created(request, model, s.RECORD_SERIALIZERS[kind], call, kind="correction", patient=patient)


@extend_schema(tags=["me"])
class MyEntryRetractionView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsPatient]

    @extend_schema(parameters=[MY_ENTRY_KIND, RECORD_ID], request=s.RetractionIn,
                   responses={200: ANY_RECORD, **BAD_REQUEST, **ERRORS})
    def post(self, request: Request, kind: str, record_id: str) -> Response:
        """Remove an entry of one's own diary made in error (in the same window as a
        correction); it stays in the history, marked removed. Safe to retry."""
        _patient, _model, record = _my_entry(request, kind, record_id)
        data = _parse(s.RetractionIn, request.data)
        if not record.retracted:
            if record.superseded:
                raise serializers.ValidationError(
                    {"__all__": ["This entry was already corrected; remove the current version."]})
            record = services.retract_record(request.user, record, data["reason"])
        return Response(s.RECORD_SERIALIZERS[kind](record).data)


def _urgent_help(data: Any, patient) -> dict[str, Any] | None:
    """What the web page after saving shows at once (speciosa.clinic.crisis), for the app:
    None unless the diary reports a symptom that calls for help now."""
    from speciosa.clinic import crisis

    side_effects = data.get("side_effects") if isinstance(data, dict) else None
    if not isinstance(side_effects, list):
        return None
    return _help_for(crisis.urgent_reasons([x for x in side_effects if isinstance(x, str)]), patient)


def _help_for(codes: list[str], patient) -> dict[str, Any] | None:
    """``urgent_help`` for the reason ``codes`` (:func:`speciosa.clinic.crisis.urgent_reasons`);
    None when there are none."""
    from speciosa.clinic import crisis

    if not codes:
        return None
    numbers = crisis.numbers_for(patient.site)
    return {
        "reasons": [{"code": code, "text": text, "citations": list(cites)}
                    for code, (text, cites) in zip(codes, crisis.describe(codes), strict=True)],
        "emergency": numbers.emergency, "crisis": numbers.crisis,
        "crisis_name": numbers.crisis_name, "clinic_phone": numbers.clinic_phone,
        "clinic_hours": numbers.clinic_hours, "citations": list(numbers.citations),
        "learn": "/learn/urgent-help/",
    }


class MyDiaryDayView(ApiView):
    permission_classes = [permissions.IsAuthenticated, IsPatient]

    @extend_schema(tags=["me"], parameters=[OpenApiParameter("day", OpenApiTypes.DATE, OpenApiParameter.PATH)],
                   responses={200: s.DiaryDayOut, **ERRORS})
    def get(self, request: Request, day: str) -> Response:
        """One day of the patient's own diary."""
        try:
            when = dt.date.fromisoformat(day)
        except ValueError:
            raise Http404("Not a date") from None
        diary = selectors.diary_for(access.own_patient(request.user), when)
        if diary is None:
            raise Http404("No diary for this day")
        return Response(s.DiaryDayOut(diary).data)


# --------------------------------------------------------------------------- catalogues


@extend_schema(tags=["catalogue"], responses={200: s.InstrumentOut(many=True), **BAD_REQUEST,
                                              401: ERRORS[401], 404: ERRORS[404]})
class InstrumentListView(ListView):
    """Every instrument definition (items, allowed values with anchors, bands, citations)."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.InstrumentOut

    def get_queryset(self):
        return kinstruments.all_instruments()


class InstrumentDetailView(ApiView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(tags=["catalogue"], responses={200: s.InstrumentOut, 401: ERRORS[401], 404: ERRORS[404]})
    def get(self, request: Request, instrument_id: str) -> Response:
        """One instrument definition."""
        try:
            instrument = kinstruments.get_instrument(instrument_id)
        except kinstruments.InstrumentError:
            raise Http404("No such instrument") from None
        return Response(s.InstrumentOut(instrument).data)


@extend_schema(tags=["catalogue"], responses={200: s.LabTestOut(many=True), **BAD_REQUEST,
                                              401: ERRORS[401], 404: ERRORS[404]})
class LabListView(ListView):
    """The lab catalogue: codes, LOINC, accepted units, adult reference ranges."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = s.LabTestOut

    def get_queryset(self):
        return klabs.all_labs()


class NotFoundView(ApiView):
    """Anything else under ``/api/v1/`` is a JSON 404 (never the HTML page)."""

    permission_classes = [permissions.AllowAny]
    authentication_classes: list = []
    schema = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        raise Http404
