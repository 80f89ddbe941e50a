"""Observable summary statistics of the central_mass task (the seed's Table 1, from images and kinematic maps).

Per object, from the r-band surface-brightness image ``mu`` [mag/arcsec2] (+ g-r map) and the v / sigma maps:

* ``abs_mag_r`` [mag, AB]: -2.5 log10 of the summed r-band luminosity of the unmasked image pixels plus the fitted
  Sersic model's light in the masked pixels of the field (a model-completed magnitude), with the
  (1+z)^4 surface-brightness dimming removed: Sigma_L [Lsun/pc2] = 10^(-0.4 (mu - 10 log10(1+z) - M_sun,r - 21.572)),
  L = sum Sigma_L * (1000 * pixel_kpc)^2, M_r = M_sun,r - 2.5 log10 L (M_sun,r = 4.65 AB). No K-correction.
* ``g_r`` [mag]: integrated colour -2.5 log10(sum F_r 10^(-0.4 (g-r)) / sum F_r).
* ``axis_ratio`` b/a and position angle: iterated second moments of the light inside an elliptical aperture of
  semi-major axis 2 R_e (Allgood-like iteration in 2-D).
* ``re_kpc``: elliptical half-light semi-major axis from the curve of growth of the image (non-parametric).
* ``sersic_n``: least-squares fit (scipy) of log10 I(R) = log10 I_e - b_n/ln10 [(R/R_e)^(1/n) - 1] to the
  elliptical-annulus median profile, with b_n from gammaincinv(2n, 1/2) (exact); the PSF is not modelled, so
  ``r_min`` can exclude the core; n is bounded to [0.3, 10].
* ``sigma_e`` [km/s]: luminosity-weighted sqrt(<V^2 + sigma^2>) inside the R_e ellipse (ATLAS3D convention), with
  the r-band flux resampled onto the kinematic grid.
* ``lambda_re``: Emsellem+07 spin sum F R |V| / sum F R sqrt(V^2 + sigma^2) inside the R_e ellipse (R elliptical).

All functions take plain arrays so that real maps (MaNGA) and simulated ones go through the same code.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

__all__ = ["FEATURES", "FEATURE_UNITS", "summary_statistics", "luminosity_map", "abs_mag", "integrated_colour",
           "second_moments", "half_light_radius", "sersic_profile", "fit_sersic", "sigma_e", "lambda_re",
           "pearson_matrix", "M_SUN_R_AB"]

M_SUN_R_AB = 4.65
#: default LightGBM feature set (Table 1 observables; re_kpc is added because a dynamical mass needs a size)
FEATURES = ("abs_mag_r", "g_r", "sersic_n", "axis_ratio", "sigma_e", "lambda_re", "log_re_kpc")
FEATURE_UNITS = {"abs_mag_r": "mag", "g_r": "mag", "sersic_n": "", "axis_ratio": "", "sigma_e": "km / s",
                 "lambda_re": "", "log_re_kpc": "dex(kpc)"}


def summary_statistics(data, image: str = "image", colour: str = "g_r", vel: str = "vel",
                       sigma: str = "sigma") -> dict[str, np.ndarray]:
    """All statistics (name -> (N,) float64; NaN where an input is absent) for a ``CentralMassData``.

    Needs ``image`` and its ``pixel_kpc``; ``extra["redshift"]`` (0 if absent) for the dimming correction.
    """
    n = len(data)
    z = np.asarray(data.extra.get("redshift", np.zeros(n)), dtype=float)
    out = {k: np.full(n, np.nan) for k in FEATURES + ("pa_deg", "sersic_re_kpc")}
    if image not in data.maps:
        return out
    mu, mmask, pk = data.maps[image], data.masks[image], data.pixel_kpc[image]
    has_c, has_k = colour in data.maps, vel in data.maps and sigma in data.maps
    for i in range(n):
        with np.errstate(over="ignore"):
            lum = luminosity_map(mu[i], pk[i], z[i])
        valid = ~mmask[i] & np.isfinite(lum)
        lum = np.where(valid, lum, 0.0)
        if has_c:
            ok = valid & ~data.masks[colour][i]
            out["g_r"][i] = integrated_colour(np.where(ok, lum, 0.0), data.maps[colour][i])
        cen = ((mu.shape[2] - 1) / 2.0, (mu.shape[1] - 1) / 2.0)
        q, pa = second_moments(lum, cen)
        re = half_light_radius(lum, cen, q, pa)
        q, pa = second_moments(lum, cen, radius=2.0 * re)
        re = half_light_radius(lum, cen, q, pa)
        out["axis_ratio"][i], out["pa_deg"][i] = q, np.degrees(pa) % 180.0
        out["log_re_kpc"][i] = np.log10(re * pk[i])
        n_s, re_s, i_e = fit_sersic(lum, valid, cen, q, pa, re_guess=re)
        out["sersic_n"][i], out["sersic_re_kpc"][i] = n_s, re_s * pk[i]
        fill = 0.0
        if np.isfinite(n_s) and (~valid).any():   # model-completed magnitude: Sersic light in masked pixels
            yy, xx = np.mgrid[:lum.shape[0], :lum.shape[1]]
            rr = _ell_radius(xx - cen[0], yy - cen[1], q if np.isfinite(q) else 1.0, pa if np.isfinite(pa) else 0.0)
            fill = float(np.sum(sersic_profile(np.maximum(rr[~valid], 0.3), i_e, re_s, n_s)))
        out["abs_mag_r"][i] = abs_mag(lum + 0.0) if fill == 0.0 else M_SUN_R_AB - 2.5 * np.log10(lum.sum() + fill)
        if has_k:
            kmask = data.masks[vel][i] | data.masks[sigma][i]
            pkk = data.pixel_kpc[vel][i]
            flux = _resample(lum / pk[i] ** 2, pk[i], data.maps[vel].shape[1:], pkk)
            kc = ((data.maps[vel].shape[2] - 1) / 2.0, (data.maps[vel].shape[1] - 1) / 2.0)
            re_k = re * pk[i] / pkk
            v, s = data.maps[vel][i], data.maps[sigma][i]
            out["sigma_e"][i] = sigma_e(v, s, flux, ~kmask, kc, q, pa, re_k)
            out["lambda_re"][i] = lambda_re(v, s, flux, ~kmask, kc, q, pa, re_k)
    return out


def luminosity_map(mu: np.ndarray, pixel_kpc: float, z: float = 0.0) -> np.ndarray:
    """r-band luminosity per pixel [Lsun] from surface brightness ``mu`` [mag/arcsec2] (dimming removed)."""
    sigma_l = 10.0 ** (-0.4 * (np.asarray(mu, float) - 10.0 * np.log10(1.0 + z) - M_SUN_R_AB - 21.572))
    return sigma_l * (1000.0 * pixel_kpc) ** 2


def abs_mag(lum: np.ndarray) -> float:
    """AB absolute magnitude of the summed luminosity [Lsun] (NaN if not positive)."""
    tot = float(np.sum(lum))
    return M_SUN_R_AB - 2.5 * np.log10(tot) if tot > 0 else np.nan


def integrated_colour(lum_r: np.ndarray, g_r: np.ndarray) -> float:
    """Integrated g-r [mag] from r-band luminosities and the per-pixel g-r colour (zero-luminosity pixels ignored)."""
    w = np.asarray(lum_r, float)
    tot = w.sum()
    if tot <= 0:
        return np.nan
    return float(-2.5 * np.log10(np.sum(w * 10.0 ** (-0.4 * np.where(w > 0, g_r, 0.0))) / tot))


def second_moments(flux: np.ndarray, center: tuple[float, float], radius: float | None = None,
                   n_iter: int = 6) -> tuple[float, float]:
    """Axis ratio b/a and position angle [rad, from +x towards +y] of the light from flux-weighted second moments.

    With ``radius`` (pixels) the moments are iterated inside an ellipse of that semi-major axis and the current
    shape (area-preserving update, ``n_iter`` times); without it all pixels are used once.
    """
    h, w = flux.shape
    y, x = np.mgrid[:h, :w]
    dx, dy = x - center[0], y - center[1]
    f = np.clip(flux, 0.0, None)
    q, pa = 1.0, 0.0
    for _ in range(n_iter if radius is not None else 1):
        sel = np.ones_like(f, bool) if radius is None else _ell_radius(dx, dy, q, pa) <= radius
        wt = f * sel
        tot = wt.sum()
        if tot <= 0:
            return np.nan, np.nan
        mxx, myy, mxy = (wt * dx * dx).sum() / tot, (wt * dy * dy).sum() / tot, (wt * dx * dy).sum() / tot
        lam, vec = np.linalg.eigh(np.array([[mxx, mxy], [mxy, myy]]))
        q = float(np.sqrt(max(lam[0], 0.0) / lam[1])) if lam[1] > 0 else 1.0
        pa = float(np.arctan2(vec[1, 1], vec[0, 1]))
    return q, pa


def half_light_radius(flux: np.ndarray, center: tuple[float, float], q: float = 1.0, pa: float = 0.0) -> float:
    """Elliptical half-light semi-major axis [pixels] from the curve of growth (linear interpolation)."""
    h, w = flux.shape
    y, x = np.mgrid[:h, :w]
    r = _ell_radius(x - center[0], y - center[1], q if np.isfinite(q) else 1.0, pa if np.isfinite(pa) else 0.0)
    order = np.argsort(r, axis=None)
    cum = np.cumsum(np.clip(flux, 0, None).ravel()[order])
    if cum[-1] <= 0:
        return np.nan
    k = int(np.searchsorted(cum, 0.5 * cum[-1]))
    return float(max(r.ravel()[order][k], 0.5))


def sersic_profile(r: np.ndarray, i_e: float, r_e: float, n: float) -> np.ndarray:
    """Sersic intensity I(R) = I_e exp(-b_n [(R/R_e)^(1/n) - 1]), b_n exact (gammaincinv(2n, 1/2))."""
    from scipy.special import gammaincinv

    b = gammaincinv(2.0 * n, 0.5)
    return i_e * np.exp(-b * ((np.asarray(r, float) / r_e) ** (1.0 / n) - 1.0))


def fit_sersic(flux: np.ndarray, valid: np.ndarray, center: tuple[float, float], q: float = 1.0, pa: float = 0.0,
               re_guess: float | None = None, r_min: float = 0.0) -> tuple[float, float, float]:
    """Fit a Sersic profile to the elliptical-annulus median profile: returns (n, R_e [pixels], I_e).

    Annuli of 1-pixel width in semi-major axis from ``r_min`` (exclude the PSF-smoothed core of well-resolved
    images with r_min ~ 1.5) out to the largest radius with valid positive flux;
    residuals in log10 intensity (so every radius counts), bounded n in [0.3, 10]. NaNs when it cannot fit.
    """
    from scipy.optimize import least_squares
    from scipy.special import gammaincinv

    h, w = flux.shape
    y, x = np.mgrid[:h, :w]
    q = q if np.isfinite(q) and q > 0.05 else 1.0
    r = _ell_radius(x - center[0], y - center[1], q, pa if np.isfinite(pa) else 0.0)
    ok = valid & np.isfinite(flux)
    edges = np.arange(r_min, min(h, w) / 2.0, 1.0)
    rad, prof = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        sel = ok & (r >= a) & (r < b)
        if sel.any():
            med = np.median(flux[sel])
            if med > 0:
                rad.append(np.mean(r[sel]))
                prof.append(np.log10(med))
    if len(rad) < 3:
        return np.nan, np.nan, np.nan
    rad, prof = np.asarray(rad), np.asarray(prof)
    re0 = re_guess if re_guess and np.isfinite(re_guess) else float(np.median(rad))

    def resid(p):
        n, lre, lie = p
        b = gammaincinv(2.0 * n, 0.5)
        return lie - b / np.log(10.0) * ((rad / 10.0 ** lre) ** (1.0 / n) - 1.0) - prof

    best = None
    for n0 in (1.0, 2.5, 4.0):
        p0 = [n0, np.log10(re0), float(np.interp(re0, rad, prof))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res = least_squares(resid, p0, bounds=([0.3, np.log10(0.3), -np.inf], [10.0, np.log10(10 * max(h, w)),
                                                                                     np.inf]), x_scale=[1, 0.3, 1])
        if best is None or res.cost < best.cost:
            best = res
    n, lre, lie = best.x
    return float(n), float(10.0 ** lre), float(10.0 ** lie)


def sigma_e(vel: np.ndarray, sigma: np.ndarray, flux: np.ndarray, valid: np.ndarray, center: tuple[float, float],
            q: float, pa: float, re_pix: float) -> float:
    """Luminosity-weighted sqrt(<V^2 + sigma^2>) [km/s] inside the ellipse of semi-major axis ``re_pix``."""
    sel = _aperture(vel.shape, center, q, pa, re_pix) & valid & (flux > 0)
    if not sel.any():
        return np.nan
    f = flux[sel]
    return float(np.sqrt(np.sum(f * (vel[sel] ** 2 + sigma[sel] ** 2)) / f.sum()))


def lambda_re(vel: np.ndarray, sigma: np.ndarray, flux: np.ndarray, valid: np.ndarray, center: tuple[float, float],
              q: float, pa: float, re_pix: float) -> float:
    """Emsellem+07 lambda_R = sum F R |V| / sum F R sqrt(V^2 + sigma^2) inside the R_e ellipse (R elliptical).

    V is measured about the flux-weighted mean velocity inside the aperture (removes a systemic offset)."""
    h, w = vel.shape
    y, x = np.mgrid[:h, :w]
    r = _ell_radius(x - center[0], y - center[1], q if np.isfinite(q) else 1.0, pa if np.isfinite(pa) else 0.0)
    sel = (r <= re_pix) & valid & (flux > 0)
    if not sel.any():
        return np.nan
    f, rr, s = flux[sel], r[sel], sigma[sel]
    v = vel[sel] - np.sum(f * vel[sel]) / f.sum()
    den = np.sum(f * rr * np.sqrt(v ** 2 + s ** 2))
    return float(np.sum(f * rr * np.abs(v)) / den) if den > 0 else np.nan


def pearson_matrix(columns: dict[str, np.ndarray], names: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Pearson correlation matrix (k, k) of the named columns over rows where all are finite."""
    names = list(names or columns)
    x = np.stack([np.asarray(columns[k], float) for k in names], axis=1)
    x = x[np.all(np.isfinite(x), axis=1)]
    if len(x) < 3:
        return names, np.full((len(names), len(names)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return names, np.corrcoef(x, rowvar=False)


# -------------------------------------------------------------------------------------------------
def _ell_radius(dx: np.ndarray, dy: np.ndarray, q: float, pa: float) -> np.ndarray:
    """Elliptical radius (semi-major-axis units) for axis ratio ``q`` and major-axis angle ``pa`` [rad]."""
    c, s = np.cos(pa), np.sin(pa)
    xm = dx * c + dy * s
    ym = -dx * s + dy * c
    return np.sqrt(xm ** 2 + (ym / max(q, 1e-3)) ** 2)


def _aperture(shape: tuple[int, int], center, q, pa, radius) -> np.ndarray:
    h, w = shape
    y, x = np.mgrid[:h, :w]
    return _ell_radius(x - center[0], y - center[1], q if np.isfinite(q) else 1.0,
                       pa if np.isfinite(pa) else 0.0) <= radius


def _resample(surface: np.ndarray, pix_in: float, shape_out: tuple[int, int], pix_out: float) -> np.ndarray:
    """Bilinear resampling of a centred map with pixel size ``pix_in`` onto a centred grid ``shape_out`` with
    pixel size ``pix_out`` (same physical units); outside the input -> 0. Values are per unit area."""
    from scipy.ndimage import map_coordinates

    h, w = shape_out
    y, x = np.mgrid[:h, :w].astype(float)
    hi, wi = surface.shape
    xi = (x - (w - 1) / 2.0) * pix_out / pix_in + (wi - 1) / 2.0
    yi = (y - (h - 1) / 2.0) * pix_out / pix_in + (hi - 1) / 2.0
    return map_coordinates(surface, [yi, xi], order=1, mode="constant", cval=0.0)
