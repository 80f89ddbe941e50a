"""DM -> galaxy field simulator (section 4 of science/simulators.md): lognormal DM, Poisson halos, Zheng+07 HOD.

Units: lengths in Mpc/h (comoving), masses in Msun/h (M200m), densities as rho/rho_bar (dimensionless).

* **DM field**: Gaussian delta_G with P_G(k) = P_lin(k) exp(-k^2 R_s^2) (colossus linear P(k); the 2-D slab uses
  the projected spectrum P_2D(k) = int dk_z/2pi P_G(sqrt(k^2+k_z^2)) sinc^2(k_z L_slab/2), so that the
  slab's mean density is lognormal), rho/rho_bar = exp(delta_G - sigma_G^2/2) (mean exactly 1 in expectation).
* **Halos** (the "lognormal-to-halo" Poisson mapping, 4.3): per mass bin m and voxel j,
  lambda_{j,m} = n(M_m) dlnM dV (rho_j)^{b_m} / <rho^{b_m}>_box, N_{j,m} ~ Poisson(lambda_{j,m});
  n = Tinker08 dn/dlnM (200m), b = Tinker10 bias.
* **Galaxies** (4.4): a central ~ Bernoulli(<N_cen>(M)) in the halo's voxel, satellites ~ Poisson(<N_sat>(M))
  independent of the central, placed on an NFW profile (c from Dutton & Maccio 2014, cut at R200m; projected on
  the slab plane in 2-D). A satellite's *voxel offset* from its halo's voxel is drawn from the kernel K_m,
  the distribution of the binned NFW position of a satellite of a halo placed uniformly in its voxel (tabulated
  once per config by Monte Carlo with a fixed seed). Sampling the offset from K_m is the same as sampling the
  NFW position and binning it, and it makes the oracle of :mod:`.oracle` exact for the simulator by construction.

:func:`field_tables` holds everything derived from a config (mass bins, HOD, kernels); :func:`simulate_dm`,
:func:`halo_rates` and :func:`sample_galaxies` are the three steps; :func:`simulate_fields` chains them.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import erf

from core.config import Config, param
from core.errors import GPSError

__all__ = [
    "FieldSimConfig",
    "FieldTables",
    "HOD_PRESETS",
    "field_tables",
    "simulate_dm",
    "halo_rates",
    "sample_galaxies",
    "simulate_fields",
    "hod_mean",
]

#: Zheng+07 (log M_min, sigma_logM, log M0, log M1, alpha) in Msun/h [V]
HOD_PRESETS = {
    "Mr-18": (11.35, 0.25, 11.20, 12.40, 0.83),
    "Mr-20": (12.02, 0.26, 11.38, 13.31, 1.06),
    "Mr-21": (12.79, 0.39, 11.92, 13.94, 1.15),
}


@dataclass(frozen=True)
class FieldSimConfig(Config):
    """Field simulator settings. Defaults: 2-D 64^2 slabs of 25 x 25 x 5 (Mpc/h)^3, Planck18, Zheng+07 M_r<-18."""

    dim: Literal[2, 3] = param(2, help="2 = projected slab, 3 = box")
    n_grid: int = param(64, help="Voxels per side", min=4, max=512)
    box_size: float = param(25.0, help="Box side L [Mpc/h] (CAMELS: 25)", min=1.0, max=2000.0)
    slab: float = param(5.0, help="Slab thickness [Mpc/h] (2-D only)", min=0.1, max=2000.0)
    smoothing: float = param(1.0, help="Gaussian smoothing R_s of the linear field [Mpc/h]", min=0.0, max=10.0)
    z: float = param(0.0, help="Redshift", min=0.0, max=6.0)
    omega_m: float = param(0.3111, help="Omega_m (CAMELS: 0.1-0.5)", min=0.05, max=0.9)
    sigma8: float = param(0.8102, help="sigma_8 (CAMELS: 0.6-1.0)", min=0.3, max=1.5)
    omega_b: float = param(0.049, help="Omega_b", min=0.0, max=0.2, advanced=True)
    h: float = param(0.6766, help="H0 / 100", min=0.4, max=1.0, advanced=True)
    n_s: float = param(0.9665, help="Scalar spectral index", min=0.8, max=1.2, advanced=True)
    log_m_lo: float = param(10.5, help="Lowest halo mass bin edge, log10 M200m [Msun/h]", min=8.0, max=15.0)
    log_m_hi: float = param(15.0, help="Highest halo mass bin edge", min=9.0, max=16.0)
    dlog_m: float = param(0.1, help="Mass bin width [dex]", min=0.01, max=1.0, advanced=True)
    log_m_min: float = param(11.35, help="HOD log M_min [Msun/h] (Zheng+07 M_r<-18)", min=9.0, max=15.0)
    sigma_log_m: float = param(0.25, help="HOD sigma_logM", min=0.0, max=2.0)
    log_m0: float = param(11.20, help="HOD log M0 [Msun/h]", min=8.0, max=16.0)
    log_m1: float = param(12.40, help="HOD log M1 [Msun/h]", min=9.0, max=16.0)
    alpha: float = param(0.83, help="HOD satellite slope alpha", min=0.0, max=3.0)
    kernel_samples: int = param(
        20000, help="Monte Carlo points per mass bin for the satellite kernels", min=100, max=10_000_000, advanced=True
    )

    def validate(self) -> None:
        if self.log_m_hi <= self.log_m_lo + self.dlog_m / 2:
            raise GPSError(
                "the halo mass range is empty",
                source="FieldSimConfig",
                field="log_m_hi",
                expected=f"> log_m_lo + dlog_m/2 = {self.log_m_lo + self.dlog_m / 2}",
                found=str(self.log_m_hi),
            )

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n_grid,) * self.dim

    @property
    def cell(self) -> float:
        """Voxel side [Mpc/h]."""
        return self.box_size / self.n_grid

    @property
    def voxel_volume(self) -> float:
        """Voxel volume [(Mpc/h)^3] (2-D: pixel area times slab thickness)."""
        return self.cell**3 if self.dim == 3 else self.cell**2 * self.slab

    @property
    def hod(self) -> tuple[float, float, float, float, float]:
        return (self.log_m_min, self.sigma_log_m, self.log_m0, self.log_m1, self.alpha)

    def with_hod(self, preset: str) -> "FieldSimConfig":
        if preset not in HOD_PRESETS:
            raise GPSError("unknown HOD preset", field="hod", expected=" | ".join(HOD_PRESETS), found=preset)
        p = HOD_PRESETS[preset]
        return self.replace(log_m_min=p[0], sigma_log_m=p[1], log_m0=p[2], log_m1=p[3], alpha=p[4])


def hod_mean(m: np.ndarray, hod: tuple[float, float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Zheng+07 <N_cen>(M), <N_sat>(M) for M in Msun/h; hod = (log M_min, sigma_logM, log M0, log M1, alpha)."""
    log_mmin, sig, log_m0, log_m1, alpha = hod
    lm = np.log10(m)
    ncen = 0.5 * (1.0 + erf((lm - log_mmin) / sig)) if sig > 0 else (lm >= log_mmin).astype(float)
    nsat = np.where(m > 10**log_m0, (np.clip(m - 10**log_m0, 0, None) / 10**log_m1) ** alpha, 0.0)
    return np.asarray(ncen, float), np.asarray(nsat, float)


@dataclass(frozen=True)
class FieldTables:
    """Everything derived from a :class:`FieldSimConfig` (computed once per config, see :func:`field_tables`)."""

    mass: np.ndarray  # (n_m,) bin-centre masses [Msun/h]
    n_halo: np.ndarray  # (n_m,) expected halos per voxel at mean density: n(M) dlnM dV
    bias: np.ndarray  # (n_m,) Tinker10 b(M)
    ncen: np.ndarray  # (n_m,)
    nsat: np.ndarray  # (n_m,)
    kernels: np.ndarray  # (n_m, *shape) K_m(offset), periodic, sums to 1 (delta at 0 where nsat == 0)
    pk_grid: np.ndarray  # (*shape) P_G(|k|) on the FFT grid [(Mpc/h)^dim]
    sigma_g2: float  # expected variance of delta_G on the grid


def field_tables(cfg: FieldSimConfig) -> FieldTables:
    """Tables of ``cfg`` (cached in memory by the config's JSON)."""
    return _tables(cfg.to_json())


def simulate_dm(cfg: FieldSimConfig, rng: np.random.Generator) -> np.ndarray:
    """One lognormal DM field rho/rho_bar of shape ``cfg.shape`` (float64, positive)."""
    t = field_tables(cfg)
    n_cells = cfg.n_grid**cfg.dim
    area = cfg.box_size**cfg.dim
    white = np.fft.rfftn(rng.standard_normal(cfg.shape))
    half = t.pk_grid[..., : cfg.n_grid // 2 + 1]
    delta = np.fft.irfftn(white * np.sqrt(half * n_cells / area), s=cfg.shape, axes=tuple(range(cfg.dim)))
    return np.exp(delta - t.sigma_g2 / 2.0)


def halo_rates(dm: np.ndarray, cfg: FieldSimConfig) -> np.ndarray:
    """lambda_{m,j}: expected number of halos of mass bin m in voxel j given the DM field; shape (n_m, *grid)."""
    t = field_tables(cfg)
    dm = np.asarray(dm, float)
    if dm.shape != cfg.shape:
        raise GPSError(
            "the DM field does not have the simulator grid's shape",
            field="dm",
            expected=str(cfg.shape),
            found=str(dm.shape),
        )
    logd = np.log(np.clip(dm, 1e-30, None))
    out = np.empty((len(t.mass),) + dm.shape)
    for m, b in enumerate(t.bias):
        w = np.exp(b * logd - (b * logd).max())  # (rho)^b scaled for range; normalised by its mean
        out[m] = t.n_halo[m] * w / w.mean()
    return out


def sample_galaxies(
    dm: np.ndarray, cfg: FieldSimConfig, rng: np.random.Generator, lam: np.ndarray | None = None
) -> np.ndarray:
    """Galaxy counts per voxel (int32, ``cfg.shape``) drawn from the halo + HOD model given the DM field."""
    t = field_tables(cfg)
    lam = halo_rates(dm, cfg) if lam is None else lam
    counts = np.zeros(cfg.shape, np.int64)
    flat = counts.reshape(-1)
    n = cfg.n_grid
    for m in range(len(t.mass)):
        halos = rng.poisson(lam[m])
        if not halos.any():
            continue
        if t.ncen[m] > 0:
            counts += rng.binomial(halos, t.ncen[m])
        if t.nsat[m] > 0:
            nsat = rng.poisson(halos * t.nsat[m]).reshape(-1)
            total = int(nsat.sum())
            if total == 0:
                continue
            src = np.repeat(np.arange(flat.size), nsat)
            cdf = np.cumsum(t.kernels[m].reshape(-1))
            off = np.minimum(np.searchsorted(cdf, rng.random(total) * cdf[-1], side="right"), flat.size - 1)
            src_idx = np.unravel_index(src, cfg.shape)
            off_idx = np.unravel_index(off, cfg.shape)
            dst = np.ravel_multi_index(tuple((a + b) % n for a, b in zip(src_idx, off_idx)), cfg.shape)
            np.add.at(flat, dst, 1)
    return counts.astype(np.int32)


def simulate_fields(n: int, seed: int, cfg: FieldSimConfig) -> tuple[np.ndarray, np.ndarray]:
    """``n`` independent (DM, galaxy counts) pairs: arrays (n, *grid) float32 and int32.

    Field i uses the i-th child of ``SeedSequence(seed)``, so ``simulate_fields(n)`` is a prefix of
    ``simulate_fields(n + k)``.
    """
    children = np.random.SeedSequence(seed).spawn(int(n))
    dm = np.empty((n,) + cfg.shape, np.float32)
    gal = np.empty((n,) + cfg.shape, np.int32)
    for i, ss in enumerate(children):
        rng = np.random.Generator(np.random.PCG64(ss))
        d = simulate_dm(cfg, rng)
        dm[i] = d
        gal[i] = sample_galaxies(d, cfg, rng)
    return dm, gal


# ---------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _tables(cfg_json: str) -> FieldTables:
    from colossus.cosmology import cosmology
    from colossus.halo import concentration, mass_so
    from colossus.lss import bias, mass_function

    cfg = FieldSimConfig.from_dict(json.loads(cfg_json))
    cosmo = cosmology.setCosmology(
        f"gps_field_{abs(hash(cfg_json))}",
        {"flat": True, "H0": 100 * cfg.h, "Om0": cfg.omega_m, "Ob0": cfg.omega_b, "sigma8": cfg.sigma8, "ns": cfg.n_s},
    )
    n_bins = int(round((cfg.log_m_hi - cfg.log_m_lo) / cfg.dlog_m))
    log_m = cfg.log_m_lo + (np.arange(n_bins) + 0.5) * cfg.dlog_m
    mass = 10**log_m
    dndlnm = mass_function.massFunction(mass, cfg.z, mdef="200m", model="tinker08", q_out="dndlnM")
    b = np.asarray(bias.haloBias(mass, cfg.z, "200m", model="tinker10"), float)
    ncen, nsat = hod_mean(mass, cfg.hod)
    n_halo = np.asarray(dndlnm, float) * cfg.dlog_m * np.log(10) * cfg.voxel_volume
    # power spectrum on the FFT grid
    kf = 2 * np.pi * np.fft.fftfreq(cfg.n_grid, d=cfg.cell)
    kk = np.sqrt(sum(g**2 for g in np.meshgrid(*([kf] * cfg.dim), indexing="ij")))
    pk = _projected_pk(cosmo, cfg, kk) if cfg.dim == 2 else _pk3(cosmo, cfg, kk)
    pk.reshape(-1)[0] = 0.0
    sigma_g2 = float(pk.sum() / cfg.box_size**cfg.dim)
    # satellite kernels
    r200 = mass_so.M_to_R(mass, cfg.z, "200m") / 1000.0 * (1 + cfg.z)  # comoving Mpc/h
    conc = np.asarray(concentration.concentration(mass, "200m", cfg.z, model="dutton14"), float)
    rng = np.random.default_rng(20261202)
    kernels = np.zeros((n_bins,) + cfg.shape)
    for m in range(n_bins):
        kernels[m].reshape(-1)[0] = 1.0
        if nsat[m] > 0:
            kernels[m] = _nfw_kernel(cfg, r200[m], conc[m], rng)
    return FieldTables(mass, n_halo, b, ncen, nsat, kernels, pk, sigma_g2)


def _pk3(cosmo, cfg: FieldSimConfig, k: np.ndarray) -> np.ndarray:
    ks = np.where(k > 0, k, 1.0)
    return np.where(k > 0, cosmo.matterPowerSpectrum(ks, cfg.z) * np.exp(-((ks * cfg.smoothing) ** 2)), 0.0)


def _projected_pk(cosmo, cfg: FieldSimConfig, kperp: np.ndarray) -> np.ndarray:
    """P_2D(k) [(Mpc/h)^2] of the slab-averaged field: int dk_z/2pi P_G(sqrt(k^2+k_z^2)) sinc^2(k_z L/2)."""
    kz = np.linspace(0.0, 60.0 / cfg.slab + 10.0 / max(cfg.smoothing, 0.05), 4000)
    w = np.sinc(kz * cfg.slab / 2 / np.pi) ** 2
    uk = np.unique(kperp)
    tab = np.empty(len(uk))
    for i, k in enumerate(uk):
        p = _pk3(cosmo, cfg, np.sqrt(k**2 + kz**2) + (1e-9 if k == 0 else 0.0))
        tab[i] = 2 * np.trapezoid(p * w, kz) / (2 * np.pi)
    return tab[np.searchsorted(uk, kperp)]


def _nfw_kernel(cfg: FieldSimConfig, r200: float, c: float, rng: np.random.Generator) -> np.ndarray:
    """K(offset): distribution of the voxel offset of an NFW satellite of a halo uniform in its voxel."""
    n = cfg.kernel_samples
    x = np.linspace(0.0, c, 2049)
    mu = np.log1p(x) - x / (1 + x)
    r = np.interp(rng.random(n) * mu[-1], mu, x) * r200 / c
    v = rng.standard_normal((n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    pos = rng.random((n, cfg.dim)) + (r[:, None] * v[:, : cfg.dim]) / cfg.cell  # in voxel units
    idx = np.floor(pos).astype(np.int64) % cfg.n_grid
    k = np.zeros(cfg.shape)
    np.add.at(k, tuple(idx.T), 1.0)
    return k / n
