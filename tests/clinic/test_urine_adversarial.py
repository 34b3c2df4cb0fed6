"""Issue 19, urine drug test panels, adversarial pass."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from speciosa.clinic import urine
from speciosa.clinic.models import LabResult, UrinePanel

from .test_urine_panel import panel

pytestmark = pytest.mark.django_db


def test_a_cut_off_of_0_is_refused(clinic):
    # every value is >= 0: a cut-off of 0 stored a measured 0 ng/mL as a positive screen
    with pytest.raises(ValidationError) as exc:
        urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
            panels=["mitragynine"], method="confirmation",
            analytes={"uds-mitragynine": {"value": "0", "cutoff": "0", "unit": "ng/mL"}}))
    assert "a cut-off of 0" in " ".join(exc.value.message_dict["analytes.uds-mitragynine"])
    assert UrinePanel.objects.count() == 0 and LabResult.objects.count() == 0


def test_a_panel_is_read_against_the_treatment_of_its_day_not_todays(clinic):
    # buprenorphine positive while on buprenorphine (expected on its page); the episode
    # stopped since: the rule read today's medications and called the positive 'unexpected'
    import datetime as dt

    from django.utils import timezone

    from speciosa.clinic import treatment
    from speciosa.clinic.models import Alert

    ep = treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "16",
        "start": timezone.localdate() - dt.timedelta(days=20)})
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        collected_at=timezone.now() - dt.timedelta(days=5), panels=["buprenorphine"],
        analytes={"uds-buprenorphine": "positive", "uds-norbuprenorphine": "positive"}))
    reading, _expected = urine.read(p)
    assert not reading.flagged
    treatment.stop_episode(clinic.clinician_a, clinic.patient_a, ep, reason="moved away",
                           at=(timezone.localdate() - dt.timedelta(days=2)).isoformat())
    reading, _expected = urine.read(p)
    assert not reading.flagged
    assert not Alert.objects.filter(patient=clinic.patient_a, topic="uds-unexpected",
                                    stopped_firing_at=None).exists()


def test_a_medication_stopped_since_the_panel_was_still_expected_in_it(clinic):
    # alprazolam taken when the specimen was collected, stopped since: the page called the
    # positive 'unexpected' once the medicine was stopped (the rule reads the collection day)
    import datetime as dt

    from django.utils import timezone

    from speciosa.clinic import medications
    from speciosa.clinic.models import Alert

    med = medications.record_medication(clinic.clinician_a, clinic.patient_a, {
        "drug": "alprazolam", "start": timezone.localdate() - dt.timedelta(days=30)})
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        collected_at=timezone.now() - dt.timedelta(days=5), panels=["benzodiazepines"],
        analytes={"uds-benzodiazepines": "positive"}))
    assert not urine.read(p)[0].flagged
    medications.stop_medication(clinic.clinician_a, clinic.patient_a, med, reason="tapered off",
                                at=(timezone.localdate() - dt.timedelta(days=2)).isoformat())
    reading, expected = urine.read(p)
    assert "uds-benzodiazepines" in expected and not reading.flagged
    assert not Alert.objects.filter(patient=clinic.patient_a, topic="uds-unexpected",
                                    stopped_firing_at=None).exists()


def test_the_panel_is_read_in_the_sites_days_on_every_path(clinic):
    # collected at 22:00 in New York, the evening before a buprenorphine episode starts
    # there: it is already the episode's first day in UTC. The rule read the site's day (no
    # buprenorphine expected); the panel's page, the chart and the FHIR export read the UTC
    # day and called the negative buprenorphine 'expected but not found'
    import datetime as dt
    import zoneinfo

    from speciosa.clinic import treatment
    from speciosa.clinic.models import Alert
    from speciosa.interop.export import Exporter
    from speciosa.reports.data import urine_panels

    ny = zoneinfo.ZoneInfo("America/New_York")
    site = clinic.patient_a.site
    site.time_zone = "America/New_York"
    site.save()
    day = dt.datetime.now(ny).date() - dt.timedelta(days=3)
    at = dt.datetime.combine(day, dt.time(22, 0), tzinfo=ny)
    assert at.astimezone(dt.UTC).date() == day + dt.timedelta(days=1)
    treatment.record_episode(clinic.clinician_a, clinic.patient_a, {
        "drug": "buprenorphine", "formulation": "sublingual", "dose_mg": "8",
        "start": day + dt.timedelta(days=1)})
    p = urine.record_panel(clinic.clinician_a, clinic.patient_a, panel(
        collected_at=at, panels=["buprenorphine"],
        analytes={"uds-buprenorphine": "negative", "uds-norbuprenorphine": "negative"}))
    p = UrinePanel.objects.get(pk=p.pk)  # as a page reads it: collected_at in UTC
    reading, expected = urine.read(p)
    assert "uds-buprenorphine" not in expected and not reading.flagged
    patient = type(clinic.patient_a).objects.get(pk=clinic.patient_a.pk)
    episodes = list(treatment.current_episodes(patient))
    marker, = urine_panels(patient, [], episodes, [])
    assert marker.concerns == () and "expected" not in marker.results.replace("(", "")
    assert not Alert.objects.filter(patient=patient, topic="uds-unexpected",
                                    stopped_firing_at=None).exists()
    exported = list(Exporter(type(patient).objects.filter(pk=patient.pk)).resources())
    readings = [c["code"] for r in exported if r["resourceType"] == "Observation"
                for i in r.get("interpretation", ()) for c in i.get("coding", ())
                if c["code"] in ("unexpected", "missing-expected", "expected", "negative")]
    assert sorted(readings) == ["negative", "negative"], readings
    # the morning after, in New York, the episode has begun: the same negative is flagged
    p2 = urine.record_panel(clinic.clinician_a, patient, panel(
        collected_at=at + dt.timedelta(hours=11), panels=["buprenorphine"],
        analytes={"uds-buprenorphine": "negative", "uds-norbuprenorphine": "negative"}))
    assert "uds-buprenorphine" in urine.read(p2)[1] and urine.read(p2)[0].flagged
