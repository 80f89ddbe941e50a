"""Re-run the numbers quoted for the halo_mass simulator family (issue 11).

    .venv/bin/python scripts/halo_family_checks.py            # calibration + speed of the exact posterior
    .venv/bin/python scripts/halo_family_checks.py --tail     # + per-true-mass-bin bias of exact, flow, lightgbm

Calibration: 20,000 family galaxies (seed 11), PIT coverage of the exact posterior. Speed: exact posterior of 3,000
galaxies for one relation, the assembly latent and the family. Tail: 1,500 family galaxies drawn flat in log M200c
12-15 (seed 77), posteriors under the halo-mass-function prior, median of (posterior median - truth) per bin and the
amortized models' extra offset from the exact posterior.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from core.data.simulators.catalog import CatalogSimConfig, simulate_catalog
from core.data.simulators.catalog_posterior import ExactPosterior


def calibration() -> None:
    cfg = CatalogSimConfig()
    d = simulate_catalog(20000, seed=11, config=cfg)
    post = ExactPosterior(cfg).posterior(d.x)
    pit = post.cdf_at(d.y[:, 0])[:, 0]
    m = post.mean()[:, 0]
    print(f"family exact: coverage_68 {np.mean((pit > 0.1587) & (pit < 0.8413)):.3f}, coverage_95 "
          f"{np.mean((pit > 0.025) & (pit < 0.975)):.3f}, RMSE {np.sqrt(np.mean((m - d.y[:, 0]) ** 2)):.3f} dex")


def speed() -> None:
    x = simulate_catalog(3000, seed=5, config=CatalogSimConfig(shmr="moster13", missing_fraction=0.2)).x
    for label, cfg in (("single relation", CatalogSimConfig(shmr="moster13")),
                       ("assembly latent", CatalogSimConfig(shmr="moster13", assembly_latent=True)),
                       ("family", CatalogSimConfig())):
        t0 = time.perf_counter()
        ep = ExactPosterior(cfg)
        t1 = time.perf_counter()
        ep.log_posterior_grid(x)
        t2 = time.perf_counter()
        print(f"exact, {label}: tables {t1 - t0:.2f} s, 3000 galaxies {t2 - t1:.2f} s")


def tail() -> None:
    from core import api

    d = simulate_catalog(1500, seed=77, config=CatalogSimConfig(prior="flat", logmh_min=12.0, logmh_max=15.0))
    y = d.y[:, 0]
    ex = ExactPosterior(CatalogSimConfig()).posterior(d.x).median()[:, 0]
    rows = {"exact": ex}
    for name in ("flow", "lightgbm"):
        rows[name] = api.posterior(api.load_bundled("halo_mass", name), d, n_samples=500, seed=0).median()[:, 0]
    print("bin | " + " | ".join(f"{k} median bias" for k in rows) + " | flow - exact | lightgbm - exact")
    for lo in (12.0, 12.5, 13.0, 13.5, 14.0, 14.5):
        s = (y >= lo) & (y < lo + 0.5)
        print(f"{lo:.1f}-{lo + 0.5:.1f} | " + " | ".join(f"{np.median(v[s] - y[s]):+.2f}" for v in rows.values())
              + f" | {np.median(rows['flow'][s] - ex[s]):+.2f} | {np.median(rows['lightgbm'][s] - ex[s]):+.2f}")


if __name__ == "__main__":
    calibration()
    speed()
    if "--tail" in sys.argv:
        tail()
