"""Metrics per bin of the true target (e.g. per 0.5 dex of log Mh): RMSE, MAE, bias, coverage, width, exact RMSE."""

from __future__ import annotations

import numpy as np

from core.inference.posterior import Posterior
from core.metrics.calibration import intervals

__all__ = ["metrics_per_bin"]


def metrics_per_bin(truth: np.ndarray, posterior: Posterior, edges, exact: Posterior | None = None, *,
                    param: int = 0) -> list[dict]:
    """One row per bin ``[edges[k], edges[k+1])`` of the true value of parameter ``param`` (last bin closed).

    Each row: ``{"bin": k, "lo", "hi", "n", "rmse", "mae", "bias", "median_bias", "coverage_68", "coverage_95",
    "mean_std", "rmse_exact"}`` in the parameter's units (``median_bias``: median of posterior median - truth). RMSE and bias use the posterior mean, MAE the posterior median
    (the same convention as :func:`core.metrics.score_posterior`); ``mean_std`` is the mean posterior standard
    deviation; ``rmse_exact`` is the exact posterior's RMSE on the same objects (None without ``exact``).
    Objects that are invalid (in ``posterior``) or have a non-finite truth are left out; empty bins give NaN.
    """
    edges = np.asarray(edges, dtype=float)
    t = np.asarray(truth, dtype=float).reshape(posterior.n, -1)[:, param]
    ok = np.asarray(posterior.valid, bool) & np.isfinite(t)
    mean = posterior.mean()[:, param]
    med = posterior.median()[:, param]
    std = posterior.std()[:, param]
    lo68, hi68 = (a[:, param] for a in intervals(posterior, 0.68))
    lo95, hi95 = (a[:, param] for a in intervals(posterior, 0.95))
    ex_mean = None
    if exact is not None:
        ex_mean = exact.mean()[:, param]
        ok_ex = np.asarray(exact.valid, bool)
    rows = []
    for k in range(edges.size - 1):
        last = k == edges.size - 2
        sel = ok & (t >= edges[k]) & ((t <= edges[k + 1]) if last else (t < edges[k + 1]))
        n = int(sel.sum())
        row = {"bin": k, "lo": float(edges[k]), "hi": float(edges[k + 1]), "n": n}
        if n == 0:
            row.update({key: float("nan") for key in ("rmse", "mae", "bias", "median_bias", "coverage_68",
                                                       "coverage_95", "mean_std")})
            row["rmse_exact"] = None if exact is None else float("nan")
            rows.append(row)
            continue
        r = mean[sel] - t[sel]
        row.update({
            "rmse": float(np.sqrt(np.mean(r ** 2))),
            "mae": float(np.mean(np.abs(med[sel] - t[sel]))),
            "bias": float(np.mean(r)),
            "median_bias": float(np.median(med[sel] - t[sel])),
            "coverage_68": float(np.mean((t[sel] >= lo68[sel]) & (t[sel] <= hi68[sel]))),
            "coverage_95": float(np.mean((t[sel] >= lo95[sel]) & (t[sel] <= hi95[sel]))),
            "mean_std": float(np.mean(std[sel])),
        })
        if exact is None:
            row["rmse_exact"] = None
        else:
            se = sel & ok_ex
            row["rmse_exact"] = float(np.sqrt(np.mean((ex_mean[se] - t[se]) ** 2))) if se.any() else float("nan")
        rows.append(row)
    return rows
