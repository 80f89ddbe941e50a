"""Template fluxes T_b(z, theta) per unit formed mass from the shipped rest-frame SPS table (numpy only).

The shipped table (``tables/templates_v1.npz``, built by ``scripts/build_photoz_templates.py`` with bagpipes
BC03-MILES + speclite filters; see ``tables/templates_v1.json``) holds dust-free rest-frame spectra
L_lambda [erg/s/A] per Msun formed for 7 star-formation histories x 16 ages x 4 metallicities, and the filter
responses. This module redshifts them analytically (the "faster build" route of simulators.md section 3.3):

    f_lambda,obs(lam) = L_lambda(lam / (1+z)) 10^(-0.4 A_V k(lam/(1+z)) / R_V) T_IGM(lam, z) / [4 pi D_L^2 (1+z)]

with the Calzetti (2000) curve (R_V = 4.05), the Madau (1995) Lyman-series IGM transmission (zero blueward of
the rest-frame Lyman limit) and Planck18 D_L (astropy), then integrates photon-counting responses into AB
f_nu [uJy]. Each band is one sparse (z x wavelength) matrix, so a whole grid is one dense matmul per band.
Fluxes are returned per 1e10 Msun formed (``MASS_UNIT``) to keep numbers O(1..1e4) uJy.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.errors import GPSError

__all__ = [
    "TABLE_DIR",
    "BANDS",
    "MASS_UNIT",
    "TemplateGrid",
    "load_table",
    "template_grid",
    "calzetti_k",
    "igm_transmission",
    "tophat_bands",
    "verify_table",
]

TABLE_DIR = Path(__file__).resolve().parent / "tables"
MASS_UNIT = 1e10  # fluxes per 1e10 Msun formed
BANDS = {
    "sdss": ("sdss2010-u", "sdss2010-g", "sdss2010-r", "sdss2010-i", "sdss2010-z"),
    "hsc": ("hsc2017-g", "hsc2017-r2", "hsc2017-i2", "hsc2017-z", "hsc2017-y"),
}
SFH_INDEX = {"burst": (0,), "exponential": (1, 2, 3), "delayed": (4, 5, 6)}
_C_AA = 2.99792458e18  # speed of light [A/s]
_MPC_CM = 3.0856775814913673e24


@dataclass(frozen=True)
class TemplateGrid:
    """Fluxes ``flux`` (M, Nz, B) [uJy per 1e10 Msun formed] on ``z`` (Nz,) for M templates with parameters
    ``age`` (M, Nz) [Gyr], ``met`` (Z/Zsun), ``tau`` [Gyr; 0 = burst], ``av`` [mag] and ``living`` (M, Nz)
    (M*/M_formed). Age and living fraction are per redshift node: a template whose age is a fraction of the
    Universe's age has a different age at every z (:func:`template_grid` with ``age_fracs``)."""

    z: np.ndarray
    flux: np.ndarray
    age: np.ndarray
    met: np.ndarray
    tau: np.ndarray
    av: np.ndarray
    living: np.ndarray
    bands: tuple[str, ...]

    @property
    def n_templates(self) -> int:
        return self.flux.shape[0]

    def interp(self, idx: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Fluxes (n, B) of templates ``idx`` (n,) at continuous redshifts ``z`` (n,) (linear in z)."""
        return self._lerp(self.flux, idx, z)

    def age_at(self, idx: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Ages [Gyr] (n,) of templates ``idx`` at redshifts ``z`` (linear in z, like the fluxes)."""
        return self._lerp(self.age[..., None], idx, z)[:, 0]

    def living_at(self, idx: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Living-mass fractions (n,) of templates ``idx`` at redshifts ``z``."""
        return self._lerp(self.living[..., None], idx, z)[:, 0]

    def _lerp(self, table: np.ndarray, idx: np.ndarray, z: np.ndarray) -> np.ndarray:
        k = np.clip(np.searchsorted(self.z, z) - 1, 0, self.z.size - 2)
        t = ((z - self.z[k]) / (self.z[k + 1] - self.z[k]))[:, None]
        return (1 - t) * table[idx, k] + t * table[idx, k + 1]


def verify_table(path: Path | None = None) -> str:
    """sha256 of the shipped npz, checked against ``templates_v1.json``; a GPSError if they differ."""
    path = path or TABLE_DIR / "templates_v1.npz"
    meta = json.loads((path.parent / "templates_v1.json").read_text())
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha != meta["sha256"]:
        raise GPSError(
            "the photo-z template table does not match its checksum",
            source=str(path),
            expected=meta["sha256"],
            found=sha,
        )
    return sha


@lru_cache(maxsize=1)
def load_table() -> dict[str, np.ndarray]:
    """The shipped table as float64 arrays (no pickles: ``allow_pickle=False``)."""
    with np.load(TABLE_DIR / "templates_v1.npz", allow_pickle=False) as z:
        out = {k: np.asarray(z[k], dtype=np.float64) for k in z.files}
    meta = json.loads((TABLE_DIR / "templates_v1.json").read_text())
    out["ages"] = np.asarray(meta["ages_gyr"])
    out["mets"] = np.asarray(meta["z_over_zsun"])
    out["taus"] = np.asarray([t or 0.0 for _, t in meta["sfhs"]])
    return out


def calzetti_k(wave_aa: np.ndarray, r_v: float = 4.05) -> np.ndarray:
    """Calzetti et al. (2000) k(lambda) (A_lambda = A_V k / R_V); linear extrapolation below 1200 A."""
    lam = np.asarray(wave_aa, dtype=float) / 1e4
    lam_c = np.clip(lam, 0.12, 2.2)
    blue = 2.659 * (-2.156 + 1.509 / lam_c - 0.198 / lam_c**2 + 0.011 / lam_c**3) + r_v
    red = 2.659 * (-1.857 + 1.040 / lam_c) + r_v
    k = np.where(lam_c < 0.63, blue, red)
    slope = 2.659 * (-1.509 / 0.12**2 + 2 * 0.198 / 0.12**3 - 3 * 0.011 / 0.12**4)
    return np.where(lam < 0.12, k + slope * (lam - 0.12), k)


def igm_transmission(wave_obs: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Madau (1995) Lyman-series transmission (Nz, J) at observed wavelengths (J,) for redshifts (Nz,).

    Line blanketing by Ly alpha..delta; zero blueward of the source's Lyman limit (912 A rest; the continuum
    there is negligible for these populations anyway)."""
    lam = np.asarray(wave_obs, dtype=float)[None, :]
    zz = np.asarray(z, dtype=float)[:, None]
    tau = np.zeros(np.broadcast_shapes(lam.shape, zz.shape))
    for lam_j, a_j in ((1215.67, 3.6e-3), (1025.72, 1.7e-3), (972.537, 1.2e-3), (949.743, 9.3e-4)):
        tau += np.where(lam < lam_j * (1 + zz), a_j * (lam / lam_j) ** 3.46, 0.0)
    return np.where(lam < 911.75 * (1 + zz), 0.0, np.exp(-tau))


def tophat_bands(n: int = 32, lo: float = 3000.0, hi: float = 11000.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``n`` contiguous top-hat bands log-spaced over [lo, hi] A (the mmvae's noiseless 'spectrum')."""
    edges = np.geomspace(lo, hi, n + 1)
    out = {}
    for i in range(n):
        w = np.linspace(edges[i], edges[i + 1], 24)
        out[f"tophat{i:02d}"] = (w, np.ones_like(w))
    return out


def template_grid(
    bands: tuple[str, ...] | dict,
    z: np.ndarray,
    *,
    sfh: str = "burst",
    av_grid: tuple[float, ...] = (0.0, 0.15, 0.3, 0.5, 0.8, 1.2),
    age_fracs: np.ndarray | None = None,
) -> TemplateGrid:
    """Template fluxes on redshift grid ``z`` for the named speclite bands (or a {name: (wave, resp)} dict).

    Templates are the product of the SFH's (tau, age) x metallicity x ``av_grid``; order (sfh-variant, age,
    met, av) flattened. ``z`` must be > 0 (D_L = 0 at z = 0). Ages are the table's 16 (the same at every z)
    or, with ``age_fracs``, the fractions f of the Universe's age t_univ(z) (Planck18): the template of node f
    at z_k has age f t_univ(z_k), its band fluxes and living fraction interpolated between the two bracketing
    table ages linearly in log age (log flux for the fluxes), outside the table's range [0.05, 13] Gyr
    extrapolated from its end intervals (13 Gyr -> t_univ(0) = 13.8 Gyr is 0.026 dex; old populations redden by
    about 0.01 mag per 0.03 dex there). A template's age then never exceeds the Universe's, and its prior weight
    does not depend on z (a fixed grid of ages would lose its oldest members one by one as z grows, a step in
    every old galaxy's p(z)).
    """
    if sfh not in SFH_INDEX:
        raise GPSError("unknown star-formation history", field="sfh", expected=" | ".join(SFH_INDEX), found=sfh)
    z = np.asarray(z, dtype=float)
    if z.ndim != 1 or z.size < 2 or z.min() <= 0:
        raise GPSError(
            "the template redshift grid must be 1-D, increasing and > 0",
            field="z",
            expected="e.g. 0.005..1.0",
            found=f"{z.min() if z.size else 'empty'}",
        )
    tab = load_table()
    wave = tab["wave"]
    av = np.asarray(av_grid, dtype=float)
    s_idx = SFH_INDEX[sfh]
    spec = tab["spectra"][list(s_idx)]  # (S, A, Z, W)
    dust = 10.0 ** (-0.4 * av[:, None] * calzetti_k(wave)[None, :] / 4.05)  # (V, W)
    dusty = spec[..., None, :] * dust[None, None, None]  # (S, A, Z, V, W)
    flat = dusty.reshape(-1, wave.size)
    curves = bands if isinstance(bands, dict) else {b: (tab[f"filt_{b}_wave"], tab[f"filt_{b}_resp"]) for b in bands}
    curves = {b: _resample(np.asarray(lam, float), np.asarray(resp, float)) for b, (lam, resp) in curves.items()}
    dl = _lum_dist_cm(z)
    scale = MASS_UNIT * 1e29 / (4 * np.pi * dl**2 * (1 + z))  # -> uJy per MASS_UNIT
    flux = np.empty((flat.shape[0], z.size, len(curves)))
    for j, (lam, resp) in enumerate(curves.values()):
        flux[:, :, j] = (flat @ _band_matrix(wave, np.asarray(lam, float), np.asarray(resp, float), z).T) * scale
    grids = np.meshgrid(
        np.arange(len(s_idx)), np.arange(spec.shape[1]), np.arange(spec.shape[2]), np.arange(av.size), indexing="ij"
    )
    si, ai, mi, vi = (g.ravel() for g in grids)
    living = tab["living_frac"][np.asarray(s_idx)[si], ai, mi]
    if age_fracs is None:
        return TemplateGrid(
            z=z,
            flux=flux,
            age=np.repeat(tab["ages"][ai][:, None], z.size, axis=1),
            met=tab["mets"][mi],
            tau=tab["taus"][np.asarray(s_idx)[si]],
            av=av[vi],
            living=np.repeat(living[:, None], z.size, axis=1),
            bands=tuple(curves),
        )
    return _fraction_grid(
        z, flux, living, tab, s_idx, spec.shape[2], av, np.asarray(age_fracs, dtype=float), tuple(curves)
    )


def _fraction_grid(z, flux, living, tab, s_idx, n_met, av, fracs, bands) -> TemplateGrid:
    """Re-index a table-age grid (S*A*Z*V, Nz, B) to ages f t_univ(z) (see :func:`template_grid`)."""
    from astropy.cosmology import Planck18

    n_s, n_a, n_v, nb = len(s_idx), tab["ages"].size, av.size, flux.shape[-1]
    log_tab = np.log(tab["ages"])
    lf = np.log(np.maximum(flux, 1e-300)).reshape(n_s, n_a, n_met, n_v, z.size, nb)
    liv = living.reshape(n_s, n_a, n_met, n_v)[..., 0]  # dust does not change the living fraction
    t_univ = np.asarray(Planck18.age(z).to_value("Gyr"))
    ages = fracs[:, None] * t_univ[None, :]  # (F, Nz)
    la = np.log(ages)
    k = np.clip(np.searchsorted(log_tab, la) - 1, 0, n_a - 2)  # (F, Nz), end intervals extrapolate
    w = np.clip((la - log_tab[k]) / (log_tab[k + 1] - log_tab[k]), -0.5, 1.5)
    iz = np.arange(z.size)[None, :]
    lo, hi = lf[:, k, :, :, iz, :], lf[:, k + 1, :, :, iz, :]  # (F, Nz, S, Z, V, B)
    out = np.exp((1 - w)[..., None, None, None, None] * lo + w[..., None, None, None, None] * hi)
    out = np.transpose(out, (2, 0, 3, 4, 1, 5))  # (S, F, Z, V, Nz, B)
    wl = w[None, :, :, None]
    lv = (1 - wl) * liv[:, k, :] + wl * liv[:, k + 1, :]  # (S, F, Nz, Z)
    lv = np.clip(lv, 0.0, 1.0)
    n_f = fracs.size
    grids = np.meshgrid(np.arange(n_s), np.arange(n_f), np.arange(n_met), np.arange(n_v), indexing="ij")
    si, fi, mi, vi = (g.ravel() for g in grids)
    return TemplateGrid(
        z=z,
        flux=out.reshape(-1, z.size, nb),
        age=ages[fi],
        met=tab["mets"][mi],
        tau=tab["taus"][np.asarray(s_idx)[si]],
        av=av[vi],
        living=lv[si, fi, :, mi],
        bands=bands,
    )


# -- private -------------------------------------------------------------------------------------------------
_FILTER_STEP = 2.0  # A


def _resample(lam: np.ndarray, resp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The response on a 2 A grid (linear). The band integral is a sum over the response's wavelengths; with the
    speclite curves' 80-250 points (~12 A apart) against a spectrum sampled every ~14 A, spectral features slid
    between the sample points as z changed, and the colours of a template jittered by ~0.006 mag from one z node
    to the next (second differences; 7e-5 on the 2 A grid), which put a sawtooth into the exact p(z)."""
    if lam.size < 2 or np.median(np.diff(lam)) <= _FILTER_STEP:
        return lam, resp
    fine = np.arange(lam[0], lam[-1] + _FILTER_STEP / 2, _FILTER_STEP)
    return fine, np.interp(fine, lam, resp)


def _band_matrix(wave: np.ndarray, lam: np.ndarray, resp: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Dense (Nz, W) weights: f_nu(z) = spectrum(W) . row, as <f_lambda lam R> / <c R / lam> (AB, photon)."""
    dlam = np.gradient(lam)
    norm = np.sum(resp * dlam / lam) * _C_AA
    w_obs = resp * lam * dlam / norm  # (J,)
    rest = lam[None, :] / (1 + z[:, None])  # (Nz, J)
    igm = igm_transmission(lam, z)
    k = np.clip(np.searchsorted(wave, rest) - 1, 0, wave.size - 2)
    t = (rest - wave[k]) / (wave[k + 1] - wave[k])
    inside = (rest >= wave[0]) & (rest <= wave[-1])
    wt = w_obs[None, :] * igm * inside
    out = np.zeros((z.size, wave.size))
    rows = np.repeat(np.arange(z.size), lam.size)
    np.add.at(out, (rows, k.ravel()), (wt * (1 - t)).ravel())
    np.add.at(out, (rows, k.ravel() + 1), (wt * t).ravel())
    return out


def _lum_dist_cm(z: np.ndarray) -> np.ndarray:
    from astropy.cosmology import Planck18

    return np.asarray(Planck18.luminosity_distance(z).to_value("Mpc")) * _MPC_CM
