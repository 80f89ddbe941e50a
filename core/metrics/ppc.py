"""Posterior predictive checks: per-feature PPC p-values, a chi^2-like discrepancy, and their uniformity.

``x_obs`` (n, d) are the observed features (NaN = missing, ignored); ``x_rep`` (n, s, d) are features replicated
from the model at posterior draws (s replications per object). For a well-specified model the per-object PPC
p-values of every feature are (close to) uniform across objects; piling up at 0 or 1 flags a feature the model
reproduces badly.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

__all__ = ["ppc_pvalues", "ppc_discrepancy", "ppc_uniformity"]


def ppc_pvalues(x_obs: np.ndarray, x_rep: np.ndarray) -> np.ndarray:
    """Fraction of replicated values <= the observed one, per object and feature (n, d); NaN where missing."""
    x_obs, x_rep = _check(x_obs, x_rep)
    p = (x_rep <= x_obs[:, None, :]).mean(axis=1)
    p[~np.isfinite(x_obs)] = np.nan
    return p


def ppc_discrepancy(x_obs: np.ndarray, x_rep: np.ndarray) -> dict[str, np.ndarray | float]:
    """chi^2-like discrepancy ``T(x) = sum_d ((x_d - mean_rep_d) / sd_rep_d)^2`` over the observed features.

    Returns ``{"chi2_obs": (n,), "dof": (n,) number of observed features, "p_value": (n,) fraction of replicated
    T(x_rep) >= T(x_obs) (the same mean and sd for both), "mean_chi2_per_dof": float}``.
    """
    x_obs, x_rep = _check(x_obs, x_rep)
    mu = x_rep.mean(axis=1)
    sd = x_rep.std(axis=1)
    sd = np.where(sd > 0, sd, np.nan)
    seen = np.isfinite(x_obs) & np.isfinite(sd)
    z_obs = np.where(seen, (x_obs - mu) / np.where(seen, sd, 1.0), 0.0)
    t_obs = (z_obs ** 2).sum(axis=1)
    z_rep = np.where(seen[:, None, :], (x_rep - mu[:, None, :]) / np.where(seen, sd, 1.0)[:, None, :], 0.0)
    t_rep = (z_rep ** 2).sum(axis=2)
    dof = seen.sum(axis=1)
    pval = (t_rep >= t_obs[:, None]).mean(axis=1)
    pval = np.where(dof > 0, pval, np.nan)
    mean_per_dof = float(np.sum(t_obs) / np.sum(dof)) if dof.sum() > 0 else float("nan")
    return {"chi2_obs": t_obs, "dof": dof, "p_value": pval, "mean_chi2_per_dof": mean_per_dof}


def ppc_uniformity(pvalues: np.ndarray) -> np.ndarray:
    """Kolmogorov-Smirnov p-value (d,) of each feature's PPC p-values across objects against U(0, 1).

    PPC p-values from ``s`` replications are discrete (multiples of 1/s); with s >= 100 the KS test is a good
    approximation. NaNs (missing features) are ignored; a feature with no values gives NaN.
    """
    p = np.asarray(pvalues, dtype=float)
    p = p[:, None] if p.ndim == 1 else p
    out = []
    for j in range(p.shape[1]):
        v = p[np.isfinite(p[:, j]), j]
        out.append(float(stats.kstest(v, "uniform").pvalue) if v.size else np.nan)
    return np.array(out)


def _check(x_obs, x_rep) -> tuple[np.ndarray, np.ndarray]:
    x_obs = np.asarray(x_obs, dtype=float)
    x_rep = np.asarray(x_rep, dtype=float)
    if x_obs.ndim == 1:
        x_obs = x_obs[:, None]
    if x_rep.ndim == 2:
        x_rep = x_rep[..., None]
    if x_rep.shape[0] != x_obs.shape[0] or x_rep.shape[2] != x_obs.shape[1]:
        raise ValueError(f"x_rep must be (n, s, d) matching x_obs (n, d); got {x_rep.shape} and {x_obs.shape}")
    return x_obs, x_rep
