"""IFU observation model: MaNGA hexagonal bundles, PSF (+spaxel) convolution by FFT, S/N, noise and masks.

Section 2.7 of science/simulators.md. Angles in arcsec; surface brightness in mag/arcsec^2. Map stacks are
(N, C, H, W) arrays with the galaxy centre at the array centre.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["BUNDLE_FIBRES", "BUNDLE_RINGS", "bundle_centres", "bundle_radius_arcsec", "choose_bundle",
           "hex_footprint_outside", "kpc_per_arcsec", "z_for_kpc_per_arcsec", "convolve_psf", "snr_from_mu",
           "derived_errors", "MU_SKY_R"]

BUNDLE_FIBRES = (19, 37, 61, 91, 127)              # MaNGA IFU sizes [V]
BUNDLE_RINGS = {19: 2, 37: 3, 61: 4, 91: 5, 127: 6}
FIBRE_PITCH = 2.5                                   # arcsec, 2" cores on 2.5" pitch [D]
MU_SKY_R = 20.8                                     # r-band dark-sky surface brightness [mag/arcsec^2] [design]


def bundle_centres(n_fibres: int, pitch: float = FIBRE_PITCH) -> np.ndarray:
    """Fibre centres (n_fibres, 2) [arcsec] of a hexagonal bundle with 1 + 3k(k+1) fibres."""
    k = BUNDLE_RINGS[int(n_fibres)]
    pts = [(pitch * (i + j / 2), pitch * j * np.sqrt(3) / 2)
           for i in range(-k, k + 1) for j in range(-k, k + 1) if abs(i + j) <= k]
    return np.array(pts)


def bundle_radius_arcsec(n_fibres) -> np.ndarray:
    """Corner radius of the bundle including the 2" fibre core: k * pitch + 1 (6, 8.5, 11, 13.5, 16 arcsec)."""
    k = np.vectorize(lambda n: BUNDLE_RINGS[int(n)])(np.asarray(n_fibres))
    return k * FIBRE_PITCH + 1.0


def choose_bundle(radius_needed_arcsec: np.ndarray) -> np.ndarray:
    """Smallest bundle whose radius covers ``radius_needed_arcsec`` (127 when none does); shape preserved."""
    r = np.asarray(radius_needed_arcsec, dtype=float)
    radii = bundle_radius_arcsec(np.array(BUNDLE_FIBRES))
    idx = np.searchsorted(radii, r)                 # first radius >= r
    return np.array(BUNDLE_FIBRES)[np.minimum(idx, len(BUNDLE_FIBRES) - 1)]


def hex_footprint_outside(x_arcsec: np.ndarray, y_arcsec: np.ndarray, n_fibres: np.ndarray,
                          pitch: float = FIBRE_PITCH) -> np.ndarray:
    """True where a sky position lies outside the union of the bundle's hexagonal fibre cells.

    Equivalent to "nearest fibre centre is not in the bundle": the point is rounded to the nearest node of the
    triangular fibre lattice (cube rounding of axial coordinates), whose hex distance must be <= k.
    ``n_fibres`` broadcasts against the coordinates (e.g. (N, 1, 1) against (N, H, W)).
    """
    k = np.vectorize(lambda n: BUNDLE_RINGS[int(n)])(np.asarray(n_fibres))
    j = y_arcsec / (pitch * np.sqrt(3) / 2)
    i = x_arcsec / pitch - j / 2
    c1, c2, c3 = i, j, -i - j
    r1, r2, r3 = np.round(c1), np.round(c2), np.round(c3)
    d1, d2, d3 = np.abs(r1 - c1), np.abs(r2 - c2), np.abs(r3 - c3)
    fix1 = (d1 > d2) & (d1 > d3)
    fix2 = ~fix1 & (d2 > d3)
    r1 = np.where(fix1, -r2 - r3, r1)
    r2 = np.where(fix2, -r1 - r3, r2)
    dist = np.maximum(np.abs(r1), np.maximum(np.abs(r2), np.abs(r1 + r2)))
    return dist > k


def kpc_per_arcsec(z: np.ndarray) -> np.ndarray:
    """Proper kpc per arcsec at redshift z (Planck18, angular-diameter distance; interpolated table)."""
    zz, kk = _kpc_table()
    return np.interp(np.asarray(z, dtype=float), zz, kk)


def z_for_kpc_per_arcsec(scale: np.ndarray) -> np.ndarray:
    """Inverse of :func:`kpc_per_arcsec` (monotonic for z < 1.5)."""
    zz, kk = _kpc_table()
    return np.interp(np.asarray(scale, dtype=float), kk, zz)


def convolve_psf(planes: np.ndarray, psf_sigma_px: np.ndarray, box_px: np.ndarray | None = None) -> np.ndarray:
    """Convolve (N, C, H, W) planes with a Gaussian PSF (sigma [pixels], per object (N,)) times a square
    top-hat of width ``box_px`` (the spaxel; per object) via real FFTs. Periodic: pad the input beforehand."""
    from scipy import fft

    n, _, h, w = planes.shape
    ky = np.fft.fftfreq(h)[:, None]
    kx = np.fft.rfftfreq(w)[None, :]
    s = np.asarray(psf_sigma_px, dtype=float).reshape(n, 1, 1)
    tf = np.exp(-2.0 * np.pi ** 2 * s ** 2 * (kx ** 2 + ky ** 2))
    if box_px is not None:
        b = np.asarray(box_px, dtype=float).reshape(n, 1, 1)
        tf = tf * np.sinc(b * kx) * np.sinc(b * ky)
    spec = fft.rfft2(planes, axes=(-2, -1), workers=2)
    spec *= tf[:, None].astype(spec.dtype)
    return fft.irfft2(spec, s=(h, w), axes=(-2, -1), workers=2).astype(planes.dtype)


def snr_from_mu(mu_r: np.ndarray, sn_ref: float = 6.0, mu_ref: float = 23.0, mu_sky: float = MU_SKY_R) -> np.ndarray:
    """Continuum S/N per spaxel, S/N = S F / sqrt(F + B), F = 10^(-0.4 (mu - mu_ref)), B the sky term,
    with S set so that S/N = ``sn_ref`` at ``mu_ref`` (MaNGA: ~6 per fibre at 23 mag/arcsec^2 [V])."""
    f = 10.0 ** (-0.4 * (np.asarray(mu_r) - mu_ref))
    b = 10.0 ** (-0.4 * (mu_sky - mu_ref))
    return sn_ref * np.sqrt(1.0 + b) * f / np.sqrt(f + b)


def derived_errors(snr: np.ndarray, sigma_kms: np.ndarray, sigma_inst: float = 72.0) -> dict[str, np.ndarray]:
    """1-sigma errors of the derived maps at spaxel S/N ``snr`` [design, section 2.7]:
    dv = s_eff/SN, dsigma = 0.7 s_eff/SN (s_eff = sqrt(sigma^2 + sigma_inst^2)), dlogSigma* = 0.1 + 1/SN,
    dlog age = d[Z/H] = 0.1 + 1.5/SN, dmu = 1.086/SN, d(g-r) = 0.02 + 1.536/SN."""
    sn = np.maximum(snr, 1e-3)
    s_eff = np.sqrt(np.square(sigma_kms) + sigma_inst ** 2)
    return {"log_sigma_star": 0.1 + 1.0 / sn, "vel": s_eff / sn, "sigma": 0.7 * s_eff / sn,
            "log_age": 0.1 + 1.5 / sn, "metallicity": 0.1 + 1.5 / sn, "mu_r": 1.086 / sn,
            "g_r": 0.02 + 1.536 / sn}


# ---------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _kpc_table() -> tuple[np.ndarray, np.ndarray]:
    from astropy.cosmology import Planck18

    zz = np.linspace(0.001, 1.5, 600)
    kk = Planck18.angular_diameter_distance(zz).to_value("kpc") * np.pi / (180.0 * 3600.0)
    return zz, kk
