"""The Django admin never adds, changes or deletes audit entries or rule settings, even for a
superuser (the audit trail is append-only; settings change on Speciosa's own audited page)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import RequestFactory

from speciosa.clinic.models import AuditEntry, Patient, RuleSetting

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [AuditEntry, RuleSetting])
def test_the_audit_trail_and_rule_settings_are_read_only_in_the_admin(clinic, model):
    request = RequestFactory().get("/admin/")
    request.user = clinic.admin
    page = admin.site._registry[model]
    assert page.has_view_permission(request)
    assert not page.has_add_permission(request)
    assert not page.has_change_permission(request)
    assert not page.has_delete_permission(request)


def test_other_admin_pages_stay_editable_for_a_superuser(clinic):
    request = RequestFactory().get("/admin/")
    request.user = clinic.admin
    page = admin.site._registry[Patient]
    assert page.has_add_permission(request) and page.has_change_permission(request)
