"""``clinic.access``: the one role predicate and the patient's own record."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from speciosa.clinic import access
from speciosa.clinic.models import Role

pytestmark = pytest.mark.django_db


def test_own_patient_is_the_record_linked_to_the_patients_login(clinic):
    assert access.own_patient(clinic.patient_a.user) == clinic.patient_a
    assert access.own_patient(clinic.patient_b.user) == clinic.patient_b


@pytest.mark.parametrize("who", ["clinician_a", "researcher", "admin"])
def test_a_staff_login_has_no_own_patient(clinic, who):
    # a clinician sees their teams' patients, but none of them is "their own" record
    with pytest.raises(Http404):
        access.own_patient(getattr(clinic, who))


def test_a_patient_login_with_no_record_has_no_own_patient(clinic):
    from tests.conftest import make_user

    with pytest.raises(Http404):
        access.own_patient(make_user("pat_orphan", "patient", clinic.password))


def test_the_role_predicate_takes_any_of_several_roles(clinic):
    from django.contrib.auth.models import AnonymousUser

    assert access.has_role(clinic.clinician_a, Role.CLINICIAN)
    assert access.has_role(clinic.clinician_a, Role.PATIENT, Role.CLINICIAN)
    assert not access.has_role(clinic.patient_a.user, Role.CLINICIAN)
    assert access.has_role(clinic.admin, Role.ADMIN)  # a superuser acts as the administrator
    assert not access.has_role(AnonymousUser(), Role.CLINICIAN, Role.PATIENT, Role.ADMIN)
    with pytest.raises(PermissionDenied, match="not part of your role"):
        access.require_role(clinic.researcher, Role.CLINICIAN)
