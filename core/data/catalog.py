"""The catalogue container: features and (optional) targets in a task's canonical units, with provenance.

``CatalogData`` is what simulators return, what readers + schema mapping produce, and what models train on.
Values are float64 arrays in the canonical unit of each :class:`core.tasks.Quantity`; NaN marks a missing
value (never imputed). ``to_table()`` gives an astropy ``QTable`` with units for export and display.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from core.errors import GPSError

__all__ = ["CatalogData", "file_sha256"]


@dataclass
class CatalogData:
    """Feature matrix ``x`` (n, d) with names ``features``; targets ``y`` (n, p) or None; per-object ``ids``.

    ``units`` maps every feature/target name to its astropy unit string. ``meta`` carries provenance:
    ``{"source": "simulator"|"file", "simulator": name, "config": {...}, "seed": int, "file": path,
    "sha256": hex, "task": name, ...}``. ``extra`` holds per-object arrays that are not model inputs
    (simulator latents, noiseless values, flags), each of length n.
    """

    x: np.ndarray
    features: tuple[str, ...]
    y: np.ndarray | None = None
    targets: tuple[str, ...] = ()
    ids: np.ndarray | None = None
    units: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.x = np.asarray(self.x, dtype=np.float64)
        if self.x.ndim != 2 or self.x.shape[1] != len(self.features):
            raise GPSError("feature matrix shape does not match the feature names",
                           expected=f"(n, {len(self.features)})", found=str(self.x.shape))
        n = self.x.shape[0]
        if self.y is not None:
            self.y = np.asarray(self.y, dtype=np.float64)
            if self.y.ndim == 1:
                self.y = self.y[:, None]
            if self.y.shape != (n, len(self.targets)):
                raise GPSError("target array shape does not match", expected=f"({n}, {len(self.targets)})",
                               found=str(self.y.shape))
        if self.ids is None:
            self.ids = np.arange(n, dtype=np.int64)
        self.ids = np.asarray(self.ids)
        for k, v in self.extra.items():
            if len(v) != n:
                raise GPSError(f"extra column {k!r} has the wrong length", expected=str(n), found=str(len(v)))

    # ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def has_truth(self) -> bool:
        return self.y is not None and np.isfinite(self.y).any()

    def column(self, name: str) -> np.ndarray:
        if name in self.features:
            return self.x[:, self.features.index(name)]
        if name in self.targets and self.y is not None:
            return self.y[:, self.targets.index(name)]
        if name in self.extra:
            return self.extra[name]
        raise GPSError(f"no column {name!r} in this catalogue",
                       expected=", ".join(self.features + self.targets + tuple(self.extra)), found=name)

    def subset(self, index) -> "CatalogData":
        """Rows selected by a boolean mask, an index array or a slice."""
        return replace(self, x=self.x[index], y=None if self.y is None else self.y[index],
                       ids=self.ids[index], extra={k: v[index] for k, v in self.extra.items()},
                       meta=dict(self.meta))

    def select_features(self, names) -> "CatalogData":
        """Keep only the named features, in the given order."""
        names = tuple(names)
        missing = [n for n in names if n not in self.features]
        if missing:
            raise GPSError(f"feature(s) {', '.join(missing)} are not in this catalogue",
                           expected=", ".join(names), found=", ".join(self.features))
        idx = [self.features.index(n) for n in names]
        return replace(self, x=self.x[:, idx], features=names, meta=dict(self.meta))

    def to_table(self):
        """astropy ``QTable`` with id, features, targets and extras, with units."""
        from astropy import units as u
        from astropy.table import QTable

        t = QTable()
        t["id"] = self.ids
        for i, name in enumerate(self.features):
            t[name] = _with_unit(self.x[:, i], self.units.get(name, ""))
        if self.y is not None:
            for i, name in enumerate(self.targets):
                t[name] = _with_unit(self.y[:, i], self.units.get(name, ""))
        for k, v in self.extra.items():
            if np.asarray(v).ndim == 1:
                t[k] = v
        t.meta.update({k: v for k, v in self.meta.items() if isinstance(v, (str, int, float, bool))})
        del u
        return t

    def fingerprint(self) -> str:
        """Hash of the numbers (features + targets), for provenance of training data."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.x).tobytes())
        if self.y is not None:
            h.update(np.ascontiguousarray(self.y).tobytes())
        h.update(",".join(self.features + self.targets).encode())
        return h.hexdigest()[:16]


def _with_unit(values: np.ndarray, unit: str):
    from astropy import units as u

    if not unit:
        return values
    return values * u.Unit(unit)


def file_sha256(path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file (provenance of uploaded data)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            b = fh.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()
