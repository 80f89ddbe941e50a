"""IFU reference mode (science/simulators.md section 2.9): fixed geometry, 3 latents on a grid, exact posterior.

Latents u = (log M* [dex Msun], logit f_ex, log10 c200); log Mh follows the mean SHMR inverse of M*. Every
other property (inclination, PA, redshift, bundle, disk size, B/T, k_ex, gradients, populations) is fixed by
:class:`ReferenceGeometry`. Maps are the noiseless render m(u) plus independent Gaussian noise whose sigma and
mask are fixed per geometry (from the grid-centre render), so
``log p(x | u) = -1/2 sum_unmasked ivar (x - m(u))^2 + const`` exactly, and with the uniform prior over grid
nodes the posterior over nodes is exact; the ex-situ map posterior is the mixture of rendered target maps.
Noise here is independent per pixel (no spaxel correlation), which is what keeps the likelihood diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit

from core.config import Config, param
from core.data.simulators import physics as P
from core.data.simulators.ifu_config import CHANNEL_UNITS, IFUSimConfig
from core.data.simulators.ifu_dynamics import build_profiles, stellar_half_mass_radius
from core.data.simulators.ifu_observe import hex_footprint_outside, kpc_per_arcsec, snr_from_mu
from core.data.simulators.ifu_population import Galaxies, components
from core.data.simulators.ifu_products import Chunk, observe_maps
from core.data.simulators.ifu_render import Views, aperture_targets, pixel_grid, populations
from core.errors import GPSError

__all__ = ["ReferenceGeometry", "ReferenceGrid", "ReferencePosterior", "reference_grid", "simulate_reference",
           "reference_posterior", "REFERENCE_CHANNELS"]

REFERENCE_CHANNELS = ("log_sigma_star", "vel", "sigma", "log_age", "metallicity")
_BATCH = 128


@dataclass(frozen=True)
class ReferenceGeometry(Config):
    """Fixed nuisance parameters of the reference mode and the latent box (uniform prior on the grid nodes)."""

    inclination_deg: float = param(60.0, help="Disk inclination [deg]", min=0.0, max=90.0)
    pa_deg: float = param(30.0, help="Position angle of the major axis from the map x axis [deg]", min=0.0, max=180.0)
    redshift: float = param(0.03, help="Redshift", min=0.005, max=0.3)
    n_fibres: int = param(61, help="Bundle (19, 37, 61, 91, 127); 0 = no footprint", min=0, max=127)
    re_disk_kpc: float = param(4.0, help="Disk effective radius [kpc]", min=0.5, max=20.0)
    bt: float = param(0.3, help="In-situ bulge fraction", min=0.0, max=1.0)
    rb_ratio: float = param(0.35, help="Bulge R_e / disk R_e", min=0.05, max=1.5)
    k_ex: float = param(2.5, help="Ex-situ R_e / disk R_e", min=0.3, max=10.0)
    kappa_b: float = param(0.15, help="Bulge rotation (fraction of V_c)", min=0.0, max=1.0)
    quenched: int = param(0, help="Quenched flag (age offset)", min=0, max=1)
    age_grad: float = param(-0.11, help="Age gradient [dex / R_e]", min=-1.0, max=1.0)
    z_grad: float = param(-0.15, help="[Z/H] gradient [dex / R_e]", min=-1.0, max=1.0)
    ex_logage: float = param(10.02, help="Ex-situ log age [dex yr]", min=8.0, max=10.1)
    dlogm_sat: float = param(1.0, help="Satellites are this much less massive [dex]", min=0.0, max=3.0)
    logms_lo: float = param(10.2, help="log M* grid lower edge", min=8.5, max=12.0)
    logms_hi: float = param(11.4, help="log M* grid upper edge", min=8.5, max=12.5)
    logit_fex_lo: float = param(-3.5, help="logit f_ex grid lower edge", min=-8.0, max=5.0)
    logit_fex_hi: float = param(0.5, help="logit f_ex grid upper edge", min=-8.0, max=5.0)
    logc_lo: float = param(0.6, help="log10 c200 grid lower edge", min=0.0, max=1.6)
    logc_hi: float = param(1.2, help="log10 c200 grid upper edge", min=0.0, max=1.6)
    noise_scale: float = param(1.0, help="Multiplies the per-pixel errors (>1 widens the exact posterior so it "
                                         "spans several grid nodes)", min=0.01, max=1000.0)


@dataclass
class ReferenceGrid:
    """Pre-rendered reference grid. ``axes`` 3 arrays of node values; ``nodes`` (M, 3) in C order of the axes;
    ``maps`` (M, C, H, W) noiseless observables; ``f_ex`` (M, H, W) intrinsic target maps; ``scalars`` name ->
    (M,) (f_ex_total, log_mstar_re, log_mtot_re, log_ml_r); ``sigma`` (C, H, W) fixed noise; ``mask`` (H, W)."""

    axes: tuple[np.ndarray, np.ndarray, np.ndarray]
    nodes: np.ndarray
    maps: np.ndarray
    f_ex: np.ndarray
    scalars: dict[str, np.ndarray]
    sigma: np.ndarray
    mask: np.ndarray
    channels: tuple[str, ...]
    pixel_arcsec: float
    meta: dict[str, Any]

    @property
    def latent_names(self) -> tuple[str, str, str]:
        return ("log_mstar", "logit_f_ex", "log_c200")


@dataclass
class ReferencePosterior:
    """Exact posterior for n objects: ``weights`` (n, M) over grid nodes; per-pixel ``mean``/``std`` (n, H, W)
    and ``quantiles`` (n, len(levels), H, W) of the ex-situ map. Unpacks as (weights, mean, quantiles)."""

    weights: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    quantiles: np.ndarray
    levels: tuple[float, ...]
    grid: ReferenceGrid

    def __iter__(self):
        return iter((self.weights, self.mean, self.quantiles))

    def exceedance(self, threshold: float) -> np.ndarray:
        """P(f_ex > threshold) per pixel (n, H, W)."""
        return np.einsum("nm,mhw->nhw", self.weights, (self.grid.f_ex > threshold).astype(np.float64))

    def scalar_mean(self, name: str) -> np.ndarray:
        """Posterior mean of a scalar (a latent name or a grid scalar) (n,)."""
        return self.weights @ self._values(name)

    def pit(self, name: str, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Randomised PIT of scalar ``truth`` (n,) under the discrete posterior."""
        v = self._values(name)
        below = (self.weights * (v[None] < truth[:, None] - 1e-12)).sum(1)
        tie = (self.weights * (np.abs(v[None] - truth[:, None]) <= 1e-12)).sum(1)
        return below + rng.random(len(truth)) * tie

    def pixel_pit(self, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Randomised per-pixel PIT of a true ex-situ map stack (n, H, W)."""
        f = self.grid.f_ex[None]
        t = truth[:, None]
        below = np.einsum("nm,nmhw->nhw", self.weights, (f < t - 1e-7).astype(np.float64))
        tie = np.einsum("nm,nmhw->nhw", self.weights, (np.abs(f - t) <= 1e-7).astype(np.float64))
        return below + rng.random(below.shape) * tie

    def _values(self, name: str) -> np.ndarray:
        if name in self.grid.latent_names:
            return self.grid.nodes[:, self.grid.latent_names.index(name)]
        return self.grid.scalars[name]


def reference_grid(config: IFUSimConfig | None = None, geometry: ReferenceGeometry | None = None,
                   sizes: tuple[int, int, int] = (16, 16, 16), size: int | None = None,
                   channels: tuple[str, ...] = REFERENCE_CHANNELS) -> ReferenceGrid:
    """Render the reference grid once per geometry: noiseless maps and ex-situ targets at every node.

    Map size / FoV / PSF / S/N come from ``config`` (``size`` overrides ``config.map_size``). Cost: one Jeans
    solve and one batched FFT per node (~ 4096 nodes x 32^2 px in ~ 1 min on 2 cores).
    """
    cfg = config or IFUSimConfig()
    geo = geometry or ReferenceGeometry()
    size = int(size or cfg.map_size)
    bad = [c for c in channels if c not in CHANNEL_UNITS]
    if bad:
        raise GPSError("unknown map channel", source="reference_grid", field="channels",
                       expected=" | ".join(CHANNEL_UNITS), found=repr(bad))
    axes = (np.linspace(geo.logms_lo, geo.logms_hi, sizes[0]), np.linspace(geo.logit_fex_lo, geo.logit_fex_hi, sizes[1]),
            np.linspace(geo.logc_lo, geo.logc_hi, sizes[2]))
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    centre = np.array([[a[len(a) // 2] for a in axes]])
    r_unit = float(stellar_half_mass_radius(components(_galaxies(centre, geo, cfg, 1.0), cfg))[0])
    obs_cfg = cfg.replace(noise=False, star_rate=0.0, mask_sn=0.0, channels=tuple(channels))
    fid = _render(centre, geo, obs_cfg, r_unit, size, fiducial=True)
    maps, f_ex, scal = [], [], []
    for a in range(0, len(nodes), _BATCH):
        m, f, s = _render(nodes[a:a + _BATCH], geo, obs_cfg, r_unit, size)
        maps.append(m), f_ex.append(f), scal.append(s)
    # fixed mask (bundle footprint + S/N of the centre render) and fixed errors (from the centre render)
    _, _, _, fid_ivar, fid_mu = fid
    x, y = pixel_grid(size, cfg.fov_rhalf)
    kpa = float(kpc_per_arcsec(geo.redshift))
    mask = snr_from_mu(fid_mu, cfg.sn_ref) < cfg.mask_sn
    if geo.n_fibres > 0:
        mask |= hex_footprint_outside(x * r_unit / kpa, y * r_unit / kpa, geo.n_fibres)
    sigma = geo.noise_scale / np.sqrt(fid_ivar)
    scalars = {k: np.concatenate([s[k] for s in scal]) for k in scal[0]}
    meta = {"simulator": "ifu", "product": "reference_grid", "config": cfg.to_dict(), "geometry": geo.to_dict(),
            "sizes": list(sizes), "map_size": size, "r_unit_kpc": r_unit, "fov_kpc": cfg.fov_rhalf * r_unit,
            "note": "pixel grid in units of the grid-centre r_1/2; uniform prior over nodes"}
    return ReferenceGrid(axes=axes, nodes=nodes, maps=np.concatenate(maps).astype(np.float32),
                         f_ex=np.concatenate(f_ex).astype(np.float32), scalars=scalars,
                         sigma=sigma.astype(np.float32), mask=mask, channels=tuple(channels),
                         pixel_arcsec=cfg.fov_rhalf * r_unit / (size * kpa), meta=meta)


def simulate_reference(grid: ReferenceGrid, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Draw n test objects from the reference prior (uniform over nodes) with the grid's exact noise model.

    Returns ``{"node": (n,), "u": (n, 3), "maps": (n, C, H, W), "ivar": ..., "mask": (n, H, W), "f_ex": (n, H, W),
    and the grid scalars (n,)}``; masked pixels hold 0 with ivar 0.
    """
    rng = np.random.default_rng(seed)
    node = rng.integers(0, len(grid.nodes), size=n)
    noise = rng.standard_normal((n,) + grid.maps.shape[1:]).astype(np.float32)
    mask = np.repeat(grid.mask[None], n, 0)
    x = np.where(mask[:, None], 0.0, grid.maps[node] + grid.sigma[None] * noise).astype(np.float32)
    ivar = np.where(mask[:, None], 0.0, 1.0 / grid.sigma[None] ** 2).astype(np.float32) * np.ones_like(x)
    out = {"node": node, "u": grid.nodes[node], "maps": x, "ivar": ivar, "mask": mask, "f_ex": grid.f_ex[node]}
    out.update({k: v[node] for k, v in grid.scalars.items()})
    return out


def reference_posterior(grid: ReferenceGrid, maps: np.ndarray, ivar: np.ndarray, mask: np.ndarray | None = None,
                        levels: tuple[float, ...] = (0.025, 0.16, 0.5, 0.84, 0.975),
                        prune: float = 1e-10) -> ReferencePosterior:
    """Exact posterior of the reference mode for maps (n, C, H, W) with ivar (same shape) and mask (n, H, W).

    Weights over nodes from the Gaussian likelihood over unmasked pixels (uniform prior); per-pixel mean, std and
    quantiles of the mixture of rendered f_ex maps (nodes with weight < ``prune`` x max are dropped).
    """
    x = np.asarray(maps, dtype=np.float64)
    if x.ndim == 3:
        x, ivar = x[None], np.asarray(ivar)[None]
        mask = None if mask is None else np.asarray(mask)[None]
    if x.shape[1:] != grid.maps.shape[1:]:
        raise GPSError("maps do not match the reference grid", source="reference_posterior", field="maps",
                       expected=str(grid.maps.shape[1:]), found=str(x.shape[1:]))
    w8 = np.asarray(ivar, dtype=np.float64).copy()
    if mask is not None:
        w8 *= ~np.asarray(mask, dtype=bool)[:, None]
    n = x.shape[0]
    m = grid.maps.reshape(len(grid.nodes), -1).astype(np.float64)
    xf, wf = x.reshape(n, -1), w8.reshape(n, -1)
    loglik = -0.5 * ((wf * xf ** 2).sum(1)[:, None] - 2.0 * (wf * xf) @ m.T + wf @ (m ** 2).T)
    loglik -= loglik.max(1, keepdims=True)
    weights = np.exp(loglik)
    weights /= weights.sum(1, keepdims=True)
    fex = grid.f_ex.reshape(len(grid.nodes), -1).astype(np.float64)
    mean = weights @ fex
    std = np.sqrt(np.maximum(weights @ fex ** 2 - mean ** 2, 0.0))
    q = np.empty((n, len(levels), fex.shape[1]))
    for i in range(n):
        keep = np.flatnonzero(weights[i] > prune * weights[i].max())
        wk = weights[i, keep] / weights[i, keep].sum()
        vals = fex[keep]                                        # (K, P)
        order = np.argsort(vals, axis=0)
        cw = np.cumsum(wk[order], axis=0)                       # (K, P)
        sv = np.take_along_axis(vals, order, 0)
        for j, lev in enumerate(levels):
            k = (cw < lev - 1e-12).sum(0).clip(0, len(keep) - 1)
            q[i, j] = sv[k, np.arange(fex.shape[1])]
    hw = grid.f_ex.shape[1:]
    return ReferencePosterior(weights=weights, mean=mean.reshape((n,) + hw), std=std.reshape((n,) + hw),
                              quantiles=q.reshape((n, len(levels)) + hw), levels=tuple(levels), grid=grid)


# ---------------------------------------------------------------------------------------------------
def _galaxies(u: np.ndarray, geo: ReferenceGeometry, cfg: IFUSimConfig, r_unit: float) -> Galaxies:
    """Galaxies at latent nodes u (M, 3) with the fixed geometry; ``r_half`` is the fixed length unit."""
    m = len(u)
    log_mstar = u[:, 0]
    hgrid = np.linspace(10.0, 15.5, 2201)
    log_mh = np.interp(log_mstar, P.shmr_logmstar(hgrid, 0.0, cfg.shmr), hgrid)
    one = np.ones(m)
    return Galaxies(galaxy_id=np.arange(m), log_mstar=log_mstar, log_mh=log_mh, quenched=geo.quenched * one.astype(int),
                    assembly=0 * one, bt=geo.bt * one, re_disk=geo.re_disk_kpc * one, rb_ratio=geo.rb_ratio * one,
                    k_ex=geo.k_ex * one, f_ex=expit(u[:, 1]), c200=10.0 ** u[:, 2], kappa_b=geo.kappa_b * one,
                    logage0=np.minimum(P.gallazzi_logage(log_mstar) + cfg.age_q_offset * geo.quenched, 10.1),
                    age_grad=geo.age_grad * one, logz0=P.mzr_logz(log_mstar), z_grad=geo.z_grad * one,
                    ex_logage=geo.ex_logage * one, ex_logz=P.mzr_logz(log_mstar - geo.dlogm_sat),
                    normals=np.zeros((m, 3)), coverage=0 * one, redshift=geo.redshift * one,
                    n_fibres=np.full(m, max(geo.n_fibres, 19)), r_half=r_unit * one)


def _render(u: np.ndarray, geo: ReferenceGeometry, cfg: IFUSimConfig, r_unit: float, size: int,
            fiducial: bool = False):
    gal = _galaxies(u, geo, cfg, r_unit)
    comp = components(gal, cfg)
    prof = build_profiles(comp, gal.r_half)
    pops = populations(gal)
    views = Views(cos_i=np.full((len(u), 1), np.cos(np.radians(geo.inclination_deg))),
                  pa=np.full((len(u), 1), np.radians(geo.pa_deg)), q0=cfg.q0)
    ch = Chunk(gal, comp, prof, pops, views, [np.random.default_rng(0) for _ in range(len(u))])
    chans = tuple(cfg.channels)
    with_mu = chans + (("mu_r",) if "mu_r" not in chans else ())
    ob = observe_maps(ch, cfg.replace(channels=with_mu), size, cfg.fov_rhalf, with_mu, cfg.psf_fwhm, cfg.sn_ref, "ifu")
    maps = ob.maps[:, 0, :len(chans)]
    ap = aperture_targets(gal, comp, prof, pops, views)
    scal = {"f_ex_total": gal.f_ex, **{k: ap[k][:, 0] for k in ("log_mstar_re", "log_mtot_re", "log_ml_r")}}
    if fiducial:
        return maps, ob.f_ex[:, 0], scal, ob.ivar[0, 0, :len(chans)], ob.maps[0, 0, with_mu.index("mu_r")]
    return maps, ob.f_ex[:, 0], scal
