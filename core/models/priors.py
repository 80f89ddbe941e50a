"""Priors on the scalar target (e.g. log Mh) for likelihood-based models: training density, uniform or Gaussian.

The default ``training`` prior is the smoothed density of the training targets on a grid: a fine histogram
smoothed by a Gaussian kernel (bandwidth in target units) with *reflection at the range limits*, so that a
truncated prior such as the halo mass function on [10.5, 15] keeps its full height at the edges instead of the
half-height a plain KDE would give. Outside the training range the log density continues from its edge value with
a steep Gaussian fall-off of width ``edge`` ("soft edge"): effectively zero mass outside, but finite with a
gradient that points back inside, which keeps Hamiltonian Monte Carlo free of divergences at the boundary.
The same :class:`TargetPrior` is evaluated in numpy (:meth:`log_prob`) and inside JAX (:meth:`log_prob_jax`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.errors import GPSError

__all__ = ["TargetPrior", "log_prob_arrays"]


@dataclass
class TargetPrior:
    """Unnormalized log prior density of one scalar target, in physical units (e.g. dex).

    ``kind``: "training" (``grid`` (g,) and ``logpdf`` (g,) on [low, high]), "uniform" on [low, high] or
    "gaussian" (``mean``, ``sd``; no range limits). ``edge`` is the width of the soft fall-off outside [low, high].
    """

    kind: Literal["training", "uniform", "gaussian"]
    low: float = -math.inf
    high: float = math.inf
    mean: float = 0.0
    sd: float = 1.0
    edge: float = 0.02
    grid: np.ndarray | None = None
    logpdf: np.ndarray | None = None

    # -- constructors ------------------------------------------------------------------------------
    @classmethod
    def from_samples(cls, y: np.ndarray, bandwidth: float = 0.05, n_grid: int = 512,
                     edge: float = 0.02) -> "TargetPrior":
        """Reflection-corrected Gaussian KDE of ``y`` (n,) on ``n_grid`` nodes over [min(y), max(y)]."""
        y = np.asarray(y, dtype=float)
        y = y[np.isfinite(y)]
        if y.size < 2 or np.ptp(y) <= 0:
            raise GPSError("cannot build a training prior from fewer than two distinct target values",
                           source="TargetPrior", field="targets", expected=">= 2 distinct finite values",
                           found=f"{y.size} value(s)")
        lo, hi = float(y.min()), float(y.max())
        edges = np.linspace(lo, hi, n_grid + 1)
        counts, _ = np.histogram(y, bins=edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        dx = edges[1] - edges[0]
        # reflect the histogram about both limits, convolve with the kernel, keep the middle
        padded = np.concatenate([counts[::-1], counts, counts[::-1]]).astype(float)
        half = int(min(len(counts), math.ceil(4 * bandwidth / dx)))
        t = np.arange(-half, half + 1) * dx
        kern = np.exp(-0.5 * (t / max(bandwidth, 1e-12)) ** 2)
        smooth = np.convolve(padded, kern / kern.sum(), mode="same")[len(counts):2 * len(counts)]
        dens = smooth / (smooth.sum() * dx)
        logpdf = np.log(np.maximum(dens, dens.max() * 1e-8))
        grid = np.concatenate([[lo], centres, [hi]])
        logpdf = np.concatenate([[logpdf[0]], logpdf, [logpdf[-1]]])
        return cls("training", low=lo, high=hi, edge=edge, grid=grid, logpdf=logpdf)

    @classmethod
    def uniform(cls, low: float, high: float, edge: float = 0.02) -> "TargetPrior":
        if not high > low:
            raise GPSError("the uniform prior needs low < high", source="TargetPrior", field="prior range",
                           expected="low < high", found=f"[{low}, {high}]")
        return cls("uniform", low=float(low), high=float(high), edge=edge)

    @classmethod
    def gaussian(cls, mean: float, sd: float) -> "TargetPrior":
        if not sd > 0:
            raise GPSError("the Gaussian prior needs sd > 0", source="TargetPrior", field="prior sd",
                           expected="> 0", found=str(sd))
        return cls("gaussian", mean=float(mean), sd=float(sd))

    # -- evaluation --------------------------------------------------------------------------------
    def log_prob(self, y: np.ndarray) -> np.ndarray:
        """Unnormalized log density at ``y`` (any shape), numpy."""
        return np.asarray(self._eval(np, np.asarray(y, dtype=float)))

    def log_prob_jax(self, y):
        """Unnormalized log density at ``y`` (JAX array, differentiable)."""
        import jax.numpy as jnp

        return self._eval(jnp, y)

    def jax_arrays(self) -> dict[str, np.ndarray]:
        """The prior as a dict of float32 arrays for :func:`log_prob_arrays` (same function for every kind)."""
        big = 1e30
        if self.kind == "training":
            grid, logpdf = self.grid, self.logpdf
        else:
            grid, logpdf = np.array([-big, big]), np.zeros(2)
        lo, hi = (self.low, self.high) if self.kind != "gaussian" else (-big, big)
        f32 = lambda v: np.asarray(v, dtype=np.float32)  # noqa: E731
        return {"grid": f32(grid), "logpdf": f32(logpdf), "low": f32(lo), "high": f32(hi), "edge": f32(self.edge),
                "mean": f32(self.mean), "sd": f32(self.sd), "gauss": f32(1.0 if self.kind == "gaussian" else 0.0)}

    def support(self) -> tuple[float, float]:
        """(low, high) where the prior has its mass (mean +- 5 sd for a Gaussian)."""
        if self.kind == "gaussian":
            return self.mean - 5 * self.sd, self.mean + 5 * self.sd
        return self.low, self.high

    # -- state -------------------------------------------------------------------------------------
    def to_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays = {}
        if self.grid is not None:
            arrays = {"prior.grid": np.asarray(self.grid, dtype=np.float64),
                      "prior.logpdf": np.asarray(self.logpdf, dtype=np.float64)}
        extra = {"kind": self.kind, "low": _finite_or_none(self.low), "high": _finite_or_none(self.high),
                 "mean": self.mean, "sd": self.sd, "edge": self.edge}
        return arrays, extra

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray], extra: dict[str, Any]) -> "TargetPrior":
        low = -math.inf if extra.get("low") is None else float(extra["low"])
        high = math.inf if extra.get("high") is None else float(extra["high"])
        grid = arrays.get("prior.grid")
        logpdf = arrays.get("prior.logpdf")
        return cls(extra["kind"], low=low, high=high, mean=float(extra["mean"]), sd=float(extra["sd"]),
                   edge=float(extra["edge"]), grid=None if grid is None else np.asarray(grid, dtype=np.float64),
                   logpdf=None if logpdf is None else np.asarray(logpdf, dtype=np.float64))

    # -- private -----------------------------------------------------------------------------------
    def _eval(self, xp, y):
        if self.kind == "gaussian":
            return -0.5 * ((y - self.mean) / self.sd) ** 2
        yc = xp.clip(y, self.low, self.high)
        if self.kind == "training":
            inside = xp.interp(yc, xp.asarray(self.grid), xp.asarray(self.logpdf))
        else:
            inside = xp.zeros_like(yc)
        out = (y - yc) / self.edge
        return inside - 0.5 * out ** 2


def log_prob_arrays(arrs: dict, y):
    """JAX log density of a prior given as :meth:`TargetPrior.jax_arrays` (traceable: arrays are arguments)."""
    import jax.numpy as jnp

    yc = jnp.clip(y, arrs["low"], arrs["high"])
    bounded = jnp.interp(yc, arrs["grid"], arrs["logpdf"]) - 0.5 * ((y - yc) / arrs["edge"]) ** 2
    gauss = -0.5 * ((y - arrs["mean"]) / arrs["sd"]) ** 2
    return jnp.where(arrs["gauss"] > 0, gauss, bounded)


def _finite_or_none(v: float):
    return float(v) if math.isfinite(v) else None
