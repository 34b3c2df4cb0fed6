"""Django's admin for the clinic's tables.

Every write made here is in the audit trail with the row before and after
(:class:`AuditedAdmin`, in the admin's own transaction); patients are never deleted (their
records are kept); consents are added through :func:`speciosa.clinic.services.record_consent`
(append-only: a new consent supersedes the current one) and never changed or deleted."""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Q

from . import integrity, services, writes
from .models import (
    AuditEntry,
    CareTeam,
    Consent,
    ConsentDocument,
    ConsentSignature,
    Patient,
    Profile,
    Role,
    RuleSetting,
    Site,
)


class BadLookupMixin:
    """A filter or date drill-down in the query string outside the calendar
    (``?at__year=9999&at__month=12&at__day=31``, ``?birth_date__year=0``, a 20-digit year) is
    the admin's own "bad lookup" notice instead of a 500 (issue 11 item 8)."""

    def get_changelist_instance(self, request):
        from django.contrib.admin.options import IncorrectLookupParameters

        try:
            return super().get_changelist_instance(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(str(exc)) from exc


class ReadOnlyMixin:
    """For an admin page that lists and shows rows but never adds, changes or deletes them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(BadLookupMixin, ReadOnlyMixin, admin.ModelAdmin):
    """An admin page that lists and shows rows but never adds, changes or deletes them."""


class AuditedAdmin(BadLookupMixin, admin.ModelAdmin):
    """An add, change or delete in the admin is an audit entry (``create``, ``correct``,
    ``retract``) with the row before and after it (many-to-many relations as sorted ids) and
    the changed fields as the reason."""

    def audit_patient(self, obj):
        """Whose record the row belongs to (None: not a patient's)."""
        return None

    def save_model(self, request, obj, form, change):
        obj.admin_before = writes.snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        fields = ", ".join(form.changed_data) or "nothing"
        writes.audit(request.user, writes.Action.CORRECT if change else writes.Action.CREATE, obj,
                     patient=self.audit_patient(obj), before=getattr(obj, "admin_before", None),
                     after=writes.snapshot(obj),
                     reason=f"{'changed' if change else 'added'} in the admin: {fields}")

    def delete_model(self, request, obj):
        before, patient = writes.snapshot(obj), self.audit_patient(obj)
        model, pk = type(obj).__name__, obj.pk
        super().delete_model(request, obj)
        writes.audit(request.user, writes.Action.RETRACT, None, patient=patient, before=before,
                     model=model, reason=f"deleted in the admin: {model} {pk}")

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ("name", "time_zone", "country", "emergency_number", "crisis_line",
                    "clinic_phone")


class ProfileForm(forms.ModelForm):
    """A clinician's or a patient's login names its site (issue 15 item 1)."""

    class Meta:
        model = Profile
        fields = "__all__"

    def clean(self):
        data = super().clean()
        draft = Profile(role=data.get("role"), site=data.get("site"))
        message = integrity.profile_problems(draft, require_site=True).get("site")
        if message and "site" not in self.errors:
            self.add_error("site", message)
        return data


@admin.register(Profile)
class ProfileAdmin(AuditedAdmin):
    form = ProfileForm
    list_display = ("user", "role", "site")
    list_filter = ("role", "site")
    search_fields = ("user__username",)


class CareTeamForm(forms.ModelForm):
    """Members are clinicians of the team's site (:func:`integrity.member_problems`); the
    picker offers clinicians only, of this team's site once it has one."""

    class Meta:
        model = CareTeam
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "members" in self.fields:
            clinicians = get_user_model().objects.filter(profile__role=Role.CLINICIAN)
            if self.instance.site_id:
                clinicians = clinicians.filter(Q(profile__site_id=self.instance.site_id)
                                               | Q(profile__site__isnull=True))
            self.fields["members"].queryset = clinicians.order_by("last_name", "username")

    def clean(self):
        data = super().clean()
        site, members = data.get("site"), data.get("members")
        if site is not None and members is not None:
            problems = integrity.member_problems(CareTeam(site=site), members)
            if problems:
                self.add_error("members", problems)
        return data


@admin.register(CareTeam)
class CareTeamAdmin(AuditedAdmin):
    form = CareTeamForm
    list_display = ("name", "site")
    list_filter = ("site",)
    filter_horizontal = ("members",)


class ConsentInline(admin.TabularInline):
    """The patient's consent history, read-only (add a consent on the Consent page)."""

    model = Consent
    extra = 0
    fields = readonly_fields = ("kind", "given", "at", "recorded_by", "supersedes")
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Patient)
class PatientAdmin(AuditedAdmin):
    list_display = ("identifier", "family_name", "given_name", "sex", "site", "care_team")
    list_filter = ("site", "care_team", "sex")
    search_fields = ("identifier", "family_name", "given_name")
    inlines = [ConsentInline]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """The login picker offers patient accounts only (the model refuses any other)."""
        if db_field.name == "user":
            kwargs["queryset"] = get_user_model().objects.filter(
                profile__role=Role.PATIENT, is_staff=False, is_superuser=False)
        if db_field.name == "care_team":
            kwargs["queryset"] = CareTeam.objects.select_related("site").order_by("site__name", "name")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def audit_patient(self, obj):
        return obj if obj.pk else None

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Consent)
class ConsentAdmin(BadLookupMixin, admin.ModelAdmin):
    """Add a consent (it supersedes the patient's current one of that kind); the history is
    read here, never changed or deleted."""

    list_display = ("patient", "kind", "given", "at", "recorded_by", "supersedes")
    list_filter = ("kind", "given")
    fields = ("patient", "kind", "given", "at")

    def save_model(self, request, obj, form, change):
        new = services.record_consent(request.user, obj.patient, obj.kind, obj.given, at=obj.at)
        obj.pk, obj.supersedes, obj.recorded_by = new.pk, new.supersedes, new.recorded_by
        obj._state.adding = False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """Administrators read the trail; nobody edits or deletes it."""

    list_display = ("at", "user", "action", "model", "object_id", "patient", "reason")
    list_filter = ("action", "model")
    search_fields = ("user__username", "reason")
    date_hierarchy = "at"


@admin.register(RuleSetting)
class RuleSettingAdmin(ReadOnlyAdmin):
    """Read here; changed on Speciosa's own page (/safety-settings/), which asks for a reason
    and audits the change."""

    list_display = ("name", "value", "changed_at", "changed_by", "reason")


@admin.register(ConsentDocument)
class ConsentDocumentAdmin(AuditedAdmin):
    """A site's consent documents. A version may be edited until someone signs it; then it
    is read-only and a change is a new version ("Make a new version of the selected
    documents", or Add: the next version number is given)."""

    list_display = ("title", "site", "kind", "version", "is_example", "signatures")
    list_filter = ("site", "kind", "is_example")
    fields = ("site", "kind", "version", "title", "body", "is_example", "created_at", "created_by")
    actions = ["make_new_version"]

    @admin.display(description="signed")
    def signatures(self, obj):
        return obj.signatures.count()

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_signed:
            return self.fields
        fixed = ("version", "created_at", "created_by")
        return fixed + (("site", "kind") if obj is not None else ())

    def save_model(self, request, obj, form, change):
        from . import consents

        if not change:
            obj.version = consents.next_version(obj.site, obj.kind)
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_change_permission(self, request, obj=None):
        # a signed version is shown read-only; a change posted anyway is a 403, not a 500
        return super().has_change_permission(request, obj) and (obj is None or not obj.is_signed)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (obj is None or not obj.is_signed)

    @admin.action(description="Make a new version of the selected documents")
    def make_new_version(self, request, queryset):
        from . import consents

        for doc in queryset:
            new = consents.new_version(request.user, doc)
            self.message_user(request, f"{new} made: edit it before anyone signs it.")


@admin.register(ConsentSignature)
class ConsentSignatureAdmin(BadLookupMixin, admin.ModelAdmin):
    """Signatures, read-only (patients sign on their Consents page; a paper consent is
    recorded from the patient's page)."""

    list_display = ("patient", "document", "source", "signed_on", "recipient", "expires_on",
                    "recorded_by")
    list_filter = ("source", "document__kind")
    fields = readonly_fields = ("patient", "document", "source", "typed_name", "signed_on",
                                "signed_at", "recorded_by", "recipient", "purpose", "expires_on",
                                "note", "pdf_sha256")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
