"""Field data container and the task's data adapter (simulate / read / prepare).

:class:`FieldData` holds a stack of DM density fields rho/rho_bar (n, *grid) with, where known, the true galaxy
counts on the same grid, the box size (Mpc/h), the simulator config that made them (None for real files) and
provenance. :class:`FieldPosterior` is what the models return: per-voxel occupation probability and expected
count, optionally whole sampled galaxy fields, and the operating threshold for yes/no maps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import GPSError
from core.tasks.dm_to_galaxies.simulator import FieldSimConfig, simulate_fields

__all__ = ["FieldData", "FieldPosterior", "simulate"]


@dataclass
class FieldData:
    dm: np.ndarray  # (n, *grid) float32, rho / rho_bar (> 0)
    box_size: float  # Mpc/h
    galaxies: np.ndarray | None = None  # (n, *grid) int32 counts, or None
    sim_config: dict | None = None  # FieldSimConfig.to_dict() when simulated
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dm = np.asarray(self.dm, np.float32)
        if self.dm.ndim not in (3, 4):
            raise GPSError(
                "a field stack must be (n, N, N) or (n, N, N, N)",
                field="dm",
                expected="3 or 4 axes",
                found=str(self.dm.shape),
            )
        if self.galaxies is not None and np.shape(self.galaxies) != self.dm.shape:
            raise GPSError(
                "galaxy and DM fields differ in shape",
                field="galaxies",
                expected=str(self.dm.shape),
                found=str(np.shape(self.galaxies)),
            )

    def __len__(self) -> int:
        return len(self.dm)

    @property
    def dim(self) -> int:
        return self.dm.ndim - 1

    @property
    def grid(self) -> tuple[int, ...]:
        return tuple(self.dm.shape[1:])

    @property
    def ids(self) -> np.ndarray:
        """Field indices (``core.data.access.split`` groups by them: each field is independent)."""
        return np.arange(len(self.dm))

    @property
    def extra(self) -> dict[str, Any]:
        """No per-field grouping columns (the container protocol of ``core.data.access.split``)."""
        return {}

    # --- the container protocol that core.api (train, provenance) reads
    features: tuple[str, ...] = ("dm",)
    units = {"dm": ""}

    @property
    def has_truth(self) -> bool:
        return self.galaxies is not None

    def select_features(self, feats) -> "FieldData":
        """The one input is the DM field: a subset of ``("dm",)`` is the data itself."""
        if tuple(feats) != ("dm",):
            raise GPSError(
                "fields have one input, the DM density", field="features", expected="dm", found=", ".join(feats)
            )
        return self

    def fingerprint(self) -> str:
        """Hash of the numbers (DM and galaxy fields), for training-data provenance."""
        import hashlib

        h = hashlib.sha256(np.ascontiguousarray(self.dm).tobytes())
        if self.galaxies is not None:
            h.update(np.ascontiguousarray(self.galaxies).tobytes())
        return h.hexdigest()[:16]

    @property
    def config(self) -> FieldSimConfig | None:
        return None if self.sim_config is None else FieldSimConfig.from_dict(self.sim_config)

    def subset(self, idx) -> "FieldData":
        idx = np.asarray(idx)
        return FieldData(
            self.dm[idx],
            self.box_size,
            None if self.galaxies is None else self.galaxies[idx],
            self.sim_config,
            dict(self.meta),
        )


@dataclass
class FieldPosterior:
    prob: np.ndarray  # (n, *grid) P(N >= 1 | DM)
    expected: np.ndarray  # (n, *grid) E[N | DM]
    samples: np.ndarray | None = None  # (n, S, *grid) sampled galaxy count fields
    threshold: float = 0.5  # operating point: occupied = prob >= threshold
    method: str = ""

    @property
    def occupied(self) -> np.ndarray:
        return self.prob >= self.threshold

    # --- the map-posterior protocol (core.api, contract test): per-voxel summaries of the count N
    target: str = "galaxies"
    per_pixel = True  # core.inference.sanity checks it like a MapPosterior (finite summaries on every voxel)

    @property
    def n(self) -> int:
        return len(self.prob)

    @property
    def mean(self) -> np.ndarray:
        return self.expected

    @property
    def mask(self) -> np.ndarray:
        return np.zeros(self.prob.shape, bool)

    @property
    def std(self) -> np.ndarray:
        """Sample std of the sampled fields where there are >= 2 samples, else the Poisson sqrt(E[N])."""
        if self.samples is not None and self.samples.shape[1] > 1:
            return self.samples.std(1)
        return np.sqrt(np.clip(self.expected, 0, None))

    @property
    def q16(self) -> np.ndarray:
        return self._q(0.16)

    @property
    def q50(self) -> np.ndarray:
        return self._q(0.5)

    @property
    def q84(self) -> np.ndarray:
        return self._q(0.84)

    def evaluate(self, data: "FieldData", exact: "FieldPosterior | None" = None) -> dict[str, Any]:
        """Scores against the true fields of ``data`` (``core.api.evaluate``): the benchmark's metric set at this
        posterior's operating point, with the oracle's PR-AUC when ``exact`` is given."""
        from core.tasks.dm_to_galaxies.metrics import field_metrics

        scores = field_metrics(
            truth=data.galaxies,
            box_size=data.box_size,
            prob=self.prob,
            occupied=self.occupied,
            expected=self.expected,
            pk_field=self.samples if self.samples is not None else self.expected,
        )
        if exact is not None:
            scores["oracle_pr_auc"] = field_metrics(truth=data.galaxies, box_size=data.box_size, prob=exact.prob)[
                "pr_auc"
            ]
        return {"scores": {k: float(v) for k, v in scores.items()}}

    def _q(self, q: float) -> np.ndarray:
        """Quantile of N per voxel: from the samples when there are some, else of Poisson(E[N])."""
        if self.samples is not None and self.samples.shape[1] > 1:
            return np.quantile(self.samples, q, axis=1)
        from scipy.stats import poisson

        return poisson.ppf(q, np.clip(self.expected, 1e-12, None)).astype(np.float32)


def simulate(n: int, seed: int, config: FieldSimConfig | dict | None = None, cache: bool = True) -> FieldData:
    """``n`` simulated (DM, galaxies) fields; cached on disk by config hash (core.data.cache)."""
    cfg = config if isinstance(config, FieldSimConfig) else FieldSimConfig.from_dict(config or {})

    def build():
        dm, gal = simulate_fields(n, seed, cfg)
        return {"dm": dm, "galaxies": gal}, {"config": cfg.to_dict(), "seed": int(seed)}

    if cache:
        from core.data.cache import cached

        arrays, _ = cached("dm_fields", cfg, n, seed, build)
    else:
        arrays, _ = build()
    return FieldData(
        arrays["dm"],
        cfg.box_size,
        arrays["galaxies"],
        cfg.to_dict(),
        {"source": "simulator", "simulator": "field", "seed": int(seed), "n": int(n)},
    )
