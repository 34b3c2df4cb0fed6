"""``speciosa export research``: consented patients only, none of the 18 Safe Harbor
identifiers and no calendar date in any file, time as days in care, keyed pseudonyms, the
42 CFR Part 2 notice, implausible dates skipped and reported, the export audited with its
recipient, who ran it and why."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import re
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow.parquet as pq
import pytest
from tests.conftest import give_consent

from speciosa.cli import main
from speciosa.research import deid

pytestmark = pytest.mark.django_db

KEY = "test-research-key-0123456789"
OTHER_KEY = "speciosa-test-research-key-2"
PURPOSE = "Study 7: exposure and prolactin"
#: Every real date of the fixture's records lies in this span.
ENTRY = dt.date(2026, 1, 26)
EVENT_DAYS = [dt.date(2026, 2, 2), dt.date(2026, 2, 3), dt.date(2026, 2, 4)]
LAB_DAY = dt.date(2026, 2, 6)
PHONE = "555-867-5309"
EMAIL = "maya.quinn@example.com"
URL = "http://example.org/patients/quinn"
IP = "10.20.30.40"
SSN = "078-05-1120"
FREE_TEXT_MARKER = "Zebulonian"


def _at(day: dt.date, hour: int, minute: int = 0, tz: str = "America/New_York") -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(tz))


def _records(patient, author) -> None:
    """Diary, doses, assessments, side effects, a lab, substance use, medication and a note,
    every free-text field full of identifiers."""
    from speciosa.clinic.models import (
        Assessment,
        DiaryDay,
        Dose,
        LabResult,
        Medication,
        Note,
        SubstanceUse,
    )

    hostile = (f"{patient.given_name} {patient.family_name} ({patient.identifier}) {PHONE} "
               f"{EMAIL} {URL} {IP} SSN {SSN} {FREE_TEXT_MARKER}")
    tz = patient.site.time_zone
    common = {"patient": patient, "entered_by": author, "source": "patient"}
    for day in EVENT_DAYS:
        diary = DiaryDay.objects.create(patient=patient, day=day)
        for hour in (8, 20):
            Dose.objects.create(**common, diary=diary, taken_at=_at(day, hour, 15, tz),
                                amount=Decimal("2.500"), unit="g", product=hostile[:120],
                                mitragynine_percent=Decimal("1.50"), mitragynine_mg=37.5,
                                conversion_note=hostile[:300])
        Assessment.objects.create(**common, diary=diary, instrument="craving-nrs",
                                  instrument_version="1", at=_at(day, 21, 0, tz),
                                  items={"craving": 6, "free": hostile}, total=6, band="",
                                  flags=["not-a-flag " + hostile[:40]], note=hostile[:500])
        Assessment.objects.create(**common, diary=diary, instrument="side-effects",
                                  instrument_version="speciosa-1", at=_at(day, 21, 5, tz),
                                  items={"nausea": 1, "constipation": 0}, total=None,
                                  note=hostile[:500])
        SubstanceUse.objects.create(**common, diary=diary, at=_at(day, 19, 0, tz),
                                    name="alcohol", detail=hostile[:200])
    # a retracted dose of a different size: never exported
    Dose.objects.create(**common, taken_at=_at(EVENT_DAYS[0], 12, 0, tz), amount=Decimal("9.750"),
                        unit="g", retracted=True, mitragynine_mg=146.25)
    LabResult.objects.create(patient=patient, entered_by=author, source="clinician", lab="prolactin",
                             loinc="2842-3", collected_at=_at(LAB_DAY, 9, 30, tz),
                             value=Decimal("14.2000"), unit="ng/mL", canonical_value=14.2,
                             canonical_unit="ng/mL", reference_low=4.8, reference_high=23.3,
                             flag="normal", result=f"call {PHONE}", method=hostile[:20])
    Medication.objects.create(patient=patient, entered_by=author, source="clinician",
                              name=hostile[:120], start=ENTRY)
    Note.objects.create(patient=patient, entered_by=author, source="clinician",
                        at=_at(LAB_DAY, 11, 0, tz), text=hostile)


def make_patient(site, team, username, password, sex="male", **fields):
    """A patient with a login (as tests/conftest.py makes them)."""
    from django.contrib.auth import get_user_model

    from speciosa.clinic.models import Patient, Profile

    user = get_user_model().objects.create_user(username=username, password=password)
    Profile.objects.create(user=user, role="patient")
    return Patient.objects.create(site=site, care_team=team, user=user, sex=sex,
                                  birth_date=fields.pop("birth_date", dt.date(1985, 6, 15)),
                                  **fields)


@pytest.fixture
def cohort(clinic):
    """Five patients: consented (a), refused (b), consented then revoked (c), consented and
    92 years old (d), never asked (e); each with a full, identifier-laden record."""
    from speciosa.clinic.models import Consent

    c = clinic
    pw = c.password
    c.patient_c = make_patient(c.site_a, c.team_a, "pat_c", pw, given_name="Ivo",
                               family_name="Marchbank", identifier="RSH-0003")
    c.patient_d = make_patient(c.site_a, c.team_a, "pat_d", pw, sex="female", given_name="Winifred",
                               family_name="Oldcastle", identifier="RSH-0004",
                               birth_date=dt.date(1933, 11, 2))
    c.patient_e = make_patient(c.site_b, c.team_b, "pat_e", pw, given_name="Ezra",
                               family_name="Thistlewood", identifier="RSH-0005")
    for p, ident in ((c.patient_a, "RSH-0001"), (c.patient_b, "RSH-0002")):
        p.identifier = ident
        p.save()
    c.patients = [c.patient_a, c.patient_b, c.patient_c, c.patient_d, c.patient_e]
    for p in c.patients:
        p.in_care_since = ENTRY
        p.save()
        _records(p, c.clinician_a)
    t0 = _at(ENTRY, 10)
    give_consent(c.patient_a, "research", at=t0)
    give_consent(c.patient_a, "care", at=t0)
    Consent.objects.create(patient=c.patient_b, kind="research", given=False, at=t0)
    give_consent(c.patient_b, "care", at=t0)
    give_consent(c.patient_c, "research", at=t0)
    Consent.objects.create(patient=c.patient_c, kind="research", given=False,
                           at=t0 + dt.timedelta(days=3))
    give_consent(c.patient_d, "research", at=t0)
    return c


@pytest.fixture(autouse=True)
def _k_of_1(settings):
    """The fixture cohort has two consented patients; with the default k of 5 both would be
    suppressed. These tests check what an exported row holds, so k is 1 here; k-anonymity is
    tested in test_anonymity.py, on the demo clinic in test_reidentification.py, and at the
    default k in test_a_cohort_smaller_than_k_exports_nobody_and_says_so."""
    settings.RESEARCH_K_ANONYMITY = 1


def _export(tmp_path: Path, monkeypatch, name: str = "export", key: str = KEY,
            researcher: str = "res") -> Path:
    monkeypatch.setenv("SPECIOSA_RESEARCH_KEY", key)
    out = tmp_path / name
    assert main(["export", "research", "--out", str(out), "--purpose", PURPOSE,
                 "--researcher", researcher]) == 0
    return out


def _file_texts(out: Path) -> dict[str, str]:
    """Every exported file as text: Parquet files as their cells, schema and metadata."""
    texts = {}
    for path in sorted(out.iterdir()):
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            meta = " ".join(f"{k.decode()}={v.decode()}" for k, v in (table.schema.metadata or {}).items())
            texts[path.name] = (table.to_pandas().to_csv(index=False) + "\n" + str(table.schema)
                                + "\n" + meta)
        else:
            texts[path.name] = path.read_text(encoding="utf-8")
    return texts


def _date_forms(day: dt.date) -> list[str]:
    return [day.isoformat(), day.strftime("%m/%d/%Y"), day.strftime("%Y%m%d"),
            day.strftime("%d.%m.%Y"), day.strftime("%-m/%-d/%Y")]


IDENTIFIER_PATTERNS = {
    "e-mail": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "telephone/fax": re.compile(r"\(?\b\d{3}\)?[-. ]\d{3}[-. ]\d{4}\b"),
    "SSN": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "URL": re.compile(r"https?://|www\.", re.I),
    "IP address": re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"),
    "ZIP code": re.compile(r"\b\d{5}-\d{4}\b"),
}


def test_no_safe_harbor_identifier_or_calendar_date_appears_in_any_exported_file(
        cohort, tmp_path, monkeypatch):
    from django.contrib.auth import get_user_model

    out = _export(tmp_path, monkeypatch)
    texts = _file_texts(out)
    assert {n for n in texts if n.endswith(".parquet")} and {n for n in texts if n.endswith(".csv")}
    forbidden: dict[str, str] = {}
    for p in cohort.patients:
        forbidden.update({p.given_name: "name", p.family_name: "name", p.identifier: "MRN",
                          p.user.username: "username"})
        forbidden.update({form: "date of birth" for form in _date_forms(p.birth_date)})
    for user in get_user_model().objects.all():
        if len(user.username) >= 5:
            forbidden[user.username] = "username"
        for part in (user.first_name, user.last_name, user.email):
            if part:
                forbidden[part] = "staff name or e-mail"
    for day in [ENTRY, *EVENT_DAYS, LAB_DAY]:
        forbidden.update({form: "real (unshifted) date" for form in _date_forms(day)})
    forbidden.update({PHONE: "telephone", EMAIL: "e-mail", URL: "URL", IP: "IP address",
                      SSN: "SSN", FREE_TEXT_MARKER: "free text", "Site A": "site name",
                      "Site B": "site name", "Team A": "care team", "America/": "time zone"})
    for name, text in texts.items():
        for needle, kind in forbidden.items():
            found = re.search(rf"(?<![A-Za-z0-9]){re.escape(needle)}(?![A-Za-z0-9])", text, re.I)
            assert not found, f"{kind} {needle!r} found in {name}"
        for kind, pattern in IDENTIFIER_PATTERNS.items():
            assert not pattern.search(text), f"{kind} pattern found in {name}: {pattern.search(text)}"
        # no date of any kind, shifted or not, and no clock time
        for pattern in (r"\b(1[89]|20)\d\d-\d\d-\d\d", r"\bT?\d\d:\d\d(:\d\d)?\b"):
            assert not re.search(pattern, text), f"{re.search(pattern, text)} in {name}"


def test_only_patients_whose_latest_research_consent_is_given_are_exported(cohort, tmp_path,
                                                                           monkeypatch):
    out = _export(tmp_path, monkeypatch)
    d = deid.Deidentifier(KEY.encode())
    expected = {d.patient_pseudonym(p.site.name, p.identifier) for p in (cohort.patient_a,
                                                                        cohort.patient_d)}
    for table in ("patients", "doses", "daily_exposure", "assessments", "labs", "side_effects"):
        df = pd.read_parquet(out / f"{table}.parquet")
        assert set(df["patient_id"]) == expected, table
        assert set(pd.read_csv(out / f"{table}.csv")["patient_id"]) == expected, table


def test_every_table_has_the_expected_rows_without_retracted_or_free_text(cohort, tmp_path,
                                                                          monkeypatch):
    out = _export(tmp_path, monkeypatch)
    doses = pd.read_parquet(out / "doses.parquet")
    assert len(doses) == 2 * len(EVENT_DAYS) * 2  # two patients, retracted dose left out
    assert set(doses["product_category"]) == {"leaf powder"}
    assert set(doses["amount"]) == {2.5}
    exposure = pd.read_parquet(out / "daily_exposure.parquet")
    assert len(exposure) == 2 * len(EVENT_DAYS)
    assert exposure["mitragynine_mg"].tolist() == pytest.approx([75.0] * 6)
    assessments = pd.read_parquet(out / "assessments.parquet")
    assert set(assessments["instrument"]) == {"craving-nrs"}
    assert {json.loads(i)["craving"] for i in assessments["items"]} == {6}
    assert all(json.loads(i).keys() == {"craving"} for i in assessments["items"])
    assert all(json.loads(f) == [] for f in assessments["flags"])
    side = pd.read_parquet(out / "side_effects.parquet")
    assert sorted(side.groupby("item")["present"].sum().items()) == [("constipation", 0),
                                                                     ("nausea", 6)]
    labs = pd.read_parquet(out / "labs.parquet")
    assert labs["canonical_value"].tolist() == [14.2, 14.2]
    assert set(labs["result"]) == {""} and set(labs["method"]) == {""}
    patients = pd.read_parquet(out / "patients.parquet").set_index("patient_id")
    assert not any("birth" in col for col in patients.columns)
    assert sorted(patients["age_band"]) == ["40-44", "90+"]
    assert set(patients["entry_year"]) == {"2026"}
    for name in ("notes.csv", "substance_use.csv", "medications.csv"):
        assert not (out / name).exists()


def test_events_are_exported_as_days_in_care_and_periods_of_the_day(cohort, tmp_path,
                                                                    monkeypatch):
    out = _export(tmp_path, monkeypatch)
    p = cohort.patient_a
    pid = deid.Deidentifier(KEY.encode()).patient_pseudonym(p.site.name, p.identifier)
    doses = pd.read_parquet(out / "doses.parquet")
    mine = doses[doses["patient_id"] == pid]
    assert list(mine["day_in_care"]) == [(day - ENTRY).days for day in EVENT_DAYS for _ in (8, 20)]
    assert list(mine["time_of_day"]) == ["morning", "evening"] * len(EVENT_DAYS)
    assert not {"taken_at", "day"} & set(doses.columns)
    labs = pd.read_parquet(out / "labs.parquet")
    lab = labs[labs["patient_id"] == pid].iloc[0]
    assert (lab["day_in_care"], lab["time_of_day"]) == ((LAB_DAY - ENTRY).days, "morning")
    exposure = pd.read_parquet(out / "daily_exposure.parquet")
    assert list(exposure[exposure["patient_id"] == pid]["day_in_care"]) == [7, 8, 9]
    side = pd.read_parquet(out / "side_effects.parquet")
    assert set(side["time_of_day"]) == {"evening"}


def test_a_patients_most_recent_days_are_withheld_by_their_keyed_number(cohort, tmp_path,
                                                                        monkeypatch):
    from django.utils import timezone

    from speciosa.clinic.models import DiaryDay

    p = cohort.patient_a
    today = timezone.now().date()  # the fixture's sites are in UTC
    p.in_care_since = today - dt.timedelta(days=100)
    p.save()
    for back in range(0, 40):
        DiaryDay.objects.create(patient=p, day=today - dt.timedelta(days=back))
    out = _export(tmp_path, monkeypatch)
    d = deid.Deidentifier(KEY.encode())
    withheld = d.withheld_days(p.site.name, p.identifier, 28)
    exposure = pd.read_parquet(out / "daily_exposure.parquet")
    mine = exposure[exposure["patient_id"] == d.patient_pseudonym(p.site.name, p.identifier)]
    assert mine["day_in_care"].max() == 100 - 1 - withheld
    report = json.loads((out / "deid_report.json").read_text())
    assert report["records_left_out"]["withheld recent day"]["diary days"] == 1 + withheld


def test_the_same_key_gives_the_same_pseudonyms_and_another_key_different_ones(
        cohort, tmp_path, monkeypatch):
    first = pd.read_csv(_export(tmp_path, monkeypatch, "one") / "patients.csv")
    second = pd.read_csv(_export(tmp_path, monkeypatch, "two") / "patients.csv")
    third = pd.read_csv(_export(tmp_path, monkeypatch, "three", OTHER_KEY) / "patients.csv")
    assert sorted(first["patient_id"]) == sorted(second["patient_id"])
    assert first.equals(second)
    assert not set(first["patient_id"]) & set(third["patient_id"])


def test_the_42_cfr_part_2_notice_is_in_every_export(cohort, tmp_path, monkeypatch):
    out = _export(tmp_path, monkeypatch)
    assert deid.PART2_NOTICE in (out / "NOTICE.txt").read_text()
    assert deid.PART2_NOTICE in (out / "data_dictionary.md").read_text()
    assert json.loads((out / "data_dictionary.json").read_text())["notice"] == deid.PART2_NOTICE
    for path in out.glob("*.parquet"):
        meta = pq.read_schema(path).metadata
        assert meta[b"speciosa.notice"].decode() == deid.PART2_NOTICE, path.name


def test_the_data_dictionary_describes_every_column_of_every_table(cohort, tmp_path, monkeypatch):
    out = _export(tmp_path, monkeypatch)
    dictionary = json.loads((out / "data_dictionary.json").read_text())
    for table, spec in dictionary["tables"].items():
        documented = [c["name"] for c in spec["columns"]]
        assert list(pd.read_parquet(out / f"{table}.parquet").columns) == documented
        assert list(pd.read_csv(out / f"{table}.csv").columns) == documented
        assert all(c["description"] for c in spec["columns"])


def test_the_export_is_audited_with_its_researcher_who_ran_it_what_and_why(cohort, tmp_path,
                                                                           monkeypatch):
    from speciosa.clinic.models import AuditEntry

    _export(tmp_path, monkeypatch)
    entry = AuditEntry.objects.get(action="export")
    assert entry.user == cohort.researcher and entry.at is not None
    assert entry.model == "ResearchExport" and PURPOSE in entry.reason
    after = entry.after
    assert after["purpose"] == PURPOSE and after["recipient"] == "res"
    assert after["os_user"] == getpass.getuser()
    assert after["patients"] == 2 and after["rows"]["doses"] == 12
    assert after["patient_ids"] == sorted([cohort.patient_a.pk, cohort.patient_d.pk])
    assert after["deidentification"]["k"] >= 1 and after["deidentification"]["withheld_days"] == 28
    assert "deid_report.json" in after["files"]


@pytest.mark.parametrize("who,message", [
    ("clin_a", "not an active account with the researcher role"),
    ("root", "not an active account with the researcher role"),
    ("pat_a", "not an active account with the researcher role"),
    ("nobody", "no account named 'nobody'"),
])
def test_an_export_for_anyone_but_an_active_researcher_is_refused(cohort, tmp_path, monkeypatch,
                                                                  capsys, who, message):
    from speciosa.clinic.models import AuditEntry

    monkeypatch.setenv("SPECIOSA_RESEARCH_KEY", KEY)
    out = tmp_path / "export"
    assert main(["export", "research", "--out", str(out), "--purpose", PURPOSE,
                 "--researcher", who]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not AuditEntry.objects.filter(action="export").exists()


def test_an_inactive_researcher_or_none_at_all_is_refused(cohort, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECIOSA_RESEARCH_KEY", KEY)
    out = tmp_path / "export"
    with pytest.raises(SystemExit):  # argparse: --researcher is required
        main(["export", "research", "--out", str(out), "--purpose", PURPOSE])
    cohort.researcher.is_active = False
    cohort.researcher.save()
    assert main(["export", "research", "--out", str(out), "--purpose", PURPOSE,
                 "--researcher", "res"]) == 2
    assert not out.exists()


def test_implausible_dates_are_skipped_and_reported_not_a_crash_for_the_whole_clinic(
        cohort, tmp_path, monkeypatch):
    """Issue #11 item 8: a diary day of 0001-01-01 made the export fail with an
    OverflowError for everyone."""
    from speciosa.clinic.models import DiaryDay, Dose, LabResult

    p = cohort.patient_a
    tz = ZoneInfo("America/New_York")
    p.site.time_zone = "America/New_York"
    p.site.save()
    ancient = DiaryDay.objects.create(patient=p, day=dt.date(1, 1, 1))
    DiaryDay.objects.create(patient=p, day=dt.date(9999, 12, 31))
    Dose.objects.create(patient=p, source="patient", diary=ancient, unit="g", amount=Decimal("2"),
                        taken_at=dt.datetime(1, 1, 1, 0, 30, tzinfo=dt.UTC), mitragynine_mg=30.0)
    Dose.objects.create(patient=p, source="patient", unit="g", amount=Decimal("2"),
                        taken_at=dt.datetime(1900, 6, 1, 9, 0, tzinfo=tz), mitragynine_mg=30.0)
    LabResult.objects.create(patient=p, source="clinician", lab="prolactin", loinc="2842-3",
                             collected_at=dt.datetime(9999, 12, 31, 23, 0, tzinfo=dt.UTC),
                             value=Decimal("9"), unit="ng/mL", canonical_value=9.0,
                             canonical_unit="ng/mL")
    # a consented patient whose entry into care is in year 1 is left out, not a crash (a row
    # from before the rules of issue 15: only a queryset update, which skips save(), plants
    # it now, and the database still wants entry into care on or after birth)
    c = cohort.patient_c
    give_consent(c, "research")
    type(c).objects.filter(pk=c.pk).update(birth_date=dt.date(1, 1, 1), in_care_since=dt.date(1, 1, 1))
    out = _export(tmp_path, monkeypatch)
    report = json.loads((out / "deid_report.json").read_text())
    assert report["records_left_out"]["implausible date"] == {"diary days": 2, "doses": 2,
                                                               "labs": 1}
    assert report["patients"]["implausible_entry_or_birth_date"] == 1
    assert report["patients"]["exported"] == 2
    doses = pd.read_parquet(out / "doses.parquet")
    assert len(doses) == 12 and doses["day_in_care"].between(0, 20).all()
    assert len(pd.read_parquet(out / "daily_exposure.parquet")) == 6


def test_a_cohort_smaller_than_k_exports_nobody_and_says_so(cohort, tmp_path, monkeypatch,
                                                            settings, capsys):
    settings.RESEARCH_K_ANONYMITY = 5
    out = _export(tmp_path, monkeypatch)
    report = json.loads((out / "deid_report.json").read_text())
    assert report["patients"] == {"consented": 2, "implausible_entry_or_birth_date": 0,
                                  "suppressed": 2, "generalised": 0, "exported": 0}
    assert report["k_anonymity"]["k"] == 0
    for table in ("patients", "doses", "labs"):
        assert pd.read_parquet(out / f"{table}.parquet").empty
    assert report["records_left_out"]["suppressed patient"]["doses"] == 12
    assert "2 patients suppressed" in capsys.readouterr().out


def test_without_a_key_it_exits_2_naming_the_variable_and_writes_nothing(cohort, tmp_path,
                                                                         monkeypatch, capsys):
    from speciosa.clinic.models import AuditEntry

    monkeypatch.delenv("SPECIOSA_RESEARCH_KEY", raising=False)
    out = tmp_path / "export"
    assert main(["export", "research", "--out", str(out), "--purpose", "study",
                 "--researcher", "res"]) == 2
    assert "SPECIOSA_RESEARCH_KEY" in capsys.readouterr().err
    assert not out.exists()
    assert not AuditEntry.objects.filter(action="export").exists()
    monkeypatch.setenv("SITE_SECRET", KEY)
    assert main(["export", "research", "--out", str(out), "--key-env", "SITE_SECRET", "--purpose",
                 "study", "--researcher", "res"]) == 0


def test_it_refuses_a_directory_that_already_holds_files(cohort, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECIOSA_RESEARCH_KEY", KEY)
    out = tmp_path / "export"
    out.mkdir()
    (out / "old.csv").write_text("x\n")
    assert main(["export", "research", "--out", str(out), "--purpose", "study",
                 "--researcher", "res"]) == 2
    assert "not an empty directory" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["old.csv"]
