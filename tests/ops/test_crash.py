"""A process killed (SIGKILL) in the middle of a bulk import or a diary save leaves all or
nothing of it: never part. Real ``speciosa`` processes on a database of their own."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import pytest

from speciosa.interop.codes import mrn_system

from .conftest import HERE

N_LABS = 700
N_DOSES = 120


def _observations(path, n: int) -> None:
    lines = []
    for i in range(n):
        lines.append(json.dumps({
            "resourceType": "Observation", "id": f"c{i}",
            "identifier": [{"system": "urn:example:crash-lab", "value": f"C{i}"}],
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2842-3"}]},
            "subject": {"identifier": {"system": mrn_system("Crash Site"), "value": "CRASH-1"}},
            "effectiveDateTime": f"2026-01-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00+00:00",
            "valueQuantity": {"value": 10 + i % 17, "unit": "ng/mL", "system": "http://unitsofmeasure.org",
                              "code": "ng/mL"},
        }))
    path.write_text("\n".join(lines) + "\n")


def _start(db, *args: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HERE / "ops_child.py"), *args], env=db.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db.children.append(proc)
    return proc


def _kill_when_paused(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    if not line.startswith("PAUSED"):
        proc.kill()
        raise AssertionError(f"the child did not pause: {line!r} {proc.stderr.read()[-2000:]}")
    assert line.split()[1] == "True", "the pause was not inside a transaction"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


def _kill_after(proc: subprocess.Popen, seconds: float) -> bool:
    """SIGKILL after ``seconds``; True when the process was still running then."""
    try:
        proc.wait(seconds)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        return True


@pytest.fixture
def crash_db(new_database):
    db = new_database(migrated=True)
    db.child("setup-patient")
    return db


def test_a_bulk_import_killed_mid_transaction_stores_nothing_and_a_rerun_stores_everything(
        crash_db, tmp_path):
    path = tmp_path / "Observation.ndjson"
    _observations(path, N_LABS)
    rng = random.Random(20261125)
    # labs, imported-resource rows and audit entries go in 500-row INSERTs: 9 writes in all
    for k in sorted(rng.sample(range(1, 3 * -(-N_LABS // 500) + 1), 2)):
        proc = _start(crash_db, "--pause-after-writes", str(k), "cli", "import", "fhir", str(path))
        _kill_when_paused(proc)
        after = crash_db.counts()
        assert (after["LabResult"], after["ImportedResource"], after["AuditEntryLabResult"]) == (0, 0, 0), k
    crash_db.run("import", "fhir", str(path))
    done = crash_db.counts()
    assert (done["LabResult"], done["ImportedResource"], done["AuditEntryLabResult"]) == (N_LABS,) * 3


def test_a_bulk_import_killed_at_a_random_moment_stores_all_or_nothing(crash_db, tmp_path):
    path = tmp_path / "Observation.ndjson"
    _observations(path, N_LABS)
    started = time.perf_counter()
    crash_db.run("import", "fhir", str(path), "--site", "Crash Site")  # to time a whole run
    full = time.perf_counter() - started
    assert crash_db.counts()["LabResult"] == N_LABS
    path2 = tmp_path / "more" / "Observation.ndjson"
    path2.parent.mkdir()
    _observations(path2, 2 * N_LABS)  # the first N_LABS again (unchanged) and N_LABS new ones
    rng = random.Random(7)
    for _ in range(2):
        proc = _start(crash_db, "cli", "import", "fhir", str(path2))
        _kill_after(proc, rng.uniform(0.3 * full, 1.2 * full))
        labs = crash_db.counts()["LabResult"]
        assert labs in (N_LABS, 2 * N_LABS), labs
        if labs == 2 * N_LABS:
            break


def test_a_diary_save_killed_mid_transaction_stores_nothing_and_its_retry_stores_it_once(crash_db):
    rng = random.Random(11)
    # one submission row, the diary day, N_DOSES doses, a craving score, then their audit entries
    for k in sorted(rng.sample(range(1, 2 * N_DOSES + 4), 2)):
        proc = _start(crash_db, "--pause-after-writes", str(k), "--doses", str(N_DOSES), "diary")
        _kill_when_paused(proc)
        after = crash_db.counts()
        assert {key: after[key] for key in ("DiaryDay", "Dose", "Assessment", "Submission", "AuditEntry")} \
            == dict.fromkeys(("DiaryDay", "Dose", "Assessment", "Submission", "AuditEntry"), 0), k
    crash_db.child("--doses", str(N_DOSES), "diary")
    crash_db.child("--doses", str(N_DOSES), "diary")  # the phone retries with the same token
    done = crash_db.counts()
    assert (done["DiaryDay"], done["Dose"], done["AuditEntryDose"], done["Submission"]) == (1, N_DOSES, N_DOSES, 1)


def test_a_diary_save_killed_at_a_random_moment_stores_all_or_nothing(crash_db):
    started = time.perf_counter()
    crash_db.child("--doses", str(N_DOSES), "--token", "timing", "diary")
    full = time.perf_counter() - started
    rng = random.Random(3)
    for i in range(2):
        proc = _start(crash_db, "--doses", str(N_DOSES), "--token", f"random-{i}", "diary")
        _kill_after(proc, rng.uniform(0.3 * full, 1.1 * full))
        doses = crash_db.counts()["Dose"]
        assert doses % N_DOSES == 0, doses
