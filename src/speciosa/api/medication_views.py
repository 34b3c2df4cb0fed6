"""Medication endpoints (issue 19): the same operations as the pages, through the same
services (:mod:`speciosa.clinic.medications`), with the same messages.

- ``GET/POST patients/{id}/medications/``: the list (current versions, newest first) and add.
- ``GET patients/{id}/medications/{mid}/``: one entry.
- ``POST .../{mid}/change/``, ``.../{mid}/stop/``, ``.../{mid}/confirmation/``.
- ``GET/POST patients/{id}/medication-reviews/``: the reviews ("reconciled on ... by ...").
- ``GET/POST me/medications/``: the patient's own list, and what they add (waiting for a
  clinician's confirmation).

- ``GET/POST patients/{id}/treatment-episodes/``, ``GET .../{eid}/``, ``POST .../{eid}/change/``,
  ``.../{eid}/stop/``, ``.../{eid}/injections/``: treatment episodes of buprenorphine,
  methadone and naltrexone (:mod:`speciosa.clinic.treatment`).

Corrections and withdrawals are the records endpoints' (kind ``medication``). Every
``POST`` takes an ``Idempotency-Key`` (:mod:`speciosa.api.idempotency`). A medication id
of another patient is a 404, like one that does not exist; nothing is stored.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response

from speciosa.clinic import access, medications, services, treatment
from speciosa.clinic.models import Medication, MedicationReview, TreatmentEpisode

from . import serializers as s
from .views import (
    BAD_REQUEST,
    ERRORS,
    IDEMPOTENCY_KEY,
    PATIENT_ID,
    IsClinician,
    IsPatient,
    ListView,
    RecordView,
    _create_responses,
    _created,
    _parse,
    record_schema,
)

MEDICATION_ID = OpenApiParameter("medication_id", int, OpenApiParameter.PATH,
                                 description="Medication id (any version of the entry)")


class MedicationRecord(RecordView):
    record_kwarg = "medication_id"
    record_name = "medication"
    model = Medication
    out = s.MedicationOut
    find = staticmethod(medications.medication_for)


@extend_schema(tags=["medications"], parameters=[PATIENT_ID])
class MedicationListView(ListView):
    """A patient's medication list: the current version of every entry (stopped ones too),
    newest first; or add one."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = s.MedicationOut

    def get_queryset(self):
        patient = self.patient()
        services.record_view(self.request.user, patient, "medications")
        return medications.current_medications(patient)

    @extend_schema(responses={200: s.MedicationOut(many=True), **BAD_REQUEST, **ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], request=s.MedicationIn,
                   responses=_create_responses(s.MedicationOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Add a medication: a coded ``drug`` of the table, or a free-text ``name``. Refused
        with a message per field: a stop before the start, an unknown unit, form or route, a
        second entry of the same drug overlapping a current one, a date in the future."""
        patient = self.patient()

        def call(token):
            data = _parse(s.MedicationIn, request.data)
            return medications.record_medication(request.user, patient, data, token=token)

        return _created(request, Medication, s.MedicationOut, call, kind="medication",
                        patient=patient)


@record_schema("medications", MEDICATION_ID)
class MedicationDetailView(MedicationRecord):
    """One medication entry (the version asked for; ``superseded`` says whether a later one
    replaced it)."""

    view_kind = "medication"


@record_schema("medications", MEDICATION_ID)
class MedicationChangeView(MedicationRecord):
    """Change the dose from ``at``: the course so far stops then and the new course (the
    answer) starts, with ``follows`` naming the old one."""

    body = s.MedicationChangeIn
    audit_kind = "medication-change"

    def act(self, request, patient, record, ser, token):
        return medications.change_medication(
            request.user, patient, record, ser.changes(), reason=ser.validated_data["reason"],
            at=ser.validated_data.get("at") or None, token=token)


@record_schema("medications", MEDICATION_ID)
class MedicationStopView(MedicationRecord):
    """Stop a medication at ``at`` (default now) with the reason; the answer is the stopped
    version."""

    body = s.MedicationStopIn
    audit_kind = "medication-stop"

    def act(self, request, patient, record, ser, token):
        data = ser.validated_data
        return medications.stop_medication(
            request.user, patient, record, reason=data["stop_reason"],
            at=data.get("at") or None, status=data.get("status") or "stopped", token=token)


@record_schema("medications", MEDICATION_ID)
class MedicationConfirmationView(MedicationRecord):
    """Confirm a medication the patient reported (the answer names who and when)."""

    audit_kind = "medication-confirm"

    def act(self, request, patient, record, ser, token):
        return medications.confirm_medication(request.user, patient, record, token=token)


@extend_schema(tags=["medications"], parameters=[PATIENT_ID])
class MedicationReviewListView(ListView):
    """The patient's medication reviews, newest first; or record one now."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = s.MedicationReviewOut

    def get_queryset(self):
        patient = self.patient()
        services.record_view(self.request.user, patient, "medication-reviews")
        return (MedicationReview.objects.current().filter(patient=patient)
                .select_related("entered_by").order_by("-at", "-pk"))

    @extend_schema(responses={200: s.MedicationReviewOut(many=True), **BAD_REQUEST, **ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], request=s.MedicationReviewIn,
                   responses=_create_responses(s.MedicationReviewOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Record that you went through the list with the patient now."""
        patient = self.patient()

        def call(token):
            data = _parse(s.MedicationReviewIn, request.data)
            return medications.record_medication_review(request.user, patient,
                                                        note=data.get("note", ""), token=token)

        return _created(request, MedicationReview, s.MedicationReviewOut, call,
                        kind="medication-review", patient=patient)


@extend_schema(tags=["me"])
class MyMedicationsView(ListView):
    """The patient's own medication list; or add what they take that the clinic did not
    prescribe (over the counter, a supplement, another prescriber's medicine): it waits for
    a clinician's confirmation (``source`` patient, ``confirmed_at`` empty)."""

    permission_classes = [permissions.IsAuthenticated, IsPatient]
    serializer_class = s.MedicationOut

    def get_queryset(self):
        return medications.current_medications(access.own_patient(self.request.user))

    @extend_schema(responses={200: s.MedicationOut(many=True), **BAD_REQUEST, **ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], request=s.MedicationIn,
                   responses=_create_responses(s.MedicationOut))
    def post(self, request: Request) -> Response:
        patient = access.own_patient(request.user)

        def call(token):
            data = _parse(s.MedicationIn, request.data)
            return medications.record_medication(request.user, patient, data, token=token)

        return _created(request, Medication, s.MedicationOut, call, kind="medication",
                        patient=patient)


# --------------------------------------------------------------------------- treatment episodes

EPISODE_ID = OpenApiParameter("episode_id", int, OpenApiParameter.PATH,
                              description="Treatment episode id (any version)")


class EpisodeRecord(RecordView):
    record_kwarg = "episode_id"
    record_name = "treatment episode"
    model = TreatmentEpisode
    out = s.TreatmentEpisodeOut
    find = staticmethod(treatment.episode_for)


@extend_schema(tags=["treatment"], parameters=[PATIENT_ID])
class EpisodeListView(ListView):
    """The patient's treatment episodes for opioid use disorder (current versions, newest
    first); or start one."""

    permission_classes = [permissions.IsAuthenticated, IsClinician]
    serializer_class = s.TreatmentEpisodeOut

    def get_queryset(self):
        patient = self.patient()
        services.record_view(self.request.user, patient, "treatment-episodes")
        return treatment.current_episodes(patient)

    @extend_schema(responses={200: s.TreatmentEpisodeOut(many=True), **BAD_REQUEST, **ERRORS})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(parameters=[IDEMPOTENCY_KEY], request=s.TreatmentEpisodeIn,
                   responses=_create_responses(s.TreatmentEpisodeOut))
    def post(self, request: Request, patient_id: str) -> Response:
        """Start an episode. Refused with a message per field (a stop before the start, a
        unit other than mg, an overlapping episode of the same drug...); a methadone dose
        above the site's level answers ``"code": "needs_confirmation"``."""
        patient = self.patient()

        def call(token):
            data = _parse(s.TreatmentEpisodeIn, request.data)
            return treatment.record_episode(request.user, patient, data, token=token)

        return _created(request, TreatmentEpisode, s.TreatmentEpisodeOut, call, kind="episode",
                        patient=patient)


@record_schema("treatment", EPISODE_ID)
class EpisodeDetailView(EpisodeRecord):
    """One episode (the version asked for)."""

    view_kind = "treatment-episode"


@record_schema("treatment", EPISODE_ID)
class EpisodeChangeView(EpisodeRecord):
    """Change the dose (or formulation, dispensing clinic) from ``at``: the episode so far
    stops then; the answer is the next episode (``follows`` names the old one)."""

    body = s.TreatmentEpisodeChangeIn
    audit_kind = "episode-change"

    def act(self, request, patient, record, ser, token):
        return treatment.change_episode(request.user, patient, record, ser.changes(),
                                        reason=ser.validated_data["reason"],
                                        at=ser.validated_data.get("at") or None, token=token)


@record_schema("treatment", EPISODE_ID)
class EpisodeStopView(EpisodeRecord):
    """Stop the episode at ``at`` (default now) with the reason."""

    body = s.TreatmentEpisodeStopIn
    audit_kind = "episode-stop"

    def act(self, request, patient, record, ser, token):
        data = ser.validated_data
        return treatment.stop_episode(request.user, patient, record, reason=data["stop_reason"],
                                      at=data.get("at") or None, token=token)


@record_schema("treatment", EPISODE_ID)
class EpisodeInjectionView(EpisodeRecord):
    """Record an injection of an extended-release episode (the answer holds its date)."""

    body = s.InjectionIn
    audit_kind = "episode-injection"

    def act(self, request, patient, record, ser, token):
        return treatment.add_injection(request.user, patient, record, ser.validated_data["day"],
                                       token=token)
