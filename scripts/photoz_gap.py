"""Where the learned photo-z posteriors stand against the exact template posterior, and what does not close the gap.

    .venv/bin/python scripts/photoz_gap.py [--out benchmarks/photoz_gap.md] [--runs NAME ...]

Same mock sets as ``python -m core bench photoz --quick`` (train seed 1, validation seed 2, test seed 3, 1,500 test
galaxies with exact posteriors). For each run (a method, a training-set size and a config; budgets are epochs /
rounds, never wall-clock) it reports, on the test set:

* sigma_NMAD of the posterior median and its ratio to the exact posterior's (the issue's bar: flow <= 1.05);
* the mean |dz| / (1 + z) of the medians, as a ratio to the exact's (a second, non-robust point metric);
* the mean log predictive density at the true z, minus the exact's (<= 0 up to noise if the exact posterior is the
  Bayes-optimal one; -KL(exact || model) in expectation), and KL(exact || model) on the exact's grid.

The question it answers: is the learned methods' gap data-limited (shrinks with 4x the training set),
capacity-limited (shrinks with a bigger flow) or neither. Every run is independent; ``--runs`` picks some.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

RUNS = {
    "knn_80k": ("knn", 80_000, {}),
    "knn_320k": ("knn", 320_000, {}),
    "lightgbm_80k": ("lightgbm", 80_000, {}),
    "lightgbm_320k_big": ("lightgbm", 320_000, {"n_estimators": 2000, "num_leaves": 127}),
    "flow_80k": ("flow", 80_000, {"train": {"epochs": 60, "batch_size": 512, "lr": 2e-3, "patience": 10}}),
    "flow_80k_big": (
        "flow",
        80_000,
        {
            "transforms": 5,
            "bins": 24,
            "hidden": [256, 256],
            "train": {"epochs": 60, "batch_size": 512, "lr": 2e-3, "patience": 10},
        },
    ),
    "flow_80k_cosine": (
        "flow",
        80_000,
        {"train": {"epochs": 60, "batch_size": 256, "lr": 1e-3, "patience": 60, "schedule": "cosine"}},
    ),
    "flow_320k": ("flow", 320_000, {"train": {"epochs": 20, "batch_size": 512, "lr": 2e-3, "patience": 10}}),
}


def _median_of_grid(grid: np.ndarray, pdf: np.ndarray) -> np.ndarray:
    from scipy.integrate import cumulative_trapezoid

    c = cumulative_trapezoid(pdf, grid, axis=1, initial=0)
    c /= c[:, -1:]
    return np.array([np.interp(0.5, cc, grid) for cc in c])


def _lpd(grid: np.ndarray, pdf: np.ndarray, z: np.ndarray) -> np.ndarray:
    p = pdf / np.trapezoid(pdf, grid, axis=1)[:, None]
    return np.log(np.maximum([np.interp(a, grid, b) for a, b in zip(z, p)], 1e-300))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="Markdown file for the table (printed either way)")
    ap.add_argument("--runs", nargs="*", default=list(RUNS), choices=list(RUNS))
    args = ap.parse_args(argv)

    from core.data.cache import cached
    from core.models.base import build_model
    from core.tasks.photoz.exact import exact_posterior
    from core.tasks.photoz.metrics import score
    from core.tasks.photoz.models.common import INPUTS
    from core.tasks.photoz.simulator import PhotozSimConfig, simulate

    cfg = PhotozSimConfig()
    val = cached("photoz", cfg, 3000, 2, lambda: simulate(3000, 2, cfg))
    test = cached("photoz", cfg, 1500, 3, lambda: simulate(1500, 3, cfg))
    z = test.y[:, 0]
    ex = exact_posterior(test, cfg)
    s_ex = score(ex, z, None)["sigma_nmad"]
    mae_ex = np.mean(np.abs(_median_of_grid(ex.grid, ex.pdf) - z) / (1 + z))
    lpd_ex = _lpd(ex.grid, ex.pdf, z)
    rows = [
        "| run | method | n_train | sigma_NMAD | ratio to exact | MAE ratio | lpd - exact's | KL to exact | epochs |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| exact | exact | - | {s_ex:.5f} | 1 | 1 | 0 | 0 | - |",
    ]
    print("\n".join(rows), flush=True)
    for name in args.runs:
        method, n_train, over = RUNS[name]
        train = cached("photoz", cfg, n_train, 1, lambda n=n_train: simulate(n, 1, cfg))
        model = build_model("photoz", method, over, INPUTS, ("z",))
        t0 = time.perf_counter()
        model.fit(train, val)
        post = model.posterior(test, n_samples=400, seed=0)
        qd = model.pz_grid(test, ex.grid) if hasattr(model, "pz_grid") else None
        s = score(post, z, ex, q_density=qd)
        med = np.median(post.samples[:, :, 0], axis=1)
        mae = np.mean(np.abs(med - z) / (1 + z))
        dl = f"{np.mean(_lpd(ex.grid, qd, z) - lpd_ex):+.3f}" if qd is not None else "-"
        hist = getattr(model, "history", None)
        ep = len(hist.get("epochs", [])) if isinstance(hist, dict) and hist.get("epochs") else "-"
        row = (
            f"| {name} | {method} | {n_train:,} | {s['sigma_nmad']:.5f} | {s['sigma_nmad'] / s_ex:.3f} | "
            f"{mae / mae_ex:.3f} | {dl} | {s.get('kl_to_exact', float('nan')):.3f} | {ep} |"
        )
        rows.append(row)
        print(row, f"({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.out:
        Path(args.out).write_text(
            "# photo-z: learned posteriors against the exact template posterior (scripts/photoz_gap.py)\n\n"
            + "\n".join(rows)
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
