"""Issue 18: the research export's output does not change when its build does. A generated
clinic with awkward records (four time zones, corrected and retracted records, implausible and
withheld days, a small site the k-anonymity step suppresses, unknown units and instruments, a
stored NaN on PostgreSQL, a patient without doses, one not consented, one with an implausible
entry) is exported, and every table (columns, dtypes, row order, values), the counts, the
de-identification report, the dictionary and every written file are compared with the export
of the same clinic by the implementation on main before the export was streamed (frozen in
``tests/research/data/golden_export_<vendor>.json``; regenerate only on purpose, with
``SPECIOSA_FREEZE_GOLDEN=1``, and say why in the commit)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow.parquet as pq
import pytest
from tests.conftest import give_consent, make_patient

pytestmark = pytest.mark.django_db

KEY = b"golden-research-key-0123456789abcdef"
NOW = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
ENTRY = dt.date(2026, 8, 1)
DATA = Path(__file__).parent / "data"
#: (unit, amount, percent, grams per capsule): convertible, defaulted and unconvertible doses,
#: and a unit this software does not know
KINDS = [("g", "2.5", "1.5", None), ("g", "3.0", None, None), ("capsule", "4", None, "0.5"),
         ("capsule", "2", "1.2", "0.75"), ("capsule", "3", None, None),
         ("mg_extract", "100", "40", None), ("mg_extract", "50", None, None),
         ("glass", "1", None, None), ("mg_7oh", "15", None, None), ("mg_mitragynine", "20", None, None),
         ("g", "0", None, None), ("spoon", "2", None, None)]
SITES = [("Golden UTC", "UTC"), ("Golden New York", "America/New_York"),
         ("Golden Auckland", "Pacific/Auckland")]


def _at(day: dt.date, hour: int, minute: int, tz: ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute)).replace(tzinfo=tz)


def _clinic() -> dict[int, str]:
    """The clinic; returns database id -> identifier of every patient."""
    from django.db import connection

    from speciosa.clinic.models import (
        Assessment,
        CareTeam,
        DiaryDay,
        Dose,
        LabResult,
        Patient,
        Site,
    )

    rng = random.Random(1818)
    patients = []
    for n_site, (name, zone) in enumerate(SITES + [("Golden Kolkata", "Asia/Kolkata")]):
        site = Site.objects.create(name=name, time_zone=zone)
        team = CareTeam.objects.create(site=site, name="Team")
        small = zone == "Asia/Kolkata"  # one patient: suppressed by the k-anonymity step
        for i in range(1 if small else 5):
            ident = f"G-{n_site}{i:02d}"
            fields = {"identifier": ident, "in_care_since": ENTRY,
                      "birth_date": dt.date(1984 + i % 3, 3 + i, 10)}
            if small:
                fields["birth_date"] = dt.date(1941, 5, 5)
            p = make_patient(site, team, None, "", sex="female" if small else "male", **fields)
            if n_site == 0 and i == 4:  # an entry that cannot be right (as imported): left out
                Patient.objects.filter(pk=p.pk).update(in_care_since=dt.date(1899, 6, 1),
                                                       birth_date=dt.date(1870, 1, 1))
            if not (n_site == 1 and i == 4):  # one patient never consented
                give_consent(p, "research")
            patients.append((p, ZoneInfo(zone), n_site, i))
    for p, tz, n_site, i in patients:
        no_doses = n_site == 2 and i == 0
        for k in range(-3, 118):  # days before entry, New York's and Auckland's DST changes,
            day = ENTRY + dt.timedelta(days=k)  # the withheld days and past the export's day
            diary = DiaryDay.objects.create(patient=p, day=day) if rng.random() < 0.7 else None
            if no_doses:
                continue
            for _dose in range(rng.choice((0, 1, 2, 3, 3, 4))):
                unit, amount, pct, gpc = rng.choice(KINDS)
                convertible = unit in ("g", "mg_mitragynine") or (unit == "capsule" and gpc) \
                    or (unit == "mg_extract" and pct)
                Dose.objects.create(
                    patient=p, source=rng.choice(("patient", "clinician")), diary=diary, unit=unit,
                    amount=Decimal(amount), product="tin",
                    mitragynine_percent=None if pct is None else Decimal(pct),
                    grams_per_capsule=None if gpc is None else Decimal(gpc),
                    mitragynine_mg=round(float(amount) * 1.7, 3) if convertible else None,
                    taken_at=_at(day, rng.choice((0, 5, 6, 11, 12, 17, 18, 23)), rng.randint(0, 59), tz))
            if k % 9 == 0:
                a = Assessment.objects.create(
                    patient=p, source="patient", diary=diary, instrument="cows", instrument_version="2",
                    at=_at(day, rng.choice((1, 9, 15, 21)), 5, tz), total=rng.randint(0, 20),
                    band=rng.choice(("mild", "moderate", "not-a-band")), complete=rng.random() < 0.8,
                    items={"pulse": rng.randint(0, 4), "sweating": 1.5, "restlessness": True,
                           "free": "text", "unknown-item": 3},
                    flags=["not-a-flag", "cows-severe"])
                if k % 27 == 0:  # corrected: the old version superseded, the new one current
                    a.superseded = True
                    a.save()
                    Assessment.objects.create(
                        patient=p, source="clinician", replaces=a, instrument="cows",
                        instrument_version="2", at=a.at, total=a.total + 1, band="moderate",
                        items={**a.items, "pulse": 4}, flags=[])
            if k % 7 == 3:
                Assessment.objects.create(
                    patient=p, source="patient", diary=diary, instrument="side-effects",
                    instrument_version="speciosa-1", at=_at(day, 20, 0, tz), total=None,
                    items={"nausea": 1, "constipation": 0, "reduced-sex-drive": 2, "bogus": 1})
                Assessment.objects.create(
                    patient=p, source="patient", instrument="phq9", instrument_version="Speciosa 1!",
                    at=_at(day, 20, 30, tz), total=12, band="moderate",
                    items={"interest": 1, "mood": 2, "sleep": None}, flags=["phq9-item9-positive"])
                Assessment.objects.create(  # an instrument this software does not know
                    patient=p, source="patient", instrument="homemade", instrument_version="1",
                    at=_at(day, 20, 40, tz), total=3, items={"x": 3})
            if k % 30 == 5:
                for lab, unit, value, result in (("prolactin", "ng/mL", "14.2", ""),
                                                 ("uds-mitragynine", "", None, "positive"),
                                                 ("alt", "U/L; drop table", "31", ""),
                                                 ("not-a-lab", "x", "1", "")):
                    LabResult.objects.create(
                        patient=p, source="clinician", lab=lab, loinc="2842-3" if lab == "prolactin" else "",
                        collected_at=_at(day, 7 + k % 5, 41, tz),
                        value=None if value is None else Decimal(value), unit=unit,
                        canonical_value=None if value is None else float(value), canonical_unit=unit,
                        result=result, method=rng.choice(("screen", "confirmation", "guess")),
                        reference_low=4.8 if value else None, reference_high=23.3 if value else None,
                        flag=rng.choice(("normal", "high", "Bad Flag")))
        if no_doses:
            continue
        # corrected and retracted doses; events at implausible moments
        first = Dose.objects.filter(patient=p).order_by("taken_at", "id").first()
        Dose.objects.filter(pk=first.pk).update(superseded=True)
        Dose.objects.create(patient=p, source="clinician", replaces=first, unit="g", amount=Decimal("7.25"),
                            taken_at=first.taken_at, mitragynine_percent=Decimal("1.10"), mitragynine_mg=79.75)
        Dose.objects.create(patient=p, source="patient", unit="g", amount=Decimal("99"), retracted=True,
                            taken_at=_at(ENTRY + dt.timedelta(days=20), 9, 0, tz), mitragynine_mg=1485.0)
        for moment in (dt.datetime(1990, 1, 1, 12, tzinfo=dt.UTC), NOW + dt.timedelta(days=40),
                       dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.UTC)):
            Dose.objects.create(patient=p, source="patient", unit="g", amount=Decimal("1"),
                                taken_at=moment, mitragynine_mg=15.0)
        DiaryDay.objects.create(patient=p, day=dt.date(1950, 1, 1))
        LabResult.objects.create(patient=p, source="clinician", lab="prolactin", loinc="2842-3",
                                 collected_at=NOW + dt.timedelta(days=3), value=Decimal("9"),
                                 unit="ng/mL", canonical_value=9.0, canonical_unit="ng/mL")
    if connection.vendor == "postgresql":  # numeric holds NaN there: never converted
        some = [d.pk for d in Dose.objects.current().filter(
            unit="g", taken_at__date__range=(ENTRY, ENTRY + dt.timedelta(days=60))).order_by("taken_at", "id")[:3]]
        with connection.cursor() as cur:
            cur.execute(f"UPDATE {Dose._meta.db_table} SET mitragynine_percent = 'NaN' "
                        "WHERE id = ANY(%s)", [some])
    return {p.pk: p.identifier for p, *_ in patients}


def _frozen_frame(df: pd.DataFrame) -> dict:
    return {"columns": list(df.columns), "dtypes": {c: str(t) for c, t in df.dtypes.items()},
            "data": {c: [None if pd.isna(v) else v for v in df[c].tolist()] for c in df.columns}}


def _thawed_frame(frozen: dict) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.array(frozen["data"][c], dtype=frozen["dtypes"][c])
                       for c in frozen["columns"]}, columns=frozen["columns"])
    return df


def _files(out: Path) -> dict:
    """What the written export holds: each CSV's digest, each Parquet file's schema (with its
    metadata), rows and a digest of its table as read back, and every document."""
    files: dict = {}
    for f in sorted(out.iterdir()):
        if f.suffix == ".csv":
            files[f.name] = hashlib.sha256(f.read_bytes()).hexdigest()
        elif f.suffix == ".parquet":
            table = pq.read_table(f)
            frozen = json.dumps(_frozen_frame(table.to_pandas()), sort_keys=True, default=str)
            files[f.name] = {"schema": table.schema.to_string(show_schema_metadata=True),
                             "rows": table.num_rows, "table_sha256": hashlib.sha256(frozen.encode()).hexdigest()}
        else:
            files[f.name] = f.read_text(encoding="utf-8")
    return files


def _snapshot(ds, identifiers: dict[int, str], out: Path) -> dict:
    from speciosa.research import dataset

    return {
        "tables": {name: _frozen_frame(ds.tables[name]) for name in dataset.TABLES},
        "counts": ds.counts, "report": ds.report, "n_consented": ds.n_consented,
        "n_patients_in_clinic": ds.n_patients_in_clinic,
        "exported_identifiers": sorted(identifiers[pk] for pk in ds.patient_pks),
        "dictionary_md": dataset.dictionary_markdown(ds),
        "dictionary_json": dataset.dictionary_json(ds),
        "files": _files(out),
    }


def _expected(vendor: str, snapshot: dict) -> dict:
    path = DATA / f"golden_export_{vendor}.json"
    if os.environ.get("SPECIOSA_FREEZE_GOLDEN") == "1":  # pragma: no cover - on purpose only
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(snapshot, sort_keys=True, separators=(",", ":")) + "\n",
                        encoding="utf-8")
    return json.loads(path.read_text(encoding="utf-8"))


def _compare(got: dict, expected: dict) -> None:
    for name, frozen in expected["tables"].items():
        pd.testing.assert_frame_equal(_thawed_frame(got["tables"][name]), _thawed_frame(frozen),
                                      check_exact=True, obj=name)
        assert got["tables"][name] == frozen, name  # dtypes' names, NA placement, exact floats
    for name, frozen in expected["files"].items():
        assert got["files"][name] == frozen, name
    assert json.loads(json.dumps(got, sort_keys=True)) == expected


def test_the_export_is_the_one_frozen_on_main(tmp_path):
    """Built in memory and written, in one chunk and in chunks of 3 patients; and streamed to
    the files a chunk at a time (what ``speciosa export research`` does)."""
    from django.db import connection

    from speciosa.research import dataset, deid

    identifiers = _clinic()
    options = deid.Options(k=3, max_suppressed=0.2, withheld_days=4)
    ds = dataset.build_dataset(deid.Deidentifier(KEY), options=options, now=NOW)
    dataset.write_dataset(ds, tmp_path / "export")
    got = json.loads(json.dumps(_snapshot(ds, identifiers, tmp_path / "export"), sort_keys=True))
    expected = _expected(connection.vendor, got)
    _check_awkward(expected)
    _compare(got, expected)
    for chunk in (1, 3):
        ds = dataset.build_dataset(deid.Deidentifier(KEY), options=options, now=NOW, chunk=chunk)
        dataset.write_dataset(ds, tmp_path / f"export-{chunk}")
        _compare(json.loads(json.dumps(_snapshot(ds, identifiers, tmp_path / f"export-{chunk}"),
                                       sort_keys=True)), expected)
        streamed, files = dataset.write_streamed(deid.Deidentifier(KEY), tmp_path / f"streamed-{chunk}",
                                                 options=options, now=NOW, chunk=chunk)
        assert sorted(files) == sorted(expected["files"])
        assert _files(tmp_path / f"streamed-{chunk}") == expected["files"]
        assert streamed.counts == expected["counts"] and streamed.report == expected["report"]
        assert sorted(identifiers[pk] for pk in streamed.patient_pks) == expected["exported_identifiers"]


def _check_awkward(expected: dict) -> None:
    from speciosa.clinic.models import Patient

    # the clinic is as awkward as it says
    report = expected["report"]
    assert report["patients"]["suppressed"] == 1 and report["patients"]["implausible_entry_or_birth_date"] == 1
    assert expected["n_consented"] == Patient.objects.count() - 1
    left_out = report["records_left_out"]
    assert left_out["implausible date"]["doses"] and left_out["withheld recent day"]["doses"]
    assert left_out["suppressed patient"]["doses"] and left_out["implausible date"]["labs"]
    exposure = expected["tables"]["daily_exposure"]["data"]
    assert any(exposure["n_doses_not_converted"]) and 0.0 in exposure["mitragynine_mg"]
    assert len(expected["tables"]["doses"]["data"]["patient_id"]) > 1000
