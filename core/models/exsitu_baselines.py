"""``mean_map`` baseline for ``exsitu_map``: the training distribution of f_ex at each radius, ignoring the inputs.

Maps are centred on the galaxy and span a fixed number of half-mass radii, so the radius of a pixel from the map
centre is a physical radius in r_1/2 units. The baseline stores, per radial bin, quantiles of the training f_ex
over galaxy pixels; its per-pixel predictive distribution is that marginal (calibrated by construction, but the
same for every galaxy). It answers the same ``posterior`` call as the cVAE model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Config, param
from core.errors import GPSError
from core.inference.posterior_maps import MapPosterior, MapPosteriorBuilder
from core.models.base import PosteriorModel
from core.models.exsitu_data import map_arrays

__all__ = ["MeanMapConfig", "MeanMapModel"]

_LEVELS = np.linspace(0.0, 1.0, 201)


@dataclass(frozen=True)
class MeanMapConfig(Config):
    """Settings of the per-radius mean-map baseline."""

    map_size: int = param(64, help="Map side in pixels", min=8, max=1024)
    radial_bins: int = param(24, help="Radial bins from the map centre to the corner", min=1, max=512)
    batch_objects: int = param(16, help="Objects per inference batch", min=1, max=4096, advanced=True)


class MeanMapModel(PosteriorModel):
    """Per-radius training distribution of f_ex (galaxy pixels). ``features`` only fix the required channels."""

    name = "mean_map"
    config_cls = MeanMapConfig
    missing_policy = "refuse"

    def __init__(self, config: MeanMapConfig, features: Sequence[str], targets: Sequence[str] = ("f_ex",),
                 units: dict[str, str] | None = None) -> None:
        super().__init__(config, features, targets or ("f_ex",), units)
        self.quantiles: np.ndarray | None = None     # (radial_bins, len(_LEVELS))
        self.means: np.ndarray | None = None         # (radial_bins,)

    def fit(self, train, val=None, *, callbacks: Sequence[Callable] = (), stop: threading.Event | None = None,
            device: str | None = None) -> dict:
        a = map_arrays(train, self.features, self.config.map_size, need_truth=True, model=self.name,
                       drop_empty=True)
        rbin = self._rbin()
        nb = self.config.radial_bins
        q = np.full((nb, len(_LEVELS)), np.nan)
        mu = np.full(nb, np.nan)
        for b in range(nb):
            sel = a.weight & (rbin == b)[None]
            if sel.any():
                v = a.f_ex[sel].astype(np.float64)
                q[b], mu[b] = np.quantile(v, _LEVELS), v.mean()
        filled = np.flatnonzero(np.isfinite(mu))
        if filled.size == 0:
            raise GPSError("no galaxy pixels in the training maps", source=a.source, field="f_ex")
        for b in range(nb):                       # empty bins (corners): nearest filled bin
            if not np.isfinite(mu[b]):
                j = filled[np.argmin(np.abs(filled - b))]
                q[b], mu[b] = q[j], mu[j]
        self.quantiles, self.means = q, mu
        self.history = {"n_train": len(a.x), "seconds": 0.0}
        return self.history

    def posterior(self, data, *, n_samples: int = 100, seed: int = 0, device: str | None = None,
                  progress: Callable[[int, int], None] | None = None, mode: str = "mean_map",
                  thresholds: Sequence[float] = (0.5,), keep_samples: int = 0) -> MapPosterior:
        """Draws by inverse CDF of the stored per-radius quantiles (independent per pixel)."""
        if self.quantiles is None:
            raise GPSError("the mean_map baseline has not been trained or loaded", source=self.name)
        a = map_arrays(data, self.features, self.config.map_size, need_truth=False, model=self.name)
        rng = np.random.default_rng(seed)
        size = self.config.map_size
        qmap = self.quantiles[self._rbin()]          # (H, W, L)
        n = len(a.x)
        builder = MapPosteriorBuilder(n, (size, size), thresholds, keep_samples)
        for start in range(0, n, self.config.batch_objects):
            b = min(self.config.batch_objects, n - start)
            u = rng.random((b, n_samples, size, size))
            draws = _inverse_cdf(qmap, u)
            builder.add(start, draws)
            if progress is not None:
                progress(start + b, n)
        return builder.finish(target="f_ex", unit="", mask=a.mask, method=self.name, truth=a.f_ex, ids=a.ids,
                              info={"mode": "mean_map", "seed": seed, "source": a.source})

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        if self.quantiles is None:
            raise GPSError("the mean_map baseline has not been trained", source=self.name)
        return {"quantiles": self.quantiles.copy(), "means": self.means.copy()}, {"history": self.history}

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        q = np.asarray(tensors["quantiles"], dtype=np.float64)
        if q.shape != (self.config.radial_bins, len(_LEVELS)):
            raise GPSError("stored quantile table does not match the configuration", source=self.name,
                           field="quantiles", expected=str((self.config.radial_bins, len(_LEVELS))),
                           found=str(q.shape))
        self.quantiles, self.means = q, np.asarray(tensors["means"], dtype=np.float64)
        self.history = dict(extra.get("history", {}))

    def _rbin(self) -> np.ndarray:
        """(H, W) radial bin index of each pixel (0 at the centre, radial_bins - 1 at the corners)."""
        s = self.config.map_size
        c = np.arange(s) - (s - 1) / 2
        r = np.hypot(c[None, :], c[:, None]) / (np.sqrt(2) * s / 2)
        return np.clip((r * self.config.radial_bins).astype(int), 0, self.config.radial_bins - 1)


def _inverse_cdf(qmap: np.ndarray, u: np.ndarray) -> np.ndarray:
    """qmap (H, W, L) quantiles at _LEVELS; u (b, S, H, W) uniforms -> values by linear interpolation."""
    pos = u * (len(_LEVELS) - 1)
    k = np.clip(pos.astype(int), 0, len(_LEVELS) - 2)
    t = pos - k
    lo = np.take_along_axis(qmap[None, None], k[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(qmap[None, None], (k + 1)[..., None], axis=-1)[..., 0]
    return (lo + t * (hi - lo)).astype(np.float32)
