"""From a logged kratom dose to milligrams of mitragynine, with the uncertainty of the estimate.

Rules (units in :data:`UNITS`):

* ``g`` -- grams of leaf powder x mitragynine fraction. The fraction comes from the product
  label or the patient's entry (``mitragynine_percent``); otherwise the default 1.5 % w/w
  with range 1.0-2.0 % is assumed [1]_ (Tanna 2022 product 1.95 % [2]_, Huestis 2024
  product 1.33 % [3]_) and the dose is flagged ``assumed_potency``.
* ``capsule`` -- capsules x ``grams_per_capsule`` (required: never guessed) x fraction, as
  for ``g``.
* ``glass`` -- glasses of kratom tea/juice x 79 mg mitragynine per glass (Singh et al.
  2014 [4]_). The range applies the same relative uncertainty as leaf potency
  (1.0/1.5 to 2.0/1.5, i.e. 52.7-105.3 mg); a percent given for tea is ignored.
* ``mg_extract`` -- milligrams of extract x labelled mitragynine percent (required: extracts
  range 1.4-27 % mitragynine [1]_, too wide to assume).
* ``mg_mitragynine`` -- milligrams of mitragynine as entered.

A dose that cannot be converted raises :class:`DoseConversionError` with what to fix;
:func:`convert_all` reports such doses by index instead of dropping them.

References
----------
.. [1] Project pharmacology reference, section 2 ("Software default" for plain leaf:
   about 1.0-2.0 % w/w).
.. [2] Tanna RS et al. Pharmaceutics 2022;14(3):620 (``tanna-2022``).
.. [3] Huestis MA et al. Molecules 2024;29(5):984 (``huestis-2024``).
.. [4] Singh D, Mueller CP, Vicknasingam BK. Drug Alcohol Depend 2014;139:132-137
   (``singh-2014``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

from speciosa.pharmacology.model import Parameter

__all__ = [
    "DEFAULT_LEAF_PERCENT",
    "DEFAULT_LEAF_PERCENT_HIGH",
    "DEFAULT_LEAF_PERCENT_LOW",
    "DOSE_PARAMETERS",
    "MG_PER_GLASS",
    "UNITS",
    "Dose",
    "DoseConversionError",
    "MitragynineDose",
    "convert_all",
    "daily_mitragynine_mg",
    "to_mitragynine",
]

UNITS: tuple[str, ...] = ("g", "capsule", "glass", "mg_extract", "mg_mitragynine")

DEFAULT_LEAF_PERCENT = Parameter(
    "leaf_mitragynine_percent", 1.5, "% w/w", "tanna-2022; huestis-2024",
    "DEFAULT for plain leaf without a label: midpoint of the 1.0-2.0 % software default "
    "(Tanna product 1.95 %, Huestis product 1.33 %).",
)
DEFAULT_LEAF_PERCENT_LOW = Parameter(
    "leaf_mitragynine_percent_low", 1.0, "% w/w", "huestis-2024",
    "Lower end of the default range.",
)
DEFAULT_LEAF_PERCENT_HIGH = Parameter(
    "leaf_mitragynine_percent_high", 2.0, "% w/w", "tanna-2022",
    "Upper end of the default range.",
)
MG_PER_GLASS = Parameter(
    "mg_mitragynine_per_glass", 79.0, "mg/glass", "singh-2014",
    "Malaysian regular users of kratom tea/juice; range taken as the leaf-potency range "
    "relative to its midpoint (x 2/3 to x 4/3).",
)
DOSE_PARAMETERS: tuple[Parameter, ...] = (
    DEFAULT_LEAF_PERCENT, DEFAULT_LEAF_PERCENT_LOW, DEFAULT_LEAF_PERCENT_HIGH, MG_PER_GLASS,
)


class DoseConversionError(ValueError):
    """A dose that cannot be turned into mitragynine; the message says what to fix."""


@dataclass(frozen=True)
class Dose:
    """One logged dose, as the patient or clinician entered it.

    Attributes
    ----------
    taken_at : datetime
        When it was taken (timezone-aware).
    amount : float
        Number of ``unit``.
    unit : str
        One of :data:`UNITS`.
    mitragynine_percent : float, optional
        Mitragynine content of the leaf or extract, % w/w (label or patient entry).
    grams_per_capsule : float, optional
        Leaf powder per capsule, g.
    product : str, optional
        Product name, for display.
    """

    taken_at: datetime
    amount: float
    unit: str
    mitragynine_percent: float | None = None
    grams_per_capsule: float | None = None
    product: str | None = None


@dataclass(frozen=True)
class MitragynineDose:
    """A dose converted to mitragynine.

    Attributes
    ----------
    taken_at : datetime
    mg : float
        Best estimate of mitragynine, mg.
    mg_low, mg_high : float
        Range from potency uncertainty (equal to ``mg`` when the content is labelled).
    assumed_potency : bool
        True when a default content was assumed.
    basis : str
        Human-readable derivation, e.g. ``"5 g leaf × 1.5 % (default, range 1.0–2.0 %)"``.
    """

    taken_at: datetime
    mg: float
    mg_low: float
    mg_high: float
    assumed_potency: bool
    basis: str


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _positive_optional(value: float | None, what: str) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DoseConversionError(f"{what} must be a number") from None
    if not math.isfinite(v) or v <= 0:
        raise DoseConversionError(f"{what} must be greater than 0")
    return v


def _leaf(grams: float, percent: float | None, what: str) -> tuple[float, float, float, bool, str]:
    if percent is not None:
        if percent > 100:
            raise DoseConversionError("mitragynine percent must be at most 100")
        mg = grams * 1000.0 * percent / 100.0
        return mg, mg, mg, False, f"{what} × {_fmt(percent)} % (label or entry)"
    p, lo, hi = (DEFAULT_LEAF_PERCENT.value, DEFAULT_LEAF_PERCENT_LOW.value,
                 DEFAULT_LEAF_PERCENT_HIGH.value)
    return (grams * 10.0 * p, grams * 10.0 * lo, grams * 10.0 * hi, True,
            f"{what} × {_fmt(p)} % (default, range {lo:.1f}–{hi:.1f} %)")


def to_mitragynine(dose: Dose) -> MitragynineDose:
    """Convert one dose to mg mitragynine (see the module docstring for the rules).

    Raises
    ------
    DoseConversionError
        Naive or missing time, unknown unit, negative or non-numeric amount, missing
        grams per capsule or extract percent, percent outside (0, 100].
    """
    t = dose.taken_at
    if not isinstance(t, datetime):
        raise DoseConversionError("dose time must be a date and time")
    if t.tzinfo is None or t.utcoffset() is None:
        raise DoseConversionError("dose time needs a timezone offset")
    if dose.unit not in UNITS:
        raise DoseConversionError(
            f"unknown unit {dose.unit!r}; use one of {', '.join(UNITS)}")
    try:
        amount = float(dose.amount)
    except (TypeError, ValueError):
        raise DoseConversionError("amount must be a number") from None
    if not math.isfinite(amount):
        raise DoseConversionError("amount must be a finite number")
    if amount < 0:
        raise DoseConversionError("amount must not be negative")
    percent = _positive_optional(dose.mitragynine_percent, "mitragynine percent")
    gpc = _positive_optional(dose.grams_per_capsule, "grams per capsule")
    a = _fmt(amount)
    if dose.unit == "g":
        mg, lo, hi, assumed, basis = _leaf(amount, percent, f"{a} g leaf")
    elif dose.unit == "capsule":
        if gpc is None:
            raise DoseConversionError("capsule dose needs grams per capsule")
        mg, lo, hi, assumed, basis = _leaf(
            amount * gpc, percent, f"{a} capsule × {_fmt(gpc)} g")
    elif dose.unit == "glass":
        g = MG_PER_GLASS.value
        r_lo = DEFAULT_LEAF_PERCENT_LOW.value / DEFAULT_LEAF_PERCENT.value
        r_hi = DEFAULT_LEAF_PERCENT_HIGH.value / DEFAULT_LEAF_PERCENT.value
        mg, lo, hi, assumed = amount * g, amount * g * r_lo, amount * g * r_hi, True
        basis = (f"{a} glass × {_fmt(g)} mg (Singh 2014, range "
                 f"{g * r_lo:.1f}–{g * r_hi:.1f} mg)")
    elif dose.unit == "mg_extract":
        if percent is None:
            raise DoseConversionError("extract dose needs the labelled mitragynine percent")
        if percent > 100:
            raise DoseConversionError("mitragynine percent must be at most 100")
        mg = amount * percent / 100.0
        lo, hi, assumed = mg, mg, False
        basis = f"{a} mg extract × {_fmt(percent)} % (label)"
    else:  # mg_mitragynine
        mg = lo = hi = amount
        assumed = False
        basis = f"{a} mg mitragynine"
    return MitragynineDose(t, mg, lo, hi, assumed, basis)


def convert_all(
    doses: Iterable[Dose],
) -> tuple[list[MitragynineDose], list[tuple[int, str]]]:
    """Convert every dose; return the converted ones and ``(index, reason)`` for the rest."""
    ok: list[MitragynineDose] = []
    bad: list[tuple[int, str]] = []
    for i, d in enumerate(doses):
        try:
            ok.append(to_mitragynine(d))
        except DoseConversionError as exc:
            bad.append((i, str(exc)))
    return ok, bad


def daily_mitragynine_mg(doses: Sequence[Dose], tz: tzinfo) -> dict[date, float]:
    """Typical mitragynine (mg) per calendar day in ``tz``; unconvertible doses are skipped.

    Callers that must not skip doses silently should use :func:`convert_all` and show its
    second result. Days are in ascending order.
    """
    ok, _ = convert_all(doses)
    out: dict[date, float] = {}
    for d in sorted(ok, key=lambda x: x.taken_at):
        day = d.taken_at.astimezone(tz).date()
        out[day] = out.get(day, 0.0) + d.mg
    return out
