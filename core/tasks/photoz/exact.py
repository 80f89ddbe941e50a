"""Exact template posterior p(z | F) and joint draws of (z, age, log M*, [Z/H], A_V) (simulators.md section 3.6).

    p(z_k | F) ∝ p(z_k) sum_theta p(theta | z_k) ∫ dA p(A) prod_b N(F_b; A T_b(z_k, theta), sigma_b^2)

on the simulator's own grid and priors (:mod:`core.tasks.photoz.simulator`). The amplitude integral is analytic:
with w_b = 1/sigma_b^2, A* = sum F T w / sum T^2 w, V = 1 / sum T^2 w, r = A*/sqrt(V) and
chi2_min = sum F^2 w - A*^2 / V, the likelihood is exp(-chi2_min/2) N(A; A*, V) sqrt(2 pi V) up to a constant,
and for the log-uniform mass prior p(A) ∝ 1/A on [A_lo, A_hi]

    ∫ p(A) N(A; A*, V) dA = (1/A*) (1 + 1/r^2 + 3/r^4 + O(r^-6)) [Phi((A_hi - A*)/sqrt V) - Phi((A_lo - A*)/sqrt V)]

(the asymptotic series of E[1/A]). The reported errors are sigma(F_obs) (see the simulator), so the likelihood
is the Gaussian above times the Jacobian prod_b |1 - eps_b sigma'_b| (eps_b = (F_b - A T_b) / sigma_b,
sigma' = floor^2 F / sigma <= floor), taken to first order (1 - sum eps_b sigma'_b, linear in A, so exact under
the Gaussian in A; the neglected terms are O(floor^2 eps^2) ~ 1e-3). Templates with r < 5 are dropped: since
chi2_min + r^2 = total S/N^2 they have chi2_min > S/N^2 - 25, i.e. weight < e^-40 relative to a fitting template
for any galaxy with S/N > 10. Joint draws take the amplitude from N(A*, V) (the 1/A prior tilt is O(1/r^2)).
Everything is vectorised: two matmuls (objects x bands) @ (bands x templates*z) per chunk of objects.
The density between grid nodes is linear (the grid pdf); the simulator's fluxes are linear in z between nodes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, ClassVar, Literal  # noqa: F401  (ClassVar, Literal: type hints of inherited config fields)

import json

import numpy as np
from scipy.special import ndtr

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.tasks.photoz.simulator import SHORT, TARGETS, PhotozSimConfig, asinh_flux, grid_for, theta_log_prior, z_prior

__all__ = [
    "exact_posterior",
    "exact_posterior_factory",
    "fluxes_of",
    "log_weights",
    "sparse_log_weights",
    "ExactConfig",
    "ExactModel",
]

_R_MIN = 5.0
_PRUNE = 60.0  # nats


def fluxes_of(data: CatalogData, config: PhotozSimConfig) -> tuple[np.ndarray, np.ndarray]:
    """Fluxes and errors (n, 5) [uJy]: the ``flux_*`` extras when present, else from asinh mags and errors."""
    short = SHORT[config.bands]
    if all(f"flux_{b}" in data.extra for b in short):
        f = np.stack([data.extra[f"flux_{b}"] for b in short], axis=1)
        s = np.stack([data.extra[f"fluxerr_{b}"] for b in short], axis=1)
        return f.astype(float), s.astype(float)
    try:
        m = np.stack([data.column(f"mag_{b}") for b in short], axis=1)
        e = np.stack([data.column(f"err_{b}") for b in short], axis=1)
    except GPSError as err:
        raise GPSError(
            "the template posterior needs magnitudes and errors in every band",
            source=str(data.meta.get("file", "data")),
            field=err.field,
            expected=", ".join(f"mag_{b}, err_{b}" for b in short),
            found=", ".join(data.features),
        ) from None
    b = config.softening[None, :]
    f = asinh_flux(m, b)
    return f, e * np.sqrt(f**2 + 4 * b**2) / (2.5 / np.log(10))


def amplitude_cut_shift(a_star, b, config: PhotozSimConfig) -> tuple:
    """(shift of the amplitude's Gaussian mean, log factor) from the formed-mass prior's cutoff exp(-A / A_cut):
    N(A; a*, 1/b) exp(-A / A_cut) = exp(-a* / A_cut + 1 / (2 b A_cut^2)) N(A; a* - 1 / (b A_cut), 1/b).
    (0, 0) without a cutoff."""
    if not config.logm_cut:
        return 0.0, 0.0
    inv = 10.0 ** (10.0 - config.logm_cut)  # 1 / A_cut
    return inv / b, -a_star * inv + 0.5 * inv * inv / b


def log_weights(flux: np.ndarray, sigma: np.ndarray, config: PhotozSimConfig) -> np.ndarray:
    """Unnormalized log posterior weights (n, M, Nz) of every (template, grid redshift) for fluxes (n, B);
    pairs pruned by :func:`sparse_log_weights` are -inf."""
    m, nz, _ = grid_for(config).flux.shape
    rows, cols, lw = sparse_log_weights(flux, sigma, config)
    out = np.full((flux.shape[0], m * nz), -np.inf)
    out[rows, cols] = lw
    return out.reshape(-1, m, nz)


def sparse_log_weights(
    flux: np.ndarray, sigma: np.ndarray, config: PhotozSimConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(galaxy, template * Nz + z node, log weight) of the (template, z) pairs that matter.

    A first pass in float32 scores every pair by prior + A*^2 / 2V (= prior - chi2_min / 2 up to a per-galaxy
    constant); only pairs within _PRUNE nats of a galaxy's best get the exact weight in float64 with the
    remaining factors (amplitude prior, mass bounds, Jacobian: among templates that fit they move a weight by far
    less than _PRUNE nats). On the default grid that keeps about 1% of the pairs."""
    grid = grid_for(config)
    m, nz, nb = grid.flux.shape
    t = grid.flux.reshape(m * nz, nb)
    t32, t2_32, prior = _pruning_tables(config)
    w = 1.0 / sigma**2
    a = (flux * w).astype(np.float32) @ t32
    with np.errstate(divide="ignore", invalid="ignore"):
        score = np.where(a > 0, prior + 0.5 * a * a / (w.astype(np.float32) @ t2_32), -np.inf)
    rows, cols = np.nonzero(score > score.max(axis=1, keepdims=True) - _PRUNE)
    tk = t[cols]
    wk = w[rows]
    a = np.sum(flux[rows] * wk * tk, axis=1)
    b = np.sum(wk * tk * tk, axis=1)
    c = np.sum(flux**2 * w, axis=1)[rows]
    a_star = a / b
    chi2 = c - a * a_star
    # Jacobian of eps = (F - F_true) / sigma(F): prod_b |1 - eps_b sigma'_b| ~ 1 - sum_b eps_b sigma'_b, linear in A,
    # so its Gaussian expectation is its value at A*; sigma' = floor^2 F / sigma
    ds = config.calib_floor**2 * flux / sigma
    c1 = np.sum(ds * flux / sigma, axis=1)[rows]
    c2 = np.sum((ds / sigma)[rows] * tk, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        # the mass prior's exponential cutoff exp(-A / A_cut) times the Gaussian in A is a Gaussian shifted by
        # -V / A_cut (V = 1 / b) times exp(-a* / A_cut + V / (2 A_cut^2)): exact, it only moves the mean
        cut = amplitude_cut_shift(a_star, b, config)
        a_star = a_star - cut[0]
        r2 = a_star * a_star * b
        sq = np.sqrt(b)
        lo, hi = 10 ** (config.logm_min - 10.0), 10 ** (config.logm_max - 10.0)
        mass = ndtr((hi - a_star) * sq) - ndtr((lo - a_star) * sq)
        jac = 1.0 - c1 + a_star * c2
        lw = (
            -0.5 * chi2
            - 0.5 * np.log(b)
            + cut[1]
            - np.log(a_star)
            + np.log1p(1 / r2 + 3 / r2**2)
            + np.log(mass)
            + np.log(np.maximum(jac, 1e-3))
            + prior[cols]
        )
    ok = (a_star > 0) & (r2 > _R_MIN**2) & (mass > 0)
    return rows[ok], cols[ok], lw[ok]


@lru_cache(maxsize=2)
def _pruning_tables_cached(config_json: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    config = PhotozSimConfig.from_dict(json.loads(config_json))
    grid = grid_for(config)
    t = grid.flux.reshape(-1, grid.flux.shape[-1])
    prior = (theta_log_prior(config, grid)[:, None] + np.log(z_prior(config, grid.z))[None, :]).ravel()
    return t.T.astype(np.float32), (t * t).T.astype(np.float32), prior.astype(np.float32)


def _pruning_tables(config: PhotozSimConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float32 (B, K) tables of T and T^2 and the (K,) log prior of the flattened (template, z) pairs."""
    return _pruning_tables_cached(config.to_json())


def exact_posterior(
    data: CatalogData,
    config: PhotozSimConfig | dict | None = None,
    *,
    n_samples: int = 0,
    seed: int = 0,
    chunk: int = 32,
    progress: Callable[[int, int], None] | None = None,
) -> Posterior:
    """Grid posterior p(z | F) (``grid`` = the template z grid) for every galaxy; rows with bad photometry
    (non-finite flux or non-positive error) are invalid. With ``n_samples`` > 0, joint draws (n, s, 5) of
    ``TARGETS`` are put in ``info["joint_samples"]`` (z continuous from the grid pdf, theta and the amplitude
    from their conditional posteriors at the nearest node; log M* = log of the living mass)."""
    if config is None:
        config = PhotozSimConfig.from_dict(data.meta.get("config") or {})
    elif isinstance(config, dict):
        config = PhotozSimConfig.from_dict(config)
    grid = grid_for(config)
    flux, sigma = fluxes_of(data, config)
    valid = np.isfinite(flux).all(axis=1) & np.isfinite(sigma).all(axis=1) & (sigma > 0).all(axis=1)
    n = len(data)
    pdf = np.full((n, grid.z.size), np.nan)
    joint = np.full((n, n_samples, len(TARGETS)), np.nan) if n_samples else None
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(valid)
    m, nz = grid.flux.shape[:2]
    for start in range(0, idx.size, chunk):
        rows = idx[start : start + chunk]
        gal, col, lw = sparse_log_weights(flux[rows], sigma[rows], config)
        top = np.full(rows.size, -np.inf)
        np.maximum.at(top, gal, lw)
        with np.errstate(invalid="ignore"):
            wt = np.exp(lw - top[gal])
        p = np.bincount(gal * nz + col % nz, wt, minlength=rows.size * nz).reshape(rows.size, nz)
        norm = np.trapezoid(p, grid.z, axis=1)
        bad = ~(norm > 0)
        valid[rows[bad]] = False
        pdf[rows] = p / np.where(bad, 1.0, norm)[:, None]
        if joint is not None:
            for i, r in enumerate(rows):
                if not bad[i]:
                    dense = np.full(m * nz, -np.inf)
                    dense[col[gal == i]] = lw[gal == i]
                    joint[r] = _joint_draws(
                        dense.reshape(m, nz), pdf[r], flux[r], sigma[r], grid, n_samples, rng, config
                    )
        if progress is not None:
            progress(min(start + chunk, idx.size), idx.size)
    pdf[~valid] = np.nan
    info = {"config": config.to_dict(), "multimodal_peaks": None}
    if joint is not None:
        info.update(joint_samples=joint, joint_params=TARGETS)
    return Posterior(
        params=("z",),
        units=("",),
        grid=grid.z.copy(),
        pdf=np.where(valid[:, None], pdf, 0.0),
        valid=valid,
        method="exact",
        info=info,
    )


def _joint_draws(
    lw: np.ndarray,
    pdf: np.ndarray,
    flux: np.ndarray,
    sigma: np.ndarray,
    grid,
    s: int,
    rng: np.random.Generator,
    config: PhotozSimConfig,
) -> np.ndarray:
    zg = grid.z
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(zg))])
    cdf /= cdf[-1]
    keep = np.concatenate([[True], np.diff(cdf) > 0])
    z = np.interp(rng.uniform(size=s), cdf[keep], zg[keep])
    k = np.clip(np.searchsorted(zg, z), 1, zg.size - 1)
    k = np.where(z - zg[k - 1] < zg[k] - z, k - 1, k)
    out = np.empty((s, len(TARGETS)))
    out[:, 0] = z
    for kk in np.unique(k):
        sel = np.flatnonzero(k == kk)
        col = lw[:, kk]
        pw = np.exp(col - col.max())
        tm = rng.choice(pw.size, size=sel.size, p=pw / pw.sum())
        t = grid.flux[tm, kk]  # (m, B)
        w = 1 / sigma**2
        b = (t**2 * w).sum(axis=1)
        a_star = (t * flux * w).sum(axis=1) / b
        a_star = a_star - amplitude_cut_shift(a_star, b, config)[0]
        amp = np.maximum(a_star + rng.standard_normal(sel.size) / np.sqrt(b), 1e-6 * a_star)
        out[sel, 1] = grid.age[tm, kk]
        out[sel, 2] = np.log10(amp * 1e10 * grid.living[tm, kk])
        out[sel, 3] = np.log10(grid.met[tm])
        out[sel, 4] = grid.av[tm]
    return out


# -- registry wrapper ----------------------------------------------------------------------------------------
from dataclasses import dataclass  # noqa: E402

from core.config import param  # noqa: E402
from core.models.base import PosteriorModel  # noqa: E402


@dataclass(frozen=True)
class ExactConfig(PhotozSimConfig):
    """The simulator configuration whose grid and priors define the posterior, plus the joint draws wanted."""

    joint_draws: int = param(
        0, help="Joint (z, age, log M*, [Z/H], A_V) draws per galaxy (0 = p(z) only)", min=0, max=100000
    )


class ExactModel(PosteriorModel):
    """The template posterior as a registry model: nothing to train; on mocks the config comes from the data."""

    name = "exact"
    config_cls = ExactConfig
    missing_policy = "refuse"
    floor_file_errors = True  # real files: errors + the calibration floor (core.tasks.photoz.spec prepare)

    def fit(self, train, val=None, **_: object) -> dict:
        self.history = {"note": "the exact posterior has nothing to train"}
        return self.history

    def posterior(
        self,
        data: CatalogData,
        *,
        n_samples: int = 1000,
        seed: int = 0,
        device: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Posterior:
        cfg = self.config.to_dict()
        draws = cfg.pop("joint_draws")
        sim = data.meta.get("config") if data.meta.get("simulator") == "photometry" else None
        return exact_posterior(
            data, PhotozSimConfig.from_dict(sim or cfg), n_samples=draws, seed=seed, progress=progress
        )

    def get_state(self):
        return {}, {}

    def set_state(self, tensors, extra) -> None:
        return None


class _RowsExact:
    """``posterior(x)`` on feature rows (mag_*/err_*): the shape ``core.data.simulators`` expects of an exact
    posterior (the simulator registry's ``exact_posterior_factory(config, features)``)."""

    def __init__(self, config: PhotozSimConfig | None, features) -> None:
        self.config = config or PhotozSimConfig()
        self.features = tuple(features)

    def posterior(self, x: np.ndarray) -> Posterior:
        data = CatalogData(x=np.asarray(x, float), features=self.features)
        return exact_posterior(data, self.config)


def exact_posterior_factory(config: PhotozSimConfig | None = None, features=None) -> _RowsExact:
    """The registry factory of the photometry simulator's exact posterior (p(z) on the template grid)."""
    from core.tasks.photoz.models.common import INPUTS

    return _RowsExact(config, features or INPUTS)
