"""Plan templates are managed in the admin, audited as the clinic's tables are. The patient
plans and drafts are not: a plan is set on the patient's page, a draft is the patient's own."""

from __future__ import annotations

from django.contrib import admin

from speciosa.clinic.admin import AuditedAdmin

from .models import PlanTemplate


@admin.register(PlanTemplate)
class PlanTemplateAdmin(AuditedAdmin):
    """Every add or change is audited; the lines are checked by ``PlanTemplate.clean``."""

    list_display = ("name", "site", "active", "lines")
    list_filter = ("active", "site")
    search_fields = ("name",)

    @admin.display(description="lines")
    def lines(self, obj: PlanTemplate) -> str:
        return "; ".join(f"{r.get('instrument')} every {r.get('every_days')} d"
                         for r in obj.items if isinstance(r, dict))
