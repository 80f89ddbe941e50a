"""IFU simulator galaxy population: per-galaxy latents (section 2.3) drawn from per-galaxy random streams.

Galaxy ``i`` of seed ``s`` always uses ``Generator(PCG64(SeedSequence(s, spawn_key=(i,))))``: outputs are
identical whatever the chunking, and ``simulate(n)`` is a prefix of ``simulate(m > n)``.  The first
``N_UNIFORM`` uniforms of each stream are the galaxy latents; the stream then continues with its noise.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy.special import expit, logit, ndtri

from core.data.simulators import physics as P
from core.data.simulators.ifu_config import IFUSimConfig
from core.data.simulators.ifu_dynamics import (HERNQUIST_RE_OVER_A, Components, r200c_kpc,
                                               stellar_half_mass_radius)
from core.data.simulators.ifu_observe import BUNDLE_FIBRES, bundle_radius_arcsec, choose_bundle, \
    kpc_per_arcsec, z_for_kpc_per_arcsec

__all__ = ["Galaxies", "draw_galaxies", "galaxy_rngs", "components", "shen03_size_kpc", "shen03_sigma_lnr",
           "fex_median", "N_UNIFORM", "BUNDLE_WEIGHTS"]

N_UNIFORM = 24
BUNDLE_WEIGHTS = np.array([2, 4, 4, 2, 5]) / 17.0   # MaNGA IFUs per plate (19, 37, 61, 91, 127) [V]
_LOGMH_GRID = np.linspace(10.0, 15.5, 551)


@dataclass
class Galaxies:
    """Intrinsic per-galaxy properties, all (N,) arrays; normals (N, 3) unit disk normals.

    Masses [Msun] are logs where named ``log_*``; sizes [kpc]; ``quenched`` 0/1; ``bt`` in-situ bulge fraction;
    ``f_ex`` total ex-situ stellar mass fraction; ``logage0``/``logz0`` central in-situ log age [yr] / [Z/H] [dex]
    with gradients per disk R_e; ``coverage`` bundle coverage in R_e units (0 = ideal); ``redshift``;
    ``n_fibres``; ``r_half`` 3-D stellar half-mass radius [kpc].
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

    def __len__(self) -> int:
        return len(self.log_mstar)

    def subset(self, idx) -> "Galaxies":
        return Galaxies(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


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
    if cfg.size_model == "kravtsov13":
        re_gal = 0.015 * r200c_kpc(10.0 ** log_mh) * 10.0 ** (0.2 * g[:, 5])
    else:
        re_gal = shen03_size_kpc(log_mstar, quenched) * np.exp(shen03_sigma_lnr(log_mstar) * g[:, 5])
    # The size relations describe whole galaxies; assigning them to the disk and adding a compact bulge made
    # bulge-dominated galaxies ~2x too small (fix of spec 2.3): R_e,gal ~ (1 - B/T) R_e,d + B/T R_e,b.
    re_disk = re_gal / (1.0 - bt * (1.0 - rb_ratio))

    k_ex = cfg.kex_min + (cfg.kex_max - cfg.kex_min) * u[:, 7]
    eps = cfg.fex_sigma_logit * g[:, 8] + cfg.fex_assembly * assembly + cfg.fex_bt * (bt - 0.5)
    f_ex = cfg.fex_floor + (1.0 - cfg.fex_floor) * expit((log_mstar - cfg.fex_logm50) / cfg.fex_width + eps)
    kappa_b = cfg.bulge_kappa_max * u[:, 9]
    etg = quenched > 0
    logage0 = np.minimum(P.gallazzi_logage(log_mstar) + cfg.age_q_offset * quenched + cfg.age_sigma * g[:, 10], 10.1)
    age_grad = np.where(etg, cfg.age_grad_etg, cfg.age_grad_ltg) + cfg.age_grad_sigma * g[:, 11]
    logz0 = P.mzr_logz(log_mstar) + cfg.z_sigma * g[:, 12]
    z_grad = np.where(etg, cfg.z_grad_etg, cfg.z_grad_ltg) + cfg.z_grad_sigma * g[:, 13]
    ex_logage = cfg.ex_logage_min + (cfg.ex_logage_max - cfg.ex_logage_min) * u[:, 14]
    dlogm = cfg.dlogm_sat_min + (cfg.dlogm_sat_max - cfg.dlogm_sat_min) * u[:, 15]
    ex_logz = P.mzr_logz(log_mstar - dlogm)
    cos_t = 2.0 * u[:, 16] - 1.0
    phi = 2.0 * np.pi * u[:, 17]
    sin_t = np.sqrt(1.0 - cos_t ** 2)
    normals = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t], axis=1)
    gal = Galaxies(galaxy_id=np.asarray(ids, dtype=np.int64), log_mstar=log_mstar, log_mh=log_mh,
                   quenched=quenched, assembly=assembly, bt=bt, re_disk=re_disk, rb_ratio=rb_ratio, k_ex=k_ex,
                   f_ex=f_ex, c200=c200, kappa_b=kappa_b, logage0=logage0, age_grad=age_grad, logz0=logz0,
                   z_grad=z_grad, ex_logage=ex_logage, ex_logz=ex_logz, normals=normals,
                   coverage=np.zeros(n), redshift=np.zeros(n), n_fibres=np.zeros(n, dtype=np.int64),
                   r_half=np.zeros(n))
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
                      r200=r200c_kpc(m_h, h), z0_over_rd=cfg.z0_over_rd, sig_r_over_sig_z=cfg.sigr_over_sigz)


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


def fex_median(log_mstar, cfg: IFUSimConfig | None = None) -> np.ndarray:
    """Design curve of the median total ex-situ fraction (before scatter) [design, section 2.3]."""
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
