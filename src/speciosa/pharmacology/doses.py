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
* ``mg_7oh`` -- milligrams of 7-hydroxymitragynine (7-OH) from a 7-OH product's label. It is
  kratom use, but it is **not converted**: the exposure model follows mitragynine and forms
  7-OH from it (:mod:`speciosa.pharmacology.model`); it does not model 7-OH taken directly,
  so such a dose is reported as not converted (:data:`SEVEN_OH_NOT_MODELLED`), never fed in
  as mitragynine.

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

import numpy as np
from numpy.typing import ArrayLike, NDArray

from speciosa.pharmacology.model import Parameter

__all__ = [
    "DEFAULT_LEAF_PERCENT",
    "DEFAULT_LEAF_PERCENT_HIGH",
    "DEFAULT_LEAF_PERCENT_LOW",
    "DOSE_PARAMETERS",
    "MG_PER_GLASS",
    "PLAUSIBLE_PER_DOSE",
    "PROBLEMS",
    "SEVEN_OH_NOT_MODELLED",
    "SEVEN_OH_UNIT",
    "UNITS",
    "Dose",
    "DoseArrays",
    "DoseConversionError",
    "PlausibleLimit",
    "MitragynineDose",
    "amount_in_unit",
    "convert_all",
    "convert_arrays",
    "daily_mitragynine_mg",
    "to_mitragynine",
    "unit_codes",
]

UNITS: tuple[str, ...] = ("g", "capsule", "glass", "mg_extract", "mg_mitragynine", "mg_7oh")

#: The unit of a dose of a 7-hydroxymitragynine product (mg 7-OH, from the label).
SEVEN_OH_UNIT = "mg_7oh"

#: Why a ``mg_7oh`` dose is not converted (also :data:`PROBLEMS` entry 9).
SEVEN_OH_NOT_MODELLED = (
    "a 7-hydroxymitragynine (7-OH) product dose is not included: the exposure model covers "
    "mitragynine and the 7-OH formed from it, not 7-OH taken directly"
)

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


@dataclass(frozen=True)
class PlausibleLimit:
    """The largest amount of one dose in a unit that is taken without asking "is this right?".

    Not a clinical limit and never advice on how much to take: a check against typing errors
    (10000 instead of 10) that asks the person to confirm an amount far above what people
    report. ``citations`` are evidence registry ids; ``""`` marks a site convention.
    """

    unit: str
    amount: float
    citations: str
    reason: str


#: Per-dose plausibility limits by unit (overridden per clinic by the setting
#: ``DOSE_PLAUSIBLE_MAX``, ``SPECIOSA_DOSE_PLAUSIBLE_MAX="g=60,capsule=120"``).
PLAUSIBLE_PER_DOSE: dict[str, PlausibleLimit] = {limit.unit: limit for limit in (
    PlausibleLimit("g", 50.0, "garcia-romeu-2020; grundmann-2017; kiyokawa-2023",
                   "doses of 1-3 g are the most common (Garcia-Romeu 2020), 5 g or more a dose is "
                   "already at the high end (Grundmann 2017), and the heaviest users described "
                   "take about 35 g a day (Kiyokawa 2023)"),
    PlausibleLimit("capsule", 100.0, "",
                   "site convention: 100 capsules of about 0.5 g are 50 g of leaf, the leaf limit"),
    PlausibleLimit("glass", 10.0, "singh-2014; singh-2019-kratom-dependence",
                   "3 or more glasses a day already mark severe dependence (Singh 2014, 2019)"),
    PlausibleLimit("mg_extract", 5000.0, "", "site convention: 5 g of extract in one dose"),
    PlausibleLimit("mg_mitragynine", 1000.0, "singh-2014; leong-abdullah-2021-ecg",
                   "regular users' estimated average intake is 276.5-434 mg mitragynine a day "
                   "(Singh 2014; Leong Abdullah 2021)"),
    PlausibleLimit("mg_7oh", 200.0, "",
                   "site convention: 200 mg of 7-OH in one dose"),
)}


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


#: Why a dose could not be converted, by problem code (0: converted). The unknown-unit text
#: is formatted with the unit as given.
PROBLEMS: tuple[str, ...] = (
    "",
    "unknown unit {unit!r}; use one of " + ", ".join(UNITS),
    "amount must be a finite number",
    "amount must not be negative",
    "mitragynine percent must be greater than 0",
    "grams per capsule must be greater than 0",
    "capsule dose needs grams per capsule",
    "extract dose needs the labelled mitragynine percent",
    "mitragynine percent must be at most 100",
    SEVEN_OH_NOT_MODELLED,
)
_G, _CAPSULE, _GLASS, _EXTRACT, _MG, _MG_7OH = range(len(UNITS))


@dataclass(frozen=True)
class DoseArrays:
    """Doses converted in arrays by :func:`convert_arrays` (one element per dose).

    Attributes
    ----------
    mg, mg_low, mg_high : ndarray of float
        Best estimate and range, mg mitragynine; NaN where not converted.
    assumed_potency : ndarray of bool
    problem : ndarray of int8
        0 if converted, else an index into :data:`PROBLEMS`.
    """

    mg: NDArray
    mg_low: NDArray
    mg_high: NDArray
    assumed_potency: NDArray
    problem: NDArray

    def reason(self, i: int, unit: object = "") -> str:
        """The message for dose ``i`` (empty if it was converted)."""
        return PROBLEMS[int(self.problem[i])].format(unit=unit)


def unit_codes(units: ArrayLike) -> NDArray:
    """Index of each unit in :data:`UNITS` (int8), -1 for anything else."""
    u = np.asarray(units)
    out = np.full(u.shape, -1, dtype=np.int8)
    for code, name in enumerate(UNITS):
        out[u == name] = code
    return out


def convert_arrays(
    amount: ArrayLike,
    unit: ArrayLike,
    mitragynine_percent: ArrayLike | None = None,
    grams_per_capsule: ArrayLike | None = None,
) -> DoseArrays:
    """Convert many doses to mg mitragynine at once, by the rules of the module docstring.

    The one implementation of the rules: :func:`to_mitragynine` and :func:`convert_all` call
    it too. A dose it cannot convert gets a problem code (the first that applies, in the
    order :func:`to_mitragynine` checks) and NaN values; nothing is guessed.

    Parameters
    ----------
    amount : array_like of float
        Number of ``unit``.
    unit : array_like of str, or of int codes from :func:`unit_codes`
    mitragynine_percent, grams_per_capsule : array_like of float, optional
        NaN (or None) where not given.

    Returns
    -------
    DoseArrays
    """
    amt = np.asarray(amount, dtype=np.float64)
    u = np.asarray(unit)
    code = u.astype(np.int64) if u.dtype.kind in "iu" else unit_codes(u).astype(np.int64)
    code = np.broadcast_to(code, amt.shape)

    def optional(x: ArrayLike | None) -> NDArray:
        if x is None:
            return np.full(amt.shape, np.nan)
        return np.broadcast_to(np.asarray(x, dtype=np.float64), amt.shape)

    pct, gpc = optional(mitragynine_percent), optional(grams_per_capsule)
    pct_given, gpc_given = ~np.isnan(pct), ~np.isnan(gpc)
    with np.errstate(invalid="ignore"):
        problem = np.select(
            [(code < 0) | (code >= len(UNITS)),
             ~np.isfinite(amt),
             amt < 0,
             pct_given & ~(np.isfinite(pct) & (pct > 0)),
             gpc_given & ~(np.isfinite(gpc) & (gpc > 0)),
             (code == _CAPSULE) & ~gpc_given,
             (code == _EXTRACT) & ~pct_given,
             pct_given & (pct > 100) & ((code == _G) | (code == _CAPSULE) | (code == _EXTRACT)),
             code == _MG_7OH],
            np.arange(1, 10, dtype=np.int8), 0).astype(np.int8)
        grams = np.where(code == _CAPSULE, amt * gpc, amt)
        leaf = (code == _G) | (code == _CAPSULE)
        labelled = (leaf & pct_given) | (code == _EXTRACT)
        p, plo, phi = (DEFAULT_LEAF_PERCENT.value, DEFAULT_LEAF_PERCENT_LOW.value,
                       DEFAULT_LEAF_PERCENT_HIGH.value)
        g = MG_PER_GLASS.value
        mg = np.select([leaf & pct_given, leaf, code == _GLASS, code == _EXTRACT],
                       [grams * 1000.0 * pct / 100.0, grams * 10.0 * p, amt * g,
                        amt * pct / 100.0], amt)
        lo = np.select([leaf & ~pct_given, code == _GLASS], [grams * 10.0 * plo, amt * g * (plo / p)],
                       mg)
        hi = np.select([leaf & ~pct_given, code == _GLASS], [grams * 10.0 * phi, amt * g * (phi / p)],
                       mg)
    bad = problem != 0
    nan = np.float64(np.nan)
    assumed = ((leaf & ~labelled) | (code == _GLASS)) & ~bad
    return DoseArrays(np.where(bad, nan, mg), np.where(bad, nan, lo), np.where(bad, nan, hi),
                      assumed, problem)


def _optional_number(value: float | None, what: str) -> float:
    """A given optional number as float (NaN when not given); a given NaN is invalid."""
    if value is None:
        return math.nan
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DoseConversionError(f"{what} must be a number") from None
    if math.isnan(v):  # NaN stands for "not given" in the arrays
        raise DoseConversionError(f"{what} must be greater than 0")
    return v


def _checked(dose: Dose) -> tuple[datetime, float, float, float]:
    """Time and numbers of one dose, or the reason they cannot be read."""
    t = dose.taken_at
    if not isinstance(t, datetime):
        raise DoseConversionError("dose time must be a date and time")
    if t.tzinfo is None or t.utcoffset() is None:
        raise DoseConversionError("dose time needs a timezone offset")
    if dose.unit not in UNITS:
        raise DoseConversionError(PROBLEMS[1].format(unit=dose.unit))
    try:
        amount = float(dose.amount)
    except (TypeError, ValueError):
        raise DoseConversionError("amount must be a number") from None
    return (t, amount, _optional_number(dose.mitragynine_percent, "mitragynine percent"),
            _optional_number(dose.grams_per_capsule, "grams per capsule"))


def _basis(unit: str, amount: float, percent: float, gpc: float) -> str:
    """Human-readable derivation of a converted dose."""
    a = _fmt(amount)
    if unit in ("g", "capsule"):
        what = f"{a} g leaf" if unit == "g" else f"{a} capsule × {_fmt(gpc)} g"
        if not math.isnan(percent):
            return f"{what} × {_fmt(percent)} % (label or entry)"
        return (f"{what} × {_fmt(DEFAULT_LEAF_PERCENT.value)} % (default, range "
                f"{DEFAULT_LEAF_PERCENT_LOW.value:.1f}–{DEFAULT_LEAF_PERCENT_HIGH.value:.1f} %)")
    if unit == "glass":
        g = MG_PER_GLASS.value
        r_lo = DEFAULT_LEAF_PERCENT_LOW.value / DEFAULT_LEAF_PERCENT.value
        r_hi = DEFAULT_LEAF_PERCENT_HIGH.value / DEFAULT_LEAF_PERCENT.value
        return f"{a} glass × {_fmt(g)} mg (Singh 2014, range {g * r_lo:.1f}–{g * r_hi:.1f} mg)"
    if unit == "mg_extract":
        return f"{a} mg extract × {_fmt(percent)} % (label)"
    return f"{a} mg mitragynine"


def to_mitragynine(dose: Dose) -> MitragynineDose:
    """Convert one dose to mg mitragynine (see the module docstring for the rules).

    Raises
    ------
    DoseConversionError
        Naive or missing time, unknown unit, negative or non-numeric amount, missing
        grams per capsule or extract percent, percent outside (0, 100].
    """
    ok, bad = convert_all([dose])
    if bad:
        raise DoseConversionError(bad[0][1])
    return ok[0]


def convert_all(
    doses: Iterable[Dose],
) -> tuple[list[MitragynineDose], list[tuple[int, str]]]:
    """Convert every dose; return the converted ones and ``(index, reason)`` for the rest.

    The numbers come from one :func:`convert_arrays` call over all doses.
    """
    doses = list(doses)
    bad: list[tuple[int, str]] = []
    rows: list[tuple[int, datetime, float, float, float]] = []
    for i, d in enumerate(doses):
        try:
            rows.append((i, *_checked(d)))
        except DoseConversionError as exc:
            bad.append((i, str(exc)))
    ok: list[MitragynineDose] = []
    if rows:
        idx = [r[0] for r in rows]
        arr = convert_arrays([r[2] for r in rows], [doses[i].unit for i in idx],
                             [r[3] for r in rows], [r[4] for r in rows])
        mg, lo, hi = arr.mg.tolist(), arr.mg_low.tolist(), arr.mg_high.tolist()
        assumed, problem = arr.assumed_potency.tolist(), arr.problem.tolist()
        for k, (i, t, amount, pct, gpc) in enumerate(rows):
            if problem[k]:
                bad.append((i, arr.reason(k, doses[i].unit)))
            else:
                ok.append(MitragynineDose(t, mg[k], lo[k], hi[k], assumed[k],
                                          _basis(doses[i].unit, amount, pct, gpc)))
        bad.sort()
    return ok, bad


def convert_windows(windows: Sequence[Iterable[Dose]]) -> list[tuple[list[float], int]]:
    """For each window of doses: the mg mitragynine of the doses that convert (in order) and
    how many do not; :func:`convert_all`'s numbers, from one :func:`convert_arrays` call over
    every window (the sweep converts the fortnights of a thousand patients at once, where a
    call per window spent most of its time in numpy's per-call overhead)."""
    amounts: list[float] = []
    units: list[str] = []
    pcts: list[float] = []
    gpcs: list[float] = []
    owner: list[int] = []
    failed = [0] * len(windows)
    for w, doses in enumerate(windows):
        for d in doses:
            try:
                _, amount, pct, gpc = _checked(d)
            except DoseConversionError:
                failed[w] += 1
                continue
            amounts.append(amount)
            units.append(d.unit)
            pcts.append(pct)
            gpcs.append(gpc)
            owner.append(w)
    mg: list[list[float]] = [[] for _ in windows]
    if amounts:
        arr = convert_arrays(amounts, units, pcts, gpcs)
        for w, value, problem in zip(owner, arr.mg.tolist(), arr.problem.tolist(), strict=True):
            if problem:
                failed[w] += 1
            else:
                mg[w].append(value)
    return list(zip(mg, failed, strict=True))


#: Units whose amounts are grams of leaf: ``g`` as they are, ``capsule`` times grams per capsule.
_LEAF_UNITS = ("g", "capsule")


def amount_in_unit(dose: Dose, unit: str, grams_per_capsule: float | None = None) -> float:
    """The amount of ``dose`` in ``unit``, where the two units measure the same thing.

    Only conversions that need no assumption about the product: the same unit as it stands;
    leaf powder between ``g`` and ``capsule`` through grams per capsule (the dose's own for a
    capsule dose, ``grams_per_capsule`` for a result in capsules). Anything else (tea in
    grams of leaf, leaf in mg mitragynine) would rest on an assumed mitragynine content:
    compare such doses in mg mitragynine with :func:`convert_all` instead, which says what
    it assumed.

    Raises
    ------
    DoseConversionError
        Unknown unit, a non-finite or negative amount, a capsule without its grams per
        capsule, or units that measure different things; the message says which.

    Examples
    --------
    >>> from datetime import datetime, timezone
    >>> t = datetime(2026, 1, 1, 9, tzinfo=timezone.utc)
    >>> amount_in_unit(Dose(t, 6, "capsule", grams_per_capsule=0.5), "g")
    3.0
    >>> amount_in_unit(Dose(t, 3, "g"), "capsule", grams_per_capsule=0.75)
    4.0
    """
    for u in (dose.unit, unit):
        if u not in UNITS:
            raise DoseConversionError(PROBLEMS[1].format(unit=u))
    try:
        amount = float(dose.amount)
    except (TypeError, ValueError):
        raise DoseConversionError("amount must be a number") from None
    if not math.isfinite(amount):
        raise DoseConversionError(PROBLEMS[2])
    if amount < 0:
        raise DoseConversionError(PROBLEMS[3])
    if dose.unit == unit and unit != "capsule":
        return amount
    if dose.unit in _LEAF_UNITS and unit in _LEAF_UNITS:
        if dose.unit == "capsule":
            gpc = _optional_number(dose.grams_per_capsule, "grams per capsule")
            if math.isnan(gpc):
                raise DoseConversionError(PROBLEMS[6])
            if gpc <= 0:
                raise DoseConversionError(PROBLEMS[5])
            grams = amount * gpc
        else:
            grams = amount
        if unit == "g":
            return grams
        target = _optional_number(grams_per_capsule, "grams per capsule")
        if math.isnan(target):
            if dose.unit == "capsule":  # capsules of an unknown size: counted as they are
                raise DoseConversionError("capsules in capsules need the grams per capsule "
                                          "of both")
            raise DoseConversionError("grams of leaf in capsules need the grams per capsule")
        if target <= 0:
            raise DoseConversionError(PROBLEMS[5])
        return grams / target
    raise DoseConversionError(
        f"{_fmt(amount)} {dose.unit} cannot be expressed in {unit} without assuming its "
        "mitragynine content; compare them in mg mitragynine")


def daily_mitragynine_mg(doses: Sequence[Dose], tz: tzinfo) -> dict[date, float]:
    """Typical mitragynine (mg) per calendar day in ``tz``; unconvertible doses are skipped.

    One patient through the cross-subject path
    (:func:`speciosa.pharmacology.cohort.daily_mitragynine_totals`), which many-patient
    uses (the research dataset) call for all patients at once.

    Callers that must not skip doses silently should use :func:`convert_all` and show its
    second result. Days are in ascending order.
    """
    from speciosa.pharmacology.cohort import daily_mitragynine_totals

    ok = sorted((d for d in doses if isinstance(d.taken_at, datetime)
                 and d.taken_at.utcoffset() is not None), key=lambda x: x.taken_at)
    days = [d.taken_at.astimezone(tz).date() for d in ok]
    rows = []  # numbers as convert_all reads them; an unreadable one is not converted
    for d in ok:
        try:
            _t, amount, pct, gpc = _checked(d)
        except DoseConversionError:
            amount, pct, gpc = math.nan, math.nan, math.nan
        rows.append((amount, pct, gpc))
    if not ok:
        return {}
    _s, day_no, mg = daily_mitragynine_totals(
        np.zeros(len(ok), dtype=np.int64), [x.toordinal() for x in days], [r[0] for r in rows],
        [d.unit if d.unit in UNITS else "" for d in ok], [r[1] for r in rows],
        [r[2] for r in rows])
    return {date.fromordinal(int(k)): float(v) for k, v in zip(day_no, mg, strict=True)}
