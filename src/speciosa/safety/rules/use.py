"""Kratom use: escalation of the amount or of the estimated mitragynine.

References
----------
.. [1] pharmacology.md §8.3: tolerance and dependence in regular users (Singh 2014, 2019).
.. [2] pharmacology.md §8.1: kratom liver injury weeks after starting or increasing use
   (Schimmel & Dart 2020).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from speciosa.pharmacology import doses as pdoses
from speciosa.safety.rules._common import fmt
from speciosa.safety.rules._context import FORTNIGHTS_DAYS, Context
from speciosa.safety.rules._registry import Found, doses, medications, rule, substances


def _window_summary(ctx: Context, rows: tuple, first: date, last: date) -> dict[str, Any]:
    stats = ctx.dose_stats(rows)
    summary: dict[str, Any] = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "doses": len(rows),
        "days_with_doses": stats.days,
    }
    if stats.unit is not None:
        summary["unit"] = stats.unit
        summary["total_amount"] = round(stats.total_amount, 3)
    return summary


def _add_mitragynine(ctx: Context, summary: dict[str, Any], which: int) -> None:
    """Add the estimated mitragynine (mg) of fortnight ``which`` (0: the earlier, 1: the
    last 14 days) when every dose converts.

    A window with an unconvertible dose (a capsule without grams per capsule, an extract
    without its percent) gets no estimate: a partial sum would fake a rise or a fall.
    Leaf without a label is converted with the default content, which cancels out in the
    ratio of two windows. The numbers come from :func:`prepare_fortnights` when a batch of
    patients is evaluated at once, else from converting this window now (the same numbers).
    """
    key = ("mitragynine", which)
    if key not in ctx.memo:
        ctx.memo[key] = pdoses.convert_windows([ctx.fortnights()[which]])[0]
    mg, failed = ctx.memo[key]
    if failed:
        summary["mitragynine_unconvertible_doses"] = failed
        return
    summary["mitragynine_mg"] = round(sum(mg), 1)


def _escalation_amounts(ctx: Context):
    """The amounts :func:`dose_escalation` compares (remembered in the context): the two
    fortnights' summaries, the rise of the amount, the threshold, and whether the
    mitragynine estimate is needed; None when the rule cannot fire."""
    if "escalation" in ctx.memo:
        return ctx.memo["escalation"]
    ctx.memo["escalation"] = None
    s = ctx.settings
    mid_day = ctx.today - timedelta(days=13)
    start_day = mid_day - timedelta(days=14)
    earlier, recent = ctx.fortnights()
    if not earlier or not recent:
        return None
    before = _window_summary(ctx, earlier, start_day, mid_day - timedelta(days=1))
    if before["days_with_doses"] < s["dose_escalation_min_days"]:
        return None
    after = _window_summary(ctx, recent, mid_day, ctx.today)
    threshold = 1 + s["dose_escalation_fraction"]
    rises: dict[str, float] = {}
    if before.get("unit") is not None and before.get("unit") == after.get("unit"):
        if before["total_amount"] > 0:
            rises["amount"] = after["total_amount"] / before["total_amount"]
    # The mitragynine estimate is only needed when it can differ from the amount (mixed
    # units or products), or as evidence once the rule fires.
    a, b = earlier[0], recent[0]
    same = (ctx.dose_stats(earlier).same_product and ctx.dose_stats(recent).same_product
            and (a.unit, a.mitragynine_percent, a.grams_per_capsule, a.product)
            == (b.unit, b.mitragynine_percent, b.grams_per_capsule, b.product))
    needs = "amount" not in rises or rises["amount"] >= threshold or not same
    ctx.memo["escalation"] = (before, after, rises, threshold, needs)
    return ctx.memo["escalation"]


def prepare_fortnights(contexts: list[Context]) -> None:
    """Across patients (:func:`speciosa.safety.rules.evaluate_many`): the doses of the
    fortnights of every patient whose escalation check needs the mitragynine estimate are
    converted in one array pass (a :func:`convert_arrays` call per patient spent most of its
    time in numpy's per-call overhead), remembered in each context for
    :func:`dose_escalation`."""
    windows, owners = [], []
    for ctx in contexts:
        amounts = _escalation_amounts(ctx)
        if amounts is not None and amounts[4]:
            windows += list(ctx.fortnights())
            owners.append(ctx)
    if not windows:
        return
    converted = pdoses.convert_windows(windows)
    for k, ctx in enumerate(owners):
        ctx.memo[("mitragynine", 0)] = converted[2 * k]
        ctx.memo[("mitragynine", 1)] = converted[2 * k + 1]


@rule(
    "SAF-DOSE-ESC",
    topic="dose-escalation",
    severity="warning",
    settings=("dose_escalation_fraction", "dose_escalation_min_days"),
    windows=(doses(FORTNIGHTS_DAYS, why="the last 14 local days and the 14 before"),),
    citations=("singh-2014", "singh-2019-kratom-dependence", "schimmel-dart-2020"),
)
def dose_escalation(ctx: Context) -> Found | None:
    """Kratom amount (same unit) or estimated mitragynine over the last 14 days up by
    {dose_escalation_fraction:%} or more on the 14 days before.

    Compares the total kratom amount over the last 14 local days (same unit throughout) or
    the estimated mitragynine (``speciosa.pharmacology.doses``) with the 14 days before,
    when the earlier fortnight has doses on at least {dose_escalation_min_days} days (so that
    starting or resuming use is not read as escalation). The mitragynine estimate is
    computed only when it can differ from the amount (mixed units or products) or when the
    rule fires. Evidence: singh-2014, singh-2019-kratom-dependence (tolerance, dependence),
    schimmel-dart-2020 (liver injury weeks after starting or increasing use).
    """
    amounts = _escalation_amounts(ctx)
    if amounts is None:
        return None
    before, after, rises, threshold, needs_mitragynine = amounts
    if needs_mitragynine:
        _add_mitragynine(ctx, before, 0)
        _add_mitragynine(ctx, after, 1)
        if before.get("mitragynine_mg") and "mitragynine_mg" in after:
            rises["mitragynine"] = after["mitragynine_mg"] / before["mitragynine_mg"]
    fired = {k: v for k, v in rises.items() if v >= threshold}
    if not fired:
        return None
    ev = {
        "earlier_14_days": before,
        "last_14_days": after,
        "rise_percent": {k: round((v - 1) * 100, 1) for k, v in rises.items()},
    }
    if "amount" in fired:
        what = f"{fmt(before['total_amount'])} to {fmt(after['total_amount'])} {after['unit']}"
        pct = fired["amount"]
    else:
        what = (
            f"an estimated {fmt(before['mitragynine_mg'])} to "
            f"{fmt(after['mitragynine_mg'])} mg mitragynine"
        )
        pct = fired["mitragynine"]
    message = (
        f"Kratom intake over the last 14 days rose by {(pct - 1) * 100:.0f} % against the 14 "
        f"days before ({what}). Tolerance and dependence are common in regular users, and "
        "kratom-associated liver injury has appeared weeks after starting or increasing use "
        "(case reports and case series)."
    )
    step = (
        "Consider asking what lies behind the increase (withdrawal, craving, pain, a new "
        "product), about other substances, and about jaundice, dark urine or itching."
    )
    return Found("warning", message, ev, step)


def _is_7oh(name: str | None) -> bool:
    from speciosa.knowledge import drugs as kdrugs

    return bool(name) and "7-hydroxymitragynine" in kdrugs.classify(name).ingredients


@rule(
    "SAF-7OH-PRODUCT",
    topic="potent-7oh-product",
    severity="warning",
    settings=("kratom_current_use_days", "co_use_lookback_days"),
    windows=(doses("kratom_current_use_days"), medications(),
             substances("co_use_lookback_days")),
    citations=("fda-7oh-scheduling-2025", "7oh-is-an-opioid"),
    version=2,
)
def potent_7oh_product(ctx: Context) -> Found | None:
    """A 7-hydroxymitragynine (7-OH) product in use: a dose of the last
    {kratom_current_use_days} days recorded in mg of 7-OH or whose product names 7-OH, a
    current medication or a substance reported in the last {co_use_lookback_days} days that
    is 7-OH (warning).

    7-OH is a potent partial mu-opioid agonist; concentrated or synthetic 7-OH products are
    what the FDA recommended in July 2025 be placed in Schedule I (fda-7oh-scheduling-2025),
    not natural leaf. A medication counts while its status is active or unknown (version
    2). Names are read with the drug table ("7-OH", "7OH",
    "7-hydroxymitragynine", brand names it lists). Speciosa's exposure model covers
    mitragynine from leaf and labelled products; it does not model direct 7-OH intake.
    Version 2: a dose in the unit ``mg_7oh`` (mg of 7-OH from the label) fires too.
    """
    s = ctx.settings
    seen: list[dict[str, Any]] = []
    for d in ctx.doses_between(ctx.ago(s["kratom_current_use_days"])):
        if d.unit == pdoses.SEVEN_OH_UNIT:
            seen.append({"source": "dose", "product": d.product or "7-OH product",
                         "amount_mg_7oh": float(d.amount), "at": d.taken_at.isoformat()})
        elif _is_7oh(d.product):
            seen.append({"source": "dose", "product": d.product, "at": d.taken_at.isoformat()})
    for m in ctx.current_medications():
        if _is_7oh(m.lookup):
            seen.append({"source": "medication", "name": m.name, "since": m.start.isoformat()})
    for sub in ctx.substances(s["co_use_lookback_days"]):
        if _is_7oh(sub.name):
            seen.append({"source": "reported use", "name": sub.name, "at": sub.at.isoformat()})
    if not seen:
        return None
    names = sorted({e.get("product") or e.get("name") for e in seen})
    message = (
        f"7-hydroxymitragynine (7-OH) product in use ({', '.join(names)}). 7-OH is a potent "
        "opioid (partial mu agonist); concentrated or synthetic 7-OH products carry a higher "
        "risk of opioid overdose than leaf, and in July 2025 the FDA recommended placing "
        "them in Schedule I. Speciosa's exposure estimate does not cover direct 7-OH intake."
    )
    step = ("Consider discussing overdose risk and naloxone, what the product and its label "
            "say, and treatment options for opioid use disorder.")
    return Found("warning", message, {"7oh": seen}, step)
