"""Empirical galaxy-halo physics shared by the simulators: HMF, SHMRs, quenching, SFR, MZR, gas, SPS tables.

Every function is vectorised over numpy arrays (broadcasting), pure numpy except where colossus is named.
Masses are in Msun (not Msun/h) unless stated; logs are log10. Parameter values and their provenance are
those of ``science/simulators.md`` section 1.4 ([V] verified, [D] derived, [design] tunable).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = [
    "H_PLANCK18", "SIGMA_INST_KMS", "F_BARYON_M18", "M_SUN_R_AB", "Z_SUN", "TABLE_DIR", "SHMR_MODELS",
    "QUENCH_MODELS", "QUENCH_PARAMS",
    "get_cosmology", "cosmic_age_gyr", "hmf_dndlnm", "hmf_prior", "shmr_logmstar", "shmr_scatter",
    "quenched_fraction", "ms_logsfr", "mzr_logz", "gallazzi_logage", "xgass_logfhi", "xgass_logfhi_mstar",
    "bt_mean", "petrosian_c", "petrosian_concentration", "concentration_dm14", "sps_colours", "ssp_colour_ml", "av_mean",
    "bell03_log_ml_r", "baldry04_ur_divide", "verify_tables", "load_table",
]

H_PLANCK18 = 0.6766            # H0 / (100 km/s/Mpc), colossus 'planck18' [V-run]
SIGMA_INST_KMS = 72.0          # MaNGA instrumental dispersion [km/s] (Law+16) [V]
PSF_FWHM_ARCSEC = 2.54         # MaNGA reconstructed PSF FWHM [arcsec] (Law+16) [V]
SPAXEL_ARCSEC = 0.5            # MaNGA spaxel [arcsec] [V]
F_BARYON_M18 = 0.156           # cosmic baryon fraction used with Moster+18 [V]
M_SUN_R_AB = 4.65              # absolute AB magnitude of the Sun in SDSS r (used by the SPS tables)
Z_SUN = 0.02                   # solar metallicity of Gallazzi+05 / BC03
TABLE_DIR = Path(__file__).resolve().parent / "tables"
SHMR_MODELS = ("moster13", "behroozi13", "moster18", "kravtsov18", "tng100", "eagle")
QUENCH_MODELS = ("zm16", "tng100", "eagle")

ShmrModel = Literal["moster13", "behroozi13", "moster18", "kravtsov18", "tng100", "eagle"]

#: Kravtsov, Vikhlinin & Meshcheryakov 2018 (Astron. Lett. 44, 8), Table 3, M200c, fit with scatter ("S"):
#: Behroozi+13 functional form with log M1, log eps, alpha, delta, gamma. BCG stellar masses include the
#: extended envelope, so the high-mass normalisation is ~0.3-0.4 dex above Moster13/Behroozi13 at 10^13.5.
_K18_200C = (11.35, -1.642, -1.779, 4.394, 0.547)
#: TNG100-like (design): Moster-form double power law (log M1, log N, beta, gamma) fitted to the TNG100-1 z=0
#: median in-aperture (2 R_half,*) stellar mass of centrals at fixed log M200c measured in issue 11 against the
#: public group catalogue (0.12 ... 0.56 dex above Moster13 at log M200c 12.25 ... 13.75) and, at 10^11-10^12,
#: to the TNG100 SHMR of Pillepich et al. 2018 (MNRAS 473, 4077, Fig. 9: M*/M200c ~ 0.02 at 10^11.5, ~0.035
#: at 10^12). Residuals of the fit < 0.035 dex at the 8 anchor masses.
_TNG100 = (11.719, -1.544, 1.23, 0.34)
#: EAGLE-like (design): Moster-form shaped after EAGLE Ref-L100N1504 centrals (Schaye et al. 2015, MNRAS 446,
#: 521; Matthee et al. 2017, MNRAS 465, 2381): peak M*/M200c ~ 0.025 near 10^12 (below abundance matching at
#: the knee, where EAGLE's mass function is ~0.2 dex low), high-mass log slope ~ 0.45.
_EAGLE = (11.90, -1.602, 1.35, 0.55)
#: Quenched fraction of centrals vs halo mass, f_q = 1 - exp[-(Mh/Mq)^mu] (Zu & Mandelbaum 2016 form):
#: ``zm16`` their SDSS fit (halotools defaults) [V]; ``tng100`` (design) steep, so that f_q ~ 0.03 at
#: log M* 9.5-10 and ~0.5 at 10^10.5 as for TNG100 centrals (Donnari et al. 2019, MNRAS 485, 4817; issue 11
#: measured 0.02-0.03 at 9.5-10); ``eagle`` (design) a slower rise (EAGLE passive centrals ~0.2 at 10^10,
#: ~0.8 at 10^11; Furlong et al. 2015, Trayford et al. 2016).
QUENCH_PARAMS = {"zm16": (12.2, 0.38), "tng100": (12.1, 2.0), "eagle": (12.4, 0.7)}

# Gallazzi+05 (Kroupa, h=0.7) median log Z/Zsun vs log M* [V]
_G05_Z_LOGM = np.array([8.91, 9.51, 9.91, 10.11, 10.31, 10.51, 10.72, 10.91, 11.11, 11.51, 11.91])
_G05_Z = np.array([-0.60, -0.61, -0.41, -0.23, -0.11, -0.01, 0.04, 0.07, 0.10, 0.13, 0.15])
# Gallazzi+05 median log age [yr] vs log M* [V]
_G05_AGE_LOGM = np.array([8.91, 9.72, 10.11, 10.51, 10.91, 11.31, 11.91])
_G05_AGE = np.array([9.06, 9.23, 9.46, 9.73, 9.87, 9.92, 9.96])
# xGASS (Catinella+18) median log MHI/M* vs log sSFR and vs log M* [V]
_XGASS_SSFR = np.array([-11.97, -11.42, -10.79, -10.19, -9.72])
_XGASS_SSFR_FHI = np.array([-1.69, -1.57, -1.13, -0.51, 0.00])
_XGASS_LOGM = np.array([9.14, 9.44, 9.74, 10.07, 10.34, 10.65, 10.95, 11.20])
_XGASS_LOGM_FHI = np.array([-0.09, -0.32, -0.66, -0.85, -1.28, -1.22, -1.71, -1.79])
# Petrosian C = R90/R50 of exp disk + de Vaucouleurs bulge (R_e,b/R_e,d = 0.3, SDSS eta = 0.2, 2 R_P) vs B/T,
# computed by petrosian_concentration() (reproduces the section-1.4 values 2.29/2.39/2.66/3.06/3.46/3.35) [D]
_PETRO_BT = np.linspace(0.0, 1.0, 21)
_PETRO_C = np.array([2.288, 2.337, 2.39, 2.448, 2.512, 2.583, 2.662, 2.748, 2.844, 2.947, 3.057, 3.172, 3.284,
                     3.384, 3.458, 3.495, 3.494, 3.468, 3.43, 3.39, 3.351])


# -- cosmology and halo mass function -------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def get_cosmology(name: str = "planck18"):
    """The colossus cosmology ``name`` (set as colossus' current cosmology; cached)."""
    from colossus.cosmology import cosmology

    return cosmology.setCosmology(name)


def cosmic_age_gyr(z: float = 0.0, cosmo: str = "planck18") -> float:
    """Age of the Universe at redshift ``z`` [Gyr] (colossus)."""
    return float(get_cosmology(cosmo).age(z))


def hmf_dndlnm(logmh_msun, z: float = 0.0, mdef: str = "200c", model: str = "tinker08",
               cosmo: str = "planck18") -> np.ndarray:
    """Halo mass function dn/dlnM [h^3 Mpc^-3] at log10(M/Msun) (converted to Msun/h for colossus).

    ``model='sheth99'`` requires ``mdef='fof'``. Shape follows ``logmh_msun``.
    """
    from colossus.lss import mass_function

    c = get_cosmology(cosmo)
    m_h = 10.0 ** np.asarray(logmh_msun, dtype=float) * (c.H0 / 100.0)
    return np.asarray(mass_function.massFunction(m_h, z, mdef=mdef, model=model, q_out="dndlnM"), dtype=float)


def hmf_prior(logmh_grid, z: float = 0.0, mdef: str = "200c", model: str = "tinker08",
              cosmo: str = "planck18") -> np.ndarray:
    """HMF prior density p(log Mh) on ``logmh_grid`` [dex^-1], normalised so trapezoid(p, grid) = 1."""
    grid = np.asarray(logmh_grid, dtype=float)
    dn = hmf_dndlnm(grid, z, mdef, model, cosmo)      # dlnM ∝ dlogM: same shape in log M
    return dn / np.trapezoid(dn, grid)


# -- stellar-to-halo mass relations ---------------------------------------------------------------
def shmr_logmstar(logmh, z: float = 0.0, model: ShmrModel = "moster13") -> np.ndarray:
    """Median log10(M*/Msun) of centrals at log10(Mh/Msun).

    * ``moster13`` (M200c): z-evolving Moster+13 (z=0 values [V]; beta/gamma evolution [unverified]).
    * ``behroozi13`` (Mvir): Behroozi+13 (z=0 values [V]; the z-evolution terms [unverified]).
    * ``moster18`` (all centrals): z=0.1 row of Moster+18 times f_b = 0.156 (used at every z).
    * ``kravtsov18`` (M200c): Kravtsov+18 Table 3 (z=0 only; used at every z).
    * ``tng100``, ``eagle`` (M200c): hydrodynamic-simulation-like relations (z=0; see the module constants).
    """
    h = np.asarray(logmh, dtype=float)
    a_z = z / (1.0 + z)
    if model == "moster13":
        log_m1 = 11.590 + 1.195 * a_z
        n = 0.0351 - 0.0247 * a_z
        beta = 1.376 - 0.826 * a_z
        gamma = 0.608 + 0.329 * a_z
        x = h - log_m1
        return h + np.log10(2.0 * n) - np.log10(10.0 ** (-beta * x) + 10.0 ** (gamma * x))
    if model == "behroozi13":
        a = 1.0 / (1.0 + z)
        nu = np.exp(-4.0 * a * a)
        log_eps = -1.777 + (-0.006 * (a - 1.0)) * nu - 0.119 * (a - 1.0)
        log_m1 = 11.514 + (-1.793 * (a - 1.0) - 0.251 * z) * nu
        alpha = -1.412 + 0.731 * (a - 1.0) * nu
        delta = 3.508 + (2.608 * (a - 1.0) - 0.043 * z) * nu
        gamma = 0.316 + (1.319 * (a - 1.0) + 0.279 * z) * nu

        def f(x):
            return (-np.log10(10.0 ** (alpha * x) + 1.0)
                    + delta * np.log10(1.0 + np.exp(x)) ** gamma / (1.0 + np.exp(10.0 ** (-x))))

        return log_eps + log_m1 + f(h - log_m1) - f(0.0)
    if model == "moster18":
        log_m1, eps_n, beta, gamma = 11.80, 0.14, 1.75, 0.57
        x = h - log_m1
        return h + np.log10(F_BARYON_M18 * 2.0 * eps_n) - np.log10(10.0 ** (-beta * x) + 10.0 ** (gamma * x))
    if model == "kravtsov18":
        log_m1, log_eps, alpha, delta, gamma = _K18_200C

        def g(x):
            return (-np.log10(10.0 ** (alpha * x) + 1.0)
                    + delta * np.log10(1.0 + np.exp(x)) ** gamma / (1.0 + np.exp(10.0 ** (-x))))

        return log_eps + log_m1 + g(h - log_m1) - g(0.0)
    if model in ("tng100", "eagle"):
        log_m1, log_n, beta, gamma = _TNG100 if model == "tng100" else _EAGLE
        x = h - log_m1
        return h + np.log10(2.0) + log_n - np.log10(10.0 ** (-beta * x) + 10.0 ** (gamma * x))
    raise ValueError(f"unknown SHMR model {model!r}; expected one of {SHMR_MODELS}")


def shmr_scatter(logmh, model: ShmrModel = "moster13", sigma_default: float = 0.18) -> np.ndarray:
    """Intrinsic SHMR scatter in log M* [dex] at log10(Mh/Msun).

    Constant ``sigma_default`` except for ``moster18``: sigma0 + log10[(Mh/Msigma)^-alpha + 1] with
    Msigma = 10^10.8, sigma0 = 0.16, alpha = 1.0 [V].
    """
    h = np.asarray(logmh, dtype=float)
    if model == "moster18":
        return 0.16 + np.log10(10.0 ** (-1.0 * (h - 10.8)) + 1.0)
    return np.full_like(h, float(sigma_default))


def quenched_fraction(logmh, log_mq: float = 12.2, mu: float = 0.38) -> np.ndarray:
    """Quenched fraction of centrals f_q = 1 - exp[-(Mh/Mq)^mu] (Zu & Mandelbaum 2016) [V].

    The 200m/200c and h conversions are ignored (<= 0.1 dex), as in the design document.
    """
    h = np.asarray(logmh, dtype=float)
    return -np.expm1(-(10.0 ** (mu * (h - log_mq))))


# -- star formation, metallicity, age, gas --------------------------------------------------------
def ms_logsfr(logmstar, z: float = 0.0, cosmo: str = "planck18") -> np.ndarray:
    """Speagle+14 main sequence log SFR [Msun/yr] = (0.84 - 0.026 t) log M* - (6.51 - 0.11 t), t = age [Gyr]."""
    t = cosmic_age_gyr(z, cosmo)
    return (0.84 - 0.026 * t) * np.asarray(logmstar, dtype=float) - (6.51 - 0.11 * t)


def mzr_logz(logmstar) -> np.ndarray:
    """Gallazzi+05 median stellar log Z/Zsun at log M* [Msun] (linear interpolation, constant beyond the ends)."""
    return np.interp(np.asarray(logmstar, dtype=float), _G05_Z_LOGM, _G05_Z)


def gallazzi_logage(logmstar) -> np.ndarray:
    """Gallazzi+05 median (light-weighted) log age [yr] at log M* [Msun] (interpolated, clamped)."""
    return np.interp(np.asarray(logmstar, dtype=float), _G05_AGE_LOGM, _G05_AGE)


def xgass_logfhi(log_ssfr) -> np.ndarray:
    """xGASS median log(MHI/M*) vs log sSFR [yr^-1] (Catinella+18; interpolated, clamped at the ends)."""
    return np.interp(np.asarray(log_ssfr, dtype=float), _XGASS_SSFR, _XGASS_SSFR_FHI)


def xgass_logfhi_mstar(logmstar) -> np.ndarray:
    """xGASS median log(MHI/M*) vs log M* [Msun] (Catinella+18; interpolated, clamped)."""
    return np.interp(np.asarray(logmstar, dtype=float), _XGASS_LOGM, _XGASS_LOGM_FHI)


# -- structure ------------------------------------------------------------------------------------
def bt_mean(logmstar, q) -> np.ndarray:
    """Mean bulge-to-total ratio sigmoid(1.2 (log M* - 10.5) + 2.0 q - 0.8) [design]; q = quenched flag (0/1)."""
    t = 1.2 * (np.asarray(logmstar, dtype=float) - 10.5) + 2.0 * np.asarray(q, dtype=float) - 0.8
    return 1.0 / (1.0 + np.exp(-t))


def petrosian_c(bt) -> np.ndarray:
    """Petrosian concentration R90/R50 of a disk + de Vaucouleurs composite with bulge fraction ``bt`` [D]."""
    return np.interp(np.clip(np.asarray(bt, dtype=float), 0.0, 1.0), _PETRO_BT, _PETRO_C)


def petrosian_concentration(bt: float, re_ratio: float = 0.3, eta: float = 0.2, n_bulge: float = 4.0) -> float:
    """R90/R50 within 2 R_P of an exponential disk + Sersic-``n_bulge`` bulge (bulge fraction ``bt``, R_e ratio
    bulge/disk ``re_ratio``), with the SDSS Petrosian ratio (annulus 0.8-1.25 R over the mean inside R) = ``eta``.

    Slow reference computation (scipy); :func:`petrosian_c` interpolates its precomputed table.
    """
    from scipy.special import gammainc, gammaincinv

    def lum(r):
        out = 0.0
        for frac, n, re in ((1.0 - bt, 1.0, 1.0), (bt, n_bulge, re_ratio)):
            if frac > 0:
                out = out + frac * gammainc(2 * n, gammaincinv(2 * n, 0.5) * (r / re) ** (1.0 / n))
        return out

    r = np.logspace(-4, 3, 200001)
    lr = lum(r)
    ratio = (lum(1.25 * r) - lum(0.8 * r)) / (1.25 ** 2 - 0.8 ** 2) / np.maximum(lr, 1e-300)
    k = int(np.flatnonzero(ratio < eta)[0])
    r_p = np.interp(eta, [ratio[k], ratio[k - 1]], [r[k], r[k - 1]])
    total = lum(2.0 * r_p)
    return float(np.interp(0.9 * total, lr, r) / np.interp(0.5 * total, lr, r))


def concentration_dm14(logmh_msun, z: float = 0.0, cosmo: str = "planck18") -> np.ndarray:
    """Dutton & Maccio 2014 c200c: log c = a + b log(M / 10^12 Msun/h) [V]; input in log10(M/Msun)."""
    h = get_cosmology(cosmo).H0 / 100.0
    a = 0.520 + (0.905 - 0.520) * np.exp(-0.617 * z ** 1.21)
    b = -0.101 + 0.026 * z
    logm_h = np.asarray(logmh_msun, dtype=float) + np.log10(h)
    return 10.0 ** (a + b * (logm_h - 12.0))


# -- colours and mass-to-light from the shipped SPS tables ----------------------------------------
def av_mean(logmstar, q) -> np.ndarray:
    """Mean V-band attenuation [mag]: 0.3 + 0.3 (log M* - 10) clipped to [0, 1.2] if star-forming, 0.1 if quenched."""
    sf = np.clip(0.3 + 0.3 * (np.asarray(logmstar, dtype=float) - 10.0), 0.0, 1.2)
    return np.where(np.asarray(q) > 0, 0.1, sf)


def sps_colours(log_ssfr, logz, av) -> dict[str, np.ndarray]:
    """SDSS colours (observed frame z = 0.05, AB) and log M*/L_r [Msun/Lsun] of a 10-Gyr tau model.

    Interpolated (trilinear, clipped to the table edges) in log sSFR [yr^-1] (-13 .. -9), log Z/Zsun
    (-0.7 .. 0.4) and Calzetti A_V [mag] (0 .. 1.2). Returns ``{"u_g", "g_r", "r_i", "i_z", "log_ml_r"}``.
    """
    return _interp_table("sps_tau.csv", (log_ssfr, logz, av))


def ssp_colour_ml(log_age_yr, logz, av=0.0) -> tuple[np.ndarray, np.ndarray]:
    """(g - r [mag], log M*/L_r [Msun/Lsun]) of a single-age burst at log age [yr] (8 .. 10.1), log Z/Zsun, A_V."""
    out = _interp_table("sps_ssp.csv", (log_age_yr, logz, av))
    return out["g_r"], out["log_ml_r"]


def bell03_log_ml_r(g_r, kroupa: bool = True) -> np.ndarray:
    """Bell+03 colour-M/L relation log(M/L_r) = -0.306 + 1.097 (g - r) (diet Salpeter; -0.15 dex for Kroupa) [V]."""
    return -0.306 + 1.097 * np.asarray(g_r, dtype=float) - (0.15 if kroupa else 0.0)


def baldry04_ur_divide(abs_mag_r) -> np.ndarray:
    """Baldry+04 colour-bimodality divide (u - r) = 2.06 - 0.244 tanh[(M_r + 20.07) / 1.09] [V]."""
    return 2.06 - 0.244 * np.tanh((np.asarray(abs_mag_r, dtype=float) + 20.07) / 1.09)


def load_table(name: str) -> tuple[tuple[str, ...], np.ndarray]:
    """Read a shipped CSV table (``#`` comment lines, then a header): (column names, (rows, cols) array)."""
    return _load_csv(name)


def verify_tables() -> dict[str, bool]:
    """Check every shipped table against ``tables/checksums.json`` (sha256): ``{file: ok}``."""
    sums = json.loads((TABLE_DIR / "checksums.json").read_text())
    return {name: hashlib.sha256((TABLE_DIR / name).read_bytes()).hexdigest() == digest
            for name, digest in sums.items()}


# ---------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _load_csv(name: str) -> tuple[tuple[str, ...], np.ndarray]:
    lines = [ln for ln in (TABLE_DIR / name).read_text().splitlines() if ln and not ln.startswith("#")]
    header = tuple(lines[0].split(","))
    data = np.array([[float(v) for v in ln.split(",")] for ln in lines[1:]])
    return header, data


@functools.lru_cache(maxsize=None)
def _interpolators(name: str):
    from scipy.interpolate import RegularGridInterpolator

    header, data = _load_csv(name)
    axes = [np.unique(data[:, k]) for k in range(3)]
    shape = tuple(len(a) for a in axes)
    if len(data) != np.prod(shape):
        raise ValueError(f"{name}: table is not a full regular grid {shape}")
    order = np.lexsort((data[:, 2], data[:, 1], data[:, 0]))
    data = data[order]
    interps = {col: RegularGridInterpolator(axes, data[:, 3 + j].reshape(shape), method="linear")
               for j, col in enumerate(header[3:])}
    return axes, interps


def _interp_table(name: str, coords) -> dict[str, np.ndarray]:
    axes, interps = _interpolators(name)
    arrays = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords])
    shape = arrays[0].shape
    pts = np.stack([np.clip(a.ravel(), ax[0], ax[-1]) for a, ax in zip(arrays, axes)], axis=-1)
    return {col: f(pts).reshape(shape) for col, f in interps.items()}
