"""Re-run the numbers behind the prior fixes of issues 11 and 12: a hard prior edge inside the support, or a prior
so coarse that the exact posterior can tell which grid point made a galaxy, gives posteriors that learned models
cannot follow.

    .venv/bin/python scripts/prior_edge_checks.py --halo     # ~5 min on 2 CPU cores
    .venv/bin/python scripts/prior_edge_checks.py --photoz   # ~1 min
    .venv/bin/python scripts/prior_edge_checks.py --lattice  # ~6 min

--halo: the halo_mass flow trained (100,000 galaxies, seed 1, 40 epochs, training seed 0) on a set flat in log Mh
over [10.5, 15] (the halo mass function's own support) and over [10.0, 15] (``flat_below=0.5``, the bundled recipe),
both reweighted to the HMF; KL(exact || flow) with the flow's own density on the 600 test galaxies of
``bench halo_mass --quick`` (seed 2), overall and split by whether > 5% of the exact posterior lies below 10.6.

--photoz: mocks with the former formed-mass prior (flat in log M with a hard bound at 10^11.5, ``logm_cut=0``; the
1,500 test galaxies of ``bench photoz --quick``'s seed, on today's age / A_V grid): the exact posterior under that
bound and with the bound lifted (log M in [6, 13]); how many medians move and the exact sigma_NMAD either way, by
true formed mass.

--lattice: the same 1,500 test galaxies drawn on a coarse theta grid like the former one (16 ages, A_V on 6 nodes)
and on the default grid (40 ages, 16 A_V nodes); for each, the exact posterior on its own grid and on one twice as
fine in age and A_V (which does not know the lattice the mocks were drawn from). A gap between the two means the
exact posterior profits from the lattice, which no learned model can pick up.
"""

from __future__ import annotations

import sys

import numpy as np


def halo() -> None:
    from core import api
    from core.metrics.reference import kl_to_reference

    test = api.simulate("halo_mass", 600, seed=2)
    exact = api.exact_posterior(test)
    cdf = np.cumsum(exact.pdf, axis=1)
    edge = np.array([np.interp(10.6, exact.grid, c / c[-1]) for c in cdf]) > 0.05
    print(f"{edge.sum()} of {len(test)} test galaxies have > 5% of their exact posterior below log Mh 10.6")
    for below in (0.0, 0.5):
        train = api.simulate("halo_mass", 100000, seed=1, config={"prior": "flat", "flat_below": below})
        tr, va = api.split(train, (0.9, 0.1), seed=0)
        model = api.train("halo_mass", "flow", tr, {"train": {"seed": 0, "epochs": 40}}, val=va)
        dens = np.exp(model.log_prob(exact.grid, model.inputs(test)))
        kl = kl_to_reference(exact, exact, q_density=dens, per_object=True)
        print(f"flat proposal from log Mh {10.5 - below:.1f}: KL to exact {np.nanmean(kl):.4f} (near the edge "
              f"{np.nanmean(kl[edge]):.4f}, others {np.nanmean(kl[~edge]):.4f})", flush=True)


def photoz() -> None:
    from core.tasks.photoz.exact import exact_posterior
    from core.tasks.photoz.simulator import PhotozSimConfig, simulate

    old = PhotozSimConfig(logm_cut=0.0, logm_max=11.5)
    lifted = old.replace(logm_min=6.0, logm_max=13.0)
    test = simulate(1500, seed=3, config=old)
    z, lmf = test.y[:, 0], test.extra["logm_formed"]
    med = {k: exact_posterior(test, c).median()[:, 0] for k, c in (("bound", old), ("lifted", lifted))}
    moved = np.abs(med["bound"] - med["lifted"]) / (1 + z) > 0.005

    def nmad(m):
        dz = (m - z) / (1 + z)
        return 1.4826 * np.median(np.abs(dz - np.median(dz)))

    print(f"medians moved by > 0.005 (1 + z) when the bound is lifted: {moved.mean():.1%}")
    print(f"exact sigma_NMAD: hard bound {nmad(med['bound']):.4f}, lifted {nmad(med['lifted']):.4f}")
    for lo, hi in ((8, 10), (10, 10.5), (10.5, 11), (11, 11.25), (11.25, 11.5)):
        s = (lmf >= lo) & (lmf < hi)
        print(f"  true log M_formed {lo}-{hi}: {s.sum()} galaxies, {moved[s].mean():.1%} moved")


def lattice() -> None:
    from core.metrics.point import sigma_nmad
    from core.tasks.photoz.exact import exact_posterior
    from core.tasks.photoz.simulator import PhotozSimConfig, simulate

    def finer(c: PhotozSimConfig) -> PhotozSimConfig:
        av = np.asarray(c.av_grid)
        mid = 0.5 * (av[1:] + av[:-1])
        return c.replace(n_age=2 * c.n_age - 1, av_grid=tuple(np.round(np.sort(np.r_[av, mid]), 4)))

    coarse = PhotozSimConfig(n_age=16, av_grid=(0.0, 0.15, 0.3, 0.5, 0.8, 1.2))
    for name, cfg in (("coarse (16 ages x 6 A_V)", coarse), ("default (40 ages x 16 A_V)", PhotozSimConfig())):
        test = simulate(1500, seed=3, config=cfg)
        z = test.y[:, 0]
        out = []
        for c in (cfg, finer(cfg)):
            out.append(sigma_nmad(exact_posterior(test, c).median()[:, 0], z, scale=1 + z))
        print(f"{name}: exact sigma_NMAD on its own grid {out[0]:.5f}, on a 2x finer grid {out[1]:.5f} "
              f"(ratio {out[1] / out[0]:.3f})", flush=True)


if __name__ == "__main__":
    args = set(sys.argv[1:]) or {"--halo", "--photoz", "--lattice"}
    if "--lattice" in args:
        lattice()
    if "--photoz" in args:
        photoz()
    if "--halo" in args:
        halo()
