"""Photo-z baselines: ``flow`` (zuko NPE), ``lightgbm`` (quantile regression) and ``knn`` (nearest neighbours).

* ``flow`` — :class:`core.models.flows.FlowModel` (conditional neural spline flow q(z | x)) on r, the four colours
  and log10 of the five magnitude errors; trained by maximum likelihood on (mock or spec-z) pairs.
* ``lightgbm`` — :class:`core.models.gbdt.LightGBMModel` (L2 point + pinball quantile models, predictive
  distribution from the sorted quantiles) on r and the colours.
* ``knn`` — the usual empirical method: the k nearest training galaxies in standardized (r, colours) space; the
  photo-z is the median of their redshifts and p(z) the mixture of Gaussians of width h (1 + z_j) around each
  neighbour's z_j, with h fitted on a validation split so that the 68% central interval covers 68%.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Config, param
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.inference.training import TrainConfig
from core.models.base import PosteriorModel
from core.models.flows import FlowConfig
from core.models.gbdt import LightGBMConfig
from core.tasks.photoz.models.common import INPUTS, WrappedModel, design, z_target

__all__ = ["PhotozFlowConfig", "PhotozFlow", "PhotozLightGBMConfig", "PhotozLightGBM", "KnnConfig", "KnnModel"]


@dataclass(frozen=True)
class PhotozFlowConfig(FlowConfig):
    """Flow settings for photo-z (more spline bins: p(z) can be skewed or bimodal)."""

    transforms: int = param(3, help="Number of spline transforms", min=1, max=12)
    bins: int = param(12, help="Spline bins per transform", min=2, max=64)
    input_masks: bool = param(False, help="Train on randomly hidden inputs (off: the photo-z wrapper needs every band)")
    train: TrainConfig = field(
        default=TrainConfig(epochs=60, batch_size=512, lr=2e-3, patience=8), metadata={"help": "Optimisation settings"}
    )


class PhotozFlow(WrappedModel):
    name = "flow"
    config_cls = PhotozFlowConfig
    with_errors = True
    inner_factory = "core.models.flows:FlowModel"

    def pz_grid(self, data: CatalogData, grid: np.ndarray) -> np.ndarray:
        """The flow's density q(z | x) (n, g) on ``grid`` (exact, no sampling); NaN rows for flagged galaxies."""
        x, ok = design(data, self.with_errors)
        out = np.full((len(data), len(grid)), np.nan)
        if ok.any():
            out[ok] = np.exp(self.inner.log_prob(np.asarray(grid, float), x[ok]))
        return out


@dataclass(frozen=True)
class PhotozLightGBMConfig(LightGBMConfig):
    """LightGBM settings for photo-z."""

    num_leaves: int = param(31, help="Maximum leaves per tree", min=2, max=4096)
    n_estimators: int = param(600, help="Maximum boosting rounds per model", min=1, max=100000)
    quantiles: tuple[float, ...] = param((0.025, 0.16, 0.5, 0.84, 0.975), help="Quantile levels, one model each")
    input_masks: bool = param(
        False, help="Train on copies with hidden inputs (off: the photo-z wrapper needs every band)"
    )


class PhotozLightGBM(WrappedModel):
    name = "lightgbm"
    config_cls = PhotozLightGBMConfig
    inner_factory = "core.models.gbdt:LightGBMModel"

    def feature_importance(self, kind: str = "gain", target: int = 0) -> dict[str, float]:
        """Importance of each derived feature (r and the colours) in the point model of z."""
        return self.inner.feature_importance(kind=kind, target=target)


@dataclass(frozen=True)
class KnnConfig(Config):
    """Settings of the k-nearest-neighbour photo-z."""

    k: int = param(20, help="Neighbours per galaxy", min=1, max=1000)
    val_fraction: float = param(0.15, help="Validation fraction used to fit the kernel width", min=0.05, max=0.5)
    seed: int = param(0, help="Seed of the validation split and of the draws", min=0)


class KnnModel(PosteriorModel):
    """k nearest neighbours in (r, colours); p(z) = Gaussian mixture on the neighbours' redshifts."""

    name = "knn"
    config_cls = KnnConfig
    missing_policy = "refuse"

    def __init__(
        self,
        config: KnnConfig,
        features: Sequence[str] = INPUTS,
        targets: Sequence[str] = ("z",),
        units: dict[str, str] | None = None,
    ) -> None:
        super().__init__(config, features, ("z",), units or {"z": ""})
        self.x_train: np.ndarray | None = None
        self.z_train: np.ndarray | None = None
        self.mu = self.sd = None
        self.h = 0.01
        self._tree = None

    def fit(
        self,
        train: CatalogData,
        val: CatalogData | None = None,
        *,
        callbacks: Sequence[Callable] = (),
        stop: threading.Event | None = None,
        device: str | None = None,
    ) -> dict:
        x, ok = design(train)
        z = z_target(train)
        ok &= np.isfinite(z)
        x, z = x[ok], z[ok]
        if len(x) <= self.config.k:
            raise GPSError(
                "too few training galaxies for kNN",
                source="KnnModel",
                field="k",
                expected=f"> {self.config.k} galaxies",
                found=str(len(x)),
            )
        if val is None:
            perm = np.random.default_rng(self.config.seed).permutation(len(x))
            nv = max(1, int(self.config.val_fraction * len(x)))
            xv, zv, x, z = x[perm[:nv]], z[perm[:nv]], x[perm[nv:]], z[perm[nv:]]
        else:
            xv, okv = design(val)
            zv = z_target(val)
            okv &= np.isfinite(zv)
            xv, zv = xv[okv], zv[okv]
        self._set(x, z)
        zn = self._neighbours(xv)
        self.h = _fit_width(zn, zv)
        self.history = {"n_train": int(len(x)), "n_val": int(len(xv)), "kernel_width": self.h}
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
        self._require()
        x, ok = design(data)
        samples = np.full((len(data), n_samples, 1), np.nan)
        rng = np.random.default_rng(seed)
        if ok.any():
            zn = self._neighbours(x[ok])  # (m, k)
            pick = rng.integers(0, zn.shape[1], size=(len(zn), n_samples))
            zc = np.take_along_axis(zn, pick, axis=1)
            samples[ok, :, 0] = zc + self.h * (1 + zc) * rng.standard_normal(zc.shape)
        if progress is not None:
            progress(len(data), len(data))
        return Posterior(
            params=("z",),
            units=("",),
            samples=samples,
            valid=ok,
            method=self.name,
            info={"kernel_width": self.h, "k": self.config.k},
        )

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._require()
        return {"x_train": self.x_train, "z_train": self.z_train}, {"h": self.h}

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self._set(np.asarray(tensors["x_train"], float), np.asarray(tensors["z_train"], float))
        self.h = float(extra["h"])

    # -- private ---------------------------------------------------------------------------------
    def _set(self, x: np.ndarray, z: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        self.x_train, self.z_train = x, z
        self.mu, self.sd = x.mean(axis=0), np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)
        self._tree = cKDTree((x - self.mu) / self.sd)

    def _neighbours(self, x: np.ndarray) -> np.ndarray:
        _, idx = self._tree.query((x - self.mu) / self.sd, k=self.config.k)
        return self.z_train[np.asarray(idx).reshape(len(x), -1)]

    def _require(self) -> None:
        if self._tree is None:
            raise GPSError(
                "the kNN model has not been trained or loaded",
                source="KnnModel",
                expected="fit() or a checkpoint",
                found="untrained model",
            )


def _fit_width(zn: np.ndarray, zv: np.ndarray) -> float:
    """Kernel width h with 68% central coverage of the validation redshifts (bisection on log h)."""
    rng = np.random.default_rng(0)
    pick = rng.integers(0, zn.shape[1], size=(len(zn), 400))
    zc = np.take_along_axis(zn, pick, axis=1)
    eps = rng.standard_normal(zc.shape)

    def cov(h: float) -> float:
        s = zc + h * (1 + zc) * eps
        lo, hi = np.quantile(s, [0.16, 0.84], axis=1)
        return float(np.mean((zv >= lo) & (zv <= hi)))

    lo, hi = 1e-4, 0.3
    for _ in range(30):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if cov(mid) < 0.68 else (lo, mid)
    return float(np.sqrt(lo * hi))
