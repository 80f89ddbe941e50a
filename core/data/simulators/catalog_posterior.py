"""Exact reference posterior p(log Mh | x) of the catalogue simulator by quadrature (simulators.md section 1.7).

Every observable depends on the halo only through the latent log M* = m and the quenched flag q, so

    p(x | h) = sum_q  integral dm  N(x; mean_obs_given_mstar(m, q), cov_obs(q)) p(m, q | h),

with p(m, q | h) the simulator's galaxy-halo connection marginalised over its nuisance parameters: for the default
``shmr='family'`` the mixture over relations, scatters, shifts, quenched offsets and quenching models of
:func:`~core.data.simulators.catalog.shmr_components` / ``quench_components``; with the assembly latent a, also
integrated over a (Gauss-Hermite). The m-integral is a trapezoid rule on a fine grid (``dm_exact``, 0.01 dex by
default, well below the 0.1 dex measurement error of log M* and the >= 0.12 dex SHMR scatter), so the cost per
galaxy does not grow with the number of family members: the nuisance mixture is folded once into the
(n_m, n_h) tables p(m, q | h). It imports the sampler's own functions, so it is exact up to quadrature error.
Missing values (NaN) are marginalised exactly: a row uses the sub-vector of its observed features and the matching
sub-covariance (rows are grouped by missing pattern).
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np

from core.data.catalog import CatalogData
from core.data.simulators.catalog import (FEATURES, CatalogSimConfig, component_mstar, cov_obs,
                                          mean_obs_given_mstar, prior_logpdf, quench_logprob, shmr_components)
from core.errors import GPSError
from core.inference.posterior import Posterior

__all__ = ["ExactPosterior", "exact_posterior_factory"]

_MAX_ELEMENTS = 4_000_000     # rows x log M* nodes evaluated at once (~32 MB per array)


class ExactPosterior:
    """Exact posterior of log Mh [dex(Msun)] for catalogues with the features ``features`` (any subset/order).

    ``grid`` (n_h,) spans the support of the prior ``config.logmh_range()``; ``posterior(x)`` takes x (n, d) in
    ``features`` order (NaN = missing, marginalised) and returns a grid :class:`Posterior` with ``pdf`` (n, n_h),
    trapezoid-normalised.
    Rows are processed in chunks of at most ``chunk`` objects (fewer when the quadrature is large), so memory
    stays bounded (~100 MB) for any n.
    """

    def __init__(self, config: CatalogSimConfig | None = None, features: Sequence[str] | None = None,
                 chunk: int = 512) -> None:
        self.config = cfg = config or CatalogSimConfig()
        self.features = tuple(features) if features is not None else tuple(cfg.features)
        bad = [f for f in self.features if f not in FEATURES]
        if bad or len(set(self.features)) != len(self.features):
            raise GPSError("unknown or repeated feature(s) for the exact posterior", source="ExactPosterior",
                           field=", ".join(bad) or "features", expected=", ".join(FEATURES),
                           found=", ".join(self.features))
        self.chunk = int(chunk)
        self._cols = np.array([FEATURES.index(f) for f in self.features], dtype=int)
        self.grid = np.linspace(*cfg.logmh_range(), cfg.n_h)
        lp = prior_logpdf(self.grid, cfg)
        self.log_prior = lp - np.log(np.trapezoid(np.exp(lp), self.grid))        # normalised on this grid
        self._build_tables()
        self._pattern_cache: dict[bytes, list[tuple]] = {}

    # -- public ------------------------------------------------------------------------------------
    def log_likelihood_grid(self, x: np.ndarray) -> np.ndarray:
        """log p(x | h) (n, n_h), marginalised over e, q (and a) and over each row's missing features."""
        x = self._check(x)
        out = np.empty((x.shape[0], self.grid.size))
        observed = np.isfinite(x)
        patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
        for p_idx, pattern in enumerate(patterns):
            rows = np.flatnonzero(inverse.ravel() == p_idx)
            if not pattern.any():
                out[rows] = 0.0
                continue
            terms = self._pattern_terms(pattern)
            step = max(1, min(self.chunk, _MAX_ELEMENTS // max(terms[0][1].size, self.grid.size)))
            for start in range(0, rows.size, step):
                r = rows[start:start + step]
                out[r] = self._loglike_rows(x[np.ix_(r, np.flatnonzero(pattern))], terms)
        return out

    def log_posterior_grid(self, x: np.ndarray) -> np.ndarray:
        """log posterior density [per dex] on ``grid`` (n, n_h), trapezoid-normalised."""
        lp = self.log_likelihood_grid(x) + self.log_prior[None]
        lp -= lp.max(axis=1, keepdims=True)
        norm = np.trapezoid(np.exp(lp), self.grid, axis=1)
        return lp - np.log(norm)[:, None]

    def posterior(self, x: np.ndarray) -> Posterior:
        """Grid posterior for ``x`` (n, d) in ``features`` order."""
        pdf = np.exp(self.log_posterior_grid(x))
        return Posterior(params=("log_mh",), units=("dex(solMass)",), grid=self.grid.copy(), pdf=pdf,
                         method="exact", info={"config": self.config.to_dict(), "features": list(self.features),
                                               "n_h": int(self.grid.size), "n_m": int(self.mgrid.size),
                                               "shmr": self.config.shmr})

    def posterior_for(self, data: CatalogData) -> Posterior:
        """Posterior for a catalogue (features looked up by name; extra columns are ignored)."""
        return self.posterior(data.select_features(self.features).x)

    # -- internals ---------------------------------------------------------------------------------
    def _check(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise GPSError("feature array has the wrong shape", source="ExactPosterior", field="x",
                           expected=f"(n, {len(self.features)}) for {', '.join(self.features)}",
                           found=str(x.shape))
        bad = np.isinf(x)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise GPSError("infinite value (only NaN is accepted as 'missing')", source="ExactPosterior",
                           field=self.features[col], expected="finite numbers or NaN",
                           found=f"{x[row, col]} in row {row} ({int(bad.sum())} infinite values)")
        return x

    def _build_tables(self) -> None:
        """log M* grid, the trapezoid-weighted tables W_q[m, h] = p(m, q | h) dm and the means mu_q(m)."""
        cfg = self.config
        comps = shmr_components(cfg)
        lo, hi = np.inf, -np.inf
        for comp in comps:
            for q in (0, 1):
                mu, sd = component_mstar(self.grid, q, comp, cfg)
                lo, hi = min(lo, float((mu - 7 * sd).min())), max(hi, float((mu + 7 * sd).max()))
        n_m = int(np.ceil((hi - lo) / cfg.dm_exact)) + 1
        if n_m > 40_000:
            raise GPSError("log M* integration grid too large", source="ExactPosterior", field="dm_exact",
                           expected="a coarser grid (<= 40000 nodes)", found=f"{n_m} nodes")
        self.mgrid = m = np.linspace(lo, hi, n_m)
        trap = np.full(n_m, m[1] - m[0])
        trap[[0, -1]] *= 0.5
        self._W, self._mu = [], []
        for q in (0, 1):
            if cfg.assembly_latent:
                t, w = np.polynomial.hermite.hermgauss(cfg.n_a)
                ua, va = np.sqrt(2.0) * t, w / np.sqrt(np.pi)
                mu, sd = component_mstar(self.grid, q, comps[0], cfg)
                pq = np.exp(quench_logprob(self.grid[:, None], cfg, ua[None, :])[q])          # (n_h, n_a)
                s = sd * np.sqrt(1.0 - cfg.rho_ea ** 2)
                dens = np.zeros((n_m, self.grid.size))
                for j in range(ua.size):
                    dens += va[j] * pq[:, j] * _normal_pdf(m[:, None], (mu + cfg.rho_ea * sd * ua[j])[None], s[None])
            else:
                pq = np.exp(quench_logprob(self.grid, cfg)[q])                                 # (n_h,)
                dens = np.zeros((n_m, self.grid.size))
                for comp in comps:
                    mu, sd = component_mstar(self.grid, q, comp, cfg)
                    dens += comp[-1] * _normal_pdf(m[:, None], mu[None], sd[None])
                dens *= pq[None, :]
            self._W.append(dens * trap[:, None])
            self._mu.append(mean_obs_given_mstar(m, q, cfg))                                 # (n_m, 8)

    def _pattern_terms(self, pattern: np.ndarray) -> list[tuple]:
        """Per q: (P mu^T (k, n_m), const (n_m,), P (k, k)) for the observed columns of this pattern."""
        key = pattern.tobytes()
        if key not in self._pattern_cache:
            cols = self._cols[pattern]
            terms = []
            for q in (0, 1):
                cov = cov_obs(q, self.config)[np.ix_(cols, cols)]
                chol = np.linalg.cholesky(cov)
                prec = np.linalg.inv(cov)
                mu = self._mu[q][:, cols]                                                   # (n_m, k)
                pmu = mu @ prec
                logdet = 2.0 * np.log(np.diag(chol)).sum()
                const = -0.5 * np.einsum("mk,mk->m", pmu, mu) - 0.5 * logdet - 0.5 * cols.size * np.log(2 * np.pi)
                terms.append((pmu.T.copy(), const, prec))
            self._pattern_cache[key] = terms
        return self._pattern_cache[key]

    def _loglike_rows(self, xo: np.ndarray, terms: list[tuple]) -> np.ndarray:
        lls = []
        for pmu_t, const, prec in terms:
            quad = -0.5 * np.einsum("nk,kl,nl->n", xo, prec, xo)
            lls.append(xo @ pmu_t + const[None, :] + quad[:, None])                          # (n, n_m)
        best = np.maximum(lls[0].max(axis=1), lls[1].max(axis=1))
        acc = sum(np.exp(ll - best[:, None]) @ w for ll, w in zip(lls, self._W))            # (n, n_h)
        with np.errstate(divide="ignore"):
            out = np.log(acc) + best[:, None]
        dead = ~np.isfinite(out).any(axis=1)          # every term underflowed: redo those rows in log space
        for i in np.flatnonzero(dead):
            terms_i = [ll[i][:, None] + np.log(np.maximum(w, 1e-300)) for ll, w in zip(lls, self._W)]
            stacked = np.concatenate(terms_i, axis=0)                                       # (2 n_m, n_h)
            top = stacked.max(axis=0)
            out[i] = np.log(np.exp(stacked - top).sum(axis=0)) + top
        return out


def _normal_pdf(x, mu, sd):
    return np.exp(-0.5 * ((x - mu) / sd) ** 2) / (np.sqrt(2.0 * np.pi) * sd)


def exact_posterior_factory(config: CatalogSimConfig | None = None,
                            features: Sequence[str] | None = None) -> ExactPosterior:
    """Registry hook: the exact posterior for a simulator config and a feature list.

    The object (its p(log M*, q | log Mh) tables, ~1 s to build for the family) is reused for the same config and
    features: the app asks for the exact posterior of one galaxy after another.
    """
    cfg = config or CatalogSimConfig()
    key = (cfg.config_hash(), tuple(features) if features is not None else tuple(cfg.features))
    with _FACTORY_LOCK:
        ep = _FACTORY_CACHE.get(key)
    if ep is None:
        ep = ExactPosterior(cfg, features)
        with _FACTORY_LOCK:
            _FACTORY_CACHE[key] = ep
            while len(_FACTORY_CACHE) > 8:
                _FACTORY_CACHE.pop(next(iter(_FACTORY_CACHE)))
    return ep


_FACTORY_CACHE: dict[tuple, ExactPosterior] = {}
_FACTORY_LOCK = threading.Lock()
