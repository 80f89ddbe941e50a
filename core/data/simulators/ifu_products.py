"""IFU simulator products: one chunk of galaxies -> observed maps (PSF, bundle, S/N, noise, masks) + targets.

``Chunk`` bundles the intrinsic model of a chunk of galaxies; ``observe_maps`` renders one product (the IFU
maps, the central-mass kinematic maps or the r-band image) on its own grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dc_fields

import numpy as np

from core.data.simulators.ifu_config import IFUSimConfig
from core.data.simulators.ifu_dynamics import LOG_S_GRID, Components, Profiles, build_profiles
from core.data.simulators.ifu_observe import (bundle_radius_arcsec, convolve_psf, derived_errors,
                                              hex_footprint_outside, kpc_per_arcsec, snr_from_mu)
from core.data.simulators.ifu_population import Galaxies, components, draw_galaxies, galaxy_rngs
from core.data.simulators.ifu_render import (Populations, Views, aperture_targets, moments_from_planes,
                                             pixel_grid, populations, render_planes, views_from_normals)

__all__ = ["Chunk", "make_chunk", "observe_maps", "Observed", "scalar_props"]

_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclass
class Chunk:
    """The intrinsic model of a chunk of galaxies and their per-galaxy random streams."""

    gal: Galaxies
    comp: Components
    prof: Profiles
    pops: Populations
    views: Views
    rngs: list[np.random.Generator]


@dataclass
class Observed:
    """One rendered product for a chunk: arrays (N, P, ...) before flattening to maps."""

    maps: np.ndarray            # (N, P, C, H, W)
    ivar: np.ndarray            # (N, P, C, H, W)
    mask: np.ndarray            # (N, P, H, W) True = no data
    f_ex: np.ndarray            # (N, P, H, W) intrinsic ex-situ fraction
    galaxy: np.ndarray          # (N, P, H, W) intrinsic galaxy pixels
    pixel_arcsec: np.ndarray    # (N,)


def make_chunk(seed: int, start: int, stop: int, config: IFUSimConfig) -> Chunk:
    """Draw galaxies [start, stop) and build their mass model, radial profiles, populations and views."""
    rngs = galaxy_rngs(seed, start, stop)
    gal = draw_galaxies(rngs, np.arange(start, stop), config)
    comp = components(gal, config)
    prof = build_profiles(comp, gal.r_half)
    return Chunk(gal, comp, prof, populations(gal), views_from_normals(gal.normals, config.n_proj, config.q0), rngs)


def observe_maps(ch: Chunk, config: IFUSimConfig, size: int, fov_rhalf: float, channels: tuple[str, ...],
                 psf_fwhm: float, sn_ref: float, kind: str = "ifu") -> Observed:
    """Render, PSF-convolve (Gaussian x spaxel top-hat), crop, add noise, build ivar and masks.

    ``kind="ifu"``: MaNGA-like (bundle footprint unless survey_mode="ideal", S/N mask, foreground stars,
    noise drawn per 0.5" spaxel and resampled to the grid, so it is correlated within a spaxel).
    ``kind="image"``: imaging (no footprint, no S/N mask, independent noise per pixel, no spaxel top-hat).
    Draws noise from each galaxy's stream (in galaxy order), so results do not depend on the chunking.
    """
    gal, cfg = ch.gal, config
    n, p = ch.views.cos_i.shape
    kpa = kpc_per_arcsec(gal.redshift)
    pix_as = fov_rhalf * gal.r_half / (size * kpa)                       # arcsec per pixel (N,)
    # padding against FFT wrap-around: >= 3 sigma_PSF, quantised per galaxy (so chunking does not matter)
    need = 3.0 * (psf_fwhm / _FWHM) / pix_as
    levels = np.maximum(np.array([size // 8, 3 * size // 16, size // 4, 3 * size // 8, size // 2, 3 * size // 4,
                                  size]), 2)
    level = np.minimum(np.searchsorted(levels, need), len(levels) - 1)
    stack = f_ex = galaxy = None
    for lv in np.unique(level):
        idx = np.flatnonzero(level == lv)
        st, fx, gx = _convolved(_take_chunk(ch, idx), cfg, size, fov_rhalf, psf_fwhm, kind, int(levels[lv]),
                                pix_as[idx])
        if stack is None:
            stack = np.empty((n,) + st.shape[1:], np.float32)
            f_ex, galaxy = np.empty((n,) + fx.shape[1:], np.float32), np.empty((n,) + gx.shape[1:], bool)
        stack[idx], f_ex[idx], galaxy[idx] = st, fx, gx
    names = list(_PLANES)
    obs = moments_from_planes({k: stack[:, :, i] for i, k in enumerate(names)}, gal.redshift)
    snr = snr_from_mu(obs["mu_r"], sn_ref)
    err = derived_errors(snr, obs["sigma"], cfg.sigma_inst)
    maps = np.stack([obs[c] for c in channels], axis=2).astype(np.float32)
    sig = np.stack([err[c] for c in channels], axis=2).astype(np.float32)
    mask = np.zeros((n, p, size, size), dtype=bool)
    xs, ys = pixel_grid(size, fov_rhalf)
    if kind == "ifu":
        mask |= snr < cfg.mask_sn
        for g in range(n):
            x_as, y_as = xs * gal.r_half[g] / kpa[g], ys * gal.r_half[g] / kpa[g]
            if gal.coverage[g] > 0:
                mask[g] |= hex_footprint_outside(x_as, y_as, gal.n_fibres[g])[None]
            mask[g] |= _stars(ch.rngs[g], p, x_as, y_as, gal, g, cfg)
            if cfg.noise:
                maps[g] += sig[g] * _spaxel_noise(ch.rngs[g], (p, len(channels)), x_as, y_as, cfg.spaxel)
    elif cfg.noise:
        for g in range(n):
            maps[g] += sig[g] * ch.rngs[g].standard_normal(maps[g].shape, dtype=np.float32)
    _physical_range(maps, channels, gal.redshift)
    ivar = np.where(mask[:, :, None], 0.0, 1.0 / sig ** 2).astype(np.float32)
    maps = np.where(mask[:, :, None], 0.0, maps).astype(np.float32)
    return Observed(maps=maps, ivar=ivar, mask=mask, f_ex=f_ex.astype(np.float32), galaxy=galaxy,
                    pixel_arcsec=pix_as)


def scalar_props(ch: Chunk, config: IFUSimConfig) -> dict[str, np.ndarray]:
    """Per-view scalar targets and properties, each (N, P) float64 (integers for ids / flags)."""
    gal, views = ch.gal, ch.views
    n, p = views.cos_i.shape
    ap = aperture_targets(gal, ch.comp, ch.prof, ch.pops, views)
    i1 = int(np.argmin(np.abs(LOG_S_GRID)))                                # s = r / r_1/2 = 1
    per_gal = {
        "galaxy_id": gal.galaxy_id, "log_mstar": gal.log_mstar, "log_mh": gal.log_mh, "f_ex_total": gal.f_ex,
        "quenched": gal.quenched, "bt": gal.bt, "rhalf_kpc": gal.r_half, "re_disk_kpc": gal.re_disk,
        "redshift": gal.redshift, "n_fibres": gal.n_fibres, "coverage": gal.coverage, "c200": gal.c200,
        "k_ex": gal.k_ex, "assembly": gal.assembly, "kpc_per_arcsec": kpc_per_arcsec(gal.redshift),
        "log_mtot_rhalf": np.log10(ch.prof.m_tot3d[:, i1]),
        "f_dm_rhalf": 1.0 - ch.prof.m_star3d[:, i1] / ch.prof.m_tot3d[:, i1],
        "log_imf_alpha": np.log10(ch.comp.alpha),
    }
    out = {k: np.repeat(np.asarray(v)[:, None], p, axis=1) for k, v in per_gal.items()}
    out["projection"] = np.tile(np.arange(p), (n, 1))
    out["inclination_deg"] = np.degrees(np.arccos(np.clip(views.cos_i, 0, 1)))
    out["pa_deg"] = np.degrees(views.pa) % 180.0
    out["axis_ratio"] = views.axis_ratio
    out.update(ap)
    return out


# ---------------------------------------------------------------------------------------------------
_PLANES = ("mass", "lum_r", "lum_g", "lum_v", "lum_m2", "mass_age", "mass_z")


def _convolved(ch: Chunk, cfg: IFUSimConfig, size: int, fov_rhalf: float, psf_fwhm: float, kind: str, pad: int,
               pix_as: np.ndarray):
    """Render on the padded grid, PSF-convolve, crop: (N, P, n_planes, H, W), intrinsic f_ex and galaxy pixels."""
    x, y = pixel_grid(size, fov_rhalf, pad)
    planes = render_planes(ch.gal, ch.comp, ch.prof, ch.pops, ch.views, x, y)
    n, p = ch.views.cos_i.shape
    crop = (slice(None), slice(None), slice(pad, pad + size), slice(pad, pad + size))
    mass_in = planes["mass"][crop]
    f_ex = planes.pop("mass_ex")[crop] / np.maximum(mass_in, 1e-30)
    galaxy = np.log10(np.maximum(mass_in, 1e-30)) >= cfg.galaxy_logsigma_min
    stack = np.stack([planes[k] for k in _PLANES], axis=2).reshape(n, p * len(_PLANES), *x.shape)
    if psf_fwhm > 0:
        box = cfg.spaxel / pix_as if kind == "ifu" else None
        stack = convolve_psf(stack, psf_fwhm / _FWHM / pix_as, box)
    stack = stack.reshape(n, p, len(_PLANES), *x.shape)[:, :, :, pad:pad + size, pad:pad + size]
    return stack, f_ex, galaxy


def _physical_range(maps: np.ndarray, channels: tuple[str, ...], redshift: np.ndarray) -> None:
    """Keep measured values where a real pipeline can report them (issue 15: demo maps had sigma = -32 km/s and
    log age 11.88): the instrument-corrected dispersion is >= 0 (the MaNGA DAP's corrected sigma^2 < 0 is reported
    as 0 / flagged), and a spectral fit cannot return a log age outside its SSP templates nor older than the
    Universe at the galaxy's redshift (Planck18). In place on (N, P, C, H, W); inverse variances are unchanged."""
    from core.data.simulators.ifu_population import LOGAGE_MAX, LOGAGE_MIN, log_cosmic_age_yr

    if "sigma" in channels:
        c = channels.index("sigma")
        np.maximum(maps[:, :, c], 0.0, out=maps[:, :, c])
    if "log_age" in channels:
        c = channels.index("log_age")
        top = np.minimum(log_cosmic_age_yr(redshift), LOGAGE_MAX).astype(np.float32)[:, None, None, None]
        maps[:, :, c] = np.clip(maps[:, :, c], np.float32(LOGAGE_MIN), top)


def _take_chunk(ch: Chunk, idx: np.ndarray) -> Chunk:
    """The galaxies ``idx`` of a chunk (all per-galaxy arrays indexed on their first axis)."""
    if len(idx) == len(ch.rngs):
        return ch
    n = len(ch.rngs)

    def take(obj):
        kw = {f.name: (v[idx] if isinstance(v := getattr(obj, f.name), np.ndarray) and v.ndim and v.shape[0] == n
                       else v) for f in dc_fields(obj)}
        return type(obj)(**kw)

    return Chunk(ch.gal.subset(idx), take(ch.comp), take(ch.prof), take(ch.pops), take(ch.views),
                 [ch.rngs[i] for i in idx])


def _stars(rng: np.random.Generator, p: int, x_as: np.ndarray, y_as: np.ndarray, gal: Galaxies, g: int,
           cfg: IFUSimConfig) -> np.ndarray:
    """Masked foreground-star discs: Poisson(star_rate) per map, radius U(0.75, 2) arcsec, inside the bundle."""
    out = np.zeros((p,) + x_as.shape, dtype=bool)
    counts = rng.poisson(cfg.star_rate, size=p)
    r_max = float(bundle_radius_arcsec(gal.n_fibres[g])) if gal.coverage[g] > 0 else float(np.abs(x_as).max())
    for k in range(p):
        for _ in range(int(counts[k])):
            rr, th, rad = r_max * np.sqrt(rng.random()), 2 * np.pi * rng.random(), 0.75 + 1.25 * rng.random()
            out[k] |= (x_as - rr * np.cos(th)) ** 2 + (y_as - rr * np.sin(th)) ** 2 < rad ** 2
    return out


def _spaxel_noise(rng: np.random.Generator, lead: tuple[int, int], x_as: np.ndarray, y_as: np.ndarray,
                  spaxel: float) -> np.ndarray:
    """Unit Gaussian noise drawn per spaxel (spaxel grid centred on the galaxy) sampled at the map pixels."""
    ix = np.round(x_as / spaxel).astype(np.int64)
    iy = np.round(y_as / spaxel).astype(np.int64)
    off = int(max(np.abs(ix).max(), np.abs(iy).max()))
    ns = 2 * off + 1
    z = rng.standard_normal(lead + (ns, ns), dtype=np.float32)
    return z[..., iy + off, ix + off]
