"""Per-pixel posterior maps (mean, std, 2.5/16/50/84/97.5 percentiles, P(f > t)) streamed from posterior samples.

A map model draws ``S`` samples (S, H, W) per object; :class:`MapPosteriorBuilder` turns batches of them into
summaries as they come, so only one batch of samples (b, S, H, W) is ever in memory, and keeps the raw samples
of the first ``keep_samples`` objects (for sample galleries). :class:`MapPosterior` holds the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["MapPosterior", "MapPosteriorBuilder", "summarize_map_samples", "MAP_PERCENTILES"]

MAP_PERCENTILES = (2.5, 16.0, 50.0, 84.0, 97.5)
_Q_NAMES = ("q025", "q16", "q50", "q84", "q975")


@dataclass
class MapPosterior:
    """Posterior summaries of one target map for N objects, each (N, H, W) float32 in the target's unit.

    ``p_exceed`` (N, T, H, W) is P(target > thresholds[t]) per pixel; ``mask`` (N, H, W) True = no input data
    (the model still predicts there; metrics and displays use ``~mask``); ``truth`` (N, H, W) when known;
    ``samples`` (K, S, H, W) raw draws of the first K objects (K may be 0); ``ids`` (N,).
    """

    target: str
    unit: str
    mean: np.ndarray
    std: np.ndarray
    q025: np.ndarray
    q16: np.ndarray
    q50: np.ndarray
    q84: np.ndarray
    q975: np.ndarray
    p_exceed: np.ndarray
    thresholds: tuple[float, ...]
    mask: np.ndarray
    n_samples: int
    method: str = ""
    truth: np.ndarray | None = None
    samples: np.ndarray | None = None
    ids: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n, h, w = self.mean.shape
        self.thresholds = tuple(float(t) for t in self.thresholds)
        if self.p_exceed.shape != (n, len(self.thresholds), h, w):
            raise GPSError("p_exceed shape does not match the maps and thresholds", source="MapPosterior",
                           field="p_exceed", expected=str((n, len(self.thresholds), h, w)),
                           found=str(self.p_exceed.shape))
        self.mask = np.asarray(self.mask, dtype=bool)
        if self.ids is None:
            self.ids = np.arange(n)

    @property
    def n(self) -> int:
        return self.mean.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mean.shape[1:])  # type: ignore[return-value]

    @property
    def median(self) -> np.ndarray:
        return self.q50

    @property
    def residual(self) -> np.ndarray | None:
        """Posterior mean minus truth (N, H, W), NaN where the input is masked; None without truth."""
        if self.truth is None:
            return None
        return np.where(self.mask, np.nan, self.mean - self.truth).astype(np.float32)

    def exceedance(self, threshold: float) -> np.ndarray:
        """P(target > threshold) maps (N, H, W) for one of the stored thresholds."""
        for j, t in enumerate(self.thresholds):
            if abs(t - threshold) < 1e-9:
                return self.p_exceed[:, j]
        raise GPSError("threshold not computed", source="MapPosterior", field="thresholds",
                       expected=", ".join(f"{t:g}" for t in self.thresholds), found=f"{threshold:g}")

    def summary_maps(self, i: int) -> dict[str, np.ndarray]:
        """Object ``i``: name -> (H, W) map (mean, std, q16, q84, ..., p_gt_<t>, residual when truth exists)."""
        out = {"mean": self.mean[i], "std": self.std[i], "q2.5": self.q025[i], "q16": self.q16[i],
               "median": self.q50[i], "q84": self.q84[i], "q97.5": self.q975[i]}
        for j, t in enumerate(self.thresholds):
            out[f"p_gt_{t:g}"] = self.p_exceed[i, j]
        res = self.residual
        if res is not None:
            out["residual"] = res[i]
        return out

    def subset(self, idx: Any) -> "MapPosterior":
        sel = np.atleast_1d(np.arange(self.n)[idx])
        keep = None
        if self.samples is not None:
            kk = [k for k in sel if k < len(self.samples)]
            keep = self.samples[kk] if kk else None
        return MapPosterior(self.target, self.unit, *(getattr(self, a)[sel] for a in
                                                      ("mean", "std", "q025", "q16", "q50", "q84", "q975",
                                                       "p_exceed")),
                            thresholds=self.thresholds, mask=self.mask[sel], n_samples=self.n_samples,
                            method=self.method, truth=None if self.truth is None else self.truth[sel],
                            samples=keep, ids=self.ids[sel], info=dict(self.info))

    def to_hdulist(self, i: int = 0, header=None):
        """FITS HDUList for object ``i``: one image HDU per summary map; ``header`` (the input's, with its WCS)
        is copied into every image HDU so the maps overlay the input (celestial WCS keywords only are kept)."""
        from astropy.io import fits
        from astropy.wcs import WCS

        wcs_hdr = fits.Header()
        if header is not None and len(header):
            try:
                wcs_hdr = WCS(header).celestial.to_header()
            except Exception:  # no valid WCS: keep none
                wcs_hdr = fits.Header()
        prim = fits.PrimaryHDU()
        prim.header["TARGET"] = (self.target, "posterior target")
        prim.header["METHOD"] = (self.method, "inference method")
        prim.header["NSAMPLE"] = (self.n_samples, "posterior samples per object")
        prim.header["OBJID"] = str(self.ids[i])
        hdus = [prim]
        for name, arr in self.summary_maps(i).items():
            hdu = fits.ImageHDU(np.asarray(arr, dtype=np.float32), header=wcs_hdr.copy(), name=name.upper()[:68])
            hdu.header["BUNIT"] = self.unit if name.startswith(("mean", "std", "q", "median", "residual")) else ""
            hdus.append(hdu)
        hdus.append(fits.ImageHDU(self.mask[i].astype(np.uint8), header=wcs_hdr.copy(), name="INPUT_MASK"))
        return fits.HDUList(hdus)


class MapPosteriorBuilder:
    """Accumulates summaries from batches of samples: ``add(start, samples (b, S, H, W))`` then ``finish()``."""

    def __init__(self, n: int, shape: tuple[int, int], thresholds: Sequence[float] = (0.5,),
                 keep_samples: int = 0) -> None:
        self.n, self.shape = n, tuple(shape)
        self.thresholds = tuple(float(t) for t in thresholds)
        h, w = self.shape
        self.arrays = {k: np.full((n, h, w), np.nan, np.float32) for k in ("mean", "std") + _Q_NAMES}
        self.p_exceed = np.full((n, len(self.thresholds), h, w), np.nan, np.float32)
        self.keep = min(int(keep_samples), n)
        self.samples: np.ndarray | None = None
        self.n_samples = 0
        self.done = np.zeros(n, dtype=bool)

    def add(self, start: int, samples: np.ndarray) -> None:
        """Summaries of objects ``start .. start + b`` from their draws (b, S, H, W)."""
        samples = np.asarray(samples, dtype=np.float32)
        b, s = samples.shape[:2]
        stats = summarize_map_samples(samples, self.thresholds)
        sl = slice(start, start + b)
        for k in self.arrays:
            self.arrays[k][sl] = stats[k]
        self.p_exceed[sl] = stats["p_exceed"]
        self.n_samples = s
        self.done[sl] = True
        if start < self.keep:
            if self.samples is None:
                self.samples = np.empty((self.keep, s) + self.shape, np.float32)
            m = min(self.keep - start, b)
            self.samples[start:start + m] = samples[:m]

    def finish(self, *, target: str, unit: str, mask: np.ndarray, method: str, truth: np.ndarray | None = None,
               ids: np.ndarray | None = None, info: dict | None = None) -> MapPosterior:
        if not self.done.all():
            raise GPSError("not every object received samples", source="MapPosteriorBuilder",
                           expected=str(self.n), found=str(int(self.done.sum())))
        a = self.arrays
        return MapPosterior(target, unit, a["mean"], a["std"], a["q025"], a["q16"], a["q50"], a["q84"], a["q975"],
                            self.p_exceed, self.thresholds, mask, self.n_samples, method, truth, self.samples, ids,
                            dict(info or {}))


def summarize_map_samples(samples: np.ndarray, thresholds: Sequence[float] = (0.5,)) -> dict[str, np.ndarray]:
    """samples (b, S, H, W) -> {"mean", "std", "q025", "q16", "q50", "q84", "q975"}: (b, H, W) and
    ``p_exceed`` (b, T, H, W) = fraction of draws above each threshold. Percentiles by linear interpolation."""
    samples = np.asarray(samples, dtype=np.float32)
    out = {"mean": samples.mean(axis=1), "std": samples.std(axis=1)}
    qs = np.percentile(samples, MAP_PERCENTILES, axis=1)
    for name, q in zip(_Q_NAMES, qs):
        out[name] = q.astype(np.float32)
    out["p_exceed"] = np.stack([(samples > t).mean(axis=1) for t in thresholds], axis=1).astype(np.float32) \
        if len(thresholds) else np.zeros((samples.shape[0], 0) + samples.shape[2:], np.float32)
    return out
