"""The synthetic demo clinic: shape, reproducibility, and that every derived value comes
from the one rule that computes it."""

from __future__ import annotations

import datetime as dt
import math
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model

from speciosa import demo
from speciosa.clinic.models import (
    Assessment,
    AuditEntry,
    CareTeam,
    DiaryDay,
    Dose,
    LabResult,
    Medication,
    Patient,
    Profile,
    Site,
)
from speciosa.knowledge import instruments as kinstruments
from speciosa.knowledge import labs as klabs
from speciosa.knowledge import prolactin as kprolactin
from speciosa.pharmacology import doses as pdoses

TODAY = dt.date(2026, 11, 20)
SMALL = {"seed": 7, "n_patients": 9, "days": 60, "today": TODAY}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The demo hashes its one password once; PBKDF2 would still dominate a small build."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def small_clinic() -> demo.DemoSummary:
    return demo.build_demo_clinic(**SMALL)


def test_it_builds_two_sites_four_clinicians_a_researcher_and_patients_of_both_sexes(small_clinic):
    assert Site.objects.count() == 2
    assert Profile.objects.filter(role="clinician").count() == 4
    assert Profile.objects.filter(role="researcher").count() == 1
    assert get_user_model().objects.get(username="admin").is_superuser
    assert set(Patient.objects.values_list("sex", flat=True)) == {"female", "male"}
    for site in Site.objects.all():  # each site, not only the clinic (issue 15: one was all men)
        sexes = sorted(Patient.objects.filter(site=site).values_list("sex", flat=True))
        assert set(sexes) == {"female", "male"}, (site.name, sexes)
    assert Patient.objects.count() == small_clinic.patients == 9
    assert Patient.objects.filter(user__username="patient01").exists()
    roles = {role for _u, role, _w in small_clinic.logins}
    assert roles == {"admin", "clinician", "researcher", "patient"}
    assert len(small_clinic.logins) == 1 + 4 + 1 + 9
    ages = [p.age_on(TODAY) for p in Patient.objects.all()]
    assert min(ages) >= 19 and max(ages) <= 70


def test_each_site_has_a_shared_team_and_a_team_one_clinician_cannot_see(small_clinic):
    for site in Site.objects.all():
        sizes = sorted(t.members.count() for t in CareTeam.objects.filter(site=site))
        assert sizes == [1, 2]
    okafor = get_user_model().objects.get(username="dr.okafor")
    assert CareTeam.objects.filter(members=okafor).count() == 1


def test_the_demo_logs_one_audit_entry_for_the_whole_import(small_clinic):
    entries = AuditEntry.objects.filter(model="DemoClinic")
    assert entries.count() == 1
    entry = entries.get()
    assert entry.action == "create" and entry.reason == "synthetic demo clinic loaded"
    assert entry.after["bulk_import"] is True
    assert AuditEntry.objects.count() == 1


def test_diaries_have_missed_days_and_one_gap_of_a_week_before_today(small_clinic):
    last_days = []
    for p in Patient.objects.all():
        days = sorted(DiaryDay.objects.filter(patient=p).values_list("day", flat=True))
        assert days[-1] < TODAY  # the record runs through yesterday
        last_days.append(days[-1])
    assert min(last_days) <= TODAY - dt.timedelta(days=8)
    assert DiaryDay.objects.count() < 9 * SMALL["days"]


def test_every_dose_carries_the_estimate_of_to_mitragynine(small_clinic):
    doses = list(Dose.objects.all())
    assert len(doses) > 300
    assert {d.unit for d in doses} >= {"g"}
    for d in doses:
        assert d.source == "patient" and d.diary_id is not None
        try:
            est = pdoses.to_mitragynine(pdoses.Dose(
                taken_at=d.taken_at, amount=float(d.amount), unit=d.unit,
                mitragynine_percent=float(d.mitragynine_percent) if d.mitragynine_percent is not None else None,
                grams_per_capsule=float(d.grams_per_capsule) if d.grams_per_capsule is not None else None,
                product=d.product or None))
        except pdoses.DoseConversionError:
            assert d.mitragynine_mg is None and d.conversion_note.startswith("Not converted")
        else:
            assert d.mitragynine_mg == pytest.approx(est.mg)
            assert d.conversion_note == est.basis[:300]


def test_every_assessment_total_band_and_flags_come_from_the_scorer(small_clinic):
    rows = list(Assessment.objects.select_related("patient"))
    assert {r.instrument for r in rows} >= {"craving-nrs", "sows", "side-effects", "cows", "phq9",
                                            "audit-c"}
    for r in rows:
        inst = kinstruments.get_instrument(r.instrument)
        result = kinstruments.score(inst, r.items, sex=r.patient.sex)
        assert r.instrument_version == inst.version
        assert (r.total, r.band, r.complete, r.flags) == (
            result.total, result.band or "", result.complete, list(result.flags))
        assert r.source == ("patient" if r.diary_id else "clinician")


def test_lab_values_ranges_and_prolactin_flags_come_from_the_knowledge_modules(small_clinic):
    labs = list(LabResult.objects.select_related("patient"))
    assert {r.lab for r in labs} >= {"prolactin", "alt", "ast", "bilirubin"}
    assert {r.unit for r in labs if r.lab == "prolactin"} == {"ng/mL", "m[IU]/L"}
    assert {r.unit for r in labs if r.lab == "bilirubin"} == {"mg/dL", "umol/L"}
    for r in labs:
        assert r.canonical_value == pytest.approx(klabs.to_canonical(r.lab, float(r.value), r.unit))
        assert (r.reference_low, r.reference_high) == klabs.reference_range(r.lab, r.patient.sex)
        if r.lab == "prolactin":
            expected = kprolactin.interpret(float(r.value), r.unit, sex=r.patient.sex,
                                            pregnant=r.patient.pregnant).flag
            assert r.flag == expected


def test_the_clinically_interesting_patients_are_there(small_clinic):
    prl = LabResult.objects.filter(lab="prolactin")
    assert prl.filter(canonical_value__gt=100).exists()
    assert prl.filter(canonical_value__gte=40, canonical_value__lte=60).exists()
    assert not prl.filter(patient__pregnant=True).exists()
    assert Patient.objects.filter(pregnant=True, sex="female").count() == 1
    alt = LabResult.objects.filter(lab="alt")
    assert any(r.canonical_value > 3 * r.reference_high for r in alt)
    recent = dt.datetime.combine(TODAY - dt.timedelta(days=14), dt.time(), tzinfo=dt.UTC)
    assert Assessment.objects.filter(instrument="cows", total__gte=13, at__gte=recent).exists()
    phq = Assessment.objects.filter(instrument="phq9", at__gte=recent)
    assert any(a.items["self-harm"] > 0 for a in phq)
    se = Assessment.objects.filter(instrument="side-effects")
    assert any(a.items["breast-enlargement-tenderness"] for a in se.filter(patient__sex="male"))
    assert any(a.items["dark-urine-yellow-eyes"] for a in se)
    assert Medication.objects.filter(name__startswith="quetiapine").exists()


def test_prolactin_follows_the_planted_formula_for_an_ordinary_patient(small_clinic):
    """Two draws of one patient: log(PRL) differs by beta*dE/100 plus within-patient noise."""
    exceptions = set(small_clinic.planted_exceptions)
    p = Patient.objects.exclude(identifier__in=exceptions).filter(sex="male").first()
    draws = LabResult.objects.filter(patient=p, lab="prolactin").order_by("collected_at")
    assert draws.count() >= 2
    day_mg: dict[dt.date, float] = {}
    for d in Dose.objects.filter(patient=p).select_related("diary"):
        day_mg[d.diary.day] = day_mg.get(d.diary.day, 0.0) + (d.mitragynine_mg or 0.0)
    for r in draws:
        day = r.collected_at.astimezone(ZoneInfo(p.site.time_zone)).date()
        e = demo.recorded_exposure_mg_per_day(day_mg, day)
        resid = math.log(r.canonical_value) - demo.PLANTED_PROLACTIN_LOG_SLOPE_PER_100MG * e / 100
        # baseline 7 ng/mL, between-patient and within-patient SDs 0.25 and 0.15: 5 SD bounds
        assert abs(resid - math.log(7.0)) < 5 * math.hypot(0.25, 0.15)


def test_the_same_seed_builds_the_same_clinic_and_another_seed_does_not(small_clinic):
    first = demo.clinic_digest()
    again = demo.build_demo_clinic(**SMALL, reset=True)
    assert again.doses == small_clinic.doses
    assert demo.clinic_digest() == first
    demo.build_demo_clinic(**(SMALL | {"seed": 8}), reset=True)
    assert demo.clinic_digest() != first


def test_building_twice_without_reset_refuses_and_changes_nothing(small_clinic):
    n = Dose.objects.count()
    with pytest.raises(demo.DemoClinicExists, match="already holds 9 patient"):
        demo.build_demo_clinic(**SMALL)
    assert Dose.objects.count() == n


def test_it_rejects_a_history_too_short_for_labs():
    with pytest.raises(ValueError, match="days must be at least 28"):
        demo.build_demo_clinic(days=10)


def test_the_production_app_does_not_import_the_demo():
    # Only the ``speciosa demo`` command loads it; research reads the planted model from the
    # data the demo stored, never from the demo's code.
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src" / "speciosa"
    allowed = {src / "commands" / "server.py"}
    importers = []
    for path in src.rglob("*.py"):
        if src / "demo" in path.parents or path in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(n.startswith(("speciosa.demo", "speciosa.clinic.demo")) for n in names):
                importers.append(str(path.relative_to(src)))
    assert importers == []
