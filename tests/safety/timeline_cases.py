"""Seeded generator of varied patient timelines (the JSON format of ``docs/timeline.md``),
shared by the golden test of ``speciosa evaluate`` and the registry's window test.

Every rule's inputs appear on both sides of their thresholds: doses in every unit,
instruments by items and by total, labs in every unit with and without the laboratory's
range, medications and substances by generic name, pregnancy, diary gaps.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

CASES = 400
END = date(2025, 6, 30)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Bangkok")

# Names the drug lists knew before the drug table (generic names, class words), and names
# they did not know; brand names and 7-OH are new matches, tested in tests/knowledge.
MEDICATIONS = (
    "oxycodone 5 mg tablets", "Methadone", "buprenorphine", "fentanyl", "tramadol 50 mg",
    "codeine", "morphine", "hydromorphone", "tapentadol", "alprazolam 0.25 mg", "diazepam",
    "clonazepam", "lorazepam", "midazolam", "triazolam", "temazepam", "zolpidem", "gabapentin",
    "pregabalin 75 mg", "phenobarbital", "simvastatin 40 mg", "quetiapine", "tacrolimus",
    "sildenafil", "ciclosporin", "everolimus", "risperidone 2 mg", "sertraline 50 mg",
    "metoclopramide", "haloperidol", "omeprazole 20 mg", "ibuprofen", "paracetamol",
    "aripiprazole", "naltrexone", "levothyroxine", "estradiol", "amitriptyline",
)  # fmt: skip
SUBSTANCES = (
    "alcohol", "beer", "wine", "heroin", "cannabis", "benzodiazepine", "benzos", "opioids",
    "alprazolam", "cocaine", "etizolam", "o-desmethyltramadol", "fentanyl", "nicotine",
)  # fmt: skip
SIDE_EFFECTS = (
    "reduced-sex-drive", "sexual-dysfunction", "breast-enlargement-tenderness",
    "nipple-discharge", "menstrual-change", "constipation", "nausea", "itching", "insomnia",
    "dark-urine-yellow-eyes", "seizure",
)  # fmt: skip
COWS_ITEMS = ("pulse", "sweating", "restlessness", "pupil", "bone-joint-aches",
              "runny-nose-tearing", "gi-upset", "tremor", "yawning", "anxiety-irritability",
              "gooseflesh")
COWS_VALUES = {"pulse": (0, 1, 2, 4), "sweating": (0, 1, 2, 3, 4), "restlessness": (0, 1, 3, 5),
               "pupil": (0, 1, 2, 5), "bone-joint-aches": (0, 1, 2, 4),
               "runny-nose-tearing": (0, 1, 2, 4), "gi-upset": (0, 1, 2, 3, 5),
               "tremor": (0, 1, 2, 4), "yawning": (0, 1, 2, 4),
               "anxiety-irritability": (0, 1, 2, 4), "gooseflesh": (0, 3, 5)}
PHQ9_ITEMS = ("interest", "mood", "sleep", "energy", "appetite", "self-worth", "concentration",
              "psychomotor", "self-harm")
SETTINGS_OVERRIDE = ["--set", "prolactin_rise_fraction=0.25", "--set", "co_use_lookback_days=60",
                     "--set", "diary_gap_days=4", "--set", "withdrawal_recent_days=7",
                     "--set", "liver_aminotransferase_uln_multiple=2", "--set",
                     "kratom_current_use_days=30", "--set", "sows_baseline_days=14"]


def _at(rng: random.Random, days_ago: int, hour: int | None = None) -> str:
    day = END - timedelta(days=days_ago)
    h = rng.randrange(24) if hour is None else hour
    return f"{day.isoformat()}T{h:02d}:{rng.randrange(60):02d}:00"


def _doses(rng: random.Random) -> list[dict]:
    pattern = rng.choice(("none", "recent", "regular", "escalating", "old", "mixed"))
    if pattern == "none":
        return []
    out = []
    first, last = {"recent": (4, 0), "regular": (60, 0), "escalating": (40, 0), "old": (120, 60),
                   "mixed": (45, 1)}[pattern]
    unit = rng.choice(("g", "g", "capsule", "glass", "mg_extract", "mg_mitragynine"))
    facts: dict = {}
    if unit == "g" and rng.random() < 0.6:
        facts["mitragynine_percent"] = rng.choice((1.2, 1.6, 2.0))
    if unit == "capsule" and rng.random() < 0.7:
        facts["grams_per_capsule"] = rng.choice((0.5, 0.75))
    if unit == "mg_extract" and rng.random() < 0.7:
        facts["mitragynine_percent"] = rng.choice((20.0, 45.0))
    if rng.random() < 0.3:
        facts["product"] = rng.choice(("Red Bali", "Green Maeng Da"))
    for d in range(first, last - 1, -1):
        if rng.random() < (0.9 if pattern in ("regular", "escalating") else 0.5):
            for _ in range(rng.choice((1, 1, 2, 3))):
                amount = {"g": 3.0, "capsule": 4.0, "glass": 1.0, "mg_extract": 200.0,
                          "mg_mitragynine": 40.0}[unit]
                if pattern == "escalating" and d < 14:
                    amount *= rng.choice((1.3, 1.6, 2.2))
                row = {"taken_at": _at(rng, d), "amount": round(amount * rng.uniform(0.8, 1.2), 2),
                       "unit": unit, **facts}
                if pattern == "mixed" and rng.random() < 0.3:
                    row = {"taken_at": _at(rng, d), "amount": 2.0, "unit": "g"}
                out.append(row)
    return out


def _assessments(rng: random.Random) -> list[dict]:
    out = []
    for _ in range(rng.randrange(4)):  # COWS by items or by total
        days = rng.choice((0, 1, 2, 3, 5, 10))
        if rng.random() < 0.5:
            out.append({"instrument": "cows", "at": _at(rng, days),
                        "items": {i: rng.choice(COWS_VALUES[i]) for i in COWS_ITEMS}})
        else:
            out.append({"instrument": "cows", "at": _at(rng, days),
                        "total": rng.choice((4, 12, 13, 20, 24, 25, 30, 40))})
    for _ in range(rng.randrange(6)):  # SOWS totals: rises against a baseline
        out.append({"instrument": "sows", "at": _at(rng, rng.choice((0, 1, 2, 5, 10, 20, 27, 40))),
                    "total": rng.choice((2, 5, 9, 12, 15, 20, 30, 45))})
    for _ in range(rng.randrange(3)):  # PHQ-9 by items (item 9) or total only
        days = rng.choice((0, 3, 10, 13, 14, 20))
        if rng.random() < 0.7:
            items = {i: rng.choice((0, 0, 1, 2, 3)) for i in PHQ9_ITEMS}
            if rng.random() < 0.2:
                del items["mood"]
            out.append({"instrument": "phq9", "at": _at(rng, days), "items": items})
        else:
            out.append({"instrument": "phq9", "at": _at(rng, days), "total": rng.randrange(28)})
    if rng.random() < 0.5:  # AUDIT-C (sex-specific cut-off)
        days = rng.choice((10, 200, 364, 400))
        if rng.random() < 0.5:
            out.append({"instrument": "audit-c", "at": _at(rng, days),
                        "items": {"frequency": rng.randrange(5), "typical-quantity": rng.randrange(5),
                                  "heavy-episodes": rng.randrange(5)}})
        else:
            out.append({"instrument": "audit-c", "at": _at(rng, days), "total": rng.randrange(13)})
    if rng.random() < 0.2:  # an instrument no rule reads
        out.append({"instrument": "craving-nrs", "at": _at(rng, 1), "items": {"craving": 7}})
    return out


def _labs(rng: random.Random) -> list[dict]:
    out = []
    for _ in range(rng.randrange(4)):  # prolactin in every unit, with or without a range
        unit = rng.choice(("ng/mL", "ng/mL", "ug/L", "mIU/L"))
        ng = rng.choice((6.0, 9.1, 14.0, 15.2, 16.0, 20.0, 24.0, 31.0, 45.0, 99.0, 120.0, 260.0))
        value = round(ng * 21.2, 1) if unit == "mIU/L" else ng
        row = {"lab": "prolactin", "at": _at(rng, rng.choice((3, 20, 80, 200, 364, 400, 700)), 8),
               "value": value, "unit": unit}
        if rng.random() < 0.3:
            row["reference_low"], row["reference_high"] = (
                (85.0, 320.0) if unit == "mIU/L" else (4.0, 15.2))
        out.append(row)
    for code, values in (("alt", (20.0, 48.0, 110.0, 150.0, 400.0)),
                         ("ast", (25.0, 90.0, 130.0)), ("bilirubin", (0.6, 2.0, 2.6, 4.0))):
        if rng.random() < 0.4:
            value = rng.choice(values)
            unit = "U/L" if code != "bilirubin" else "mg/dL"
            if code == "bilirubin" and rng.random() < 0.4:
                value, unit = round(value * 17.1, 1), "umol/L"
            if code != "bilirubin" and rng.random() < 0.3:
                value, unit = round(value / 60.0, 3), "ukat/L"
            row = {"lab": code, "at": _at(rng, rng.choice((2, 30, 89, 120)), 8), "value": value,
                   "unit": unit}
            if rng.random() < 0.2 and unit == "U/L":
                row["reference_high"] = 40.0
            out.append(row)
    if rng.random() < 0.25:
        if rng.random() < 0.5:
            out.append({"lab": "hcg", "at": _at(rng, rng.choice((10, 100, 300)), 8),
                        "result": rng.choice(("positive", "negative"))})
        else:
            out.append({"lab": "hcg", "at": _at(rng, 10, 8), "value": rng.choice((2.0, 900.0)),
                        "unit": "m[IU]/mL", "reference_high": 5.0})
    for code in ("uds-opioids", "uds-benzodiazepines", "uds-fentanyl", "uds-alcohol",
                 "uds-mitragynine"):
        if rng.random() < 0.15:
            out.append({"lab": code, "at": _at(rng, rng.choice((5, 29, 45)), 8),
                        "result": rng.choice(("positive", "negative"))})
    return out


def case(seed: int) -> dict:
    """The timeline of one generated case (JSON, as ``speciosa evaluate`` reads it)."""
    rng = random.Random(seed)
    patient = {"sex": rng.choice(("female", "male", None)), "birth_date": "1985-02-11"}
    if patient["sex"] == "female" and rng.random() < 0.15:
        patient["pregnant"] = True
    if patient["sex"] == "female" and rng.random() < 0.1:
        patient["breastfeeding"] = True
    meds = []
    for _ in range(rng.randrange(4)):
        start = END - timedelta(days=rng.choice((10, 60, 400)))
        end = rng.choice((None, None, END - timedelta(days=5), END + timedelta(days=30)))
        meds.append({"name": rng.choice(MEDICATIONS), "start": start.isoformat(),
                     "end": end.isoformat() if end else None})
    substances = [{"name": rng.choice(SUBSTANCES), "at": _at(rng, rng.choice((1, 20, 31, 50)))}
                  for _ in range(rng.randrange(3))]
    side_effects = [{"code": rng.choice(SIDE_EFFECTS), "at": _at(rng, rng.choice((1, 13, 29, 60, 95)))}
                    for _ in range(rng.randrange(4))]
    gap = rng.choice((0, 1, 6, 7, 9, 30, 80))
    density = rng.choice((0.5, 0.75, 0.95))
    diary = sorted({(END - timedelta(days=d)).isoformat() for d in range(gap, gap + 60)
                    if rng.random() < density})
    out = {"tz": rng.choice(ZONES), "patient": patient, "doses": _doses(rng),
           "assessments": _assessments(rng), "labs": _labs(rng), "side_effects": side_effects,
           "medications": meds, "substances": substances, "diary_days": diary}
    # inputs added by issue 13, from their own generator so the earlier draws stay the same
    extra = random.Random(f"issue-13-{seed}")
    for _ in range(extra.randrange(3)):  # GAD-7 totals on both sides of the severe band
        out["assessments"].append({"instrument": "gad7",
                                   "at": _at(extra, extra.choice((0, 3, 13, 14, 20))),
                                   "total": extra.choice((4, 10, 14, 15, 21))})
    if extra.random() < 0.3:  # a 7-OH product reported, inside or outside the window
        out["substances"].append({"name": extra.choice(("7-OH", "7oh tablets", "kratom")),
                                  "at": _at(extra, extra.choice((1, 20, 45)))})
    # urine drug test panels (issue 19), from their own generator too
    panels = random.Random(f"issue-19-{seed}")
    if panels.random() < 0.3:
        at = _at(panels, panels.choice((2, 15, 40)), 9)
        invalid = panels.random() < 0.2
        for code, result in (("uds-buprenorphine", panels.choice(("positive", "negative"))),
                             ("uds-norbuprenorphine", panels.choice(("positive", "negative"))),
                             ("uds-mitragynine", panels.choice(("positive", "negative")))):
            out["labs"].append({"lab": code, "at": at, "result": result, "panel": 1,
                                "specimen_invalid": invalid})
    return out


def as_ofs(timeline_json: dict) -> list[datetime]:
    tz = ZoneInfo(timeline_json["tz"])
    return [datetime(2025, 6, 30, 18, 0, tzinfo=tz), datetime(2025, 6, 30, 0, 30, tzinfo=tz),
            datetime(2025, 6, 12, 9, 0, tzinfo=tz)]
