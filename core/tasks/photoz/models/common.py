"""Shared pieces of the photo-z models: derived photometric features and the wrapper around existing families.

Every photo-z model takes photo-z :class:`CatalogData` (features ``mag_*``/``err_*``, see
:mod:`core.tasks.photoz.io`) and answers a :class:`Posterior` with ``valid`` False for galaxies whose photometry
is flagged (NaN in a band): they are reported, never imputed.

:func:`design` turns the ten inputs into the model features: r magnitude, the four adjacent colours and
(``with_errors``) log10 of the five magnitude errors. :class:`WrappedModel` reuses an existing model family
(:class:`core.models.flows.FlowModel`, :class:`core.models.gbdt.LightGBMModel`) on those features with target z.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import numpy as np

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.models.base import PosteriorModel

__all__ = ["design", "design_names", "WrappedModel", "z_target", "INPUTS"]

INPUTS = tuple(f"mag_{b}" for b in "ugriz") + tuple(f"err_{b}" for b in "ugriz")


def design_names(with_errors: bool) -> tuple[str, ...]:
    base = ("mag_r", "c_ug", "c_gr", "c_ri", "c_iz")
    return base + (tuple(f"logerr_{b}" for b in "ugriz") if with_errors else ())


def design(
    data: CatalogData, with_errors: bool = False, bands: Sequence[str] = "ugriz"
) -> tuple[np.ndarray, np.ndarray]:
    """(X (n, 5 or 10), valid (n,)): r, u-g, g-r, r-i, i-z [, log10 err_*]; valid = all finite."""
    src = str(data.meta.get("file") or data.meta.get("source") or "input data")
    for b in bands:
        for kind in ("mag", "err"):
            name = f"{kind}_{b}"
            if name not in data.features:
                raise GPSError(
                    "photo-z models need magnitudes and errors in every band",
                    source=src,
                    field=name,
                    expected=", ".join(INPUTS),
                    found=", ".join(data.features),
                )
    m = np.stack([data.column(f"mag_{b}") for b in bands], axis=1)
    e = np.stack([data.column(f"err_{b}") for b in bands], axis=1)
    parts = [m[:, 2:3], m[:, :-1] - m[:, 1:]]
    if with_errors:
        with np.errstate(divide="ignore", invalid="ignore"):
            parts.append(np.log10(e))
    x = np.concatenate(parts, axis=1)
    return x, np.isfinite(x).all(axis=1)


def z_target(data: CatalogData) -> np.ndarray:
    """The spectroscopic / true redshift column, or a clear error."""
    if data.y is None or "z" not in data.targets:
        raise GPSError(
            "training needs a redshift column",
            source=str(data.meta.get("file", "data")),
            field="z",
            expected="z_spec / zs / z",
            found=", ".join(data.targets) or "none",
        )
    return data.y[:, data.targets.index("z")]


class WrappedModel(PosteriorModel):
    """A photo-z model that delegates to an existing family (``inner_factory``) on the derived features."""

    name = ""
    missing_policy = "refuse"
    with_errors = False
    inner_factory = ""  # "module:Class"

    def __init__(
        self,
        config,
        features: Sequence[str] = INPUTS,
        targets: Sequence[str] = ("z",),
        units: dict[str, str] | None = None,
    ) -> None:
        super().__init__(config, features, ("z",), units or {"z": ""})
        mod, cls = self.inner_factory.split(":")
        import importlib

        inner_cls = getattr(importlib.import_module(mod), cls)
        self.inner = inner_cls(config, design_names(self.with_errors), ("z",), {"z": ""})

    def _cat(self, data: CatalogData, need_z: bool) -> tuple[CatalogData, np.ndarray]:
        x, ok = design(data, self.with_errors)
        y = None
        if need_z:
            z = z_target(data)
            ok &= np.isfinite(z)
            y = z[ok, None]
        cat = CatalogData(
            x=x[ok],
            features=design_names(self.with_errors),
            y=y,
            targets=("z",) if need_z else (),
            meta=dict(data.meta),
        )
        return cat, ok

    def fit(
        self,
        train: CatalogData,
        val: CatalogData | None = None,
        *,
        callbacks: Sequence[Callable] = (),
        stop: threading.Event | None = None,
        device: str | None = None,
    ) -> dict:
        tr, _ = self._cat(train, True)
        va = self._cat(val, True)[0] if val is not None else None
        self.history = self.inner.fit(tr, va, callbacks=callbacks, stop=stop, device=device)
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
        cat, ok = self._cat(data, False)
        samples = np.full((len(data), n_samples, 1), np.nan)
        if ok.any():
            samples[ok] = self.inner.posterior(
                cat, n_samples=n_samples, seed=seed, device=device, progress=progress
            ).samples
        return Posterior(
            params=("z",),
            units=("",),
            samples=samples,
            valid=ok,
            method=self.name,
            info={"n_samples": n_samples, "seed": seed, "n_flagged": int((~ok).sum())},
        )

    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return self.inner.get_state()

    def set_state(self, tensors: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.inner.set_state(tensors, extra)
