"""Halo occupation <N_gal | M200c> measured in an IllustrisTNG group-catalogue chunk, and the 3-parameter HOD fit.

Galaxies: subhaloes with all bound stars ``SubhaloMassType[:, 4]`` above ``mstar_min`` (default 1e9 Msun,
physical), cosmological origin only (``SubhaloFlag``). Halo mass: ``Group_M_Crit200`` (Msun, physical). A group
counts only when all its ``GroupNsubs`` subhaloes are in the chunk (subhaloes of one group can straddle chunk
files), unless ``complete_only=False`` (then its count is a lower bound and flagged). Group and subhalo offsets of
the chunk come from :func:`core.data.io.tng.read_tng_groupcat`.

The 3-parameter HOD of the seed, <N> = Theta(M - M_min) [1 + (M / M1)^alpha], is fitted by maximum Poisson
likelihood on a grid. With fewer than ``min_groups_full_fit`` groups the fit is underdetermined: then M_min and
alpha are held at the given defaults and only M1 is fitted (reported in ``fixed``). For comparison with the
simulator, masses are converted to Msun/h and from M200c to M200m (NFW, Dutton & Maccio 2014 concentration).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from core.errors import GPSError

__all__ = ["measure_occupation", "fit_hod3", "hod3_mean", "compare_with_simulator"]


def measure_occupation(path: str | os.PathLike, mstar_min: float = 1e9, complete_only: bool = True) -> dict[str, Any]:
    """Per-group M200c [Msun], N_gal (M* > mstar_min) and completeness from one TNG Subfind chunk."""
    import h5py

    from core.data.io.tng import read_tng_groupcat

    cat = read_tng_groupcat(path)  # validates the structure, finds the chunk's offsets
    soff, goff, h = cat.meta["subhalo_offset"], cat.meta["group_offset"], cat.meta["h"]
    with h5py.File(path, "r") as f:
        m200 = f["Group/Group_M_Crit200"][()].astype(float) * 1e10 / h
        if "GroupNsubs" not in f["Group"]:
            raise GPSError(
                "the chunk lacks GroupNsubs (needed to know whether a group is complete)",
                source=os.path.basename(str(path)),
                field="Group/GroupNsubs",
            )
        nsubs = f["Group/GroupNsubs"][()].astype(np.int64)
        grnr = f["Subhalo/SubhaloGrNr"][()].astype(np.int64)
        mstar = f["Subhalo/SubhaloMassType"][()][:, 4].astype(float) * 1e10 / h
        flag = f["Subhalo/SubhaloFlag"][()].astype(bool) if "SubhaloFlag" in f["Subhalo"] else np.ones(len(grnr), bool)
    local = grnr - goff
    inside = (local >= 0) & (local < len(m200))
    n_in_chunk = np.bincount(local[inside], minlength=len(m200))
    n_gal = np.bincount(local[inside & flag & (mstar > mstar_min)], minlength=len(m200))
    complete = n_in_chunk == nsubs
    keep = (m200 > 0) & (complete if complete_only else np.ones_like(complete))
    return {
        "m200c": m200[keep],
        "n_gal": n_gal[keep].astype(int),
        "complete": complete[keep],
        "group_id": (np.arange(len(m200)) + goff)[keep],
        "h": h,
        "mstar_min": mstar_min,
        "n_groups_in_chunk": int(len(m200)),
        "n_incomplete_dropped": int(((m200 > 0) & ~complete).sum()) if complete_only else 0,
        "source": os.path.basename(str(path)),
        "subhalo_offset": int(soff),
    }


def hod3_mean(log_m: np.ndarray, log_m_min: float, log_m1: float, alpha: float) -> np.ndarray:
    """<N> of the seed's 3-parameter HOD: Theta(M >= M_min) (1 + (M / M1)^alpha)."""
    log_m = np.asarray(log_m, float)
    return (log_m >= log_m_min) * (1.0 + 10 ** (alpha * (log_m - log_m1)))


def fit_hod3(
    log_m: np.ndarray,
    n_gal: np.ndarray,
    *,
    min_groups_full_fit: int = 10,
    default_log_m_min: float = 11.35,
    default_alpha: float = 1.0,
) -> dict[str, Any]:
    """Maximum-Poisson-likelihood (log M_min, log M1, alpha) on a grid; see the module docstring."""
    log_m, n = np.asarray(log_m, float), np.asarray(n_gal, float)
    if len(log_m) == 0:
        raise GPSError("no halos to fit", field="n_gal", expected=">= 1 complete group", found="0")
    full = len(log_m) >= min_groups_full_fit
    if full:  # coarse grid, then a fine grid around the coarse optimum
        best = _grid_fit(
            log_m,
            n,
            np.linspace(log_m.min() - 1.0, log_m.max(), 41),
            np.linspace(0.3, 2.0, 18),
            np.linspace(10.0, 16.0, 121),
        )
        lmin, lm1, a = best[1]
        best = _grid_fit(
            log_m,
            n,
            lmin + np.linspace(-0.06, 0.06, 13),
            a + np.linspace(-0.1, 0.1, 11),
            lm1 + np.linspace(-0.05, 0.05, 21),
        )
    else:
        best = _grid_fit(
            log_m, n, np.array([default_log_m_min]), np.array([default_alpha]), np.linspace(10.0, 16.0, 1201)
        )
    lmin, lm1, a = best[1]
    return {
        "log_m_min": lmin,
        "log_m1": lm1,
        "alpha": a,
        "log_likelihood": best[0],
        "n_groups": int(len(log_m)),
        "fixed": [] if full else ["log_m_min", "alpha"],
        "note": ""
        if full
        else f"only {len(log_m)} group(s): log_m_min and alpha held at the defaults, "
        "log_m1 fitted (underdetermined otherwise)",
    }


def _grid_fit(log_m, n, lmins, alphas, lm1s) -> tuple[float, tuple[float, float, float]]:
    best = (-np.inf, (np.nan, np.nan, np.nan))
    for lmin in lmins:
        for a in alphas:
            mu = hod3_mean(log_m[:, None], lmin, lm1s[None, :], a)
            with np.errstate(divide="ignore"):
                ll = np.where(
                    mu > 0, n[:, None] * np.log(np.clip(mu, 1e-300, None)) - mu, np.where(n[:, None] > 0, -np.inf, 0.0)
                ).sum(0)
            j = int(np.argmax(ll))
            if ll[j] > best[0]:
                best = (float(ll[j]), (float(lmin), float(lm1s[j]), float(a)))
    return best


def compare_with_simulator(occ: dict[str, Any], sim_cfg=None) -> dict[str, Any]:
    """Measured N_gal vs the simulator's Zheng+07 <N_cen + N_sat> at the same halo masses, and the 3-param fit.

    Masses are converted to the simulator's units (Msun/h, M200m at z = 0)."""
    from colossus.cosmology import cosmology
    from colossus.halo import concentration, mass_defs

    from core.tasks.dm_to_galaxies.simulator import FieldSimConfig, hod_mean

    cfg = sim_cfg or FieldSimConfig()
    cosmology.setCosmology("planck15")  # TNG cosmology (Planck 2015)
    m200c_h = np.asarray(occ["m200c"], float) * occ["h"]
    m200m = np.array(
        [
            mass_defs.changeMassDefinition(
                m, concentration.concentration(m, "200c", 0.0, model="dutton14"), 0.0, "200c", "200m"
            )[0]
            for m in m200c_h
        ]
    )
    ncen, nsat = hod_mean(m200m, cfg.hod)
    fit = fit_hod3(np.log10(m200m), occ["n_gal"], default_log_m_min=cfg.log_m_min)
    return {
        "log_m200c_msun": np.log10(occ["m200c"]).tolist(),
        "log_m200m_msun_h": np.log10(m200m).tolist(),
        "n_gal_tng": np.asarray(occ["n_gal"]).tolist(),
        "n_gal_simulator_hod": (ncen + nsat).tolist(),
        "simulator_hod": {
            "log_m_min": cfg.log_m_min,
            "sigma_log_m": cfg.sigma_log_m,
            "log_m0": cfg.log_m0,
            "log_m1": cfg.log_m1,
            "alpha": cfg.alpha,
        },
        "tng_hod3_fit": fit,
        "mstar_min": occ["mstar_min"],
        "source": occ["source"],
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m core.tasks.dm_to_galaxies.tng_hod CHUNK.hdf5 [--out F.json]``: the comparison as JSON."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path")
    ap.add_argument("--mstar-min", type=float, default=1e9)
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    try:
        res = compare_with_simulator(measure_occupation(args.path, args.mstar_min))
    except GPSError as e:
        print(f"error: {e}")
        return 2
    text = json.dumps(res, indent=1)
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
