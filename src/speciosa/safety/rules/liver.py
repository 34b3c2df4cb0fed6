"""Liver: the drug-induced liver injury criteria, the R ratio, Hy's law, severity, symptoms.

Kratom has been linked to liver injury, mostly cholestatic or mixed, typically 2-49 days
after starting (low-quality evidence: case reports and case series). Every result is read
in its canonical unit against its upper limit (the reporting laboratory's, else the
catalogue's for the patient's sex).

References
----------
.. [1] Aithal GP et al. Clin Pharmacol Ther 2011;89:806-815 (DILI case criteria).
.. [2] US FDA. Drug-Induced Liver Injury: Premarketing Clinical Evaluation (2009): Hy's law.
.. [3] ACG clinical guideline 2014 (R ratio), via shared/reference/care.md section 1.
.. [4] Schimmel J, Dart RC 2020; Ahmad J et al. 2021 (DILIN); LiverTox: kratom.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from speciosa.safety.rules._common import fmt, iso, lab_json, over, shown, uln
from speciosa.safety.rules._context import Context
from speciosa.safety.rules._registry import Found, labs, last_dose, rule, side_effects
from speciosa.safety.timeline import LabResult

_UNITS = {"alt": "U/L", "ast": "U/L", "alp": "U/L", "bilirubin": "mg/dL", "inr": "{INR}"}
_NAMES = {"alt": "ALT", "ast": "AST", "alp": "ALP", "bilirubin": "Bilirubin", "inr": "INR"}
#: Reported symptoms of liver injury (side-effect checklist items).
LIVER_SYMPTOMS = ("dark-urine-yellow-eyes", "itching")
_LIVER_LABS = ("alt", "ast", "alp", "bilirubin", "inr")


class _Lab:
    """One result read against its upper limit."""

    __slots__ = ("code", "row", "value", "limit", "source")

    def __init__(self, code: str, row: LabResult, value: float, limit: float | None,
                 source: str) -> None:
        self.code, self.row, self.value, self.limit, self.source = code, row, value, limit, source

    @property
    def ratio(self) -> float | None:
        return self.value / self.limit if self.limit else None

    def at_least(self, multiple: float) -> bool:
        """Surely at or above ``multiple`` x ULN (an upper bound such as <5 never is)."""
        return bool(self.limit) and not self.row.below() and self.value >= multiple * self.limit

    def above(self, multiple: float) -> bool:
        """Surely above ``multiple`` x ULN."""
        return bool(self.limit) and over(self.row, self.value, multiple * self.limit)

    def text(self) -> str:
        ratio = f" ({self.ratio:.1f} x ULN)" if self.ratio is not None else ""
        unit = "" if self.code == "inr" else f" {_UNITS[self.code]}"
        return f"{_NAMES[self.code]} {shown(self.row, self.value)}{unit} on {self.row.at.date()}{ratio}"

    def evidence(self) -> dict[str, Any]:
        ev = lab_json(self.row, self.value, self.limit, _UNITS[self.code])
        if self.ratio is not None:
            ev["times_uln"] = round(self.ratio, 2)
        ev["reference_source"] = self.source
        return ev


def _read(ctx: Context, code: str, row: LabResult) -> _Lab | None:
    value = row.canonical_value
    if value is None:
        return None
    if code == "inr":
        return _Lab(code, row, value, None, "")
    limit, source = uln(row, ctx.sex)
    if limit is not None and limit <= 0:
        limit = None
    return _Lab(code, row, value, limit, source)


def _latest(ctx: Context, code: str) -> _Lab | None:
    rows = ctx.labs(code, ctx.settings["lab_recent_days"])
    for row in reversed(rows):
        found = _read(ctx, code, row)
        if found is not None:
            return found
    return None


def _near(ctx: Context, code: str, anchor: LabResult, days: float) -> _Lab | None:
    """The result of ``code`` closest in time to ``anchor`` and at most ``days`` from it
    (within the lab window), or None."""
    best: _Lab | None = None
    best_gap = None
    limit = timedelta(days=days)
    for row in ctx.labs(code, ctx.settings["lab_recent_days"]):
        gap = abs(row.at - anchor.at)
        if gap > limit or (best_gap is not None and gap > best_gap):
            continue
        found = _read(ctx, code, row)
        if found is not None:
            best, best_gap = found, gap
    return best


def _concurrent_inr(ctx: Context, anchors: list[LabResult], days: float) -> _Lab | None:
    """The latest INR sampled at most ``days`` from one of ``anchors`` (the liver tests it
    is read with), or None: an INR of months before is no sign of today's injury."""
    limit = timedelta(days=days)
    for row in reversed(ctx.labs("inr", ctx.settings["lab_recent_days"])):
        if any(abs(row.at - a.at) <= limit for a in anchors):
            found = _read(ctx, "inr", row)
            if found is not None:
                return found
    return None


def r_ratio(alt: _Lab | None, alp: _Lab | None) -> tuple[float, str] | None:
    """R = (ALT/ULN) / (ALP/ULN) and its pattern: hepatocellular >= 5, mixed > 2 to < 5,
    cholestatic <= 2 (ACG 2014, care.md section 1); None without both."""
    if alt is None or alp is None or not alt.ratio or not alp.ratio:
        return None
    if alt.row.comparator or alp.row.comparator:
        return None  # a bound gives no ratio
    r = alt.ratio / alp.ratio
    pattern = "hepatocellular" if r >= 5 else ("cholestatic" if r <= 2 else "mixed")
    return r, pattern


@rule(
    "SAF-LIVER",
    topic="liver-injury",
    severity="urgent",
    settings=("liver_alt_dili_uln_multiple", "liver_alp_dili_uln_multiple",
              "liver_aminotransferase_uln_multiple", "liver_bilirubin_uln_multiple",
              "liver_samples_max_days_apart", "liver_aminotransferase_urgent_uln_multiple",
              "liver_inr_urgent", "lab_recent_days", "symptom_recent_days"),
    windows=(labs(_LIVER_LABS, "lab_recent_days"),
             side_effects(LIVER_SYMPTOMS, "symptom_recent_days"), last_dose()),
    citations=("aithal-2011-dili-criteria", "fda-2009-dili-guidance", "acg-2014-dili-r-ratio",
               "dili-severity-inr", "schimmel-dart-2020", "ahmad-2021-dilin", "livertox-kratom"),
    version=3,
)
def liver_injury(ctx: Context) -> Found | None:
    """Drug-induced liver injury criteria met (ALT at least {liver_alt_dili_uln_multiple} x
    ULN, ALP at least {liver_alp_dili_uln_multiple} x ULN, or an aminotransferase at least
    {liver_aminotransferase_uln_multiple} x ULN with bilirubin above
    {liver_bilirubin_uln_multiple} x ULN), a raised aminotransferase or bilirubin, or dark
    urine, yellow eyes or itching reported (warning); Hy's law, an aminotransferase at least
    {liver_aminotransferase_urgent_uln_multiple} x ULN, or INR above {liver_inr_urgent} with
    liver injury (urgent).

    Reads ALT, AST, ALP, total bilirubin and INR of the last {lab_recent_days} days, each
    in its canonical unit against its upper limit (the reporting laboratory's, else the
    catalogue's for the patient's sex), and dark urine, yellow eyes or itching reported in
    the last {symptom_recent_days} days. Criteria (aithal-2011-dili-criteria; the third, ALT
    at least 3 x ULN with bilirubin above 2 x ULN, comes from a secondary summary): the
    latest ALT (AST when no ALT was measured) at least {liver_alt_dili_uln_multiple} x ULN;
    the latest ALP at least {liver_alp_dili_uln_multiple} x ULN; the latest bilirubin above
    {liver_bilirubin_uln_multiple} x ULN with an ALT or AST at least
    {liver_aminotransferase_uln_multiple} x ULN sampled at most
    {liver_samples_max_days_apart} days from it. The pattern is the R ratio of the latest ALP
    and the ALT closest to it (at most {liver_samples_max_days_apart} days apart):
    hepatocellular at least 5, mixed between 2 and 5, cholestatic at most 2
    (acg-2014-dili-r-ratio). Hy's law (fda-2009-dili-guidance) needs those concurrent
    aminotransferase and bilirubin results **and** an ALP below
    {liver_alp_dili_uln_multiple} x ULN from a sample at most
    {liver_samples_max_days_apart} days from the bilirubin: an ALT of three months ago with
    today's bilirubin is not Hy's law. Urgent also: an aminotransferase at least
    {liver_aminotransferase_urgent_uln_multiple} x ULN (a convention, a setting), or INR
    above {liver_inr_urgent} with liver injury (dili-severity-inr), the INR sampled at most
    {liver_samples_max_days_apart} days from one of the liver tests it is read with
    (version 3; an INR of months before says nothing of today's injury and is only named). Kratom liver injury,
    mostly cholestatic or mixed, latency 2-49 days, low-quality evidence:
    schimmel-dart-2020, ahmad-2021-dilin, livertox-kratom.
    """
    s = ctx.settings
    apart = s["liver_samples_max_days_apart"]
    latest = {code: _latest(ctx, code) for code in _LIVER_LABS}
    alt, ast, alp, bili, inr = (latest[c] for c in _LIVER_LABS)
    amino_3 = s["liver_aminotransferase_uln_multiple"]
    bili_2 = s["liver_bilirubin_uln_multiple"]
    alp_2 = s["liver_alp_dili_uln_multiple"]

    criteria: list[str] = []
    shown_labs: dict[str, _Lab] = {}
    primary = alt if alt is not None else ast
    if primary is not None and primary.at_least(s["liver_alt_dili_uln_multiple"]):
        criteria.append(f"{_NAMES[primary.code]} at least {fmt(s['liver_alt_dili_uln_multiple'])}"
                        " x ULN")
        shown_labs[primary.code] = primary
    if alp is not None and alp.at_least(alp_2):
        criteria.append(f"ALP at least {fmt(alp_2)} x ULN")
        shown_labs["alp"] = alp
    # concurrent aminotransferase and bilirubin (Aithal's third criterion; Hy's law)
    pair: tuple[_Lab, _Lab] | None = None
    if bili is not None and bili.above(bili_2):
        for code in ("alt", "ast"):
            near = _near(ctx, code, bili.row, apart)
            if near is not None and near.at_least(amino_3):
                pair = (near, bili)
                break
        if pair:
            criteria.append(f"{_NAMES[pair[0].code]} at least {fmt(amino_3)} x ULN with "
                            f"bilirubin above {fmt(bili_2)} x ULN, sampled at most "
                            f"{fmt(apart)} days apart")
    raised = [x for x in (alt, ast) if x is not None and x.at_least(amino_3)]
    if bili is not None and bili.above(bili_2):
        raised.append(bili)
    for x in raised:
        shown_labs.setdefault(x.code, x)
    symptoms = [rows[-1] for code in LIVER_SYMPTOMS
                if (rows := ctx.side_effects(code, s["symptom_recent_days"]))]
    symptoms.sort(key=lambda x: x.at)
    injury = bool(criteria or raised)
    if not injury and not symptoms:
        return None
    # the INR with the liver tests (at most `apart` days from one of them), else the latest
    inr_with = _concurrent_inr(ctx, [x.row for x in shown_labs.values()], apart) \
        if injury else None
    inr_high = inr_with is not None and over(inr_with.row, inr_with.value, s["liver_inr_urgent"])
    # a high INR not sampled with the liver tests (the latest, when it is not that one)
    inr_apart = not inr_high and inr is not None \
        and (inr_with is None or inr.row is not inr_with.row) \
        and over(inr.row, inr.value, s["liver_inr_urgent"])
    if inr_with is not None:
        inr = inr_with

    hy = False
    hy_alp: _Lab | None = None
    if pair is not None:
        hy_alp = _near(ctx, "alp", pair[1].row, apart)
        hy = hy_alp is not None and hy_alp.limit is not None and not hy_alp.row.above() \
            and hy_alp.value < alp_2 * hy_alp.limit
    very_high = [x for x in (alt, ast) if x is not None
                 and x.at_least(s["liver_aminotransferase_urgent_uln_multiple"])]
    pattern_alt = _near(ctx, "alt", alp.row, apart) if alp is not None else None
    pattern = r_ratio(pattern_alt, alp)

    ev: dict[str, Any] = {"labs": {code: x.evidence() for code, x in shown_labs.items()}}
    parts = [x.text() for x in shown_labs.values()]
    if criteria:
        ev["dili_criteria"] = criteria
    if pattern is not None:
        ev["r_ratio"] = round(pattern[0], 2)
        ev["pattern"] = pattern[1]
    if pair is not None:
        ev["hys_law"] = hy
        ev["hys_law_pair"] = [iso(pair[0].row.at), iso(pair[1].row.at)]
        if hy_alp is not None:
            ev["labs"].setdefault("alp", hy_alp.evidence())
    if inr is not None and injury:
        ev["labs"]["inr"] = inr.evidence()
        parts.append(inr.text())
    if symptoms:
        ev["symptoms"] = [{"code": x.code, "at": iso(x.at)} for x in symptoms]
        names = " and ".join(dict.fromkeys(
            "itching" if x.code == "itching" else "dark urine or yellow eyes" for x in symptoms))
        parts.append(f"{names} reported on {symptoms[-1].at.date()}")
    last = ctx.last_dose()
    if last is not None:
        ev["kratom_last_dose_at"] = iso(last.taken_at)

    text = "; ".join(parts)
    message = text[:1].upper() + text[1:] + "."
    if criteria:
        message += (" Meets the drug-induced liver injury criteria (Aithal 2011): "
                    + "; ".join(criteria) + ".")
    elif injury:
        message += " Raised, below the drug-induced liver injury criteria (Aithal 2011)."
    if pattern is not None:
        message += f" R ratio {pattern[0]:.1f}: {pattern[1]} pattern."
    if hy:
        message += (" Aminotransferase and bilirubin raised together with ALP below "
                    f"{fmt(alp_2)} x ULN: Hy's law, the pattern of severe drug-induced liver "
                    "injury.")
    elif pair is not None:
        message += (" Hy's law does not apply: " + ("no ALP was measured close to the "
                    "bilirubin." if hy_alp is None else f"ALP is {fmt(alp_2)} x ULN or more "
                    "(cholestasis)."))
    if very_high:
        message += (f" {_NAMES[very_high[0].code]} is at least "
                    f"{fmt(s['liver_aminotransferase_urgent_uln_multiple'])} x ULN.")
    if inr_high and injury:
        message += (f" INR above {fmt(s['liver_inr_urgent'])} with liver injury: a sign of "
                    "severe injury.")
    elif inr_apart and injury:
        message += (f" The INR above {fmt(s['liver_inr_urgent'])} was not measured within "
                    f"{fmt(apart)} days of these liver tests, so it does not show how severe "
                    "the injury is; consider repeating it.")
    message += (" Kratom has been linked to liver injury, mostly cholestatic or mixed, "
                "typically 2-49 days after starting (low-quality evidence: case reports and "
                "case series); other causes need to be excluded.")
    urgent = hy or bool(very_high) or (inr_high and injury)
    if urgent:
        step = ("Consider same-day assessment (INR, ALP, clinical signs of liver failure) and "
                "specialist advice.")
    elif injury:
        step = ("Consider repeating liver tests with ALP and INR, asking about kratom "
                "products, alcohol, paracetamol and other medicines and supplements, and "
                "specialist advice if the tests stay raised.")
    else:
        step = ("Consider liver tests (ALT, AST, ALP, bilirubin, INR) and asking about kratom "
                "products, alcohol, paracetamol and other medicines and supplements.")
    severity = "urgent" if urgent else ("warning" if injury or any(
        x.code == "dark-urine-yellow-eyes" for x in symptoms) else "info")
    return Found(severity, message, ev, step)
