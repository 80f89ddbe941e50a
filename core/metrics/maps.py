"""Map metrics over galaxy pixels: MAE, residual vs pixel f_ex, per-pixel coverage, regret vs the exact posterior.

Only *galaxy pixels* count (pixels with input data and a finite truth, optionally also intrinsic galaxy pixels):
background pixels have tiny residuals and would overstate the precision (the seed's convention). All inputs are
(N, H, W) arrays; ``pixels`` is a boolean (N, H, W) selection.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import GPSError

__all__ = ["galaxy_pixels", "mae_pixel", "rmse_pixel", "bias_pixel", "coverage_pixel", "residual_vs_truth",
           "regret_reference", "per_object_mae", "score_map_posterior", "map_object_summaries",
           "target_object_summaries"]


def galaxy_pixels(mask: np.ndarray, truth: np.ndarray, galaxy: np.ndarray | None = None) -> np.ndarray:
    """Boolean (N, H, W): input data present (``~mask``), finite truth, and ``galaxy`` where given."""
    sel = ~np.asarray(mask, dtype=bool) & np.isfinite(truth)
    if galaxy is not None:
        sel &= np.asarray(galaxy, dtype=bool)
    return sel


def mae_pixel(pred: np.ndarray, truth: np.ndarray, pixels: np.ndarray) -> float:
    """Mean |pred - truth| over the selected pixels (target units)."""
    return float(np.mean(np.abs(_sel(pred, pixels) - _sel(truth, pixels))))


def rmse_pixel(pred: np.ndarray, truth: np.ndarray, pixels: np.ndarray) -> float:
    return float(np.sqrt(np.mean((_sel(pred, pixels) - _sel(truth, pixels)) ** 2)))


def bias_pixel(pred: np.ndarray, truth: np.ndarray, pixels: np.ndarray) -> float:
    return float(np.mean(_sel(pred, pixels) - _sel(truth, pixels)))


def coverage_pixel(lo: np.ndarray, hi: np.ndarray, truth: np.ndarray, pixels: np.ndarray) -> float:
    """Fraction of selected pixels whose truth lies in [lo, hi] (the per-pixel central interval)."""
    t = _sel(truth, pixels)
    return float(np.mean((t >= _sel(lo, pixels)) & (t <= _sel(hi, pixels))))


def residual_vs_truth(pred: np.ndarray, truth: np.ndarray, pixels: np.ndarray,
                      bins: np.ndarray | int = 10) -> dict[str, list[float]]:
    """Residuals binned in the pixel's true value (the seed's Fig. 3b): per bin of truth in [0, 1] (``bins``
    equal-width bins or explicit edges): ``edges``, ``centers``, ``count``, ``mean_abs_residual``,
    ``mean_residual`` (pred - truth) and ``p16``/``p84`` of the residual (NaN for empty bins)."""
    edges = np.linspace(0.0, 1.0, bins + 1) if np.isscalar(bins) else np.asarray(bins, dtype=float)
    t, r = _sel(truth, pixels), _sel(pred, pixels) - _sel(truth, pixels)
    k = np.clip(np.digitize(t, edges) - 1, 0, len(edges) - 2)
    out: dict[str, list[float]] = {"edges": edges.tolist(), "centers": (0.5 * (edges[1:] + edges[:-1])).tolist(),
                                   "count": [], "mean_abs_residual": [], "mean_residual": [], "p16": [], "p84": []}
    for b in range(len(edges) - 1):
        rb = r[k == b]
        out["count"].append(int(rb.size))
        if rb.size:
            out["mean_abs_residual"].append(float(np.abs(rb).mean()))
            out["mean_residual"].append(float(rb.mean()))
            p16, p84 = np.percentile(rb, [16, 84])
            out["p16"].append(float(p16))
            out["p84"].append(float(p84))
        else:
            for key in ("mean_abs_residual", "mean_residual", "p16", "p84"):
                out[key].append(float("nan"))
    return out


def regret_reference(pred: np.ndarray, exact_pred: np.ndarray, truth: np.ndarray, pixels: np.ndarray) -> float:
    """MAE regret: mae_pixel(pred) - mae_pixel(exact_pred) on the same pixels (>= 0 up to noise; 0 = optimal)."""
    return mae_pixel(pred, truth, pixels) - mae_pixel(exact_pred, truth, pixels)


def per_object_mae(pred: np.ndarray, truth: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """(N,) MAE over each object's selected pixels (NaN where an object has none)."""
    err = np.where(pixels, np.abs(pred - truth), 0.0).sum(axis=(1, 2))
    cnt = pixels.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, err / np.maximum(cnt, 1), np.nan)


def score_map_posterior(post, truth: np.ndarray | None = None, pixels: np.ndarray | None = None,
                        exact=None) -> dict[str, Any]:
    """Standard scores of a :class:`core.inference.posterior_maps.MapPosterior` against the true maps.

    ``mae_pixel`` uses the per-pixel posterior **median** (optimal for absolute error), ``mae_pixel_mean`` the
    posterior mean (the seed's "posterior average"); ``rmse_pixel``/``bias_pixel`` the mean; coverages are of
    the central 68% (q16-q84) and 95% (q2.5-q97.5) intervals; ``width_68`` is the mean q84 - q16.
    ``exact`` (a MapPosterior or an object with ``mean``/``quantiles`` as the IFU reference posterior) adds
    ``regret_reference`` (MAE of the median minus the exact posterior median's MAE) and ``mae_exact``.
    """
    truth = post.truth if truth is None else np.asarray(truth, dtype=np.float32)
    if truth is None:
        raise GPSError("no true maps to score against", source="score_map_posterior", field="truth")
    if pixels is None:
        pixels = galaxy_pixels(post.mask, truth)
    if not pixels.any():
        raise GPSError("no galaxy pixels to score", source="score_map_posterior", field="pixels",
                       expected="at least one unmasked pixel with a finite truth", found="none")
    out: dict[str, Any] = {
        "n_objects": int(post.n), "n_pixels": int(pixels.sum()),
        "mae_pixel": mae_pixel(post.q50, truth, pixels), "mae_pixel_mean": mae_pixel(post.mean, truth, pixels),
        "rmse_pixel": rmse_pixel(post.mean, truth, pixels), "bias_pixel": bias_pixel(post.mean, truth, pixels),
        "coverage_68_pixel": coverage_pixel(post.q16, post.q84, truth, pixels),
        "coverage_95_pixel": coverage_pixel(post.q025, post.q975, truth, pixels),
        "width_68": float(np.mean(_sel(post.q84 - post.q16, pixels))),
        "regret_reference": None, "mae_exact": None,
    }
    if exact is not None:
        ex_med = _exact_median(exact)
        out["mae_exact"] = mae_pixel(ex_med, truth, pixels)
        out["regret_reference"] = regret_reference(post.q50, ex_med, truth, pixels)
    return out


# ---------------------------------------------------------------------------------------------------------
def map_object_summaries(post) -> dict[str, np.ndarray]:
    """Per-object means over unmasked pixels of a MapPosterior: posterior mean, posterior std, unmasked pixel count
    and (truth known) mean |residual| — the columns of the app's per-object table, each (N,)."""
    valid = ~np.asarray(post.mask, bool)
    area = np.maximum(valid.sum(axis=(1, 2)), 1)
    cols = {f"mean {post.target} (posterior mean, unmasked)": np.where(valid, post.mean, 0).sum(axis=(1, 2)) / area,
            "mean posterior std": np.where(valid, post.std, 0).sum(axis=(1, 2)) / area,
            "unmasked pixels": valid.sum(axis=(1, 2))}
    res = post.residual
    if res is not None:
        cols["mean |residual|"] = np.nanmean(np.abs(np.where(valid, res, np.nan)).reshape(len(res), -1), axis=1)
    return cols


def target_object_summaries(post, data, targets) -> dict[str, np.ndarray]:
    """Per-object median, 16th and 84th percentiles of every target (``targets``: Quantity specs) and the truth
    where ``data`` has it, each (N,)."""
    s = post.summaries()
    cols: dict[str, np.ndarray] = {}
    for q in targets:
        for stat in ("median", "p16", "p84"):
            cols[f"{q.name}_{stat}"] = s[f"{q.name}_{stat}"]
        if data.has_truth and q.name in data.targets:
            cols[f"{q.name} (truth)"] = data.y[:, list(data.targets).index(q.name)]
    return cols


def _sel(a: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.shape != pixels.shape:
        raise GPSError("map shapes differ", source="metrics.maps", expected=str(pixels.shape), found=str(a.shape))
    return a[pixels]


def _exact_median(exact) -> np.ndarray:
    if hasattr(exact, "q50"):
        return np.asarray(exact.q50)
    levels = tuple(getattr(exact, "levels", ()))
    if 0.5 in levels:
        return np.asarray(exact.quantiles)[:, levels.index(0.5)]
    return np.asarray(exact.mean)
