"""The patients' own diary in the demo clinic: what kratom product each takes and how the
intake moves (taper, stable, escalation, relapse, irregular), the diary days, doses (their
mitragynine from the one conversion rule), craving, SOWS, side-effect checklists and other
substances."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from speciosa.clinic.models import DiaryDay, Dose, DoseUnit, Patient, Source, SubstanceUse

from . import assessments
from .assessments import item_draws
from .common import dec, local_time
from .people import (
    SPECIAL_BIG_ESCALATION,
    SPECIAL_COWS_13,
    SPECIAL_LIVER,
    SPECIAL_MALE_BREAST,
    SPECIAL_PHQ9_ITEM9,
    SPECIAL_PREGNANT,
    SPECIAL_PROLACTIN_40_60,
    SPECIAL_PROLACTIN_OVER_100,
    SPECIAL_TRAJECTORY,
)

if TYPE_CHECKING:
    from .builder import Builder

SUBSTANCES = ("alcohol", "benzodiazepines", "opioids", "gabapentinoids", "cannabis")
SUBSTANCE_SHARE = (0.4, 0.12, 0.1, 0.13, 0.25)


@dataclass
class Habits:
    """What the diary part decided that the clinic part reads: the recorded mitragynine per
    diary day (for the planted prolactin), the daily withdrawal pressure, and how depressed
    and how much of a drinker the patient is."""

    day_mg: dict[dt.date, float]
    withdrawal: np.ndarray
    depression: float
    drinking: float


def level_curve(kind: str, days: int, rng: np.random.Generator, *, special: int | None) -> np.ndarray:
    """Daily multiplier of the patient's starting intake over ``days`` days."""
    t = np.linspace(0.0, 1.0, days)
    if kind == "taper":
        end = rng.uniform(0.15, 0.5)
        start_taper = rng.uniform(0.1, 0.3)
        curve = np.where(t < start_taper, 1.0,
                         1.0 - (1.0 - end) * (t - start_taper) / (1.0 - start_taper))
        # tapers go in steps (a plan agreed every two weeks)
        steps = np.floor(np.arange(days) / 14.0) * 14
        curve = np.interp(steps, np.arange(days), curve)
        if special == SPECIAL_COWS_13:
            # a rapid cut in the last 10 days: withdrawal
            curve[-10:] = curve[-10:] * 0.35
    elif kind == "stable":
        curve = np.ones(days)
    elif kind == "escalation":
        factor = rng.uniform(1.4, 2.0)
        if special == SPECIAL_BIG_ESCALATION:
            factor = 3.5
        curve = 1.0 + (factor - 1.0) * t ** rng.uniform(0.8, 1.6)
        if special == SPECIAL_LIVER:
            # a clear step up about five weeks before today
            curve = np.where(np.arange(days) < days - 35, 1.0, 2.0)
    elif kind == "relapse":
        low = rng.uniform(0.15, 0.35)
        turn = rng.uniform(0.5, 0.7)
        curve = np.where(t < turn, 1.0 - (1.0 - low) * t / turn,
                         low + (1.05 - low) * np.minimum((t - turn) / 0.15, 1.0))
    else:  # irregular: stable intake, irregular diary
        curve = np.ones(days) * rng.uniform(0.8, 1.2)
    noise = np.exp(rng.normal(0.0, 0.12, days))
    return np.clip(curve * noise, 0.05, 5.0)


def diary_mask(kind: str, days: int, rng: np.random.Generator, *, recent_gap: bool) -> np.ndarray:
    """True on the days the patient wrote their diary."""
    p_miss = rng.uniform(0.25, 0.45) if kind == "irregular" else rng.uniform(0.02, 0.1)
    mask = rng.random(days) >= p_miss
    mask[0] = True
    if kind == "irregular":
        if recent_gap:
            gap = int(rng.integers(8, 13))
            mask[-gap:] = False
        else:
            start = int(rng.integers(days // 4, max(days // 4 + 1, days - 30)))
            mask[start:start + int(rng.integers(7, 15))] = False
    return mask


@dataclass
class Product:
    unit: str
    name: str
    percent: float | None = None
    grams_per_capsule: float | None = None
    nominal_mg_per_unit: float = 15.0  # the generator's own guess, only to size amounts


def choose_product(rng: np.random.Generator) -> Product:
    r = rng.random()
    if r < 0.6:
        pct = round(float(rng.uniform(1.0, 2.0)), 2) if rng.random() < 0.5 else None
        strain = ("Red Bali", "Green Maeng Da", "White Borneo", "Red Thai")[int(rng.integers(4))]
        return Product(DoseUnit.GRAMS, f"{strain} leaf powder", pct, None, 10 * (pct or 1.5))
    if r < 0.75:
        pct = round(float(rng.uniform(1.0, 2.0)), 2) if rng.random() < 0.6 else None
        return Product(DoseUnit.CAPSULES, "Kratom leaf capsules 500 mg", pct, 0.5, 5 * (pct or 1.5))
    if r < 0.87:
        return Product(DoseUnit.GLASSES, "Home-brewed kratom tea", None, None, 79.0)
    pct = round(float(rng.uniform(10.0, 27.0)), 1) if rng.random() < 0.85 else None
    return Product(DoseUnit.EXTRACT, "Kratom extract", pct, None, (pct or 15.0) / 100)


def amount_for(product: Product, mg: float) -> float:
    """The amount of ``product`` a person would take for about ``mg`` mitragynine."""
    raw = mg / product.nominal_mg_per_unit
    if product.unit == DoseUnit.GRAMS:
        return float(min(max(round(raw * 2) / 2, 0.5), 12.0))
    if product.unit == DoseUnit.CAPSULES:
        return float(min(max(round(raw), 1), 24))
    if product.unit == DoseUnit.GLASSES:
        return float(min(max(round(raw * 2) / 2, 0.5), 4.0))
    return float(min(max(round(raw / 10) * 10, 10), 2000))


def convert(taken_at: dt.datetime, amount: float, product: Product) -> tuple[float | None, str]:
    """Mitragynine mg and note from the one conversion rule (as ``services.validate_dose``)."""
    from speciosa.pharmacology import doses as pdoses

    try:
        est = pdoses.to_mitragynine(pdoses.Dose(
            taken_at=taken_at, amount=float(dec(amount, 3)), unit=str(product.unit),
            mitragynine_percent=float(dec(product.percent, 2)) if product.percent is not None else None,
            grams_per_capsule=float(dec(product.grams_per_capsule, 3))
            if product.grams_per_capsule is not None else None,
            product=product.name))
    except pdoses.DoseConversionError as exc:
        return None, f"Not converted: {exc}"[:300]
    return est.mg, est.basis[:300]


def record(b: Builder, i: int, patient: Patient, plan: dict[str, Any], user,
           rng: np.random.Generator, tz: ZoneInfo) -> Habits:
    """The patient's diary over the whole record: product, intake curve, diary days, doses,
    craving, SOWS, side effects and other substances."""
    sex = plan["sex"]
    days = b.days
    day_of = b.day

    # intake: product, starting intake, doses a day, diary habits
    product = choose_product(rng)
    if product.unit == DoseUnit.GLASSES:
        base_mg = 79.0 * float(rng.integers(1, 5))
    else:
        base_mg = float(np.clip(rng.lognormal(math.log(110.0), 0.5), 25.0, 350.0))
    if i == SPECIAL_PROLACTIN_40_60:
        base_mg = 240.0
    if i == SPECIAL_BIG_ESCALATION:
        base_mg = 70.0
    base_k = float(rng.choice([1, 2, 3, 4, 5, 6], p=[0.1, 0.25, 0.3, 0.2, 0.1, 0.05]))
    if product.unit == DoseUnit.GLASSES:
        base_k = base_mg / 79.0
    special = i if i in SPECIAL_TRAJECTORY else None
    curve = level_curve(plan["trajectory"], days, rng, special=special)
    recent_gap = plan["trajectory"] == "irregular" and (i == SPECIAL_PHQ9_ITEM9 or rng.random() < 0.5)
    mask = diary_mask(plan["trajectory"], days, rng, recent_gap=recent_gap)
    if i == SPECIAL_LIVER:
        mask[-10:] = True  # keeps writing the diary while unwell
    weekly = np.array([curve[max(0, d - 7):d].mean() if d else curve[0] for d in range(days)])
    withdrawal = np.clip(1.5 * np.maximum(0.0, (weekly - curve) / weekly)
                         + rng.normal(0.08, 0.05, days), 0.0, 1.0)
    substances = [str(x) for x in rng.choice(SUBSTANCES, size=int(rng.integers(1, 3)),
                                             replace=False, p=SUBSTANCE_SHARE)] if rng.random() < 0.35 else []
    if plan["trajectory"] == "relapse" and "opioids" not in substances and rng.random() < 0.5:
        substances.append("opioids")
    substance_p = {name: float(rng.uniform(0.03, 0.25) if name in ("alcohol", "cannabis")
                               else rng.uniform(0.01, 0.06)) for name in substances}
    depression = float(rng.uniform(0.05, 0.45))
    drinking = float(rng.uniform(0.35, 0.7)) if "alcohol" in substances else float(rng.uniform(0.0, 0.2))

    day_mg: dict[dt.date, float] = {}
    side_effect_days = 0
    for d in range(days):
        if not mask[d]:
            continue
        day = day_of(d)
        level = base_mg * curve[d]
        k = int(np.clip(round(base_k * math.sqrt(curve[d]) + rng.normal(0, 0.5)), 1, 6))
        first = rng.uniform(6.5 * 60, 9 * 60)
        span = (22.5 * 60 - first) / k
        times = sorted(first + span * j + rng.uniform(0, 0.6 * span) for j in range(k))
        entries = []
        total_mg = 0.0
        biggest = 0.0
        for minutes in times:
            amount = amount_for(product, level / k * float(rng.lognormal(0.0, 0.2)))
            if product.unit == DoseUnit.GRAMS:
                biggest = max(biggest, amount)
            taken_at = local_time(day, minutes, tz)
            mg, note = convert(taken_at, amount, product)
            total_mg += mg or 0.0
            entries.append(Dose(
                patient=patient, entered_by=user, source=Source.PATIENT,
                entered_at=taken_at + dt.timedelta(minutes=int(rng.integers(1, 60))),
                taken_at=taken_at, amount=dec(amount, 3), unit=product.unit,
                product=product.name,
                mitragynine_percent=dec(product.percent, 2) if product.percent is not None else None,
                grams_per_capsule=dec(product.grams_per_capsule, 3)
                if product.grams_per_capsule is not None else None,
                mitragynine_mg=mg, conversion_note=note))
        evening = local_time(day, rng.uniform(20 * 60, 22 * 60), tz)
        last_entry = max([e.entered_at for e in entries] + [evening])
        diary = DiaryDay(patient=patient, day=day, created_at=entries[0].entered_at,
                         updated_at=last_entry)
        b.rows[DiaryDay].append(diary)
        for e in entries:
            e.diary = diary
        b.rows[Dose].extend(entries)
        day_mg[day] = total_mg

        w = float(withdrawal[d])
        if rng.random() < 0.92:
            craving = int(np.clip(round(2 + 5 * w + 1.5 * min(curve[d], 2.0) + rng.normal(0, 1.2)), 0, 10))
            assessments.assess(b, patient, user, Source.PATIENT, "craving-nrs", {"craving": craving},
                               evening, sex, diary)
        if rng.random() < 0.4:
            assessments.assess(b, patient, user, Source.PATIENT, "sows",
                               item_draws(b.inst["sows"], rng, 0.05 + 0.6 * w), evening, sex, diary)
        want_se = (rng.random() < 0.08 or side_effect_days == 0
                   or (i == SPECIAL_LIVER and d >= days - 6 and side_effect_days < 99))
        if want_se:
            items = side_effects(b, i, rng, sex, d, level, biggest, w)
            assessments.assess(b, patient, user, Source.PATIENT, "side-effects", items, evening, sex, diary)
            side_effect_days += 1
            if i == SPECIAL_LIVER and d >= days - 6:
                side_effect_days = 99
        for name, p in substance_p.items():
            if rng.random() < p:
                detail = {"alcohol": f"{int(rng.integers(1, 7))} drinks",
                          "benzodiazepines": "alprazolam 0.5 mg", "opioids": "pills, not prescribed",
                          "gabapentinoids": "gabapentin 300 mg", "cannabis": "smoked"}[name]
                b.rows[SubstanceUse].append(SubstanceUse(
                    patient=patient, entered_by=user, source=Source.PATIENT, entered_at=evening,
                    diary=diary, at=evening - dt.timedelta(hours=1), name=name, detail=detail))

    return Habits(day_mg, withdrawal, depression, drinking)


def side_effects(b: Builder, i: int, rng: np.random.Generator, sex: str, d: int, level: float,
                 biggest_g: float, w: float) -> dict[str, int]:
    """One side-effect checklist: common effects by dose, the special patients' symptoms."""
    late = d >= b.days * 0.5
    high = level > 200 or biggest_g >= 5.0  # Grundmann 2017: GI effects at >= 5 g per dose
    p = {"reduced-sex-drive": 0.06 + 0.1 * (level > 250), "sexual-dysfunction": 0.05,
         "breast-enlargement-tenderness": 0.01, "nipple-discharge": 0.005,
         "menstrual-change": 0.08 if sex == "female" else 0.0,
         "constipation": 0.15 + 0.25 * high, "nausea": 0.04 + 0.25 * high, "itching": 0.05,
         "insomnia": 0.08 + 0.35 * w, "dark-urine-yellow-eyes": 0.0, "seizure": 0.0}
    if i == SPECIAL_PREGNANT:
        p["menstrual-change"] = 0.0  # pregnant: not applicable, answered "no"
    items = {k: int(rng.random() < v) for k, v in p.items()}
    if i == SPECIAL_PROLACTIN_40_60 and late:
        items["reduced-sex-drive"] = 1
        items["sexual-dysfunction"] = int(rng.random() < 0.5)
    if i == SPECIAL_MALE_BREAST and late:
        items["breast-enlargement-tenderness"] = 1
    if i == SPECIAL_PROLACTIN_OVER_100:
        items["menstrual-change"] = 1
        items["nipple-discharge"] = int(late)
    if i == SPECIAL_LIVER and d >= b.days - 6:
        items["dark-urine-yellow-eyes"] = 1
        items["itching"] = 1
        items["nausea"] = 1
    if sex == "male":
        items["menstrual-change"] = 0
    return items
