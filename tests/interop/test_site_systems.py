"""Site MRN identifier systems are unique and stable (issue 14): "St. Mary's" and "St Marys"
slug to the same name, and used to share one system, so one site's record numbers could be
matched at the other. Each site now has its own registered system, kept through a rename;
the systems earlier exports used keep importing where they name one site only."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from speciosa.clinic import models as cmodels
from speciosa.interop import codes as icodes
from speciosa.interop.export import Exporter
from speciosa.interop.importer import import_fhir
from speciosa.interop.models import SiteSystem

from . import ehr
from .conftest import stored_counts

pytestmark = pytest.mark.django_db

BASE = f"{icodes.INSTALLATION_BASE}/sid/mrn/"


@pytest.fixture
def marys(db):
    from tests.conftest import make_patient

    first = cmodels.Site.objects.create(name="St. Mary's")
    second = cmodels.Site.objects.create(name="St Marys")
    pats = []
    for site in (first, second):
        team = cmodels.CareTeam.objects.create(site=site, name=f"Team {site.pk}")
        pats.append(make_patient(site, team, f"p{site.pk}", "pw-long-enough-1", sex="female",
                                 given_name="Maya", family_name="Quinn", identifier="M-1"))
    return first, second, pats


def test_two_sites_whose_names_slug_alike_get_different_systems(marys):
    first, second, (a, b) = marys
    assert icodes.mrn_system(first) == BASE + "st-marys"  # what its exports used so far
    assert icodes.mrn_system(second) == BASE + f"st-marys-{second.pk}"
    patients = {p["id"]: p["identifier"][0]["system"]
                for p in Exporter(cmodels.Patient.objects.filter(pk__in=[a.pk, b.pk])).patients()}
    assert patients == {str(a.pk): BASE + "st-marys", str(b.pk): BASE + f"st-marys-{second.pk}"}


def test_a_renamed_site_keeps_its_system(marys):
    first, _second, _pats = marys
    before = icodes.mrn_system(first)
    first.name = "Saint Mary's Hospital"
    first.save()
    assert icodes.mrn_system(first) == before
    assert SiteSystem.objects.filter(site=first).count() == 1


def test_a_result_under_one_sites_system_files_only_into_that_site(marys, tmp_path):
    first, second, (a, b) = marys
    lab = ehr.prolactin({"identifier": {"system": icodes.mrn_system(second), "value": "M-1"}})
    path = ehr.write(tmp_path / "b.json", ehr.bundle(lab, kind="collection"))
    assert import_fhir(path).ok
    assert list(cmodels.LabResult.objects.values_list("patient_id", flat=True)) == [b.pk]


def test_the_old_shared_system_needs_the_site_named(marys, tmp_path):
    first, second, (a, b) = marys
    lab = ehr.prolactin({"identifier": {"system": icodes.legacy_mrn_system("St Marys"),
                                        "value": "M-1"}})
    path = ehr.write(tmp_path / "b.json", ehr.bundle(lab, kind="collection"))
    before = stored_counts()
    [problem] = import_fhir(path).problems
    assert "was the system of several sites (St Marys, St. Mary's)" in problem.message
    assert "(--site)" in problem.message
    assert stored_counts() == before
    # the operator names the site the file comes from
    assert import_fhir(path, site=second).ok
    assert list(cmodels.LabResult.objects.values_list("patient_id", flat=True)) == [b.pk]


def test_an_earlier_export_of_a_site_with_a_name_of_its_own_still_imports(clinic, tmp_path):
    legacy = icodes.legacy_mrn_system(clinic.site_a.name)
    assert legacy == icodes.mrn_system(clinic.site_a)  # the same system as before
    lab = ehr.prolactin({"identifier": {"system": legacy, "value": clinic.patient_a.identifier}})
    assert import_fhir(ehr.write(tmp_path / "b.json", ehr.bundle(lab, kind="collection"))).ok


def test_the_migration_gives_existing_sites_their_systems_in_id_order(marys):
    first, second, _pats = marys
    lone = cmodels.Site.objects.create(name="Harbour Clinic")
    SiteSystem.objects.all().delete()  # sites as they were before migration 0005
    migration = importlib.import_module("speciosa.interop.migrations.0005_site_system")
    migration.assign(apps, None)
    assert dict(SiteSystem.objects.values_list("site_id", "slug")) == {
        first.pk: "st-marys", second.pk: f"st-marys-{second.pk}", lone.pk: "harbour-clinic"}
