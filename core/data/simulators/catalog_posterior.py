"""Exact reference posterior p(log Mh | x) of the catalogue simulator by quadrature (simulators.md section 1.7).

p(h | x) ∝ p(h) Σ_q Σ_k w_k [Σ_j v_j] P(q | h[, a_j]) N(x; mean_obs(h, e_k, q[, a_j]), cov_obs(q)) on a
log-Mh grid, Gauss-Hermite nodes in e (and a). It imports the sampler's own ``mean_obs``/``cov_obs``, so it
is exact up to quadrature error. Missing values (NaN) are marginalised exactly: a row uses the sub-vector of
its observed features and the matching sub-covariance (rows are grouped by missing pattern).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from core.data.catalog import CatalogData
from core.data.simulators.catalog import (FEATURES, CatalogSimConfig, cov_obs, mean_obs, prior_logpdf,
                                          quench_logprob, shmr_sigma)
from core.errors import GPSError
from core.inference.posterior import Posterior

__all__ = ["ExactPosterior", "exact_posterior_factory"]

_MAX_ELEMENTS = 4_000_000     # rows x grid nodes x quadrature nodes evaluated at once (~32 MB per array)


class ExactPosterior:
    """Exact posterior of log Mh [dex(Msun)] for catalogues with the features ``features`` (any subset/order).

    ``grid`` (n_h,) spans [logmh_min, logmh_max]; ``posterior(x)`` takes x (n, d) in ``features`` order (NaN =
    missing, marginalised) and returns a grid :class:`Posterior` with ``pdf`` (n, n_h), trapezoid-normalised.
    Rows are processed in chunks of at most ``chunk`` objects (fewer when the quadrature is large), so memory
    stays bounded (~100 MB) for any n. Speed: ~0.2 ms per object for the default config on one core.
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
        self.grid = np.linspace(cfg.logmh_min, cfg.logmh_max, cfg.n_h)
        lp = prior_logpdf(self.grid, cfg)
        self.log_prior = lp - np.log(np.trapezoid(np.exp(lp), self.grid))        # normalised on this grid
        self._build_nodes()
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
            step = max(1, min(self.chunk, _MAX_ELEMENTS // terms[0][1].size))   # bound memory per chunk
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
                                               "n_h": int(self.grid.size), "n_e": self.config.n_e})

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

    def _build_nodes(self) -> None:
        cfg = self.config
        t, w = np.polynomial.hermite.hermgauss(cfg.n_e)
        ue, we = np.sqrt(2.0) * t, w / np.sqrt(np.pi)                 # standard-normal nodes / weights
        if cfg.assembly_latent:
            ta, wa = np.polynomial.hermite.hermgauss(cfg.n_a)
            ua, wa = np.sqrt(2.0) * ta, wa / np.sqrt(np.pi)
            ue_m, ua_m = np.meshgrid(ue, ua, indexing="ij")
            u_e, u_a = ue_m.ravel(), ua_m.ravel()
            logw = np.log(np.outer(we, wa).ravel())
            e_scale = np.sqrt(1.0 - cfg.rho_ea ** 2)
        else:
            u_e, u_a, logw, e_scale = ue, None, np.log(we), 1.0
        h = self.grid[:, None]
        e = u_e[None, :] * shmr_sigma(self.grid, cfg)[:, None] * e_scale            # (n_h, M)
        a = None if u_a is None else np.broadcast_to(u_a[None, :], e.shape)
        self._mu, self._logw = [], []
        for q in (0, 1):
            self._mu.append(mean_obs(h, e, q, cfg, a))                              # (n_h, M, 8)
            lpq = quench_logprob(np.broadcast_to(h, e.shape), cfg, a)[q]             # (n_h, M)
            self._logw.append(lpq + logw[None, :])

    def _pattern_terms(self, pattern: np.ndarray) -> list[tuple]:
        """Per q: (P mu^T (k, n_h*M), const (n_h*M,), P (k, k)) for the observed columns of this pattern."""
        key = pattern.tobytes()
        if key not in self._pattern_cache:
            cols = self._cols[pattern]
            terms = []
            for q in (0, 1):
                cov = cov_obs(q, self.config)[np.ix_(cols, cols)]
                chol = np.linalg.cholesky(cov)
                prec = np.linalg.inv(cov)
                mu = self._mu[q][..., cols].reshape(-1, cols.size)                  # (n_h*M, k)
                pmu = mu @ prec                                                     # (n_h*M, k)
                logdet = 2.0 * np.log(np.diag(chol)).sum()
                const = (-0.5 * np.einsum("mk,mk->m", pmu, mu) - 0.5 * logdet
                         - 0.5 * cols.size * np.log(2 * np.pi) + self._logw[q].ravel())
                terms.append((pmu.T.copy(), const, prec))
            self._pattern_cache[key] = terms
        return self._pattern_cache[key]

    def _loglike_rows(self, xo: np.ndarray, terms: list[tuple]) -> np.ndarray:
        n_h = self.grid.size
        best = None
        parts = []
        for pmu_t, const, prec in terms:
            quad = -0.5 * np.einsum("nk,kl,nl->n", xo, prec, xo)
            ll = xo @ pmu_t + const[None, :] + quad[:, None]                        # (n, n_h*M)
            ll = ll.reshape(xo.shape[0], n_h, -1)
            m = ll.max(axis=2)
            parts.append((ll, m))
            best = m if best is None else np.maximum(best, m)
        total = np.zeros_like(best)
        for ll, _ in parts:
            total += np.exp(ll - best[..., None]).sum(axis=2)
        return np.log(total) + best


def exact_posterior_factory(config: CatalogSimConfig | None = None,
                            features: Sequence[str] | None = None) -> ExactPosterior:
    """Registry hook: the exact posterior for a simulator config and a feature list."""
    return ExactPosterior(config, features)
