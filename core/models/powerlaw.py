"""Power-law baseline for ``central_mass``: log y = a + b log10(L_r) per target, Gaussian residual scatter.

The seed's simplest test (its Fig. 6, 0.16 dex for M*): fit a power law of the total r-band luminosity L_r [Lsun]
(from the image: ``abs_mag_r`` of :mod:`core.data.summary_stats`, L_r = 10^(-0.4 (M_r - M_sun,r))) to each target
by least squares on the training set; the predictive distribution is N(a + b log L, s^2) with s the rms
training residual (optionally after ``clip_sigma`` clipping). Objects without a measurable L_r are invalid.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Config, param
from core.data.central_data import CentralMassData
from core.data.summary_stats import M_SUN_R_AB
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.models.base import PosteriorModel

__all__ = ["PowerLawConfig", "PowerLawModel"]


@dataclass(frozen=True)
class PowerLawConfig(Config):
    """Settings of the M*-luminosity power law."""

    clip_sigma: float = param(0.0, help="Refit once without residuals beyond this many sigma (0 = off)",
                              min=0.0, max=20.0)


class PowerLawModel(PosteriorModel):
    """y_j ~ N(a_j + b_j log10 L_r, s_j^2) per target."""

    name = "powerlaw"
    config_cls = PowerLawConfig
    missing_policy = "refuse"

    def __init__(self, config: PowerLawConfig, features: Sequence[str], targets: Sequence[str],
                 units: dict[str, str] | None = None) -> None:
        super().__init__(config, features, targets, units)
        self.coef: np.ndarray | None = None     # (p, 3): a, b, s

    def fit(self, train: CentralMassData, val: CentralMassData | None = None, *, callbacks: Sequence[Callable] = (),
            stop: threading.Event | None = None, device: str | None = None) -> dict:
        logl = self.log_luminosity(train)
        y = train.target_array(self.targets)
        ok = np.isfinite(logl) & np.all(np.isfinite(y), axis=1)
        if ok.sum() < 3:
            raise GPSError("too few objects with a luminosity to fit a power law", source=train.source,
                           expected=">= 3", found=str(int(ok.sum())))
        coef = []
        for j in range(y.shape[1]):
            x, t = logl[ok], y[ok, j]
            a, b, s = _fit(x, t)
            if self.config.clip_sigma > 0:
                keep = np.abs(t - a - b * x) <= self.config.clip_sigma * s
                a, b, s = _fit(x[keep], t[keep])
            coef.append((a, b, s))
        self.coef = np.asarray(coef)
        self.history = {"coef": self.coef.tolist(), "n_train": int(ok.sum()), "n_dropped": int((~ok).sum())}
        return self.history

    def posterior(self, data: CentralMassData, *, n_samples: int = 1000, seed: int = 0, device: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Posterior:
        """Gaussian draws (n, n_samples, p); ``info`` has ``mean``/``std`` (n, p)."""
        if self.coef is None:
            raise GPSError("the power-law model has not been trained or loaded", source="PowerLawModel",
                           expected="fit() or a checkpoint", found="untrained model")
        logl = self.log_luminosity(data)
        ok = np.isfinite(logl)
        mu = self.coef[None, :, 0] + self.coef[None, :, 1] * logl[:, None]
        sd = np.broadcast_to(self.coef[None, :, 2], mu.shape)
        rng = np.random.default_rng(seed)
        samples = mu[:, None, :] + sd[:, None, :] * rng.standard_normal((len(mu), n_samples, mu.shape[1]))
        if progress is not None:
            progress(len(mu), len(mu))
        return Posterior(params=self.targets, units=self.param_units(), samples=samples, valid=ok, method=self.name,
                         info={"mean": mu, "std": np.array(sd), "log_lum": logl})

    @staticmethod
    def log_luminosity(data: CentralMassData) -> np.ndarray:
        """log10 L_r [Lsun] of every object from the image (cached summary statistic ``abs_mag_r``)."""
        from core.models.central_gbdt import statistics_table

        return -0.4 * (statistics_table(data, ("abs_mag_r",))[:, 0] - M_SUN_R_AB)

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.coef is None:
            raise GPSError("nothing to save: the power-law model is untrained", source="PowerLawModel")
        return {"coef": self.coef.copy()}, {"history": self.history}

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        coef = np.asarray(tensors["coef"], dtype=float)
        if coef.shape != (len(self.targets), 3):
            raise GPSError("power-law coefficients do not match the targets", source="PowerLawModel", field="coef",
                           expected=str((len(self.targets), 3)), found=str(coef.shape))
        self.coef = coef
        self.history = dict(extra.get("history", {}))


def _fit(x: np.ndarray, t: np.ndarray) -> tuple[float, float, float]:
    b, a = np.polyfit(x, t, 1)
    return float(a), float(b), float(np.sqrt(np.mean((t - a - b * x) ** 2)))
