"""IFU map simulator (science/simulators.md section 2): MaNGA-like maps, ex-situ fraction maps, central masses.

``simulate_ifu(n, seed, config) -> MapSet``: per galaxy ``n_proj`` projections (maps ordered galaxy-major)
of Sigma*, v, sigma, age, [Z/H], mu_r, g-r with mask and inverse variance, the intrinsic ex-situ fraction map
and scalar central-mass targets. ``simulate_central(n, seed, config) -> CentralSet``: the same galaxies (same
seed => same draws) as an r-band image (+ g-r) and 48x48 v / sigma maps for the central-mass task.
``grouped_split`` splits by galaxy so that projections of one galaxy never straddle train and test.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from core.data.simulators.ifu_config import CHANNEL_UNITS, MAP_CHANNELS, IFUSimConfig
from core.data.simulators.ifu_products import make_chunk, observe_maps, scalar_props
from core.errors import GPSError

__all__ = ["IFUSimConfig", "MapSet", "CentralSet", "simulate_ifu", "simulate_central", "grouped_split",
           "MAP_CHANNELS", "CHANNEL_UNITS", "TARGETS", "TARGET_UNITS", "SIMULATOR_VERSION"]

SIMULATOR_VERSION = "ifu-3"   # ifu-2: calibrated on its outputs; ifu-3: IMF factor + contracted haloes (sigma_e)
TARGETS = ("log_mstar_re", "log_mtot_re", "log_ml_r")
TARGET_UNITS = {"log_mstar_re": "dex(solMass)", "log_mtot_re": "dex(solMass)", "log_ml_r": "dex(solMass / solLum)"}


@dataclass
class MapSet:
    """Simulated IFU map stack, float32 unless noted; N = n_galaxies x n_proj maps (galaxy-major order).

    maps (N, C, H, W) in ``units`` per channel (``channels``: log_sigma_star [dex(Msun/kpc2)], vel [km/s],
    sigma [km/s], log_age [dex(yr)], metallicity [dex], mu_r [mag/arcsec2], g_r [mag]); masked pixels hold 0.
    mask (N, H, W) bool, True = no data; ivar (N, C, H, W) [unit^-2], 0 where masked.
    f_ex (N, H, W) intrinsic ex-situ mass fraction (no PSF, no noise); galaxy (N, H, W) bool intrinsic galaxy
    pixels (log Sigma* >= config.galaxy_logsigma_min).
    targets: log_mstar_re (nominal, Kroupa-SPS), log_mtot_re (true stars + dark matter) [dex Msun], log_ml_r
    (nominal) [dex Msun/Lsun] inside the projected r-band R_e (N,).
    props: per-map scalars (N,): galaxy_id, projection, log_mstar, log_mh, f_ex_total, quenched, bt, re_kpc
    (projected r-band half-light radius), rhalf_kpc (3-D stellar half-mass radius), axis_ratio, inclination_deg,
    pa_deg, redshift, n_fibres, coverage, c200, k_ex, log_mtot_rhalf, f_dm_rhalf (true stars vs dark matter inside the
    3-D r_1/2), log_imf_alpha (true / nominal stellar mass), log_ml_r_global, abs_mag_r ...
    pixel_arcsec (N,) and pixel_rhalf (float): pixel scale in arcsec and in units of r_1/2.
    """

    maps: np.ndarray
    channels: tuple[str, ...]
    units: tuple[str, ...]
    mask: np.ndarray
    ivar: np.ndarray
    f_ex: np.ndarray
    galaxy: np.ndarray
    targets: dict[str, np.ndarray]
    props: dict[str, np.ndarray]
    pixel_arcsec: np.ndarray
    pixel_rhalf: float
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.maps.shape[0]

    @property
    def galaxy_id(self) -> np.ndarray:
        return self.props["galaxy_id"]

    def channel(self, name: str) -> np.ndarray:
        """(N, H, W) map of one channel."""
        if name not in self.channels:
            raise GPSError("no such channel in this map set", source="MapSet", field=name,
                           expected=" | ".join(self.channels), found=name)
        return self.maps[:, self.channels.index(name)]

    def select_channels(self, names) -> "MapSet":
        idx = [self.channels.index(c) for c in names]
        return _replace(self, maps=self.maps[:, idx], ivar=self.ivar[:, idx], channels=tuple(names),
                        units=tuple(self.units[i] for i in idx))

    def subset(self, idx) -> "MapSet":
        """Maps ``idx`` (index array or boolean mask) with all their targets and properties."""
        return _subset(self, idx)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta) for the HDF5 cache (``core.data.cache``)."""
        return _to_arrays(self)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "MapSet":
        return _from_arrays(cls, arrays, meta)

    def to_mapstack(self):
        """The engine's :class:`core.data.maps.MapStack` (targets: f_ex map + scalar targets)."""
        from core.data.maps import MapStack

        reff = self.props["re_kpc"] / self.props["kpc_per_arcsec"]
        tg = {"f_ex": self.f_ex, "galaxy_pixels": self.galaxy, "galaxy_id": self.galaxy_id, **self.targets}
        ids = np.array([f"{g}_{p}" for g, p in zip(self.galaxy_id, self.props["projection"])])
        return MapStack(data=self.maps, channels=self.channels, units=self.units, mask=self.mask, ivar=self.ivar,
                        pixel_scale_arcsec=self.pixel_arcsec, reff_arcsec=reff, ids=ids,
                        meta=dict(self.meta, source="simulator"), targets=tg)


@dataclass
class CentralSet:
    """Central-mass inputs for the same galaxies: ``image`` (N, 2, Hi, Wi) = mu_r [mag/arcsec2], g_r [mag]
    over image_fov_rhalf; ``kin`` (N, 2, Hk, Wk) = vel, sigma [km/s] over kin_fov_rhalf (MaNGA-like PSF, bundle,
    noise; masked pixels 0); ``kin_mask`` (N, Hk, Wk); ``kin_ivar`` (N, 2, Hk, Wk); ``image_ivar``;
    ``targets`` / ``props`` / ``meta`` as in :class:`MapSet`; pixel scales in arcsec per map."""

    image: np.ndarray
    image_channels: tuple[str, ...]
    image_ivar: np.ndarray
    kin: np.ndarray
    kin_channels: tuple[str, ...]
    kin_mask: np.ndarray
    kin_ivar: np.ndarray
    targets: dict[str, np.ndarray]
    props: dict[str, np.ndarray]
    image_pixel_arcsec: np.ndarray
    kin_pixel_arcsec: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.image.shape[0]

    @property
    def galaxy_id(self) -> np.ndarray:
        return self.props["galaxy_id"]

    def subset(self, idx) -> "CentralSet":
        return _subset(self, idx)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return _to_arrays(self)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> "CentralSet":
        return _from_arrays(cls, arrays, meta)


def simulate_ifu(n_galaxies: int, seed: int = 0, config: IFUSimConfig | None = None,
                 cache: bool = False) -> MapSet:
    """Simulate ``n_galaxies`` x ``config.n_proj`` IFU maps (deterministic in ``seed``; prefix property).

    ``cache=True`` stores/loads the set in the HDF5 dataset cache keyed by config hash, n and seed.
    """
    cfg = config or IFUSimConfig()
    if cache:
        from core.data.cache import cached

        arrays, meta = cached("ifu", cfg, n_galaxies, seed, lambda: simulate_ifu(n_galaxies, seed, cfg).to_arrays())
        return MapSet.from_arrays(arrays, meta)
    _check_n(n_galaxies)
    parts = []
    for a in range(0, n_galaxies, cfg.chunk):
        ch = make_chunk(seed, a, min(a + cfg.chunk, n_galaxies), cfg)
        ob = observe_maps(ch, cfg, cfg.map_size, cfg.fov_rhalf, cfg.channels, cfg.psf_fwhm, cfg.sn_ref, "ifu")
        props = scalar_props(ch, cfg)
        parts.append({"maps": ob.maps, "ivar": ob.ivar, "mask": ob.mask, "f_ex": ob.f_ex, "galaxy": ob.galaxy,
                      "pixel_arcsec": np.repeat(ob.pixel_arcsec[:, None], cfg.n_proj, 1), **props})
    flat = _flatten(parts, cfg, (cfg.map_size, cfg.map_size), len(cfg.channels))
    return MapSet(maps=flat.pop("maps"), channels=tuple(cfg.channels),
                  units=tuple(CHANNEL_UNITS[c] for c in cfg.channels), mask=flat.pop("mask"),
                  ivar=flat.pop("ivar"), f_ex=flat.pop("f_ex"), galaxy=flat.pop("galaxy"),
                  targets={k: flat.pop(k) for k in TARGETS}, pixel_arcsec=flat.pop("pixel_arcsec"),
                  pixel_rhalf=cfg.fov_rhalf / cfg.map_size, props=flat,
                  meta=_meta(cfg, n_galaxies, seed, "ifu_maps"))


def simulate_central(n_galaxies: int, seed: int = 0, config: IFUSimConfig | None = None,
                     cache: bool = False) -> CentralSet:
    """Central-mass inputs and targets for the galaxies of ``simulate_ifu(n_galaxies, seed, config)``.

    Image: mu_r and g-r at ``image_size`` over ``image_fov_rhalf`` with the imaging PSF and per-pixel noise;
    kinematics: vel and sigma at ``kin_size`` over ``kin_fov_rhalf`` with the MaNGA observation model.
    """
    cfg = config or IFUSimConfig()
    if cache:
        from core.data.cache import cached

        arrays, meta = cached("ifu_central", cfg, n_galaxies, seed,
                              lambda: simulate_central(n_galaxies, seed, cfg).to_arrays())
        return CentralSet.from_arrays(arrays, meta)
    _check_n(n_galaxies)
    parts = []
    for a in range(0, n_galaxies, cfg.chunk):
        ch = make_chunk(seed, a, min(a + cfg.chunk, n_galaxies), cfg)
        im = observe_maps(ch, cfg, cfg.image_size, cfg.image_fov_rhalf, ("mu_r", "g_r"), cfg.image_psf_fwhm,
                          cfg.image_sn_ref, "image")
        kn = observe_maps(ch, cfg, cfg.kin_size, cfg.kin_fov_rhalf, ("vel", "sigma"), cfg.psf_fwhm,
                          cfg.sn_ref, "ifu")
        rep = lambda v: np.repeat(v[:, None], cfg.n_proj, 1)  # noqa: E731
        parts.append({"image": im.maps, "image_ivar": im.ivar, "kin": kn.maps, "kin_ivar": kn.ivar,
                      "kin_mask": kn.mask, "image_pixel_arcsec": rep(im.pixel_arcsec),
                      "kin_pixel_arcsec": rep(kn.pixel_arcsec), **scalar_props(ch, cfg)})
    flat = _flatten(parts, cfg, None, None)
    pop = flat.pop
    return CentralSet(image=pop("image"), image_channels=("mu_r", "g_r"), image_ivar=pop("image_ivar"),
                      kin=pop("kin"), kin_channels=("vel", "sigma"), kin_mask=pop("kin_mask"),
                      kin_ivar=pop("kin_ivar"), targets={k: pop(k) for k in TARGETS},
                      image_pixel_arcsec=pop("image_pixel_arcsec"), kin_pixel_arcsec=pop("kin_pixel_arcsec"),
                      props=flat, meta=_meta(cfg, n_galaxies, seed, "ifu_central"))


def grouped_split(galaxy_id: np.ndarray, fractions=(0.75, 0.10, 0.15), seed: int = 0) -> tuple[np.ndarray, ...]:
    """Split map indices into len(fractions) parts grouped by ``galaxy_id`` (all projections of a galaxy
    land in the same part). Galaxies are shuffled with ``seed``; part sizes follow ``fractions`` (normalised)
    in galaxies. Returns sorted index arrays."""
    gid = np.asarray(galaxy_id)
    frac = np.asarray(fractions, dtype=float)
    if frac.ndim != 1 or len(frac) == 0 or np.any(frac < 0) or frac.sum() <= 0:
        raise GPSError("invalid split fractions", source="grouped_split", field="fractions",
                       expected="non-negative numbers with a positive sum", found=repr(fractions))
    uniq = np.unique(gid)
    perm = np.random.default_rng(seed).permutation(len(uniq))
    edges = np.round(np.cumsum(frac / frac.sum()) * len(uniq)).astype(int)
    groups = np.split(uniq[perm], edges[:-1])
    return tuple(np.flatnonzero(np.isin(gid, g)) for g in groups)


# ---------------------------------------------------------------------------------------------------
def _check_n(n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise GPSError("number of galaxies must be a positive integer", source="simulate_ifu",
                       field="n_galaxies", expected=">= 1", found=repr(n))


def _flatten(parts: list[dict], cfg: IFUSimConfig, *_unused) -> dict[str, np.ndarray]:
    """Concatenate chunks and merge the (galaxy, projection) axes into one map axis."""
    out = {}
    for k in parts[0]:
        v = np.concatenate([p[k] for p in parts], axis=0)
        v = v.reshape((v.shape[0] * v.shape[1],) + v.shape[2:])
        if k in ("galaxy_id", "projection", "quenched", "n_fibres"):
            v = v.astype(np.int64)
        out[k] = v
    return out


def _meta(cfg: IFUSimConfig, n: int, seed: int, product: str) -> dict[str, Any]:
    import core

    return {"simulator": "ifu", "product": product, "simulator_version": SIMULATOR_VERSION,
            "package_version": getattr(core, "__version__", "0"), "config": cfg.to_dict(),
            "config_hash": cfg.config_hash(), "seed": int(seed), "n_galaxies": int(n), "n_proj": cfg.n_proj,
            "mass_definition": "M200c", "cosmology": "planck18",
            "rng": "Generator(PCG64(SeedSequence(seed, spawn_key=(galaxy_index,))))"}


def _replace(obj, **changes):
    kw = {f.name: getattr(obj, f.name) for f in fields(obj)}
    kw.update(changes)
    return type(obj)(**kw)


def _subset(obj, idx):
    kw = {}
    n = len(obj)
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray) and v.ndim >= 1 and v.shape[0] == n:
            v = v[idx]
        elif isinstance(v, dict) and f.name != "meta":
            v = {k: a[idx] for k, a in v.items()}
        kw[f.name] = v
    return type(obj)(**kw)


def _to_arrays(obj) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays, meta = {}, dict(obj.meta)
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            arrays[f.name] = v
        elif isinstance(v, dict) and f.name != "meta":
            for k, a in v.items():
                arrays[f"{f.name}/{k}"] = a
        elif f.name != "meta":
            meta[f"_field_{f.name}"] = list(v) if isinstance(v, tuple) else v
    return arrays, meta


def _from_arrays(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any]):
    meta = dict(meta)
    kw: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "meta":
            continue
        key = f"_field_{f.name}"
        if key in meta:
            v = meta.pop(key)
            kw[f.name] = tuple(v) if isinstance(v, list) else v
        elif f.name in arrays:
            kw[f.name] = np.asarray(arrays[f.name])
        else:
            pre = f.name + "/"
            kw[f.name] = {k[len(pre):]: np.asarray(a) for k, a in arrays.items() if k.startswith(pre)}
    kw["meta"] = meta
    return cls(**kw)
