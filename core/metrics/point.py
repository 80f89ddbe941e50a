"""Point-estimate metrics: MAE, RMSE, R^2, bias, sigma_NMAD and the catastrophic-outlier fraction.

Every function takes ``pred`` and ``truth`` of the same shape, ``(n,)`` or ``(n, p)``, in the target's units
(e.g. dex for log Mh). Rows where either value is not finite are ignored (a refused or invalid object never
counts as an error of zero). For ``(n, p)`` inputs the result is an array ``(p,)``, one value per parameter;
for ``(n,)`` inputs a float. An empty selection gives NaN.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mae", "rmse", "r2", "bias", "sigma_nmad", "outlier_fraction", "residuals"]


def residuals(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``pred - truth`` with the same shape; NaN where either is not finite."""
    pred, truth = _pair(pred, truth)
    r = pred - truth
    r[~(np.isfinite(pred) & np.isfinite(truth))] = np.nan
    return r


def mae(pred: np.ndarray, truth: np.ndarray) -> float | np.ndarray:
    """Mean absolute error ``mean |pred - truth|`` (target units)."""
    return _reduce(lambda r: np.mean(np.abs(r)), pred, truth)


def rmse(pred: np.ndarray, truth: np.ndarray) -> float | np.ndarray:
    """Root-mean-square error ``sqrt(mean (pred - truth)^2)`` (target units)."""
    return _reduce(lambda r: np.sqrt(np.mean(r ** 2)), pred, truth)


def bias(pred: np.ndarray, truth: np.ndarray) -> float | np.ndarray:
    """Mean residual ``mean (pred - truth)`` (target units; positive = over-estimate)."""
    return _reduce(np.mean, pred, truth)


def sigma_nmad(pred: np.ndarray, truth: np.ndarray, *, scale: np.ndarray | float | None = None
               ) -> float | np.ndarray:
    """Normalized median absolute deviation ``1.4826 * median |d - median(d)|`` of ``d = (pred - truth) / scale``.

    ``scale`` defaults to 1 (e.g. dex); photometric-redshift users pass ``1 + z_true`` to get the usual
    ``sigma_NMAD`` of ``dz / (1 + z)``. For a Gaussian residual it equals the standard deviation.
    """
    pred, truth = _pair(pred, truth)
    d = pred - truth
    if scale is not None:
        d = d / np.broadcast_to(np.asarray(scale, dtype=float).reshape(
            np.shape(scale) + (1,) * (d.ndim - np.ndim(scale))), d.shape)
    return _reduce_res(lambda r: 1.4826 * np.median(np.abs(r - np.median(r))), d, pred, truth)


def outlier_fraction(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.15, *,
                     scale: np.ndarray | float | None = None) -> float | np.ndarray:
    """Fraction of objects with ``|pred - truth| / scale > threshold`` (``scale`` defaults to 1).

    For photo-z the usual catastrophic-outlier rate is ``threshold=0.15, scale=1 + z_true``.
    """
    pred, truth = _pair(pred, truth)
    d = pred - truth
    if scale is not None:
        d = d / np.broadcast_to(np.asarray(scale, dtype=float).reshape(
            np.shape(scale) + (1,) * (d.ndim - np.ndim(scale))), d.shape)
    return _reduce_res(lambda r: np.mean(np.abs(r) > threshold), d, pred, truth)


def r2(pred: np.ndarray, truth: np.ndarray) -> float | np.ndarray:
    """Coefficient of determination ``1 - sum (pred - truth)^2 / sum (truth - mean truth)^2``."""
    pred, truth = _pair(pred, truth)
    one = pred.ndim == 1
    p2, t2 = (pred[:, None], truth[:, None]) if one else (pred, truth)
    out = np.full(p2.shape[1], np.nan)
    for j in range(p2.shape[1]):
        ok = np.isfinite(p2[:, j]) & np.isfinite(t2[:, j])
        if ok.sum() < 2:
            continue
        t = t2[ok, j]
        ss_tot = np.sum((t - t.mean()) ** 2)
        out[j] = 1.0 - np.sum((p2[ok, j] - t) ** 2) / ss_tot if ss_tot > 0 else np.nan
    return float(out[0]) if one else out


# -------------------------------------------------------------------------------------------------
def _pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    pred = np.array(pred, dtype=float)
    truth = np.array(truth, dtype=float)
    if pred.shape != truth.shape:
        if pred.size == truth.size:
            truth = truth.reshape(pred.shape)
        else:
            raise ValueError(f"pred and truth shapes differ: {pred.shape} vs {truth.shape}")
    if pred.ndim not in (1, 2):
        raise ValueError(f"expected (n,) or (n, p) arrays, got shape {pred.shape}")
    return pred, truth


def _reduce(fn, pred, truth):
    pred, truth = _pair(pred, truth)
    return _reduce_res(fn, pred - truth, pred, truth)


def _reduce_res(fn, r: np.ndarray, pred: np.ndarray, truth: np.ndarray):
    one = r.ndim == 1
    r2d = r[:, None] if one else r
    ok2d = np.isfinite(r2d) & np.isfinite(pred.reshape(r2d.shape)) & np.isfinite(truth.reshape(r2d.shape))
    out = np.array([float(fn(r2d[ok2d[:, j], j])) if ok2d[:, j].any() else np.nan for j in range(r2d.shape[1])])
    return float(out[0]) if one else out
