"""Catalogue simulator (science/simulators.md section 1): central galaxies' integrated properties -> log M200c.

Generative model. Halo mass h = log M200c from the halo mass function; a galaxy-halo connection drawn per galaxy
(``shmr='family'``, the default: one of six published / simulation SHMRs with a scatter, a normalisation shift,
a quenched offset and one of three quenching models, see :func:`shmr_components` and
``docs/science/halo_family.md``; or one fixed relation); the quenched flag q ~ Bernoulli(f_q(h)); the latent
log M* ~ N(SHMR(h) + shift - delta_q q, sigma); then x | (log M*, q) ~ N(mean_obs_given_mstar, cov_obs(q)),
linear-Gaussian with correlated intrinsic scatter plus measurement noise. The optional assembly latent a
(single relation only) correlates q and log M* at fixed h. :class:`~core.data.simulators.catalog_posterior.
ExactPosterior` uses the very same functions (single source of truth), so its posterior is exact up to quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from core.config import Config, param
from core.data.catalog import CatalogData
from core.data.simulators import physics as P
from core.errors import GPSError

__all__ = ["CatalogSimConfig", "FEATURES", "CHUNK_SIZE", "simulate_catalog", "mean_obs_given_mstar", "cov_obs",
           "quench_logprob", "prior_logpdf", "intrinsic_sigmas", "shmr_components", "quench_components",
           "component_mstar", "prior_correction"]

FEATURES = ("log_mstar", "log_sfr", "u_g", "g_r", "r_i", "i_z", "conc", "log_fgas")   # task input order
CHUNK_SIZE = 1024            # objects per RNG child stream (prefix property)
_PRIOR_FINE = 4001           # fine grid used to sample h from the HMF by inverse CDF


@dataclass(frozen=True)
class CatalogSimConfig(Config):
    """Settings of the catalogue simulator; defaults are section 7.0 of science/simulators.md."""

    z: float = param(0.0, help="Redshift of the sample (SHMR, main sequence, HMF)", min=0.0, max=1.0, step=0.05)
    logmh_min: float = param(10.5, help="Lower edge of log10(M200c/Msun)", min=9.5, max=14.0, step=0.1)
    logmh_max: float = param(15.0, help="Upper edge of log10(M200c/Msun)", min=11.0, max=15.5, step=0.1)
    prior: Literal["hmf", "flat"] = param("hmf", help="Halo-mass prior: the mass function (realistic) or flat "
                                                       "in log Mh (class-balanced training set)")
    flat_below: float = param(0.0, help="Flat prior only: draw log Mh flat from logmh_min - flat_below [dex]. A "
                              "proposal reaching below the physical prior's lower edge lets a model learn the "
                              "posterior there without an edge; reweighting to the halo mass function cuts it at "
                              "logmh_min", min=0.0, max=1.0, step=0.1)
    hmf: Literal["tinker08", "sheth99"] = param("tinker08", help="Halo mass function (Tinker08 M200c; "
                                                                 "Sheth-Tormen uses FoF masses)")
    cosmology: Literal["planck18", "planck15", "WMAP9"] = param("planck18", help="colossus cosmology")
    shmr: Literal["family", "moster13", "behroozi13", "moster18", "kravtsov18", "tng100", "eagle"] = param(
        "family", help="Stellar-to-halo mass relation: 'family' draws, per galaxy, the relation, its scatter, "
        "a normalisation shift, the quenched offset and the quenching model from the family_* lists "
        "(marginalised by the exact posterior); any other choice is one relation with sigma_shmr, delta_q and "
        "the fq_* quenching")
    sigma_shmr: float = param(0.18, help="Single relation: SHMR scatter in log M* [dex] (Moster18 uses its own "
                                         "mass-dependent scatter)", min=0.02, max=0.6, step=0.01)
    delta_q: float = param(0.15, help="Single relation: log M* lower by this for quenched centrals [dex]",
                           min=0.0, max=0.6, step=0.01)
    fq_log_mq: float = param(12.2, help="Single relation: Zu & Mandelbaum quenching mass log Mq", min=10.5,
                             max=14.0, step=0.05)
    fq_mu: float = param(0.38, help="Single relation: Zu & Mandelbaum quenching slope mu", min=0.05, max=3.0,
                         step=0.01)
    family_shmrs: tuple[str, ...] = param(P.SHMR_MODELS, help="Family: relations drawn with equal probability "
                                          "(Moster13, Behroozi13, Moster18, Kravtsov18, TNG100-like, EAGLE-like)")
    family_quench: tuple[str, ...] = param(P.QUENCH_MODELS, help="Family: quenched-fraction models f_q(Mh) drawn "
                                           "with equal probability (zm16, tng100, eagle)")
    family_sigmas: tuple[float, ...] = param((0.12, 0.16, 0.20), help="Family: SHMR scatters [dex] (literature "
                                             "0.14-0.20; TNG100 ~0.12)", advanced=True)
    family_shifts: tuple[float, ...] = param((-0.1, 0.0, 0.1), help="Family: normalisation shifts of log M* [dex] "
                                             "(stellar-mass systematics: SPS, IMF, aperture)", advanced=True)
    family_delta_q: tuple[float, ...] = param((0.0, 0.15, 0.3), help="Family: quenched-SHMR offsets [dex]",
                                              advanced=True)
    assembly_latent: bool = param(False, help="Add the assembly latent a ~ N(0,1) (3rd quadrature dimension)")
    rho_qa: float = param(0.4, help="Correlation of quenching with assembly (Gaussian copula)", min=-0.95,
                          max=0.95, advanced=True)
    rho_ea: float = param(0.3, help="Correlation of the SHMR residual with assembly", min=-0.95, max=0.95,
                          advanced=True)
    sigma_sf: float = param(0.25, help="Intrinsic scatter of log SFR about the main sequence [dex]",
                            min=0.01, max=1.0)
    delta_sf: float = param(1.5, help="Offset of quenched galaxies below the main sequence [dex]", min=0.0,
                            max=4.0)
    sigma_q: float = param(0.45, help="Intrinsic scatter of log SFR of quenched galaxies [dex]", min=0.01,
                           max=1.5)
    av_q: float = param(0.1, help="V-band attenuation of quenched galaxies [mag]", min=0.0, max=1.2)
    sigma_col_sf: float = param(0.06, help="Intrinsic scatter of g-r, r-i, i-z, star-forming [mag]",
                                min=0.005, max=0.5, advanced=True)
    sigma_ug_sf: float = param(0.10, help="Intrinsic scatter of u-g, star-forming [mag]", min=0.005, max=0.5,
                               advanced=True)
    sigma_col_q: float = param(0.04, help="Intrinsic scatter of g-r, r-i, i-z, quenched [mag]", min=0.005,
                               max=0.5, advanced=True)
    sigma_ug_q: float = param(0.07, help="Intrinsic scatter of u-g, quenched [mag] (design: 0.04 x 0.10/0.06)",
                              min=0.005, max=0.5, advanced=True)
    rho_col: float = param(0.7, help="Intrinsic correlation between colours", min=-0.9, max=0.95, advanced=True)
    rho_sfr_col: float = param(-0.6, help="Intrinsic correlation of log SFR with u-g and g-r", min=-0.95,
                               max=0.95, advanced=True)
    rho_sfr_red: float = param(-0.3, help="Intrinsic correlation of log SFR with r-i and i-z", min=-0.95,
                               max=0.95, advanced=True)
    rho_sfr_fgas: float = param(0.5, help="Intrinsic correlation of log SFR with log f_gas", min=-0.95,
                                max=0.95, advanced=True)
    rho_gr_c: float = param(0.3, help="Intrinsic correlation of g-r with concentration", min=-0.95, max=0.95,
                            advanced=True)
    sigma_c: float = param(0.25, help="Intrinsic scatter of the concentration C", min=0.01, max=1.0)
    sigma_fgas: float = param(0.35, help="Intrinsic scatter of log f_gas about xGASS [dex]", min=0.01, max=1.5)
    obs_logmstar: float = param(0.10, help="Measurement error of log M* [dex]", min=0.0, max=1.0)
    obs_logsfr_sf: float = param(0.20, help="Measurement error of log SFR, star-forming [dex]", min=0.0, max=1.5)
    obs_logsfr_q: float = param(0.40, help="Measurement error of log SFR, quenched [dex]", min=0.0, max=1.5)
    obs_u_g: float = param(0.08, help="Measurement error of u-g [mag]", min=0.0, max=1.0)
    obs_g_r: float = param(0.03, help="Measurement error of g-r [mag]", min=0.0, max=1.0)
    obs_r_i: float = param(0.03, help="Measurement error of r-i [mag]", min=0.0, max=1.0)
    obs_i_z: float = param(0.04, help="Measurement error of i-z [mag]", min=0.0, max=1.0)
    obs_conc: float = param(0.10, help="Measurement error of C", min=0.0, max=1.0)
    obs_log_fgas: float = param(0.10, help="Measurement error of log f_gas [dex]", min=0.0, max=1.0)
    features: tuple[str, ...] = param(FEATURES, help="Features written to the catalogue (any subset, any order)")
    missing_fraction: float = param(0.0, help="Fraction of feature values blanked to NaN at random (MCAR)",
                                    min=0.0, max=0.9, step=0.05)
    n_h: int = param(281, help="Exact posterior: log Mh grid nodes", min=21, max=2001, advanced=True)
    dm_exact: float = param(0.01, help="Exact posterior: spacing of the log M* integration grid [dex]",
                            min=0.001, max=0.05, advanced=True)
    n_a: int = param(12, help="Exact posterior: Gauss-Hermite nodes in the assembly latent", min=4, max=32,
                     advanced=True)

    def logmh_range(self) -> tuple[float, float]:
        """Support [lo, hi] of the halo-mass prior of the set (a flat proposal reaches ``flat_below`` lower)."""
        lo = self.logmh_min - (self.flat_below if self.prior == "flat" else 0.0)
        return lo, self.logmh_max

    def validate(self) -> None:
        if self.logmh_max - self.logmh_min < 0.5:
            raise GPSError("halo-mass range is too narrow", source="CatalogSimConfig", field="logmh_max",
                           expected=f">= logmh_min + 0.5 = {self.logmh_min + 0.5}", found=str(self.logmh_max))
        bad = [f for f in self.features if f not in FEATURES]
        if bad or not self.features or len(set(self.features)) != len(self.features):
            raise GPSError("invalid feature list", source="CatalogSimConfig", field="features",
                           expected=f"distinct names from {', '.join(FEATURES)}", found=", ".join(self.features))
        if self.shmr == "family":
            for name, values, allowed in (("family_shmrs", self.family_shmrs, P.SHMR_MODELS),
                                          ("family_quench", self.family_quench, P.QUENCH_MODELS)):
                if not values or any(v not in allowed for v in values) or len(set(values)) != len(values):
                    raise GPSError("invalid family list", source="CatalogSimConfig", field=name,
                                   expected=f"distinct names from {', '.join(allowed)}", found=", ".join(values))
            for name, values, lo, hi in (("family_sigmas", self.family_sigmas, 0.02, 0.6),
                                         ("family_shifts", self.family_shifts, -0.5, 0.5),
                                         ("family_delta_q", self.family_delta_q, 0.0, 0.6)):
                if not values or any(not lo <= v <= hi for v in values):
                    raise GPSError("invalid family list", source="CatalogSimConfig", field=name,
                                   expected=f"one or more numbers in [{lo}, {hi}]",
                                   found=", ".join(map(str, values)) or "empty")
            if self.assembly_latent:
                raise GPSError("the assembly latent needs a single relation", source="CatalogSimConfig",
                               field="assembly_latent", expected="shmr = one relation (not 'family')",
                               found="shmr = 'family'")
        for q in (0, 1):
            try:
                np.linalg.cholesky(cov_obs(q, self))
            except np.linalg.LinAlgError:
                raise GPSError("intrinsic correlations do not form a positive-definite matrix",
                               source="CatalogSimConfig", field="rho_*",
                               expected="a valid correlation matrix", found=f"not positive definite (q={q})")


def simulate_catalog(n: int, seed: int = 0, config: CatalogSimConfig | None = None) -> CatalogData:
    """Simulate ``n`` central galaxies; deterministic in ``seed``; ``simulate(m)`` is a prefix of ``simulate(n>m)``.

    Returns features in ``config.features`` order (canonical task units), target ``log_mh`` [dex(Msun)] and
    ``extra`` latents: ``e`` [dex], ``q`` (0/1), ``log_mstar_true`` [dex(Msun)], ``bt``, ``logz`` [dex], ``a``.
    """
    import core
    from core.tasks import get_task

    cfg = config or CatalogSimConfig()
    if n < 0:
        raise GPSError("negative number of galaxies", source="simulate_catalog", field="n", expected=">= 0",
                       found=str(n))
    n_chunks = -(-n // CHUNK_SIZE)
    children = np.random.SeedSequence(seed).spawn(n_chunks)
    parts = [_simulate_chunk(np.random.Generator(np.random.PCG64(s)), cfg) for s in children]
    full = {k: (np.concatenate([p[k] for p in parts])[:n] if parts else np.zeros((0,) + _SHAPES.get(k, ())))
            for k in _KEYS}
    idx = [FEATURES.index(f) for f in cfg.features]
    x = full["x"][:, idx]
    x[full["missing"][:, idx].astype(bool)] = np.nan
    task = get_task("halo_mass")
    units = {q.name: q.unit for q in task.inputs + task.targets}
    extra = {k: full[k] for k in ("e", "q", "log_mstar_true", "bt", "logz")}
    if cfg.shmr == "family":   # which component of shmr_components / quench_components made each galaxy
        extra["relation"] = full["relation"].astype(np.int64)
        extra["quench_model"] = full["quench_model"].astype(np.int64)
    if cfg.assembly_latent:
        extra["a"] = full["a"]
    meta = {"source": "simulator", "simulator": "catalog", "task": "halo_mass", "config": cfg.to_dict(),
            "config_hash": cfg.config_hash(), "seed": int(seed), "n": int(n), "version": core.__version__,
            "mass_definition": "200c" if cfg.hmf == "tinker08" else "fof"}
    return CatalogData(x=x, features=tuple(cfg.features), y=full["h"][:, None], targets=("log_mh",),
                       ids=np.arange(n, dtype=np.int64), units={k: units[k] for k in cfg.features + ("log_mh",)},
                       meta=meta, extra=extra)


def mean_obs_given_mstar(mstar, q, cfg: CatalogSimConfig) -> np.ndarray:
    """Noiseless mean of the 8 observables (``FEATURES`` order) given the latent log M* and the quenched flag q.

    Every observable depends on the halo only through (log M*, q): this is what lets the exact posterior
    integrate over log M* on a grid, whatever galaxy-halo connection (or family of them) made log M*.
    Shape ``broadcast(mstar, q) + (8,)``.
    """
    mstar, q = np.broadcast_arrays(np.asarray(mstar, float), np.asarray(q, float))
    sfr = P.ms_logsfr(mstar, cfg.z, cfg.cosmology) - cfg.delta_sf * q
    ssfr = sfr - mstar
    logz = P.mzr_logz(mstar)
    av = np.where(q > 0, cfg.av_q, np.clip(0.3 + 0.3 * (mstar - 10.0), 0.0, 1.2))
    col = P.sps_colours(ssfr, logz, av)
    conc = P.petrosian_c(P.bt_mean(mstar, q))
    fgas = P.xgass_logfhi(ssfr)
    return np.stack([mstar, sfr, col["u_g"], col["g_r"], col["r_i"], col["i_z"], conc, fgas], axis=-1)


def shmr_components(cfg: CatalogSimConfig) -> list[tuple[str, float, float | None, float, float]]:
    """The galaxy-halo connections the simulator draws from: (relation, shift, sigma, delta_q, weight) tuples.

    A galaxy's latent log M* given log Mh = h and quenched flag q is
    N(SHMR_relation(h) + shift - delta_q * q, sigma(h)). ``shmr='family'``: the product of the ``family_*``
    lists, equal weights (one draw per galaxy, independent of the quenching model); a single relation: one
    component with ``sigma_shmr`` (``sigma=None`` keeps Moster18's own mass-dependent scatter) and ``delta_q``.
    """
    if cfg.shmr != "family":
        return [(cfg.shmr, 0.0, None if cfg.shmr == "moster18" else cfg.sigma_shmr, cfg.delta_q, 1.0)]
    combos = [(r, sh, sg, dq) for r in cfg.family_shmrs for sh in cfg.family_shifts for sg in cfg.family_sigmas
              for dq in cfg.family_delta_q]
    return [c + (1.0 / len(combos),) for c in combos]


def quench_components(cfg: CatalogSimConfig) -> list[tuple[float, float, float]]:
    """Quenched-fraction models f_q(h) = 1 - exp[-(Mh/Mq)^mu] drawn per galaxy: (log Mq, mu, weight)."""
    if cfg.shmr != "family":
        return [(cfg.fq_log_mq, cfg.fq_mu, 1.0)]
    return [P.QUENCH_PARAMS[k] + (1.0 / len(cfg.family_quench),) for k in cfg.family_quench]


def component_mstar(h, q, comp, cfg: CatalogSimConfig) -> tuple[np.ndarray, np.ndarray]:
    """(median log M*, scatter) of one ``shmr_components`` entry at halo mass h and quenched flag q."""
    relation, shift, sigma, delta_q, _ = comp
    h = np.asarray(h, float)
    mu = P.shmr_logmstar(h, cfg.z, relation) + shift - delta_q * np.asarray(q, float)
    sd = P.shmr_scatter(h, relation, 0.18) if sigma is None else np.full_like(h, sigma)
    return mu, sd


def cov_obs(q: int, cfg: CatalogSimConfig) -> np.ndarray:
    """Covariance (8, 8) of the observables given the latents: D_q R D_q (intrinsic) + diag(sigma_obs^2)."""
    d = intrinsic_sigmas(q, cfg)
    r = np.eye(8)
    pairs = {(1, 2): cfg.rho_sfr_col, (1, 3): cfg.rho_sfr_col, (1, 4): cfg.rho_sfr_red, (1, 5): cfg.rho_sfr_red,
             (1, 7): cfg.rho_sfr_fgas, (3, 6): cfg.rho_gr_c}
    for i in range(2, 6):
        for j in range(i + 1, 6):
            pairs[(i, j)] = cfg.rho_col
    for (i, j), rho in pairs.items():
        r[i, j] = r[j, i] = rho
    obs = np.array([cfg.obs_logmstar, cfg.obs_logsfr_q if q else cfg.obs_logsfr_sf, cfg.obs_u_g, cfg.obs_g_r,
                    cfg.obs_r_i, cfg.obs_i_z, cfg.obs_conc, cfg.obs_log_fgas])
    return d[:, None] * r * d[None, :] + np.diag(obs ** 2)


def intrinsic_sigmas(q: int, cfg: CatalogSimConfig) -> np.ndarray:
    """Intrinsic (astrophysical) scatter of each observable given the latents, shape (8,); 0 for log M*."""
    if q:
        return np.array([0.0, cfg.sigma_q, cfg.sigma_ug_q, cfg.sigma_col_q, cfg.sigma_col_q, cfg.sigma_col_q,
                         cfg.sigma_c, cfg.sigma_fgas])
    return np.array([0.0, cfg.sigma_sf, cfg.sigma_ug_sf, cfg.sigma_col_sf, cfg.sigma_col_sf, cfg.sigma_col_sf,
                     cfg.sigma_c, cfg.sigma_fgas])


def quench_logprob(h, cfg: CatalogSimConfig, a=None) -> tuple[np.ndarray, np.ndarray]:
    """(log P(q=0 | h[, a]), log P(q=1 | h[, a])), marginal over the family's quenching models.

    With the assembly latent (single relation only) a Gaussian copula keeps f_q(h).
    """
    from scipy.special import log_ndtr, ndtri

    fq = sum(w * P.quenched_fraction(h, lmq, mu) for lmq, mu, w in quench_components(cfg))
    fq = np.clip(fq, 1e-12, 1 - 1e-12)
    if a is None or not cfg.assembly_latent:
        return np.log1p(-fq), np.log(fq)
    s = np.sqrt(1.0 - cfg.rho_qa ** 2)
    t = (cfg.rho_qa * np.asarray(a, float) + ndtri(fq)) / s
    return log_ndtr(-t), log_ndtr(t)


def prior_logpdf(h, cfg: CatalogSimConfig) -> np.ndarray:
    """log p(h) [per dex] of the halo-mass prior on its support ``cfg.logmh_range()`` (-inf outside)."""
    fine, pdf = _prior_table(cfg)
    h = np.asarray(h, float)
    out = np.interp(h, fine, np.log(pdf))
    lo, hi = cfg.logmh_range()
    return np.where((h >= lo) & (h <= hi), out, -np.inf)


# ---------------------------------------------------------------------------------------------------
_KEYS = ("h", "e", "q", "a", "log_mstar_true", "bt", "logz", "x", "missing", "relation", "quench_model")
_SHAPES = {"x": (8,), "missing": (8,)}


def _simulate_chunk(rng: np.random.Generator, cfg: CatalogSimConfig) -> dict[str, np.ndarray]:
    """One full chunk of CHUNK_SIZE objects; every draw has a fixed size so prefixes are reproducible."""
    m = CHUNK_SIZE
    fine, pdf = _prior_table(cfg)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(fine))])
    h = _inverse_cdf_linear_pdf(rng.random(m), fine, pdf, cdf / cdf[-1])
    a = rng.standard_normal(m)
    comps, quench = shmr_components(cfg), quench_components(cfg)
    ci = rng.choice(len(comps), size=m, p=[c[-1] for c in comps])           # galaxy-halo connection per galaxy
    qi = rng.choice(len(quench), size=m, p=[c[-1] for c in quench])        # quenching model per galaxy
    u_e, u_q = rng.standard_normal(m), rng.random(m)
    noise = rng.standard_normal((m, 8))
    missing = rng.random((m, 8)) < cfg.missing_fraction
    if cfg.assembly_latent:
        lp0, lp1 = quench_logprob(h, cfg, a)
    else:
        lmq = np.array([c[0] for c in quench])[qi]
        mu_q = np.array([c[1] for c in quench])[qi]
        lp1 = np.log(np.clip(P.quenched_fraction(h, lmq, mu_q), 1e-300, 1.0))
    q = (u_q < np.exp(lp1)).astype(float)
    mstar, sd = np.empty(m), np.empty(m)
    for k in np.unique(ci):
        sel = ci == k
        mstar[sel], sd[sel] = component_mstar(h[sel], q[sel], comps[k], cfg)
    e_std = np.sqrt(1.0 - cfg.rho_ea ** 2) if cfg.assembly_latent else 1.0
    e = u_e * sd * e_std
    mstar = mstar + e
    if cfg.assembly_latent:
        mstar = mstar + cfg.rho_ea * sd * a
    mu = mean_obs_given_mstar(mstar, q, cfg)
    x = np.empty_like(mu)
    for qq in (0, 1):
        sel = q == qq
        x[sel] = mu[sel] + noise[sel] @ np.linalg.cholesky(cov_obs(qq, cfg)).T
    return {"h": h, "e": e, "q": q, "a": a, "log_mstar_true": mstar, "bt": P.bt_mean(mstar, q),
            "logz": P.mzr_logz(mstar), "x": x, "missing": missing, "relation": ci.astype(float),
            "quench_model": qi.astype(float)}


def prior_correction(cfg: CatalogSimConfig, n_grid: int = 451) -> dict | None:
    """A set drawn flat in log Mh is a *proposal*: a model trained on it learns p(Mh | x) under the flat prior; the
    physical prior is the halo mass function (``prior="hmf"``) on [logmh_min, logmh_max]. Returns the log ratio
    log p_hmf - log p_flat on ``n_grid`` nodes of [logmh_min, logmh_max] (None for an HMF set); the grid is the
    physical support, so a proposal reaching lower (``flat_below``) is cut at logmh_min by the reweighting."""
    if cfg.prior != "flat":
        return None
    grid = np.linspace(cfg.logmh_min, cfg.logmh_max, n_grid)
    fine, pdf = _prior_table_cached(cfg.logmh_min, cfg.logmh_max, "hmf", cfg.hmf, cfg.z, cfg.cosmology)
    hmf = np.interp(grid, fine, pdf)
    hmf = hmf / np.trapezoid(hmf, grid)
    lo, hi = cfg.logmh_range()
    return {"target": "log_mh", "grid": grid, "log_ratio": np.log(hmf) + np.log(hi - lo),
            "physical": {"prior": "hmf"}}


def _prior_table(cfg: CatalogSimConfig) -> tuple[np.ndarray, np.ndarray]:
    return _prior_table_cached(*cfg.logmh_range(), cfg.prior, cfg.hmf, cfg.z, cfg.cosmology)


def _prior_table_cached(lo: float, hi: float, prior: str, hmf: str, z: float, cosmo: str):
    key = (lo, hi, prior, hmf, z, cosmo)
    if key not in _PRIOR_CACHE:
        fine = np.linspace(lo, hi, _PRIOR_FINE)
        if prior == "flat":
            pdf = np.full_like(fine, 1.0 / (hi - lo))
        else:
            mdef = "200c" if hmf == "tinker08" else "fof"
            pdf = P.hmf_prior(fine, z, mdef=mdef, model=hmf, cosmo=cosmo)
        _PRIOR_CACHE[key] = (fine, pdf)
    return _PRIOR_CACHE[key]


_PRIOR_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _inverse_cdf_linear_pdf(u: np.ndarray, grid: np.ndarray, pdf: np.ndarray, cdf: np.ndarray) -> np.ndarray:
    """Exact inverse CDF of the piecewise-linear density through (grid, pdf) (solves the per-cell quadratic)."""
    k = np.clip(np.searchsorted(cdf, u, side="right") - 1, 0, len(grid) - 2)
    dx = grid[k + 1] - grid[k]
    norm = cdf[-1] if cdf[-1] > 0 else 1.0
    p0, p1 = pdf[k], pdf[k + 1]
    total = 0.5 * (p0 + p1) * dx
    target = (u - cdf[k]) * total / np.maximum(cdf[k + 1] - cdf[k], 1e-300) / norm
    slope = (p1 - p0) / dx
    with np.errstate(invalid="ignore", divide="ignore"):
        disc = np.sqrt(np.maximum(p0 ** 2 + 2.0 * slope * target, 0.0))
        t = np.where(np.abs(slope) > 1e-12 * np.maximum(p0, 1e-300), (disc - p0) / slope, target / p0)
    return grid[k] + np.clip(t, 0.0, dx)
