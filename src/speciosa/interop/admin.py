"""The admin page of the identifier systems a site trusts for the FHIR import (audited)."""

from django.contrib import admin

from speciosa.clinic.admin import AuditedAdmin

from .models import TrustedIdentifierSystem


@admin.register(TrustedIdentifierSystem)
class TrustedIdentifierSystemAdmin(AuditedAdmin):
    list_display = ("system", "site", "note", "added_at")
    list_filter = ("site",)
    search_fields = ("system", "note")
    readonly_fields = ("added_at",)
