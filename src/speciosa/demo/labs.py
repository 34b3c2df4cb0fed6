"""Laboratory results of the demo patients: prolactin (the planted model, in ng/mL or m[IU]/L
by site), the liver panel, and sometimes testosterone, TSH and creatinine; one patient's
liver injury and the prolactin exceptions are set here."""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from speciosa.clinic import services
from speciosa.clinic.models import LabResult, Patient, Source
from speciosa.knowledge import labs as klabs

from . import notes
from .common import dec, local_time
from .people import (
    SITES,
    SPECIAL_LIVER,
    SPECIAL_MALE_BREAST,
    SPECIAL_PREGNANT,
    SPECIAL_PROLACTIN_40_60,
    SPECIAL_PROLACTIN_OVER_100,
)
from .planted import (
    PLANTED_PROLACTIN_LOG_SLOPE_PER_100MG,
    PROLACTIN_BASELINE_MEDIAN_NG_PER_ML,
    PROLACTIN_BETWEEN_PATIENT_SD_LOG,
    PROLACTIN_WITHIN_PATIENT_SD_LOG,
    recorded_exposure_mg_per_day,
)

if TYPE_CHECKING:
    from .builder import Builder

#: Conversion for the laboratory that reports m[IU]/L (WHO IS 84/500; section 6.2).
PROLACTIN_MIU_PER_NG = float(klabs.PROLACTIN_MIU_PER_NG)
#: Bilirubin: 1 mg/dL = 17.1 umol/L.
BILIRUBIN_UMOL_PER_MG_DL = float(klabs.BILIRUBIN_UMOL_PER_MG_DL)

# Lab codes and units as catalogued in speciosa.knowledge.labs.
LAB_PROLACTIN = "prolactin"
LAB_ALT = "alt"
LAB_AST = "ast"
LAB_BILIRUBIN = "bilirubin"
LAB_TESTOSTERONE = "testosterone"
LAB_TSH = "tsh"
LAB_CREATININE = "creatinine"
UNIT_PROLACTIN_MASS = "ng/mL"
UNIT_PROLACTIN_IU = "m[IU]/L"
UNIT_ENZYME = "U/L"
UNIT_BILIRUBIN_MASS = "mg/dL"
UNIT_BILIRUBIN_SI = "umol/L"
UNIT_TESTOSTERONE = "ng/dL"
UNIT_TSH = "m[IU]/L"
UNIT_CREATININE = "mg/dL"
#: The tests the demo draws (looked up once per build).
LABS = (LAB_PROLACTIN, LAB_ALT, LAB_AST, LAB_BILIRUBIN, LAB_TESTOSTERONE, LAB_TSH, LAB_CREATININE)


def lab(b: Builder, patient: Patient, plan: dict[str, Any], clinician, at: dt.datetime, code: str,
        value: float, unit: str, places: int) -> LabResult:
    """One result as a clinician would type it: the value rounded to ``places`` decimals, its
    canonical value, reference range and flag from the same rules as a lab typed in."""
    meta = b.lab_meta[code]
    stored = dec(value, places)
    canonical = klabs.to_canonical(code, float(stored), unit)
    low, high = klabs.reference_range(code, plan["sex"]) or (None, None)
    # the pregnant patient is pregnant from her entry into care (people.py): every prolactin of
    # hers is taken in pregnancy (speciosa.clinic.pregnancy)
    state = ("pregnant" if plan["pregnant"] and code == "prolactin" else "")
    flag = services.lab_flag(code, float(stored), unit, canonical, (low, high), sex=plan["sex"],
                             pregnant=plan["pregnant"], breastfeeding=False, sample_state=state)
    row = LabResult(patient=patient, entered_by=clinician, source=Source.CLINICIAN,
                    entered_at=at + dt.timedelta(days=1, hours=2), lab=code,
                    loinc=klabs.loinc_for(code, unit) or "",
                    collected_at=at, value=stored, unit=unit, canonical_value=canonical,
                    canonical_unit=meta.canonical_unit, reference_low=low, reference_high=high,
                    reference_source=LabResult.RangeSource.CATALOGUE if (low, high) != (None, None)
                    else "", flag=flag, sample_state=state,
                    sample_state_basis="status" if state else "",
                    sample_state_note=(f"Taken in pregnancy (recorded from "
                                       f"{plan['in_care_since'].day} "
                                       f"{plan['in_care_since']:%b %Y}): the non-pregnant "
                                       "range does not apply." if state else ""))
    b.rows[LabResult].append(row)
    return row


def draws(b: Builder, i: int, patient: Patient, plan: dict[str, Any], clinician,
          rng: np.random.Generator, tz: ZoneInfo, day_mg: dict[dt.date, float]) -> None:
    """The patient's blood draws every 4-8 weeks, each with its results and notes."""
    days, sex = b.days, plan["sex"]
    _name, _tz, _prefix, prl_unit, bili_unit = SITES[plan["site"]]
    male = sex == "male"
    baseline = PROLACTIN_BASELINE_MEDIAN_NG_PER_ML[sex] * math.exp(
        PROLACTIN_BETWEEN_PATIENT_SD_LOG * float(rng.normal()))
    alt0 = float(rng.lognormal(math.log(26 if male else 18), 0.25))
    ast0 = float(rng.lognormal(math.log(23 if male else 20), 0.2))
    bili0 = float(rng.lognormal(math.log(0.6), 0.3))
    testo0 = float(rng.lognormal(math.log(520), 0.25))
    tsh0 = float(rng.lognormal(math.log(1.7), 0.4))
    crea0 = float(rng.lognormal(math.log(0.95 if male else 0.75), 0.12))
    draws = []
    d = int(rng.integers(1, 5))
    while d <= days - 2:
        draws.append(d)
        d += int(rng.integers(28, 57))
    if i == SPECIAL_LIVER:
        draws = [x for x in draws if x < days - 12] + [days - 5]
    if i in (SPECIAL_MALE_BREAST, SPECIAL_PROLACTIN_40_60, SPECIAL_PROLACTIN_OVER_100) and all(
            x < days - 14 for x in draws):
        draws.append(b.weekday(days - 13))
    for n, d in enumerate(draws):
        day = b.day(d)
        at = local_time(day, rng.uniform(7.5 * 60, 10 * 60), tz)
        if i == SPECIAL_PREGNANT:
            pass  # no prolactin in pregnancy (Endocrine Society 2011)
        else:
            exposure = recorded_exposure_mg_per_day(day_mg, day)
            eps = PROLACTIN_WITHIN_PATIENT_SD_LOG * float(rng.normal())
            prl = baseline * math.exp(PLANTED_PROLACTIN_LOG_SLOPE_PER_100MG * exposure / 100.0 + eps)
            if i == SPECIAL_PROLACTIN_40_60 and d >= 0.3 * days:
                prl = float(rng.uniform(42.0, 58.0))
            if i == SPECIAL_PROLACTIN_OVER_100:
                prl = float(rng.uniform(110.0, 160.0))
            if prl_unit == UNIT_PROLACTIN_IU:
                row = lab(b, patient, plan, clinician, at, LAB_PROLACTIN,
                          prl * PROLACTIN_MIU_PER_NG, prl_unit, 0)
            else:
                row = lab(b, patient, plan, clinician, at, LAB_PROLACTIN, prl, prl_unit, 1)
            if row.flag not in ("", "normal") and n == len(draws) - 1 or (
                    i in (SPECIAL_PROLACTIN_40_60, SPECIAL_PROLACTIN_OVER_100)
                    and n == len(draws) - 1):
                notes.add(b, patient, clinician, at + dt.timedelta(days=1, hours=3),
                          notes.prolactin_note(i, row))
        liver = 1.0
        if i == SPECIAL_LIVER and d >= days - 6:
            liver = 0.0
        alt = alt0 * math.exp(0.12 * float(rng.normal()))
        ast = ast0 * math.exp(0.12 * float(rng.normal()))
        bili = bili0 * math.exp(0.15 * float(rng.normal()))
        if liver == 0.0:
            alt_uln = (klabs.reference_range(LAB_ALT, sex) or (None, 40.0))[1] or 40.0
            ast_uln = (klabs.reference_range(LAB_AST, sex) or (None, 40.0))[1] or 40.0
            alt, ast, bili = 4.4 * alt_uln, 2.9 * ast_uln, 2.7
        lab(b, patient, plan, clinician, at, LAB_ALT, alt, UNIT_ENZYME, 0)
        lab(b, patient, plan, clinician, at, LAB_AST, ast, UNIT_ENZYME, 0)
        if bili_unit == UNIT_BILIRUBIN_SI:
            lab(b, patient, plan, clinician, at, LAB_BILIRUBIN,
                bili * BILIRUBIN_UMOL_PER_MG_DL, bili_unit, 0)
        else:
            lab(b, patient, plan, clinician, at, LAB_BILIRUBIN, bili, bili_unit, 1)
        if liver == 0.0:
            notes.add(b, patient, clinician, at + dt.timedelta(days=1, hours=3),
                      "ALT more than three times the upper limit with raised bilirubin; "
                      "reports dark urine and itching. Intake doubled about five weeks ago "
                      "(kratom liver injury typically appears 1-7 weeks after starting or "
                      "increasing). Advised to stop kratom with withdrawal support; hepatitis "
                      "serology and ultrasound requested; repeat liver tests in one week.")
        if male and (rng.random() < 0.35 or i == SPECIAL_MALE_BREAST):
            lab(b, patient, plan, clinician, at, LAB_TESTOSTERONE,
                testo0 * math.exp(0.15 * float(rng.normal())), UNIT_TESTOSTERONE, 0)
        if rng.random() < 0.2 or i in (SPECIAL_MALE_BREAST, SPECIAL_PROLACTIN_OVER_100):
            lab(b, patient, plan, clinician, at, LAB_TSH,
                tsh0 * math.exp(0.2 * float(rng.normal())), UNIT_TSH, 2)
        if rng.random() < 0.3 or i == SPECIAL_PROLACTIN_OVER_100:
            lab(b, patient, plan, clinician, at, LAB_CREATININE,
                crea0 * math.exp(0.06 * float(rng.normal())), UNIT_CREATININE, 2)
