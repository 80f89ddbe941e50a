"""halo_mass benchmark: exact, vae_hmc, flow, shmr and lightgbm on one training set and one test set.

Every method is trained on the same simulated training set and scored on the same held-out test set against the
truth and the exact (Bayes-optimal) posterior. Ratios to the exact posterior are the numbers to read.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any, Sequence

import numpy as np

from core.bench.common import fmt_value as _f

__all__ = ["run", "markdown", "SIZES"]

METHODS = ("exact", "vae_hmc", "flow", "shmr", "lightgbm")
SIZES = {  # quick: < 10 min on 2 CPU cores
    # fixed epoch budgets (early stopping may end sooner): results do not depend on how busy the machine is
    True: {
        "n_train": 100000,
        "n_test": 600,
        "n_throughput": 20000,
        "epochs": {"flow": 40, "vae_hmc": 40},
        "hmc": {"warmup": 500, "draws": 800},
    },
    False: {
        "n_train": 300000,
        "n_test": 3000,
        "n_throughput": 100000,
        "epochs": {"flow": 100, "vae_hmc": 100},
        "hmc": {"warmup": 500, "draws": 1000},
    },
}


def run(
    *, quick: bool = False, seed: int = 0, device: str | None = None, methods: Sequence[str] | None = None
) -> dict[str, Any]:
    from core import api
    from core.device import device_description, resolve_device
    from core.metrics import score_posterior

    size = SIZES[bool(quick)]
    methods = tuple(methods or METHODS)
    t_all = time.perf_counter()
    train = api.simulate("halo_mass", size["n_train"], seed=seed + 1)
    test = api.simulate("halo_mass", size["n_test"], seed=seed + 2)
    truth = test.y[:, 0]
    t0 = time.perf_counter()
    exact = api.exact_posterior(test)
    exact_seconds = time.perf_counter() - t0
    dev = resolve_device(device)
    results: dict[str, Any] = {
        "task": "halo_mass",
        "quick": bool(quick),
        "n_train": len(train),
        "n_test": len(test),
        "device": device_description(dev),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "simulator": train.meta.get("config", {}),
        "seed": seed,
        "methods": {},
    }
    tr, va = api.split(train, (0.9, 0.1), seed=seed)
    big = test.subset(np.resize(np.arange(len(test)), size["n_throughput"]))
    for name in methods:
        print(f"[bench] {name} ...", flush=True)
        row: dict[str, Any] = {}
        if name == "exact":
            post, train_s, infer_s = exact, None, exact_seconds
        else:
            config = _config(name, size, seed)
            t0 = time.perf_counter()
            model = api.train("halo_mass", name, tr, config, val=va, device=device)
            train_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            post = api.posterior(model, test, n_samples=1000, seed=seed)
            infer_s = time.perf_counter() - t0
        scores = score_posterior(post, truth, exact=None if name == "exact" else exact)
        row.update(
            {
                k: scores.get(k)
                for k in (
                    "rmse",
                    "mae",
                    "r2",
                    "bias",
                    "coverage_68",
                    "coverage_95",
                    "pit_ks_p",
                    "crps",
                    "kl_to_exact",
                    "w1_to_exact",
                )
            }
        )
        if name == "exact":
            row["kl_to_exact"] = 0.0
        row["train_seconds"] = None if train_s is None else round(train_s, 2)
        row["infer_seconds"] = round(infer_s, 3)
        if name in ("flow", "lightgbm", "shmr"):
            # steady-state rate: the first call compiles the sampler for the chunk shapes (timed separately)
            t0 = time.perf_counter()
            api.posterior(model, big, n_samples=1000, seed=seed)
            row["first_call_seconds"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            api.posterior(model, big, n_samples=1000, seed=seed + 1)
            row["galaxies_per_second"] = round(len(big) / (time.perf_counter() - t0), 1)
            row["throughput_objects"] = len(big)
        else:
            row["galaxies_per_second"] = round(len(test) / infer_s, 2)
        if name == "vae_hmc":
            d = post.diagnostics
            row["rhat_max"] = float(np.nanmax(d["rhat"]))
            row["frac_rhat_below_1_01"] = float(np.mean(d["rhat"] < 1.01))
            row["ess_min"] = float(np.nanmin(d["ess"]))
            row["divergences"] = int(np.sum(d["divergences"]))
        row["rmse_ratio_to_exact"] = (
            None
            if exact is None
            else row["rmse"] / results["methods"].get("exact", {}).get("rmse", score_posterior(exact, truth)["rmse"])
        )
        results["methods"][name] = row
        print(f"[bench] {name}: " + ", ".join(f"{k}={_f(v)}" for k, v in row.items()), flush=True)
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    return results


def _config(name: str, size: dict, seed: int) -> dict:
    epochs = size.get("epochs", {}).get(name, 200)
    if name == "flow":
        return {"train": {"seed": seed, "epochs": epochs}}
    if name == "vae_hmc":
        return {"train": {"seed": seed, "epochs": epochs}, **size.get("hmc", {})}
    if name == "lightgbm":
        return {"seed": seed}
    return {}


def markdown(results: dict) -> str:
    cols = [
        "rmse",
        "rmse_ratio_to_exact",
        "mae",
        "r2",
        "bias",
        "coverage_68",
        "coverage_95",
        "pit_ks_p",
        "crps",
        "kl_to_exact",
        "train_seconds",
        "infer_seconds",
        "galaxies_per_second",
    ]
    lines = [
        f"# halo_mass benchmark ({'quick' if results['quick'] else 'full'})",
        "",
        f"n_train = {results['n_train']}, n_test = {results['n_test']}, device = {results['device']}, "
        f"total {results.get('total_seconds', '?')} s",
        "",
        "| method | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for name, row in results["methods"].items():
        lines.append(f"| {name} | " + " | ".join(_f(row.get(c)) for c in cols) + " |")
    v = results["methods"].get("vae_hmc")
    if v:
        lines += [
            "",
            f"vae_hmc NUTS: R-hat max {_f(v['rhat_max'])}, fraction R-hat < 1.01 = "
            f"{_f(v['frac_rhat_below_1_01'])}, ESS min {_f(v['ess_min'])}, divergences {v['divergences']}",
        ]
    return "\n".join(lines) + "\n"
