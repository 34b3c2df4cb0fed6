"""What was imported from another system (so that importing it again changes nothing), and
the SMART on FHIR and Bulk Data records: OAuth clients, launch contexts, exports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class ImportedResource(models.Model):
    """One version of a FHIR resource imported from another system, keyed by its business
    identifier, with what the sender said that Speciosa's row does not hold.

    ``system``/``value`` are the resource's ``identifier`` in the source system (or, when it
    has none, ``urn:speciosa:source-id:<type>`` and its logical ``id``). ``digest`` is a
    SHA-256 of the resource's clinical content: the same identifier with the same digest is
    left alone on re-import; with a different digest it is an **update** (issue 14): a new
    ``version`` of this row pointing at a new version of the record (``replaces``), or, for
    ``entered-in-error``, at the same record withdrawn. ``model``/``object_id`` name the row.

    Kept as the sender gave them, and exported again: ``source_status`` (the resource's
    ``status``), ``recorded_at`` (``Observation.issued``,
    ``MedicationStatement.dateAsserted``), ``reported_by`` (``patient`` when the patient
    reported it: ``performer``, ``author``/``source``, ``informationSource`` or a
    ``patientspecified`` category naming the patient; ``practitioner`` or ``other``),
    ``author`` (the sender's reference of who reported it, its display and identifier only:
    a reference into the sender's server would name someone else here) and ``codings`` (the
    sender's codings of the resource's code that Speciosa's own do not repeat).
    """

    class ReportedBy(models.TextChoices):
        PATIENT = "patient", "the patient"
        PRACTITIONER = "practitioner", "a practitioner"
        OTHER = "other", "someone else (an organization, a device, a related person)"

    resource_type = models.CharField(max_length=40)
    system = models.CharField(max_length=255)
    value = models.CharField(max_length=255)
    version = models.PositiveIntegerField(default=1)
    digest = models.CharField(max_length=64)
    model = models.CharField(max_length=40)
    object_id = models.BigIntegerField()
    patient = models.ForeignKey("clinic.Patient", on_delete=models.PROTECT, related_name="+")
    file_name = models.CharField(max_length=255, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)
    source_status = models.CharField(max_length=24, blank=True)
    recorded_at = models.DateTimeField(null=True, blank=True)
    reported_by = models.CharField(max_length=12, choices=ReportedBy.choices, blank=True)
    author = models.JSONField(null=True, blank=True)
    codings = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource_type", "system", "value", "version"],
                                    name="imported_resource_one_row_per_version"),
        ]
        indexes = [models.Index(fields=["model", "object_id"], name="interop_imp_model_4b1f0e_idx")]

    def __str__(self) -> str:
        return (f"{self.resource_type} {self.system}|{self.value} v{self.version} -> "
                f"{self.model} {self.object_id}")


class SiteSystem(models.Model):
    """The MRN identifier system of a site (issue 14): ``<SPECIOSA_FHIR_BASE>/sid/mrn/<slug>``.

    The slug is made once from the site's name (``slugify``) and never changes, even when the
    site is renamed, so the system stays the one its exports used. It is **unique**: two
    names with the same slug ("St. Mary's" and "St Marys" are both ``st-marys``) give the
    later site ``<slug>-<site id>``. Assigned when a site is created (a ``post_save``
    receiver), and for the sites that existed before by migration 0005 in id order, so an
    existing site keeps the system its exports used unless an earlier site already had it.
    See :func:`mrn_system_of`.
    """

    site = models.OneToOneField("clinic.Site", on_delete=models.CASCADE,
                                related_name="fhir_system")
    slug = models.SlugField(max_length=120, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "site MRN identifier system"

    def __str__(self) -> str:
        from .codes import mrn_system_for_slug

        return mrn_system_for_slug(self.slug)


def unique_slug(name: str, site_pk: int, taken) -> str:
    """A site's slug: ``slugify(name)`` (``site`` when empty), or ``<slug>-<site_pk>`` (then
    ``-2``, ``-3``, ...) when ``taken(slug)`` says another site has it."""
    from django.utils.text import slugify

    base = slugify(name)[:100] or "site"
    if not taken(base):
        return base
    candidate, n = f"{base}-{site_pk}", 1
    while taken(candidate):
        n += 1
        candidate = f"{base}-{site_pk}-{n}"
    return candidate


def site_system(site) -> SiteSystem:
    """The :class:`SiteSystem` of ``site``, made when missing (a site created before the
    receiver was connected, or in a test that bypassed it)."""
    from django.db import IntegrityError, transaction

    found = SiteSystem.objects.filter(site_id=site.pk).first()
    while found is None:
        slug = unique_slug(site.name, site.pk, lambda s: SiteSystem.objects.filter(slug=s)
                           .exclude(site_id=site.pk).exists())
        try:
            with transaction.atomic():
                found = SiteSystem.objects.create(site_id=site.pk, slug=slug)
        except IntegrityError:  # a concurrent creation: read what won
            found = SiteSystem.objects.filter(site_id=site.pk).first()
    return found


def mrn_system_of(site) -> str:
    """The MRN identifier system of ``site`` (unique and stable, see :class:`SiteSystem`)."""
    from .codes import mrn_system_for_slug

    return mrn_system_for_slug(site_system(site).slug)


def mrn_systems() -> dict[int, str]:
    """Site id -> its MRN identifier system, for every site (made where missing)."""
    from speciosa.clinic.models import Site

    from .codes import mrn_system_for_slug

    have = dict(SiteSystem.objects.values_list("site_id", "slug"))
    for site in Site.objects.exclude(pk__in=list(have)):
        have[site.pk] = site_system(site).slug
    return {pk: mrn_system_for_slug(slug) for pk, slug in have.items()}


class TrustedIdentifierSystem(models.Model):
    """An identifier system whose values a site's medical record numbers are (issue 14).

    The FHIR import matches a patient only on an identifier's ``system`` **and** ``value``,
    and only for a system trusted at the patient's site: either the site's own MRN system
    (:func:`speciosa.interop.codes.mrn_system`, always trusted) or one listed here, e.g. the
    MRN system of the hospital whose laboratory results the site imports. Marking a system
    trusted says: a value of this system *is* the site's record number of the same person.
    An administrator adds or removes rows in the admin (audited, with the row before and
    after).
    """

    site = models.ForeignKey("clinic.Site", on_delete=models.PROTECT, related_name="+")
    system = models.CharField(
        max_length=255, help_text="the identifier system's URI, exactly as the sender writes it "
        "(e.g. urn:oid:2.16.840.1.113883.3.72.5.9.1 or https://hospital.example/fhir/sid/mrn)")
    note = models.CharField(max_length=300, blank=True,
                            help_text="whose numbers these are and who confirmed it")
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "system"], name="trusted_system_once_per_site"),
        ]
        verbose_name = "trusted identifier system"

    def __str__(self) -> str:
        return f"{self.system} (trusted at {self.site})"


# --------------------------------------------------------------------------- SMART on FHIR
# (speciosa.interop.smart, speciosa.interop.bulk; docs/fhir.md "SMART on FHIR")


class SmartClient(models.Model):
    """What Speciosa knows about an OAuth client beyond django-oauth-toolkit's ``Application``.

    ``app``: a SMART app (authorization code with PKCE; patient/ and user/ scopes, within the
    role of the person who logs in). ``backend``: SMART Backend Services (client credentials
    with a signed JWT; system/ scopes) bound to one ``site``, whose patients are the most it
    ever reaches; ``jwks`` holds its public keys, ``application.user`` is its service login
    (no password, no role: it reaches nothing by any other way in).
    """

    class Kind(models.TextChoices):
        APP = "app"
        BACKEND = "backend"

    application = models.OneToOneField("oauth2_provider.Application", on_delete=models.CASCADE,
                                       related_name="smart")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    site = models.ForeignKey("clinic.Site", null=True, blank=True, on_delete=models.PROTECT,
                             related_name="+")
    launch_uri = models.URLField(max_length=500, blank=True)
    jwks = models.JSONField(default=dict, blank=True)
    purpose = models.CharField("default purpose of use of its bulk exports", max_length=300,
                               blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} {self.application.name}"


class SmartLaunch(models.Model):
    """An EHR launch: a clinician opened an app from a patient's page. The app receives
    ``launch=<key>`` and sends it to the authorize page, where it gives the patient context
    only to that clinician, for that app, once, within minutes."""

    key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey("oauth2_provider.Application", on_delete=models.CASCADE,
                                    related_name="+")
    patient = models.ForeignKey("clinic.Patient", on_delete=models.CASCADE, related_name="+")
    expires = models.DateTimeField()
    used = models.BooleanField(default=False)


class SmartGrantContext(models.Model):
    """The patient chosen (standalone) or launched (EHR) for one authorization code."""

    grant = models.OneToOneField("oauth2_provider.Grant", on_delete=models.CASCADE,
                                 related_name="smart")
    patient = models.ForeignKey("clinic.Patient", on_delete=models.CASCADE, related_name="+")


class SmartTokenContext(models.Model):
    """The patient context of an access token (``patient`` in the token response)."""

    access_token = models.OneToOneField("oauth2_provider.AccessToken", on_delete=models.CASCADE,
                                        related_name="smart")
    patient = models.ForeignKey("clinic.Patient", on_delete=models.CASCADE, related_name="+")


class AssertionUse(models.Model):
    """A client assertion's ``jti``, kept until the assertion expires: a replay is refused."""

    client_id = models.CharField(max_length=100)
    jti = models.CharField(max_length=255)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client_id", "jti"],
                                               name="assertion_use_unique_jti")]


class BulkExport(models.Model):
    """One Bulk Data ``$export`` (speciosa.interop.bulk): who asked (user, and OAuth client when
    a token was used), for which patients, what it produced, until when it is kept."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey("oauth2_provider.Application", null=True, blank=True,
                                    on_delete=models.CASCADE, related_name="+")
    level = models.CharField(max_length=16)  # system, patient, group
    group = models.CharField(max_length=40, blank=True)
    request_url = models.CharField(max_length=2000)
    purpose = models.CharField(max_length=300)
    #: Another party the export is disclosed to (a backend client, or ``_recipient``); empty
    #: for the program's own use. Only patients with a Part 2 consent in force for it are in.
    recipient = models.CharField(max_length=200, blank=True)
    #: Patients in reach left out for want of such a consent.
    withheld = models.PositiveIntegerField(default=0)
    patient_ids = models.JSONField(default=list)
    types = models.JSONField(default=list)
    since = models.DateTimeField(null=True, blank=True)
    notes = models.BooleanField(default=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.CharField(max_length=100, blank=True)
    output = models.JSONField(default=list)  # [{"type": ..., "count": ...}]
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    transaction_time = models.DateTimeField(null=True, blank=True)
    expires = models.DateTimeField()
