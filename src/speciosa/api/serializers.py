"""Serializers: parse requests and shape responses. They judge JSON types only; what a value
means is judged by :mod:`speciosa.clinic.services` (see :mod:`speciosa.api.fields`)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from speciosa.clinic import records
from speciosa.clinic.models import (
    Assessment,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    MedicationReview,
    Note,
    Patient,
    Sex,
    SubstanceUse,
    TreatmentEpisode,
)
from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs

from .fields import StrictBooleanField, StrictCharField, StrictDecimalField, StrictIntegerField

RECORD_KINDS = ("dose", "assessment", "lab", "note", "medication", "substance", "episode")


# --------------------------------------------------------------------------- errors

class ErrorSerializer(serializers.Serializer):
    """400: messages per field (the services' own); 409 and 422: the Idempotency-Key was
    used for another request (``key_reused``) or with another body
    (``key_reused_with_different_body``)."""

    errors = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    code = serializers.ChoiceField(choices=["invalid", "needs_confirmation", "key_reused",
                                            "key_reused_with_different_body"])


class DetailSerializer(serializers.Serializer):
    """401, 403, 404, 429: one message."""

    detail = serializers.CharField()


# --------------------------------------------------------------------------- records (out)

def _person(user) -> str | None:
    if user is None:
        return None
    from speciosa.clinic.access import display_name

    return display_name(user)


class RecordSerializer(serializers.ModelSerializer):
    """Fields every clinical record has."""

    kind = serializers.SerializerMethodField()
    entered_by = serializers.SerializerMethodField()

    kind_name = ""

    class Meta:
        common = ["id", "kind", "patient", "entered_by", "source", "entered_at", "replaces",
                  "superseded", "retracted", "change_reason"]

    @extend_schema_field(serializers.CharField())
    def get_kind(self, obj) -> str:
        return self.kind_name

    def get_entered_by(self, obj) -> str | None:
        return _person(obj.entered_by)


def _kind_field(name: str):
    """A ``kind`` field that is a one-value enum in the schema (so record types never overlap)."""
    return extend_schema_field(serializers.ChoiceField(choices=[name]))(
        lambda self, obj: name)


class DoseOut(RecordSerializer):
    kind_name = "dose"
    get_kind = _kind_field("dose")
    amount = serializers.DecimalField(max_digits=9, decimal_places=3, coerce_to_string=False)
    mitragynine_percent = serializers.DecimalField(max_digits=5, decimal_places=2, coerce_to_string=False,
                                                   allow_null=True)
    grams_per_capsule = serializers.DecimalField(max_digits=6, decimal_places=3, coerce_to_string=False,
                                                 allow_null=True)

    class Meta:
        model = Dose
        fields = RecordSerializer.Meta.common + [
            "diary", "taken_at", "amount", "unit", "product", "mitragynine_percent", "grams_per_capsule",
            "mitragynine_mg", "conversion_note", "confirmed_unusual"]


class AssessmentOut(RecordSerializer):
    kind_name = "assessment"
    get_kind = _kind_field("assessment")
    items = serializers.DictField(child=serializers.IntegerField())
    flags = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = Assessment
        fields = RecordSerializer.Meta.common + [
            "diary", "instrument", "instrument_version", "at", "items", "total", "band", "complete",
            "flags", "note"]


class LabOut(RecordSerializer):
    """A lab result. ``value`` and the range ``reference_low``/``reference_high`` are in
    ``unit`` (as reported; ``reference_unit`` says so); ``canonical_value`` and
    ``reference_low_canonical``/``reference_high_canonical`` in ``canonical_unit``."""

    kind_name = "lab"
    get_kind = _kind_field("lab")
    value = serializers.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=False, allow_null=True)
    reference_low = serializers.SerializerMethodField(
        help_text="lower limit of the range, in `unit` (the unit of `value`)")
    reference_high = serializers.SerializerMethodField(
        help_text="upper limit of the range, in `unit` (the unit of `value`)")
    reference_unit = serializers.SerializerMethodField(
        help_text="the unit of reference_low and reference_high: the result's `unit`")
    reference_low_canonical = serializers.FloatField(
        source="reference_low", read_only=True, allow_null=True,
        help_text="lower limit in `canonical_unit` (the unit of `canonical_value`)")
    reference_high_canonical = serializers.FloatField(
        source="reference_high", read_only=True, allow_null=True,
        help_text="upper limit in `canonical_unit` (the unit of `canonical_value`)")

    class Meta:
        model = LabResult
        fields = RecordSerializer.Meta.common + [
            "lab", "loinc", "collected_at", "value", "unit", "canonical_value", "canonical_unit",
            "comparator", "iu_factor", "result", "method", "reference_low", "reference_high",
            "reference_unit", "reference_low_canonical", "reference_high_canonical",
            "reference_source", "reported_interpretation", "flag", "confirmed_unusual",
            "sample_state", "sample_state_note"]

    def _limit(self, obj: LabResult, canonical: float | None) -> float | None:
        if not obj.unit:
            return None
        return klabs.canonical_in_unit(obj.lab, canonical, obj.unit, iu_factor=obj.iu_factor)

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_reference_low(self, obj: LabResult) -> float | None:
        return self._limit(obj, obj.reference_low)

    @extend_schema_field(OpenApiTypes.DOUBLE)
    def get_reference_high(self, obj: LabResult) -> float | None:
        return self._limit(obj, obj.reference_high)

    @extend_schema_field(OpenApiTypes.STR)
    def get_reference_unit(self, obj: LabResult) -> str:
        return obj.unit if obj.reference_low is not None or obj.reference_high is not None else ""


class NoteOut(RecordSerializer):
    kind_name = "note"
    get_kind = _kind_field("note")

    class Meta:
        model = Note
        fields = RecordSerializer.Meta.common + ["at", "text"]


class MedicationOut(RecordSerializer):
    """A medication (docs/medications.md): ``drug`` is the drug table's generic name (coded;
    empty: free text, not coded)."""

    kind_name = "medication"
    get_kind = _kind_field("medication")
    strength = serializers.DecimalField(max_digits=12, decimal_places=4, coerce_to_string=False,
                                        allow_null=True)
    dose_amount = serializers.DecimalField(max_digits=12, decimal_places=4,
                                           coerce_to_string=False, allow_null=True)
    coded = serializers.BooleanField(read_only=True)
    confirmed_by = serializers.SerializerMethodField()

    class Meta:
        model = Medication
        fields = RecordSerializer.Meta.common + [
            "drug", "name", "coded", "rxnorm", "category", "strength", "strength_unit", "form",
            "dose_amount", "dose_unit", "frequency", "route", "start", "start_at", "end",
            "end_at", "status", "stop_reason", "prescriber", "prescriber_name", "indication",
            "notes", "confirmed_by", "confirmed_at", "follows"]

    def get_confirmed_by(self, obj) -> str | None:
        return _person(obj.confirmed_by)


class SubstanceOut(RecordSerializer):
    kind_name = "substance"
    get_kind = _kind_field("substance")

    class Meta:
        model = SubstanceUse
        fields = RecordSerializer.Meta.common + ["diary", "at", "name", "detail"]


RECORD_SERIALIZERS: dict[str, type[RecordSerializer]] = {
    "dose": DoseOut, "assessment": AssessmentOut, "lab": LabOut, "note": NoteOut,
    "medication": MedicationOut, "substance": SubstanceOut,
}


# --------------------------------------------------------------------------- patients

class PatientSummary(serializers.ModelSerializer):
    """A patient with the summary a clinician scans for (as on the web's patient list)."""

    site = serializers.CharField(source="site.name")
    care_team = serializers.CharField(source="care_team.name")
    age = serializers.SerializerMethodField()
    last_diary = serializers.DateField(allow_null=True)
    withdrawal_instrument = serializers.CharField(allow_null=True)
    withdrawal_total = serializers.IntegerField(allow_null=True)
    withdrawal_band = serializers.CharField(allow_null=True)
    withdrawal_at = serializers.DateTimeField(allow_null=True)
    prolactin_value = serializers.FloatField(allow_null=True)
    prolactin_unit = serializers.CharField(allow_null=True)
    prolactin_flag = serializers.CharField(allow_null=True)
    prolactin_at = serializers.DateTimeField(allow_null=True)
    abnormal = serializers.ListField(child=serializers.CharField(), source="abnormal_reasons")

    class Meta:
        model = Patient
        fields = ["id", "identifier", "given_name", "family_name", "birth_date", "age", "sex", "pregnant",
                  "breastfeeding", "in_care_since", "site", "care_team", "last_diary",
                  "withdrawal_instrument", "withdrawal_total", "withdrawal_band", "withdrawal_at",
                  "prolactin_value", "prolactin_unit", "prolactin_flag", "prolactin_at", "abnormal"]

    def get_age(self, obj: Patient) -> int:
        return obj.age_on(self.context["today"])


class PatientIn(serializers.Serializer):
    """A new patient (:func:`speciosa.clinic.onboarding.register_patient`): the site and a
    care team of that site the clinician belongs to, demographics and consents."""

    site = StrictIntegerField(help_text="Site id")
    care_team = StrictIntegerField(help_text="Care team id (of that site)")
    identifier = StrictCharField(max_length=40, help_text="Medical record number")
    given_name = StrictCharField(max_length=80)
    family_name = StrictCharField(max_length=80)
    birth_date = serializers.DateField()
    sex = serializers.ChoiceField(choices=Sex.choices)
    pregnant = StrictBooleanField(required=False, default=False)
    breastfeeding = StrictBooleanField(required=False, default=False)
    in_care_since = serializers.DateField(required=False, allow_null=True,
                                          help_text="Default: today")
    consent_care = StrictBooleanField(help_text="Consent to supervised care (required: true)")
    consent_research = StrictBooleanField(help_text="Consent to de-identified research use")


class OwnPatient(serializers.ModelSerializer):
    """What a patient sees of their own record's header."""

    site = serializers.CharField(source="site.name")

    class Meta:
        model = Patient
        fields = ["id", "given_name", "family_name", "birth_date", "sex", "in_care_since", "site"]


class MeOut(serializers.Serializer):
    username = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    patient = OwnPatient(allow_null=True)


class TimelineEventOut(serializers.Serializer):
    """One line of the patient's timeline (current versions, newest first)."""

    at = serializers.DateTimeField()
    kind = serializers.ChoiceField(choices=["dose", "assessment", "side-effects", "lab", "note", "substance",
                                            "medication", "treatment", "taper"])
    title = serializers.CharField()
    detail = serializers.CharField(allow_blank=True)
    abnormal = serializers.BooleanField()
    record_kind = serializers.CharField(allow_blank=True, help_text="dose, assessment, lab, note, "
                                        "substance, medication or episode (the kinds that can be "
                                        "corrected); empty otherwise.")
    record_id = serializers.IntegerField()
    retracted = serializers.BooleanField()
    corrected = serializers.BooleanField(help_text="True when this is a corrected version.")
    source = serializers.CharField()
    entered_by = serializers.CharField(allow_null=True)


# --------------------------------------------------------------------------- diary

class DiaryDayOut(serializers.ModelSerializer):
    """One day of the patient's diary: current entries only."""

    doses = serializers.SerializerMethodField()
    craving = serializers.SerializerMethodField()
    sows = serializers.SerializerMethodField()
    side_effects = serializers.SerializerMethodField()
    side_effect_other = serializers.SerializerMethodField()
    substances = serializers.SerializerMethodField()

    class Meta:
        model = DiaryDay
        fields = ["id", "day", "created_at", "updated_at", "doses", "craving", "sows", "side_effects",
                  "side_effect_other", "substances"]

    def _assessments(self, obj) -> dict[str, Assessment]:
        cache = getattr(obj, "_api_assessments", None)
        if cache is None:
            cache = {}
            for a in obj.assessments.current().order_by("at", "pk"):
                cache[a.instrument] = a  # the latest of each instrument that day
            obj._api_assessments = cache
        return cache

    @extend_schema_field(DoseOut(many=True))
    def get_doses(self, obj) -> list[dict[str, Any]]:
        return DoseOut(obj.doses.current().select_related("entered_by").order_by("taken_at", "pk"),
                       many=True).data

    def get_craving(self, obj) -> int | None:
        a = self._assessments(obj).get("craving-nrs")
        return a.total if a else None

    def get_sows(self, obj) -> int | None:
        a = self._assessments(obj).get("sows")
        return a.total if a else None

    def get_side_effects(self, obj) -> list[str]:
        a = self._assessments(obj).get("side-effects")
        return sorted(k for k, v in a.items.items() if v) if a else []

    def get_side_effect_other(self, obj) -> str:
        a = self._assessments(obj).get("side-effects")
        return a.note if a else ""

    @extend_schema_field(SubstanceOut(many=True))
    def get_substances(self, obj) -> list[dict[str, Any]]:
        return SubstanceOut(obj.substances.current().select_related("entered_by").order_by("at", "pk"),
                            many=True).data


class DoseIn(serializers.Serializer):
    taken_at = serializers.DateTimeField(required=False, allow_null=True,
                                         help_text="When the dose was taken, with its time zone.")
    amount = StrictDecimalField(max_digits=9, decimal_places=3, required=False, allow_null=True)
    unit = StrictCharField(required=False, allow_blank=True,
                           help_text="g, capsule, glass, mg_extract, mg_mitragynine or mg_7oh "
                                     "(mg 7-hydroxymitragynine of a 7-OH product, from the label)")
    product = StrictCharField(required=False, allow_blank=True, max_length=120)
    mitragynine_percent = StrictDecimalField(max_digits=5, decimal_places=2, required=False, allow_null=True)
    grams_per_capsule = StrictDecimalField(max_digits=6, decimal_places=3, required=False, allow_null=True)
    confirmed_unusual = StrictBooleanField(
        required=False, default=False,
        help_text="true after a 400 with code needs_confirmation: the amount above the plausibility "
                  "limit, the capsule dose without grams per capsule or the repeated dose is right")


class UrgentReasonOut(serializers.Serializer):
    code = serializers.CharField(help_text="side-effects item id, or self-harm")
    text = serializers.CharField(help_text="what the patient reported, in plain words")
    citations = serializers.ListField(child=serializers.CharField())


class UrgentHelpOut(serializers.Serializer):
    """Who to call at once (the site's numbers, else its country's: speciosa.clinic.crisis)."""

    reasons = UrgentReasonOut(many=True)
    emergency = serializers.CharField()
    crisis = serializers.CharField(help_text="a number, or a web address where a country has none")
    crisis_name = serializers.CharField()
    clinic_phone = serializers.CharField(help_text="empty: call the care team on the number "
                                                   "they gave")
    clinic_hours = serializers.CharField()
    citations = serializers.ListField(child=serializers.CharField())
    learn = serializers.CharField(help_text="the page 'When to get urgent help'")


class DiarySavedOut(DiaryDayOut):
    """The diary day just saved, with ``urgent_help`` when the entry reported something that
    may need help at once (a seizure, dark urine or yellow eyes, oversedation or slow
    breathing): show it to the patient straight away. Null otherwise."""

    urgent_help = serializers.SerializerMethodField()

    class Meta(DiaryDayOut.Meta):
        fields = [*DiaryDayOut.Meta.fields, "urgent_help"]

    @extend_schema_field(UrgentHelpOut(allow_null=True))
    def get_urgent_help(self, obj) -> dict[str, Any] | None:
        return self.context.get("urgent_help")


class DiaryIn(serializers.Serializer):
    """Add to the diary of ``day`` (today when left out). A second entry the same day adds to it."""

    day = serializers.DateField(required=False, allow_null=True)
    doses = DoseIn(many=True, required=False, max_length=12)
    craving = StrictIntegerField(required=False, allow_null=True, help_text="0 (none) to 10 (worst)")
    sows = serializers.DictField(child=StrictIntegerField(allow_null=True), required=False,
                                 help_text="SOWS item id -> answer (see /api/v1/instruments/sows/)")
    side_effects = serializers.ListField(child=StrictCharField(), required=False,
                                         help_text="side-effects checklist item ids")
    side_effect_other = StrictCharField(required=False, allow_blank=True, max_length=500)
    substances = serializers.ListField(child=StrictCharField(), required=False)
    substance_detail = StrictCharField(required=False, allow_blank=True, max_length=200)


# --------------------------------------------------------------------------- clinician writes

class AssessmentIn(serializers.Serializer):
    instrument = serializers.ChoiceField(
        choices=[i.id for i in kinstruments.clinician_recorded()],
        help_text="an instrument a clinician records (see /api/v1/instruments/: completed_by "
        "\"clinician\" or \"patient\")")
    items = serializers.DictField(
        child=StrictIntegerField(allow_null=True),
        help_text="item id -> answer; COWS also takes the measured pulse as \"pulse-bpm\".")
    at = serializers.DateTimeField(required=False, allow_null=True)
    note = StrictCharField(required=False, allow_blank=True, max_length=500)


class LabIn(serializers.Serializer):
    lab = StrictCharField(help_text="a code from /api/v1/labs/")
    collected_at = serializers.DateTimeField(required=False, allow_null=True)
    value = StrictDecimalField(max_digits=12, decimal_places=4, required=False, allow_null=True)
    unit = StrictCharField(required=False, allow_blank=True, max_length=32)
    comparator = StrictCharField(
        required=False, allow_blank=True, max_length=2,
        help_text="<, <=, >= or >: the value is a bound as reported, e.g. '<' for '<5 U/L'")
    reference_low = StrictDecimalField(max_digits=12, decimal_places=4, required=False,
                                       allow_null=True, help_text="the laboratory's range")
    reference_high = StrictDecimalField(max_digits=12, decimal_places=4, required=False,
                                        allow_null=True, help_text="the laboratory's range")
    reference_unit = StrictCharField(required=False, allow_blank=True, max_length=32,
                                     help_text="unit of the range when not the value's")
    iu_factor = StrictDecimalField(max_digits=6, decimal_places=3, required=False, allow_null=True,
                                   help_text="prolactin: the assay's mIU/L per ng/mL factor")
    result = StrictCharField(required=False, allow_blank=True, help_text="qualitative tests")
    method = StrictCharField(required=False, allow_blank=True, max_length=20)
    confirmed_unusual = StrictBooleanField(required=False, default=False)


class NoteIn(serializers.Serializer):
    text = StrictCharField(allow_blank=True, trim_whitespace=False)


class CorrectionIn(serializers.Serializer):
    """The reason and the changed fields; a field the record's kind does not let a correction
    change (:data:`speciosa.clinic.records.KINDS`) is refused."""

    reason = StrictCharField(allow_blank=True, max_length=500)
    taken_at = serializers.DateTimeField(required=False)
    amount = StrictDecimalField(max_digits=9, decimal_places=3, required=False)
    unit = StrictCharField(required=False, allow_blank=True, max_length=32)
    product = StrictCharField(required=False, allow_blank=True, max_length=120)
    mitragynine_percent = StrictDecimalField(max_digits=5, decimal_places=2, required=False, allow_null=True)
    grams_per_capsule = StrictDecimalField(max_digits=6, decimal_places=3, required=False, allow_null=True)
    items = serializers.DictField(child=StrictIntegerField(allow_null=True), required=False)
    at = serializers.DateTimeField(required=False)
    note = StrictCharField(required=False, allow_blank=True, max_length=500)
    collected_at = serializers.DateTimeField(required=False)
    value = StrictDecimalField(max_digits=12, decimal_places=4, required=False, allow_null=True)
    comparator = StrictCharField(required=False, allow_blank=True, max_length=2,
                                 help_text="<, <=, >= or >")
    reference_low = StrictDecimalField(max_digits=12, decimal_places=4, required=False,
                                       allow_null=True, help_text="the laboratory's range, "
                                       "again: needed when the unit of a result with it changes")
    reference_high = StrictDecimalField(max_digits=12, decimal_places=4, required=False,
                                        allow_null=True, help_text="the laboratory's range")
    reference_unit = StrictCharField(required=False, allow_blank=True, max_length=32,
                                     help_text="unit of the range when not the value's")
    result = StrictCharField(required=False, allow_blank=True)
    method = StrictCharField(required=False, allow_blank=True, max_length=20)
    confirmed_unusual = StrictBooleanField(required=False)
    text = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    detail = StrictCharField(required=False, allow_blank=True, max_length=200)
    # medications (docs/medications.md); dates as a date or a date-time with its zone
    drug = StrictCharField(required=False, allow_blank=True, max_length=80)
    name = StrictCharField(required=False, allow_blank=True, max_length=120)
    rxnorm = StrictCharField(required=False, allow_blank=True, max_length=20)
    category = StrictCharField(required=False, allow_blank=True, max_length=16)
    strength = StrictDecimalField(max_digits=12, decimal_places=4, required=False,
                                  allow_null=True)
    strength_unit = StrictCharField(required=False, allow_blank=True, max_length=16)
    form = StrictCharField(required=False, allow_blank=True, max_length=24)
    dose_amount = StrictDecimalField(max_digits=12, decimal_places=4, required=False,
                                     allow_null=True)
    dose_unit = StrictCharField(required=False, allow_blank=True, max_length=16)
    frequency = StrictCharField(required=False, allow_blank=True, max_length=80)
    route = StrictCharField(required=False, allow_blank=True, max_length=24)
    start = StrictCharField(required=False, max_length=40)
    end = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=40)
    status = StrictCharField(required=False, max_length=20)
    stop_reason = StrictCharField(required=False, allow_blank=True, max_length=200)
    prescriber = StrictCharField(required=False, max_length=12)
    prescriber_name = StrictCharField(required=False, allow_blank=True, max_length=120)
    indication = StrictCharField(required=False, allow_blank=True, max_length=200)
    notes = StrictCharField(required=False, allow_blank=True, max_length=2000)
    # treatment episodes (docs/medications.md)
    formulation = StrictCharField(required=False, allow_blank=True, max_length=16)
    dose_mg = StrictDecimalField(max_digits=8, decimal_places=2, required=False, allow_null=True)
    injection_dates = serializers.ListField(child=StrictCharField(max_length=10), required=False,
                                            max_length=400)
    dispensing_clinic = StrictCharField(required=False, allow_blank=True, max_length=120)
    confirmed_dose = StrictBooleanField(required=False)
    decision = StrictIntegerField(required=False, allow_null=True)

    def changes_for(self, kind: str) -> dict[str, Any]:
        """The changed fields, refusing any the record's kind does not let a correction change."""
        data = dict(self.validated_data)
        data.pop("reason", None)
        records.check_changes(records.KINDS[kind], data)
        return data


class RetractionIn(serializers.Serializer):
    reason = StrictCharField(allow_blank=True, max_length=500)


class MyCorrectionIn(serializers.Serializer):
    """A patient's correction of an entry of their own diary: the reason and the fields that
    change (a dose: any of its fields; other substances: the details)."""

    reason = StrictCharField(allow_blank=True, max_length=500)
    taken_at = serializers.DateTimeField(required=False)
    amount = StrictDecimalField(max_digits=9, decimal_places=3, required=False)
    unit = StrictCharField(required=False, allow_blank=True, max_length=32)
    product = StrictCharField(required=False, allow_blank=True, max_length=120)
    mitragynine_percent = StrictDecimalField(max_digits=5, decimal_places=2, required=False, allow_null=True)
    grams_per_capsule = StrictDecimalField(max_digits=6, decimal_places=3, required=False, allow_null=True)
    confirmed_unusual = StrictBooleanField(required=False)
    detail = StrictCharField(required=False, allow_blank=True, max_length=200)

    def changes_for(self, kind: str) -> dict[str, Any]:
        data = dict(self.validated_data)
        data.pop("reason", None)
        records.check_changes(records.KINDS[kind], data)
        return data


# --------------------------------------------------------------------------- catalogues

class AllowedValueOut(serializers.Serializer):
    value = serializers.IntegerField()
    anchor = serializers.CharField(allow_blank=True)


class MeasurementOut(serializers.Serializer):
    key = serializers.CharField()
    unit = serializers.CharField()
    minimum = serializers.FloatField()
    maximum = serializers.FloatField()


class ItemOut(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()
    values = AllowedValueOut(many=True)
    scored = serializers.BooleanField()
    required = serializers.BooleanField()
    measurement = MeasurementOut(allow_null=True)


class BandOut(serializers.Serializer):
    label = serializers.CharField()
    min = serializers.IntegerField()
    max = serializers.IntegerField()


class InstrumentOut(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    short_name = serializers.CharField(source="label")
    version = serializers.CharField()
    completed_by = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    items = ItemOut(many=True)
    bands = BandOut(many=True)
    band_note = serializers.CharField(allow_null=True)
    min_total = serializers.IntegerField()
    max_total = serializers.IntegerField()
    citations = serializers.ListField(child=serializers.CharField())
    licence = serializers.CharField(allow_blank=True)


class ReferenceRangeOut(serializers.Serializer):
    sex = serializers.CharField()
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)


class LabTestOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    loinc = serializers.CharField(allow_null=True)
    kind = serializers.ChoiceField(choices=["quantity", "qualitative"])
    canonical_unit = serializers.CharField(allow_null=True)
    units = serializers.SerializerMethodField()
    reference_ranges = serializers.SerializerMethodField()
    results = serializers.ListField(child=serializers.CharField())
    methods = serializers.ListField(child=serializers.CharField())
    note = serializers.CharField(allow_blank=True)

    def get_units(self, obj) -> list[str]:
        return list(obj.units)

    @extend_schema_field(ReferenceRangeOut(many=True))
    def get_reference_ranges(self, obj) -> list[dict[str, Any]]:
        return [{"sex": sex, "low": low, "high": high} for sex, (low, high) in obj.reference.items()]


class TokenIn(serializers.Serializer):
    username = StrictCharField()
    password = StrictCharField(trim_whitespace=False, style={"input_type": "password"})
    otp = StrictCharField(required=False, max_length=64, help_text=(
        "The current code of the user's authenticator app (or a recovery code). Required for "
        "clinicians, administrators and researchers, and for patients who turned on a second factor."))


class TokenOut(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`; shown once.")
    expiry = serializers.DateTimeField(help_text="When the token stops working.")


# --------------------------------------------------------------------------- medications (issue 19)

def _refuse_unknown(serializer: serializers.Serializer, attrs: dict[str, Any]) -> dict[str, Any]:
    """A field the endpoint does not know is refused (a misspelt ``dose_unti`` would
    otherwise be dropped without a word)."""
    sent = serializer.initial_data if isinstance(serializer.initial_data, dict) else {}
    unknown = sorted(set(sent) - set(serializer.fields))
    if unknown:
        raise serializers.ValidationError({"__all__": [f"Unknown field(s): {', '.join(unknown)}."]})
    return attrs


def _amount_field(help_text: str) -> StrictDecimalField:
    return StrictDecimalField(max_digits=12, decimal_places=4, required=False, allow_null=True,
                              help_text=help_text)


def _text(max_length: int, help_text: str = "", **kw) -> StrictCharField:
    return StrictCharField(required=False, allow_blank=True, max_length=max_length,
                           help_text=help_text, **kw)


class MedicationIn(serializers.Serializer):
    """A medication (docs/medications.md). ``drug``: a generic name of the drug table (coded,
    its RxCUI filled in); or leave it out and send ``name`` (free text, not coded). ``start``
    and ``end``: a date (``2026-11-02``) or a date-time with its zone."""

    drug = _text(80, "a generic name from the drug table (docs/drugs.md)")
    name = _text(120, "as shown: a brand, or free text when drug is empty")
    rxnorm = _text(20, "ingredient RxCUI; filled from the table for a coded drug")
    category = _text(16, "prescription, otc, supplement or other")
    strength = _amount_field("e.g. 8 (with strength_unit mg)")
    strength_unit = _text(16)
    form = _text(24)
    dose_amount = _amount_field("one dose, e.g. 2 (with dose_unit tablet)")
    dose_unit = _text(16)
    frequency = _text(80)
    route = _text(24)
    start = StrictCharField(required=False, max_length=40, help_text="date or date-time")
    end = _text(40, "date or date-time of the stop", allow_null=True)
    status = StrictCharField(required=False, max_length=20)
    stop_reason = _text(200)
    prescriber = StrictCharField(required=False, max_length=12,
                                 help_text="clinic, outside, none or unknown")
    prescriber_name = _text(120)
    indication = _text(200, "reason for taking it")
    notes = _text(2000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)


class MedicationChangeIn(serializers.Serializer):
    """A new dose (or frequency, form, route) from ``at`` (default now): send the reason and
    the fields that change. The drug, dates and status do not change here."""

    reason = StrictCharField(allow_blank=True, max_length=500)
    at = _text(40, "date or date-time the new dose starts (default now)")
    strength = _amount_field("")
    strength_unit = _text(16)
    form = _text(24)
    dose_amount = _amount_field("")
    dose_unit = _text(16)
    frequency = _text(80)
    route = _text(24)
    # sent so that the service can say why they cannot change here
    drug = _text(80)
    name = _text(120)
    rxnorm = _text(20)
    start = _text(40)
    end = _text(40, allow_null=True)
    status = _text(20)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.validated_data.items() if k not in ("reason", "at")}


class MedicationStopIn(serializers.Serializer):
    stop_reason = StrictCharField(allow_blank=True, max_length=200)
    at = _text(40, "date or date-time of the stop (default now)")
    status = StrictCharField(required=False, max_length=20, help_text="stopped (default) or completed")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)


class EmptyIn(serializers.Serializer):
    """No fields (an empty JSON object)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)


class MedicationReviewIn(serializers.Serializer):
    note = _text(1000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)


class MedicationReviewOut(RecordSerializer):
    """A medication review: "reconciled on ``at`` by ``entered_by``"; ``medications``: the
    ids of the entries on the list then."""

    kind_name = "medication-review"
    get_kind = _kind_field("medication-review")
    medications = serializers.ListField(child=serializers.IntegerField())

    class Meta:
        model = MedicationReview
        fields = RecordSerializer.Meta.common + ["at", "note", "medications"]


class TreatmentEpisodeIn(serializers.Serializer):
    """A treatment episode (docs/medications.md): buprenorphine, methadone or naltrexone.
    ``dose_mg`` is the daily dose, or each injection's for an extended-release injection.
    A methadone dose above the site's ``methadone_confirm_above_mg`` answers 400 with
    ``"code": "needs_confirmation"``: check it and resend with ``confirmed_dose: true``."""

    drug = StrictCharField(help_text="buprenorphine, methadone or naltrexone")
    formulation = StrictCharField(help_text="sublingual, buccal-film, xr-injection, "
                                            "oral-liquid or oral-tablet")
    dose_mg = _amount_field("mg a day, or mg per injection")
    dose_unit = _text(16, "mg (the only unit)")
    injection_dates = serializers.ListField(child=StrictCharField(max_length=10), required=False,
                                            max_length=400, help_text="YYYY-MM-DD")
    dispensing_clinic = _text(120, "methadone: the clinic that dispenses it")
    start = StrictCharField(required=False, max_length=40, help_text="date or date-time")
    end = _text(40, allow_null=True)
    status = _text(10, "active (default) or stopped")
    stop_reason = _text(200)
    notes = _text(2000)
    confirmed_dose = StrictBooleanField(required=False)
    decision = StrictIntegerField(required=False, allow_null=True,
                                  help_text="id of the shared decision this episode carries out")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)


class TreatmentEpisodeChangeIn(serializers.Serializer):
    """A new dose, formulation or dispensing clinic from ``at`` (default now)."""

    reason = StrictCharField(allow_blank=True, max_length=500)
    at = _text(40, "date or date-time the change starts (default now)")
    formulation = _text(16)
    dose_mg = _amount_field("")
    dose_unit = _text(16)
    dispensing_clinic = _text(120)
    injection_dates = serializers.ListField(child=StrictCharField(max_length=10), required=False,
                                            max_length=400)
    notes = _text(2000)
    confirmed_dose = StrictBooleanField(required=False)
    drug = _text(16, "cannot change here: stop the episode and start another")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.validated_data.items() if k not in ("reason", "at")}


class TreatmentEpisodeStopIn(serializers.Serializer):
    stop_reason = StrictCharField(allow_blank=True, max_length=200)
    at = _text(40, "date or date-time of the stop (default now)")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)


class InjectionIn(serializers.Serializer):
    day = StrictCharField(max_length=10, help_text="YYYY-MM-DD the injection was given")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return _refuse_unknown(self, attrs)


class TreatmentEpisodeOut(RecordSerializer):
    kind_name = "treatment-episode"
    get_kind = _kind_field("treatment-episode")
    dose_mg = serializers.DecimalField(max_digits=8, decimal_places=2, coerce_to_string=False,
                                       allow_null=True)
    injection_dates = serializers.ListField(child=serializers.CharField())
    dose_basis = serializers.CharField(read_only=True)

    class Meta:
        model = TreatmentEpisode
        fields = RecordSerializer.Meta.common + [
            "drug", "formulation", "dose_mg", "dose_basis", "injection_dates",
            "dispensing_clinic", "start", "start_at", "end", "end_at", "status", "stop_reason",
            "notes", "confirmed_dose", "decision", "follows"]


RECORD_SERIALIZERS["episode"] = TreatmentEpisodeOut
