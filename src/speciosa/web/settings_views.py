"""The safety rules' settings: every clinician reads the values in force; an administrator
changes one, seeing the old and the new value before confirming, with a reason
(:mod:`speciosa.clinic.rule_settings` stores it and audits it)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from speciosa.clinic import access, rule_settings
from speciosa.clinic.models import Role
from speciosa.safety import DEFAULT_SETTINGS


@access.role_required(Role.CLINICIAN, Role.ADMIN)
def safety_settings(request):
    """Every setting: the value in force, the default, where the value comes from."""
    return render(request, "web/safety_settings.html", {
        "rows": rule_settings.table(), "can_change": access.has_role(request.user, Role.ADMIN),
        "changed": request.GET.get("changed", ""),
    })


@access.role_required(Role.ADMIN)
@require_http_methods(["GET", "POST"])
def safety_setting_change(request, name):
    """Step 1: the new value and the reason; step 2 (``confirm``): old and new side by side,
    then saved."""
    if name not in DEFAULT_SETTINGS:
        raise Http404("No such setting")
    row = next(r for r in rule_settings.table() if r.setting.name == name)
    context = {"row": row, "value": request.POST.get("value", ""),
               "reason": request.POST.get("reason", ""), "errors": {}, "confirming": False}
    if request.method == "POST":
        try:
            if request.POST.get("confirm") == "yes":
                rule_settings.change(request.user, name, context["value"], context["reason"])
                return redirect(reverse("safety_settings") + f"?changed={name}")
            context["new_value"] = rule_settings.check(name, context["value"], context["reason"])
            context["confirming"] = True
        except ValidationError as exc:
            context["errors"] = {k: v[0] for k, v in exc.message_dict.items()}
            return render(request, "web/safety_setting_change.html", context, status=400)
    return render(request, "web/safety_setting_change.html", context)
