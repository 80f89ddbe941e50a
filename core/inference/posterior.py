"""Posterior result containers: samples ``(n_objects, n_samples, n_params)`` or densities on a 1-D grid.

Every method returns a :class:`Posterior`. Sample-based methods fill ``samples``; grid methods (the exact
reference posterior) fill ``grid``/``pdf`` and can draw samples by inverse-CDF. Summaries are computed the
same way for all of them, so every table and export in the app has the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Posterior", "SUMMARY_PERCENTILES", "summarize_samples"]

SUMMARY_PERCENTILES = (2.5, 16.0, 50.0, 84.0, 97.5)


@dataclass
class Posterior:
    """Posterior over ``params`` for ``n`` objects.

    Either ``samples`` (n, s, p) or a 1-D grid representation (``grid`` (g,), ``pdf`` (n, g) normalized so that
    ``trapezoid(pdf, grid) == 1``; only for p == 1). ``diagnostics`` holds per-object arrays (e.g. ``rhat``,
    ``ess``, ``divergences``); ``valid`` (n,) marks objects that could be processed (False rows are NaN).
    """

    params: tuple[str, ...]
    units: tuple[str, ...]
    samples: np.ndarray | None = None
    grid: np.ndarray | None = None
    pdf: np.ndarray | None = None
    diagnostics: dict[str, np.ndarray] = field(default_factory=dict)
    valid: np.ndarray | None = None
    method: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.samples is None and self.pdf is None:
            raise ValueError("a Posterior needs samples or a grid pdf")
        if self.samples is not None:
            self.samples = np.asarray(self.samples, dtype=np.float64)
            if self.samples.ndim == 2:
                self.samples = self.samples[..., None]
        if self.pdf is not None:
            self.grid = np.asarray(self.grid, dtype=np.float64)
            self.pdf = np.asarray(self.pdf, dtype=np.float64)
        if self.valid is None:
            self.valid = np.ones(self.n, dtype=bool)

    @property
    def n(self) -> int:
        return (self.samples if self.samples is not None else self.pdf).shape[0]

    # -- grid helpers ------------------------------------------------------------------------------
    def cdf_grid(self) -> np.ndarray:
        """CDF on the grid (n, g) by the trapezoid rule (grid posteriors only)."""
        g, p = self.grid, self.pdf
        inc = 0.5 * (p[:, 1:] + p[:, :-1]) * np.diff(g)[None]
        c = np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(inc, axis=1)], axis=1)
        return c / np.where(c[:, -1:] > 0, c[:, -1:], 1.0)

    def quantiles(self, q) -> np.ndarray:
        """Quantiles (n, len(q), p) at probabilities ``q`` in [0, 1]."""
        q = np.atleast_1d(np.asarray(q, dtype=float))
        if self.samples is not None:
            return np.moveaxis(np.quantile(self.samples, q, axis=1), 0, 1)
        c = self.cdf_grid()
        out = np.empty((self.n, q.size, 1))
        for i in range(self.n):
            ci, keep = np.unique(c[i], return_index=True)
            out[i, :, 0] = np.interp(q, ci, self.grid[keep])
        return out

    def cdf_at(self, values: np.ndarray) -> np.ndarray:
        """P(theta <= value) per object and parameter (n, p): the PIT when ``values`` are the truths."""
        values = np.asarray(values, dtype=float).reshape(self.n, -1)
        if self.samples is not None:
            return (self.samples <= values[:, None, :]).mean(axis=1)
        c = self.cdf_grid()
        return np.array([[np.interp(values[i, 0], self.grid, c[i])] for i in range(self.n)])

    def sample(self, n_samples: int, seed: int = 0) -> np.ndarray:
        """Samples (n, n_samples, p): the stored ones (resampled if needed) or inverse-CDF draws from the grid."""
        rng = np.random.default_rng(seed)
        if self.samples is not None:
            s = self.samples.shape[1]
            if s == n_samples:
                return self.samples
            idx = rng.integers(0, s, size=(self.n, n_samples))
            return np.take_along_axis(self.samples, idx[..., None], axis=1)
        u = rng.random((self.n, n_samples))
        c = self.cdf_grid()
        out = np.empty((self.n, n_samples, 1))
        for i in range(self.n):
            ci, keep = np.unique(c[i], return_index=True)
            out[i, :, 0] = np.interp(u[i], ci, self.grid[keep])
        return out

    def mean(self) -> np.ndarray:
        if self.samples is not None:
            return self.samples.mean(axis=1)
        return np.trapezoid(self.pdf * self.grid[None], self.grid, axis=1)[:, None]

    def std(self) -> np.ndarray:
        if self.samples is not None:
            return self.samples.std(axis=1)
        m = self.mean()[:, 0]
        v = np.trapezoid(self.pdf * (self.grid[None] - m[:, None]) ** 2, self.grid, axis=1)
        return np.sqrt(np.maximum(v, 0))[:, None]

    def median(self) -> np.ndarray:
        return self.quantiles([0.5])[:, 0, :]

    def summaries(self) -> dict[str, np.ndarray]:
        """``{"<param>_mean", "_median", "_std", "_p2.5", "_p16", "_p50", "_p84", "_p97.5"}`` arrays (n,)."""
        out: dict[str, np.ndarray] = {}
        mean, std = self.mean(), self.std()
        qs = self.quantiles(np.array(SUMMARY_PERCENTILES) / 100.0)
        for j, name in enumerate(self.params):
            out[f"{name}_mean"] = mean[:, j]
            out[f"{name}_median"] = qs[:, SUMMARY_PERCENTILES.index(50.0), j]
            out[f"{name}_std"] = std[:, j]
            for k, p in enumerate(SUMMARY_PERCENTILES):
                out[f"{name}_p{p:g}"] = qs[:, k, j]
        if self.valid is not None and not self.valid.all():
            for v in out.values():
                v[~self.valid] = np.nan
        return out

    def subset(self, index) -> "Posterior":
        return Posterior(params=self.params, units=self.units,
                         samples=None if self.samples is None else self.samples[index],
                         grid=self.grid, pdf=None if self.pdf is None else self.pdf[index],
                         diagnostics={k: np.asarray(v)[index] for k, v in self.diagnostics.items()},
                         valid=self.valid[index], method=self.method, info=dict(self.info))

    @staticmethod
    def concatenate(parts: list["Posterior"]) -> "Posterior":
        p0 = parts[0]
        def cat(name: str):
            return None if getattr(p0, name) is None else np.concatenate([getattr(p, name) for p in parts], axis=0)

        diags = {k: np.concatenate([p.diagnostics[k] for p in parts]) for k in p0.diagnostics}
        return Posterior(params=p0.params, units=p0.units, samples=cat("samples"), grid=p0.grid,
                         pdf=cat("pdf"), diagnostics=diags, valid=cat("valid"), method=p0.method,
                         info=dict(p0.info))


def summarize_samples(samples: np.ndarray, params: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Summary columns for a raw sample array (n, s, p)."""
    return Posterior(params=params, units=("",) * len(params), samples=samples).summaries()
