"""Posteriors learned on a proposal set, returned under the simulator's physical prior.

A simulator can draw its training set from a *proposal* (``halo_mass``: flat in log Mh, so that every mass is
learned) instead of its physical prior (the halo mass function). A model trained on it learns p(y | x) under the
proposal; :func:`core.data.simulators.prior_correction` gives log p_physical - log p_proposal on a grid of y, and
a single-target model with ``config.prior == "physical"`` keeps that ratio (saved with its checkpoint) and
reweights its predictive distribution on the grid: cell masses of its own distribution times the ratio, drawn
by the inverse CDF at normal-score levels (:func:`draw_from_cell_masses`). ``flow`` (its density) and
``lightgbm`` (its quantile function) use it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.config import param
from core.errors import GPSError

__all__ = ["PRIOR_CHOICES", "PRIOR_NOTE", "prior_param", "check_prior_choice", "PriorReweighting", "draw_from_cell_masses",
           "quantile_table", "draw_from_quantiles"]

PRIOR_CHOICES = ("physical", "training")
#: ``history["prior"]`` of a model that applies the correction (shown on its model card)
PRIOR_NOTE = ("trained on a proposal set, posteriors reweighted to the simulator's physical prior (the CLI scores "
              "them on objects simulated under it)")


def prior_param() -> Any:
    return param("physical", help="Prior of the posterior when the training set was drawn from a proposal (e.g. "
                 "flat in log Mh): 'physical' reweights the model to the simulator's physical prior (the halo mass "
                 "function), 'training' keeps the proposal's")


def check_prior_choice(value: str, source: str) -> None:
    if value not in PRIOR_CHOICES:
        raise GPSError("unknown prior choice", source=source, field="prior", expected=" | ".join(PRIOR_CHOICES),
                       found=repr(value))


class PriorReweighting:
    """Mixin for single-target models: ``prior_grid`` / ``prior_log_ratio`` (None when no correction applies)."""

    prior_grid: np.ndarray | None = None
    prior_log_ratio: np.ndarray | None = None

    @property
    def physical_prior(self) -> bool:
        return self.prior_grid is not None

    def _set_prior_correction(self, train) -> None:
        """Keep the simulator's proposal -> physical prior ratio for this model's target (config
        ``prior='physical'``), or none: a set that follows its physical prior, a file (fine-tuning learns that
        file's own prior), ``prior='training'``, or a model of several targets."""
        from core.data.simulators import prior_correction

        corr = prior_correction(train) if getattr(self.config, "prior", "training") == "physical" else None
        if corr is not None and tuple(self.targets) == (corr["target"],):
            self.prior_grid = np.asarray(corr["grid"], np.float64)
            self.prior_log_ratio = np.asarray(corr["log_ratio"], np.float64)
        else:
            self.prior_grid = self.prior_log_ratio = None

    def _prior_tensors(self) -> dict[str, np.ndarray]:
        if self.prior_grid is None:
            return {}
        return {"prior_grid": self.prior_grid.copy(), "prior_log_ratio": self.prior_log_ratio.copy()}

    def _load_prior_tensors(self, tensors: dict[str, np.ndarray]) -> None:
        if "prior_grid" in tensors:
            self.prior_grid = np.asarray(tensors["prior_grid"], np.float64)
            self.prior_log_ratio = np.asarray(tensors["prior_log_ratio"], np.float64)
        else:
            self.prior_grid = self.prior_log_ratio = None


def draw_from_cell_masses(mass: np.ndarray, g: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
    """Draws into ``out`` (n, s) from the distributions with ``mass`` (n, G - 1) in the cells of ``g`` (uniform
    within a cell). A row with no mass at all is refused."""
    total = mass.sum(axis=1, keepdims=True)
    if not np.all(total > 0):
        raise GPSError("a posterior has no mass inside the prior's support", source="prior reweighting",
                       field="prior_grid",
                       expected=f"mass in [{g[0]:g}, {g[-1]:g}]", found="none")
    cdf = np.concatenate([np.zeros((len(mass), 1)), np.cumsum(mass, axis=1)], axis=1) / total
    draw_from_quantiles(quantile_table(cdf, g), rng, out)


_Z_MAX, _Z_LEVELS = 6.0, 193
_Z_GRID = np.linspace(-_Z_MAX, _Z_MAX, _Z_LEVELS)


def quantile_table(cdf: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Each row's quantile function (n, L) at the normal-score levels Phi(z), z = -6 .. 6 in 193 steps, from CDFs
    ``cdf`` (n, G) tabulated on ``g`` (linear between nodes). In normal scores a unimodal posterior's quantile
    function is nearly linear, so reading it linearly is accurate into the far tails (a table uniform in u is
    not: its end cells spread the outer 0.05% of draws evenly over several sigma)."""
    from scipy.special import ndtr

    n, G = cdf.shape
    lv = ndtr(_Z_GRID)
    off = 2.0 * np.arange(n)[:, None]               # rows apart (cdf in [0, 1]): one sorted search for all rows
    k = np.searchsorted((cdf + off).ravel(), (lv[None, :] + off).ravel(), side="right").reshape(n, -1)
    k = np.clip(k - G * np.arange(n)[:, None] - 1, 0, G - 2)
    rows = np.arange(n)[:, None]
    c0, c1 = cdf[rows, k], cdf[rows, k + 1]
    t = np.clip((lv - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0, 1.0)
    return g[k] + t * (g[k + 1] - g[k])


def draw_from_quantiles(q: np.ndarray, rng: np.random.Generator, out: np.ndarray) -> None:
    """Draws into ``out`` (n, s): z ~ N(0, 1) (clipped at 6 sigma), read linearly from the quantile tables ``q``."""
    n, L = q.shape
    q32 = q.astype(np.float32)
    slope = np.diff(q32, axis=1)
    z = rng.standard_normal(out.shape, dtype=np.float32)
    np.clip(z, -_Z_MAX, _Z_MAX * (1 - 1e-6), out=z)
    z += _Z_MAX
    z *= (L - 1) / (2 * _Z_MAX)
    k = z.astype(np.int32)
    z -= k                                          # fraction within the cell
    k += (np.arange(n, dtype=np.int32) * (L - 1))[:, None]
    out[:] = np.take(q32[:, :-1].ravel(), k)
    out += z * np.take(slope.ravel(), k)
