"""The IFU map container ``MapStack`` (channels, units, mask, ivar, pixel scale, R_eff, headers) and regridding.

Array conventions: ``data[n, c, y, x]`` in FITS order (row 0 = the first FITS row, i.e. the bottom of a map
displayed with ``origin="lower"``); ``center_xy[n] = (x, y)`` are 0-based pixel coordinates of the galaxy
centre. ``mask`` is True where there is no usable value in *any* channel of that pixel (union of the channel
masks); outside the mask every value is finite. ``ivar`` is the inverse variance in the square of the
channel's unit (0 where masked).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["MapStack", "CHANNEL_UNITS", "missing_channels", "describe_missing"]

#: Canonical unit of every channel name a task uses (models expect these units).
CHANNEL_UNITS: dict[str, str] = {
    "log_sigma_star": "dex(solMass / kpc2)",
    "vel": "km / s",
    "sigma": "km / s",
    "log_age": "dex(yr)",
    "metallicity": "dex",
    "mu_r": "mag / arcsec2",
    "g_r": "mag",
}

# Plausible ranges of the median of each channel over unmasked pixels; outside -> a units problem.
_PLAUSIBLE: dict[str, tuple[float, float, str]] = {
    "log_sigma_star": (3.0, 12.5, "log10 Sigma* in Msun/kpc2 is ~5-11 (Msun/pc2 would give 6 dex less)"),
    "log_age": (6.0, 10.4, "log10 age in yr is ~8-10.2 (Gyr or linear years are wrong)"),
    "metallicity": (-3.0, 1.5, "[Z/H] in dex is ~-2..+0.5 (linear Z or Z/Zsun is wrong)"),
}
MIN_MAP_PIXELS = 4          # maps smaller than this on a side carry no spatial structure: refused
REFF_MAX_ARCSEC = 3600.0    # an effective radius of a degree or more is not a galaxy's
_MAX_ABS_VEL = 1500.0     # km/s: p99 of |v| above this -> m/s or systemic velocity left in
_MAX_SIGMA = 1500.0       # km/s: p99 of sigma above this -> m/s


@dataclass
class MapStack:
    """N objects x C channels of H x W maps with units, mask, inverse variance and provenance.

    Fields: ``data`` (N, C, H, W) float32; ``channels`` names; ``units`` astropy unit strings (one per
    channel); ``mask`` (N, H, W) bool, True = no data; ``ivar`` (N, C, H, W) float32 or None;
    ``pixel_scale_arcsec`` float or (N,) [arcsec/pixel]; ``reff_arcsec`` (N,) effective radius [arcsec]
    (NaN = unknown); ``center_xy`` (N, 2) galaxy centre in pixels (default: the image centre);
    ``headers`` one FITS header string per object ("" if none; WCS written back on export); ``ids``;
    ``meta`` provenance ({"file", "sha256", "format", "notes": [...], ...}); ``targets`` name -> (N, H, W)
    map or (N,) scalar truth when known (simulated stacks also carry ``galaxy_pixels`` (N, H, W), the intrinsic
    galaxy pixels that metrics use, and ``galaxy_id`` (N,), which groups the projections of one galaxy).
    """

    data: np.ndarray
    channels: tuple[str, ...]
    units: tuple[str, ...]
    mask: np.ndarray
    ivar: np.ndarray | None = None
    pixel_scale_arcsec: float | np.ndarray = 0.5
    reff_arcsec: np.ndarray | None = None
    center_xy: np.ndarray | None = None
    headers: list[str] = field(default_factory=list)
    ids: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.source
        self.channels = tuple(str(c) for c in self.channels)
        self.units = tuple(str(u) for u in self.units)
        self.data = np.asarray(self.data, dtype=np.float32)
        if self.data.ndim == 3:                       # a single object
            self.data = self.data[None]
        if self.data.ndim != 4:
            raise GPSError("map data must be 4-D", source=src, field="data",
                           expected="(N, C, H, W)", found=str(self.data.shape))
        n, c, h, w = self.data.shape
        if c != len(self.channels) or c != len(self.units):
            raise GPSError("number of channels does not match the channel names/units", source=src,
                           field="channels", expected=f"{c} names and units",
                           found=f"{len(self.channels)} names, {len(self.units)} units")
        if len(set(self.channels)) != c:
            raise GPSError("duplicate channel names", source=src, field="channels", found=str(self.channels))
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.mask.ndim == 2:
            self.mask = self.mask[None]
        if self.mask.shape != (n, h, w):
            raise GPSError("mask shape does not match the maps", source=src, field="mask",
                           expected=str((n, h, w)), found=str(self.mask.shape))
        if self.ivar is not None:
            self.ivar = np.asarray(self.ivar, dtype=np.float32)
            if self.ivar.ndim == 3:
                self.ivar = self.ivar[None]
            if self.ivar.shape != self.data.shape:
                raise GPSError("ivar shape does not match the maps", source=src, field="ivar",
                               expected=str(self.data.shape), found=str(self.ivar.shape))
        self.pixel_scale_arcsec = _per_object(self.pixel_scale_arcsec, n, "pixel_scale_arcsec", src)
        self.reff_arcsec = _per_object(np.nan if self.reff_arcsec is None else self.reff_arcsec, n,
                                       "reff_arcsec", src)
        if self.center_xy is None:
            self.center_xy = np.tile([(w - 1) / 2.0, (h - 1) / 2.0], (n, 1))
        self.center_xy = np.asarray(self.center_xy, dtype=np.float64).reshape(-1, 2)
        if self.center_xy.shape[0] == 1 and n > 1:
            self.center_xy = np.repeat(self.center_xy, n, axis=0)
        if self.center_xy.shape != (n, 2):
            raise GPSError("center_xy must be (N, 2)", source=src, field="center_xy", found=str(self.center_xy.shape))
        self.headers = list(self.headers) if self.headers else [""] * n
        if len(self.headers) != n:
            raise GPSError("one header per object expected", source=src, field="headers",
                           expected=str(n), found=str(len(self.headers)))
        self.ids = np.arange(n) if self.ids is None else np.asarray(self.ids)
        if self.ids.shape != (n,):
            raise GPSError("one id per object expected", source=src, field="ids", expected=str(n),
                           found=str(self.ids.shape))
        for k, v in list(self.targets.items()):
            v = np.asarray(v)
            if v.shape[0] != n or (v.ndim == 3 and v.shape[1:] != (h, w)) or v.ndim not in (1, 3):
                raise GPSError("target shape does not match the maps", source=src, field=f"targets/{k}",
                               expected=f"({n},) or {(n, h, w)}", found=str(v.shape))
            self.targets[k] = v

    # ------------------------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        """File name the stack came from (for messages), or 'map stack'."""
        f = (self.meta or {}).get("file")
        return os.path.basename(str(f)) if f else "map stack"

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    def __len__(self) -> int:
        return self.data.shape[0]

    # the questions every task container answers (core.api trains, splits and scores through them)
    @property
    def features(self) -> tuple[str, ...]:
        """The input channels (a map model's "features")."""
        return self.channels

    @property
    def has_truth(self) -> bool:
        """True when the ex-situ fraction map ``targets["f_ex"]`` is known (simulated data)."""
        return np.ndim(self.targets.get("f_ex")) == 3

    @property
    def galaxy_id(self) -> np.ndarray:
        """(N,) galaxy of every object (projections of one simulated galaxy share it; else the ids)."""
        g = self.targets.get("galaxy_id")
        return self.ids if g is None else np.asarray(g)

    @property
    def galaxy(self) -> np.ndarray | None:
        """(N, H, W) bool intrinsic galaxy pixels when known (simulated data), else None."""
        g = self.targets.get("galaxy_pixels")
        return None if g is None else np.asarray(g, dtype=bool)

    @property
    def extra(self) -> dict[str, np.ndarray]:
        """Per-object grouping columns (``galaxy_id``) for grouped splits."""
        return {"galaxy_id": self.galaxy_id}

    def select_features(self, names: Sequence[str]) -> "MapStack":
        return self.select_channels(names)

    def units_by_name(self) -> dict[str, str]:
        return dict(zip(self.channels, self.units))

    def fingerprint(self) -> str:
        """Hash of the numbers (maps, mask, targets), for training-data provenance."""
        import hashlib

        h = hashlib.sha256()
        for a in (self.data, self.mask, *(self.targets[k] for k in sorted(self.targets))):
            h.update(np.ascontiguousarray(a).tobytes())
        h.update(",".join(self.channels).encode())
        return h.hexdigest()[:16]

    def channel(self, name: str) -> np.ndarray:
        """(N, H, W) view of one channel (masked pixels hold 0 or NaN; use ``mask``)."""
        return self.data[:, self._index([name])[0]]

    def channel_ivar(self, name: str) -> np.ndarray | None:
        return None if self.ivar is None else self.ivar[:, self._index([name])[0]]

    def unit(self, name: str) -> str:
        return self.units[self._index([name])[0]]

    def select_channels(self, names: Sequence[str]) -> "MapStack":
        """A new stack with only ``names`` (in that order); GPSError lists missing and present channels."""
        idx = self._index(list(names))
        return replace(self, data=self.data[:, idx], channels=tuple(names),
                       units=tuple(self.units[i] for i in idx),
                       ivar=None if self.ivar is None else self.ivar[:, idx], meta=dict(self.meta),
                       targets=dict(self.targets), headers=list(self.headers))

    def subset(self, idx: Any) -> "MapStack":
        """A new stack with objects ``idx`` (slice, int array or bool mask)."""
        sel = np.arange(len(self))[idx]
        sel = np.atleast_1d(sel)
        return replace(self, data=self.data[sel], mask=self.mask[sel],
                       ivar=None if self.ivar is None else self.ivar[sel],
                       pixel_scale_arcsec=self.pixel_scale_arcsec[sel], reff_arcsec=self.reff_arcsec[sel],
                       center_xy=self.center_xy[sel], headers=[self.headers[i] for i in sel],
                       ids=self.ids[sel], meta=dict(self.meta),
                       targets={k: v[sel] for k, v in self.targets.items()})

    def validate(self) -> "MapStack":
        """Check: not all masked, no NaN/inf outside the mask, ivar >= 0, units canonical and plausible.

        Returns ``self``; raises GPSError naming the file, the channel and the problem.
        """
        src = self.source
        n, _, h, w = self.data.shape
        if n == 0:
            raise GPSError("the file holds no maps", source=src, field="data", expected="at least one object",
                           found=f"shape {self.data.shape}")
        if min(h, w) < MIN_MAP_PIXELS:
            raise GPSError("maps too small to carry a spatial structure", source=src, field="data",
                           expected=f"at least {MIN_MAP_PIXELS} x {MIN_MAP_PIXELS} pixels", found=f"{h} x {w}")
        scale = np.asarray(self.pixel_scale_arcsec, dtype=np.float64)
        if not (np.isfinite(scale) & (scale > 0) & (scale < 3600)).all():
            k = int(np.flatnonzero(~(np.isfinite(scale) & (scale > 0) & (scale < 3600)))[0])
            raise GPSError("implausible pixel scale", source=src, field="pixel_scale_arcsec",
                           expected="arcsec per pixel in (0, 3600)", found=f"{float(scale[k])!r} (object {self.ids[k]})")
        reff = np.asarray(self.reff_arcsec, dtype=np.float64)
        badr = ~np.isnan(reff) & ~((reff > 0) & (reff < REFF_MAX_ARCSEC))
        if badr.any():
            k = int(np.flatnonzero(badr)[0])
            raise GPSError("implausible effective radius", source=src, field="reff_arcsec",
                           expected=f"R_e in (0, {REFF_MAX_ARCSEC:g}) arcsec, or NaN if unknown",
                           found=f"{float(reff[k])!r} (object {self.ids[k]})")
        for i in range(len(self)):
            if self.mask[i].all():
                raise GPSError("every pixel is masked", source=src, field=f"object {self.ids[i]}",
                               expected="at least one unmasked pixel", found=f"{self.mask[i].size} masked")
        for j, name in enumerate(self.channels):
            bad = ~np.isfinite(self.data[:, j]) & ~self.mask
            if bad.any():
                k = int(np.argmax(bad.reshape(len(self), -1).any(1)))
                raise GPSError("NaN/inf values outside the mask", source=src, field=name,
                               expected="finite values wherever mask is False",
                               found=f"{int(bad.sum())} bad pixels (first object {self.ids[k]})")
            if self.ivar is not None:
                iv = self.ivar[:, j][~self.mask]
                if (~np.isfinite(iv)).any() or (iv < 0).any():
                    raise GPSError("inverse variance must be finite and >= 0 outside the mask", source=src,
                                   field=f"{name} ivar", found=f"{int((~np.isfinite(iv) | (iv < 0)).sum())} bad")
        for name, unit in zip(self.channels, self.units):
            _check_unit(name, unit, src)
            vals = self.channel(name)[~self.mask]
            if vals.size:
                _check_magnitude(name, vals, src)
        return self

    def to_canonical_units(self) -> "MapStack":
        """A new stack whose known channels are converted to :data:`CHANNEL_UNITS` (e.g. m/s -> km/s).

        Conversions are recorded in ``meta["notes"]``; non-convertible units raise GPSError.
        """
        data, ivar, units = self.data.copy(), None if self.ivar is None else self.ivar.copy(), list(self.units)
        notes = list(self.meta.get("notes", []))
        for j, (name, unit) in enumerate(zip(self.channels, self.units)):
            want = CHANNEL_UNITS.get(name)
            if want is None or _same_unit(unit, want):
                continue
            scale, offset = _linear_conversion(unit, want, name, self.source)
            data[:, j] = data[:, j] * scale + offset
            if ivar is not None:
                ivar[:, j] = ivar[:, j] / scale ** 2
            units[j] = want
            notes.append(f"channel {name}: converted {unit} -> {want}")
        meta = dict(self.meta, notes=notes)
        return replace(self, data=data, ivar=ivar, units=tuple(units), meta=meta,
                       targets=dict(self.targets), headers=list(self.headers))

    def to_hdf5(self, path: str | os.PathLike) -> None:
        """Write our own HDF5 map stack (format ``map_stack_hdf5``; see core/data/io/maps_hdf5.py)."""
        from core.data.io.maps_hdf5 import write_map_stack
        write_map_stack(self, path)

    @classmethod
    def from_hdf5(cls, path: str | os.PathLike) -> "MapStack":
        """Read a stack written by :meth:`to_hdf5`."""
        from core.data.io.maps_hdf5 import read_map_stack
        return read_map_stack(path)

    def regrid(self, size: int, fov_reff: float, *, reff_arcsec: float | np.ndarray | None = None,
               oversample: int | None = None) -> "MapStack":
        """Resample onto the model grid: ``size`` x ``size`` pixels spanning +-fov_reff/2 R_eff around the centre.

        Values: area-weighted average of bilinear samples (``oversample``^2 per output pixel, default so that
        sub-samples are no coarser than the input pixels). ivar: propagated for independent input noise,
        var_out = sum_j a_j^2 var_j (neighbouring output pixels become correlated; approximate).
        Mask: an output pixel is masked if any contribution is masked or falls outside the input footprint.
        ``targets`` maps are resampled the same way; scalar targets are kept.
        """
        from core.data.maps_regrid import regrid_stack
        return regrid_stack(self, int(size), float(fov_reff), reff_arcsec=reff_arcsec, oversample=oversample)

    def fits_header(self, i: int = 0):
        """Object ``i``'s source header (with its WCS, moved by :meth:`regrid`) as an astropy ``fits.Header``."""
        from astropy.io import fits
        text = self.headers[i]
        return fits.Header.fromstring(text, sep="\n") if text else fits.Header()

    def summary(self) -> list[dict[str, Any]]:
        """Per channel: name, unit, unmasked pixel count, min / median / max over unmasked pixels (for display)."""
        out = []
        for name, unit in zip(self.channels, self.units):
            v = self.channel(name)[~self.mask]
            v = v[np.isfinite(v)]
            stats = (float(v.min()), float(np.median(v)), float(v.max())) if v.size else (np.nan,) * 3
            out.append({"channel": name, "unit": unit, "n_valid": int(v.size), "min": stats[0],
                        "median": stats[1], "max": stats[2]})
        return out

    @classmethod
    def concatenate(cls, stacks: Sequence["MapStack"]) -> "MapStack":
        """Stack objects of several MapStacks with the same channels, units and map size (targets: common keys)."""
        first = stacks[0]
        for s in stacks[1:]:
            if s.channels != first.channels or s.units != first.units or s.data.shape[2:] != first.data.shape[2:]:
                raise GPSError("cannot concatenate map stacks with different channels, units or map sizes",
                               source=s.source, expected=f"{first.channels} {first.data.shape[2:]}",
                               found=f"{s.channels} {s.data.shape[2:]}")
        keys = [k for k in first.targets if all(k in s.targets for s in stacks)]
        ivar = None if any(s.ivar is None for s in stacks) else np.concatenate([s.ivar for s in stacks])
        return cls(data=np.concatenate([s.data for s in stacks]), channels=first.channels, units=first.units,
                   mask=np.concatenate([s.mask for s in stacks]), ivar=ivar,
                   pixel_scale_arcsec=np.concatenate([s.pixel_scale_arcsec for s in stacks]),
                   reff_arcsec=np.concatenate([s.reff_arcsec for s in stacks]),
                   center_xy=np.concatenate([s.center_xy for s in stacks]),
                   headers=[h for s in stacks for h in s.headers],
                   ids=np.concatenate([s.ids.astype(str) if any(t.ids.dtype.kind in "US" for t in stacks)
                                       else s.ids for s in stacks]),
                   meta=dict(first.meta, sources=[s.meta.get("file", "") for s in stacks]),
                   targets={k: np.concatenate([s.targets[k] for s in stacks]) for k in keys})

    @classmethod
    def merge_channels(cls, stacks: Sequence["MapStack"]) -> "MapStack":
        """One object from several one-object stacks of it that hold different channels (e.g. a SAMI velocity file
        and its dispersion file): channels side by side, masks united (a pixel is usable where every channel is).

        The maps must share the grid (shape, pixel scale, centre within half a pixel) and any ``meta["merge_key"]``
        (e.g. SAMI CATID, cube, binning); a channel given twice is refused. Geometry, header and id come from the
        first stack; R_e from the first that knows it; notes are kept per file.
        """
        first = stacks[0]
        names = [s.source for s in stacks]
        label = " + ".join(names)
        for s in stacks:
            if len(s) != 1:
                raise GPSError("channels are merged one object at a time", source=s.source, found=f"{len(s)} objects")
        seen: dict[str, str] = {}
        for s in stacks:
            for c in s.channels:
                if c in seen:
                    raise GPSError(f"two files give channel {c} of object {first.ids[0]}", source=label, field=c,
                                   expected="one file per quantity", found=f"{seen[c]} and {s.source}")
                seen[c] = s.source
        for s in stacks[1:]:
            if s.data.shape[2:] != first.data.shape[2:]:
                raise GPSError(f"maps of object {first.ids[0]} have different shapes", source=label,
                               field=s.source, expected=f"{first.data.shape[2:]} (as {first.source})",
                               found=str(s.data.shape[2:]))
            if not np.allclose(s.pixel_scale_arcsec, first.pixel_scale_arcsec, rtol=1e-3):
                raise GPSError(f"maps of object {first.ids[0]} have different pixel scales", source=label,
                               field=s.source, expected=f"{first.pixel_scale_arcsec[0]:.4g} arcsec",
                               found=f"{s.pixel_scale_arcsec[0]:.4g} arcsec")
            if np.abs(s.center_xy - first.center_xy).max() > 0.5:
                raise GPSError(f"maps of object {first.ids[0]} are not aligned (different centres)", source=label,
                               field=s.source, expected=f"{tuple(first.center_xy[0])}", found=f"{tuple(s.center_xy[0])}")
            k0, k1 = first.meta.get("merge_key"), s.meta.get("merge_key")
            if k0 != k1:
                diff = sorted(k for k in set(k0 or {}) | set(k1 or {}) if (k0 or {}).get(k) != (k1 or {}).get(k))
                raise GPSError(f"files of object {first.ids[0]} do not belong together", source=label,
                               field=", ".join(diff) or "merge_key",
                               expected=f"the same {', '.join(diff) or 'product'} (as {first.source}: "
                                        f"{', '.join(str((k0 or {}).get(k)) for k in diff)})",
                               found=f"{s.source}: {', '.join(str((k1 or {}).get(k)) for k in diff)}")
        data = np.concatenate([s.data for s in stacks], axis=1)
        mask = np.any([s.mask for s in stacks], axis=0)
        ivar = None if any(s.ivar is None for s in stacks) else np.concatenate([s.ivar for s in stacks], axis=1)
        data = np.where(mask[:, None], 0.0, data)
        if ivar is not None:
            ivar = np.where(mask[:, None], 0.0, ivar)
        reffs = [float(s.reff_arcsec[0]) for s in stacks if np.isfinite(s.reff_arcsec[0])]
        notes = [f"{s.source}: {n}" for s in stacks for n in s.meta.get("notes", [])]
        if ivar is None and any(s.ivar is not None for s in stacks):
            notes.append("inverse variances dropped: not every file has them")
        meta = dict(first.meta, file=label, files=[str(s.meta.get("file", "")) for s in stacks],
                    sha256=",".join(str(s.meta.get("sha256", "")) for s in stacks),
                    format="+".join(dict.fromkeys(str(s.meta.get("format", "")) for s in stacks)), notes=notes)
        chans = tuple(c for s in stacks for c in s.channels)
        comp = {c: f for s in stacks for c, f in (s.meta.get("companions") or {}).items() if c not in chans}
        if comp:
            meta["companions"] = comp
        else:
            meta.pop("companions", None)
        return cls(data=data, channels=chans,
                   units=tuple(u for s in stacks for u in s.units), mask=mask, ivar=ivar,
                   pixel_scale_arcsec=first.pixel_scale_arcsec, reff_arcsec=reffs[0] if reffs else np.nan,
                   center_xy=first.center_xy, headers=list(first.headers), ids=first.ids, meta=meta)

    # ------------------------------------------------------------------------------------------------
    def _index(self, names: list[str]) -> list[int]:
        missing = [n for n in names if n not in self.channels]
        if missing:
            raise GPSError(f"missing channel(s) {', '.join(missing)}", source=self.source, field="channels",
                           expected=", ".join(names), found="present: " + ", ".join(self.channels))
        return [self.channels.index(n) for n in names]


def missing_channels(stack: MapStack, required: Iterable[str]) -> list[str]:
    """Names in ``required`` that ``stack`` lacks, in the order given."""
    return [c for c in required if c not in stack.channels]


def describe_missing(stack: MapStack, required: Sequence[str],
                     models_by_channels: Mapping[str, Sequence[str]] | None = None,
                     needed_by: str = "the model") -> str | None:
    """One message saying which channels are missing and which models can run on what the file has.

    ``models_by_channels`` maps a model label (e.g. "exsitu_map[vel,sigma]") to the channels it needs.
    Returns None when nothing in ``required`` is missing. Example:
    "manga-7815-3702-MAPS.fits.gz lacks channels log_sigma_star, log_age, metallicity needed by
    exsitu_map(all channels); models that can run: exsitu_map[vel,sigma]".
    """
    miss = missing_channels(stack, required)
    if not miss:
        return None
    word = "channel" if len(miss) == 1 else "channels"
    msg = f"{stack.source} lacks {word} {', '.join(miss)} needed by {needed_by}"
    if models_by_channels is not None:
        ok = [m for m, chans in models_by_channels.items() if not missing_channels(stack, chans)]
        if ok:
            msg += "; models that can run: " + ", ".join(ok)
        else:
            msg += "; no available model can run on the channels present (" + ", ".join(stack.channels) + ")"
    else:
        msg += " (present: " + ", ".join(stack.channels) + ")"
    comp = (stack.meta or {}).get("companions") or {}
    add = [f"{c} is in {comp[c]}" for c in miss if c in comp]
    if add:
        msg += "; " + "; ".join(add) + " (read the files together)"
    return msg


# ----------------------------------------------------------------------------------------------------
def _per_object(value: Any, n: int, name: str, src: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise GPSError(f"{name} must be a number or one value per object", source=src, field=name,
                       expected=f"scalar or ({n},)", found=str(arr.shape))
    return arr.copy()


def _parse_unit(unit: str):
    import astropy.units as u
    return u.Unit(unit, parse_strict="raise")


def _same_unit(a: str, b: str) -> bool:
    try:
        return _parse_unit(a) == _parse_unit(b)
    except Exception:
        return a.replace(" ", "") == b.replace(" ", "")


def _linear_conversion(unit: str, want: str, name: str, src: str) -> tuple[float, float]:
    """(scale, offset) with value_in_want = scale * value_in_unit + offset (dex units shift, linear scale)."""
    import astropy.units as u
    try:
        a, b = _parse_unit(unit), _parse_unit(want)
        if isinstance(b, u.FunctionUnitBase):
            q0 = (np.array([0.0, 1.0]) * a).to(b).value
        else:
            q0 = (np.array([0.0, 1.0]) * a).to_value(b)
    except Exception:
        raise GPSError("unit cannot be converted to the one the models expect", source=src, field=name,
                       expected=want, found=repr(unit)) from None
    return float(q0[1] - q0[0]), float(q0[0])


def _check_unit(name: str, unit: str, src: str) -> None:
    want = CHANNEL_UNITS.get(name)
    if want is None:
        try:
            _parse_unit(unit) if unit else None
        except Exception:
            raise GPSError("unit is not a valid astropy unit string", source=src, field=name,
                           found=repr(unit)) from None
        return
    if not _same_unit(unit, want):
        hint = " (convertible: use MapStack.to_canonical_units())"
        try:
            _linear_conversion(unit, want, name, src)
        except GPSError:
            hint = ""
        raise GPSError("wrong unit" + hint, source=src, field=name, expected=want, found=repr(unit))


def _check_magnitude(name: str, vals: np.ndarray, src: str) -> None:
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return
    if name == "vel":
        p99 = float(np.percentile(np.abs(vals), 99))
        if p99 > _MAX_ABS_VEL:
            raise GPSError("implausible velocities for km/s (values look like m/s, or the systemic velocity "
                           "was not subtracted)", source=src, field=name,
                           expected=f"|v| <~ {_MAX_ABS_VEL:.0f} km/s relative to systemic",
                           found=f"99th percentile |v| = {p99:.4g}")
    elif name == "sigma":
        p99, med = float(np.percentile(vals, 99)), float(np.median(vals))
        if p99 > _MAX_SIGMA or med < 0:     # single noisy pixels may scatter below 0 (simulated noise does)
            raise GPSError("implausible velocity dispersions for km/s (m/s? negative?)", source=src, field=name,
                           expected=f"median >= 0 and sigma <~ {_MAX_SIGMA:.0f} km/s",
                           found=f"median {med:.4g}, 99th percentile {p99:.4g}")
    elif name in _PLAUSIBLE:
        lo, hi, why = _PLAUSIBLE[name]
        med = float(np.median(vals))
        if not lo <= med <= hi:
            raise GPSError(f"implausible values for the declared unit: {why}", source=src, field=name,
                           expected=f"median in [{lo}, {hi}]", found=f"median {med:.4g}")
