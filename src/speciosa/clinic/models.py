"""The supervised-recovery record.

Conventions
-----------
- Every clinical record keeps who entered it (``entered_by``), by which route
  (``source``: patient, clinician, import) and when (``entered_at``), and the clinical time it
  refers to (``at`` or ``taken_at``/``collected_at``). Timestamps are time-zone aware.
- Values keep the unit they were entered in and a canonical value.
- Clinical records are never overwritten: a correction is a new row that ``replaces`` the old
  one, which is marked ``superseded``; a deletion marks the row ``retracted`` with a reason.
  Readers use ``current()``; history stays visible.
- Writes go through :mod:`speciosa.clinic.services` and the write kernel
  :mod:`speciosa.clinic.writes` (one transaction + audit entry);
  reads through :mod:`speciosa.clinic.selectors`; access is decided in
  :mod:`speciosa.clinic.access`.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy

from . import integrity


class Role(models.TextChoices):
    CLINICIAN = "clinician", "Clinician"
    PATIENT = "patient", "Patient"
    RESEARCHER = "researcher", "Researcher"
    ADMIN = "admin", "Administrator"


class Source(models.TextChoices):
    PATIENT = "patient", gettext_lazy("Patient")
    CLINICIAN = "clinician", gettext_lazy("Clinician")
    IMPORT = "import", gettext_lazy("Import")


class Sex(models.TextChoices):
    FEMALE = "female", gettext_lazy("Female")
    MALE = "male", gettext_lazy("Male")


class Site(models.Model):
    """A clinic. The help numbers a patient is shown at once after reporting an urgent symptom
    (:mod:`speciosa.clinic.crisis`): a blank number takes the value for ``country``
    (``crisis.COUNTRIES``; default United States: 911 and 988)."""

    name = models.CharField(max_length=120, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    country = models.CharField(max_length=2, default="US",
                               help_text="ISO 3166 code; sets the default help numbers")
    emergency_number = models.CharField(max_length=40, blank=True,
                                        help_text="blank: the country's (US: 911)")
    crisis_line = models.CharField(max_length=80, blank=True,
                                   help_text="blank: the country's (US: 988)")
    crisis_line_name = models.CharField(max_length=120, blank=True)
    clinic_phone = models.CharField(max_length=40, blank=True)
    clinic_hours = models.CharField(max_length=200, blank=True,
                                    help_text="when the clinic answers, e.g. Mon-Fri 8-18")

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        """A new site starts with the example consent documents (speciosa.clinic.consents)."""
        adding = self._state.adding
        super().save(*args, **kwargs)
        if adding:
            from . import consents

            consents.ensure_documents(self)


class Profile(models.Model):
    """The role of a login. Superusers are administrators whatever their profile says."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    role = models.CharField(max_length=16, choices=Role.choices)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.PROTECT)
    # The pages' language for this login (speciosa.web.middleware.UserLanguageMiddleware);
    # blank: the browser's. A patient sets theirs on their phone, staff on their account page.
    language = models.CharField(max_length=8, blank=True, default="", choices=settings.LANGUAGES,
                                help_text="The language of the pages for this login; blank: "
                                          "the browser's.")

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(role__in=Role.values),
                                              name="profile_role_known")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role})"

    def clean(self) -> None:
        """One role per login (:mod:`speciosa.clinic.integrity`)."""
        integrity.check(integrity.profile_problems(self))

    def save(self, *args, **kwargs):
        self.clean()
        super().save(*args, **kwargs)


class CareTeam(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="care_teams")
    name = models.CharField(max_length=120)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="care_teams", blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="care_team_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.site})"

    def clean(self) -> None:
        """Its patients and members are of its site (:mod:`speciosa.clinic.integrity`)."""
        integrity.check(integrity.care_team_problems(self))

    def save(self, *args, **kwargs):
        self.clean()
        super().save(*args, **kwargs)


class Patient(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="patients")
    care_team = models.ForeignKey(CareTeam, on_delete=models.PROTECT, related_name="patients")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="patient"
    )
    identifier = models.CharField("medical record number", max_length=40)
    given_name = models.CharField(max_length=80)
    family_name = models.CharField(max_length=80)
    birth_date = models.DateField()
    sex = models.CharField(max_length=8, choices=Sex.choices)
    pregnant = models.BooleanField(default=False)
    pregnant_since = models.DateField(
        null=True, blank=True,
        help_text="When the pregnancy was known (default: the day it is recorded). A prolactin "
                  "taken from this day is read as in pregnancy; one taken in the 280 days "
                  "before it may have been, and is not read against the non-pregnant range.")
    breastfeeding = models.BooleanField(default=False)
    breastfeeding_since = models.DateField(
        null=True, blank=True,
        help_text="When breastfeeding began or was recorded (default: the day it is recorded).")
    # no default of the server's date: at 03:00 UTC it is still yesterday at a site behind
    # UTC; clean() fills in today at the patient's site
    in_care_since = models.DateField(blank=True, help_text="default: today at the patient's site")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "identifier"], name="patient_unique_identifier"),
            models.CheckConstraint(condition=models.Q(sex__in=Sex.values), name="patient_sex_known"),
            models.CheckConstraint(condition=models.Q(pregnant=False) | models.Q(sex=Sex.FEMALE),
                                   name="patient_pregnancy_needs_female_sex",
                                   violation_error_message="Pregnancy is recorded only when "
                                                           "the sex is female."),
            models.CheckConstraint(condition=models.Q(in_care_since__gte=models.F("birth_date")),
                                   name="patient_in_care_after_birth",
                                   violation_error_message="Entry into care is on or after "
                                                           "the birth date."),
        ]
        ordering = ["family_name", "given_name"]

    def __str__(self) -> str:
        return f"{self.given_name} {self.family_name}"

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    OLDEST_YEARS = integrity.OLDEST_YEARS  # a birth date further back is a typing error

    def clean(self) -> None:
        """The rules every path keeps (:func:`speciosa.clinic.integrity.patient_problems`):
        plausible dates (the clinical window opens ``DAYS_BEFORE_CARE`` days before
        ``in_care_since``, so a year-1 entry into care would let year-1 records in again),
        a care team of the patient's site, pregnancy only with a female sex, a patient
        account as the login. Entry into care not given: today at the patient's site."""
        if self.in_care_since is None:
            self.in_care_since = integrity.site_today(self.site if self.site_id else None)
        integrity.check(integrity.patient_problems(self))

    def save(self, *args, **kwargs):
        from . import pregnancy

        pregnancy.default_since(self)
        self.clean()
        changed = pregnancy.status_changed(self)
        super().save(*args, **kwargs)
        if changed:
            pregnancy.restate_samples(self)

    def age_on(self, day) -> int:
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


class ConsentKind(models.TextChoices):
    CARE = "care", gettext_lazy("Supervised care and monitoring")
    RESEARCH = "research", gettext_lazy("Use of de-identified data for research")
    PART2 = "part2", gettext_lazy("Disclosure to a named recipient (42 CFR Part 2)")


class AppendOnly(models.QuerySet):
    """A queryset of append-only rows: no update, no delete."""

    what = "these records are append-only"

    def update(self, **kwargs):
        raise PermissionError(self.what)

    def delete(self):
        raise PermissionError(self.what)

    def delete_for_demo_reset(self):
        """Delete these rows: only the synthetic demo's reset (``speciosa demo``) does."""
        return models.QuerySet.delete(self)


class ConsentDocumentQuerySet(models.QuerySet):
    def latest_versions(self):
        """The newest version of each (site, kind): what a patient is offered to sign."""
        newer = ConsentDocument.objects.filter(site=models.OuterRef("site"), kind=models.OuterRef("kind"),
                                               version__gt=models.OuterRef("version"))
        return self.filter(~models.Exists(newer), version__gt=0)


class ConsentDocument(models.Model):
    """One version of a site's consent document (speciosa.clinic.consents).

    Administrators write and change a version until someone signs it; from then on it is
    kept as signed (the model refuses a change or a deletion) and a change is a new row with
    the next ``version``. Version 0 of a kind holds no text: it stands for consents recorded
    in Speciosa before it kept documents (migration 0027)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="consent_documents")
    kind = models.CharField(max_length=16, choices=ConsentKind.choices)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Plain text; a blank line starts a new paragraph.")
    is_example = models.BooleanField(
        default=False, help_text="Speciosa's example text, not yet reviewed by the site's counsel "
                                 "(the page says so to everyone who reads it).")
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="+")

    objects = ConsentDocumentQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "kind", "version"],
                                               name="consent_document_one_version")]
        ordering = ["site", "kind", "-version"]

    def __str__(self) -> str:
        return f"{self.title} (version {self.version}, {self.site})"

    @property
    def is_signed(self) -> bool:
        return self.pk is not None and ConsentSignature.objects.filter(document_id=self.pk).exists()

    def save(self, *args, **kwargs):
        if self.is_signed:
            raise PermissionError("This version has been signed and is kept as signed: "
                                  "make a new version instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.is_signed:
            raise PermissionError("This version has been signed and is kept as signed.")
        return super().delete(*args, **kwargs)


class SignatureSource(models.TextChoices):
    PATIENT = "patient", gettext_lazy("Signed by the patient in Speciosa")
    PAPER = "paper", gettext_lazy("Signed on paper, recorded by staff")
    LEGACY = "legacy", gettext_lazy("Recorded before Speciosa kept consent documents")


class ConsentSignature(models.Model):
    """A patient's signature of one version of a consent document: the typed name and date,
    when, how (``source``) and who recorded it, and for a 42 CFR Part 2 consent the recipient,
    purpose and expiry. The signed copy is kept as PDF bytes with their SHA-256 (``pdf``,
    ``pdf_sha256``). Append-only: a change of mind is a :class:`ConsentRevocation`."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consent_signatures")
    document = models.ForeignKey(ConsentDocument, on_delete=models.PROTECT, related_name="signatures")
    source = models.CharField(max_length=8, choices=SignatureSource.choices)
    typed_name = models.CharField(max_length=200)
    signed_on = models.DateField(help_text="the date the patient wrote")
    signed_at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                    related_name="+")
    recipient = models.CharField(max_length=200, blank=True)
    purpose = models.CharField(max_length=500, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    pdf = models.BinaryField(blank=True, editable=False)
    pdf_sha256 = models.CharField(max_length=64, blank=True, editable=False)

    objects = AppendOnly.as_manager()

    class Meta:
        ordering = ["-signed_at", "-id"]

    def __str__(self) -> str:
        return f"Signature {self.pk} of patient {self.patient_id}"

    @property
    def kind(self) -> str:
        return self.document.kind

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("signatures are append-only: revoke and sign again instead")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("signatures are append-only: revoke instead")


class ConsentRevocation(models.Model):
    """The revocation of one signature (append-only; the signed copy stays)."""

    signature = models.OneToOneField(ConsentSignature, on_delete=models.PROTECT, related_name="revocation")
    at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=8, choices=SignatureSource.choices)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                    related_name="+")
    reason = models.CharField(max_length=500, blank=True)

    objects = AppendOnly.as_manager()

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("revocations are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("revocations are append-only")


class ConsentQuerySet(models.QuerySet):
    def current(self):
        """Each patient's current answer per kind (per signature for 42 CFR Part 2 consents,
        which name one recipient each): the consents no later one supersedes."""
        return self.filter(superseded_by__isnull=True)

    def update(self, **kwargs):
        raise PermissionError("consents are append-only: record a new consent instead")

    def delete(self):
        raise PermissionError("consents are append-only: record a new consent instead")

    def delete_for_demo_reset(self):
        """Delete these consents: only the synthetic demo's reset (``speciosa demo``) does."""
        return models.QuerySet.delete(self)


class Consent(models.Model):
    """A patient's answer (given or refused) for one kind of consent, at a time.

    Append-only: a change of mind is a new consent that ``supersedes`` the current one; the
    history stays, and the current consent is the one nothing supersedes
    (``Consent.objects.current()``). Every answer is written by :mod:`speciosa.clinic.consents`
    with what it rests on: a given consent with the ``signature`` it comes from (a
    :class:`ConsentSignature`), a withdrawn one with its ``revocation``; a refusal (the
    patient declined research when registered) rests on nothing. A 42 CFR Part 2 consent's
    answers supersede those of the same signature only: a patient may have several in force,
    each for its own recipient."""

    Kind = ConsentKind

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    given = models.BooleanField()
    at = models.DateTimeField(default=timezone.now)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT)
    supersedes = models.OneToOneField("self", null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="superseded_by")
    signature = models.ForeignKey(ConsentSignature, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="answers")
    revocation = models.OneToOneField(ConsentRevocation, null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="answer")

    objects = ConsentQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(given=False) | models.Q(signature__isnull=False),
                name="consent_given_rests_on_a_signature",
                violation_error_message="A given consent rests on a signature."),
            models.CheckConstraint(
                condition=~models.Q(kind="part2") | models.Q(signature__isnull=False),
                name="consent_part2_rests_on_a_signature",
                violation_error_message="A Part 2 consent rests on a signature."),
        ]

    def __str__(self) -> str:
        return f"{self.patient}: {self.kind} {'given' if self.given else 'refused'}"

    def save(self, *args, **kwargs):
        """Store a new consent; it supersedes the patient's current one of its kind (of its
        signature, for a Part 2 consent)."""
        if not self._state.adding:
            raise PermissionError("consents are append-only: record a new consent instead")
        if self.supersedes_id is None and self.patient_id is not None:
            self.supersedes = previous_answer(self.patient_id, self.kind, self.signature_id)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("consents are append-only: record a new consent instead")


def previous_answer(patient_id: int, kind: str, signature_id: int | None) -> Consent | None:
    """The current answer a new one of ``kind`` supersedes (for Part 2: of that signature)."""
    qs = Consent.objects.current().filter(patient_id=patient_id, kind=kind)
    if kind == ConsentKind.PART2:
        qs = qs.filter(signature_id=signature_id)
    return qs.order_by("-id").first()


class RecordQuerySet(models.QuerySet):
    def current(self):
        return self.filter(superseded=False, retracted=False)


class ClinicalRecord(models.Model):
    """Fields shared by every clinical record (abstract)."""

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices)
    entered_at = models.DateTimeField(default=timezone.now)
    replaces = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaced_by"
    )
    superseded = models.BooleanField(default=False)
    retracted = models.BooleanField(default=False)
    change_reason = models.CharField(max_length=500, blank=True)

    objects = RecordQuerySet.as_manager()

    class Meta:
        abstract = True


class DiaryDay(models.Model):
    """One patient's diary for one calendar day (the day in the site's time zone)."""

    # no index of its own: one_diary_per_day (patient, day) leads with it (see Dose.patient)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="diary_days", db_index=False)
    day = models.DateField()
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["patient", "day"], name="one_diary_per_day")]
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"Diary {self.day} ({self.patient_id})"


class DoseUnit(models.TextChoices):
    GRAMS = "g", gettext_lazy("grams of leaf")
    CAPSULES = "capsule", gettext_lazy("capsules")
    GLASSES = "glass", gettext_lazy("glasses of tea")
    EXTRACT = "mg_extract", gettext_lazy("mg of extract")
    MITRAGYNINE = "mg_mitragynine", gettext_lazy("mg mitragynine (labelled)")
    SEVEN_OH = "mg_7oh", gettext_lazy("mg 7-OH (7-hydroxymitragynine product, from the label)")


class Dose(ClinicalRecord):
    # no index of its own: the (patient, ...) index below leads with it. With both, the planner
    # read a year of the chunk's rows through this one and filtered the window out (issue 18)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+", db_index=False)
    diary = models.ForeignKey(DiaryDay, null=True, blank=True, on_delete=models.PROTECT, related_name="doses")
    taken_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=9, decimal_places=3)
    unit = models.CharField(max_length=16, choices=DoseUnit.choices)
    product = models.CharField(max_length=120, blank=True)
    mitragynine_percent = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    grams_per_capsule = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    # canonical value: estimated mitragynine in mg (typical estimate); null when it cannot be converted
    mitragynine_mg = models.FloatField(null=True, blank=True)
    conversion_note = models.CharField(max_length=300, blank=True)
    # the person who entered it confirmed an amount above the plausibility limit, a capsule
    # dose without grams per capsule, or a dose the day already had
    confirmed_unusual = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["patient", "taken_at"])]
        ordering = ["taken_at"]


class Assessment(ClinicalRecord):
    """A completed instrument (COWS, SOWS, craving, PHQ-9, side-effect checklist, ...).

    Items are stored as answered, with the instrument id and version; total, band and flags
    come from the one scorer in :mod:`speciosa.knowledge.instruments`.
    """

    # no index of its own: the (patient, ...) index below leads with it. With both, the planner
    # read a year of the chunk's rows through this one and filtered the window out (issue 18)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+", db_index=False)
    diary = models.ForeignKey(DiaryDay, null=True, blank=True, on_delete=models.PROTECT, related_name="assessments")
    instrument = models.CharField(max_length=40)
    instrument_version = models.CharField(max_length=40)
    at = models.DateTimeField()
    items = models.JSONField(default=dict)
    total = models.IntegerField(null=True, blank=True)
    band = models.CharField(max_length=40, blank=True)
    complete = models.BooleanField(default=True)
    flags = models.JSONField(default=list)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "instrument", "at"])]
        ordering = ["at"]


class SampleState(models.TextChoices):
    """Pregnancy or breastfeeding at a prolactin sample: any of these sets the non-pregnant
    range aside (Melmed 2011), so the result is not flagged against it."""

    NONE = "", "neither recorded"
    PREGNANT = "pregnant", "taken in pregnancy"
    BREASTFEEDING = "breastfeeding", "taken while breastfeeding"
    HCG_POSITIVE = "hcg-positive", "taken after a positive hCG"
    UNCERTAIN = "uncertain", "possibly taken in pregnancy"


class SampleStateBasis(models.TextChoices):
    """What a sample's state was read from: a status recorded on the patient (kept as the
    history: unticking pregnancy later does not change it) or hCG results (read again whenever
    an hCG is recorded or corrected)."""

    NONE = "", "nothing"
    STATUS = "status", "pregnancy or breastfeeding recorded"
    HCG = "hcg", "an hCG result"


class UrinePanel(ClinicalRecord):
    """A urine drug test panel collected at one time (issue 19): the catalogue panels it
    ran (:mod:`speciosa.knowledge.drug_panels`), its method, and the specimen's validity.
    Each analyte is a :class:`LabResult` (``uds-*``) with ``panel`` set, so a positive
    screen feeds the rules as a single result does."""

    collected_at = models.DateTimeField()
    panels = models.JSONField(default=list)
    method = models.CharField(max_length=20)  # screen / confirmation
    method_detail = models.CharField(max_length=60, blank=True)  # e.g. LC-MS/MS
    creatinine_mg_dl = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    ph = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True)
    specific_gravity = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True)
    temperature_in_range = models.BooleanField(null=True, blank=True)
    observed = models.BooleanField(null=True, blank=True)
    #: Why the specimen cannot be read as it stands (empty: valid as far as measured).
    specimen_problems = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["collected_at"]


class LabResult(ClinicalRecord):
    """A laboratory result, as reported and in the lab's canonical unit.

    ``value`` and ``unit`` are as the laboratory reported them; ``canonical_value`` is the
    same result in ``canonical_unit`` (:func:`speciosa.knowledge.labs.to_canonical`).
    ``reference_low``/``reference_high`` are the range the flag was read against, **in the
    canonical unit** (the same unit as ``canonical_value``); ``reference_source`` says whose
    range it is: the reporting laboratory's, or the catalogue's adult range for the
    patient's sex (the fallback, labelled so wherever it is shown).

    ``comparator`` keeps a value reported as a bound (``<5 U/L``: ``value`` 5, comparator
    ``<``); ``iu_factor`` the prolactin assay's mIU/L per ng/mL factor the laboratory stated;
    ``reported_interpretation`` the laboratory's own interpretation as received on import
    (FHIR ``Observation.interpretation``, kept verbatim and exported again).

    ``sample_state`` (prolactin) says whether the sample was taken in pregnancy or while
    breastfeeding, or possibly so, as far as the record shows; ``sample_state_note`` says
    why, in words (:mod:`speciosa.clinic.pregnancy`).
    """

    class Comparator(models.TextChoices):
        LT = "<", gettext_lazy("below (<)")
        LE = "<=", gettext_lazy("at or below (<=)")
        GE = ">=", gettext_lazy("at or above (>=)")
        GT = ">", gettext_lazy("above (>)")

    class RangeSource(models.TextChoices):
        LABORATORY = "laboratory", "laboratory range"
        CATALOGUE = "catalogue", "catalogue range (fallback)"

    lab = models.CharField(max_length=40)
    loinc = models.CharField(max_length=20, blank=True)
    collected_at = models.DateTimeField()
    value = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    unit = models.CharField(max_length=32, blank=True)
    canonical_value = models.FloatField(null=True, blank=True)
    canonical_unit = models.CharField(max_length=32, blank=True)
    result = models.CharField(max_length=20, blank=True)  # qualitative labs (drug screens)
    method = models.CharField(max_length=20, blank=True)  # screen / confirmation
    reference_low = models.FloatField(null=True, blank=True)
    reference_high = models.FloatField(null=True, blank=True)
    reference_source = models.CharField(max_length=12, choices=RangeSource.choices, blank=True)
    comparator = models.CharField(max_length=2, choices=Comparator.choices, blank=True)
    iu_factor = models.FloatField("mIU/L per ng/mL (prolactin assay)", null=True, blank=True)
    reported_interpretation = models.JSONField(default=list, blank=True)
    flag = models.CharField(max_length=12, blank=True)
    confirmed_unusual = models.BooleanField(default=False)
    #: Prolactin only: pregnancy or breastfeeding at the sample (:mod:`speciosa.clinic.pregnancy`).
    sample_state = models.CharField(max_length=16, choices=SampleState.choices, blank=True)
    sample_state_basis = models.CharField(max_length=8, choices=SampleStateBasis.choices,
                                          blank=True)
    sample_state_note = models.CharField(max_length=200, blank=True)
    #: Urine drug tests: the panel this analyte was part of, and the cut-off a value was
    #: read against (in ``unit``).
    panel = models.ForeignKey(UrinePanel, null=True, blank=True, on_delete=models.PROTECT,
                              related_name="analytes")
    cutoff = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "lab", "collected_at"])]
        ordering = ["collected_at"]


class SubstanceUse(ClinicalRecord):
    diary = models.ForeignKey(DiaryDay, null=True, blank=True, on_delete=models.PROTECT, related_name="substances")
    at = models.DateTimeField()
    name = models.CharField(max_length=40)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["at"]


class MedicationStatus(models.TextChoices):
    """A medication's status (the FHIR R4 MedicationStatement statuses). The safety rules
    count ``active`` and ``unknown`` as taken (:data:`CURRENT_MEDICATION_STATUSES`), within
    the start and stop dates."""

    ACTIVE = "active", gettext_lazy("taking")
    ON_HOLD = "on-hold", gettext_lazy("paused")
    STOPPED = "stopped", gettext_lazy("stopped")
    COMPLETED = "completed", gettext_lazy("course completed")
    INTENDED = "intended", gettext_lazy("planned, not started")
    NOT_TAKEN = "not-taken", gettext_lazy("not taken")
    UNKNOWN = "unknown", gettext_lazy("not known whether taken")
    ENTERED_IN_ERROR = "entered-in-error", gettext_lazy("entered in error")


#: The statuses the safety rules read as "taken" (an unknown status counts: the rules
#: would rather ask than miss an interaction).
CURRENT_MEDICATION_STATUSES = (MedicationStatus.ACTIVE, MedicationStatus.UNKNOWN)


class Prescriber(models.TextChoices):
    CLINIC = "clinic", gettext_lazy("this clinic")
    OUTSIDE = "outside", gettext_lazy("another prescriber")
    NONE = "none", gettext_lazy("no prescription (over the counter, supplement)")
    UNKNOWN = "unknown", gettext_lazy("not known")


class MedicationCategory(models.TextChoices):
    PRESCRIPTION = "prescription", gettext_lazy("prescription medicine")
    OTC = "otc", gettext_lazy("over-the-counter medicine")
    SUPPLEMENT = "supplement", gettext_lazy("supplement or herbal product")
    OTHER = "other", gettext_lazy("other")


class Medication(ClinicalRecord):
    """A medication the patient takes (or took): one course of one drug at one dose.

    ``drug`` is the drug table's generic name (:mod:`speciosa.knowledge.drugs`) when the
    medication was chosen from the table ("coded"); empty for free text ("not coded"), which
    the rules read word by word and report as not classified when the table does not know
    it. ``name`` is the name as shown (the table's name, a brand, or the free text);
    ``rxnorm`` the ingredient RxCUI (from the table, or as imported).

    ``start``/``end`` are calendar days in the site's time zone (the rules read them);
    ``start_at``/``end_at`` hold the time too when it was given. A dose change stops one
    course and starts the next (``follows``); a correction replaces the row
    (``replaces``); a patient-reported medication is ``confirmed_by`` a clinician.
    """

    name = models.CharField(max_length=120)
    drug = models.CharField(max_length=80, blank=True)
    rxnorm = models.CharField("RxNorm ingredient (RxCUI)", max_length=20, blank=True)
    category = models.CharField(max_length=16, choices=MedicationCategory.choices, blank=True)
    strength = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    strength_unit = models.CharField(max_length=16, blank=True)
    form = models.CharField(max_length=24, blank=True)
    dose_amount = models.DecimalField(max_digits=12, decimal_places=4, null=True, blank=True)
    dose_unit = models.CharField(max_length=16, blank=True)
    frequency = models.CharField(max_length=80, blank=True)
    route = models.CharField(max_length=24, blank=True)
    start = models.DateField()
    start_at = models.DateTimeField(null=True, blank=True)
    end = models.DateField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=MedicationStatus.choices,
                              default=MedicationStatus.ACTIVE)
    stop_reason = models.CharField(max_length=200, blank=True)
    prescriber = models.CharField(max_length=12, choices=Prescriber.choices,
                                  default=Prescriber.UNKNOWN)
    prescriber_name = models.CharField(max_length=120, blank=True)
    indication = models.CharField("reason for taking it", max_length=200, blank=True)
    notes = models.TextField(max_length=2000, blank=True)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    follows = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="followed_by")

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["patient", "drug"])]

    @property
    def coded(self) -> bool:
        """Chosen from the drug table (``drug`` set)."""
        return bool(self.drug)

    @property
    def is_current_status(self) -> bool:
        return self.status in CURRENT_MEDICATION_STATUSES

    @property
    def needs_confirmation(self) -> bool:
        """Reported by the patient and not yet confirmed by a clinician."""
        return self.source == Source.PATIENT and self.confirmed_at is None


class MedicationReview(ClinicalRecord):
    """A medication review ("reconciled on ... by ..."): a clinician went through the list
    with the patient. ``medications`` holds the ids of the medications current at the time."""

    at = models.DateTimeField(default=timezone.now)
    note = models.CharField(max_length=1000, blank=True)
    medications = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["at"]


class TreatmentDrug(models.TextChoices):
    """The medications for opioid use disorder a treatment episode can be (issue 19)."""

    BUPRENORPHINE = "buprenorphine", gettext_lazy("buprenorphine")
    METHADONE = "methadone", gettext_lazy("methadone")
    NALTREXONE = "naltrexone", gettext_lazy("naltrexone")


class TreatmentFormulation(models.TextChoices):
    SUBLINGUAL = "sublingual", gettext_lazy("sublingual tablet")
    BUCCAL_FILM = "buccal-film", gettext_lazy("buccal or sublingual film")
    XR_INJECTION = "xr-injection", gettext_lazy("extended-release injection")
    ORAL_LIQUID = "oral-liquid", gettext_lazy("oral liquid")
    ORAL_TABLET = "oral-tablet", gettext_lazy("oral tablet")


class EpisodeStatus(models.TextChoices):
    ACTIVE = "active", gettext_lazy("on treatment")
    STOPPED = "stopped", gettext_lazy("stopped")


class TreatmentEpisode(ClinicalRecord):
    """One episode of medication for opioid use disorder: buprenorphine, methadone or
    naltrexone, in one formulation at one dose (``dose_mg``: the daily dose, or the dose of
    each injection of an extended-release one), from ``start`` to ``end``.

    A dose change stops the episode and starts the next (``follows``), as a medication's
    course; a correction replaces the row (``replaces``). Methadone names its dispensing
    clinic; an extended-release injection keeps its injection dates. The safety rules read
    an active episode as a current medication of its drug (co-use, CYP3A, QT, naltrexone
    with kratom)."""

    drug = models.CharField(max_length=16, choices=TreatmentDrug.choices)
    formulation = models.CharField(max_length=16, choices=TreatmentFormulation.choices)
    dose_mg = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    injection_dates = models.JSONField(default=list, blank=True)
    dispensing_clinic = models.CharField(max_length=120, blank=True)
    start = models.DateField()
    start_at = models.DateTimeField(null=True, blank=True)
    end = models.DateField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=EpisodeStatus.choices,
                              default=EpisodeStatus.ACTIVE)
    stop_reason = models.CharField(max_length=200, blank=True)
    notes = models.TextField(max_length=2000, blank=True)
    #: The dose was above the site's confirmation level and the clinician confirmed it.
    confirmed_dose = models.BooleanField(default=False)
    #: The shared decision (the decision aid, :mod:`speciosa.education`) this episode carries
    #: out, when it was started from one.
    decision = models.ForeignKey("education.Decision", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    follows = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="followed_by")

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["patient", "drug"])]

    @property
    def is_injection(self) -> bool:
        return self.formulation == TreatmentFormulation.XR_INJECTION

    @property
    def dose_basis(self) -> str:
        """How ``dose_mg`` is read: per injection for an extended-release injection, else
        per day."""
        return "per injection" if self.is_injection else "per day"


class TaperKind(models.TextChoices):
    """What a taper plan is for (issue 19)."""

    KRATOM = "kratom", gettext_lazy("kratom taper")
    BUPRENORPHINE = "buprenorphine", gettext_lazy("move to buprenorphine")
    METHADONE = "methadone", gettext_lazy("move to methadone")


class TaperStatus(models.TextChoices):
    ACTIVE = "active", gettext_lazy("active")
    REPLACED = "replaced", gettext_lazy("replaced by a later plan")
    STOPPED = "stopped", gettext_lazy("stopped")


class TaperPlan(ClinicalRecord):
    """A kratom taper (or the kratom schedule of a move to buprenorphine or methadone) that a
    clinician and the patient agreed: its ``steps`` as the clinician entered them, never
    proposed by Speciosa (:mod:`speciosa.clinic.taper`).

    ``steps`` is a list of ``{"start", "end", "amount", "unit", "doses_per_day",
    "mitragynine_percent", "grams_per_capsule"}`` (dates as ISO text, numbers as exact text),
    in date order, each day in at most one step. A correction replaces the row
    (``replaces``); a new plan that takes over is a new row that ``follows`` the old one, whose
    next version is ``replaced``; a stop is a new version with ``status`` stopped."""

    kind = models.CharField(max_length=16, choices=TaperKind.choices)
    reason = models.TextField(max_length=2000)
    steps = models.JSONField(default=list)
    start = models.DateField()
    end = models.DateField()
    status = models.CharField(max_length=10, choices=TaperStatus.choices,
                              default=TaperStatus.ACTIVE)
    stopped_on = models.DateField(null=True, blank=True)
    stop_reason = models.CharField(max_length=200, blank=True)
    episode = models.ForeignKey(TreatmentEpisode, null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    decision = models.ForeignKey("education.Decision", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    follows = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="followed_by")

    class Meta:
        ordering = ["start"]
        indexes = [models.Index(fields=["patient", "status"])]


class Note(ClinicalRecord):
    at = models.DateTimeField(default=timezone.now)
    text = models.TextField(max_length=5000)

    class Meta:
        ordering = ["at"]


class Submission(models.Model):
    """An idempotency record: a form token or API key seen once, and what it created.

    The record is bound to everything a replay must match (:func:`speciosa.clinic.writes.once`):
    the user, the namespace (``web``, ``api``, ``app``; the token starts with it), the
    endpoint, the kind of submission, the record type and the patient. Records from before
    the bindings existed have an empty namespace and can never be replayed (409)."""

    token = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    created_at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=40)
    object_id = models.BigIntegerField(null=True)
    namespace = models.CharField(max_length=8, blank=True)
    endpoint = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=60, blank=True)
    patient = models.ForeignKey(Patient, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    #: SHA-256 of the request body as canonical JSON (API keys; empty for web form tokens and
    #: records from before it existed): a replay with another body is refused (422).
    fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "token"], name="one_submission_per_token")]


class AppendOnlyQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        """Store many entries at the head of the hash chain (one transaction holds the head)."""
        from . import auditchain

        objs = list(objs)
        with transaction.atomic(using=self.db):
            auditchain.link(objs, AuditChainHead)
            return super().bulk_create(objs, *args, **kwargs)

    def update(self, **kwargs):
        raise PermissionError("audit entries are append-only")

    def delete(self):
        raise PermissionError("audit entries are append-only")

    def bulk_update(self, *args, **kwargs):
        raise PermissionError("audit entries are append-only")


class AuditChainHead(models.Model):
    """The head of the audit trail's hash chain (one row): the last entry's position and hash.
    Appending holds this row for the transaction (:mod:`speciosa.clinic.auditchain`)."""

    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64)
    #: HMAC-SHA256 of ``seq`` and ``hash`` under ``settings.AUDIT_HMAC_KEY`` (never stored in
    #: the database): a chain recomputed without the key does not match it.
    mac = models.CharField(max_length=64, blank=True, default="", db_default="")


class AuditEntry(models.Model):
    """Append-only audit trail. The model refuses updates and deletes; database triggers
    (migrations 0002 and 0011) refuse them too, and on PostgreSQL the application's role may
    only insert and read (docs/deployment.md). Each entry carries a hash chained to the one
    before (``seq``, ``prev_hash``, ``hash``: :mod:`speciosa.clinic.auditchain`), so a change
    made around all of that is found by ``speciosa audit verify``."""

    class Action(models.TextChoices):
        CREATE = "create"
        CORRECT = "correct"
        RETRACT = "retract"
        ACKNOWLEDGE = "acknowledge"
        RESOLVE = "resolve"
        VIEW = "view"
        EXPORT = "export"
        LOGIN = "login"
        LOGIN_FAILED = "login-failed"
        LOCKOUT = "lockout"
        SECOND_FACTOR = "second-factor"
        LOGOUT_ALL = "logout-all"
        ALERT_RAISED = "alert-raised"
        ALERT_UPDATED = "alert-updated"
        ALERT_STOPPED = "alert-stopped"
        SETTING_CHANGE = "setting-change"
        CREDENTIALS = "credentials"  # a login's tokens, second factor or lockout changed
        STOP = "stop"  # a medication (or treatment) stopped
        CONFIRM = "confirm"  # a clinician confirmed what a patient reported
        DISCLOSE = "disclose"  # records disclosed to another party under a Part 2 consent
        REVOKE = "revoke"  # a consent revoked
        IMPORT_REFUSED = "import-refused"  # a file (or resources of it) an import refused

    id = models.BigAutoField(primary_key=True)
    uid = models.UUIDField(default=uuid.uuid4, editable=False, unique=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=16, choices=Action.choices)
    model = models.CharField(max_length=40)
    object_id = models.BigIntegerField(null=True)
    patient = models.ForeignKey(Patient, null=True, on_delete=models.PROTECT, related_name="+")
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    reason = models.CharField(max_length=500, blank=True)
    seq = models.BigIntegerField(null=True, unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, blank=True, editable=False)
    hash = models.CharField(max_length=64, blank=True, editable=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionError("audit entries are append-only")
        from . import auditchain

        with transaction.atomic(using=kwargs.get("using")):
            auditchain.link([self], AuditChainHead)
            super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit entries are append-only")


class Alert(models.Model):
    """A safety finding for the patient's care team: one open alert per rule and patient.

    A new finding for the same rule updates the open alert; when the finding no longer holds,
    the alert stays active and records when it stopped firing (``stopped_firing_at``): only a
    clinician closes an alert, by resolving it with a note. Every event (raised, updated,
    stopped firing, acknowledged, resolved) is an audit entry. ``rule_version`` and
    ``settings`` are the rule's version and the values of the settings it read when the
    finding was last stored. ``cleared`` is the status older versions gave an alert whose rule
    stopped firing; nothing sets it now.
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        RESOLVED = "resolved", "Resolved"
        CLEARED = "cleared", "No longer present"

    ACTIVE = (Status.OPEN, Status.ACKNOWLEDGED)

    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="alerts")
    rule = models.CharField(max_length=60)
    topic = models.CharField(max_length=60)
    severity = models.CharField(max_length=10)
    message = models.TextField()
    next_step = models.TextField(blank=True)
    evidence = models.JSONField(default=dict)
    citations = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=500, blank=True)
    stopped_firing_at = models.DateTimeField(null=True, blank=True)
    rule_version = models.PositiveIntegerField(null=True, blank=True)
    settings = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["patient", "rule"], condition=models.Q(status__in=["open", "acknowledged"]),
                                    name="one_active_alert_per_rule"),
        ]
        indexes = [models.Index(fields=["status", "severity"])]

    SEVERITY_RANK = {"urgent": 0, "warning": 1, "info": 2}

    def __str__(self) -> str:
        return f"{self.severity}: {self.rule} ({self.patient_id})"


class RuleSetting(models.Model):
    """A site's value for one named threshold of the safety rules
    (:mod:`speciosa.safety.settings`); a setting without a row has its default from the code.

    Written only through :func:`speciosa.clinic.rule_settings.change` (an administrator, with
    a reason; audited as ``setting-change`` with the old and new values)."""

    name = models.CharField(max_length=80, unique=True)
    value = models.FloatField()
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT,
                                   related_name="+")
    changed_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=500)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} = {self.value:g}"


class SweepRun(models.Model):
    """One clinic-wide sweep fanned out over the task queue (``speciosa.tasks.sweep_all``).

    ``key`` is the task's id, so that a redelivered ``sweep_all`` finds its own run and queues
    only the chunks not done yet. The chunks (:class:`SweepChunk`) are ranges of patient ids
    fixed when the run is planned; ``finished_at`` is set once, by whichever chunk finishes
    last, with the totals of the chunks. ``settings`` are the safety settings in force when
    the run was planned: every chunk evaluates with the same ones.
    """

    key = models.CharField(max_length=64, unique=True)
    as_of = models.DateTimeField()
    #: True for a run given its ``as_of``: every chunk evaluates as of it. A periodic run
    #: (False; ``as_of`` is when it was planned) evaluates each chunk as of when it runs.
    as_of_fixed = models.BooleanField(default=True)
    settings = models.JSONField(default=dict, blank=True)
    chunk_size = models.PositiveIntegerField()
    chunks = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    patients = models.PositiveIntegerField(default=0)
    findings = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    stopped = models.PositiveIntegerField(default=0)
    #: Patients whose rules raised (not evaluated; not counted in ``patients``): a run with
    #: failures is finished but not complete (:attr:`complete`).
    failed = models.PositiveIntegerField(default=0)
    #: Chunks whose task failed for another reason (:attr:`SweepChunk.failed_at`): their
    #: patients were not evaluated; the run is finished but not complete.
    failed_chunks = models.PositiveIntegerField(default=0)

    @property
    def complete(self) -> bool:
        """Finished, with every chunk done and every patient evaluated."""
        return self.finished_at is not None and self.failed == 0 and self.failed_chunks == 0

    def __str__(self) -> str:
        return f"Sweep {self.pk} as of {self.as_of:%Y-%m-%d %H:%M}"


class SweepChunk(models.Model):
    """The patients with ids ``first_patient`` to ``last_patient`` of one :class:`SweepRun`:
    one ``speciosa.tasks.sweep_chunk`` task. Evaluated once: the task locks this row, does
    nothing when ``done_at`` is set (a redelivered or duplicated task), and sets ``done_at``
    in the transaction that reconciles the chunk's alerts. ``evaluations`` counts the times
    it was evaluated (1), ``worker`` names the worker that did.

    A task that fails for a reason other than a patient's record (a database error, a bug,
    a transient error after its retries) records ``failed_at``, the error's type and message
    and the worker (``speciosa.tasks.sweep_chunk``), so that the run still finishes, as not
    complete, and says which chunk failed and why; a later delivery that succeeds clears it."""

    run = models.ForeignKey(SweepRun, on_delete=models.CASCADE, related_name="chunk_set")
    first_patient = models.BigIntegerField()
    last_patient = models.BigIntegerField()
    done_at = models.DateTimeField(null=True, blank=True)
    evaluations = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    patients = models.PositiveIntegerField(default=0)
    findings = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    stopped = models.PositiveIntegerField(default=0)
    #: Ids of the chunk's patients whose rules raised (their alerts left as they were).
    failed_patients = models.JSONField(default=list, blank=True)
    #: When the chunk's task failed (not done; None once a later delivery did it).
    failed_at = models.DateTimeField(null=True, blank=True)
    error_type = models.CharField(max_length=200, blank=True)  # e.g. django.db.utils.ProgrammingError
    error = models.TextField(blank=True)  # the error's message, at most ERROR_CHARS characters

    ERROR_CHARS = 2000

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "first_patient", "last_patient"],
                                               name="one_chunk_per_range")]

    def __str__(self) -> str:
        return f"Sweep {self.run_id} patients {self.first_patient}-{self.last_patient}"
