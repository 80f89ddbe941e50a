"""Photometry simulator (simulators.md section 3): template fluxes + flux-space noise + asinh magnitudes.

Generative model (every choice is a :class:`PhotozSimConfig` field; the exact posterior in
:mod:`core.tasks.photoz.exact` uses the very same grid, priors and noise):

* z ~ n(z) on [z_grid[0], z_max]: SDSS-main-like ``z^2 exp(-z / 0.05)`` (mode 0.1) or HSC-like
  ``z^2 exp[-(z/0.5)^1.5]``; template fluxes are linear in z between grid nodes;
* theta = (age, Z, A_V[, tau]) on the discrete template grid, independent of z: Z uniform on {0.2, 0.4, 1, 2.5}
  Zsun; A_V on ``av_grid`` (0 to 1.5 mag in steps of 0.1) with weights exp(-A_V / av_mean) (the truncated
  exponential of simulators.md 3.5, discretised); tau uniform over the SFH's variants; age = f t_univ(z) with f =
  age / t_univ uniform on [age_frac_min, 1] (simulators.md 3.5: U(0.02, 1)), on ``n_age`` log-spaced nodes each
  carrying the uniform mass of its cell (finer where colours change fastest, young ages). The grid is dense on
  purpose: with the former 16 ages x 6 A_V (0.16 dex and 0.15-0.4 mag apart, colour steps of 0.03-0.1 mag against
  errors of 0.03) the template posterior could tell which of the 384 colour tracks a mock galaxy came from, which no
  learned model picks up from a training set we can afford: on such a grid an exact posterior on a 2x finer grid
  (which does not know the lattice) has a 3.6% larger sigma_NMAD (0.0214 vs 0.0206); on the default grid (40 x 16 x
  4 = 2,560 templates) none (0.0206 vs 0.0208 on its own) (``scripts/prior_edge_checks.py --lattice``, 1,500
  galaxies). The learned models' sigma_NMAD went from 1.13-1.24x the exact's to 1.02-1.09x (``bench photoz
  --quick``). Ages as a fraction of t_univ(z) also remove the step a fixed age grid had in p(z): its oldest ages
  dropped out one by one as t_univ(z) fell below them;
* formed mass: p(log10 M) ~ exp(-M / M_cut) on [logm_min, logm_max] (flat in log M below the cutoff, then the
  exponential fall-off of a Schechter (1976) mass function, M_cut = 10^logm_cut; ``logm_cut = 0``: flat with a hard
  upper bound), i.e. p(A) ~ exp(-A / A_cut) / A for the flux amplitude A = M / 1e10. The default cutoff,
  10^11.0 formed (about 10^10.8 living) mass, sits near the characteristic mass of the local stellar mass function
  (10^10.66, Baldry et al. 2012, GAMA). A hard bound at 10^11.5 truncated the posterior in z sharply for massive
  galaxies (where the implied mass crosses it): 24% of the test galaxies' exact medians moved by > 0.005 (1 + z)
  when it was lifted (``scripts/prior_edge_checks.py --photoz``), and no learned model could follow that cliff;
* noise: sigma_b(F) = sqrt((F_lim,b / 5)^2 + (calib_floor F)^2) (F_lim from the 5-sigma depth) evaluated at the
  *observed* flux is the reported error, and (F_obs - F_true) / sigma(F_obs) ~ N(0, 1) (:func:`observe` solves
  that quadratic). The reported error is then a function of the observables only: it cannot leak the noiseless
  flux (an error computed from the true flux would: sigma^2 - sigma_sky^2 = floor^2 F_true^2), and the
  likelihood in F_true is Gaussian with the known width sigma(F_obs) times the Jacobian |1 - eps sigma'(F_obs)|;
* magnitudes: SDSS asinh magnitudes (Lupton et al. 1999; softening b per band, SDSS values for ugriz,
  1.042 sigma_sky for HSC), so negative fluxes give finite magnitudes; errors 1.0857 sigma / sqrt(F^2 + 4 b^2);
* selection: observed r (SDSS) or i (HSC) brighter than ``selection_mag`` (acts on observables only, so it does
  not change p(z | x) for selected galaxies).

Randomness: one ``SeedSequence(seed).spawn`` child per chunk of 1024 proposals; ``simulate(n)`` is a prefix of
``simulate(m > n)`` for the same seed and config.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar, Literal

import numpy as np

from core.config import Config, param
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.tasks.photoz.templates import BANDS, TemplateGrid, template_grid

__all__ = [
    "PhotozSimConfig",
    "simulate",
    "grid_for",
    "z_prior",
    "theta_log_prior",
    "asinh_mag",
    "asinh_flux",
    "SOFTENING",
    "SHORT",
    "TARGETS",
    "observe",
    "error_model",
    "floor_errors",
]

SHORT = {"sdss": ("u", "g", "r", "i", "z"), "hsc": ("g", "r", "i", "z", "y")}
DEPTHS = {"sdss": (22.0, 22.2, 22.2, 21.3, 20.5), "hsc": (26.5, 26.1, 25.9, 25.1, 24.4)}
SOFTENING = {"sdss": (1.4e-10, 0.9e-10, 1.2e-10, 1.8e-10, 7.4e-10)}  # maggies (SDSS asinh b)
TARGETS = ("z", "age", "log_mstar", "met", "av")
_CHUNK = 1024
_UJY_PER_MAGGY = 3631e6


@dataclass(frozen=True)
class PhotozSimConfig(Config):
    """Settings of the photometry simulator (defaults: simulators.md section 7.0)."""

    # bumped when the output changes for the same settings (core.data.cache keys on it): 2 = filters on a 2 A grid
    CACHE_VERSION: ClassVar[int] = 2

    bands: Literal["sdss", "hsc"] = param("sdss", help="Filter set: SDSS ugriz or HSC grizy")
    sfh: Literal["burst", "exponential", "delayed"] = param(
        "burst", help="Star-formation history (burst = single burst of fixed age and metallicity)"
    )
    depths: tuple[float, ...] = param((), help="5-sigma depths (AB) per band; empty = survey defaults")
    calib_floor: float = param(0.02, help="Calibration floor (fraction of the flux)", min=0.0, max=0.5)
    z_max: float = param(0.0, help="Upper end of the redshift grid (0 = 1.0 for SDSS, 3.0 for HSC)", min=0.0, max=6.0)
    dz: float = param(0.0, help="Redshift grid step (0 = 0.0025 for SDSS, 0.005 for HSC)", min=0.0, max=0.1)
    logm_min: float = param(8.0, help="Lower bound of log10 formed mass", min=5.0, max=13.0)
    logm_max: float = param(12.5, help="Upper bound of log10 formed mass", min=5.0, max=13.0)
    logm_cut: float = param(
        11.0,
        help="Exponential cutoff of the formed-mass prior: p(log M) ~ exp(-10^(log M - "
        "logm_cut)) (Schechter-like high-mass end; 0 = flat up to logm_max)",
        min=0.0,
        max=13.0,
    )
    av_grid: tuple[float, ...] = param(tuple(round(0.1 * i, 1) for i in range(16)), help="A_V grid (Calzetti) [mag]")
    av_mean: float = param(0.3, help="Mean of the exponential A_V prior [mag]", min=0.01, max=5.0)
    n_age: int = param(40, help="Nodes of age / t_univ(z) (log-spaced on [age_frac_min, 1])", min=2, max=400)
    age_frac_min: float = param(
        0.02,
        help="Youngest age as a fraction of the Universe's age at z (age / t_univ ~ U(age_frac_min, 1))",
        min=1e-4,
        max=0.9,
    )
    selection_mag: float = param(
        0.0,
        help="Keep galaxies with observed r (SDSS) / i (HSC) brighter than this "
        "(0 = 17.77 for SDSS, 25 for HSC; 99 = no selection)",
        min=0.0,
        max=99.0,
    )

    def validate(self) -> None:
        if self.depths and len(self.depths) != 5:
            raise GPSError(
                "give one 5-sigma depth per band",
                source="PhotozSimConfig",
                field="depths",
                expected="5 numbers",
                found=str(len(self.depths)),
            )
        if self.logm_cut and self.logm_cut <= self.logm_min - 1.0:
            raise GPSError(
                "the formed-mass cutoff leaves no mass in the prior",
                source="PhotozSimConfig",
                field="logm_cut",
                expected=f"0 (no cutoff) or > logm_min - 1 = {self.logm_min - 1.0}",
                found=str(self.logm_cut),
            )
        if self.logm_max <= self.logm_min:
            raise GPSError(
                "logm_max must exceed logm_min",
                source="PhotozSimConfig",
                field="logm_max",
                expected=f"> {self.logm_min}",
                found=str(self.logm_max),
            )

    @property
    def age_fracs(self) -> np.ndarray:
        """Nodes f of age / t_univ(z), log-spaced on [age_frac_min, 1]."""
        return np.geomspace(self.age_frac_min, 1.0, self.n_age)

    # resolved defaults -------------------------------------------------------------------------
    @property
    def depth_values(self) -> np.ndarray:
        return np.asarray(self.depths or DEPTHS[self.bands], dtype=float)

    @property
    def z_grid(self) -> np.ndarray:
        zmax = self.z_max or (1.0 if self.bands == "sdss" else 3.0)
        step = self.dz or (0.0025 if self.bands == "sdss" else 0.005)
        return np.round(np.arange(2 * step, zmax + step / 2, step), 6)

    @property
    def sigma_sky(self) -> np.ndarray:
        """Sky-limited flux error per band [uJy] (F_lim / 5)."""
        return _UJY_PER_MAGGY * 10 ** (-0.4 * self.depth_values) / 5.0

    @property
    def softening(self) -> np.ndarray:
        """Asinh softening b per band [uJy]."""
        if self.bands == "sdss":
            return np.asarray(SOFTENING["sdss"]) * _UJY_PER_MAGGY
        return 1.042 * self.sigma_sky

    @property
    def selection(self) -> float:
        return self.selection_mag or (17.77 if self.bands == "sdss" else 25.0)


def grid_for(config: PhotozSimConfig) -> TemplateGrid:
    """The template grid of a configuration (cached per configuration)."""
    return _grid(config.to_json())


def z_prior(config: PhotozSimConfig, z: np.ndarray) -> np.ndarray:
    """Unnormalized redshift prior density n(z)."""
    z = np.asarray(z, dtype=float)
    if config.bands == "sdss":
        return z**2 * np.exp(-z / 0.05)
    return z**2 * np.exp(-((z / 0.5) ** 1.5))


def theta_log_prior(config: PhotozSimConfig, grid: TemplateGrid) -> np.ndarray:
    """log p(theta) (M,), the same at every z: uniform over Z and tau, exponential in A_V, uniform in
    f = age / t_univ: each node carries the uniform mass of its cell (edges at the geometric midpoints)."""
    f = config.age_fracs
    edges = np.concatenate([[f[0]], np.sqrt(f[1:] * f[:-1]), [f[-1]]])
    w_f = np.diff(edges) / (f[-1] - f[0]) if f.size > 1 else np.ones(1)
    w_av = np.exp(-np.asarray(config.av_grid, dtype=float) / config.av_mean)
    w_av = w_av / w_av.sum()
    n_met = np.unique(grid.met).size
    n_sfh = grid.n_templates // (f.size * n_met * w_av.size)
    # template order (sfh-variant, age, met, av): broadcast the per-axis weights
    lp = np.log(w_f)[None, :, None, None] + np.log(w_av)[None, None, None, :] - np.log(n_sfh * n_met)
    return np.broadcast_to(lp, (n_sfh, f.size, n_met, w_av.size)).ravel()


def asinh_mag(flux_ujy: np.ndarray, b_ujy: np.ndarray) -> np.ndarray:
    """SDSS asinh magnitude of fluxes [uJy] with softening ``b`` [uJy] (finite for negative fluxes)."""
    b = np.asarray(b_ujy) / _UJY_PER_MAGGY
    f = np.asarray(flux_ujy) / _UJY_PER_MAGGY
    return -2.5 / np.log(10) * (np.arcsinh(f / (2 * b)) + np.log(b))


def asinh_flux(mag: np.ndarray, b_ujy: np.ndarray) -> np.ndarray:
    """Inverse of :func:`asinh_mag`: flux [uJy]."""
    b = np.asarray(b_ujy) / _UJY_PER_MAGGY
    return 2 * b * np.sinh(-np.asarray(mag) * np.log(10) / 2.5 - np.log(b)) * _UJY_PER_MAGGY


def error_model(flux: np.ndarray, config: PhotozSimConfig) -> np.ndarray:
    """Reported flux error [uJy]: sigma(F) = sqrt((F_lim / 5)^2 + (calib_floor F)^2) at the *observed* flux."""
    return np.sqrt(config.sigma_sky**2 + (config.calib_floor * flux) ** 2)


def observe(true: np.ndarray, eps: np.ndarray, config: PhotozSimConfig) -> np.ndarray:
    """Observed fluxes with (F_obs - F_true) / sigma(F_obs) = eps (the root of a quadratic, |eps floor| < 1)."""
    f2 = config.calib_floor**2
    s2 = config.sigma_sky**2
    a = 1 - eps**2 * f2
    disc = eps**2 * (f2 * true**2 + a * s2)
    return (true + np.sign(eps) * np.sqrt(disc)) / a


def floor_errors(data: CatalogData, config: PhotozSimConfig) -> CatalogData:
    """Copy of real photometry whose errors include the simulator's calibration floor (added in quadrature:
    err^2 + (1.0857 floor)^2 for magnitudes, sigma^2 + (floor F)^2 for fluxes), so mock-trained models and the
    template posterior see errors of the kind they were built for (real SDSS errors are often < 0.01 mag)."""
    from dataclasses import replace

    x = data.x.copy()
    short = SHORT[config.bands]
    for b in short:
        if f"err_{b}" in data.features:
            j = data.features.index(f"err_{b}")
            x[:, j] = np.sqrt(x[:, j] ** 2 + (2.5 / np.log(10) * config.calib_floor) ** 2)
    extra = dict(data.extra)
    for b in short:
        if f"fluxerr_{b}" in extra:
            extra[f"fluxerr_{b}"] = np.sqrt(extra[f"fluxerr_{b}"] ** 2 + (config.calib_floor * extra[f"flux_{b}"]) ** 2)
    return replace(data, x=x, extra=extra, meta=dict(data.meta, error_floor=config.calib_floor))


def simulate(n: int, seed: int = 0, config: PhotozSimConfig | None = None) -> CatalogData:
    """``n`` selected mock galaxies: features mag_*/err_* (asinh AB), targets (z, age, log M*, [Z/H], A_V).

    ``extra`` holds flux_*/fluxerr_* [uJy], the noiseless fluxes true_flux_*, the template index ``tmpl`` and
    ``logm_formed``; ``meta`` the configuration (for the exact posterior)."""
    config = config or PhotozSimConfig()
    grid = grid_for(config)
    short = SHORT[config.bands]
    parts: list[dict[str, np.ndarray]] = []
    got, k = 0, 0
    children = np.random.SeedSequence(seed)
    while got < n:
        batch = _chunk(config, grid, np.random.default_rng(children.spawn(1)[0]))
        parts.append(batch)
        got += len(batch["z"])
        k += 1
        if k >= 100 and got < 1e-3 * k * _CHUNK:  # a rate, not a chunk count: large n must not trip it
            raise GPSError(
                "the selection keeps almost no galaxies",
                source="PhotozSimConfig",
                field="selection_mag",
                expected="a looser magnitude limit (it kept fewer than 1 in 1,000 proposals)",
                found=str(config.selection),
            )
    cat = {key: np.concatenate([p[key] for p in parts])[:n] for key in parts[0]}
    x = np.concatenate([cat["mag"], cat["err"]], axis=1)
    feats = tuple(f"mag_{b}" for b in short) + tuple(f"err_{b}" for b in short)
    y = np.stack(
        [
            cat["z"],
            grid.age_at(cat["tmpl"], cat["z"]),
            cat["logm"] + np.log10(grid.living_at(cat["tmpl"], cat["z"])),
            np.log10(grid.met[cat["tmpl"]]),
            grid.av[cat["tmpl"]],
        ],
        axis=1,
    )
    extra = {"tmpl": cat["tmpl"], "logm_formed": cat["logm"], "tau": grid.tau[cat["tmpl"]]}
    for j, b in enumerate(short):
        extra[f"flux_{b}"] = cat["flux"][:, j]
        extra[f"fluxerr_{b}"] = cat["sigma"][:, j]
        extra[f"true_flux_{b}"] = cat["true"][:, j]
    units = {f: "mag" for f in feats} | {"z": "", "age": "Gyr", "log_mstar": "dex(solMass)", "met": "dex", "av": "mag"}
    return CatalogData(
        x=x,
        features=feats,
        y=y,
        targets=TARGETS,
        units=units,
        extra=extra,
        meta={
            "source": "simulator",
            "simulator": "photometry",
            "task": "photoz",
            "config": config.to_dict(),
            "seed": int(seed),
            "bands": config.bands,
        },
    )


# -- private -------------------------------------------------------------------------------------------------
@lru_cache(maxsize=4)
def _grid(config_json: str) -> TemplateGrid:
    import json

    cfg = PhotozSimConfig.from_dict(json.loads(config_json))
    return template_grid(BANDS[cfg.bands], cfg.z_grid, sfh=cfg.sfh, av_grid=cfg.av_grid, age_fracs=cfg.age_fracs)


@lru_cache(maxsize=4)
def _z_cdf(config_json: str) -> tuple[np.ndarray, np.ndarray]:
    import json

    cfg = PhotozSimConfig.from_dict(json.loads(config_json))
    zg = cfg.z_grid
    fine = np.linspace(zg[0], zg[-1], 20001)
    p = z_prior(cfg, fine)
    c = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(fine))])
    return fine, c / c[-1]


def logm_from_uniform(u: np.ndarray, cfg: PhotozSimConfig) -> np.ndarray:
    """log10 formed mass from uniform deviates ``u`` by the inverse CDF of p(log M) ~ exp(-10^(log M - logm_cut)) on
    [logm_min, logm_max] (tabulated on 4,001 nodes, linear between them; flat when ``logm_cut`` is 0)."""
    if not cfg.logm_cut:
        return cfg.logm_min + (cfg.logm_max - cfg.logm_min) * u
    fine, cdf = _logm_cdf(cfg.logm_min, cfg.logm_max, cfg.logm_cut)
    return np.interp(u, cdf, fine)


@lru_cache(maxsize=4)
def _logm_cdf(lo: float, hi: float, cut: float) -> tuple[np.ndarray, np.ndarray]:
    fine = np.linspace(lo, hi, 4001)
    p = np.exp(-(10.0 ** (fine - cut)))
    c = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(fine))])
    return fine, c / c[-1]


def _chunk(cfg: PhotozSimConfig, grid: TemplateGrid, rng: np.random.Generator) -> dict[str, np.ndarray]:
    fine, cdf = _z_cdf(cfg.to_json())
    z = np.interp(rng.uniform(size=_CHUNK), cdf, fine)
    # theta from its discrete prior (independent of z: ages are fractions of t_univ(z))
    cdf = np.cumsum(np.exp(theta_log_prior(cfg, grid)))
    tmpl = np.minimum(np.searchsorted(cdf / cdf[-1], rng.uniform(size=_CHUNK), side="right"), grid.n_templates - 1)
    logm = logm_from_uniform(rng.uniform(size=_CHUNK), cfg)
    true = grid.interp(tmpl, z) * 10 ** (logm - 10.0)[:, None]
    flux = observe(true, rng.standard_normal(true.shape), cfg)
    sigma = error_model(flux, cfg)
    b = cfg.softening[None, :]
    mag = asinh_mag(flux, b)
    err = 2.5 / np.log(10) * sigma / np.sqrt(flux**2 + 4 * b**2)
    keep = mag[:, 2] < cfg.selection
    return {
        "z": z[keep],
        "tmpl": tmpl[keep],
        "logm": logm[keep],
        "true": true[keep],
        "sigma": sigma[keep],
        "flux": flux[keep],
        "mag": mag[keep],
        "err": err[keep],
    }
