"""halo_mass_shift benchmark: how the halo-mass posteriors hold on data from a universe they were not trained on.

``python -m core bench halo_mass_shift [--quick] --out FILE.json``

(a) Leave one relation out: for each held-out galaxy-halo relation r of the simulator family, every method is
    trained on (or, for ``exact``, is the Bayes posterior of) the family WITHOUT r and scored on a test set made
    with r alone (the family's other nuisance parameters still drawn). ``exact_single`` is the former default
    (Moster13 only, sigma 0.18, ZM16 quenching) for the before/after comparison.
(b) Real labelled tables: every file in ``GPS_SHIFT_REAL`` (paths separated by ``os.pathsep``; default: the
    IllustrisTNG chunks in ``../shared/data/tng100/`` when present) is read through the app's readers (a TNG
    Subfind chunk through the TNG reader, any other table through the column mapping with its truth column),
    the inputs present in the file are used, and the methods trained on the full family are scored against the
    truth. The ceiling is a LightGBM trained on the same real table (k-fold, out-of-fold predictions).

Scores per method: RMSE, mean and median bias, coverage_68/95, and per 0.5-dex bin of the true log M200c the
median bias and coverage (bins with >= 20 galaxies are the ones the bars are read on). Budgets are epochs.
"""

from __future__ import annotations

import glob
import os
import platform
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.bench.common import fmt_value as _f

__all__ = ["run", "markdown", "SIZES", "real_files"]

METHODS = ("exact_single", "exact", "flow", "lightgbm")
SIZES = {
    True: {"n_train": 40000, "n_test": 1500, "epochs": 15, "heldout": ("tng100", "kravtsov18", "moster18"), "k": 5},
    False: {"n_train": 150000, "n_test": 4000, "epochs": 40, "heldout": None, "k": 5},
}
BIN_EDGES = np.arange(10.5, 15.01, 0.5)
MIN_BIN = 20


def real_files() -> list[str]:
    """Real labelled tables to score on: ``GPS_SHIFT_REAL`` or the shared TNG100 chunks (if present)."""
    env = os.environ.get("GPS_SHIFT_REAL")
    if env:
        return [p for part in env.split(os.pathsep) if part for p in sorted(glob.glob(part)) or [part]]
    shared = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "tng100"
    return sorted(str(p) for p in shared.glob("fof_subhalo_tab_*.hdf5"))


def run(
    *, quick: bool = False, seed: int = 0, device: str | None = None, methods: Sequence[str] | None = None
) -> dict[str, Any]:
    from core.data.simulators import physics as P
    from core.data.simulators.catalog import CatalogSimConfig
    from core.device import device_description, resolve_device

    size = SIZES[bool(quick)]
    methods = tuple(methods or METHODS)
    t_all = time.perf_counter()
    results: dict[str, Any] = {
        "task": "halo_mass_shift",
        "quick": bool(quick),
        "seed": seed,
        "sizes": {k: v for k, v in size.items() if k != "heldout"},
        "device": device_description(resolve_device(device)),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "leave_one_out": {},
        "real": {},
    }
    family = CatalogSimConfig()
    for r in size["heldout"] or family.family_shmrs:
        others = tuple(m for m in family.family_shmrs if m != r)
        train_cfg, test_cfg = family.replace(family_shmrs=others), family.replace(family_shmrs=(r,))
        print(f"[shift] leave out {r} ...", flush=True)
        results["leave_one_out"][r] = _score_methods(
            train_cfg, test_cfg, None, methods, size, seed, device, label=f"without {r}"
        )
    files = real_files()
    if files:
        print(f"[shift] real tables: {', '.join(Path(f).name for f in files)}", flush=True)
        real = _read_real(files)
        results["real"] = _score_methods(family, None, real, methods, size, seed, device, label="real")
        results["real"]["files"] = [Path(f).name for f in files]
        results["real"]["ceiling"] = _ceiling(real, size["k"], seed)
        rmse_c = results["real"]["ceiling"].get("rmse")
        for row in results["real"]["methods"].values():
            row["rmse_ratio_to_ceiling"] = None if not rmse_c else row["rmse"] / rmse_c
    results["relations"] = {r: P.SHMR_MODELS.index(r) for r in P.SHMR_MODELS}
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    return results


def _score_methods(train_cfg, test_cfg, real, methods, size, seed, device, *, label: str) -> dict[str, Any]:
    from core import api
    from core.data.simulators.catalog import CatalogSimConfig
    from core.data.simulators.catalog_posterior import ExactPosterior
    from core.metrics import score_posterior
    from core.metrics.binned import metrics_per_bin

    if real is None:
        test = api.simulate("halo_mass", size["n_test"], seed=seed + 2, config=test_cfg)
    else:
        test = real
    features = tuple(f for f in test.features if np.isfinite(test.select_features((f,)).x).any())
    test = test.select_features(features)
    truth = test.y[:, 0]
    out: dict[str, Any] = {"n_test": len(test), "features": list(features), "methods": {}}
    from core.tasks.halo_mass.bench import PROPOSALS, proposal_key

    sets: dict[str, tuple] = {}
    for name in methods:
        t0 = time.perf_counter()
        if name in ("exact", "exact_single"):
            cfg = train_cfg if name == "exact" else CatalogSimConfig(shmr="moster13")
            post = ExactPosterior(cfg, features).posterior(test.x)
        else:
            key = proposal_key(name)
            if key not in sets:  # flow, lightgbm learn from a proposal set (flat in log Mh), as in bench halo_mass
                cfg = train_cfg.replace(**PROPOSALS[name]) if key else train_cfg
                train = api.simulate("halo_mass", size["n_train"], seed=seed + 1, config=cfg)
                sets[key] = api.split(train.select_features(features), (0.9, 0.1), seed=seed)
            tr, va = sets[key]
            config = {"train": {"seed": seed, "epochs": size["epochs"]}} if name == "flow" else {"seed": seed}
            model = api.train("halo_mass", name, tr, config, val=va, device=device)
            post = api.posterior(model, test, n_samples=1000, seed=seed)
        s = score_posterior(post, truth)
        rows = metrics_per_bin(truth, post, BIN_EDGES)
        row = {k: s.get(k) for k in ("rmse", "bias", "coverage_68", "coverage_95", "pit_ks_p", "crps")}
        row["median_bias"] = float(np.median(post.median()[:, 0] - truth))
        row["seconds"] = round(time.perf_counter() - t0, 2)
        row["per_bin"] = [
            {k: b[k] for k in ("lo", "hi", "n", "median_bias", "bias", "coverage_68", "coverage_95", "rmse")}
            for b in rows
            if b["n"] > 0
        ]
        big = [b for b in row["per_bin"] if b["n"] >= MIN_BIN]
        row["max_abs_median_bias_bins"] = max((abs(b["median_bias"]) for b in big), default=None)
        out["methods"][name] = row
        print(
            f"[shift] {label} {name}: rmse={_f(row['rmse'])} cov68={_f(row['coverage_68'])} "
            f"max|bin median bias|={_f(row['max_abs_median_bias_bins'])}",
            flush=True,
        )
    return out


def _read_real(files: Sequence[str]):
    """Labelled real tables -> one CatalogData (the inputs each file lacks are NaN, i.e. missing)."""
    from core import api
    from core.data.catalog import CatalogData
    from core.tasks import get_task

    names = get_task("halo_mass").input_names
    xs, ys = [], []
    for f in files:
        table = api.read_table(f)
        data, _ = api.table_to_catalog(table, "halo_mass", require_target=True)
        x = np.full((len(data), len(names)), np.nan)
        for j, n in enumerate(names):
            if n in data.features:
                x[:, j] = data.select_features((n,)).x[:, 0]
        xs.append(x)
        ys.append(data.y[:, :1])
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = np.isfinite(y[:, 0]) & np.isfinite(x[:, 0])
    return CatalogData(
        x=x[keep],
        features=names,
        y=y[keep],
        targets=("log_mh",),
        ids=np.arange(int(keep.sum()), dtype=np.int64),
        meta={"source": "real", "files": list(files)},
    )


def _ceiling(real, k: int, seed: int) -> dict[str, Any]:
    """LightGBM trained on the real table itself, k-fold: the error a model that knows this universe reaches."""
    from core import api

    n = len(real)
    if n < 10 * k:
        return {"n": n, "rmse": None, "note": f"only {n} labelled objects: no k-fold ceiling (needs >= {10 * k})"}
    feats = tuple(f for f in real.features if np.isfinite(real.select_features((f,)).x).all())
    data = real.select_features(feats)
    fold = np.random.default_rng(seed).permutation(n) % k
    mean = np.empty(n)
    for i in range(k):
        tr, te = data.subset(fold != i), data.subset(fold == i)
        model = api.train("halo_mass", "lightgbm", tr, {"seed": seed})
        mean[fold == i] = api.posterior(model, te, n_samples=200, seed=seed).mean()[:, 0]
    rmse = float(np.sqrt(np.mean((mean - real.y[:, 0]) ** 2)))
    return {"n": n, "k": k, "features": list(feats), "rmse": rmse}


def markdown(results: dict) -> str:
    lines = [
        f"# halo_mass_shift benchmark ({'quick' if results['quick'] else 'full'})",
        "",
        f"device = {results['device']}, total {results.get('total_seconds', '?')} s",
        "",
    ]
    head = "| test set | method | RMSE | median bias | coverage_68 | coverage_95 | max abs bin median bias (n>=20) |"
    lines += ["## Leave one relation out", "", head, "|---|---|---|---|---|---|---|"]
    for r, block in results["leave_one_out"].items():
        for name, row in block["methods"].items():
            lines.append(
                f"| {r} | {name} | {_f(row['rmse'])} | {_f(row['median_bias'])} | "
                f"{_f(row['coverage_68'])} | {_f(row['coverage_95'])} | "
                f"{_f(row['max_abs_median_bias_bins'])} |"
            )
    real = results.get("real") or {}
    if real:
        c = real.get("ceiling", {})
        lines += [
            "",
            f"## Real tables: {', '.join(real.get('files', []))} ({real['n_test']} labelled objects; "
            f"inputs {', '.join(real['features'])})",
            "",
            f"Ceiling (LightGBM {c.get('k', '-')}-fold on the table): RMSE {_f(c.get('rmse'))}"
            + (f" — {c['note']}" if c.get("note") else ""),
            "",
            "| method | RMSE | median bias | coverage_68 | coverage_95 | max abs bin median bias (n>=20) |"
            " RMSE / ceiling |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, row in real["methods"].items():
            lines.append(
                f"| {name} | {_f(row['rmse'])} | {_f(row['median_bias'])} | {_f(row['coverage_68'])} | "
                f"{_f(row['coverage_95'])} | {_f(row['max_abs_median_bias_bins'])} | "
                f"{_f(row.get('rmse_ratio_to_ceiling'))} |"
            )
    return "\n".join(lines) + "\n"
