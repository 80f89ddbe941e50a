"""central_mass benchmark: multi-branch ResNet, LightGBM on summary statistics and the power law, one grouped test set.

One IFU-simulator set (``simulate_central``; three projections per galaxy) is split by galaxy into train /
validation / test; every method is trained on the same training set and scored on the same test set. Scores per
target: ``scatter_dex`` (std of posterior-mean residuals), ``bias_dex`` (mean residual), ``coverage_68`` (central
68% interval). ``importance`` is the LightGBM gain importance per target; the ResNet is also trained on input
subsets (image only = image + g-r, maps only = v + sigma, both) for the seed's comparison.

Quick: 2000 galaxies (6000 maps; 60/20/20 by galaxy; the 20% validation set picks the best epoch and fits the
ResNet's variance temperature), ResNet CPU default (per-size branches, width 16, one block per stage) for a fixed budget of 28
cosine epochs per training (no wall-clock cap: the scores depend only on the seed and the budget). The simulated
set is cached (core.data.cache). On a busy 2-core machine
``OMP_NUM_THREADS=1`` is much faster for torch than 2 spinning threads.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any, Sequence

import numpy as np

__all__ = ["run", "markdown", "SIZES"]

METHODS = ("resnet", "lightgbm", "powerlaw")
TARGETS = ("log_mstar_re", "log_mtot_re", "log_ml_r")
SUBSETS = {"image_only": ("image", "g_r"), "maps_only": ("vel", "sigma"), "both": ("image", "g_r", "vel", "sigma")}
SIZES = {  # quick: < 15 min on 2 CPU cores; fixed epoch budgets, never wall-clock caps
    True: {"n_galaxies": 2000, "fractions": (0.6, 0.2, 0.2), "epochs": 28},
    False: {"n_galaxies": 6000, "fractions": (0.6, 0.2, 0.2), "epochs": 60},
}


def run(
    *,
    quick: bool = False,
    seed: int = 0,
    device: str | None = None,
    methods: Sequence[str] | None = None,
    subsets: bool = True,
) -> dict[str, Any]:
    from core.data.central_data import from_central_set, grouped_indices
    from core.data.simulators.ifu import IFUSimConfig, simulate_central
    from core.device import device_description, resolve_device
    from core.models.central_gbdt import statistics_table
    from core.data.summary_stats import FEATURES

    size = SIZES[bool(quick)]
    methods = tuple(methods or METHODS)
    t_all = time.perf_counter()
    sim_cfg = IFUSimConfig()
    t0 = time.perf_counter()
    data = from_central_set(simulate_central(size["n_galaxies"], seed=seed + 1, config=sim_cfg, cache=True))
    sim_s = time.perf_counter() - t0
    tr_i, va_i, te_i = grouped_indices(data.galaxy_id, size["fractions"], seed=seed)
    train, val, test = data.subset(tr_i), data.subset(va_i), data.subset(te_i)
    t0 = time.perf_counter()
    for part in (train, val, test):
        statistics_table(part, FEATURES)
    stats_s = time.perf_counter() - t0
    dev = resolve_device(device)
    results: dict[str, Any] = {
        "task": "central_mass",
        "quick": bool(quick),
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test),
        "n_galaxies": size["n_galaxies"],
        "device": device_description(dev),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "seed": seed,
        "simulator": {"name": "ifu", "config": sim_cfg.to_dict(), "seed": seed + 1},
        "simulate_seconds": round(sim_s, 1),
        "summary_stats_seconds": round(stats_s, 1),
        "summary_stats_per_object_ms": round(1000 * stats_s / len(data), 2),
        "methods": {},
        "importance": {},
    }
    for name in methods:
        print(f"[bench] {name} ...", flush=True)
        feats = SUBSETS["both"] if name == "resnet" else ("image", "g_r", "vel", "sigma")
        row, model = _run_one(name, feats, train, val, test, size, seed, device)
        results["methods"][name] = row
        if name == "lightgbm":
            results["importance"] = model.importance("gain")
            results["pearson"] = model.history.get("pearson")
        print(f"[bench] {name}: " + _row_text(row), flush=True)
    if subsets and "resnet" in methods:
        results["resnet_inputs"] = {"both": results["methods"]["resnet"]}
        for key in ("image_only", "maps_only"):
            print(f"[bench] resnet {key} ...", flush=True)
            row, _ = _run_one("resnet", SUBSETS[key], train, val, test, size, seed, device)
            results["resnet_inputs"][key] = row
            print(f"[bench] resnet {key}: " + _row_text(row), flush=True)
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    return results


def _run_one(name, feats, train, val, test, size, seed, device):
    from core.models.base import build_model

    config: dict = {}
    if name == "resnet":
        config = {
            "train": {
                "epochs": size["epochs"],
                "batch_size": 32,
                "lr": 1e-3,
                "weight_decay": 1e-4,
                "schedule": "cosine",
                "patience": 1000,
                "max_minutes": 0.0,
                "seed": seed,
            }
        }
    elif name == "lightgbm":
        config = {"seed": seed, "num_threads": 1}
    model = build_model("central_mass", name, config, feats, TARGETS, dict(train.units))
    t0 = time.perf_counter()
    model.fit(train, val, device=device)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    post = model.posterior(test, n_samples=1000, seed=seed)
    infer_s = time.perf_counter() - t0
    row: dict[str, Any] = {}
    truth = test.target_array(TARGETS)
    valid = np.asarray(post.valid, bool)
    mean = post.mean()
    for j, t in enumerate(TARGETS):
        r = mean[valid, j] - truth[valid, j]
        row[t] = {
            "scatter_dex": float(np.std(r)),
            "bias_dex": float(np.mean(r)),
            "rmse_dex": float(np.sqrt(np.mean(r**2))),
            "coverage_68": _cov(post, truth, valid, j),
        }
    row["n_scored"] = int(valid.sum())
    row["train_seconds"] = round(train_s, 2)
    row["galaxies_per_second"] = round(len(test) / max(infer_s, 1e-9), 1)
    row["inputs"] = list(feats)
    if name == "resnet":
        row["epochs_run"] = len(model.history.get("epochs", []))
        row["best_epoch"] = model.history.get("best_epoch")
        row["var_scale"] = model.history.get("var_scale")
        row["stopped_reason"] = model.history.get("stopped_reason")
    return row, model


def _cov(post, truth, valid, j) -> float:
    """Coverage of the central 68% interval (16th-84th percentiles of the samples) for target j."""
    q = post.quantiles([0.16, 0.84])[valid, :, j]
    t = truth[valid, j]
    return float(np.mean((t >= q[:, 0]) & (t <= q[:, 1])))


def markdown(results: dict) -> str:
    lines = [
        f"# central_mass benchmark ({'quick' if results['quick'] else 'full'})",
        "",
        f"n_train = {results['n_train']}, n_val = {results['n_val']}, n_test = {results['n_test']} "
        f"(grouped by galaxy, 3 projections each), device = {results['device']}, "
        f"total {results.get('total_seconds', '?')} s",
        "",
        "| method | " + " | ".join(f"{t} scatter / bias / cov68" for t in TARGETS) + " | train s | galaxies/s |",
        "|---" * (len(TARGETS) + 3) + "|",
    ]

    def line(name, row):
        cells = [
            f"{row[t]['scatter_dex']:.3f} / {row[t]['bias_dex']:+.3f} / {row[t]['coverage_68']:.2f}" for t in TARGETS
        ]
        return f"| {name} | " + " | ".join(cells) + f" | {row['train_seconds']} | {row['galaxies_per_second']} |"

    for name, row in results["methods"].items():
        lines.append(line(name, row))
    if results.get("resnet_inputs"):
        lines += [
            "",
            "ResNet input subsets (scatter / bias / coverage_68 per target):",
            "",
            "| inputs | " + " | ".join(TARGETS) + " | train s | galaxies/s |",
            "|---" * (len(TARGETS) + 3) + "|",
        ]
        for key, row in results["resnet_inputs"].items():
            lines.append(line(key, row))
    if results.get("importance"):
        feats = list(next(iter(results["importance"].values())))
        lines += [
            "",
            "LightGBM gain importance (fraction of total gain per target):",
            "",
            "| target | " + " | ".join(feats) + " |",
            "|---" * (len(feats) + 1) + "|",
        ]
        for t, imp in results["importance"].items():
            tot = sum(imp.values()) or 1.0
            lines.append(f"| {t} | " + " | ".join(f"{imp[f] / tot:.3f}" for f in feats) + " |")
    return "\n".join(lines) + "\n"


def _row_text(row: dict) -> str:
    return (
        ", ".join(
            f"{t}: {row[t]['scatter_dex']:.3f}/{row[t]['bias_dex']:+.3f}/{row[t]['coverage_68']:.2f}" for t in TARGETS
        )
        + f", train {row['train_seconds']} s"
    )
