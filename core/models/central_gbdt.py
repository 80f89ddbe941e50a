"""LightGBM on summary statistics for ``central_mass`` (the seed's interpretability study), with gain importance.

The maps are reduced to the observable statistics of :mod:`core.data.summary_stats` (absolute magnitude, g-r,
Sersic n, axis ratio, sigma_e, lambda_Re, log R_e), then :class:`core.models.gbdt.LightGBMModel` is trained per
target with the seed's settings (``num_leaves=5``, 500 rounds; early stopping is effectively off: patience 500)
and its L2 point + quantile machinery gives the predictive distribution. ``importance()`` returns the gain
importance per target; ``history["pearson"]`` holds the Pearson correlation matrix of features and targets on
the training set.

Objects whose statistics cannot be measured (NaN, e.g. a failed Sersic fit or no kinematic map) are left out of
training and are marked invalid in the posterior (never imputed).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from core.config import param
from core.data.catalog import CatalogData
from core.data.central_data import CentralMassData
from core.data.summary_stats import FEATURE_UNITS, FEATURES, pearson_matrix, summary_statistics
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.models.base import PosteriorModel
from core.models.gbdt import LightGBMConfig, LightGBMModel

__all__ = ["CentralLightGBMConfig", "CentralLightGBMModel", "statistics_table"]


@dataclass(frozen=True)
class CentralLightGBMConfig(LightGBMConfig):
    """LightGBM settings (seed: num_leaves 5, 500 trees) plus the summary statistics used as features."""

    num_leaves: int = param(5, help="Maximum leaves per tree (seed: 5)", min=2, max=4096)
    n_estimators: int = param(500, help="Boosting rounds per model (seed: 500)", min=1, max=100000)
    early_stopping_rounds: int = param(500, help="Stop after this many rounds without validation gain "
                                                 "(500 = off, as in the seed)", min=1, max=100000)
    stats: tuple[str, ...] = param(FEATURES, help="Summary statistics used as features")
    input_masks: bool = param(False, help="Train on copies with hidden statistics (off: the summary statistics of a "
                                          "map set are complete; the bundled checkpoint was trained without)")

    def validate(self) -> None:
        super().validate()
        bad = [s for s in self.stats if s not in FEATURES]
        if bad or not self.stats:
            raise GPSError("unknown summary statistic", source="CentralLightGBMConfig", field="stats",
                           expected=" | ".join(FEATURES), found=repr(bad or self.stats))


def statistics_table(data: CentralMassData, names: Sequence[str] = FEATURES) -> np.ndarray:
    """(N, len(names)) summary statistics; cached in ``data.extra["stat:<name>"]`` (computed once per data set)."""
    if not all(f"stat:{k}" in data.extra for k in names):
        for k, v in summary_statistics(data).items():
            data.extra[f"stat:{k}"] = v
    return np.stack([np.asarray(data.extra[f"stat:{k}"], float) for k in names], axis=1)


class CentralLightGBMModel(PosteriorModel):
    """Summary statistics -> LightGBM (point + quantiles) per target; gain importance; Pearson matrix."""

    name = "lightgbm"
    config_cls = CentralLightGBMConfig
    missing_policy = "refuse"

    def __init__(self, config: CentralLightGBMConfig, features: Sequence[str], targets: Sequence[str],
                 units: dict[str, str] | None = None) -> None:
        super().__init__(config, features, targets, units)
        inner = {k: v for k, v in self.config.to_dict().items() if k != "stats"}
        self.inner = LightGBMModel(LightGBMConfig.from_dict(inner), self.config.stats, targets, units)

    def fit(self, train: CentralMassData, val: CentralMassData | None = None, *, callbacks: Sequence[Callable] = (),
            stop: threading.Event | None = None, device: str | None = None) -> dict:
        """Compute the statistics, train LightGBM on the complete rows; history adds ``pearson`` and ``n_dropped``."""
        tr = self._catalog(train, with_y=True)
        keep = np.all(np.isfinite(tr.x), axis=1)
        if keep.sum() < 2:
            raise GPSError("too few objects with measurable summary statistics", source=train.source,
                           expected=">= 2", found=str(int(keep.sum())))
        va = None
        if val is not None:
            va = self._catalog(val, with_y=True)
            va = va.subset(np.all(np.isfinite(va.x), axis=1))
        hist = self.inner.fit(tr.subset(keep), va, callbacks=callbacks, stop=stop)
        cols = {k: tr.x[keep, j] for j, k in enumerate(self.config.stats)}
        cols.update({t: tr.y[keep, j] for j, t in enumerate(self.targets)})
        names, mat = pearson_matrix(cols)
        hist = dict(hist, n_dropped=int((~keep).sum()),
                    pearson={"names": names, "matrix": [[float(v) for v in row] for row in mat]})
        self.history = hist
        return hist

    def posterior(self, data: CentralMassData, *, n_samples: int = 1000, seed: int = 0, device: str | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Posterior:
        """Samples (n, n_samples, p); objects without complete statistics are NaN with ``valid=False``."""
        cat = self._catalog(data, with_y=False)
        ok = np.all(np.isfinite(cat.x), axis=1)
        samples = np.full((len(cat), n_samples, len(self.targets)), np.nan)
        point = np.full((len(cat), len(self.targets)), np.nan)
        if ok.any():
            post = self.inner.posterior(cat.subset(ok), n_samples=n_samples, seed=seed)
            samples[ok] = post.samples
            point[ok] = post.info["point"]
        if progress is not None:
            progress(len(cat), len(cat))
        return Posterior(params=self.targets, units=self.param_units(), samples=samples, valid=ok, method=self.name,
                         info={"point": point, "stats": {k: cat.x[:, j] for j, k in enumerate(self.config.stats)},
                               "n_samples": n_samples, "seed": seed})

    def importance(self, kind: str = "gain") -> dict[str, dict[str, float]]:
        """Importance per target: {target: {statistic: gain}} from the L2 point models."""
        return {t: self.inner.feature_importance(kind, j) for j, t in enumerate(self.targets)}

    def feature_importance(self, kind: str = "gain") -> dict[str, dict[str, float]]:
        """The ``feature_importance`` capability: :meth:`importance` (one dict per target)."""
        return self.importance(kind)

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        tensors, extra = self.inner.get_state()
        extra["central_history"] = self.history
        return tensors, extra

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.inner.set_state(tensors, extra)
        self.history = dict(extra.get("central_history", {}))

    def _catalog(self, data: CentralMassData, with_y: bool) -> CatalogData:
        data.require([f for f in self.features if f in ("image",)] or ["image"], self.name)
        x = statistics_table(data, self.config.stats)
        y = data.target_array(self.targets) if with_y else None
        return CatalogData(x=x, features=self.config.stats, y=y, targets=self.targets if with_y else (),
                           units={k: FEATURE_UNITS[k] for k in self.config.stats},
                           meta={"source": data.source})
