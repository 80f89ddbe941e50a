"""Metrics: point (MAE, RMSE, R2, ...), calibration (coverage, PIT, CRPS, SBC, TARP), exact-reference scores,
per-bin tables and posterior predictive checks; :func:`score_posterior` gives the standard summary dict.

Conventions of :func:`score_posterior` (used by the benchmark, the CLI ``evaluate`` and the app):
RMSE, R^2 and bias use the **posterior mean** (optimal for squared error); MAE uses the **posterior median**
(optimal for absolute error); coverage is of **central** intervals; every number is computed on the objects that
are valid in the posterior (and in the exact posterior when given) and have a finite truth.
"""

from __future__ import annotations

import numpy as np

from core.inference.posterior import Posterior
from core.metrics.calibration import coverage, crps, mean_interval_width, pit, pit_ks
from core.metrics.point import bias, mae, r2, rmse, sigma_nmad
from core.metrics.reference import delta_crps, density_on_grid, kl_to_reference, log_score_gap, regret, wasserstein1

__all__ = ["score_posterior", "score_posterior_all", "SCORE_KEYS"]

#: keys every score dict has (values are floats, or None where they do not apply)
SCORE_KEYS = ("n", "n_excluded", "rmse", "mae", "r2", "bias", "sigma_nmad", "coverage_68", "coverage_95",
              "width_68", "width_95", "pit_ks_p", "crps", "kl_to_exact", "w1_to_exact", "log_score_gap",
              "delta_crps", "rmse_regret", "mae_regret", "rmse_ratio")


def score_posterior(posterior: Posterior, truth: np.ndarray, exact: Posterior | None = None, *,
                    param: int = 0) -> dict[str, float | int | None]:
    """Standard scores of one parameter (index ``param``) of ``posterior`` against ``truth`` (n,) or (n, p).

    Keys (see :data:`SCORE_KEYS`): ``rmse, mae, r2, bias, sigma_nmad`` (parameter units, R^2 unitless),
    ``coverage_68, coverage_95`` (fractions), ``width_68, width_95`` (mean central-interval widths),
    ``pit_ks_p`` (KS p-value of the PIT vs U(0,1)), ``crps`` (mean CRPS, parameter units), and against the exact
    posterior ``exact`` (a grid posterior of this parameter): ``kl_to_exact`` (mean KL(p*||q), nats),
    ``w1_to_exact`` (mean W1, parameter units), ``log_score_gap`` (nats), ``delta_crps``, ``rmse_regret``,
    ``mae_regret``, ``rmse_ratio`` - all None when ``exact`` is None. ``n`` is the number of scored objects,
    ``n_excluded`` the number left out (invalid or no truth).
    """
    t = np.asarray(truth, dtype=float).reshape(posterior.n, -1)
    t = t[:, param] if t.shape[1] > 1 else t[:, 0]
    q = _one_param(posterior, param)
    keep = np.asarray(q.valid, bool) & np.isfinite(t)
    if exact is not None:
        if exact.n != posterior.n:
            raise ValueError(f"exact posterior has {exact.n} objects, the posterior {posterior.n}")
        keep &= np.asarray(exact.valid, bool)
    out: dict[str, float | int | None] = {k: None for k in SCORE_KEYS}
    out["n"], out["n_excluded"] = int(keep.sum()), int((~keep).sum())
    if not keep.any():
        return out
    idx = np.flatnonzero(keep)
    q, t = q.subset(idx), t[idx]
    mean, med = q.mean()[:, 0], q.median()[:, 0]
    out.update({
        "rmse": rmse(mean, t), "mae": mae(med, t), "r2": r2(mean, t), "bias": bias(mean, t),
        "sigma_nmad": sigma_nmad(med, t),
        "coverage_68": coverage(q, t, 0.68), "coverage_95": coverage(q, t, 0.95),
        "width_68": mean_interval_width(q, 0.68), "width_95": mean_interval_width(q, 0.95),
        "pit_ks_p": pit_ks(pit(q, t)[:, 0]),
        "crps": float(np.nanmean(crps(q, t)[:, 0])),
    })
    if exact is not None:
        p = exact.subset(idx)
        reg = regret(p, q, t)
        dens = density_on_grid(q, p.grid)          # once: a KDE for sample posteriors
        out.update({
            "kl_to_exact": kl_to_reference(p, q, q_density=dens), "w1_to_exact": wasserstein1(p, q),
            "log_score_gap": log_score_gap(p, q, t, q_density=dens), "delta_crps": delta_crps(p, q, t),
            "rmse_regret": reg["rmse_regret"], "mae_regret": reg["mae_regret"], "rmse_ratio": reg["rmse_ratio"],
        })
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in out.items()}


def score_posterior_all(posterior: Posterior, truth: np.ndarray, exact: dict[str, Posterior] | None = None
                        ) -> dict[str, dict]:
    """:func:`score_posterior` for every parameter: ``{param_name: scores}``; ``exact`` maps names to grids."""
    exact = exact or {}
    return {name: score_posterior(posterior, truth, exact.get(name), param=j)
            for j, name in enumerate(posterior.params)}


def _one_param(posterior: Posterior, j: int) -> Posterior:
    if posterior.samples is None or posterior.samples.shape[2] == 1:
        return posterior
    return Posterior(params=(posterior.params[j],), units=(posterior.units[j],),
                     samples=posterior.samples[:, :, j:j + 1], diagnostics=dict(posterior.diagnostics),
                     valid=posterior.valid, method=posterior.method, info=dict(posterior.info))
