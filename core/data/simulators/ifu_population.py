"""IFU simulator galaxy population: per-galaxy latents (section 2.3) drawn from per-galaxy random streams.

Galaxy ``i`` of seed ``s`` always uses ``Generator(PCG64(SeedSequence(s, spawn_key=(i,))))``: outputs are
identical whatever the chunking, and ``simulate(n)`` is a prefix of ``simulate(m > n)``.  The first
``N_UNIFORM`` uniforms of each stream are the galaxy latents; the stream then continues with its noise.

Calibrated on the simulator's OUTPUT (docs/science/ifu_calibration.md, tests/core/data/test_ifu_outputs.py): sizes
through the van der Wel+14 z~0.25 medians (whole-galaxy r-band half-light R_e), the median ex-situ fraction between
TNG100 and EAGLE (Rodriguez-Gomez+16, Qu+17, Davison+20, Pillepich+18) with ~0.3 dex scatter, Gallazzi+05 ages at
R_e with Goddard+17 gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from scipy.special import expit, logit, ndtri

from core.data.simulators import physics as P
from core.data.simulators.ifu_config import IFUSimConfig
from core.data.simulators.ifu_dynamics import (HERNQUIST_RE_OVER_A, Components, r200c_kpc,
                                               stellar_half_mass_radius)
from core.data.simulators.ifu_observe import BUNDLE_FIBRES, bundle_radius_arcsec, choose_bundle, \
    kpc_per_arcsec, z_for_kpc_per_arcsec

__all__ = ["Galaxies", "draw_galaxies", "galaxy_rngs", "components", "shen03_size_kpc", "shen03_sigma_lnr",
           "vdw14_size_kpc", "projected_half_mass_ratio", "projected_half_light_ratio", "fex_median", "N_UNIFORM", "BUNDLE_WEIGHTS",
           "LOGAGE_MAX", "LOGAGE_MIN", "log_cosmic_age_yr", "imf_alpha", "zahid16_log_sigma"]

N_UNIFORM = 24
BUNDLE_WEIGHTS = np.array([2, 4, 4, 2, 5]) / 17.0   # MaNGA IFUs per plate (19, 37, 61, 91, 127) [V]
_LOGMH_GRID = np.linspace(10.0, 15.5, 551)
#: Oldest in-situ log age [yr]: the SPS table edge (10.1), below log10(age of the Universe) = 10.14 (Planck18)
LOGAGE_MAX = 10.1
LOGAGE_MIN = 8.0                                     # youngest SPS table age [yr]


def log_cosmic_age_yr(z) -> np.ndarray:
    """log10 of the age of the Universe [yr] at redshift z (Planck18; 10.139 at z = 0, 10.073 at z = 0.15)."""
    zz, ages = _age_table()
    return np.interp(np.asarray(z, dtype=float), zz, ages)


@lru_cache(maxsize=1)
def _age_table() -> tuple[np.ndarray, np.ndarray]:
    zz = np.linspace(0.0, 1.0, 101)
    return zz, np.log10(np.array([P.cosmic_age_gyr(float(x)) for x in zz]) * 1e9)


@dataclass
class Galaxies:
    """Intrinsic per-galaxy properties, all (N,) arrays; normals (N, 3) unit disk normals.

    Masses [Msun] are logs where named ``log_*``; sizes [kpc]; ``quenched`` 0/1; ``bt`` in-situ bulge fraction;
    ``f_ex`` total ex-situ stellar mass fraction; ``logage0``/``logz0`` central in-situ log age [yr] / [Z/H] [dex]
    with gradients per disk R_e; ``coverage`` bundle coverage in R_e units (0 = ideal); ``redshift``;
    ``n_fibres``; ``r_half`` 3-D stellar half-mass radius [kpc]; ``re_gal`` the drawn whole-galaxy R_e [kpc]
    (gradients are per R_e,gal; None: per R_e,disk, as in reference mode); ``imf_eps`` standard normal of the
    IMF-factor scatter (None: 0).
    """

    galaxy_id: np.ndarray
    log_mstar: np.ndarray
    log_mh: np.ndarray
    quenched: np.ndarray
    assembly: np.ndarray
    bt: np.ndarray
    re_disk: np.ndarray
    rb_ratio: np.ndarray
    k_ex: np.ndarray
    f_ex: np.ndarray
    c200: np.ndarray
    kappa_b: np.ndarray
    logage0: np.ndarray
    age_grad: np.ndarray
    logz0: np.ndarray
    z_grad: np.ndarray
    ex_logage: np.ndarray
    ex_logz: np.ndarray
    normals: np.ndarray
    coverage: np.ndarray
    redshift: np.ndarray
    n_fibres: np.ndarray
    r_half: np.ndarray
    re_gal: np.ndarray | None = None
    imf_eps: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.log_mstar)

    def subset(self, idx) -> "Galaxies":
        return Galaxies(**{f.name: (None if getattr(self, f.name) is None else getattr(self, f.name)[idx])
                           for f in fields(self)})


def galaxy_rngs(seed: int, start: int, stop: int) -> list[np.random.Generator]:
    """One independent Generator per galaxy index in [start, stop)."""
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(i,))))
            for i in range(start, stop)]


def draw_galaxies(rngs: list[np.random.Generator], ids: np.ndarray, config: IFUSimConfig) -> Galaxies:
    """Draw the latents of ``len(rngs)`` galaxies (each uses the first N_UNIFORM uniforms of its stream)."""
    cfg = config
    u = np.stack([r.random(N_UNIFORM) for r in rngs]) if rngs else np.zeros((0, N_UNIFORM))
    g = ndtri(np.clip(u, 1e-12, 1 - 1e-12))            # standard normals from the same uniforms
    n = len(u)
    log_mstar = cfg.logms_min + (cfg.logms_max - cfg.logms_min) * u[:, 0]
    log_mh, quenched = _invert_shmr(log_mstar, u[:, 1], u[:, 2], cfg)
    assembly = g[:, 3]
    c200 = P.concentration_dm14(log_mh, 0.0) * 10.0 ** (cfg.c_scatter * assembly)
    bt = expit(logit(np.clip(P.bt_mean(log_mstar, quenched), 1e-4, 1 - 1e-4)) + cfg.bt_sigma_logit * g[:, 4])
    rb_ratio = cfg.bulge_re_min + (cfg.bulge_re_max - cfg.bulge_re_min) * u[:, 6]
    k_ex = cfg.kex_min + (cfg.kex_max - cfg.kex_min) * u[:, 7]
    # f_ex: scatter in logit about the median curve (TNG100 / EAGLE spread ~0.3 dex at log M* 10-11; the earlier
    # scatter inside a floored sigmoid gave < 0.1 dex at log M* < 10.3), see docs/science/ifu_calibration.md
    eps = cfg.fex_sigma_logit * g[:, 8] + cfg.fex_assembly * assembly + cfg.fex_bt * (bt - 0.5)
    f_ex = expit(logit(fex_median(log_mstar, cfg)) + eps)
    if cfg.size_model == "kravtsov13":
        re_gal = 0.015 * r200c_kpc(10.0 ** log_mh) * 10.0 ** (0.2 * g[:, 5])
    elif cfg.size_model == "shen03":
        re_gal = shen03_size_kpc(log_mstar, quenched) * np.exp(shen03_sigma_lnr(log_mstar) * g[:, 5])
    else:
        re_gal = vdw14_size_kpc(log_mstar, quenched) * np.exp(shen03_sigma_lnr(log_mstar) * g[:, 5])
    if cfg.size_model != "vdw14":
        # earlier rule (kept for the shen03 / kravtsov13 options): R_e,gal ~ (1 - B/T) R_e,d + B/T R_e,b
        re_disk = re_gal / (1.0 - bt * (1.0 - rb_ratio))
    kappa_b = cfg.bulge_kappa_max * u[:, 9]
    etg = quenched > 0
    age_grad = np.where(etg, cfg.age_grad_etg, cfg.age_grad_ltg) + cfg.age_grad_sigma * g[:, 11]
    # the Gallazzi+05 (fibre, ~R_e) age is the age at R_e; the centre is extrapolated inwards along the gradient
    # quenched galaxies are older than the Gallazzi median at fixed mass only where star-forming galaxies pull that
    # median down: the offset fades to 0 at log M* >= 11 (the median there is set by quenched galaxies; with the
    # full offset massive early types hit the SPS age ceiling and their rendered gradient vanished)
    q_off = cfg.age_q_offset * np.clip(11.0 - log_mstar, 0.0, 1.0)
    age_re = P.gallazzi_logage(log_mstar) + q_off * quenched + cfg.age_sigma * g[:, 10]
    logage0 = np.minimum(age_re - age_grad, LOGAGE_MAX)
    logz0 = P.mzr_logz(log_mstar) + cfg.z_sigma * g[:, 12]
    z_grad = np.where(etg, cfg.z_grad_etg, cfg.z_grad_ltg) + cfg.z_grad_sigma * g[:, 13]
    ex_logage = cfg.ex_logage_min + (cfg.ex_logage_max - cfg.ex_logage_min) * u[:, 14]
    dlogm = cfg.dlogm_sat_min + (cfg.dlogm_sat_max - cfg.dlogm_sat_min) * u[:, 15]
    ex_logz = P.mzr_logz(log_mstar - dlogm)
    if cfg.size_model == "vdw14":
        # the relation is the whole galaxy's projected half-LIGHT radius: every component radius is a multiple of
        # R_e,disk, so divide by the face-on projected half-light radius of the mixture per unit R_e,disk (the
        # old rule ignored the extended ex-situ component and the M/L gradients: massive galaxies came out
        # 0.3-0.5 dex too big, low-mass early types 0.2-0.3 dex too small)
        ratio = projected_half_mass_ratio(bt, rb_ratio, k_ex, f_ex)
        for _ in range(8):   # damped fixed point (the gradients are per R_e,gal; undamped it oscillates for B/T > 0.8)
            ratio = np.sqrt(ratio * projected_half_light_ratio(bt, rb_ratio, k_ex, f_ex, ratio, logage0, age_grad,
                                                               logz0, z_grad, ex_logage, ex_logz))
        re_disk = re_gal / ratio
    cos_t = 2.0 * u[:, 16] - 1.0
    phi = 2.0 * np.pi * u[:, 17]
    sin_t = np.sqrt(1.0 - cos_t ** 2)
    normals = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)
    gal = Galaxies(galaxy_id=np.asarray(ids, dtype=np.int64), log_mstar=log_mstar, log_mh=log_mh,
                   quenched=quenched, assembly=assembly, bt=bt, re_disk=re_disk, rb_ratio=rb_ratio, k_ex=k_ex,
                   f_ex=f_ex, c200=c200, kappa_b=kappa_b, logage0=logage0, age_grad=age_grad, logz0=logz0,
                   z_grad=z_grad, ex_logage=ex_logage, ex_logz=ex_logz, normals=normals,
                   coverage=np.zeros(n), redshift=np.zeros(n), n_fibres=np.zeros(n, dtype=np.int64),
                   r_half=np.zeros(n), re_gal=re_gal, imf_eps=g[:, 20])
    gal.r_half = stellar_half_mass_radius(components(gal, cfg))
    _observing_setup(gal, u[:, 18], u[:, 19], cfg)
    return gal


def components(gal: Galaxies, cfg: IFUSimConfig) -> Components:
    """The mass model (section 2.4) of the galaxies: disk + Hernquist bulge + Hernquist ex-situ + NFW halo."""
    m_star = 10.0 ** gal.log_mstar
    m_in = (1.0 - gal.f_ex) * m_star
    m_h = 10.0 ** gal.log_mh
    h = P.get_cosmology("planck18").H0 / 100.0
    return Components(m_disk=(1.0 - gal.bt) * m_in, r_d=gal.re_disk / 1.678, m_bulge=gal.bt * m_in,
                      a_b=gal.rb_ratio * gal.re_disk / HERNQUIST_RE_OVER_A, m_ex=gal.f_ex * m_star,
                      a_ex=gal.k_ex * gal.re_disk / HERNQUIST_RE_OVER_A, m_h=m_h, c200=gal.c200,
                      r200=r200c_kpc(m_h, h), z0_over_rd=cfg.z0_over_rd, sig_r_over_sig_z=cfg.sigr_over_sigz,
                      imf_alpha=imf_alpha(gal.log_mstar, gal.quenched, gal.imf_eps, cfg), contraction=cfg.contraction)


def zahid16_log_sigma(log_mstar) -> np.ndarray:
    """Zahid+16 (ApJ 832, 203) SDSS quiescent M*-sigma relation: broken power law at M_b = 10^10.26, sigma_b = 118
    km/s, slopes 0.403 below / 0.293 above (slope ~0.3 above 10^10.3 [V, abstract]; constants [R])."""
    x = np.asarray(log_mstar, dtype=float)
    return np.log10(118.0) + np.where(x < 10.26, 0.403, 0.293) * (x - 10.26)


def imf_alpha(log_mstar, quenched, eps=None, cfg: IFUSimConfig | None = None) -> np.ndarray:
    """True / nominal (Kroupa) stellar mass of each galaxy's stars in the dynamics (N,).

    Quenched galaxies: log alpha = max(imf_slope log(sigma_ref / 200 km/s) + imf_norm, 0) + imf_scatter eps, with
    sigma_ref = the Zahid+16 quiescent sigma at the galaxy's M*. Posacki+15 (ATLAS3D + SLACS, joint lensing and
    Jeans dynamics) found log[(M/L)_dyn,* / (M/L)_Salp] = 0.38 log(sigma_e / 200) - 0.06 [coefficients R], "from
    Kroupa to Salpeter between sigma_e ~ 90 and 270 km/s" [V, abstract]; Kroupa is 0.19 dex below Salpeter in that
    calibration, hence imf_norm = 0.13 (alpha = 1.1 / 1.26 / 1.42 at log M* 10.25 / 10.75 / 11.25). Cappellari+13
    (ATLAS3D XX) find the same trend with sigma (bulge fraction); Conroy & van Dokkum 2012 from spectral features.
    Star-forming galaxies keep alpha = 1 (disk IMF Milky-Way-like). ``imf_model="none"``: alpha = 1 everywhere.
    """
    cfg = cfg or IFUSimConfig()
    lm = np.asarray(log_mstar, dtype=float)
    if cfg.imf_model == "none":
        return np.ones_like(lm)
    mean = np.maximum(cfg.imf_slope * (zahid16_log_sigma(lm) - np.log10(200.0)) + cfg.imf_norm, 0.0)
    eps = np.zeros_like(lm) if eps is None else np.asarray(eps, dtype=float)
    return np.where(np.asarray(quenched) > 0, 10.0 ** (mean + cfg.imf_scatter * eps), 1.0)


def shen03_size_kpc(log_mstar, quenched) -> np.ndarray:
    """Shen+03 median r-band R50 [kpc]: late 0.1 M^0.14 (1 + M/3.98e10)^0.25; early 2.88e-6 M^0.56 [V]."""
    m = 10.0 ** np.asarray(log_mstar, dtype=float)
    late = 0.1 * m ** 0.14 * (1.0 + m / 3.98e10) ** 0.25
    early = 2.88e-6 * m ** 0.56
    return np.where(np.asarray(quenched) > 0, early, late)


def shen03_sigma_lnr(log_mstar) -> np.ndarray:
    """Shen+03 scatter of ln R50: 0.34 + 0.13 / (1 + (M / 3.98e10)^2) [V]."""
    m = 10.0 ** np.asarray(log_mstar, dtype=float)
    return 0.34 + 0.13 / (1.0 + (m / 3.98e10) ** 2)


# van der Wel+14 (3D-HST+CANDELS, ApJ 788, 28) median log R_e [kpc] at z ~ 0.25 (0 < z < 0.5 bin), star-forming
# ("late") and quiescent ("early") galaxies; science/simulators.md T20 [V]. Outside these masses the medians
# continue with the slopes named in vdw14_size_kpc.
_VDW_LATE = ((10.25, 0.66), (10.75, 0.83))
_VDW_EARLY = ((10.25, 0.38), (10.75, 0.67), (11.25, 0.76))


def vdw14_size_kpc(log_mstar, quenched) -> np.ndarray:
    """Median whole-galaxy half-light R_e [kpc] through the van der Wel+14 z~0.25 medians (T20) [V].

    Late: 0.66 / 0.83 dex at log M* 10.25 / 10.75, slope 0.22 below (vdW14 abstract: alpha = 0.22 for late types
    above 3e9 Msun) and 0.34 above. Early: 0.38 / 0.67 / 0.76 at 10.25 / 10.75 / 11.25, slope 0.22 below 10.25
    (low-mass quiescent galaxies follow the shallow relation: vdW14 fit the steep early-type slope only above
    2e10 Msun) and 0.56 above 11.25 (Shen+03 early-type slope). These sizes are 0.15-0.2 dex above Shen+03's
    Petrosian R50 at log M* <= 10.75 and equal to them at 11.25 for early types.
    """
    x = np.asarray(log_mstar, dtype=float)

    def line(pts, lo_slope, hi_slope):
        xs, ys = np.array(pts).T
        y = np.interp(x, xs, ys)
        y = np.where(x < xs[0], ys[0] + lo_slope * (x - xs[0]), y)
        return np.where(x > xs[-1], ys[-1] + hi_slope * (x - xs[-1]), y)

    late = line(_VDW_LATE, 0.22, 0.34)
    early = line(_VDW_EARLY, 0.22, 0.56)
    return 10.0 ** np.where(np.asarray(quenched) > 0, early, late)


def projected_half_mass_ratio(bt, rb_ratio, k_ex, f_ex) -> np.ndarray:
    """Face-on projected half-mass radius of disk + Hernquist bulge + Hernquist ex-situ per unit R_e,disk.

    Disk: M(<R) = 1 - (1 + x) e^-x, x = 1.678 R / R_e,d; Hernquist (Hernquist 1990 eq. 37): M_p(<R)/M =
    s^2 (X(s) - 1) / (1 - s^2), s = R / a, a = R_e / 1.815. Returns (N,) by interpolation on a log grid.
    """
    bt, rb, kx, fx = (np.asarray(v, dtype=float)[:, None] for v in (bt, rb_ratio, k_ex, f_ex))
    r = np.logspace(-2.5, 2.5, 801)[None, :]
    x = 1.678 * r
    m_disk = 1.0 - (1.0 + x) * np.exp(-x)
    frac = (1 - fx) * ((1 - bt) * m_disk + bt * _hernquist_proj(r / (rb / 1.815))) + fx * _hernquist_proj(
        r / (kx / 1.815))
    i = np.clip(np.argmax(frac >= 0.5, axis=1), 1, r.shape[1] - 1)
    rows = np.arange(len(i))
    f0, f1 = frac[rows, i - 1], frac[rows, i]
    t = (0.5 - f0) / np.maximum(f1 - f0, 1e-12)
    lr = np.log(r[0, i - 1]) + t * (np.log(r[0, i]) - np.log(r[0, i - 1]))
    return np.exp(lr)


def projected_half_light_ratio(bt, rb_ratio, k_ex, f_ex, re_ratio, logage0, age_grad, logz0, z_grad, ex_logage,
                               ex_logz) -> np.ndarray:
    """Face-on projected r-band half-light radius per unit R_e,disk, with the in-situ M/L_r gradient (ages and
    [Z/H] linear in R / R_e,gal, R_e,gal = re_ratio R_e,disk) and a single-age ex-situ population (SSP table)."""
    col = [np.asarray(v, dtype=float)[:, None] for v in (bt, rb_ratio, k_ex, f_ex, re_ratio, logage0, age_grad,
                                                          logz0, z_grad, ex_logage, ex_logz)]
    bt, rb, kx, fx, rr, a0, ag, z0, zg, xa, xz = col
    r = np.logspace(-2.5, 2.5, 151)[None, :]
    k = 1.678
    surf_d = (1 - fx) * (1 - bt) * k ** 2 / (2 * np.pi) * np.exp(-k * r)
    surf_b = (1 - fx) * bt * _hernquist_surf(r, rb / 1.815)
    surf_x = fx * _hernquist_surf(r, kx / 1.815)
    x = r / rr
    _, ml_in = P.ssp_colour_ml(np.clip(a0 + ag * x, 8.0, LOGAGE_MAX), np.clip(z0 + zg * x, -0.7, 0.4))
    _, ml_ex = P.ssp_colour_ml(xa, xz)
    lum = (surf_d + surf_b) / 10.0 ** np.asarray(ml_in) + surf_x / 10.0 ** np.asarray(ml_ex)
    ring = lum * r ** 2                                    # d L / d ln r (2 pi dropped)
    cum = np.cumsum(0.5 * (ring[:, 1:] + ring[:, :-1]), axis=1)
    frac = np.concatenate([np.zeros((len(cum), 1)), cum], axis=1) / cum[:, -1:]
    i = np.clip(np.argmax(frac >= 0.5, axis=1), 1, r.shape[1] - 1)
    rows = np.arange(len(i))
    f0, f1 = frac[rows, i - 1], frac[rows, i]
    t = (0.5 - f0) / np.maximum(f1 - f0, 1e-12)
    return np.exp(np.log(r[0, i - 1]) + t * (np.log(r[0, i]) - np.log(r[0, i - 1])))


def _hernquist_surf(r: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Projected surface density of a unit-mass Hernquist sphere (Hernquist 1990 eq. 32-33) at radius r."""
    s = np.maximum(r / a, 1e-8)
    x = np.ones_like(s)
    lo, hi = s < 1.0 - 1e-4, s > 1.0 + 1e-4
    x[lo] = np.arccosh(1.0 / s[lo]) / np.sqrt(1.0 - s[lo] ** 2)
    x[hi] = np.arccos(1.0 / s[hi]) / np.sqrt(s[hi] ** 2 - 1.0)
    out = np.full(s.shape, 2.0 / 15.0)                      # limit at s = 1
    mid = lo | hi
    out[mid] = ((2.0 + s[mid] ** 2) * x[mid] - 3.0) / (1.0 - s[mid] ** 2) ** 2
    return out / (2.0 * np.pi * np.broadcast_to(a, s.shape) ** 2)


def _hernquist_proj(s: np.ndarray) -> np.ndarray:
    """Projected enclosed mass fraction of a Hernquist sphere at R = s a (Hernquist 1990 eq. 37)."""
    s = np.maximum(s, 1e-8)
    out = np.full(s.shape, 1.0 / 3.0)
    lo, hi = s < 1.0 - 1e-6, s > 1.0 + 1e-6
    xl = np.arccosh(1.0 / s[lo]) / np.sqrt(1.0 - s[lo] ** 2)
    xh = np.arccos(1.0 / s[hi]) / np.sqrt(s[hi] ** 2 - 1.0)
    out[lo] = s[lo] ** 2 * (xl - 1.0) / (1.0 - s[lo] ** 2)
    out[hi] = s[hi] ** 2 * (xh - 1.0) / (1.0 - s[hi] ** 2)
    return out


def fex_median(log_mstar, cfg: IFUSimConfig | None = None) -> np.ndarray:
    """Median total ex-situ fraction: floor + (1 - floor) sigmoid((log M* - m50) / width); the default (0.03,
    11.5, 0.45) gives 0.035 / 0.065 / 0.13 / 0.27 / 0.52 / 0.76 at log M* 9 / 10 / 10.5 / 11 / 11.5 / 12, between
    TNG100 and EAGLE (docs/science/ifu_calibration.md: Rodriguez-Gomez+16, Qu+17, Davison+20, Pillepich+18)."""
    cfg = cfg or IFUSimConfig()
    return cfg.fex_floor + (1.0 - cfg.fex_floor) * expit((np.asarray(log_mstar) - cfg.fex_logm50) / cfg.fex_width)


# ---------------------------------------------------------------------------------------------------
def _invert_shmr(log_mstar: np.ndarray, u_h: np.ndarray, u_q: np.ndarray, cfg: IFUSimConfig):
    """Sample (log Mh, q) from p(h, q | M*) ∝ p_HMF(h) P(q|h) N(M*; SHMR(h) - delta_q q, sigma) on a grid."""
    grid = _LOGMH_GRID
    prior = P.hmf_prior(grid, 0.0)
    fq = P.quenched_fraction(grid, cfg.fq_log_mq, cfg.fq_mu)
    mu = P.shmr_logmstar(grid, 0.0, cfg.shmr)
    like = []
    for q, pq in ((0, 1.0 - fq), (1, fq)):
        z = (log_mstar[:, None] - (mu[None, :] - cfg.delta_q * q)) / cfg.sigma_shmr
        like.append(prior[None] * pq[None] * np.exp(-0.5 * z * z))
    w = np.stack(like, axis=-1)                          # (N, n_h, 2)
    ph = w.sum(-1)
    cdf = np.cumsum(ph, axis=1)
    cdf /= cdf[:, -1:]
    k = np.array([np.searchsorted(c, x) for c, x in zip(cdf, u_h)], dtype=int).clip(0, len(grid) - 1)
    step = grid[1] - grid[0]
    prev = np.where(k > 0, cdf[np.arange(len(k)), k - 1], 0.0)
    frac = (u_h - prev) / np.maximum(cdf[np.arange(len(k)), k] - prev, 1e-300)
    log_mh = grid[k] + (np.clip(frac, 0, 1) - 0.5) * step
    pq1 = w[np.arange(len(k)), k, 1] / np.maximum(ph[np.arange(len(k)), k], 1e-300)
    return log_mh, (u_q < pq1).astype(np.int64)


def _observing_setup(gal: Galaxies, u_cov: np.ndarray, u_bundle: np.ndarray, cfg: IFUSimConfig) -> None:
    """Coverage (1.5 / 2.5 R_e), bundle and redshift: the galaxy fills its bundle (Wake+17), z clipped."""
    if cfg.survey_mode == "primary":
        cov = np.full(len(gal), 1.5)
    elif cfg.survey_mode == "secondary":
        cov = np.full(len(gal), 2.5)
    else:
        cov = np.where(u_cov < cfg.primary_fraction, 1.5, 2.5)
    bundles = np.array(BUNDLE_FIBRES)[np.searchsorted(np.cumsum(BUNDLE_WEIGHTS), u_bundle).clip(0, 4)]
    scale = cov * gal.r_half / bundle_radius_arcsec(bundles)          # kpc / arcsec that fills the bundle
    z = np.clip(z_for_kpc_per_arcsec(scale), cfg.z_min, cfg.z_max)
    gal.redshift = z
    gal.n_fibres = choose_bundle(cov * gal.r_half / kpc_per_arcsec(z)).astype(np.int64)
    gal.coverage = np.where(cfg.survey_mode == "ideal", 0.0, cov)
