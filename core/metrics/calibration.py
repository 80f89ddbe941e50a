"""Calibration metrics: interval coverage (central and HPD), PIT + KS test, CRPS, SBC ranks, widths, TARP.

All functions take a :class:`core.inference.posterior.Posterior` (samples ``(n, s, p)`` or a 1-D grid pdf
``(n, g)``) and the true values ``truth`` ``(n,)`` or ``(n, p)`` in the parameter's units. Objects that are
not valid (``posterior.valid`` False) or whose truth is not finite are left out of averages (and are NaN in
per-object outputs). Per-parameter results are arrays ``(p,)``; with a single parameter they are floats.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats

from core.inference.posterior import Posterior

__all__ = ["intervals", "coverage", "coverage_curve", "pit", "pit_ks", "crps", "crps_grid", "crps_samples",
           "sbc_ranks", "sbc_uniformity", "interval_width", "mean_interval_width", "tarp", "calibration_curves"]

IntervalKind = Literal["central", "hpd"]


def intervals(posterior: Posterior, level: float, kind: IntervalKind = "central") -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper interval edges ``(n, p)`` holding probability ``level``.

    ``central``: the ``(1-level)/2`` and ``(1+level)/2`` quantiles. ``hpd``: the shortest interval holding
    ``level`` of the mass (from sorted samples, or from samples drawn from a grid pdf); for a multimodal
    posterior the HPD *region* is used by :func:`coverage` on grids, while this interval is its hull.
    """
    if kind == "central":
        q = posterior.quantiles([(1 - level) / 2, (1 + level) / 2])
        return q[:, 0, :], q[:, 1, :]
    samples = posterior.samples if posterior.samples is not None else posterior.sample(4000, seed=0)
    return _shortest_interval(samples, level)


def coverage(posterior: Posterior, truth: np.ndarray, level: float = 0.68, kind: IntervalKind = "central"
             ) -> float | np.ndarray:
    """Fraction of objects whose truth lies inside the ``level`` interval (central, or HPD).

    For a grid posterior ``kind="hpd"`` uses the exact highest-density region ``{theta: pdf >= t_level}``
    (possibly several intervals); for samples it uses the shortest interval (unimodal assumption).
    """
    truth, ok = _truth(posterior, truth)
    if kind == "hpd" and posterior.pdf is not None:
        inside = _hpd_region_contains(posterior, truth, level)
    else:
        lo, hi = intervals(posterior, level, kind)
        inside = (truth >= lo) & (truth <= hi)
    return _mean_over(inside.astype(float), ok)


def coverage_curve(posterior: Posterior, truth: np.ndarray, levels=None, kind: IntervalKind = "central"
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(levels (L,), coverage (L,) or (L, p))``: empirical coverage at every credibility level."""
    levels = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels, dtype=float)
    cov = np.array([coverage(posterior, truth, float(a), kind) for a in levels])
    return levels, cov


def calibration_curves(posteriors: dict[str, Posterior], truth: np.ndarray, param: int = 0
                       ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], dict[str, np.ndarray]]:
    """Coverage curves ``name -> (levels (L,), coverage (L,))`` and PIT values ``name -> (n,)`` of parameter
    ``param`` for several posteriors of the same objects (what the Evaluation page plots side by side)."""
    curves, pits = {}, {}
    for name, post in posteriors.items():
        lv, cv = coverage_curve(post, truth)
        cv = np.asarray(cv)
        curves[name] = (lv, np.ravel(cv if cv.ndim == 1 else cv[:, param]))
        pits[name] = pit(post, truth)[:, param]
    return curves, pits


def pit(posterior: Posterior, truth: np.ndarray) -> np.ndarray:
    """Probability integral transform ``P(theta <= truth | x)`` per object and parameter ``(n, p)``; NaN if invalid.

    For a calibrated posterior the PIT values are U(0, 1) across objects.
    """
    truth, ok = _truth(posterior, truth)
    safe = np.where(ok, truth, 0.0)
    u = posterior.cdf_at(safe).astype(float)
    u[~ok] = np.nan
    return u


def pit_ks(pit_values: np.ndarray) -> float | np.ndarray:
    """Kolmogorov-Smirnov p-value of the PIT values against U(0, 1), per parameter (NaNs ignored)."""
    u = np.asarray(pit_values, dtype=float)
    one = u.ndim == 1
    u = u[:, None] if one else u
    out = np.array([_ks_uniform(u[:, j]) for j in range(u.shape[1])])
    return float(out[0]) if one else out


def crps(posterior: Posterior, truth: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score per object and parameter ``(n, p)`` (parameter units; lower is better).

    Grid pdf: exact integral of ``(F(t) - 1[t >= y])^2`` with the piecewise-linear grid CDF (truth outside the
    grid adds its distance to the grid edge). Samples: the CRPS of the empirical distribution,
    ``E|X - y| - 0.5 E|X - X'|``, with ``E|X - X'|`` from sorted samples in O(s log s).
    """
    truth, ok = _truth(posterior, truth)
    safe = np.where(ok, truth, 0.0)
    if posterior.samples is not None:
        out = crps_samples(posterior.samples, safe)
    else:
        out = crps_grid(posterior.grid, posterior.cdf_grid(), safe[:, 0])[:, None]
    out[~ok] = np.nan
    return out


def crps_samples(samples: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """CRPS of the empirical distribution of ``samples`` (n, s, p) at ``truth`` (n, p) -> (n, p)."""
    x = np.sort(np.asarray(samples, dtype=float), axis=1)
    s = x.shape[1]
    e_abs = np.mean(np.abs(x - truth[:, None, :]), axis=1)
    w = (2.0 * np.arange(1, s + 1) - s - 1.0)[None, :, None]
    e_pair = 2.0 * np.sum(w * x, axis=1) / s ** 2          # E|X - X'| over all ordered pairs (incl. i == j)
    return e_abs - 0.5 * e_pair


def crps_grid(grid: np.ndarray, cdf: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Exact CRPS ``(n,)`` for CDFs ``cdf`` (n, g) tabulated on ``grid`` (g,), linear between nodes."""
    g = np.asarray(grid, dtype=float)
    F = np.asarray(cdf, dtype=float)
    y = np.asarray(truth, dtype=float)
    n = F.shape[0]
    dx = np.diff(g)
    a = _seg_sq_integral(F[:, :-1], F[:, 1:], dx[None])            # int F^2 per segment
    b = _seg_sq_integral(1 - F[:, :-1], 1 - F[:, 1:], dx[None])    # int (1-F)^2 per segment
    ca = np.concatenate([np.zeros((n, 1)), np.cumsum(a, axis=1)], axis=1)
    cb = np.concatenate([np.zeros((n, 1)), np.cumsum(b, axis=1)], axis=1)
    yc = np.clip(y, g[0], g[-1])
    k = np.clip(np.searchsorted(g, yc, side="right") - 1, 0, g.size - 2)
    rows = np.arange(n)
    t = (yc - g[k]) / dx[k]
    f0, f1 = F[rows, k], F[rows, k + 1]
    fy = f0 + t * (f1 - f0)
    h = yc - g[k]
    left = ca[rows, k] + _seg_sq_integral(f0, fy, h)                                   # [g0, y]: F^2
    right = (cb[rows, -1] - cb[rows, k]) - _seg_sq_integral(1 - f0, 1 - fy, h)         # [y, gN]: (1-F)^2
    outside = np.where(y < g[0], g[0] - y, 0.0) + np.where(y > g[-1], y - g[-1], 0.0)
    return left + right + outside


def sbc_ranks(posterior: Posterior, truth: np.ndarray, n_draws: int | None = None, seed: int = 0) -> np.ndarray:
    """Simulation-based-calibration ranks ``(n, p)``: number of posterior draws below the truth, in [0, L].

    ``L = n_draws`` (default: all stored samples, or 1000 draws from a grid pdf). Invalid rows get -1.
    For a calibrated posterior the ranks are uniform on {0, ..., L}.
    """
    truth, ok = _truth(posterior, truth)
    if posterior.samples is not None and n_draws is None:
        draws = posterior.samples
    else:
        draws = posterior.sample(n_draws or 1000, seed=seed)
    ranks = (draws < truth[:, None, :]).sum(axis=1)
    ranks[~ok] = -1
    return ranks


def sbc_uniformity(ranks: np.ndarray, n_draws: int, n_bins: int = 20) -> float | np.ndarray:
    """Chi-square p-value of the SBC rank histogram (``n_bins`` bins over 0..L) against uniform, per parameter."""
    r = np.asarray(ranks)
    one = r.ndim == 1
    r = r[:, None] if one else r
    edges = np.linspace(-0.5, n_draws + 0.5, n_bins + 1)
    out = []
    for j in range(r.shape[1]):
        rj = r[r[:, j] >= 0, j]
        if rj.size == 0:
            out.append(np.nan)
            continue
        counts, _ = np.histogram(rj, bins=edges)
        expected = rj.size * np.diff(edges) / (n_draws + 1)
        out.append(float(stats.chi2.sf(np.sum((counts - expected) ** 2 / expected), n_bins - 1)))
    return out[0] if one else np.array(out)


def interval_width(posterior: Posterior, level: float = 0.68, kind: IntervalKind = "central") -> np.ndarray:
    """Per-object width ``hi - lo`` ``(n, p)`` of the ``level`` interval (parameter units); NaN if invalid."""
    lo, hi = intervals(posterior, level, kind)
    w = hi - lo
    w[~np.asarray(posterior.valid, dtype=bool)] = np.nan
    return w


def mean_interval_width(posterior: Posterior, level: float = 0.68, kind: IntervalKind = "central"
                        ) -> float | np.ndarray:
    """Mean over valid objects of the ``level`` interval width (parameter units)."""
    w = interval_width(posterior, level, kind)
    out = np.nanmean(w, axis=0) if np.isfinite(w).any() else np.full(w.shape[1], np.nan)
    return float(out[0]) if out.size == 1 else out


def tarp(posterior: Posterior, truth: np.ndarray, levels=None, *, n_draws: int = 1000, seed: int = 0
         ) -> tuple[np.ndarray, np.ndarray]:
    """TARP expected coverage (Lemos et al. 2023): ``(alpha (L,), ecp (L,))``; calibrated when ecp == alpha.

    Parameters are rescaled to the [0, 1] box spanned by the truths; one reference point per object is drawn
    uniformly in that box; ``f_i`` is the fraction of posterior draws closer to the reference than the truth,
    and ``ecp(alpha) = mean_i 1[f_i < alpha]``.
    """
    levels = np.linspace(0.0, 1.0, 51) if levels is None else np.asarray(levels, dtype=float)
    truth, ok = _truth(posterior, truth)
    rows = ok.all(axis=1)
    draws = posterior.samples if posterior.samples is not None else posterior.sample(n_draws, seed=seed)
    draws, t = draws[rows], truth[rows]
    if t.shape[0] == 0:
        return levels, np.full(levels.shape, np.nan)
    lo, hi = t.min(axis=0), t.max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    d, tn = (draws - lo) / scale, (t - lo) / scale
    ref = np.random.default_rng(seed).random(tn.shape)
    dist_draws = np.sqrt(((d - ref[:, None, :]) ** 2).sum(axis=2))
    dist_truth = np.sqrt(((tn - ref) ** 2).sum(axis=1))
    f = (dist_draws < dist_truth[:, None]).mean(axis=1)
    return levels, np.array([np.mean(f < a) for a in levels])


# -------------------------------------------------------------------------------------------------
def _truth(posterior: Posterior, truth) -> tuple[np.ndarray, np.ndarray]:
    """Truth as (n, p) and the mask of usable entries (valid object and finite truth)."""
    t = np.asarray(truth, dtype=float).reshape(posterior.n, -1)
    ok = np.isfinite(t) & np.asarray(posterior.valid, dtype=bool)[:, None]
    return t, ok


def _mean_over(values: np.ndarray, ok: np.ndarray) -> float | np.ndarray:
    num = np.where(ok, values, 0.0).sum(axis=0)
    den = ok.sum(axis=0)
    out = np.where(den > 0, num / np.maximum(den, 1), np.nan)
    return float(out[0]) if out.size == 1 else out


def _ks_uniform(u: np.ndarray) -> float:
    u = u[np.isfinite(u)]
    if u.size == 0:
        return float("nan")
    return float(stats.kstest(u, "uniform").pvalue)


def _seg_sq_integral(f0, f1, h):
    """Integral of the square of a linear function going from f0 to f1 over a length h."""
    return h * (f0 * f0 + f0 * f1 + f1 * f1) / 3.0


def _shortest_interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    x = np.sort(samples, axis=1)
    s = x.shape[1]
    m = min(s - 1, max(1, int(np.ceil(level * s)) - 1))
    widths = x[:, m:, :] - x[:, : s - m, :]
    i = np.argmin(widths, axis=1)                                            # (n, p)
    lo = np.take_along_axis(x, i[:, None, :], axis=1)[:, 0, :]
    hi = np.take_along_axis(x, (i + m)[:, None, :], axis=1)[:, 0, :]
    return lo, hi


def _hpd_region_contains(posterior: Posterior, truth: np.ndarray, level: float) -> np.ndarray:
    """Truth inside the grid HPD region {pdf >= t} whose mass is ``level`` -> (n, 1) bool."""
    g, pdf = posterior.grid, posterior.pdf
    w = np.gradient(g)                                         # trapezoid-like cell widths
    mass = pdf * w[None]
    mass = mass / np.where(mass.sum(axis=1, keepdims=True) > 0, mass.sum(axis=1, keepdims=True), 1.0)
    order = np.argsort(-pdf, axis=1)
    cum = np.cumsum(np.take_along_axis(mass, order, axis=1), axis=1)
    k = np.minimum((cum < level).sum(axis=1), g.size - 1)
    thresh = np.take_along_axis(pdf, np.take_along_axis(order, k[:, None], axis=1), axis=1)[:, 0]
    at_truth = np.array([np.interp(truth[i, 0], g, pdf[i], left=0.0, right=0.0) for i in range(posterior.n)])
    return (at_truth >= thresh)[:, None]
