"""Adversarial pass (issue 18): the streamed research export reads a chunk of patients at a
time, minutes apart at clinic scale (25 min at 10,000 patients). A patient who withdraws their
research consent while it streams must not land in the files a researcher takes (the CLI's
folder is the export: no download check stands between it and the researcher); an export
that fails half-way leaves nothing behind."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import pytest

from speciosa.research import dataset, deid

pytestmark = pytest.mark.django_db

KEY = b"midstream-research-key-0123456789abc"


def _revoke(patient) -> None:
    from speciosa.clinic import consents
    from speciosa.clinic.models import ConsentSignature

    sig = ConsentSignature.objects.get(patient=patient, document__kind="research")
    consents.revoke(patient.user, sig, reason="no longer")


def _options():
    return deid.Options(k=1, max_suppressed=1.0, withheld_days=0)


def _second_in_order(consented):
    """The patient whose chunk is read second (pseudonym order, one patient a chunk)."""
    d = deid.Deidentifier(KEY)
    pair = sorted((consented.patient_a, consented.patient_b),
                  key=lambda p: d.patient_pseudonym(p.site.name, p.identifier))
    return pair[1], d.patient_pseudonym(pair[1].site.name, pair[1].identifier)


def test_a_consent_withdrawn_between_chunks_is_not_written(consented, tmp_path, monkeypatch):
    later, pseudonym = _second_in_order(consented)
    real = dataset._Build._read
    calls = []

    def read(self, pids):
        if not calls:  # after the first chunk's read, before the second's
            _revoke(later)
        calls.append(pids)
        return real(self, pids)

    monkeypatch.setattr(dataset._Build, "_read", read)
    out = tmp_path / "export"
    try:
        dataset.write_streamed(deid.Deidentifier(KEY), out, options=_options(), chunk=1)
    except dataset.ConsentChanged:
        pass  # refused: nothing is left where the researcher would look
    assert len(calls) == 2
    if out.exists():
        for name in dataset.TABLES:
            ids = set(pd.read_csv(out / f"{name}.csv")["patient_id"])
            assert pseudonym not in ids, f"{name}.csv holds the withdrawn patient"
    assert not any(p.name.startswith(".speciosa-research-") for p in tmp_path.iterdir())


def test_an_export_failing_in_a_later_chunk_leaves_nothing(consented, tmp_path, monkeypatch):
    real = dataset._Build._read
    calls = []

    def read(self, pids):
        calls.append(pids)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(self, pids)

    monkeypatch.setattr(dataset._Build, "_read", read)
    out = tmp_path / "export"
    with pytest.raises(RuntimeError):
        dataset.write_streamed(deid.Deidentifier(KEY), out, options=_options(), chunk=1)
    assert not out.exists()
    assert list(Path(tmp_path).iterdir()) == []


@pytest.mark.parametrize("consenting", [0, 1])
def test_an_empty_or_one_patient_cohort_writes_agreeing_files(clinic, tmp_path, consenting):
    import pyarrow.parquet as pq
    from tests.conftest import give_consent

    for p in (clinic.patient_a,)[:consenting]:
        give_consent(p, "research")
    out = tmp_path / "export"
    ds, names = dataset.write_streamed(deid.Deidentifier(KEY), out, options=_options(), chunk=1)
    assert ds.n_exported == consenting
    for name in dataset.TABLES:
        csv = pd.read_csv(out / f"{name}.csv")
        parquet = pq.read_table(out / f"{name}.parquet").to_pandas()
        assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet)
        assert list(csv["patient_id"]) == list(parquet["patient_id"])


def test_the_cli_says_so_and_writes_nothing(consented, tmp_path, monkeypatch, capsys, settings):
    from speciosa.cli import main

    later, _ = _second_in_order(consented)
    real = dataset._Build._read
    calls = []

    def read(self, pids):
        if not calls:
            _revoke(later)
        calls.append(pids)
        return real(self, pids)

    monkeypatch.setattr(dataset._Build, "_read", read)
    monkeypatch.setattr(dataset, "write_streamed",
                        functools.partial(dataset.write_streamed, chunk=1))
    monkeypatch.setenv("SPECIOSA_RESEARCH_KEY", KEY.decode())
    settings.RESEARCH_K_ANONYMITY, settings.RESEARCH_WITHHELD_DAYS = 1, 0  # both exported
    out = tmp_path / "export"
    assert main(["export", "research", "--out", str(out), "--purpose", "Study 7",
                 "--researcher", consented.researcher.username]) == 1
    assert "withdrew their research consent" in capsys.readouterr().err
    assert not out.exists()
