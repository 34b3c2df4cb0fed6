"""Cohort analysis: within-patient associations of exposure, prolactin, craving and withdrawal.

Works on the de-identified tables of :mod:`speciosa.research.dataset` (pandas only, no
database), so the same code runs on an exported data set. Three linear mixed-effects models
(statsmodels ``MixedLM``, a random intercept per patient, REML), one row per prolactin
draw, each with the predictor split into a within-patient part (deviation from the
patient's own mean) and a between-patient part (the patient's mean) so the *within*
coefficient compares each patient only with themselves:

1. ``ln(prolactin) ~ E_within/100 + E_mean/100 + sex + years_in_care + (1 | patient)``
   where E is the recent recorded mitragynine exposure (mg/day; :func:`recent_exposure`).
   exp(beta) is the ratio of prolactin per 100 mg/day more than the patient's usual.
2. ``craving ~ log2(PRL)_within + log2(PRL)_mean + sex + years_in_care + (1 | patient)``
   where craving is the mean craving NRS (0-10) on the diary days of the week ending on the
   draw day. beta: craving points per doubling of prolactin within a patient.
3. The same with the mean SOWS total (patient-rated withdrawal, 0-64) of that week.

Pre-specified exclusions: prolactin of patients recorded as pregnant or breastfeeding
(physiologically raised) and prolactin above 100 ng/mL (above what drugs usually cause; a
pituitary or other cause must be ruled out, pharmacology.md section 6.4).

These are observational associations. :data:`PLAIN_STATEMENT` says what they can and cannot
show; it is part of every result.
"""

from __future__ import annotations

import html
import math
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Days before a draw over which recorded exposure is averaged, then the fallback window.
EXPOSURE_WINDOWS_DAYS = (7, 28)
#: Days (ending on the draw day) over which craving and withdrawal scores are averaged.
SYMPTOM_WINDOW_DAYS = 7
#: Prolactin above this (ng/mL) is excluded: not typical of a drug effect.
PROLACTIN_EXCLUDE_ABOVE_NG_PER_ML = 100.0
CONFIDENCE = 0.95
#: statsmodels optimisers tried in turn until one converges.
OPTIMIZERS = ("lbfgs", "bfgs", "powell", "nm")

PLAIN_STATEMENT = (
    "What these numbers can show: whether, within the same patients over time, weeks with "
    "more recorded kratom (estimated mitragynine mg/day) go with higher prolactin, and whether "
    "higher prolactin goes with more craving or withdrawal, allowing for each patient's own "
    "usual level, sex and time in care. "
    "What they cannot show: that kratom causes a change in prolactin, or that prolactin "
    "causes or relieves craving or withdrawal. They are observational associations. Things "
    "that change over time together with kratom use (other opioids, alcohol, medications that "
    "raise prolactin, stress, sleep, the time of the blood draw, illness, reduced intake "
    "during withdrawal) can produce or hide an association. Exposure is estimated from "
    "self-reported doses and assumed product potency, so it is measured with error, which "
    "usually shrinks a slope towards zero. Prolactin is pulsatile and varies with the time of "
    "day. Patients who consented to research may differ from those who did not. Several "
    "models are reported, so one of them may look notable by chance. "
    "Outside this data set the evidence is thin: on kratom and prolactin there is one case "
    "report (LaBryer 2018: prolactin raised during use and normal after stopping) plus the "
    "known effect of mu-opioid agonists, which raise prolactin; on prolactin and craving or "
    "withdrawal the human evidence is mixed and comes from alcohol and cocaine, not from "
    "opioids or kratom. On synthetic demo data the relationship was planted by the generator: "
    "recovering it checks the software and is not evidence about kratom. "
    "Nothing here is a recommendation about any kratom dose."
)


@dataclass
class Effect:
    """One coefficient of one model, with its confidence interval."""

    model: str
    outcome: str
    term: str
    predictor: str
    unit: str
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_patients: int
    n_observations: int
    ratio: float | None = None
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    note: str = ""

    @property
    def estimable(self) -> bool:
        return self.estimate is not None


@dataclass
class ModelFit:
    """A fitted model: formula, its effects and the plot data (within-patient deviations)."""

    name: str
    title: str
    formula: str
    n_patients: int
    n_observations: int
    effects: list[Effect]
    group_sd: float | None = None
    residual_sd: float | None = None
    warnings: list[str] = field(default_factory=list)
    plot_x: list[float] = field(default_factory=list)
    plot_y: list[float] = field(default_factory=list)
    x_label: str = ""
    y_label: str = ""


@dataclass
class AnalysisResult:
    """Everything the CLI and the research page show."""

    models: list[ModelFit]
    cohort: dict[str, int]
    exclusions: dict[str, int]
    statement: str = PLAIN_STATEMENT
    exposure_definition: str = ""
    planted: dict[str, Any] | None = None

    def effect(self, model: str, term: str = "within") -> Effect:
        """The effect ``term`` of model ``model``."""
        for m in self.models:
            for e in m.effects:
                if m.name == model and e.term == term:
                    return e
        raise KeyError((model, term))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plot points left out)."""
        out = asdict(self)
        for m in out["models"]:
            m.pop("plot_x")
            m.pop("plot_y")
        return out


# --------------------------------------------------------------------------- data preparation

def recent_exposure(day_mg: Mapping[int, float], draw_day: int) -> float:
    """Mean recorded mitragynine mg/day before the draw on day in care ``draw_day``.

    The mean over the recorded days (diary or dose) among the 7 days before the draw day;
    if none, among the 28 days before; 0.0 if none at all. Days without a record are
    missing, not zero. (This is the exposure :math:`E_{ij}` of the demo's planted model;
    days in care are whole days, so the windows are the same as on calendar days.)
    """
    for window in EXPOSURE_WINDOWS_DAYS:
        vals = [day_mg[draw_day - k] for k in range(1, window + 1) if draw_day - k in day_mg]
        if vals:
            return float(sum(vals) / len(vals))
    return 0.0


def _window_mean(scores: Mapping[int, list[float]], day: int, days: int) -> float | None:
    vals = [v for k in range(days) for v in scores.get(day - k, [])]
    return float(np.mean(vals)) if vals else None


def _prolactin_draws(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, int]]:
    """The analysable prolactin draws (ng/mL) and the number excluded for each reason."""
    labs = tables["labs"]
    patients = tables["patients"].set_index("patient_id")
    prl = labs[(labs["lab"] == "prolactin") & labs["canonical_value"].notna()
               & (labs["canonical_unit"] == "ng/mL")].copy()
    excluded = {"pregnant_or_breastfeeding": 0, "above_100_ng_per_ml": 0, "not_positive": 0}
    if prl.empty:
        return prl, excluded
    status = patients.loc[prl["patient_id"], ["pregnant", "breastfeeding"]].fillna(False)
    pregnant = (status["pregnant"].to_numpy(dtype=bool)
                | status["breastfeeding"].to_numpy(dtype=bool))
    excluded["pregnant_or_breastfeeding"] = int(pregnant.sum())
    prl = prl[~pregnant]
    value = prl["canonical_value"].astype(float)
    excluded["not_positive"] = int((value <= 0).sum())
    excluded["above_100_ng_per_ml"] = int((value > PROLACTIN_EXCLUDE_ABOVE_NG_PER_ML).sum())
    return prl[(value > 0) & (value <= PROLACTIN_EXCLUDE_ABOVE_NG_PER_ML)], excluded


def _exposure_by_day(exposure: pd.DataFrame) -> dict[str, dict[int, float]]:
    """patient -> day in care -> recorded mg/day."""
    return {str(pid): dict(zip(grp["day_in_care"].astype(int),
                               grp["mitragynine_mg"].astype(float), strict=True))
            for pid, grp in exposure.groupby("patient_id", sort=False)}


def _scores_by_day(assessments: pd.DataFrame) -> dict[tuple[str, str], dict[int, list[float]]]:
    """(patient, instrument) -> day in care -> the complete totals of that day."""
    scores: dict[tuple[str, str], dict[int, list[float]]] = {}
    complete = assessments[assessments["total"].notna()]
    for (pid, inst), grp in complete.groupby(["patient_id", "instrument"], sort=False):
        per_day: dict[int, list[float]] = {}
        for day, total in zip(grp["day_in_care"].astype(int), grp["total"].astype(float),
                              strict=True):
            per_day.setdefault(day, []).append(total)
        scores[(str(pid), str(inst))] = per_day
    return scores


def draws_frame(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, int]]:
    """One row per prolactin draw with exposure, craving, withdrawal and covariates.

    Returns the frame and the number of draws excluded for each reason.
    """
    prl, excluded = _prolactin_draws(tables)
    if prl.empty:
        return pd.DataFrame(), excluded
    sex = tables["patients"].set_index("patient_id")["sex"]
    day_mg = _exposure_by_day(tables["daily_exposure"])
    scores = _scores_by_day(tables["assessments"])
    rows = []
    for r in prl.itertuples(index=False):
        pid, day = str(r.patient_id), int(r.day_in_care)
        rows.append({
            "patient_id": pid,
            "sex": str(sex.at[pid]),
            "years_in_care": day / 365.25,
            "prolactin_ng_per_ml": float(r.canonical_value),
            "exposure_mg_per_day": recent_exposure(day_mg.get(pid, {}), day),
            "craving": _window_mean(scores.get((pid, "craving-nrs"), {}), day, SYMPTOM_WINDOW_DAYS),
            "sows": _window_mean(scores.get((pid, "sows"), {}), day, SYMPTOM_WINDOW_DAYS),
        })
    df = pd.DataFrame(rows)
    for col in ("craving", "sows"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["ln_prolactin"] = np.log(df["prolactin_ng_per_ml"])
    df["log2_prolactin"] = np.log2(df["prolactin_ng_per_ml"])
    df["exposure_per_100mg"] = df["exposure_mg_per_day"] / 100.0
    return df, excluded


def _split(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Add ``<column>_mean`` (patient mean) and ``<column>_within`` (deviation from it)."""
    df = df.copy()
    df[f"{column}_mean"] = df.groupby("patient_id")[column].transform("mean")
    df[f"{column}_within"] = df[column] - df[f"{column}_mean"]
    return df


# --------------------------------------------------------------------------- models

@dataclass(frozen=True)
class _Spec:
    name: str
    title: str
    outcome: str
    outcome_label: str
    predictor: str
    predictor_label: str
    unit: str
    log_outcome: bool


SPECS = (
    _Spec("exposure_prolactin", "Recorded kratom exposure and prolactin", "ln_prolactin",
          "ln prolactin (ng/mL)", "exposure_per_100mg", "mitragynine exposure (per 100 mg/day)",
          "change in ln prolactin per 100 mg/day", True),
    _Spec("prolactin_craving", "Prolactin and craving", "craving",
          "craving NRS (0-10), weekly mean", "log2_prolactin", "prolactin (per doubling)",
          "craving points per doubling of prolactin", False),
    _Spec("prolactin_withdrawal", "Prolactin and withdrawal (SOWS)", "sows",
          "SOWS total (0-64), weekly mean", "log2_prolactin", "prolactin (per doubling)",
          "SOWS points per doubling of prolactin", False),
)


def _formula(df: pd.DataFrame, spec: _Spec) -> tuple[str, list[str]]:
    """The model formula and its two predictor terms (within, between). Sex is a covariate
    only when both sexes are present (otherwise the design would be singular)."""
    terms = [f"{spec.predictor}_within", f"{spec.predictor}_mean"]
    covariates = ["years_in_care"]
    if len(df) and df["sex"].nunique() > 1:
        covariates.insert(0, "C(sex)")
    return f"{spec.outcome} ~ " + " + ".join(terms + covariates), terms


def _not_estimable(fit: ModelFit, spec: _Spec, note: str) -> ModelFit:
    for term in ("within", "between"):
        fit.effects.append(Effect(spec.name, spec.outcome, term, spec.predictor, spec.unit,
                                  None, None, None, None, fit.n_patients, fit.n_observations,
                                  note=note))
    return fit


def _too_little_data(df: pd.DataFrame, n_pat: int) -> str | None:
    """Why the data cannot support the model, or ``None``."""
    within_patients = int((df.groupby("patient_id").size() >= 2).sum()) if len(df) else 0
    if n_pat < 3 or len(df) < 8 or within_patients < 2:
        return (f"not estimable: {n_pat} patients, {len(df)} observations, "
                f"{within_patients} patients with two or more")
    return None


def _fit_mixed(model: Any) -> tuple[Any, list[str], list[str]]:
    """Fit with each optimiser in turn until one converges (L-BFGS fails when the patient
    variance is near 0). Returns the result (``None`` if all failed), the warnings of the
    fit that was kept, and the errors of the optimisers that failed."""
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    res, errors, kept = None, [], []
    for method in OPTIMIZERS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = model.fit(reml=True, method=method)
            except (ValueError, np.linalg.LinAlgError) as exc:
                errors.append(f"{method}: {exc}")
                continue
        kept = caught
        if res.converged:
            break
    found = sorted({str(w.message).splitlines()[0] for w in kept
                    if issubclass(w.category, (ConvergenceWarning, RuntimeWarning))
                    or "singular" in str(w.message).lower()})
    if res is not None and not res.converged:
        found.append("the optimiser did not converge; treat the estimates with caution")
    return res, found, errors


def _effects(res: Any, spec: _Spec, terms: list[str], n_pat: int, n_obs: int) -> list[Effect]:
    """The within and between effects with their Wald CIs (and ratios for a log outcome)."""
    ci = res.conf_int(alpha=1 - CONFIDENCE)
    effects = []
    for term, col in (("within", terms[0]), ("between", terms[1])):
        est, lo, hi = float(res.params[col]), float(ci.loc[col, 0]), float(ci.loc[col, 1])
        eff = Effect(spec.name, spec.outcome, term, spec.predictor, spec.unit, est, lo, hi,
                     float(res.pvalues[col]), n_pat, n_obs)
        if spec.log_outcome:
            eff.ratio, eff.ratio_ci_low, eff.ratio_ci_high = (math.exp(est), math.exp(lo),
                                                              math.exp(hi))
        effects.append(eff)
    return effects


def _plot_points(df: pd.DataFrame, spec: _Spec) -> tuple[list[float], list[float]]:
    """Within-patient deviations of predictor and outcome (patient means removed)."""
    y_within = df[spec.outcome] - df.groupby("patient_id")[spec.outcome].transform("mean")
    return ([round(float(x), 4) for x in df[f"{spec.predictor}_within"]],
            [round(float(y), 4) for y in y_within])


def fit_model(draws: pd.DataFrame, spec: _Spec) -> ModelFit:
    """Fit one mixed model (random intercept per patient) and return its effects."""
    import statsmodels.formula.api as smf

    df = draws.dropna(subset=[spec.outcome, spec.predictor]) if len(draws) else draws
    n_pat = int(df["patient_id"].nunique()) if len(df) else 0
    formula, terms = _formula(df, spec)
    fit = ModelFit(spec.name, spec.title, formula + " + (1 | patient)", n_pat, int(len(df)), [],
                   x_label=f"{spec.predictor_label}, deviation from the patient's mean",
                   y_label=f"{spec.outcome_label}, deviation from the patient's mean")
    problem = _too_little_data(df, n_pat)
    if problem:
        return _not_estimable(fit, spec, problem)
    df = _split(df, spec.predictor).reset_index(drop=True)
    if float(df[f"{spec.predictor}_within"].std()) == 0.0:
        return _not_estimable(fit, spec, "not estimable: the predictor does not vary within "
                                         "patients")
    res, fit.warnings, errors = _fit_mixed(smf.mixedlm(formula, df, groups=df["patient_id"]))
    if res is None:
        return _not_estimable(fit, spec, "not estimable: " + "; ".join(errors))
    fit.effects = _effects(res, spec, terms, n_pat, fit.n_observations)
    fit.group_sd = float(math.sqrt(max(float(res.cov_re.iloc[0, 0]), 0.0)))
    fit.residual_sd = float(math.sqrt(float(res.scale)))
    fit.plot_x, fit.plot_y = _plot_points(df, spec)
    return fit


def analyze(tables: dict[str, pd.DataFrame], *, cohort: dict[str, int] | None = None,
            planted: dict[str, Any] | None = None) -> AnalysisResult:
    """Fit the three models on de-identified tables and return the results."""
    draws, excluded = draws_frame(tables)
    models = [fit_model(draws, spec) for spec in SPECS]
    counts = dict(cohort or {})
    counts.setdefault("patients_in_dataset", int(len(tables["patients"])))
    counts["prolactin_draws_analysed"] = int(len(draws))
    counts["patients_with_prolactin"] = int(draws["patient_id"].nunique()) if len(draws) else 0
    return AnalysisResult(
        models=models, cohort=counts, exclusions=excluded, planted=planted,
        exposure_definition=(
            "mean estimated mitragynine mg/day over the recorded days among the 7 days before "
            "the draw (else the 28 days before; 0 if none); daily mg from "
            "speciosa.pharmacology.doses.daily_mitragynine_mg"))


def analysis_key() -> bytes:
    """The key the analysis pseudonymises and withholds days with when no research secret
    is configured: derived from Django's secret key, so every process and every page view of
    one deployment withholds the same days (results do not change from view to view), and
    nothing keyed ever leaves the process."""
    from django.utils.crypto import salted_hmac

    return salted_hmac("speciosa.research.analysis", "withheld-days").digest()


def run_cohort_analysis(key: bytes | None = None, *, options: Any = None,
                        ) -> tuple[Any, AnalysisResult]:
    """Build the de-identified data set from the database and analyse it.

    The same data set a research export would hold (the same time axis, withheld days and
    k-anonymity step). Without ``key`` the site's research secret is used when it is set,
    else :func:`analysis_key`.
    """
    from . import dataset as rdataset
    from . import deid

    if key is None:
        try:
            key = deid.load_key()
        except deid.ResearchKeyError:
            key = analysis_key()
    ds = rdataset.build_dataset(deid.Deidentifier(key), options=options)
    cohort = {"patients_in_clinic": ds.n_patients_in_clinic, "patients_consented": ds.n_consented,
              "patients_exported": ds.n_exported}
    return ds, analyze(ds.tables, cohort=cohort, planted=planted_model())


def planted_model() -> dict[str, Any] | None:
    """The planted relationship of the synthetic demo clinic, when the database holds it.

    The demo records what it planted with the clinic it loads (the ``planted_model`` of its
    ``DemoClinic`` audit entry): that is the dataset's own metadata, read here as data, so the
    analysis shows the answer a synthetic clinic should give without importing the demo."""
    from speciosa.clinic.models import AuditEntry

    entry = AuditEntry.objects.filter(model="DemoClinic").order_by("-pk").first()
    planted = (entry.after or {}).get("planted_model") if entry is not None else None
    if not planted or "beta_per_100mg" not in planted:
        return None
    return {"model": planted.get("model", "exposure_prolactin"),
            "term": planted.get("term", "within"),
            "beta_per_100mg": planted["beta_per_100mg"],
            "note": "This database holds the synthetic demo clinic; its prolactin values were "
                    "generated with this slope. Recovering it checks the software; it is not "
                    "evidence about kratom."}


# --------------------------------------------------------------------------- plot

def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo or 1.0
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [round(start + i * step, 10) for i in range(int((hi - start) / step) + 1)]


@dataclass(frozen=True)
class _Plot:
    """The plot area of a scatter: data ranges (padded) mapped onto pixels."""

    xlo: float
    xhi: float
    ylo: float
    yhi: float
    left: int = 56
    top: int = 28
    width: float = 0.0   # of the plot area
    height: float = 0.0

    @classmethod
    def around(cls, xs: np.ndarray, ys: np.ndarray, width: int, height: int) -> _Plot:
        xlo, xhi, ylo, yhi = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
        pad_x, pad_y = (xhi - xlo or 1) * 0.05, (yhi - ylo or 1) * 0.05
        right, bottom = 14, 46
        return cls(xlo - pad_x, xhi + pad_x, ylo - pad_y, yhi + pad_y,
                   width=width - cls.left - right, height=height - cls.top - bottom)

    def px(self, x: float) -> float:
        return self.left + (x - self.xlo) / (self.xhi - self.xlo) * self.width

    def py(self, y: float) -> float:
        return self.top + (self.yhi - y) / (self.yhi - self.ylo) * self.height


def _svg_axes(p: _Plot, fit: ModelFit, height: int) -> list[str]:
    """Ticks, tick labels and axis titles."""
    esc, left, top, pw, ph = html.escape, p.left, p.top, p.width, p.height
    parts = []
    for t in _ticks(p.xlo, p.xhi):
        parts.append(f'<line x1="{p.px(t):.1f}" x2="{p.px(t):.1f}" y1="{top + ph}" '
                     f'y2="{top + ph + 4}" stroke="#5b6575"/><text x="{p.px(t):.1f}" '
                     f'y="{top + ph + 16}" text-anchor="middle" fill="#5b6575">{t:g}</text>')
    for t in _ticks(p.ylo, p.yhi):
        parts.append(f'<line x1="{left - 4}" x2="{left}" y1="{p.py(t):.1f}" y2="{p.py(t):.1f}" '
                     f'stroke="#5b6575"/><text x="{left - 6}" y="{p.py(t) + 4:.1f}" '
                     f'text-anchor="end" fill="#5b6575">{t:g}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">'
                 f'{esc(fit.x_label)}</text>')
    parts.append(f'<text transform="translate(12 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
                 f'{esc(fit.y_label.split(",")[0])} (within)</text>')
    return parts


def _svg_slope(p: _Plot, fit: ModelFit, within: Effect) -> list[str]:
    """The within-patient slope through the origin of the deviations, and its label."""
    b = float(within.estimate)
    return [f'<line x1="{p.px(p.xlo):.1f}" y1="{p.py(b * p.xlo):.1f}" x2="{p.px(p.xhi):.1f}" '
            f'y2="{p.py(b * p.xhi):.1f}" stroke="#a4460b" stroke-width="2"/>',
            f'<text x="{p.left + p.width - 4}" y="{p.top + 14}" text-anchor="end" '
            f'fill="#a4460b">within slope {b:.3f} ({within.ci_low:.3f} to {within.ci_high:.3f}); '
            f'{fit.n_patients} patients, {fit.n_observations} draws</text>']


def scatter_svg(fit: ModelFit, *, width: int = 520, height: int = 340) -> str:
    """An inline SVG: within-patient deviations (one dot per draw) and the within slope.

    Self-contained (no script, no external resource); text is escaped.
    """
    esc = html.escape
    within = next((e for e in fit.effects if e.term == "within"), None)
    title = f"{fit.title}: within-patient deviations"
    if not fit.plot_x or within is None or within.estimate is None:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 60" width="100%" '
                f'class="research-plot" role="img" aria-label="{esc(title)}"><text x="8" y="30" '
                f'font-size="13">{esc(title)}: not estimable</text></svg>')
    xs, ys = np.asarray(fit.plot_x), np.asarray(fit.plot_y)
    p = _Plot.around(xs, ys, width, height)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
             f'width="100%" class="research-plot" role="img" aria-label="{esc(title)}" '
             f'font-family="system-ui, sans-serif" font-size="11">',
             f'<title>{esc(title)}</title>',
             f'<text x="{p.left}" y="16" font-size="13" font-weight="600">{esc(fit.title)}</text>',
             f'<rect x="{p.left}" y="{p.top}" width="{p.width}" height="{p.height}" fill="#fff" '
             f'stroke="#d9dee6"/>']
    parts += _svg_axes(p, fit, height)
    parts += [f'<circle cx="{p.px(float(x)):.1f}" cy="{p.py(float(y)):.1f}" r="2.6" '
              f'fill="#1f6f5c" fill-opacity="0.45"/>' for x, y in zip(xs, ys, strict=True)]
    parts += _svg_slope(p, fit, within)
    parts.append("</svg>")
    return "".join(parts)


def results_text(result: AnalysisResult) -> str:
    """A plain-text report of the results (for the CLI)."""
    lines = ["Speciosa cohort analysis (de-identified, consented patients only)", ""]
    lines += [f"  {k.replace('_', ' ')}: {v}" for k, v in result.cohort.items()]
    lines += ["  excluded draws: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                               for k, v in result.exclusions.items()), ""]
    lines.append(f"Exposure: {result.exposure_definition}.")
    lines.append("")
    for m in result.models:
        lines.append(f"{m.title}  [{m.formula}; patients {m.n_patients}, draws {m.n_observations}]")
        for e in m.effects:
            if not e.estimable:
                lines.append(f"  {e.term:<8} {e.note}")
                continue
            text = (f"  {e.term:<8} {e.estimate:+.3f} (95% CI {e.ci_low:+.3f} to {e.ci_high:+.3f}), "
                    f"p={e.p_value:.3g}  {e.unit}")
            if e.ratio is not None:
                text += f"; ratio {e.ratio:.3f} ({e.ratio_ci_low:.3f} to {e.ratio_ci_high:.3f})"
            lines.append(text)
        for w in m.warnings:
            lines.append(f"  warning: {w}")
        lines.append("")
    if result.planted:
        lines.append(f"Synthetic demo: planted within slope {result.planted['beta_per_100mg']} per "
                     f"100 mg/day. {result.planted['note']}")
        lines.append("")
    lines.append(result.statement)
    return "\n".join(lines)
