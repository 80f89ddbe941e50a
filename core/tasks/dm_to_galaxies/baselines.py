"""Baselines for dm_to_galaxies: the exact ``oracle``, the seed's 3-parameter ``hod`` and a density ``threshold``.

All three follow the :class:`core.models.base.PosteriorModel` interface on :class:`FieldData` and return a
:class:`FieldPosterior`.

* ``oracle`` — the simulator's exact P(N >= 1 | DM) and E[N | DM] (:mod:`.oracle`), samples from the exact model.
  Needs the simulator config of the data (simulated fields only).
* ``hod`` — halos *found in the DM field* (local maxima of rho over the 3^d neighbourhood; mass proxy = DM mass in
  that neighbourhood, M = rho_m_bar dV sum rho) populated with the seed's 3-parameter HOD: a central when
  M >= M_min and Poisson((M / M1)^alpha) satellites, all in the peak voxel. (log M_min, log M1, alpha) are fitted
  on the training fields by a grid search minimising the Poisson deviance of the counts.
* ``threshold`` — "occupied" where rho / rho_bar >= t, t tuned on the validation fields for the best F1; its
  score is rho itself, expected counts are the training mean count per log-density bin.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from core.config import Config, param
from core.errors import GPSError
from core.models.base import PosteriorModel
from core.tasks.dm_to_galaxies.data import FieldData, FieldPosterior
from core.tasks.dm_to_galaxies.metrics import poisson_deviance, threshold_for_best_f1

__all__ = ["OracleConfig", "OracleModel", "HodConfig", "HodModel", "ThresholdConfig", "ThresholdModel", "find_peaks"]

RHO_CRIT = 2.775e11  # critical density today [h^2 Msun / Mpc^3] = [Msun/h / (Mpc/h)^3]


class _FieldModel(PosteriorModel):
    """Shared plumbing: callbacks, stop flag, empty state."""

    def _check(self, data: FieldData, need_truth: bool = False) -> None:
        if not isinstance(data, FieldData):
            raise GPSError("this model needs DM density fields", expected="FieldData", found=type(data).__name__)
        if need_truth and data.galaxies is None:
            raise GPSError("training needs the true galaxy fields", field="galaxies", expected="counts", found="none")

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return {}, {}

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        pass


# ------------------------------------------------------------------------------------------------------ oracle
@dataclass(frozen=True)
class OracleConfig(Config):
    threshold: float = param(0.5, help="Operating point on P(N>=1) for yes/no maps", min=0.0, max=1.0)


class OracleModel(_FieldModel):
    name: ClassVar[str] = "oracle"
    config_cls: ClassVar[type[Config]] = OracleConfig

    def fit(
        self,
        train,
        val=None,
        *,
        callbacks: Sequence[Callable] = (),
        stop: threading.Event | None = None,
        device: str | None = None,
    ) -> dict:
        return {"note": "exact model: nothing to train"}

    def posterior(
        self,
        data: FieldData,
        *,
        n_samples: int = 1,
        seed: int = 0,
        device: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> FieldPosterior:
        from core.tasks.dm_to_galaxies.oracle import oracle_fields, oracle_samples

        self._check(data)
        cfg = data.config
        if cfg is None:
            raise GPSError(
                "the exact oracle needs simulated fields (the simulator config of the data)",
                field="sim_config",
                expected="simulated data",
                found=data.meta.get("file", "a file"),
            )
        prob, mean = oracle_fields(data.dm, cfg)
        samples = oracle_samples(data.dm, cfg, n_samples, seed) if n_samples > 0 else None
        return FieldPosterior(prob, mean, samples, self.config.threshold, self.name)


# ------------------------------------------------------------------------------------------------------ HOD
@dataclass(frozen=True)
class HodConfig(Config):
    omega_m: float = param(0.3111, help="Omega_m for the halo mass proxy", min=0.05, max=0.9)
    n_grid_mmin: int = param(40, help="Grid points in log M_min", min=5, max=400, advanced=True)


class HodModel(_FieldModel):
    name: ClassVar[str] = "hod"
    config_cls: ClassVar[type[Config]] = HodConfig
    params: tuple[float, float, float] | None = None

    def fit(
        self,
        train: FieldData,
        val: FieldData | None = None,
        *,
        callbacks: Sequence[Callable] = (),
        stop: threading.Event | None = None,
        device: str | None = None,
    ) -> dict:
        self._check(train, need_truth=True)
        logm, y, other = [], [], 0.0
        for d, g in zip(train.dm, train.galaxies):
            peaks, lm = self._peaks(d, train)
            logm.append(lm)
            y.append(g[peaks].astype(float))
            other += float(g.sum() - g[peaks].sum())
        logm, y = np.concatenate(logm), np.concatenate(y)
        best = (np.inf, None)
        lo, hi = np.quantile(logm, [0.3, 0.9999])
        for lmin in np.linspace(lo, hi, self.config.n_grid_mmin):
            for dm1 in np.arange(0.25, 2.51, 0.25):
                for alpha in (0.6, 0.8, 1.0, 1.2, 1.5):
                    mu = self._mean(logm, (lmin, lmin + dm1, alpha))
                    dev = poisson_deviance(mu, y, floor=1e-3) * len(y)
                    if dev < best[0]:
                        best = (dev, (float(lmin), float(lmin + dm1), float(alpha)))
        self.params = best[1]
        self.history = {
            "log_m_min": self.params[0],
            "log_m1": self.params[1],
            "alpha": self.params[2],
            "galaxies_outside_peaks_fraction": other / max(float(train.galaxies.sum()), 1.0),
        }
        return self.history

    def posterior(
        self,
        data: FieldData,
        *,
        n_samples: int = 1,
        seed: int = 0,
        device: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> FieldPosterior:
        self._check(data)
        if self.params is None:
            raise GPSError("the HOD baseline is not fitted", expected="fit() or a checkpoint")
        mean = np.zeros(data.dm.shape, np.float32)
        for i, d in enumerate(data.dm):
            peaks, lm = self._peaks(d, data)
            mean[i][peaks] = self._mean(lm, self.params)
        rng = np.random.default_rng(seed)
        samples = None
        if n_samples > 0:
            cen = (mean >= 1.0).astype(np.int32)
            samples = (
                cen[:, None]
                + rng.poisson(np.clip(mean - cen, 0, None)[:, None], size=(len(mean), n_samples) + mean.shape[1:])
            ).astype(np.int32)
        return FieldPosterior(-np.expm1(-mean), mean, samples, float(-np.expm1(-1.0)), self.name)

    def get_state(self):
        return {}, {"params": list(self.params) if self.params else None}

    def set_state(self, tensors, extra):
        self.params = tuple(extra["params"]) if extra.get("params") else None

    def _peaks(self, d: np.ndarray, data: FieldData) -> tuple[tuple, np.ndarray]:
        cfg = data.config
        n = d.shape[0]
        cell = data.box_size / n
        vol = cell**3 if d.ndim == 3 else cell**2 * (cfg.slab if cfg else 5.0)
        peaks, mass = find_peaks(d)
        return peaks, np.log10(np.clip(mass * RHO_CRIT * self.config.omega_m * vol, 1.0, None))

    @staticmethod
    def _mean(logm: np.ndarray, p: tuple[float, float, float]) -> np.ndarray:
        lmin, lm1, alpha = p
        cen = logm >= lmin
        return cen * (1.0 + 10 ** (alpha * (logm - lm1)))


def find_peaks(d: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Local maxima of a periodic field over the 3^d neighbourhood: (index tuple, summed density around them)."""
    from scipy.ndimage import maximum_filter, uniform_filter

    mx = maximum_filter(d, size=3, mode="wrap")
    tot = uniform_filter(d.astype(np.float64), size=3, mode="wrap") * 3**d.ndim
    peaks = np.nonzero(d >= mx)
    return peaks, tot[peaks]


# ------------------------------------------------------------------------------------------------------ threshold
@dataclass(frozen=True)
class ThresholdConfig(Config):
    n_bins: int = param(40, help="log-density bins for the expected-count table", min=4, max=400)


class ThresholdModel(_FieldModel):
    name: ClassVar[str] = "threshold"
    config_cls: ClassVar[type[Config]] = ThresholdConfig
    threshold: float = 1.0
    edges: np.ndarray | None = None
    table_mean: np.ndarray | None = None
    table_prob: np.ndarray | None = None

    def fit(
        self,
        train: FieldData,
        val: FieldData | None = None,
        *,
        callbacks: Sequence[Callable] = (),
        stop: threading.Event | None = None,
        device: str | None = None,
    ) -> dict:
        self._check(train, need_truth=True)
        val = val if val is not None and val.galaxies is not None else train
        logd = np.log10(train.dm).ravel()
        g = train.galaxies.ravel().astype(float)
        self.edges = np.quantile(logd, np.linspace(0, 1, self.config.n_bins + 1))
        b = self._bin(logd)
        cnt = np.bincount(b, minlength=self.config.n_bins).clip(1)
        self.table_mean = np.bincount(b, g, minlength=self.config.n_bins) / cnt
        self.table_prob = np.bincount(b, (g > 0).astype(float), minlength=self.config.n_bins) / cnt
        self.threshold, f1 = threshold_for_best_f1(val.dm, val.galaxies > 0)
        self.history = {"threshold_rho": self.threshold, "val_f1": f1}
        return self.history

    def posterior(
        self,
        data: FieldData,
        *,
        n_samples: int = 1,
        seed: int = 0,
        device: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> FieldPosterior:
        self._check(data)
        if self.edges is None:
            raise GPSError("the threshold baseline is not fitted", expected="fit() or a checkpoint")
        b = self._bin(np.log10(data.dm))
        occ = data.dm >= self.threshold
        # the score ranks voxels by density (monotone in rho, in [0, 1)), so "score >= 0.5" <=> "rho >= t"
        score = 1.0 / (1.0 + self.threshold / data.dm)
        samples = occ[:, None].astype(np.int32) if n_samples > 0 else None
        return FieldPosterior(score.astype(np.float32), self.table_mean[b].astype(np.float32), samples, 0.5, self.name)

    def get_state(self):
        return (
            {"edges": self.edges, "table_mean": self.table_mean, "table_prob": self.table_prob},
            {"threshold": self.threshold},
        )

    def set_state(self, tensors, extra):
        self.edges, self.table_mean = tensors["edges"], tensors["table_mean"]
        self.table_prob = tensors["table_prob"]
        self.threshold = float(extra["threshold"])

    def _bin(self, logd: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(self.edges, logd, side="right") - 1, 0, len(self.edges) - 2)
