"""The ``central_mass`` data container: named 2-D inputs at their own sizes, pixel scales, scalar targets.

``CentralMassData`` holds what the multi-branch ResNet, the summary statistics and the baselines read:
``maps[name]`` (N, H_k, W_k) in the canonical unit of the task input (``image`` = r-band surface brightness
[mag/arcsec2], ``g_r`` [mag], ``vel`` and ``sigma`` [km/s]), a boolean ``masks[name]`` (True = no data), the
physical pixel size ``pixel_kpc[name]`` (N,) [kpc/pixel] (from the redshift and the angular pixel size: it is
what makes a surface-brightness image carry a luminosity and a velocity map carry a mass), and the targets
``y`` (N, p) with names ``targets`` (dex). ``galaxy_id`` groups the projections of one galaxy (grouped splits).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["CentralMassData", "INPUT_UNITS", "grouped_indices", "from_central_set", "from_manga_dap"]

#: canonical unit of every central_mass input (astropy strings)
INPUT_UNITS = {"image": "mag / arcsec2", "g_r": "mag", "vel": "km / s", "sigma": "km / s"}


@dataclass
class CentralMassData:
    """N objects: ``maps`` name -> (N, H, W) float32, ``masks`` name -> (N, H, W) bool, ``pixel_kpc`` name -> (N,).

    ``y`` (N, p) targets in dex or None; ``ids`` (N,); ``galaxy_id`` (N,) (projections of one galaxy share it);
    ``units`` name -> unit string (inputs and targets); ``meta`` provenance; ``extra`` name -> (N,) arrays that are
    not inputs (simulator latents, redshift, ...). Masked pixels may hold any value (they are never read).
    """

    maps: dict[str, np.ndarray]
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    pixel_kpc: dict[str, np.ndarray] = field(default_factory=dict)
    y: np.ndarray | None = None
    targets: tuple[str, ...] = ()
    ids: np.ndarray | None = None
    galaxy_id: np.ndarray | None = None
    units: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.source
        if not self.maps:
            raise GPSError("no input maps", source=src, field="maps", expected="at least one of " +
                           ", ".join(INPUT_UNITS), found="none")
        n = None
        for k, v in list(self.maps.items()):
            v = np.asarray(v, dtype=np.float32)
            if v.ndim == 2:
                v = v[None]
            if v.ndim != 3:
                raise GPSError("an input map must be (N, H, W)", source=src, field=k, expected="(N, H, W)",
                               found=str(v.shape))
            n = v.shape[0] if n is None else n
            if v.shape[0] != n:
                raise GPSError("inputs have different numbers of objects", source=src, field=k,
                               expected=str(n), found=str(v.shape[0]))
            self.maps[k] = v
            m = self.masks.get(k)
            m = ~np.isfinite(v) if m is None else (np.asarray(m, dtype=bool) | ~np.isfinite(v))
            if m.shape != v.shape:
                raise GPSError("mask shape does not match the map", source=src, field=f"{k} mask",
                               expected=str(v.shape), found=str(m.shape))
            self.masks[k] = m
            px = np.broadcast_to(np.asarray(self.pixel_kpc.get(k, np.nan), dtype=np.float64), (n,)).copy()
            self.pixel_kpc[k] = px
            self.units.setdefault(k, INPUT_UNITS.get(k, ""))
        self.targets = tuple(self.targets)
        if self.y is not None:
            self.y = np.asarray(self.y, dtype=np.float64).reshape(n, -1)
            if self.y.shape[1] != len(self.targets):
                raise GPSError("target array does not match the target names", source=src, field="y",
                               expected=f"({n}, {len(self.targets)})", found=str(self.y.shape))
        self.ids = np.arange(n) if self.ids is None else np.asarray(self.ids)
        self.galaxy_id = self.ids.copy() if self.galaxy_id is None else np.asarray(self.galaxy_id)
        if self.ids.shape != (n,) or self.galaxy_id.shape != (n,):
            raise GPSError("ids / galaxy_id must have one entry per object", source=src, field="ids",
                           expected=str(n), found=f"{self.ids.shape}, {self.galaxy_id.shape}")
        for k, v in self.extra.items():
            if len(v) != n:
                raise GPSError("extra column has the wrong length", source=src, field=k, expected=str(n),
                               found=str(len(v)))

    # ------------------------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        f = (self.meta or {}).get("file")
        return str(f) if f else "central_mass data"

    @property
    def features(self) -> tuple[str, ...]:
        """Names of the inputs present (the model's 'features')."""
        return tuple(self.maps)

    def __len__(self) -> int:
        return next(iter(self.maps.values())).shape[0]

    @property
    def has_truth(self) -> bool:
        return self.y is not None and len(self.targets) > 0

    def select_features(self, names: Sequence[str]) -> "CentralMassData":
        """Alias of :meth:`select` (the name ``core.api.train`` uses for catalogues)."""
        return self.select(names)

    def fingerprint(self) -> str:
        """Hash of the numbers (maps, masks, pixel sizes, targets), for training-data provenance."""
        import hashlib

        h = hashlib.sha256()
        for k in sorted(self.maps):
            h.update(k.encode())
            for a in (self.maps[k], self.masks[k], self.pixel_kpc[k]):
                h.update(np.ascontiguousarray(a).tobytes())
        if self.y is not None:
            h.update(np.ascontiguousarray(self.y).tobytes())
        return h.hexdigest()[:16]

    def sizes(self) -> dict[str, tuple[int, int]]:
        return {k: tuple(v.shape[1:]) for k, v in self.maps.items()}

    def summary(self) -> list[dict[str, Any]]:
        """Per input: name, unit, size, pixel size [kpc] (median), valid-pixel count, min / median / max (display)."""
        out = []
        for k, v in self.maps.items():
            ok = v[~self.masks[k]]
            ok = ok[np.isfinite(ok)]
            stats = (float(ok.min()), float(np.median(ok)), float(ok.max())) if ok.size else (np.nan,) * 3
            out.append({"channel": k, "unit": self.units.get(k, ""), "size": "x".join(map(str, v.shape[1:])),
                        "pixel_kpc": float(np.nanmedian(self.pixel_kpc[k])), "n_valid": int(ok.size),
                        "min": stats[0], "median": stats[1], "max": stats[2]})
        return out

    def target_array(self, names: Sequence[str]) -> np.ndarray:
        """(N, len(names)) targets in the given order; GPSError if absent."""
        missing = [t for t in names if t not in self.targets]
        if self.y is None or missing:
            raise GPSError("these data have no target column", source=self.source,
                           field=", ".join(missing or names), expected="target(s) " + ", ".join(names),
                           found=", ".join(self.targets) or "none")
        return self.y[:, [self.targets.index(t) for t in names]]

    def require(self, names: Sequence[str], who: str) -> None:
        """Raise a clear GPSError when an input the model needs is absent."""
        missing = [k for k in names if k not in self.maps]
        if missing:
            raise GPSError(f"the {who!r} model needs input(s) that these data do not have", source=self.source,
                           field=", ".join(missing), expected=", ".join(names), found=", ".join(self.maps))

    def subset(self, index) -> "CentralMassData":
        """Objects selected by a boolean mask, an index array or a slice."""
        idx = np.arange(len(self))[index]
        return replace(self, maps={k: v[idx] for k, v in self.maps.items()},
                       masks={k: v[idx] for k, v in self.masks.items()},
                       pixel_kpc={k: v[idx] for k, v in self.pixel_kpc.items()},
                       y=None if self.y is None else self.y[idx], ids=self.ids[idx], galaxy_id=self.galaxy_id[idx],
                       units=dict(self.units), meta=dict(self.meta), extra={k: v[idx] for k, v in self.extra.items()})

    def select(self, names: Sequence[str]) -> "CentralMassData":
        """Only the named inputs (in that order)."""
        self.require(names, "selected")
        return replace(self, maps={k: self.maps[k] for k in names}, masks={k: self.masks[k] for k in names},
                       pixel_kpc={k: self.pixel_kpc[k] for k in names}, units=dict(self.units),
                       meta=dict(self.meta), extra=dict(self.extra))


def grouped_indices(galaxy_id: np.ndarray, fractions: Sequence[float], seed: int = 0) -> list[np.ndarray]:
    """Split object indices into len(fractions) parts with every galaxy's projections in one part.

    ``fractions`` (summing to 1) apply to galaxies, not objects. Deterministic for a given ``seed``.
    """
    gid = np.asarray(galaxy_id)
    uniq = np.unique(gid)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(uniq)
    frac = np.asarray(fractions, dtype=float)
    edges = np.round(np.cumsum(frac / frac.sum()) * len(uniq)).astype(int)
    parts, start = [], 0
    for e in edges:
        chosen = perm[start:e]
        parts.append(np.flatnonzero(np.isin(gid, chosen)))
        start = e
    return parts


def from_central_set(cs, image_sn_min: float = 3.0) -> CentralMassData:
    """Adapt the IFU simulator's ``CentralSet`` (core.data.simulators.ifu) to :class:`CentralMassData`.

    Inputs ``image`` (mu_r), ``g_r``, ``vel``, ``sigma``; image pixels with S/N < ``image_sn_min`` (from the
    mu_r inverse variance: S/N = 1.086 sqrt(ivar)) are masked (their mu_r noise is huge); pixel sizes in kpc from
    the pixel size in arcsec and ``props["kpc_per_arcsec"]``; ``extra`` = every per-object property (redshift,
    galaxy_id, true re_kpc, ...); targets log_mstar_re, log_mtot_re, log_ml_r.
    """
    sn_iv = (image_sn_min / 1.0857) ** 2
    im_mask = cs.image_ivar[:, 0] < sn_iv
    gr_mask = im_mask | (cs.image_ivar[:, 1] <= 0)
    kpa = np.asarray(cs.props["kpc_per_arcsec"], float)
    ipk, kpk = np.asarray(cs.image_pixel_arcsec) * kpa, np.asarray(cs.kin_pixel_arcsec) * kpa
    ich, kch = list(cs.image_channels), list(cs.kin_channels)
    maps = {"image": cs.image[:, ich.index("mu_r")], "g_r": cs.image[:, ich.index("g_r")],
            "vel": cs.kin[:, kch.index("vel")], "sigma": cs.kin[:, kch.index("sigma")]}
    targets = tuple(cs.targets)
    return CentralMassData(maps=maps, masks={"image": im_mask, "g_r": gr_mask, "vel": cs.kin_mask,
                                             "sigma": cs.kin_mask},
                           pixel_kpc={"image": ipk, "g_r": ipk, "vel": kpk, "sigma": kpk},
                           y=np.stack([cs.targets[t] for t in targets], axis=1), targets=targets,
                           galaxy_id=np.asarray(cs.props["galaxy_id"]),
                           units={**INPUT_UNITS, "log_mstar_re": "dex(solMass)", "log_mtot_re": "dex(solMass)",
                                  "log_ml_r": "dex(solMass / solLum)"},
                           meta=dict(cs.meta, source="simulator"),
                           extra={k: np.asarray(v) for k, v in cs.props.items()})


def from_manga_dap(path, redshift: float | None = None, *, rhalf_over_reff: float = 1.33, image_size: int = 64,
                   image_fov_rhalf: float = 8.0, kin_size: int = 48, kin_fov_rhalf: float = 2.0,
                   band_wavelength_aa: float = 4686.0) -> CentralMassData:
    """A real MaNGA DAP MAPS file as one ``central_mass`` object: ``image`` (from SPX_MFLUX), ``vel``, ``sigma``.

    STELLAR_VEL and the corrected STELLAR_SIGMA come from :func:`core.data.io.maps_manga.read_manga_dap`;
    SPX_MFLUX [1e-17 erg/s/cm2/A per 0.5" spaxel] becomes an AB surface brightness at ``band_wavelength_aa``
    (the DAP's g-band-weighted mean flux, used as the r-band image *without a colour term*: M* and M/L inherit that
    offset; the result carries an "outside the training simulator" note). Maps are regridded like the simulator's:
    image ``image_size`` px over ``image_fov_rhalf`` r_1/2, kinematics ``kin_size`` px over ``kin_fov_rhalf`` r_1/2,
    with r_1/2 = ``rhalf_over_reff`` x REFF (the header's R_e). ``redshift`` defaults to the header's input
    velocity (SCINPVEL / c, or Z). Pixel sizes in kpc from the Planck18 angular-diameter distance. No g-r map.
    """
    from core.data.io.maps_manga import read_manga_dap
    from core.data.io.registry import guarded

    fl = guarded(read_manga_dap, str(path), "manga_dap", channels=("flux",))
    kn = guarded(read_manga_dap, str(path), "manga_dap", channels=("vel", "sigma"))
    z = guarded(_manga_redshift, str(path), "manga_dap") if redshift is None else float(redshift)
    if z is None or not np.isfinite(z) or z <= 0:
        raise GPSError("redshift unknown (needed for the pixel size in kpc and the dimming)", source=str(path),
                       field="SCINPVEL / Z", expected="a positive redshift (pass redshift=...)", found=repr(z))
    reff = float(kn.reff_arcsec[0])
    fl_r = fl.regrid(image_size, image_fov_rhalf * rhalf_over_reff)
    kn_r = kn.regrid(kin_size, kin_fov_rhalf * rhalf_over_reff)
    flux = fl_r.channel("flux")[0].astype(np.float64)
    spaxel_as2 = float(np.asarray(fl.pixel_scale_arcsec).ravel()[0]) ** 2
    fnu = np.clip(flux, 1e-30, None) * 1e-17 * band_wavelength_aa ** 2 / 2.99792458e18
    mu = -2.5 * np.log10(fnu) - 48.6 + 2.5 * np.log10(spaxel_as2)
    im_mask = fl_r.mask[0] | ~(flux > 0)
    kpa = _kpc_per_arcsec(z)
    notes = [f"SPX_MFLUX used as the r-band image at {band_wavelength_aa:g} A without a colour term (outside the "
             "training simulator: the simulator's image is r-band)",
             f"r_1/2 = {rhalf_over_reff:g} x REFF = {rhalf_over_reff * reff:.3g} arcsec; z = {z:.5g}",
             "no g-r map in a DAP file: use a model trained without g_r"]
    return CentralMassData(
        maps={"image": np.where(im_mask, 0.0, mu)[None], "vel": kn_r.channel("vel")[:1],
              "sigma": kn_r.channel("sigma")[:1]},
        masks={"image": im_mask[None], "vel": kn_r.mask[:1], "sigma": kn_r.mask[:1]},
        pixel_kpc={"image": np.asarray(fl_r.pixel_scale_arcsec).ravel()[:1] * kpa,
                   "vel": np.asarray(kn_r.pixel_scale_arcsec).ravel()[:1] * kpa,
                   "sigma": np.asarray(kn_r.pixel_scale_arcsec).ravel()[:1] * kpa},
        units=dict(INPUT_UNITS), meta=dict(kn.meta, source="file", notes=list(kn.meta.get("notes", [])) + notes),
        extra={"redshift": np.array([z]), "reff_arcsec": np.array([reff])})


def _manga_redshift(path) -> float | None:
    from astropy.io import fits

    with fits.open(path) as hdul:
        h = hdul[0].header
        if "SCINPVEL" in h:
            return float(h["SCINPVEL"]) / 299792.458
        for key in ("Z", "NSA_Z", "REDSHIFT"):
            if key in h:
                return float(h[key])
    return None


def _kpc_per_arcsec(z: float) -> float:
    from astropy.cosmology import Planck18

    return float(Planck18.angular_diameter_distance(z).to_value("kpc") * np.pi / 180.0 / 3600.0)
