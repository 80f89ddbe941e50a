"""IFU simulator rendering: projections, intrinsic component maps, flux-weighted moments and Re apertures.

A *view* is one projection of a galaxy: inclination ``cos_i`` and position angle ``pa`` of the major axis
(radians, from the map x axis).  Pixel grids are square, in units of the 3-D stellar half-mass radius r_1/2,
centred on the galaxy.  Planes are float32 arrays (N, P, H, W) (galaxies x projections x pixels).

Known limitation: each population is a single-age burst (SSP table) at the Gallazzi+05 age plus gradient, so
young in-situ populations of low-mass galaxies have M/L_r 0.3-0.5 dex below Bell+03 at the same g-r (old,
red populations agree to < 0.15 dex); a composite star-formation history would close that gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.data.simulators import physics as P
from core.data.simulators.ifu_dynamics import (G_KPC, LOG_S_GRID, S_GRID, Components, Profiles, interp_at,
                                               interp_log_s, log_s_index, nfw_cylinder_mass, nfw_mass,
                                               cylinder_mass_from_3d)
from core.data.simulators.ifu_population import Galaxies

__all__ = ["Views", "views_from_normals", "pixel_grid", "Populations", "populations", "render_planes",
           "moments_from_planes", "aperture_targets", "PLANES"]

#: Planes rendered per view (summable, so they can be PSF-convolved and then divided).
PLANES = ("mass", "lum_r", "lum_g", "lum_v", "lum_m2", "mass_age", "mass_z", "mass_ex")


@dataclass
class Views:
    """Per-galaxy, per-projection geometry: ``cos_i`` and ``pa`` [rad], each (N, P); ``q0`` disk thickness."""

    cos_i: np.ndarray
    pa: np.ndarray
    q0: float = 0.15

    @property
    def axis_ratio(self) -> np.ndarray:
        """Observed b/a = sqrt(cos^2 i + q0^2 sin^2 i) (Hubble formula)."""
        return np.sqrt(self.cos_i ** 2 + self.q0 ** 2 * (1.0 - self.cos_i ** 2))


def views_from_normals(normals: np.ndarray, n_proj: int, q0: float) -> Views:
    """Views along the box x, y, z axes (first ``n_proj``): cos i_k = |n_k|, PA from the projected normal."""
    sky = ((1, 2), (2, 0), (0, 1))
    cos_i = np.abs(normals[:, :n_proj])
    pa = np.stack([np.arctan2(normals[:, b], normals[:, a]) + 0.5 * np.pi for a, b in sky[:n_proj]], axis=1)
    return Views(cos_i=cos_i, pa=pa, q0=q0)


def pixel_grid(size: int, fov_rhalf: float, pad: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates x, y (H, W) in units of r_1/2; the map spans fov_rhalf (+ pad pixels a side)."""
    step = fov_rhalf / size
    c = (np.arange(size + 2 * pad) - pad + 0.5 - size / 2.0) * step
    return np.meshgrid(c, c, indexing="xy")


@dataclass
class Populations:
    """Radial in-situ population tables on S_GRID (N, n_s): g-r, log M/L_r; ex-situ per galaxy (N,)."""

    gr_in: np.ndarray
    ml_in: np.ndarray
    gr_ex: np.ndarray
    ml_ex: np.ndarray
    s_per_re: np.ndarray      # r_1/2 / R_e (N,): converts s to R / R_e for gradients (R_e,gal; R_e,disk if unset)


def populations(gal: Galaxies) -> Populations:
    """Evaluate the SPS table (g-r, log M/L_r) of in-situ (radial gradients) and ex-situ populations."""
    s_per_re = gal.r_half / (gal.re_disk if gal.re_gal is None else gal.re_gal)
    age, lz = _insitu_pop(gal, S_GRID[None, :] * s_per_re[:, None])
    gr_in, ml_in = P.ssp_colour_ml(age, lz)
    gr_ex, ml_ex = P.ssp_colour_ml(gal.ex_logage, gal.ex_logz)
    return Populations(np.asarray(gr_in), np.asarray(ml_in), np.asarray(gr_ex), np.asarray(ml_ex), s_per_re)


def render_planes(gal: Galaxies, comp: Components, prof: Profiles, pops: Populations, views: Views,
                  x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """Intrinsic (no PSF) summable planes on the pixel grid ``x, y`` (H, W) [units of r_1/2].

    Returns ``{name: (N, P, H, W) float32}`` for PLANES: mass [Msun/kpc^2], lum_r / lum_g [Lsun/kpc^2 in r, and
    r-band-normalised g flux], lum_v = L v, lum_m2 = L (sigma^2 + v^2) [(km/s)^2], mass_age = Sigma log age,
    mass_z = Sigma [Z/H], mass_ex = ex-situ Sigma.
    """
    f32 = np.float32
    n, p = views.cos_i.shape
    h, w = x.shape
    cpa, spa = np.cos(views.pa).astype(f32)[..., None, None], np.sin(views.pa).astype(f32)[..., None, None]
    xx, yy = x.astype(f32)[None, None], y.astype(f32)[None, None]
    X = xx * cpa + yy * spa                                        # along the major axis
    Y = -xx * spa + yy * cpa
    q = views.axis_ratio.astype(f32)[..., None, None]
    cos_i = views.cos_i.astype(f32)[..., None, None]
    sin_i = np.sqrt(np.maximum(1.0 - cos_i ** 2, 0.0))
    r_ell = np.sqrt(X ** 2 + (Y / q) ** 2)                         # deprojected disk radius [r_1/2]
    r_sky = np.sqrt(x ** 2 + y ** 2).astype(f32).ravel()
    r_ell_safe = np.maximum(r_ell, 1e-6)
    # -- disk ----------------------------------------------------------------------------------------
    rd = (comp.r_d / gal.r_half).astype(f32)[:, None, None, None]  # scale length [r_1/2]
    sig0 = (comp.m_disk / (2 * np.pi * comp.r_d ** 2)).astype(f32)[:, None, None, None]
    surf_face = sig0 * np.exp(-r_ell / rd)
    surf_d = surf_face / q
    # vertical equilibrium of the disk in its own TRUE mass (imf_alpha x the nominal Sigma* that the maps show)
    sz2 = np.pi * G_KPC * surf_face * (comp.alpha * comp.z0_over_rd * comp.r_d).astype(f32)[:, None, None, None]
    sr2 = sz2 * comp.sig_r_over_sig_z ** 2
    sp2 = 0.5 * sr2
    ie, te = log_s_index(r_ell.reshape(n, -1))
    vc2_ell = interp_at(prof.vc2.astype(f32), ie, te).reshape(n, p, h, w)
    vphi = np.sqrt(np.maximum(vc2_ell - sr2 * (2.0 * r_ell / rd - 0.5), 0.0))
    cphi, sphi = X / r_ell_safe, (Y / q) / r_ell_safe
    v_d = vphi * sin_i * cphi
    s2_d = sz2 * cos_i ** 2 + (sr2 * sphi ** 2 + sp2 * cphi ** 2) * sin_i ** 2
    sre = pops.s_per_re.astype(f32)[:, None, None, None]
    age_d = np.clip(_col(gal.logage0) + _col(gal.age_grad) * r_ell * sre, f32(8.0), f32(10.1))
    lz_d = np.clip(_col(gal.logz0) + _col(gal.z_grad) * r_ell * sre, f32(-0.7), f32(0.4))
    inv_ml = (10.0 ** -pops.ml_in).astype(f32)                     # L_r / M tables
    gfac = (10.0 ** (-0.4 * pops.gr_in)).astype(f32)               # L_g / L_r tables
    ld = surf_d * interp_at(inv_ml, ie, te).reshape(n, p, h, w)
    gd = interp_at(gfac, ie, te).reshape(n, p, h, w)
    # -- spherical components (same radii for every galaxy) ---------------------------------------------
    shp = (n, 1, h, w)
    isk, tsk = log_s_index(r_sky)
    surf_b = interp_at(prof.surf_b.astype(f32), isk, tsk, shared=True).reshape(shp)
    surf_x = interp_at(prof.surf_ex.astype(f32), isk, tsk, shared=True).reshape(shp)
    s2_b = interp_at(prof.sig_b.astype(f32) ** 2, isk, tsk, shared=True).reshape(shp)
    s2_x = interp_at(prof.sig_ex.astype(f32) ** 2, isk, tsk, shared=True).reshape(shp)
    vc_sky = np.sqrt(interp_at(prof.vc2.astype(f32), isk, tsk, shared=True)).reshape(shp)
    v_b = gal.kappa_b.astype(f32)[:, None, None, None] * vc_sky * sin_i * X / np.maximum(r_sky.reshape(1, 1, h, w), 1e-6)
    age_b, lz_b = _insitu_pop(gal, r_sky[None, :] * pops.s_per_re[:, None])
    lb = surf_b * interp_at(inv_ml, isk, tsk, shared=True).reshape(shp)
    gb = interp_at(gfac, isk, tsk, shared=True).reshape(shp)
    age_b, lz_b = age_b.astype(f32).reshape(shp), lz_b.astype(f32).reshape(shp)
    # -- light-weighted combination ----------------------------------------------------------------------
    lx = surf_x * _col(10.0 ** -pops.ml_ex)
    out = {
        "mass": surf_d + surf_b + surf_x,
        "lum_r": ld + lb + lx,
        "lum_g": ld * gd + lb * gb + lx * _col(10.0 ** (-0.4 * pops.gr_ex)),
        "lum_v": ld * v_d + lb * v_b,
        "lum_m2": ld * (s2_d + v_d ** 2) + lb * (s2_b + v_b ** 2) + lx * s2_x,
        "mass_age": surf_d * age_d + surf_b * age_b + surf_x * _col(gal.ex_logage),
        "mass_z": surf_d * lz_d + surf_b * lz_b + surf_x * _col(gal.ex_logz),
        "mass_ex": np.broadcast_to(surf_x, (n, p, h, w)),
    }
    return {k: np.ascontiguousarray(np.broadcast_to(v, (n, p, h, w)), dtype=f32) for k, v in out.items()}


def moments_from_planes(pl: dict[str, np.ndarray], redshift: np.ndarray) -> dict[str, np.ndarray]:
    """Observable channels from (possibly PSF-convolved) planes: log Sigma*, v, sigma, mass-weighted log age and
    [Z/H], mu_r [mag/arcsec^2] (with (1+z)^4 dimming), g-r [mag]. Arrays (N, P, H, W)."""
    # FFT convolution leaves tiny (even negative) values far out: floor at 1e-7 of each map's peak
    mass = np.maximum(pl["mass"], 1e-7 * pl["mass"].max(axis=(-2, -1), keepdims=True))
    lum = np.maximum(pl["lum_r"], 1e-7 * pl["lum_r"].max(axis=(-2, -1), keepdims=True))
    v = pl["lum_v"] / lum
    sig = np.sqrt(np.maximum(pl["lum_m2"] / lum - v ** 2, 0.0))
    dim = (10.0 * np.log10(1.0 + redshift)).astype(np.float32)[:, None, None, None]
    mu = P.M_SUN_R_AB + 21.572 - 2.5 * np.log10(lum / 1e6) + dim
    return {"log_sigma_star": np.log10(mass), "vel": v, "sigma": sig, "log_age": pl["mass_age"] / mass,
            "metallicity": pl["mass_z"] / mass, "mu_r": mu,
            "g_r": -2.5 * np.log10(np.maximum(pl["lum_g"], 1e-3 * lum) / lum)}


def aperture_targets(gal: Galaxies, comp: Components, prof: Profiles, pops: Populations,
                     views: Views, s_max: float = 30.0, n_phi: int = 12) -> dict[str, np.ndarray]:
    """Projected r-band half-light radius and masses inside it, per view (N, P) (section 2.8).

    Circular sky apertures; the inclined disk is integrated on a polar grid (quarter symmetry), bulge and
    ex-situ are circular. Returns re_kpc, log_mstar_re (nominal, Kroupa-SPS stellar mass), log_mtot_re (true
    stellar mass imf_alpha x nominal + dark-matter cylinder, NFW or contracted), log_ml_r (nominal, inside R_e),
    log_ml_r_global, abs_mag_r (total r-band absolute magnitude, AB).
    """
    n, p = views.cos_i.shape
    k = int(np.searchsorted(S_GRID, s_max))
    s = S_GRID[:k]
    phi = (np.arange(n_phi) + 0.5) * (0.5 * np.pi / n_phi)
    q = views.axis_ratio[:, :, None, None]
    r_ell = np.sqrt((s[:, None] * np.cos(phi)) ** 2 + (s[:, None] * np.sin(phi) / q) ** 2)   # (N,P,k,nphi)
    rd = (comp.r_d / gal.r_half)[:, None, None, None]
    sig0 = (comp.m_disk / (2 * np.pi * comp.r_d ** 2))[:, None, None, None]
    surf_d = sig0 * np.exp(-r_ell / rd) / q
    ml_d = interp_log_s(pops.ml_in, r_ell.reshape(n, -1)).reshape(r_ell.shape)
    ring_m = surf_d.mean(-1)                                            # (N, P, k) Msun/kpc^2
    ring_l = (surf_d / 10.0 ** ml_d).mean(-1)
    sb, sx = prof.surf_b[:, None, :k], prof.surf_ex[:, None, :k]
    ring_m = ring_m + sb + sx
    ring_l = ring_l + sb / 10.0 ** pops.ml_in[:, None, :k] + sx / 10.0 ** pops.ml_ex[:, None, None]
    dln = np.log(10.0) * (LOG_S_GRID[1] - LOG_S_GRID[0])
    area = 2.0 * np.pi * (s * gal.r_half[:, None]) ** 2 * dln            # (N, k) kpc^2 per ln-step
    cum_m = _cumtrapz(ring_m * area[:, None, :])
    cum_l = _cumtrapz(ring_l * area[:, None, :])
    # light beyond s_max: ex-situ (single M/L) and bulge tails analytically from the 3-D masses
    m_out = np.maximum(10.0 ** gal.log_mstar[:, None] - cum_m[..., -1], 0.0)   # mostly ex-situ tail
    l_tot = cum_l[..., -1] + m_out / 10.0 ** pops.ml_ex[:, None]
    log_s = np.log10(s)
    i = np.argmax(cum_l >= 0.5 * l_tot[..., None], axis=-1).clip(1, k - 1)
    l0 = np.take_along_axis(cum_l, i[..., None] - 1, -1)[..., 0]
    l1 = np.take_along_axis(cum_l, i[..., None], -1)[..., 0]
    t = np.clip((0.5 * l_tot - l0) / np.maximum(l1 - l0, 1e-300), 0.0, 1.0)
    log_s_re = log_s[i - 1] + t * (log_s[i] - log_s[i - 1])
    m_re = 10.0 ** _interp_rows(np.log10(np.maximum(cum_m, 1e-30)), log_s, log_s_re)
    l_re = 0.5 * l_tot
    re_kpc = 10.0 ** log_s_re * gal.r_half[:, None]
    m_dm = nfw_cylinder_mass(re_kpc, comp.m_h[:, None], comp.c200[:, None], comp.r200[:, None])
    if comp.contraction != "none" and prof.m_dm3d is not None:
        # contracted halo: the NFW cylinder plus the projected change of the 3-D profile (grid-integrated)
        m_nfw3 = nfw_mass(gal.r_half[:, None] * S_GRID[None, :], comp.m_h[:, None], comp.c200[:, None],
                          comp.r200[:, None])
        m_dm = m_dm + (cylinder_mass_from_3d(prof.m_dm3d, gal.r_half, re_kpc)
                       - cylinder_mass_from_3d(m_nfw3, gal.r_half, re_kpc))
    # log_mstar_re and log_ml_r are NOMINAL (Kroupa SPS, as the Sigma* map and a population fit give them);
    # log_mtot_re is the total gravitating mass: TRUE stars (imf_alpha x nominal) + dark matter
    m_tot = comp.alpha[:, None] * m_re + m_dm
    return {"re_kpc": re_kpc, "log_mstar_re": np.log10(m_re), "log_mtot_re": np.log10(m_tot),
            "log_ml_r": np.log10(m_re / l_re),
            "log_ml_r_global": np.log10(10.0 ** gal.log_mstar[:, None] / l_tot),
            "abs_mag_r": P.M_SUN_R_AB - 2.5 * np.log10(l_tot)}


# ---------------------------------------------------------------------------------------------------
def _col(a: np.ndarray) -> np.ndarray:
    """(N,) -> (N, 1, 1, 1) float32."""
    return np.asarray(a, dtype=np.float32)[:, None, None, None]


def _insitu_pop(gal: Galaxies, r_over_re: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-situ log age [yr] and [Z/H] at R / R_e,disk (N, M), clipped to the SPS table range."""
    age = gal.logage0[:, None] + gal.age_grad[:, None] * r_over_re
    lz = gal.logz0[:, None] + gal.z_grad[:, None] * r_over_re
    return np.clip(age, 8.0, 10.1), np.clip(lz, -0.7, 0.4)


def _cumtrapz(f: np.ndarray) -> np.ndarray:
    """Cumulative trapezoid along the last axis (unit spacing), starting at f[0] / 2 (inner core ~ 0)."""
    c = np.cumsum(0.5 * (f[..., 1:] + f[..., :-1]), axis=-1)
    return np.concatenate([0.5 * f[..., :1], 0.5 * f[..., :1] + c], axis=-1)


def _interp_rows(table: np.ndarray, xgrid: np.ndarray, xq: np.ndarray) -> np.ndarray:
    """Linear interpolation of table (..., k) on a common xgrid at per-row points xq (...)."""
    step = xgrid[1] - xgrid[0]
    f = (xq - xgrid[0]) / step
    i = np.clip(np.floor(f).astype(int), 0, len(xgrid) - 2)
    t = f - i
    lo = np.take_along_axis(table, i[..., None], -1)[..., 0]
    hi = np.take_along_axis(table, i[..., None] + 1, -1)[..., 0]
    return lo * (1 - t) + hi * t
