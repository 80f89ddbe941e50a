"""Statistics measured on RENDERED IFU maps, the way an observer measures them (docs/science/ifu_calibration.md).

These functions read only the map channels and the pixel scale (plus the geometry an observer also has: the
centre of the map), never the simulator's input draws, so that tests can check the simulator's OUTPUT against
published relations:

* :func:`half_light_radius` -- circular-aperture radius enclosing half of a summed quantity (r-band light from
  ``mu_r``, or stellar mass from ``log_sigma_star``), as the renderer defines ``re_kpc`` (circular apertures);
* :func:`sigma_e` -- sigma_e^2 = sum F (V^2 + sigma^2) / sum F inside R_e (Cappellari+13 ATLAS3D XV, eq. 29 ~
  the SAMI / MaNGA definition);
* :func:`age_gradient` -- least-squares slope of the map's (mass-weighted) log age against R / R_e over a radial
  range (Goddard+17 fit gradients out to 1.5 R_e);
* :func:`measure_population` -- all of these for a :class:`~core.data.simulators.ifu.MapSet`.

Maps are (N, H, W) with the galaxy centre at the array centre; masked pixels are ignored.
"""

from __future__ import annotations

import numpy as np

__all__ = ["radius_grid", "half_light_radius", "sigma_e", "age_gradient", "measure_population", "calibration_table"]


def radius_grid(size: int) -> np.ndarray:
    """Distance of every pixel centre from the map centre [pixels] (H, W)."""
    c = np.arange(size) + 0.5 - size / 2.0
    xx, yy = np.meshgrid(c, c, indexing="xy")
    return np.hypot(xx, yy)


def half_light_radius(weight: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Circular-aperture radius [pixels] enclosing half of ``weight`` summed over the (unmasked) map, (N,).

    Curve of growth in pixel-radius order, interpolated linearly between pixel radii. The total is the sum over the
    map: render wide enough (several R_e) for a total.
    """
    n, h, w = weight.shape
    r = radius_grid(h).ravel()
    order = np.argsort(r, kind="stable")
    rs = r[order]
    wt = np.where(mask, 0.0, weight) if mask is not None else weight
    cw = np.cumsum(wt.reshape(n, -1)[:, order].astype(float), axis=1)
    half = 0.5 * cw[:, -1:]
    i = np.clip((cw < half).sum(1), 1, len(rs) - 1)
    rows = np.arange(n)
    c0, c1 = cw[rows, i - 1], cw[rows, i]
    t = np.clip((half[:, 0] - c0) / np.maximum(c1 - c0, 1e-300), 0.0, 1.0)
    return rs[i - 1] + t * (rs[i] - rs[i - 1])


def sigma_e(vel: np.ndarray, sigma: np.ndarray, flux: np.ndarray, re_px: np.ndarray,
            mask: np.ndarray | None = None) -> np.ndarray:
    """Flux-weighted sqrt(<V^2 + sigma^2>) inside the circle R < R_e [km/s], (N,). V is taken about the
    flux-weighted mean velocity inside the aperture (the systemic velocity)."""
    n, h, _ = vel.shape
    inside = radius_grid(h)[None] < np.asarray(re_px)[:, None, None]
    if mask is not None:
        inside = inside & ~mask
    f = np.where(inside, flux, 0.0)
    tot = np.maximum(f.sum((1, 2)), 1e-300)
    v0 = (f * vel).sum((1, 2)) / tot
    m2 = (f * ((vel - v0[:, None, None]) ** 2 + sigma ** 2)).sum((1, 2)) / tot
    return np.sqrt(m2)


def age_gradient(log_age: np.ndarray, re_px: np.ndarray, r_min: float = 0.25, r_max: float = 1.5,
                 mask: np.ndarray | None = None, n_bins: int = 6) -> np.ndarray:
    """Slope d log age / d(R / R_e) [dex per R_e] of radially binned maps between r_min and r_max R_e, (N,).

    Each map is averaged in ``n_bins`` equal annuli (unmasked pixels) and a straight line fitted to the annulus
    means (Goddard+17 fit the azimuthally averaged profiles within 1.5 R_e). Maps with fewer than 3 filled annuli
    give NaN.
    """
    n, h, _ = log_age.shape
    r = radius_grid(h)[None] / np.asarray(re_px)[:, None, None]
    edges = np.linspace(r_min, r_max, n_bins + 1)
    out = np.full(n, np.nan)
    for k in range(n):
        ok = np.ones_like(r[k], dtype=bool) if mask is None else ~mask[k]
        xs, ys = [], []
        for a, b in zip(edges[:-1], edges[1:]):
            sel = ok & (r[k] >= a) & (r[k] < b)
            if sel.sum() >= 3:
                xs.append(r[k][sel].mean())
                ys.append(log_age[k][sel].mean())
        if len(xs) >= 3:
            out[k] = np.polyfit(xs, ys, 1)[0]
    return out


def measure_population(maps, wide=None) -> dict[str, np.ndarray]:
    """Per-map output statistics of a MapSet (noise-free maps are best; masks are honoured).

    ``maps``: the IFU maps (vel, sigma, log_age, mu_r); ``wide``: optional noise-free, PSF-free wide-field render
    of the same galaxies (mu_r, log_sigma_star) used for the sizes (default: ``maps``). Returns re_light_kpc,
    re_mass_kpc (from ``wide``), sigma_e [km/s] inside the light R_e measured on ``maps``, age_grad [dex / R_e],
    log_mstar, quenched, f_ex_total (population properties carried in props, for binning).
    """
    wide = maps if wide is None else wide
    pix_w = wide.pixel_rhalf * wide.props["rhalf_kpc"]
    light_w = 10.0 ** (-0.4 * wide.channel("mu_r"))
    mass_w = 10.0 ** wide.channel("log_sigma_star")
    re_l = half_light_radius(light_w, wide.mask) * pix_w
    re_m = half_light_radius(mass_w, wide.mask) * pix_w
    pix = maps.pixel_rhalf * maps.props["rhalf_kpc"]
    re_px = re_l / pix
    flux = np.where(maps.mask, 0.0, 10.0 ** (-0.4 * maps.channel("mu_r")))
    sig_e = sigma_e(maps.channel("vel"), maps.channel("sigma"), flux, re_px, maps.mask)
    grad = age_gradient(maps.channel("log_age"), re_px, mask=maps.mask)
    return {"re_light_kpc": re_l, "re_mass_kpc": re_m, "sigma_e": sig_e, "age_grad": grad,
            "log_mstar": maps.props["log_mstar"], "quenched": maps.props["quenched"],
            "f_ex_total": maps.props["f_ex_total"]}


def calibration_table(n_galaxies: int = 400, seed: int = 5) -> str:
    """Median output statistics per (type, 0.5-dex log M* bin) as a markdown table (docs/science/ifu_calibration.md).

    Renders ``n_galaxies`` x 1 projection twice (default maps without noise; a 96^2 PSF-free field over 12 r_1/2).
    """
    from core.data.simulators.ifu import IFUSimConfig, simulate_ifu

    base = IFUSimConfig(n_proj=1, survey_mode="ideal", noise=False, star_rate=0.0, mask_sn=0.0)
    maps = simulate_ifu(n_galaxies, seed=seed, config=base)
    wide = simulate_ifu(n_galaxies, seed=seed, config=base.replace(map_size=96, fov_rhalf=12.0, psf_fwhm=0.0,
                                                                    channels=("log_sigma_star", "mu_r")))
    m = measure_population(maps, wide)
    rows = ["| type | log M* | n | log R_e light | log R_e mass | log sigma_e | age grad | f_ex median | std log f_ex |",
            "|---|---|---|---|---|---|---|---|---|"]
    for typ, name in ((0, "late"), (1, "early")):
        for lo in np.arange(9.0, 11.7, 0.5):
            s = (m["quenched"] == typ) & (m["log_mstar"] >= lo) & (m["log_mstar"] < lo + 0.5)
            if s.sum() < 5:
                continue
            fx = m["f_ex_total"][s]
            rows.append(f"| {name} | {lo + 0.25:.2f} | {s.sum()} | {np.median(np.log10(m['re_light_kpc'][s])):.2f} | "
                        f"{np.median(np.log10(m['re_mass_kpc'][s])):.2f} | {np.median(np.log10(m['sigma_e'][s])):.2f} | "
                        f"{np.nanmedian(m['age_grad'][s]):+.3f} | {np.median(fx):.3f} | {np.std(np.log10(fx)):.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(calibration_table(*(int(a) for a in sys.argv[1:3])))
