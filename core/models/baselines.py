"""Baselines for halo_mass: the simulator's exact posterior and the inverted stellar-to-halo-mass relation.

``exact`` is the Bayes-optimal yardstick: it only applies to data simulated by the catalogue simulator (the
simulator configuration is taken from the training data's provenance and stored in the checkpoint).
``shmr`` is the classical estimate: p(log Mh | log M*) ∝ p(log Mh) N(log M*; SHMR(log Mh) + b, s), with the
literature SHMR (Moster+13 by default), and the offset b and total scatter s (intrinsic ⊕ measurement) fitted to
the training residuals; the prior p(log Mh) is the smoothed training distribution. It uses log M* only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.config import Config, param
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.models.base import PosteriorModel, check_missing

__all__ = ["ExactConfig", "ExactModel", "ShmrConfig", "ShmrModel", "empirical_prior"]


@dataclass(frozen=True)
class ExactConfig(Config):
    """The exact posterior has no settings of its own: the simulator configuration comes from the data."""

    simulator: str = param("catalog", help="Simulator whose exact posterior is computed")


class ExactModel(PosteriorModel):
    """Bayes-optimal posterior by quadrature; NaN features are marginalized exactly."""

    name = "exact"
    config_cls = ExactConfig
    missing_policy = "marginalize"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.sim_config: dict | None = None

    def fit(self, train: CatalogData, val=None, *, callbacks=(), stop=None, device=None) -> dict:
        if train.meta.get("source") != "simulator" or train.meta.get("simulator") != self.config.simulator:
            raise GPSError("the exact posterior exists only for data simulated by the "
                           f"{self.config.simulator!r} simulator", source=str(train.meta.get("file", "data")),
                           expected=f"simulated data (simulator={self.config.simulator!r})",
                           found=str(train.meta.get("source", "a file")))
        self.sim_config = dict(train.meta.get("config", {}))
        return {"device": "cpu", "seconds": 0.0, "stopped_reason": "no training needed"}

    def posterior(self, data: CatalogData, *, n_samples: int = 1000, seed: int = 0, device=None, progress=None):
        from core.data.simulators import SIMULATORS

        if self.sim_config is None:
            raise GPSError("the exact model has no simulator configuration", expected="fit() on simulated data")
        x = self.inputs(data)
        check_missing(x, self.features, self.name, str(data.meta.get("file", "input data")))
        spec = SIMULATORS.get(self.config.simulator)
        post = spec.exact_posterior_factory(spec.config_cls.from_dict(self.sim_config), self.features).posterior(x)
        post.method = self.name
        return post

    def get_state(self):
        return {}, {"sim_config": json.dumps(self.sim_config)}

    def set_state(self, tensors, extra) -> None:
        self.sim_config = json.loads(extra["sim_config"])


@dataclass(frozen=True)
class ShmrConfig(Config):
    relation: Literal["moster13", "behroozi13", "moster18"] = param(
        "moster13", help="Literature stellar-to-halo-mass relation to invert")
    redshift: float = param(0.0, help="Redshift at which the relation is evaluated", min=0.0, max=3.0)
    fit_offset: bool = param(True, help="Fit a mean offset of log M* about the relation on the training set")
    scatter: float = param(0.0, help="Total log M* scatter at fixed halo mass in dex (0 = fit on training data)",
                           min=0.0, max=1.5)
    grid_size: int = param(401, help="Nodes of the log Mh grid", min=50, max=5000, advanced=True)


class ShmrModel(PosteriorModel):
    """Grid posterior from inverting the SHMR with a Gaussian scatter and the training prior (log M* only)."""

    name = "shmr"
    config_cls = ShmrConfig
    missing_policy = "refuse"

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        if "log_mstar" not in self.features:
            raise GPSError("the SHMR baseline needs the stellar mass", field="log_mstar",
                           expected="log_mstar among the features", found=", ".join(self.features))
        self.features = ("log_mstar",)
        self.grid = self.prior = None
        self.offset, self.sigma = 0.0, 0.2

    def fit(self, train: CatalogData, val=None, *, callbacks=(), stop=None, device=None) -> dict:
        from core.data.simulators.physics import shmr_logmstar

        ms, h = train.column("log_mstar"), train.y[:, 0]
        ok = np.isfinite(ms) & np.isfinite(h)
        if ok.sum() < 10:
            raise GPSError("too few complete rows to fit the SHMR baseline", field="log_mstar, log_mh",
                           expected=">= 10", found=str(int(ok.sum())))
        resid = ms[ok] - shmr_logmstar(h[ok], self.config.redshift, self.config.relation)
        self.offset = float(np.median(resid)) if self.config.fit_offset else 0.0
        self.sigma = self.config.scatter or float(1.4826 * np.median(np.abs(resid - np.median(resid))))
        self.grid, self.prior = empirical_prior(h[ok], self.config.grid_size)
        return {"device": "cpu", "offset": self.offset, "sigma": self.sigma, "stopped_reason": "closed form"}

    def posterior(self, data: CatalogData, *, n_samples: int = 1000, seed: int = 0, device=None, progress=None):
        from core.data.simulators.physics import shmr_logmstar

        x = self.inputs(data)
        src = str(data.meta.get("file", "input data"))
        rows = check_missing(x, self.features, self.name, src)
        mu = shmr_logmstar(self.grid, self.config.redshift, self.config.relation) + self.offset
        ms = np.where(rows, 0.0, x[:, 0])
        logl = -0.5 * ((ms[:, None] - mu[None]) / self.sigma) ** 2
        logp = logl + np.log(np.maximum(self.prior, 1e-300))[None]
        logp -= logp.max(axis=1, keepdims=True)
        pdf = np.exp(logp)
        pdf /= np.trapezoid(pdf, self.grid, axis=1)[:, None]
        return Posterior(params=self.targets, units=self.param_units(), grid=self.grid, pdf=pdf, valid=~rows,
                         method=self.name)

    def get_state(self):
        return ({"grid": self.grid, "prior": self.prior},
                {"offset": self.offset, "sigma": self.sigma})

    def set_state(self, tensors, extra) -> None:
        self.grid, self.prior = np.asarray(tensors["grid"]), np.asarray(tensors["prior"])
        self.offset, self.sigma = float(extra["offset"]), float(extra["sigma"])


def empirical_prior(values: np.ndarray, n_grid: int = 401, pad: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed density of training targets on a grid spanning their range (+``pad``), normalized to 1.

    Histogram with ~0.02-dex bins convolved with a Gaussian of Silverman's bandwidth; zero beyond the padded range.
    """
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    lo, hi = v.min() - pad, v.max() + pad
    grid = np.linspace(lo, hi, n_grid)
    dx = grid[1] - grid[0]
    hist, _ = np.histogram(v, bins=np.append(grid - dx / 2, grid[-1] + dx / 2))
    bw = max(1.06 * v.std() * len(v) ** -0.2, 2 * dx)
    k = np.arange(-int(4 * bw / dx) - 1, int(4 * bw / dx) + 2) * dx
    kern = np.exp(-0.5 * (k / bw) ** 2)
    dens = np.convolve(hist.astype(float), kern / kern.sum(), mode="same")
    dens /= np.trapezoid(dens, grid)
    return grid, dens
