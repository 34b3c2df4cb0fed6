"""The planted prolactin relationship of the demo clinic (synthetic; NOT evidence).

Prolactin is generated as ``B_i * exp(beta * E_ij / 100) * exp(eps_ij)`` (see the package
docstring of :mod:`speciosa.demo` for each term), so that the research analysis has a known
answer to find. The demo records this model with the clinic it loads (the ``DemoClinic``
audit entry's ``planted_model``); :mod:`speciosa.research` reads it from there, as data, and
never imports the demo.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

#: beta: log prolactin rises by this much per 100 mg/day of recorded mitragynine (synthetic).
PLANTED_PROLACTIN_LOG_SLOPE_PER_100MG = 0.15
#: Median baseline prolactin by sex, ng/mL (pharmacology.md section 6.1).
PROLACTIN_BASELINE_MEDIAN_NG_PER_ML = {"male": 7.0, "female": 12.0}
#: Between-patient SD of log baseline prolactin.
PROLACTIN_BETWEEN_PATIENT_SD_LOG = 0.25
#: Within-patient (draw-to-draw) SD of log prolactin.
PROLACTIN_WITHIN_PATIENT_SD_LOG = 0.15
#: Days before the draw over which recorded exposure is averaged.
PROLACTIN_EXPOSURE_WINDOW_DAYS = 7


def recorded_exposure_mg_per_day(day_mg: dict[dt.date, float], draw_day: dt.date) -> float:
    """Recorded mean daily mitragynine (mg/day) before a draw on ``draw_day``.

    ``day_mg`` maps each recorded diary day to the sum of its doses' ``mitragynine_mg``
    (unconvertible doses count 0). The mean is over the diary days recorded in the
    :data:`PROLACTIN_EXPOSURE_WINDOW_DAYS` days before ``draw_day``; if there are none, over
    the 28 days before; 0.0 if none at all. This is :math:`E_{ij}` of the planted model.
    """
    for window in (PROLACTIN_EXPOSURE_WINDOW_DAYS, 28):
        vals = [day_mg[draw_day - dt.timedelta(days=k)] for k in range(1, window + 1)
                if draw_day - dt.timedelta(days=k) in day_mg]
        if vals:
            return float(sum(vals) / len(vals))
    return 0.0


def planted_model() -> dict[str, Any]:
    """The planted model as data (JSON): stored with the demo clinic for the research analysis
    to show as the synthetic answer it should recover."""
    return {
        "model": "exposure_prolactin", "term": "within",
        "formula": "prolactin_ng_per_ml = B_i * exp(beta * E_ij / 100) * exp(eps_ij)",
        "beta_per_100mg": PLANTED_PROLACTIN_LOG_SLOPE_PER_100MG,
        "baseline_median_ng_per_ml": dict(PROLACTIN_BASELINE_MEDIAN_NG_PER_ML),
        "between_patient_sd_log": PROLACTIN_BETWEEN_PATIENT_SD_LOG,
        "within_patient_sd_log": PROLACTIN_WITHIN_PATIENT_SD_LOG,
        "exposure": f"mean recorded daily mitragynine mg over diary days in the "
                    f"{PROLACTIN_EXPOSURE_WINDOW_DAYS} days before the draw (else 28 days)",
        "synthetic": True,
    }
