"""Photo-z metrics (simulators.md section 3.7), per redshift bin and per colour class, plus p(z) summaries.

Definitions (dz = (z_phot - z_true) / (1 + z_true), z_phot = posterior median):

* ``bias`` = median(dz); ``bias_mean`` = mean(dz);
* ``sigma_nmad`` = 1.4826 * median(|dz - median(dz)|) (the centred form; some codes use 1.48 median|dz|);
* ``outlier_frac`` = fraction with |dz| > 0.15; ``outlier_frac_rail`` = fraction with
  |dz| > max(0.06, 3 sigma_IQR), sigma_IQR = IQR(dz) / 1.349 (RAIL's variant);
* ``coverage_68/95`` central-interval coverage, ``pit_ks_p`` KS p-value of the PIT vs U(0, 1), ``crps`` mean CRPS
  (redshift units), ``kl_to_exact`` mean grid KL(p* || q) in nats (:mod:`core.metrics.reference`).

Subsamples: ``quiescent`` = observed u - r >= 2.22 (Strateva et al. 2001 colour separator), ``star_forming`` the
rest; redshift bins from ``edges``. The point metrics reuse :mod:`core.metrics.point`, the calibration metrics
:mod:`core.metrics.calibration`.
"""

from __future__ import annotations

import numpy as np

from core.inference.posterior import Posterior
from core.metrics.calibration import coverage, crps, pit, pit_ks
from core.metrics.point import outlier_fraction, sigma_nmad

__all__ = [
    "point_metrics",
    "score",
    "score_groups",
    "z_pit",
    "colour_classes",
    "pz_on_grid",
    "pz_summary",
    "count_peaks",
    "U_R_SPLIT",
    "Z_EDGES",
]

U_R_SPLIT = 2.22
Z_EDGES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)


def point_metrics(z_phot: np.ndarray, z_true: np.ndarray) -> dict[str, float]:
    """bias, bias_mean, sigma_nmad, outlier_frac, outlier_frac_rail, n over finite pairs."""
    zp, zt = np.asarray(z_phot, float), np.asarray(z_true, float)
    ok = np.isfinite(zp) & np.isfinite(zt)
    zp, zt = zp[ok], zt[ok]
    if zp.size == 0:
        return {"n": 0}
    dz = (zp - zt) / (1 + zt)
    q25, q75 = np.percentile(dz, [25, 75])
    rail = max(0.06, 3 * (q75 - q25) / 1.349)
    return {
        "n": int(zp.size),
        "bias": float(np.median(dz)),
        "bias_mean": float(np.mean(dz)),
        "sigma_nmad": float(sigma_nmad(zp, zt, scale=1 + zt)),
        "outlier_frac": float(outlier_fraction(zp, zt, 0.15, scale=1 + zt)),
        "outlier_frac_rail": float(np.mean(np.abs(dz) > rail)),
    }


def score(
    post: Posterior, z_true: np.ndarray, exact: Posterior | None = None, q_density: np.ndarray | None = None
) -> dict[str, float]:
    """Point + calibration metrics of a redshift posterior (column 0 = z when samples are multi-parameter).

    ``q_density`` (n, g): the model's own density on the exact posterior's grid for the KL (else a KDE of the
    draws, :func:`core.metrics.reference.density_on_grid`)."""
    post = _z_only(post)
    zt = np.asarray(z_true, float).reshape(-1)
    med = post.quantiles([0.5])[:, 0, 0]
    med[~post.valid] = np.nan
    out = point_metrics(med, zt)
    u = pit(post, zt)[:, 0]
    out.update(
        coverage_68=float(coverage(post, zt, 0.68)),
        coverage_95=float(coverage(post, zt, 0.95)),
        pit_ks_p=float(pit_ks(u)),
        crps=float(np.nanmean(crps(post, zt))),
    )
    if exact is not None:
        from core.metrics.reference import kl_to_reference

        if q_density is not None:
            q_density = np.where(np.isfinite(q_density), q_density, 0.0)
        out["kl_to_exact"] = float(kl_to_reference(exact, post, q_density=q_density))
    return out


def score_groups(
    post: Posterior, z_true: np.ndarray, mag_u: np.ndarray, mag_r: np.ndarray, edges=Z_EDGES
) -> dict[str, dict]:
    """Point metrics per colour class and per true-redshift bin: {"quiescent": {...}, "z0.05-0.10": {...}}."""
    post = _z_only(post)
    zt = np.asarray(z_true, float).reshape(-1)
    med = post.quantiles([0.5])[:, 0, 0]
    med[~post.valid] = np.nan
    out = {name: point_metrics(med[m], zt[m]) for name, m in colour_classes(mag_u, mag_r).items()}
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (zt >= lo) & (zt < hi)
        if m.sum() >= 10:
            out[f"z{lo:.2f}-{hi:.2f}"] = point_metrics(med[m], zt[m])
    return out


def colour_classes(mag_u: np.ndarray, mag_r: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks ``quiescent`` (u - r >= 2.22) and ``star_forming`` (u - r < 2.22); NaN colours in neither."""
    ur = np.asarray(mag_u, float) - np.asarray(mag_r, float)
    return {"quiescent": ur >= U_R_SPLIT, "star_forming": ur < U_R_SPLIT}


def pz_on_grid(post: Posterior, grid: np.ndarray) -> np.ndarray:
    """p(z) (n, g) on ``grid``: the grid pdf interpolated, or a KDE of the z draws; rows integrate to 1."""
    from core.metrics.reference import density_on_grid

    post = _z_only(post)
    grid = np.asarray(grid, float)
    if post.pdf is not None:
        p = np.stack([np.interp(grid, post.grid, row, left=0.0, right=0.0) for row in post.pdf])
    else:
        p = density_on_grid(post, grid)
    norm = np.trapezoid(p, grid, axis=1)
    p = p / np.where(norm > 0, norm, 1.0)[:, None]
    p[~post.valid] = np.nan
    return p


def count_peaks(pdf: np.ndarray, min_ratio: float = 0.1, dip: float = 0.5) -> np.ndarray:
    """Number of modes per row of ``pdf`` (n, g): local maxima at least ``min_ratio`` x the global maximum,
    separated from the previous kept mode by a valley below ``dip`` x the lower of the two peaks."""
    pdf = np.nan_to_num(np.asarray(pdf, float))
    out = np.zeros(len(pdf), dtype=np.int64)
    for i, p in enumerate(pdf):
        if not np.any(p > 0):
            continue
        cand = np.flatnonzero((p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:])) + 1
        cand = [c for c in cand if p[c] >= min_ratio * p.max()] or [int(np.argmax(p))]
        kept = [cand[0]]
        for c in cand[1:]:
            valley = p[kept[-1] : c + 1].min()
            if valley < dip * min(p[kept[-1]], p[c]):
                kept.append(c)
            elif p[c] > p[kept[-1]]:
                kept[-1] = c
        out[i] = len(kept)
    return out


def pz_summary(post: Posterior, grid: np.ndarray) -> dict[str, np.ndarray]:
    """Per-galaxy ``z_median, z_p16, z_p84, z_mode, n_peaks`` and ``pz`` (n, g) on ``grid``."""
    z = _z_only(post)
    q = z.quantiles([0.5, 0.16, 0.84])[:, :, 0]
    pz = pz_on_grid(z, grid)
    mode = np.where(np.isfinite(pz).all(axis=1), np.asarray(grid)[np.argmax(np.nan_to_num(pz), axis=1)], np.nan)
    q[~z.valid] = np.nan
    return {
        "z_median": q[:, 0],
        "z_p16": q[:, 1],
        "z_p84": q[:, 2],
        "z_mode": mode,
        "n_peaks": np.where(z.valid, count_peaks(pz), 0),
        "pz": pz,
    }


def z_pit(post: Posterior, z_true: np.ndarray) -> np.ndarray:
    """PIT values (n,) of the redshift marginal at ``z_true`` (NaN for invalid rows)."""
    u = pit(_z_only(post), np.asarray(z_true, float).reshape(-1))[:, 0]
    return np.where(post.valid, u, np.nan)


def _z_only(post: Posterior) -> Posterior:
    if post.samples is not None and post.samples.shape[2] > 1:
        j = post.params.index("z") if "z" in post.params else 0
        return Posterior(
            params=("z",),
            units=("",),
            samples=post.samples[:, :, j : j + 1],
            valid=post.valid,
            method=post.method,
            info=post.info,
        )
    return post
