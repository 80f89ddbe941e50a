"""IFU simulator dynamics: NFW halo, exponential disk, Hernquist bulge/ex-situ and vectorised Jeans profiles.

Units throughout: kpc, Msun, km/s.  Every per-galaxy radial quantity lives on one common dimensionless
log grid ``s = r / r_half`` (``S_GRID``, shape (n_s,)), so that pixel look-ups share their interpolation
index across galaxies.  Arrays are shaped (n_galaxies, n_s).  See science/simulators.md sections 2.4-2.5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import i0e, i1e, k0e, k1e

__all__ = ["G_KPC", "S_GRID", "LOG_S_GRID", "Components", "Profiles", "r200c_kpc", "nfw_mass",
           "nfw_cylinder_mass", "hernquist_mass", "hernquist_density", "exp_disk_mass", "freeman_vc2",
           "stellar_half_mass_radius", "build_profiles", "interp_log_s", "interp_at", "log_s_index",
           "contract_gnedin04", "cylinder_mass_from_3d"]

G_KPC = 4.30091e-6                       # gravitational constant [kpc (km/s)^2 / Msun]
HERNQUIST_RE_OVER_A = 1.815              # R_e = 1.815 a for a Hernquist profile [unverified constant, spec 2.4]
LOG_S_GRID = np.linspace(-3.0, 3.0, 121)  # log10(r / r_half), 0.05 dex steps
S_GRID = 10.0 ** LOG_S_GRID
_N_T = 48                                # Abel-projection nodes per projected radius


@dataclass
class Components:
    """Per-galaxy mass model (all arrays shape (N,)).

    m_disk, m_bulge, m_ex: masses [Msun]; r_d: disk scale length [kpc]; a_b, a_ex: Hernquist scale radii [kpc];
    m_h: halo M200c [Msun]; c200: NFW concentration; r200: R200c [kpc]; z0_over_rd: disk scale height / R_d;
    sig_r_over_sig_z: sigma_R / sigma_z of the disk.

    The stellar masses are NOMINAL (what a Kroupa-IMF population-synthesis fit gives, as in the SPS table and the
    Sigma* maps). ``imf_alpha`` (N,) (None = 1) multiplies them wherever they act gravitationally (potential,
    Jeans equations, disk vertical dispersion, total masses): the true stellar mass is imf_alpha x nominal.
    ``contraction``: "none" (NFW) or "gnedin04" (the halo responds adiabatically to the galaxy, Gnedin+04
    modified contraction with orbit-averaged radii r_bar = ac_a r200 (r / r200)^ac_w).
    """

    m_disk: np.ndarray
    r_d: np.ndarray
    m_bulge: np.ndarray
    a_b: np.ndarray
    m_ex: np.ndarray
    a_ex: np.ndarray
    m_h: np.ndarray
    c200: np.ndarray
    r200: np.ndarray
    z0_over_rd: float = 0.15
    sig_r_over_sig_z: float = 1.67
    imf_alpha: np.ndarray | None = None
    contraction: str = "none"
    ac_a: float = 0.85
    ac_w: float = 0.8

    @property
    def alpha(self) -> np.ndarray:
        """True / nominal stellar mass (N,) (1 without an IMF factor)."""
        return np.ones_like(self.m_disk) if self.imf_alpha is None else np.asarray(self.imf_alpha, dtype=float)


@dataclass
class Profiles:
    """Radial tables on ``S_GRID`` (shape (N, n_s)) plus the 3-D stellar half-mass radius ``r_half`` [kpc] (N,).

    vc2: total circular speed^2 [(km/s)^2] (disk via Freeman 1970); m_tot3d: total enclosed mass (spherical,
    disk cylindrical) [Msun]; m_star3d: enclosed stellar mass [Msun]; sig_b / sig_ex: projected isotropic-Jeans
    dispersion of bulge / ex-situ at projected radius s [km/s]; surf_b / surf_ex: projected surface density
    of bulge / ex-situ [Msun/kpc^2] (nominal stellar mass); m_star3d is the TRUE (imf_alpha x nominal) enclosed
    stellar mass; m_dm3d: enclosed dark-matter mass (NFW, or contracted) [Msun].
    """

    r_half: np.ndarray
    vc2: np.ndarray
    m_tot3d: np.ndarray
    m_star3d: np.ndarray
    sig_b: np.ndarray
    sig_ex: np.ndarray
    surf_b: np.ndarray
    surf_ex: np.ndarray
    m_dm3d: np.ndarray | None = None


def r200c_kpc(m_h: np.ndarray, h: float = 0.6766) -> np.ndarray:
    """R200c [kpc] of a halo of M200c ``m_h`` [Msun]; rho_crit = 2.775e11 h^2 Msun/Mpc^3."""
    rho_crit = 2.775e2 * h ** 2            # Msun / kpc^3
    return (3.0 * np.asarray(m_h) / (4.0 * np.pi * 200.0 * rho_crit)) ** (1.0 / 3.0)


def nfw_mass(r: np.ndarray, m_h: np.ndarray, c: np.ndarray, r200: np.ndarray) -> np.ndarray:
    """NFW enclosed mass M(<r) [Msun] (untruncated), normalised to M200c = m_h at r200."""
    x = c * r / r200
    return m_h * _mu(x) / _mu(c)


def nfw_cylinder_mass(rp: np.ndarray, m_h: np.ndarray, c: np.ndarray, r200: np.ndarray) -> np.ndarray:
    """Projected NFW mass inside a cylinder of radius ``rp`` [kpc] (untruncated profile) [Msun]."""
    x = np.maximum(c * rp / r200, 1e-8)
    f = np.empty_like(x)
    lo, hi = x < 1.0 - 1e-6, x > 1.0 + 1e-6
    f[lo] = np.arccosh(1.0 / x[lo]) / np.sqrt(1.0 - x[lo] ** 2)
    f[hi] = np.arccos(1.0 / x[hi]) / np.sqrt(x[hi] ** 2 - 1.0)
    f[~(lo | hi)] = 1.0
    return m_h / _mu(c) * (np.log(x / 2.0) + f)


def hernquist_mass(r: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Hernquist enclosed mass M r^2 / (r + a)^2 [Msun]."""
    return m * r ** 2 / (r + a) ** 2


def hernquist_density(r: np.ndarray, m: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Hernquist density M a / (2 pi r (r + a)^3) [Msun/kpc^3]."""
    return m * a / (2.0 * np.pi * r * (r + a) ** 3)


def exp_disk_mass(r: np.ndarray, m: np.ndarray, r_d: np.ndarray) -> np.ndarray:
    """Exponential-disk mass inside cylindrical radius r: M [1 - (1 + x) e^-x], x = r / R_d [Msun]."""
    x = r / r_d
    return m * (1.0 - (1.0 + x) * np.exp(-x))


def freeman_vc2(r: np.ndarray, m: np.ndarray, r_d: np.ndarray) -> np.ndarray:
    """Thin exponential-disk circular speed^2 (Freeman 1970) [(km/s)^2]: 4 pi G Sigma0 R_d y^2 [I0K0 - I1K1]."""
    y = np.maximum(r / (2.0 * r_d), 1e-8)
    sigma0 = m / (2.0 * np.pi * r_d ** 2)
    bessel = i0e(y) * k0e(y) - i1e(y) * k1e(y)      # exponential scalings cancel
    return 4.0 * np.pi * G_KPC * sigma0 * r_d * y ** 2 * bessel


def stellar_half_mass_radius(c: Components) -> np.ndarray:
    """3-D stellar half-mass radius [kpc] (disk mass taken as cylindrical), by interpolation; shape (N,)."""
    m_star = c.m_disk + c.m_bulge + c.m_ex
    scale = c.r_d * 1.678
    r = scale[:, None] * np.logspace(-3, 3, 600)[None, :]
    frac = (exp_disk_mass(r, c.m_disk[:, None], c.r_d[:, None]) + hernquist_mass(r, c.m_bulge[:, None], c.a_b[:, None])
            + hernquist_mass(r, c.m_ex[:, None], c.a_ex[:, None])) / m_star[:, None]
    i = np.clip(np.argmax(frac >= 0.5, axis=1), 1, r.shape[1] - 1)
    rows = np.arange(len(i))
    f0, f1 = frac[rows, i - 1], frac[rows, i]
    t = (0.5 - f0) / np.maximum(f1 - f0, 1e-12)
    lr = np.log(r[rows, i - 1]) + t * (np.log(r[rows, i]) - np.log(r[rows, i - 1]))
    return np.exp(lr)


def build_profiles(c: Components, r_half: np.ndarray | None = None) -> Profiles:
    """Radial tables for every galaxy on ``S_GRID`` (vectorised; cost ~ N x 121 x 48 floats).

    Isotropic spherical Jeans for bulge and ex-situ in the total potential (NFW + disk + bulge + ex-situ):
    sigma_r^2(r) rho(r) = int_r^inf rho G M_tot / r'^2 dr', then Abel projection
    Sigma(R) sigma_p^2(R) = 2 int_0^inf (rho sigma_r^2)(sqrt(R^2 + u^2)) du with u = R sinh t.
    """
    if r_half is None:
        r_half = stellar_half_mass_radius(c)
    r = r_half[:, None] * S_GRID[None, :]
    col = {k: getattr(c, k)[:, None] for k in ("m_disk", "r_d", "m_bulge", "a_b", "m_ex", "a_ex", "m_h", "c200", "r200")}
    alpha = c.alpha[:, None]                                         # true / nominal stellar mass
    m_disk3 = alpha * exp_disk_mass(r, col["m_disk"], col["r_d"])
    m_sph_star = alpha * (hernquist_mass(r, col["m_bulge"], col["a_b"]) + hernquist_mass(r, col["m_ex"], col["a_ex"]))
    m_star = m_disk3 + m_sph_star
    m_dm = nfw_mass(r, col["m_h"], col["c200"], col["r200"])
    if c.contraction == "gnedin04":
        m_dm = contract_gnedin04(r, m_star, col["m_h"], col["c200"], col["r200"], c.ac_a, c.ac_w)
    elif c.contraction != "none":
        raise ValueError(f"unknown halo contraction {c.contraction!r}")
    m_sph = m_dm + m_sph_star
    vc2 = G_KPC * m_sph / r + freeman_vc2(r, alpha * col["m_disk"], col["r_d"])
    m_tot = m_sph + m_disk3
    grav = G_KPC * m_tot / r ** 2                                   # (km/s)^2 / kpc
    out = {}
    for name, m, a in (("b", col["m_bulge"], col["a_b"]), ("ex", col["m_ex"], col["a_ex"])):
        rho = hernquist_density(r, np.maximum(m, 1.0), a)
        integrand = rho * grav * r                                 # d/dln r
        # cumulative integral from the outer edge inwards (trapezoid in ln r)
        dln = np.log(10.0) * (LOG_S_GRID[1] - LOG_S_GRID[0])
        seg = 0.5 * (integrand[:, 1:] + integrand[:, :-1]) * dln
        tail = np.concatenate([np.cumsum(seg[:, ::-1], axis=1)[:, ::-1], np.zeros((r.shape[0], 1))], axis=1)
        surf = _abel_project(np.log(rho), r_half)
        press = _abel_project(np.log(np.maximum(tail, 1e-300)), r_half)
        out["sig_" + name] = np.sqrt(np.maximum(press / np.maximum(surf, 1e-300), 0.0))
        out["surf_" + name] = surf * (m > 0)
    return Profiles(r_half=r_half, vc2=vc2, m_tot3d=m_tot, m_star3d=m_star, sig_b=out["sig_b"],
                    sig_ex=out["sig_ex"], surf_b=out["surf_b"], surf_ex=out["surf_ex"], m_dm3d=m_dm)


def contract_gnedin04(r: np.ndarray, m_gal: np.ndarray, m_h, c, r200, a: float = 0.85, w: float = 0.8,
                      n_iter: int = 40) -> np.ndarray:
    """Enclosed dark-matter mass (N, k) at radii ``r`` (N, k) [kpc] of an NFW halo contracted by the galaxy.

    Gnedin et al. 2004 (ApJ 616, 16) modified adiabatic contraction: a shell at initial radius r_i moves to r_f
    with r_f M_f(r_bar_f) = r_i M_i(r_bar_i), r_bar = a r200 (r / r200)^w (a = 0.85, w = 0.8 their fit [R]);
    M_i = NFW (M200c = m_h, the galaxy's baryons initially distributed like the dark matter), M_f = m_gal +
    (1 - f_gal) M_i(r_bar_i), f_gal = m_gal(outer edge) / m_h. ``m_gal`` (N, k): enclosed galaxy mass on ``r``
    (true stellar mass, disk taken as spherical), ``m_h``, ``c``, ``r200``: (N, 1). Returns (1 - f_gal) M_i(r_i)
    interpolated (log-log) at the grid radii; f_gal = 0 and a, w = 1 is Blumenthal et al. 1986.
    """
    m_h, c, r200 = (np.broadcast_to(np.asarray(v, dtype=float), (r.shape[0], 1)) for v in (m_h, c, r200))
    f_gal = np.clip(m_gal[:, -1:] / m_h, 0.0, 0.5)
    lr = np.log(r)
    lmg = np.log(np.maximum(m_gal, 1e-30))

    def bar(x):
        return a * r200 * (x / r200) ** w

    m_i_bar = nfw_mass(bar(r), m_h, c, r200)
    rhs = r * m_i_bar
    rf = r.copy()
    for _ in range(n_iter):
        mg = np.exp(_interp_rows_log(lmg, lr, np.log(bar(rf))))
        rf = rhs / (mg + (1.0 - f_gal) * m_i_bar)
    m_dm_f = (1.0 - f_gal) * nfw_mass(r, m_h, c, r200)        # dark matter inside r_f, one value per initial shell
    out = np.empty_like(r)
    lrf, lmd = np.log(rf), np.log(m_dm_f)
    for g in range(r.shape[0]):
        order = np.argsort(lrf[g], kind="stable")
        out[g] = np.interp(lr[g], lrf[g][order], lmd[g][order])
    return np.exp(out)


def cylinder_mass_from_3d(m3d: np.ndarray, r_half: np.ndarray, rp: np.ndarray, refine: int = 4) -> np.ndarray:
    """Mass inside the infinite cylinder of radius ``rp`` [kpc] (N, P) of spherical enclosed-mass tables ``m3d``
    (N, n_s) on S_GRID x r_half: M(<R) + sum over shells outside R of dM (1 - sqrt(1 - R^2 / r^2)) (shells
    refined ``refine`` times, log-log interpolation). Mass beyond the grid (1000 r_1/2) is ignored."""
    ls = np.linspace(LOG_S_GRID[0], LOG_S_GRID[-1], (len(LOG_S_GRID) - 1) * refine + 1)
    lm = np.stack([np.interp(ls, LOG_S_GRID, np.log(np.maximum(row, 1e-30))) for row in m3d])
    m = np.exp(lm)                                                   # (N, n)
    dm = np.diff(m, axis=1)                                          # (N, n-1)
    r_mid = r_half[:, None] * 10.0 ** (0.5 * (ls[1:] + ls[:-1]))[None, :]
    x = np.asarray(rp, dtype=float)[..., None] / r_mid[:, None, :]     # (N, P, n-1)
    wgt = np.where(x >= 1.0, 1.0, 1.0 - np.sqrt(np.clip(1.0 - x * x, 0.0, 1.0)))
    return m[:, None, 0] + np.einsum("gpk,gk->gp", wgt, dm)


def _interp_rows_log(table: np.ndarray, lr: np.ndarray, lq: np.ndarray) -> np.ndarray:
    """Per-row linear interpolation of ``table`` (N, k) given on log radii ``lr`` (N, k) (a common log step) at
    log radii ``lq`` (N, m); values beyond the ends are held constant."""
    step = lr[:, 1:2] - lr[:, 0:1]
    f = np.clip((lq - lr[:, 0:1]) / step, 0.0, lr.shape[1] - 1.000001)
    i = np.floor(f).astype(np.int64)
    t = f - i
    lo = np.take_along_axis(table, i, axis=1)
    hi = np.take_along_axis(table, i + 1, axis=1)
    return lo * (1.0 - t) + hi * t


def log_s_index(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower grid index and linear weight for radii ``s`` (units of r_half) on ``LOG_S_GRID``."""
    ls = np.clip(np.log10(np.maximum(s, 1e-12)), LOG_S_GRID[0], LOG_S_GRID[-1] - 1e-9)
    x = (ls - LOG_S_GRID[0]) / (LOG_S_GRID[1] - LOG_S_GRID[0])
    i = np.floor(x).astype(np.int32)
    return i, (x - i).astype(ls.dtype)


def interp_log_s(table: np.ndarray, s: np.ndarray, shared: bool = False) -> np.ndarray:
    """Interpolate per-galaxy tables (N, n_s) at radii ``s``.

    ``shared=True``: ``s`` has shape (P,) (same radii for every galaxy) -> (N, P).
    Otherwise ``s`` has shape (N, ...) -> same shape (galaxy-specific radii).
    """
    return interp_at(table, *log_s_index(s), shared=shared)


def interp_at(table: np.ndarray, i: np.ndarray, t: np.ndarray, shared: bool = False) -> np.ndarray:
    """:func:`interp_log_s` with a precomputed ``(i, t) = log_s_index(s)`` (reuse for several tables)."""
    if shared:
        return table[:, i] * (1.0 - t) + table[:, i + 1] * t
    flat_i = i.reshape(i.shape[0], -1)
    lo = np.take_along_axis(table, flat_i, axis=1)
    hi = np.take_along_axis(table, flat_i + 1, axis=1)
    tt = t.reshape(t.shape[0], -1)
    return (lo * (1.0 - tt) + hi * tt).reshape(i.shape)


# ---------------------------------------------------------------------------------------------------
def _mu(x: np.ndarray) -> np.ndarray:
    return np.log1p(x) - x / (1.0 + x)


_ABEL_CACHE: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def _abel_nodes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query radii (n_s, n_t) and weights for 2 int_0^inf f(sqrt(R^2+u^2)) du, u = R sinh t (dimensionless)."""
    if "nodes" not in _ABEL_CACHE:
        R = S_GRID[:, None]
        tmax = np.arccosh(np.maximum(S_GRID[-1] / S_GRID, 1.0 + 1e-9))[:, None]
        t = tmax * np.linspace(0.0, 1.0, _N_T)[None, :]
        q = R * np.cosh(t)                                         # query radius
        w = np.full(t.shape, 1.0)
        w[:, 0] = w[:, -1] = 0.5
        w = w * (tmax / (_N_T - 1)) * R * np.cosh(t) * 2.0         # du = R cosh t dt; factor 2 both sides
        i, f = log_s_index(q)
        _ABEL_CACHE["nodes"] = (i, f, w)
    return _ABEL_CACHE["nodes"]


def _abel_project(log_f: np.ndarray, r_half: np.ndarray) -> np.ndarray:
    """Project a spherical density-like table given as ln f (N, n_s) -> 2 int f du (N, n_s), physical units."""
    i, t, w = _abel_nodes()
    vals = np.exp(log_f[:, i] * (1.0 - t) + log_f[:, i + 1] * t)   # (N, n_s, n_t), log-linear interpolation
    return np.einsum("gst,st->gs", vals, w) * r_half[:, None]
