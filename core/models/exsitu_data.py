"""Map data for the ``exsitu_map`` models: one adapter from a MapStack or a simulator MapSet to checked arrays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["MapArrays", "map_arrays", "grouped_val_split"]


@dataclass
class MapArrays:
    """Checked arrays: ``x`` (N, C, H, W) float32 in the model's channel order (masked pixels 0), ``mask``
    (N, H, W) True = no data, ``f_ex`` (N, H, W) target or None, ``weight`` (N, H, W) bool = galaxy pixels that
    enter the loss and the metrics (data present and finite target), ``groups`` (N,) galaxy ids, ``ids`` (N,)."""

    x: np.ndarray
    mask: np.ndarray
    f_ex: np.ndarray | None
    weight: np.ndarray | None
    groups: np.ndarray
    ids: np.ndarray
    source: str
    dropped: int = 0

    def subset(self, idx) -> "MapArrays":
        return MapArrays(self.x[idx], self.mask[idx], None if self.f_ex is None else self.f_ex[idx],
                         None if self.weight is None else self.weight[idx], self.groups[idx], self.ids[idx],
                         self.source, self.dropped)


def map_arrays(data, channels: Sequence[str], map_size: int, *, need_truth: bool = False,
               model: str = "exsitu_map", drop_empty: bool = False) -> MapArrays:
    """Extract and check the model inputs from ``data``.

    ``data`` is a :class:`core.data.maps.MapStack` (``data``, ``targets["f_ex"]``) or a simulator map set with
    ``maps`` (N, C, H, W), ``channels``, ``mask`` and ``f_ex``; optional ``units`` are checked against the
    canonical channel units, optional ``galaxy_id`` groups projections. Refusals (GPSError naming the source and
    the channel): missing channels (with the list of those present), a map size other than ``map_size`` (regrid
    first), all-masked maps, NaN/inf outside the mask, non-canonical units, missing truth when ``need_truth``.
    """
    from core.data.maps import CHANNEL_UNITS

    src = _source(data)
    present = tuple(getattr(data, "channels", ()))
    missing = [c for c in channels if c not in present]
    if missing:
        raise GPSError(f"the {model!r} model needs channel(s) that these data do not have: {', '.join(missing)}",
                       source=src, field=", ".join(missing), expected="channels " + ", ".join(channels),
                       found="present: " + (", ".join(present) or "none") +
                             " (train a model on the channels present, or supply the missing maps)")
    arr = getattr(data, "maps", None)
    if arr is None:
        arr = getattr(data, "data")
    arr = np.asarray(arr)
    if arr.ndim != 4:
        raise GPSError("maps must be 4-D", source=src, field="maps", expected="(N, C, H, W)", found=str(arr.shape))
    n, _, h, w = arr.shape
    if (h, w) != (map_size, map_size):
        raise GPSError("map size differs from the model's grid; regrid first (MapStack.regrid(size, fov_reff))",
                       source=src, field="maps", expected=f"{map_size} x {map_size}", found=f"{h} x {w}")
    idx = [present.index(c) for c in channels]
    units = tuple(getattr(data, "units", ()) or ())
    if units:
        from core.data.maps import _same_unit
        for c in channels:
            want, got = CHANNEL_UNITS.get(c), units[present.index(c)]
            if want is not None and not _same_unit(got, want):
                raise GPSError("wrong unit (convert with MapStack.to_canonical_units())", source=src, field=c,
                               expected=want, found=repr(got))
    mask = np.asarray(data.mask, dtype=bool)
    if mask.shape != (n, h, w):
        raise GPSError("mask shape does not match the maps", source=src, field="mask", expected=str((n, h, w)),
                       found=str(mask.shape))
    x = np.asarray(arr[:, idx], dtype=np.float32)
    all_masked = mask.reshape(n, -1).all(axis=1)
    if drop_empty and all_masked.any() and not all_masked.all():   # training: such maps carry no information
        keep = np.flatnonzero(~all_masked)
        sub = map_arrays(_Sub(data, keep), channels, map_size, need_truth=need_truth, model=model)
        sub.dropped = int(all_masked.sum())
        return sub
    if all_masked.any():
        raise GPSError(f"{int(all_masked.sum())} map(s) are masked everywhere (first: object "
                       f"{int(np.flatnonzero(all_masked)[0])})", source=src, field="mask",
                       expected="at least one unmasked pixel per object", found="all pixels masked")
    for j, c in enumerate(channels):
        bad = ~np.isfinite(x[:, j]) & ~mask
        if bad.any():
            k = int(np.flatnonzero(bad.reshape(n, -1).any(axis=1))[0])
            raise GPSError("NaN/inf values outside the mask", source=src, field=c,
                           expected="finite values wherever mask is False",
                           found=f"{int(bad.sum())} bad pixels (first object {k})")
    x = np.where(mask[:, None], 0.0, x).astype(np.float32)
    f_ex = _truth(data)
    if f_ex is not None and f_ex.shape != (n, h, w):
        raise GPSError("f_ex target shape does not match the maps", source=src, field="f_ex",
                       expected=str((n, h, w)), found=str(f_ex.shape))
    if need_truth and f_ex is None:
        raise GPSError("these data have no f_ex target map (needed for training, the reconstruction mode and "
                       "metrics)", source=src, field="f_ex", expected="a target map f_ex (N, H, W)", found="none")
    weight = None
    if f_ex is not None:
        weight = ~mask & np.isfinite(f_ex)
        gal = getattr(data, "galaxy", None)
        if gal is not None:
            weight &= np.asarray(gal, dtype=bool)
    groups = getattr(data, "galaxy_id", None)
    ids = getattr(data, "ids", None)
    ids = np.arange(n) if ids is None else np.asarray(ids)
    groups = ids if groups is None else np.asarray(groups)
    return MapArrays(x, mask, None if f_ex is None else f_ex.astype(np.float32), weight, groups, ids, src)


class _Sub:
    """Read-only view of the objects ``keep`` of a map container (the attributes map_arrays reads)."""

    def __init__(self, data, keep: np.ndarray) -> None:
        self.channels, self.units = getattr(data, "channels", ()), getattr(data, "units", ())
        self.meta = getattr(data, "meta", None) or {}
        arr = getattr(data, "maps", None)
        self.maps = np.asarray(arr if arr is not None else data.data)[keep]
        self.mask = np.asarray(data.mask)[keep]
        f = _truth(data)
        self.f_ex = None if f is None else f[keep]
        for name in ("galaxy", "galaxy_id", "ids"):
            v = getattr(data, name, None)
            setattr(self, name, None if v is None else np.asarray(v)[keep])


def grouped_val_split(a: MapArrays, fraction: float, seed: int) -> tuple[MapArrays, MapArrays]:
    """Hold out ``fraction`` of the galaxies (all projections of a galaxy on one side) for validation."""
    rng = np.random.default_rng(seed)
    uniq = rng.permutation(np.unique(a.groups))
    n_val = max(1, int(round(fraction * len(uniq))))
    is_val = np.isin(a.groups, uniq[:n_val])
    if is_val.all() or not is_val.any():
        raise GPSError("too few galaxies for a grouped validation split", source=a.source, field="galaxy_id",
                       expected=">= 2 galaxies", found=str(len(uniq)))
    return a.subset(~is_val), a.subset(is_val)


def _truth(data) -> np.ndarray | None:
    t = getattr(data, "targets", None)
    if isinstance(t, dict) and "f_ex" in t and np.ndim(t["f_ex"]) == 3:
        return np.asarray(t["f_ex"], dtype=np.float32)
    f = getattr(data, "f_ex", None)
    if f is not None and np.ndim(f) == 3:
        return np.asarray(f, dtype=np.float32)
    return None


def _source(data) -> str:
    import os
    meta = getattr(data, "meta", None) or {}
    f = meta.get("file") or meta.get("source") if isinstance(meta, dict) else None
    return os.path.basename(str(f)) if f else "map data"
