from django.contrib import admin

from .models import AuditEntry, CareTeam, Consent, Patient, Profile, RuleSetting, Site


class ReadOnlyAdmin(admin.ModelAdmin):
    """An admin page that lists and shows rows but never adds, changes or deletes them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone", "country", "emergency_number", "crisis_line",
                    "clinic_phone")


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "role", "site")
    list_filter = ("role", "site")
    search_fields = ("user__username",)


@admin.register(CareTeam)
class CareTeamAdmin(admin.ModelAdmin):
    list_display = ("name", "site")
    filter_horizontal = ("members",)


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    list_display = ("identifier", "family_name", "given_name", "sex", "site", "care_team")
    list_filter = ("site", "care_team", "sex")
    search_fields = ("identifier", "family_name", "given_name")
    inlines = [ConsentInline]


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("patient", "kind", "given", "at", "recorded_by")
    list_filter = ("kind", "given")


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
