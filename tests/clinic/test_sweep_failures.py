"""One patient's record that the rules cannot read (adversarial pass on the issue 18 sweep):
it must not cost the other patients their alerts, and the sweep must say that it failed for
that patient instead of reporting a complete run. Before, a PHQ-9 stored with its items as a
list raised out of the whole chunk (the single-process sweep stopped at it; over the queue its
chunk never finished, so the run never recorded its completion, and nothing said why), and a
side-effect checklist stored as a list raised in the SQLite loader (PostgreSQL's read nothing)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.utils import timezone

from speciosa import safety, tasks
from speciosa.clinic import alerts
from speciosa.clinic.models import Alert, Assessment, SweepRun

from .test_sweep_queue import alert_rows, patients  # noqa: F401 (fixture)


def _bad(patient, instrument: str, items) -> None:
    Assessment.objects.create(patient=patient, source="patient", instrument=instrument, instrument_version="v1",
                              at=timezone.now() - dt.timedelta(hours=1), items=items, total=27)


def _expected(ids, as_of):
    found = safety.evaluate_many(alerts.load_timelines(ids), as_of, alerts.site_safety_settings())
    return sorted((pid, f.rule, f.severity, f.message) for pid, fs in found.items() for f in fs)


@pytest.mark.django_db
def test_a_patient_whose_rules_raise_leaves_the_others_alerts_and_is_reported(patients, monkeypatch,  # noqa: F811
                                                                              caplog):
    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    as_of = timezone.now()
    bad = patients[2]
    before = alerts.sweep(as_of=as_of)
    assert before.patients == len(patients)
    theirs = sorted(Alert.objects.filter(patient=bad).values_list("pk", "status", "stopped_firing_at",
                                                                  "last_seen_at"))
    assert theirs  # the patient has alerts a failed evaluation must not touch
    Alert.objects.all().exclude(patient=bad).delete()
    _bad(bad, "phq9", ["3"] * 9)  # items as a list: the PHQ-9 rules cannot read it
    others = [p.pk for p in patients if p.pk != bad.pk]

    with caplog.at_level(logging.ERROR, logger="speciosa.clinic.alerts"):
        result = alerts.sweep(as_of=as_of)
    assert result.failed == [bad.pk] and result.patients == len(patients) - 1
    assert [r.patient_id for r in caplog.records if r.exc_info] == [bad.pk]
    got = alert_rows()
    assert [row for row in got if row[0] != bad.pk] == _expected(others, as_of) != []
    assert sorted(Alert.objects.filter(patient=bad).values_list(
        "pk", "status", "stopped_firing_at", "last_seen_at")) == theirs  # left as they were

    # over the queue: every other chunk done, the run finished and marked as not complete
    Alert.objects.all().exclude(patient=bad).delete()
    out = tasks.sweep_all.apply(kwargs={"as_of": as_of.isoformat(), "chunk": 2}).get()
    run = SweepRun.objects.get()
    assert run.finished_at is not None and not run.complete
    assert (run.failed, run.patients, out["failed"], out["patients"]) == (1, len(patients) - 1, 1, len(patients) - 1)
    assert [c.failed_patients for c in run.chunk_set.order_by("first_patient") if c.failed_patients] == [[bad.pk]]
    assert alerts.run_result(run).failed == [bad.pk]
    assert [row for row in alert_rows() if row[0] != bad.pk] == _expected(others, as_of)


@pytest.mark.django_db
def test_a_side_effect_checklist_that_is_not_an_object_ticks_nothing_on_every_database(patients):  # noqa: F811
    as_of = timezone.now()
    p = patients[1]
    clean = alerts.load_timelines([p.pk], as_of=as_of)[p.pk].side_effects
    _bad(p, "side-effects", ["seizure", "nausea"])
    _bad(p, "side-effects", "seizure")
    assert alerts.load_timelines([p.pk], as_of=as_of)[p.pk].side_effects == clean
    assert alerts.load_timelines([p.pk])[p.pk].side_effects == alerts.load_timelines([p.pk])[p.pk].side_effects
    assert alerts.sweep(as_of=as_of).patients == len(patients)  # every patient evaluated


@pytest.mark.django_db
def test_the_sweep_command_says_which_patients_failed_and_exits_non_zero(patients, capsys):  # noqa: F811
    import argparse

    from speciosa.commands.safety_sweep import cmd_sweep

    _bad(patients[0], "phq9", ["3"] * 9)
    code = cmd_sweep(argparse.Namespace(as_of=None, workers=1, json=False))
    out = capsys.readouterr()
    assert code == 1 and f"Swept {len(patients) - 1} patients" in out.out
    assert f"failed for 1 patients (ids {patients[0].pk})" in out.err


@pytest.mark.django_db
def test_a_finding_with_an_infinite_value_raises_its_alert_and_the_others(clinic):
    """A prolactin stored as an infinite canonical value (a bad record: float columns take it)
    fires the rule with Infinity in its evidence, which neither jsonb nor SQLite's JSON check
    takes as a number: PostgreSQL refused the whole chunk (every patient's alerts lost), and
    SQLite's INSERT OR IGNORE dropped that patient's alert while reporting the finding."""
    from speciosa.clinic.models import LabResult

    for p, value in ((clinic.patient_a, float("inf")), (clinic.patient_b, 80.0)):
        LabResult.objects.create(patient=p, entered_by=clinic.clinician_a, source="clinician", lab="prolactin",
                                 collected_at=timezone.now() - dt.timedelta(days=1), value=80, unit="ng/mL",
                                 canonical_value=value, canonical_unit="ng/mL")
    result = alerts.sweep()
    assert result.created == result.findings == 2
    a = Alert.objects.get(patient=clinic.patient_a, topic="prolactin-very-high", status="open")
    assert a.evidence["result"]["value_canonical"] == "Infinity"
    assert Alert.objects.filter(patient=clinic.patient_b, topic="prolactin-high", status="open").exists()
    again = alerts.sweep()  # the same evidence read back: unchanged, nothing raised or updated twice
    assert again.created == 0 and Alert.objects.filter(status="open").count() == 2
