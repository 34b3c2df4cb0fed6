"""Linear oral two-compartment model of mitragynine with 7-hydroxymitragynine formed from it.

Structure
---------
Four amounts (mg): gut ``Ag``, central ``Ac``, peripheral ``Ap`` (mitragynine, MG) and the
7-hydroxymitragynine (7-OH) compartment ``Am``::

    dAg/dt = -ka Ag
    dAc/dt =  ka Ag - (CL + Q)/Vc Ac + Q/Vp Ap
    dAp/dt =  Q/Vc Ac - Q/Vp Ap
    dAm/dt =  fm CL/Vc Ac - km Am                  (7-OH formed by CYP3A4 from central MG)

Each dose is a bolus into ``Ag``. Concentrations: MG ``1000 Ac/Vc`` and 7-OH
``1000 (414.5/398.5) Am/Vm`` in ng/mL (mg/L x 1000; molar masses from [6]_). Oral
bioavailability is unknown in humans [1]_, so every volume and clearance is *apparent*
(divided by F); the fraction ``fm`` of MG clearance that forms 7-OH is not identifiable either,
so the 7-OH side is parametrised by ``clm_l_per_h = CL_7OH/fm`` and ``km_per_h``
(``Vm/fm = clm/km``).

Exact solution
--------------
The system is linear with eigenvalues ``ka``, ``alpha``, ``beta`` (the two roots of the
two-compartment disposition, ``alpha > beta``) and ``km``. The response to a 1 mg bolus is a
sum of four exponentials, ``C(t) = sum_i c_i exp(-lambda_i t)``, with the classic
coefficients [7]_::

    c_i(MG)  = 1000 ka/Vc (k21 - lambda_i) / prod_{j != i} (lambda_j - lambda_i),  i in {ka, alpha, beta}
    c_i(7OH) = r K c_i(MG) / (km - lambda_i),  c_km(7OH) = -sum_i c_i(7OH),  K = CL km / clm

with ``r = 414.5/398.5``. For a dose log, the *mode states*
``S_i(t) = sum_{t_j <= t} D_j exp(-lambda_i (t - t_j))`` obey
``S_i(t + h) = exp(-lambda_i h) S_i(t) + (doses in (t, t + h], each decayed from its own time)``,
which is exact (no time stepping error), and the outputs are ``sum_i c_i S_i(t)``.
:func:`simulate` propagates these states from output time to output time, vectorised over
subjects (and chunked over two threads), so its cost is a few multiply-adds per subject,
output time and mode. Coinciding eigenvalues (``ka == km`` in a virtual patient) make the
coefficients singular; they are separated by a relative 1e-7 (error of that order, far
below any clinical meaning), see :func:`separate_rates`.

Typical values and their derivation
-----------------------------------
Calibrated only to Table A of the project's pharmacology reference (Tanna et al. 2022 [1]_,
single 2 g tea = 39 mg MG, medians tabulated in [2]_); Trakulsrichai et al. 2015 [3]_ CL/F is
internally inconsistent and is *not* used.

1. ``CL/F = dose / AUC = 39 000 ug / 167 ug.h/L = 233.5 L/h`` (the table's CL/F is 233).
2. ``beta = ln 2 / 45.3 h`` (terminal half-life).
3. ``ka`` is not reported (UNCONFIRMED); the reference suggests 1-3 /h. Cmax 32.6 ng/mL,
   tmax 1 h, t1/2 45.3 h and AUC 167 ng.h/mL are met exactly for ka of about 0.9-1.2 /h;
   from 1.5 /h up they can no longer all be met (residuals grow). ``ka = 1.0 /h`` is taken.
4. With ``CL`` and ``ka`` fixed, ``Vc/F``, ``Q/F``, ``Vp/F`` are solved (least squares, exact
   to < 0.1 %) from Cmax = 32.6 ng/mL, tmax = 1.0 h and t1/2 = 45.3 h:
   ``Vc/F = 436 L``, ``Q/F = 213 L/h``, ``Vp/F = 7180 L``. ``Vz/F = CL/beta = 15 300 L``,
   within the reported range 5190-19 700 L (median 12 700; medians of n = 5 need not be
   mutually consistent).
5. 7-OH: the AUC ratio of linear metabolite kinetics is ``AUC_7OH/AUC_MG = CL/clm`` (molar).
   Table A gives 106/420 nM.h = 0.252, so ``clm = 233.5/0.252 = 926 L/h``. ``km`` is solved
   from 7-OH Cmax = 6.7 ng/mL: ``km = 1.22 /h`` (t1/2 0.57 h; 7-OH is unstable in human
   plasma [4]_). The model's 7-OH tmax is then 1.9 h (reported 1 h, range 0.75-2.5 [1]_;
   1.2-1.8 h median in [5]_). The reported single-dose 7-OH half-life (5.7 h) is not
   reproduced: here 7-OH is formation-rate limited, so after a day it follows MG's terminal
   phase, as the 24.7 h 7-OH half-life after repeated dosing in [5]_ suggests.

Time to steady state follows from beta (4.3 terminal half-lives to 95 %), 9 days (216 h); see
:func:`time_to_steady_state_h`, and Huestis et al. report 8-9 days [5]_.

Between-subject variability (log-normal, SD on the log scale, ``omega``): derived from the
ranges of Table A (n = 5; the expected range of 5 normal draws is 2.33 SD):

* ``omega_f = 0.55`` on relative bioavailability, scaling all apparent clearances and
  volumes together: ln(177/50.1)/2.33 = 0.54 (Cmax), ln(1360/324)/2.33 = 0.62 (AUC).
* ``omega_cl = omega_vp = 0.15``: the half-life range ln(50.2/31.9)/2.33 = 0.19 is the
  combined spread of CL and Vp, sqrt(0.15^2 + 0.15^2) = 0.21.
* ``omega_ka = 0.35``: tmax range ln(1.5/0.75)/2.33 = 0.30 in [1]_ and CV 42 % in [3]_.
* ``omega_clm = 0.30``: 7-OH AUC range ln(126/60.8)/2.33 = 0.31 in [1]_.
* ``omega_km = 0.30``: assumed, no human estimate.

References
----------
.. [1] Tanna RS et al. Pharmaceutics 2022;14(3):620. doi:10.3390/pharmaceutics14030620
   (``tanna-2022``).
.. [2] DMD 2023;51(8):923-935, Table 3. doi:10.1124/dmd.122.001005
   (``dmd-2023-kratom-pk-review``).
.. [3] Trakulsrichai S et al. Drug Des Devel Ther 2015;9:2421-2429 (``trakulsrichai-2015``).
.. [4] Kamble SH et al. ACS Pharmacol Transl Sci 2020;3(6):1063-1068 (``kamble-2020``).
.. [5] Huestis MA et al. Molecules 2024;29(5):984 (``huestis-2024``).
.. [6] Molar masses 398.5 (MG) and 414.5 g/mol (7-OH), project pharmacology reference.
.. [7] Gibaldi M, Perrier D. Pharmacokinetics, 2nd ed., ch. 2-3 (two-compartment oral
   solution).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "MW_HYDROXYMITRAGYNINE_G_PER_MOL",
    "MW_MITRAGYNINE_G_PER_MOL",
    "MODEL_NAME",
    "MODEL_STRUCTURE",
    "PARAMETER_NAMES",
    "REPEATED_DOSE_HALF_LIFE",
    "TYPICAL",
    "VARIABILITY",
    "Modes",
    "Parameter",
    "as_arrays",
    "modes",
    "sample_population",
    "separate_rates",
    "simulate",
    "terminal_half_life_h",
    "time_to_steady_state_h",
]

MW_MITRAGYNINE_G_PER_MOL = 398.5
MW_HYDROXYMITRAGYNINE_G_PER_MOL = 414.5
_MW_RATIO = MW_HYDROXYMITRAGYNINE_G_PER_MOL / MW_MITRAGYNINE_G_PER_MOL

MODEL_NAME = "speciosa-mg-7oh-2cmt-v1"
MODEL_STRUCTURE = (
    "Linear oral two-compartment model of mitragynine (first-order absorption, central "
    "elimination) with 7-hydroxymitragynine formed from central mitragynine and eliminated "
    "first-order; apparent parameters (oral bioavailability unknown); doses are boluses; "
    "exact closed-form propagation between events."
)


@dataclass(frozen=True)
class Parameter:
    """A model parameter with its unit and the citation id(s) it rests on.

    Attributes
    ----------
    name : str
        Key, with the unit in the name (``cl_l_per_h``).
    value : float
        Typical value.
    unit : str
        Unit, e.g. ``"L/h"``.
    source : str
        Evidence-registry citation id; several ids are separated by ``"; "``.
    note : str
        How the value was obtained (``DERIVED: ...`` shows the derivation).
    """

    name: str
    value: float
    unit: str
    source: str
    note: str

    @property
    def source_ids(self) -> tuple[str, ...]:
        """The citation ids in :attr:`source`."""
        return tuple(s.strip() for s in self.source.split(";") if s.strip())


def _p(name: str, value: float, unit: str, source: str, note: str) -> tuple[str, Parameter]:
    return name, Parameter(name, value, unit, source, note)


_CL = 39_000.0 / 167.0  # ug / (ug.h/L) = L/h, Table A

#: Typical (median-patient) values. Keys are the names :func:`simulate` expects.
TYPICAL: Mapping[str, Parameter] = MappingProxyType(
    dict(
        [
            _p("ka_per_h", 1.0, "1/h", "tanna-2022",
               "DERIVED: Table A Cmax, tmax, t1/2 and AUC are met together only for ka "
               "about 0.9-1.2 /h (1-3 /h guidance; human ka UNCONFIRMED)."),
            _p("cl_l_per_h", round(_CL, 1), "L/h", "tanna-2022; dmd-2023-kratom-pk-review",
               "DERIVED: CL/F = 39 mg / 167 ng.h/mL = 233.5 L/h (Table A lists 233)."),
            _p("vc_l", 436.0, "L", "tanna-2022",
               "DERIVED: solved with Q/F and Vp/F from Cmax 32.6 ng/mL, tmax 1 h, "
               "t1/2 45.3 h at ka 1 /h and CL/F 233.5 L/h."),
            _p("q_l_per_h", 213.0, "L/h", "tanna-2022", "DERIVED: as vc_l."),
            _p("vp_l", 7180.0, "L", "tanna-2022", "DERIVED: as vc_l."),
            _p("km_per_h", 1.22, "1/h", "tanna-2022; kamble-2020",
               "DERIVED: 7-OH elimination rate solved from 7-OH Cmax 6.7 ng/mL "
               "(16.1 nM); fast, as 7-OH is unstable in human plasma."),
            _p("clm_l_per_h", round(_CL / (106.0 / 420.0), 1), "L/h", "tanna-2022",
               "DERIVED: apparent 7-OH clearance over the fraction of MG converted, "
               "CL/(AUC ratio) = 233.5/(106/420 nM.h) = 925 L/h."),
        ]
    )
)

PARAMETER_NAMES: tuple[str, ...] = tuple(TYPICAL)

#: Between-subject variability: SD of the log of each factor (log-normal).
VARIABILITY: Mapping[str, Parameter] = MappingProxyType(
    dict(
        [
            _p("omega_f", 0.55, "SD of ln", "tanna-2022",
               "DERIVED: relative bioavailability, scales CL, Vc, Q, Vp, clm together; "
               "Cmax range ln(177/50.1)/2.33 = 0.54, AUC ln(1360/324)/2.33 = 0.62 (n = 5)."),
            _p("omega_cl", 0.15, "SD of ln", "tanna-2022",
               "DERIVED: with omega_vp gives t1/2 spread 0.21 vs ln(50.2/31.9)/2.33 = 0.19."),
            _p("omega_vp", 0.15, "SD of ln", "tanna-2022", "DERIVED: as omega_cl."),
            _p("omega_ka", 0.35, "SD of ln", "tanna-2022; trakulsrichai-2015",
               "DERIVED: tmax range ln(1.5/0.75)/2.33 = 0.30; Tmax CV 42 % in chronic users."),
            _p("omega_clm", 0.30, "SD of ln", "tanna-2022",
               "DERIVED: 7-OH AUC range ln(126/60.8)/2.33 = 0.31."),
            _p("omega_km", 0.30, "SD of ln", "kamble-2020",
               "ASSUMED: no human estimate of 7-OH elimination variability."),
        ]
    )
)

#: Mitragynine half-life after repeated daily doses: the highest mean terminal half-life
#: after 15 daily doses of leaf powder, 67.9 h (43.4 h after one dose) [5]_. The model's own
#: terminal half-life (45.3 h, :func:`terminal_half_life_h`) is calibrated to a single dose,
#: so what needs the elimination of a *regular* user (when a drug has left the body after
#: the last dose, how long a dose still counts as current use) reads this parameter instead.
REPEATED_DOSE_HALF_LIFE = Parameter(
    "mg_half_life_repeated_dose_h", 67.9, "h", "huestis-2024",
    "REPORTED: highest mean mitragynine t1/2 after 15 daily doses (Huestis 2024, Table C of "
    "the pharmacology reference); not used by simulate, which is single-dose calibrated.",
)


_OMEGA_TARGETS = {
    "omega_cl": ("cl_l_per_h",),
    "omega_vp": ("vp_l",),
    "omega_ka": ("ka_per_h",),
    "omega_clm": ("clm_l_per_h",),
    "omega_km": ("km_per_h",),
}
_F_SCALED = ("cl_l_per_h", "vc_l", "q_l_per_h", "vp_l", "clm_l_per_h")


def as_arrays(params: Mapping[str, object], n_subjects: int | None = None) -> dict[str, NDArray]:
    """Return ``{name: float64 array (n_subjects,)}`` from Parameters, floats or arrays.

    Parameters
    ----------
    params : mapping
        Values for every name in :data:`PARAMETER_NAMES`; each a :class:`Parameter`, a number
        or an array broadcastable to ``(n_subjects,)``.
    n_subjects : int, optional
        Number of subjects; by default the largest array length (1 for scalars).
    """
    raw = {}
    for name in PARAMETER_NAMES:
        if name not in params:
            raise KeyError(f"parameter {name!r} missing")
        v = params[name]
        v = v.value if isinstance(v, Parameter) else v
        raw[name] = np.atleast_1d(np.asarray(v, dtype=np.float64))
    n = n_subjects or max(a.shape[0] for a in raw.values())
    out = {k: np.broadcast_to(a, (n,)).astype(np.float64, copy=True) for k, a in raw.items()}
    for k, a in out.items():
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"parameter {k} must be finite and > 0")
    return out


def sample_population(
    n_subjects: int,
    rng: np.random.Generator | int | None = 0,
    typical: Mapping[str, Parameter] = TYPICAL,
    variability: Mapping[str, Parameter] = VARIABILITY,
) -> dict[str, NDArray]:
    """Draw virtual patients: typical values times log-normal between-subject factors.

    Parameters
    ----------
    n_subjects : int
        Number of virtual patients.
    rng : numpy.random.Generator or int or None
        Generator or seed (reproducible for a given seed).
    typical, variability : mapping of Parameter
        Typical values and ``omega_*`` SDs (see module docstring for their derivation).

    Returns
    -------
    dict of str to ndarray, shape (n_subjects,)
    """
    rng = np.random.default_rng(rng)
    out = {k: np.full(n_subjects, typical[k].value) for k in PARAMETER_NAMES}
    f = np.exp(variability["omega_f"].value * rng.standard_normal(n_subjects))
    for k in _F_SCALED:
        out[k] /= f
    for om, targets in _OMEGA_TARGETS.items():
        z = np.exp(variability[om].value * rng.standard_normal(n_subjects))
        for k in targets:
            out[k] *= z
    return out


@dataclass(frozen=True)
class Modes:
    """Exponential modes of the unit-dose response, per subject.

    Attributes
    ----------
    rates_per_h : ndarray, shape (n, 4)
        ``ka, alpha, beta, km``.
    mg_coef : ndarray, shape (n, 4)
        MG concentration (ng/mL) per mg dose for each mode (0 for ``km``).
    oh_coef : ndarray, shape (n, 4)
        7-OH concentration (ng/mL) per mg MG dose for each mode.
    """

    rates_per_h: NDArray
    mg_coef: NDArray
    oh_coef: NDArray


_REL_SEP = 1e-7


def separate_rates(rates: NDArray, rel: float = _REL_SEP) -> NDArray:
    """Nudge ``ka`` (column 0) and ``km`` (column 3) away from other eigenvalues.

    ``alpha > beta`` always differ; ``ka`` or ``km`` may coincide with another rate in a
    virtual patient, where the closed form is singular. A rate within ``rel`` (relative) of
    another is moved by ``2 rel``; the induced error in concentrations is of that order.
    """
    r = rates.copy()
    for col, others in ((0, (1, 2)), (3, (0, 1, 2))):
        for _ in range(3):
            moved = False
            for o in others:
                close = np.abs(r[:, col] - r[:, o]) <= rel * np.maximum(r[:, col], r[:, o])
                if np.any(close):
                    r[close, col] = r[close, o] * (1.0 + 2.0 * rel)
                    moved = True
            if not moved:
                break
    return r


def modes(params: Mapping[str, object], n_subjects: int | None = None) -> Modes:
    """Eigenvalues and unit-dose coefficients of MG and 7-OH for each subject.

    Parameters
    ----------
    params : mapping
        See :func:`as_arrays`.
    n_subjects : int, optional
        Broadcast length.

    Returns
    -------
    Modes

    References
    ----------
    .. [1] Gibaldi M, Perrier D. Pharmacokinetics, 2nd ed. (two-compartment oral model).
    """
    p = as_arrays(params, n_subjects)
    ka, cl, vc, q, vp = p["ka_per_h"], p["cl_l_per_h"], p["vc_l"], p["q_l_per_h"], p["vp_l"]
    km, clm = p["km_per_h"], p["clm_l_per_h"]
    k10, k12, k21 = cl / vc, q / vc, q / vp
    s = k10 + k12 + k21
    disc = np.sqrt(s * s - 4.0 * k10 * k21)
    alpha = 0.5 * (s + disc)
    beta = k10 * k21 / alpha  # product of roots; avoids cancellation in (s - disc)/2
    rates = separate_rates(np.stack([ka, alpha, beta, km], axis=1))
    lam = rates[:, :3]
    mg = np.zeros_like(rates)
    for i in range(3):
        den = np.ones_like(ka)
        for j in range(3):
            if j != i:
                den = den * (lam[:, j] - lam[:, i])
        mg[:, i] = 1000.0 * (rates[:, 0] / vc) * (k21 - lam[:, i]) / den
    kf = _MW_RATIO * cl * rates[:, 3] / clm
    oh = np.zeros_like(rates)
    oh[:, :3] = kf[:, None] * mg[:, :3] / (rates[:, 3:4] - lam)
    oh[:, 3] = -oh[:, :3].sum(axis=1)
    return Modes(rates, mg, oh)


def terminal_half_life_h(params: Mapping[str, object]) -> NDArray:
    """Terminal (beta-phase) half-life of mitragynine in hours, per subject."""
    return np.log(2.0) / modes(params).rates_per_h[:, 2]


def time_to_steady_state_h(
    params: Mapping[str, object], interval_h: float = 24.0, fraction: float = 0.95
) -> NDArray:
    """Time until the MG trough under a fixed regimen reaches ``fraction`` of steady state.

    The regimen is equal doses every ``interval_h`` hours from time 0; the trough after ``n``
    doses is ``sum_i c_i e^{-l_i tau} (1 - e^{-n l_i tau}) / (1 - e^{-l_i tau})`` and at steady
    state the same without ``e^{-n l_i tau}``. Returned is ``n * interval_h`` for the smallest
    such ``n`` (the time of that trough), per subject. For linear kinetics it does not depend
    on the dose. With the typical values and daily dosing, 9 days (216 h); Huestis et
    al. 2024 report 8-9 days.

    References
    ----------
    .. [1] Huestis MA et al. Molecules 2024;29(5):984 (``huestis-2024``).
    """
    m = modes(params)
    tau = float(interval_h)
    lam, c = m.rates_per_h, m.mg_coef
    q = np.exp(-lam * tau)
    ss = (c * q / (1.0 - q)).sum(axis=1)
    n_max = int(np.ceil(60.0 * np.log(2.0) / lam[:, 2].min() / tau)) + 2
    from speciosa.pharmacology import _kernels  # the search, per subject, stops at its answer

    first = np.empty(lam.shape[0], dtype=np.int64)
    _kernels.steady_state_doses(np.ascontiguousarray(c), np.ascontiguousarray(q),
                                fraction * ss, n_max, first)
    return first * tau


# --------------------------------------------------------------------------- engine

def _injections(t_out: NDArray, times: NDArray, amounts: NDArray, rates: NDArray):
    """Per output index, the mode-state increments (4, n) of the shared doses just before it."""
    g = np.searchsorted(t_out, times, side="left")
    n_out = t_out.shape[0]
    keep = np.nonzero(g < n_out)[0]
    if keep.size == 0:
        return {}
    keep = keep[np.argsort(g[keep], kind="stable")]
    gk = g[keep]
    dt = t_out[gk] - times[keep]  # >= 0
    inc_all = np.exp(-rates.T[:, :, None] * dt[None, None, :])  # (4, n, m)
    inc_all *= amounts[:, keep][None, :, :]
    starts = np.r_[0, np.flatnonzero(np.diff(gk)) + 1]
    if starts.size != gk.size:
        inc_all = np.add.reduceat(inc_all, starts, axis=2)
    return {int(gk[s0]): inc_all[:, :, i] for i, s0 in enumerate(starts)}


def _combine(rows: NDArray, coef: NDArray, states: NDArray, tmp: NDArray) -> None:
    """``rows[...] = sum_i coef[i] * states[i]`` without reductions over a short axis."""
    np.multiply(states[0], coef[0], out=rows)
    for i in range(1, coef.shape[0]):
        np.multiply(states[i], coef[i], out=tmp)
        np.add(rows, tmp, out=rows)


def _run_steps(t_out, inj, rates, cm, co, mg_rows, oh_rows) -> None:
    """Shared dose times, irregular output grid: propagate from output time to output time."""
    n = rates.shape[0]
    S = np.zeros((4, n))
    tmp = np.empty(n)
    lamT = np.ascontiguousarray(rates.T)
    dts = np.diff(t_out)
    uniform = dts.size > 0 and np.allclose(dts, dts[0], rtol=1e-9, atol=0.0)
    decay = np.exp(-lamT * dts[0]) if uniform else None
    max_step = float(dts.max()) if dts.size else 0.0
    # flush states below 1e-200 often enough that none becomes subnormal (slow arithmetic)
    flush_every = max(1, int(200.0 / max(float(rates.max()) * max_step, 1e-12)))
    for k in range(t_out.shape[0]):
        if k:
            S *= decay if uniform else np.exp(-lamT * dts[k - 1])
            if k % flush_every == 0:
                S *= S > 1e-200
        add = inj.get(k)
        if add is not None:
            S += add
        _combine(mg_rows[k], cm, S, tmp)
        if oh_rows is not None:
            _combine(oh_rows[k], co, S, tmp)


_MAX_SEGMENT = 24


def _segment_sum(out: NDArray, powers: NDArray, w: NDArray, length: int, t1: NDArray,
                 t2: NDArray) -> None:
    """``out = sum_i w[i] * powers[i, :length]``; the (large) output is written only once."""
    a, b = t1[:length], t2[:length]
    np.multiply(powers[0, :length], w[0], out=a)
    last = w.shape[0] - 1
    for i in range(1, last):
        np.multiply(powers[i, :length], w[i], out=b)
        np.add(a, b, out=a)
    np.multiply(powers[last, :length], w[last], out=b)
    np.add(a, b, out=out)


def _run_segments(t_out, inj, rates, cm, co, mg_rows, oh_rows) -> None:  # noqa: C901
    """Fast path (shared dose times, uniform output grid): between dose events the states
    are geometric sequences, so each segment of output times is filled at once from a
    table of powers ``a_i^m`` (``a_i = exp(-lambda_i h)``)."""
    n = rates.shape[0]
    n_out = t_out.shape[0]
    h = float(t_out[1] - t_out[0])
    lm = min(_MAX_SEGMENT, n_out)
    powers = np.empty((4, lm + 1, n))
    powers[:, 0] = 1.0
    powers[:, 1] = np.exp(-rates.T * h)
    for k in range(2, lm + 1):
        np.multiply(powers[:, k - 1], powers[:, 1], out=powers[:, k])
    powers[powers < 1e-200] = 0.0  # keeps states away from slow subnormal numbers
    bounds = sorted({0, *inj, n_out})  # an event at index 0 must not be added twice
    S = np.zeros((4, n))
    t1 = np.empty((lm, n))
    t2 = np.empty((lm, n))
    w_mg = np.empty((3, n))
    w_oh = np.empty((4, n))
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if lo in inj:
            S += inj[lo]
        pos = lo
        while pos < hi:
            length = min(lm, hi - pos)
            np.multiply(S[:3], cm, out=w_mg)
            np.multiply(S, co, out=w_oh)
            _segment_sum(mg_rows[pos:pos + length], powers, w_mg, length, t1, t2)
            if oh_rows is not None:
                _segment_sum(oh_rows[pos:pos + length], powers, w_oh, length, t1, t2)
            if pos + length < n_out:
                S *= powers[:, length]
            pos += length


def _run_chunk(t_out, times, amounts, m: Modes, mg_out, oh_out, cols: slice) -> None:
    rates = m.rates_per_h[cols]
    cm = np.ascontiguousarray(m.mg_coef[cols, :3].T)  # (3, n)
    co = np.ascontiguousarray(m.oh_coef[cols].T)  # (4, n)
    inj = _injections(t_out, times, amounts[cols], rates)
    mg_rows = mg_out[:, cols]
    oh_rows = None if oh_out is None else oh_out[:, cols]
    dts = np.diff(t_out)
    uniform = dts.size > 0 and dts[0] > 0 and np.allclose(dts, dts[0], rtol=1e-9, atol=0.0)
    if uniform:
        _run_segments(t_out, inj, rates, cm, co, mg_rows, oh_rows)
    else:
        _run_steps(t_out, inj, rates, cm, co, mg_rows, oh_rows)


def _simulate_per_subject(t_out, times, amounts, m: Modes, hydroxy, workers):
    """Per-subject dose times: the compiled cross-subject loop (see :mod:`._kernels`)."""
    from speciosa.pharmacology import _kernels

    n, n_out = times.shape[0], t_out.shape[0]
    order = np.argsort(times, axis=1, kind="stable")
    t_sorted = np.take_along_axis(times, order, axis=1)
    a_sorted = np.take_along_axis(amounts, order, axis=1)
    keep = a_sorted != 0  # padding
    counts = keep.sum(axis=1)
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    out_off = np.arange(n + 1, dtype=np.int64) * n_out
    r = _kernels.run_propagate(
        off, np.ascontiguousarray(t_sorted[keep]), np.ascontiguousarray(a_sorted[keep]),
        out_off, t_out, np.ascontiguousarray(m.rates_per_h),
        np.ascontiguousarray(m.mg_coef[:, :3]), np.ascontiguousarray(m.oh_coef),
        hydroxy=hydroxy, workers=workers)
    oh = r["oh"]
    return r["mg"].reshape(n, n_out), (None if oh is None else oh.reshape(n, n_out))


def simulate(
    dose_times_h: ArrayLike,
    dose_mg: ArrayLike,
    t_out_h: ArrayLike,
    params: Mapping[str, object] = TYPICAL,
    *,
    chunk_size: int = 2048,
    workers: int | None = None,
    hydroxy: bool = True,
) -> tuple[NDArray, NDArray | None]:
    """Exact MG and 7-OH plasma concentrations for oral bolus doses, for many subjects.

    Parameters
    ----------
    dose_times_h : array_like, shape (n_doses,) or (n_subjects, n_doses)
        Dose times in hours (any origin shared with ``t_out_h``); 1-D when all subjects take
        doses at the same times (virtual patients of one patient), 2-D for per-subject logs
        (pad with dose 0 for shorter logs).
    dose_mg : array_like, shape (n_doses,) or (n_subjects, n_doses)
        Mitragynine per dose, mg (>= 0).
    t_out_h : array_like, shape (n_out,)
        Output times in hours, non-decreasing.
    params : mapping
        Parameter values (``TYPICAL``, or arrays of shape (n_subjects,) from
        :func:`sample_population`).
    chunk_size : int
        Subjects per chunk (keeps the working set in cache).
    workers : int, optional
        Threads over chunks (numpy releases the GIL); default ``min(2, cpu count)``.
    hydroxy : bool
        Also compute 7-OH (``False`` returns ``None`` for it and saves about half the work).

    Returns
    -------
    mg_ng_per_ml, oh_ng_per_ml : ndarray, shape (n_subjects, n_out)
        Mitragynine and 7-hydroxymitragynine concentrations (ng/mL). With shared dose
        times they are transposed views of time-major arrays (Fortran order, the layout the
        band's percentiles read); with per-subject dose times they are C-ordered, written
        subject by subject by the compiled cross-subject loop (:mod:`._kernels`).

    Notes
    -----
    Exact: the closed-form solution is propagated from output time to output time and each
    dose enters at its own time; see the module docstring.

    References
    ----------
    .. [1] Tanna RS et al. Pharmaceutics 2022;14(3):620 (``tanna-2022``).
    """
    t_out = np.asarray(t_out_h, dtype=np.float64)
    if t_out.ndim != 1:
        raise ValueError("t_out_h must be 1-D")
    if t_out.size > 1 and np.any(np.diff(t_out) < 0):
        raise ValueError("t_out_h must be non-decreasing")
    times = np.asarray(dose_times_h, dtype=np.float64)
    amounts = np.asarray(dose_mg, dtype=np.float64)
    if times.ndim not in (1, 2):
        raise ValueError("dose_times_h must be 1-D or 2-D")
    n_param = max(np.size(v.value if isinstance(v, Parameter) else v) for v in
                  (params[k] for k in PARAMETER_NAMES))
    n_subj = max(n_param, times.shape[0] if times.ndim == 2 else 1,
                 amounts.shape[0] if amounts.ndim == 2 else 1)
    if amounts.ndim == 1:
        amounts = np.broadcast_to(amounts, (n_subj, amounts.shape[0]))
    if times.ndim == 2:
        times = np.broadcast_to(times, (n_subj, times.shape[1]))
    if amounts.shape[-1] != times.shape[-1] or amounts.shape[0] != n_subj:
        raise ValueError("dose_times_h and dose_mg do not match")
    if not np.all(np.isfinite(times)) or not np.all(np.isfinite(amounts)) or np.any(amounts < 0):
        raise ValueError("dose times and amounts must be finite and amounts >= 0")
    m = modes(params, n_subj)
    if times.ndim == 2:
        return _simulate_per_subject(t_out, times, amounts, m, hydroxy, workers)
    mg_out = np.empty((t_out.shape[0], n_subj))
    oh_out = np.empty((t_out.shape[0], n_subj)) if hydroxy else None
    chunks = [slice(i, min(i + chunk_size, n_subj)) for i in range(0, n_subj, chunk_size)]
    workers = workers or min(2, os.cpu_count() or 1)
    if workers > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(workers) as ex:
            list(ex.map(lambda c: _run_chunk(t_out, times, amounts, m, mg_out, oh_out, c),
                        chunks))
    else:
        for c in chunks:
            _run_chunk(t_out, times, amounts, m, mg_out, oh_out, c)
    return mg_out.T, (oh_out.T if oh_out is not None else None)

