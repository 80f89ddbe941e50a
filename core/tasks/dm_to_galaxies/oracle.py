"""Exact Bayes-optimal galaxy field given the DM field (section 4.6 of science/simulators.md).

Halos are a marked Poisson process given the DM field, so for voxel i

    Lambda_i = sum_m [ sum_j lambda_{j,m} (1 - e^{-s_m(i-j)}) + lambda_{i,m} <N_cen>_m e^{-s_m(0)} ],
    s_m(d) = <N_sat>_m K_m(d),
    P(N_i >= 1 | DM) = 1 - exp(-Lambda_i),     E[N_i | DM] = sum_m sum_j lambda_{j,m} (<N_cen>_m delta_ij + s_m(i-j)),

with the sums over j done as periodic FFT convolutions. The kernels K_m and rates lambda come from the very same
functions the simulator samples from (:mod:`.simulator`), which is what makes this exact.
"""

from __future__ import annotations

import numpy as np

from core.tasks.dm_to_galaxies.simulator import FieldSimConfig, field_tables, halo_rates, sample_galaxies

__all__ = ["oracle_field", "oracle_fields", "oracle_samples"]


def oracle_field(dm: np.ndarray, cfg: FieldSimConfig) -> tuple[np.ndarray, np.ndarray]:
    """(P(N >= 1 | DM), E[N | DM]) for one DM field rho/rho_bar of shape ``cfg.shape``."""
    t = field_tables(cfg)
    lam = halo_rates(dm, cfg)
    axes = tuple(range(cfg.dim))
    shape = cfg.shape
    big_lam = np.zeros(shape)
    mean = np.zeros(shape)
    conv_occ = np.zeros(shape[:-1] + (shape[-1] // 2 + 1,), complex)
    conv_sat = np.zeros_like(conv_occ)
    for m in range(len(t.mass)):
        s = t.nsat[m] * t.kernels[m]
        s0 = float(s.reshape(-1)[0])
        big_lam += lam[m] * t.ncen[m] * np.exp(-s0)
        mean += lam[m] * t.ncen[m]
        if t.nsat[m] > 0:
            lk = np.fft.rfftn(lam[m], axes=axes)
            conv_occ += lk * np.fft.rfftn(-np.expm1(-s), axes=axes)
            conv_sat += lk * np.fft.rfftn(s, axes=axes)
    big_lam += np.fft.irfftn(conv_occ, s=shape, axes=axes)
    mean += np.fft.irfftn(conv_sat, s=shape, axes=axes)
    big_lam = np.clip(big_lam, 0.0, None)
    return -np.expm1(-big_lam), np.clip(mean, 0.0, None)


def oracle_fields(dm: np.ndarray, cfg: FieldSimConfig) -> tuple[np.ndarray, np.ndarray]:
    """Stacked :func:`oracle_field` over the leading axis: two float32 arrays (n, *grid)."""
    out = [oracle_field(d, cfg) for d in np.asarray(dm)]
    return (np.stack([o[0] for o in out]).astype(np.float32), np.stack([o[1] for o in out]).astype(np.float32))


def oracle_samples(dm: np.ndarray, cfg: FieldSimConfig, n_samples: int, seed: int) -> np.ndarray:
    """Galaxy count fields drawn from the exact conditional model: (n, n_samples, *grid) int32."""
    dm = np.asarray(dm)
    out = np.empty((len(dm), n_samples) + cfg.shape, np.int32)
    for i, ss in enumerate(np.random.SeedSequence(seed).spawn(len(dm))):
        rng = np.random.Generator(np.random.PCG64(ss))
        lam = halo_rates(dm[i], cfg)
        for k in range(n_samples):
            out[i, k] = sample_galaxies(dm[i], cfg, rng, lam=lam)
    return out
