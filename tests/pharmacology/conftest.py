"""Shared helpers of the pharmacology tests: a tight-tolerance ODE reference solution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from speciosa.pharmacology.model import MW_HYDROXYMITRAGYNINE_G_PER_MOL, MW_MITRAGYNINE_G_PER_MOL

R = MW_HYDROXYMITRAGYNINE_G_PER_MOL / MW_MITRAGYNINE_G_PER_MOL


def _ode_reference(times, amounts, t_out, p):
    """Tight-tolerance ODE solution, restarted at each dose (the way general tools do it)."""
    ka, cl, vc, q, vp = (p["ka_per_h"], p["cl_l_per_h"], p["vc_l"], p["q_l_per_h"], p["vp_l"])
    km, clm = p["km_per_h"], p["clm_l_per_h"]
    vm_over_fm = clm / km

    def rhs(_t, x):
        g, c, per, m = x
        return [-ka * g, ka * g - (cl + q) / vc * c + q / vp * per,
                q / vc * c - q / vp * per, cl / vc * c - km * m]

    order = np.argsort(times)
    times, amounts = np.asarray(times)[order], np.asarray(amounts)[order]
    x = np.zeros(4)
    t = min(t_out[0], times[0]) - 1.0
    mg = np.zeros_like(t_out)
    oh = np.zeros_like(t_out)
    events = list(times) + [t_out[-1] + 1.0]
    di = 0
    for ev in events:
        sel = (t_out >= t) & (t_out < ev)
        if ev > t:
            sol = solve_ivp(rhs, (t, ev), x, method="LSODA", rtol=1e-12, atol=1e-15,
                            dense_output=True)
            if np.any(sel):
                xs = sol.sol(t_out[sel])
                mg[sel] = 1000 * xs[1] / vc
                oh[sel] = 1000 * R * xs[3] / vm_over_fm
            x = sol.y[:, -1].copy()
        t = ev
        if di < len(times):
            x[0] += amounts[di]
            di += 1
    return mg, oh


@pytest.fixture(name="ode_reference")
def ode_reference_fixture():
    """``ode_reference(times, amounts, t_out, params) -> (mg, oh)`` (LSODA, rtol 1e-12)."""
    return _ode_reference
