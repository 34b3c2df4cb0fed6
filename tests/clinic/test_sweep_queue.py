"""The sweep fanned out over the task queue, run eagerly (no broker: the embedded demo):
chunks of patients as tasks, each evaluated once whatever the deliveries, the run's
completion recorded once, the same alerts as the single-process sweep.
(tests/ops/test_sweep_workers.py runs it on two real worker processes.)"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from speciosa import safety, tasks
from speciosa.clinic import alerts
from speciosa.clinic.models import Alert, AuditEntry, Patient, SweepChunk, SweepRun

from .test_sweep import _history


def alert_rows():
    return sorted(Alert.objects.filter(status__in=Alert.ACTIVE).values_list(
        "patient_id", "rule", "severity", "message"))


@pytest.fixture
def patients(clinic):
    out = [clinic.patient_a, clinic.patient_b] + [
        Patient.objects.create(site=clinic.site_a, care_team=clinic.team_a, identifier=f"Q-{i}", given_name="Q",
                               family_name=f"Queue{i}", birth_date=dt.date(1980, 1, 1), sex="female")
        for i in range(5)]
    for i, p in enumerate(out):
        _history(p, days=45, seed=10 + i, stop_diary=10 if i % 3 == 0 else 0, escalate=i == 4)
    return out


def _expected(patients, as_of):
    timelines = alerts.load_timelines([p.pk for p in patients])
    found = safety.evaluate_many(timelines, as_of, alerts.site_safety_settings())
    return sorted((pid, f.rule, f.severity, f.message) for pid, fs in found.items() for f in fs)


@pytest.mark.django_db
def test_an_eager_sweep_evaluates_each_chunk_once_and_records_its_completion(patients, monkeypatch):
    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    as_of = timezone.now()
    out = tasks.sweep_all.apply(kwargs={"as_of": as_of.isoformat(), "chunk": 2}).get()
    run = SweepRun.objects.get()
    assert out["run"] == run.pk and out["chunks"] == run.chunks == 4 and out["queued"] == 4
    assert run.finished_at is not None and out["patients"] == run.patients == len(patients)
    chunks = list(run.chunk_set.order_by("first_patient"))
    assert [c.evaluations for c in chunks] == [1] * 4 and all(c.done_at for c in chunks)
    assert sum(c.patients for c in chunks) == len(patients)
    ids = sorted(p.pk for p in patients)
    assert [(c.first_patient, c.last_patient) for c in chunks] == [
        (ids[i], ids[min(i + 2, len(ids)) - 1]) for i in range(0, len(ids), 2)]
    got = alert_rows()
    assert got == _expected(patients, as_of) and run.created == len(got) > 0
    # the single-process sweep at the same time finds the same alerts: nothing new, none stopped
    again = alerts.sweep(as_of=as_of)
    assert (again.created, again.stopped, again.findings) == (0, 0, len(got))
    assert alert_rows() == got


@pytest.mark.django_db
def test_a_redelivered_or_duplicated_chunk_or_sweep_raises_nothing_twice(patients, monkeypatch):
    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    as_of = timezone.now()
    first = tasks.sweep_all.apply(kwargs={"as_of": as_of.isoformat(), "chunk": 3}, task_id="sweep-1").get()
    audit = AuditEntry.objects.count()
    seen = dict(Alert.objects.values_list("pk", "last_seen_at"))
    run = SweepRun.objects.get(key="sweep-1")
    for c in run.chunk_set.all():  # each chunk delivered again
        assert tasks.sweep_chunk.apply(args=[run.pk, c.first_patient, c.last_patient]).get() is None
    # the sweep task delivered again (same task id): its run, nothing queued
    again = tasks.sweep_all.apply(kwargs={"as_of": as_of.isoformat(), "chunk": 3}, task_id="sweep-1").get()
    assert again["run"] == first["run"] and again["queued"] == 0 and again["created"] == first["created"]
    assert SweepRun.objects.count() == 1
    assert set(SweepChunk.objects.values_list("evaluations", flat=True)) == {1}
    assert AuditEntry.objects.count() == audit  # no alert raised, updated or stopped again
    assert dict(Alert.objects.values_list("pk", "last_seen_at")) == seen  # not even touched


@pytest.mark.django_db
def test_a_chunk_lost_half_way_leaves_nothing_and_is_done_once_when_delivered_again(patients, monkeypatch):
    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    as_of = timezone.now()
    run = alerts.plan_sweep("lost", as_of=as_of, chunk=4)
    (a, b), rest = alerts.pending_chunks(run)[0], alerts.pending_chunks(run)[1:]
    real = alerts._reconcile

    def lost(*args, **kwargs):
        real(*args, **kwargs)  # the alerts are written, then the worker dies before the commit
        raise SystemExit("worker lost")

    monkeypatch.setattr(alerts, "_reconcile", lost)
    with pytest.raises(SystemExit):
        alerts.run_chunk(run.pk, a, b)
    assert not Alert.objects.exists() and not SweepChunk.objects.filter(done_at__isnull=False).exists()
    monkeypatch.setattr(alerts, "_reconcile", real)
    for first, last in [(a, b), *rest]:
        assert alerts.run_chunk(run.pk, first, last) is not None
    assert alerts.finish_run(run.pk) and not alerts.finish_run(run.pk)  # recorded once
    run.refresh_from_db()
    assert run.finished_at and run.patients == len(patients)
    assert set(SweepChunk.objects.values_list("evaluations", flat=True)) == {1}
    assert alert_rows() == _expected(patients, as_of)


@pytest.mark.django_db
def test_a_sweep_of_no_patients_finishes(db, monkeypatch):
    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    out = tasks.sweep_all.apply(kwargs={"chunk": 5}).get()
    assert out["chunks"] == 0 and out["patients"] == 0
    assert SweepRun.objects.get().finished_at is not None
    with pytest.raises(ValueError, match="at least one patient"):
        alerts.plan_sweep("zero", chunk=-1)


@pytest.mark.django_db
def test_a_new_run_removes_the_records_of_runs_finished_over_a_week_ago(db, monkeypatch):
    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    now = timezone.now()
    old = SweepRun.objects.create(key="old", as_of=now, chunk_size=5, finished_at=now - dt.timedelta(days=8))
    SweepChunk.objects.create(run=old, first_patient=1, last_patient=5, done_at=old.finished_at)
    recent = SweepRun.objects.create(key="recent", as_of=now, chunk_size=5, finished_at=now - dt.timedelta(days=6))
    unfinished = SweepRun.objects.create(key="unfinished", as_of=now - dt.timedelta(days=30), chunk_size=5)
    alerts.plan_sweep("new")
    assert set(SweepRun.objects.values_list("key", flat=True)) == {"recent", "unfinished", "new"}
    assert not SweepChunk.objects.filter(run_id=old.pk).exists()
    assert recent.pk and unfinished.pk


@pytest.mark.django_db(transaction=True)
def test_two_chunks_of_a_run_are_evaluated_at_the_same_time(patients, monkeypatch):
    """A chunk being evaluated locks its own row, not its run's: before, the run's row was
    locked with it (``select_related``), so a second worker waited for the first's whole chunk."""
    import threading

    from django.db import OperationalError, connection

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite takes the whole database for each write)")
    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    run = alerts.plan_sweep("parallel", as_of=timezone.now(), chunk=4)
    (a, b), (c, d) = alerts.pending_chunks(run)
    inside, release = threading.Event(), threading.Event()
    real = alerts._evaluate_chunk

    def slow(ids, *args, **kwargs):
        if ids[0] == a:  # the first chunk holds its transaction open
            inside.set()
            release.wait(20)
        return real(ids, *args, **kwargs)

    monkeypatch.setattr(alerts, "_evaluate_chunk", slow)
    worker = threading.Thread(target=lambda: (alerts.run_chunk(run.pk, a, b), connection.close()))
    worker.start()
    try:
        assert inside.wait(20)
        with connection.cursor() as cur:
            cur.execute("SET lock_timeout = '3s'")
        try:
            assert alerts.run_chunk(run.pk, c, d) is not None  # not waiting for the first chunk
        except OperationalError as exc:
            pytest.fail(f"the second chunk waited for the first: {exc}")
        finally:
            with connection.cursor() as cur:
                cur.execute("RESET lock_timeout")
    finally:
        release.set()
        worker.join(30)
    assert set(SweepChunk.objects.filter(run=run).values_list("evaluations", flat=True)) == {1}


def _failing(monkeypatch, first: int, errors: list[BaseException]):
    """``_evaluate_chunk`` raising the next of ``errors`` for the chunk starting at patient
    ``first`` (then evaluating it normally); the other chunks as they are."""
    real = alerts._evaluate_chunk
    calls = []

    def flaky(ids, *args, **kwargs):
        if ids[0] == first:
            calls.append(ids[0])
            if errors:
                raise errors.pop(0)
        return real(ids, *args, **kwargs)

    monkeypatch.setattr(alerts, "_evaluate_chunk", flaky)
    return calls


@pytest.mark.django_db
def test_a_chunk_failing_for_another_reason_than_a_patient_is_recorded_and_the_run_finishes(
        patients, monkeypatch, capsys):
    """Before, a chunk task that failed (a ProgrammingError, say) left its chunk not done, so
    the run never recorded its completion and nothing said why; here the eager sweep raised
    out of sweep_all at the first failed chunk and never queued the others."""
    from django.db import ProgrammingError

    from speciosa.cli import main

    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    as_of = timezone.now()
    ids = sorted(p.pk for p in patients)
    calls = _failing(monkeypatch, ids[2], [ProgrammingError('column "x" does not exist')])
    out = tasks.sweep_all.apply(kwargs={"as_of": as_of.isoformat(), "chunk": 2}, task_id="bad-chunk").get()
    run = SweepRun.objects.get(key="bad-chunk")
    assert calls == [ids[2]]  # not retried: the same call meets the same error
    assert run.finished_at is not None and not run.complete and run.failed_chunks == 1 == out["failed_chunks"]
    bad = run.chunk_set.get(first_patient=ids[2])
    assert bad.done_at is None and bad.failed_at is not None and bad.evaluations == 0
    assert bad.error_type == "django.db.utils.ProgrammingError" and bad.error == 'column "x" does not exist'
    assert bad.worker.endswith(":" + str(__import__("os").getpid()))
    others = run.chunk_set.exclude(pk=bad.pk)
    assert others.count() == 3 and not others.filter(done_at__isnull=True).exists()
    assert run.patients == len(patients) - 2  # the failed chunk's two were not evaluated
    assert not Alert.objects.filter(patient_id__in=ids[2:4]).exists()
    assert alerts.run_result(run).failed_chunks == [(ids[2], ids[3])]
    capsys.readouterr()
    assert main(["sweep", "--runs", "3"]) == 1
    shown = capsys.readouterr().out
    assert "finished, NOT complete" in shown
    assert f"chunk of patients {ids[2]}-{ids[3]} failed at" in shown
    assert 'django.db.utils.ProgrammingError: column "x" does not exist' in shown

    # the cause gone, the failed chunk delivered again: done, its failure cleared, the run complete
    assert tasks.sweep_chunk.apply(args=[run.pk, ids[2], ids[3]]).get()["patients"] == 2
    bad.refresh_from_db()
    run.refresh_from_db()
    assert bad.done_at is not None and bad.failed_at is None and (bad.error_type, bad.error) == ("", "")
    assert run.complete and run.failed_chunks == 0 and run.patients == len(patients)
    assert alert_rows() == _expected(patients, as_of)
    assert main(["sweep", "--runs", "1"]) == 0
    assert "complete;" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_transient_error_is_retried_and_the_chunk_done_without_a_failure(patients, monkeypatch):
    from django.db import OperationalError

    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    as_of = timezone.now()
    ids = sorted(p.pk for p in patients)
    calls = _failing(monkeypatch, ids[0], [OperationalError("server closed the connection"),
                                           OperationalError("server closed the connection")])
    tasks.sweep_all.apply(kwargs={"as_of": as_of.isoformat(), "chunk": 3}, task_id="flaky").get()
    run = SweepRun.objects.get(key="flaky")
    assert calls == [ids[0]] * 3  # twice failed, retried, done the third time
    assert run.complete and run.failed_chunks == 0 and run.patients == len(patients)
    chunk = run.chunk_set.get(first_patient=ids[0])
    assert chunk.done_at is not None and chunk.failed_at is None and chunk.error == "" and chunk.evaluations == 1
    assert alert_rows() == _expected(patients, as_of)


@pytest.mark.django_db
def test_a_transient_error_past_its_retries_is_a_recorded_failure(patients, monkeypatch):
    from django.db import OperationalError

    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    ids = sorted(p.pk for p in patients)
    retries = tasks.sweep_chunk.max_retries
    calls = _failing(monkeypatch, ids[-1], [OperationalError("lock timeout")] * (retries + 1))
    tasks.sweep_all.apply(kwargs={"as_of": timezone.now().isoformat(), "chunk": 3}, task_id="down").get()
    run = SweepRun.objects.get(key="down")
    assert len(calls) == retries + 1
    assert run.finished_at is not None and not run.complete and run.failed_chunks == 1
    chunk = run.chunk_set.get(first_patient=ids[-1])
    assert chunk.error_type == "django.db.utils.OperationalError" and chunk.error == "lock timeout"


@pytest.mark.django_db
def test_a_failed_chunk_keeps_no_patient_data_in_its_error(patients, monkeypatch, capsys):
    """The error a failed chunk records is shown by ``sweep --runs`` and kept for
    KEEP_RUNS_DAYS. A database error carries the row it met (PostgreSQL: 'DETAIL: Key
    (site_id, identifier)=(1, Q-0) already exists', 'Failing row contains (...)'), a bug's
    error whatever it was given: the log keeps neither (an exception there is its type and
    frames). Before, the chunk kept the message as it was, less dates and e-mail addresses."""
    from speciosa.cli import main

    monkeypatch.setattr("speciosa.ops.notify.unnotified_urgent", lambda *a: Alert.objects.none())
    ids = sorted(p.pk for p in patients)
    dup, named = Patient.objects.get(pk=ids[2]), Patient.objects.get(pk=ids[4])
    real = alerts._evaluate_chunk

    def failing(chunk, *args, **kwargs):
        if chunk[0] == dup.pk:  # a real database error: a patient added twice
            Patient.objects.create(site=dup.site, care_team=dup.care_team, identifier=dup.identifier,
                                   given_name=dup.given_name, family_name=dup.family_name,
                                   birth_date=dup.birth_date, sex=dup.sex)
        if chunk[0] == named.pk:  # a bug whose message names the patient
            raise ValueError(f"no dose unit for {named.given_name} {named.family_name} ({named.identifier})")
        return real(chunk, *args, **kwargs)

    monkeypatch.setattr(alerts, "_evaluate_chunk", failing)
    tasks.sweep_all.apply(kwargs={"as_of": timezone.now().isoformat(), "chunk": 2}, task_id="leaky").get()
    run = SweepRun.objects.get(key="leaky")
    assert run.failed_chunks == 2
    by_first = {c.first_patient: c for c in alerts.failed_chunks(run)}
    assert by_first[dup.pk].error_type == "django.db.utils.IntegrityError"
    assert by_first[named.pk].error_type == "builtins.ValueError"
    capsys.readouterr()
    assert main(["sweep", "--runs", "1"]) == 1
    shown = capsys.readouterr().out
    assert main(["sweep", "--runs", "1", "--json"]) == 1
    shown += capsys.readouterr().out
    for p in (dup, named):
        for value in (p.identifier, p.family_name):
            assert value not in by_first[p.pk].error and value not in shown
    # what is kept still says what failed: the database's own words, where a bug was raised
    assert "duplicate key value" in by_first[dup.pk].error or "UNIQUE constraint" in by_first[dup.pk].error
    assert "test_sweep_queue.py" in by_first[named.pk].error and "in failing" in by_first[named.pk].error
