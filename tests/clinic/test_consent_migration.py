"""Migration 0027: consents recorded before documents existed rest on legacy signatures (and
withdrawals on revocations), so the research export reads the same patients after it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("clinic", "0026_taper_plan")]


@pytest.mark.django_db(transaction=True)
def test_existing_consents_are_linked_and_the_research_cohort_is_unchanged():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(BEFORE)
    apps = executor.loader.project_state(BEFORE).apps
    Site, Team = apps.get_model("clinic", "Site"), apps.get_model("clinic", "CareTeam")
    Patient, Consent = apps.get_model("clinic", "Patient"), apps.get_model("clinic", "Consent")
    site = Site.objects.create(name="Old site")
    team = Team.objects.create(site=site, name="Old team")
    kept, withdrew, refused = (Patient.objects.create(
        site=site, care_team=team, identifier=f"M-{i}", given_name="Ann", family_name=f"Old{i}",
        birth_date=dt.date(1980, 1, 1), sex="female") for i in range(3))
    t0 = timezone.now() - dt.timedelta(days=20)
    Consent.objects.create(patient=kept, kind="research", given=True, at=t0)
    first = Consent.objects.create(patient=withdrew, kind="research", given=True, at=t0)
    Consent.objects.create(patient=withdrew, kind="research", given=False, at=t0 + dt.timedelta(days=3),
                           supersedes=first)
    Consent.objects.create(patient=refused, kind="research", given=False, at=t0)

    executor = MigrationExecutor(connection)
    executor.migrate(latest)

    from speciosa.clinic.models import Consent as C
    from speciosa.clinic.models import ConsentDocument, ConsentRevocation, ConsentSignature
    from speciosa.research.dataset import consented_patient_ids

    assert consented_patient_ids() == [kept.pk]
    assert sorted(ConsentDocument.objects.filter(site_id=site.pk).values_list("kind", "version")) == [
        ("care", 1), ("part2", 1), ("research", 0), ("research", 1)]
    sigs = ConsentSignature.objects.filter(patient_id__in=[kept.pk, withdrew.pk])
    assert sorted(s.source for s in sigs) == ["legacy", "legacy"]
    assert all(s.document.version == 0 and s.pdf_sha256 == "" for s in sigs)
    rev = ConsentRevocation.objects.get()
    assert rev.signature.patient_id == withdrew.pk and rev.at == t0 + dt.timedelta(days=3)
    assert C.objects.get(revocation=rev).given is False
    assert C.objects.get(patient_id=refused.pk).signature_id is None
