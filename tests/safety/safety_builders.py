"""Small builders for safety-rule tests (imported by the test modules in this folder)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from speciosa.pharmacology.doses import Dose
from speciosa.safety import (
    Assessment,
    Finding,
    LabResult,
    Medication,
    Patient,
    SideEffect,
    Substance,
    Timeline,
)

TZ = ZoneInfo("Europe/Berlin")
AS_OF = datetime(2025, 6, 30, 12, 0, tzinfo=TZ)
TODAY = AS_OF.date()


def ago(days: float, hour: int = 9) -> datetime:
    """A time ``days`` calendar days before AS_OF, at ``hour`` local time."""
    day = TODAY - timedelta(days=int(days))
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ)


def day_ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def daily_doses(first_days_ago: int, last_days_ago: int, amount: float, unit: str = "g",
                per_day: int = 1, **kwargs) -> list[Dose]:
    """One or more doses a day from ``first_days_ago`` to ``last_days_ago`` (inclusive)."""
    out = []
    for d in range(first_days_ago, last_days_ago - 1, -1):
        for k in range(per_day):
            out.append(Dose(taken_at=ago(d, 8 + 4 * k), amount=amount, unit=unit, **kwargs))
    return out


def prolactin(value: float, days: int = 5, unit: str = "ng/mL", **kwargs) -> LabResult:
    return LabResult("prolactin", ago(days), value, unit, **kwargs)


def lab(code: str, value: float | None, unit: str | None, days: int = 5, **kwargs) -> LabResult:
    return LabResult(code, ago(days), value, unit, **kwargs)


def cows(total: int, days: int = 1) -> Assessment:
    return Assessment("cows", ago(days), None, total)


def sows(total: int, days: int) -> Assessment:
    return Assessment("sows", ago(days), None, total)


PHQ9_ZERO = {"interest": 1, "mood": 1, "sleep": 2, "energy": 1, "appetite": 0,
             "self-worth": 1, "concentration": 0, "psychomotor": 0, "self-harm": 0}


def phq9(self_harm: int, days: int = 2) -> Assessment:
    return Assessment("phq9", ago(days), {**PHQ9_ZERO, "self-harm": self_harm}, None)


def audit_c(frequency: int, quantity: int, heavy: int, days: int = 30) -> Assessment:
    items = {"frequency": frequency, "typical-quantity": quantity, "heavy-episodes": heavy}
    return Assessment("audit-c", ago(days), items, None)


def side_effect(code: str, days: int) -> SideEffect:
    return SideEffect(ago(days), code)


def medication(name: str, start_days_ago: int = 60, end_days_ago: int | None = None) -> Medication:
    end = None if end_days_ago is None else day_ago(end_days_ago)
    return Medication(name, day_ago(start_days_ago), end)


def substance(name: str, days: int) -> Substance:
    return Substance(name, ago(days))


def timeline(sex: str | None = "male", pregnant: bool = False, breastfeeding: bool = False,
             **lists) -> Timeline:
    patient = Patient(sex, date(1985, 4, 2), pregnant=pregnant, breastfeeding=breastfeeding)
    return Timeline(patient=patient, tz=TZ, **{k: tuple(v) for k, v in lists.items()})


def by_topic(findings: list[Finding], topic: str) -> Finding | None:
    hits = [f for f in findings if f.topic == topic]
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


def topics(findings: list[Finding]) -> set[str]:
    return {f.topic for f in findings}
