"""exsitu_map benchmark: cVAE + latent flow (three inference modes) and the mean-map baseline, one run.

One simulated training set (grouped train/validation split by galaxy), one independent test set (other galaxies,
all three projections), every method scored on galaxy pixels of the same test maps; then the reference mode
(section 2.9 of science/simulators.md: fixed geometry, 3 latents on a grid, exact posterior) gives the regret of
each method against the exact per-pixel posterior median. The models are trained on the full simulator (random
geometry), so the regret includes their prior mismatch with the reference box.
"""

from __future__ import annotations

import os
import platform
import time
from types import SimpleNamespace
from typing import Any, Sequence

import numpy as np

from core.bench.common import fmt_value as _f

__all__ = ["run", "markdown", "SIZES", "METHODS"]

METHODS = ("flow", "prior", "reconstruction", "mean_map")
CHANNELS = ("log_sigma_star", "vel", "sigma", "log_age", "metallicity")
SIZES = {  # quick: ~10-15 min on 2 CPU cores (64x64 maps); fixed epoch budgets, never wall-clock caps
    True: {
        "n_gal_train": 1000,
        "n_gal_test": 100,
        "n_samples": 50,
        "cvae_epochs": 40,
        "flow_epochs": 100,
        "ref_sizes": (8, 8, 8),
        "n_ref": 60,
        "map_size": 64,
    },
    False: {
        "n_gal_train": 3000,
        "n_gal_test": 300,
        "n_samples": 100,
        "cvae_epochs": 150,
        "flow_epochs": 200,
        "ref_sizes": (16, 16, 16),
        "n_ref": 300,
        "map_size": 64,
    },
}


def run(
    *, quick: bool = False, seed: int = 0, device: str | None = None, methods: Sequence[str] | None = None
) -> dict[str, Any]:
    from core.data.simulators.ifu import IFUSimConfig, grouped_split, simulate_ifu
    from core.device import device_description, resolve_device
    from core.metrics.maps import galaxy_pixels, residual_vs_truth, score_map_posterior
    from core.models import build_model

    size = SIZES[bool(quick)]
    methods = tuple(methods or METHODS)
    t_all = time.perf_counter()
    sim_cfg = IFUSimConfig(map_size=size["map_size"], channels=CHANNELS)
    t0 = time.perf_counter()
    full = simulate_ifu(size["n_gal_train"], seed + 1, sim_cfg, cache=True)
    test = simulate_ifu(size["n_gal_test"], seed + 2, sim_cfg, cache=True)
    sim_s = time.perf_counter() - t0
    # maps with no unmasked pixel carry no information (the models refuse them): drop and count them
    dead = {
        "train": int(full.mask.reshape(len(full), -1).all(1).sum()),
        "test": int(test.mask.reshape(len(test), -1).all(1).sum()),
    }
    full = full.subset(np.flatnonzero(~full.mask.reshape(len(full), -1).all(1)))
    test = test.subset(np.flatnonzero(~test.mask.reshape(len(test), -1).all(1)))
    tr_idx, va_idx = grouped_split(full.galaxy_id, (0.9, 0.1), seed=seed)
    train, val = full.subset(tr_idx), full.subset(va_idx)
    pixels = galaxy_pixels(test.mask, test.f_ex, test.galaxy)
    dev = resolve_device(device)
    results: dict[str, Any] = {
        "task": "exsitu_map",
        "quick": bool(quick),
        "map_size": size["map_size"],
        "n_train": len(train),
        "n_val": len(val),
        "n_test": len(test),
        "n_test_galaxies": size["n_gal_test"],
        "n_samples": size["n_samples"],
        "device": device_description(dev),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "simulator": sim_cfg.to_dict(),
        "seed": seed,
        "simulate_seconds": round(sim_s, 1),
        "all_masked_maps_dropped": dead,
        "methods": {},
        "residual_vs_fex": {},
    }
    ref = _reference_set(sim_cfg, size, seed)
    models: dict[str, Any] = {}
    if any(m in methods for m in ("flow", "prior", "reconstruction")):
        cfg = {
            "map_size": size["map_size"],
            "train": {
                "max_minutes": 0.0,
                "epochs": size["cvae_epochs"],
                "batch_size": 32,
                "lr": 2e-3,
                "patience": 15,
                "seed": seed,
            },
            "flow_train": {
                "max_minutes": 0.0,
                "epochs": size["flow_epochs"],
                "batch_size": 256,
                "lr": 1e-3,
                "patience": 25,
                "seed": seed,
            },
        }
        print("[bench] training cvae_flow ...", flush=True)
        t0 = time.perf_counter()
        models["cvae"] = build_model("exsitu_map", "cvae_flow", cfg, CHANNELS, ("f_ex",))
        models["cvae"].fit(train, val, device=device, callbacks=[_log_epoch])
        models["cvae_seconds"] = time.perf_counter() - t0
        hist = models["cvae"].history
        results["cvae_history"] = {
            k: {
                "stopped": hist[k].get("stopped_reason"),
                "best_epoch": hist[k].get("best_epoch"),
                "best_val_loss": hist[k].get("best_val_loss"),
                "epochs": len(hist[k].get("epochs", [])),
            }
            for k in ("cvae", "flow")
        }
        print(f"[bench] cvae_flow trained: {results['cvae_history']}", flush=True)
    for name in methods:
        print(f"[bench] {name} ...", flush=True)
        if name == "mean_map":
            t0 = time.perf_counter()
            model = build_model("exsitu_map", "mean_map", {"map_size": size["map_size"]}, CHANNELS, ("f_ex",))
            model.fit(train)
            train_s, mode = time.perf_counter() - t0, "mean_map"
        else:
            model, train_s, mode = models["cvae"], models["cvae_seconds"], name
        t0 = time.perf_counter()
        post = model.posterior(test, n_samples=size["n_samples"], seed=seed, mode=mode, device=device)
        infer_s = time.perf_counter() - t0
        row = score_map_posterior(post, pixels=pixels)
        row["train_seconds"] = round(train_s, 1)
        row["infer_seconds"] = round(infer_s, 2)
        row["maps_per_second"] = round(len(test) / infer_s, 2)
        if ref is not None:
            rpost = model.posterior(ref["data"], n_samples=size["n_samples"], seed=seed, mode=mode, device=device)
            rs = score_map_posterior(rpost, pixels=ref["pixels"], exact=ref["exact"])
            row["regret_reference"], row["mae_reference"], row["mae_exact_reference"] = (
                rs["regret_reference"],
                rs["mae_pixel"],
                rs["mae_exact"],
            )
            row["coverage_68_reference"] = rs["coverage_68_pixel"]
        results["methods"][name] = row
        results["residual_vs_fex"][name] = residual_vs_truth(post.q50, test.f_ex, pixels, bins=10)
        print(f"[bench] {name}: " + ", ".join(f"{k}={_f(v)}" for k, v in row.items()), flush=True)
    if ref is not None:
        results["reference"] = {
            "grid_sizes": list(size["ref_sizes"]),
            "n_objects": size["n_ref"],
            "grid_seconds": ref["seconds"],
            "mae_exact": ref["mae_exact"],
            "coverage_68_exact": ref["coverage_68_exact"],
        }
    results["total_seconds"] = round(time.perf_counter() - t_all, 1)
    return results


def markdown(results: dict) -> str:
    cols = [
        "mae_pixel",
        "mae_pixel_mean",
        "rmse_pixel",
        "coverage_68_pixel",
        "coverage_95_pixel",
        "width_68",
        "regret_reference",
        "train_seconds",
        "maps_per_second",
    ]
    lines = [
        f"# exsitu_map benchmark ({'quick' if results['quick'] else 'full'})",
        "",
        f"map_size = {results['map_size']}, n_train = {results['n_train']} maps (+{results['n_val']} val), "
        f"n_test = {results['n_test']} maps ({results['n_test_galaxies']} galaxies x 3 projections), "
        f"{results['n_samples']} draws per map, device = {results['device']}, total "
        f"{results.get('total_seconds', '?')} s",
        "",
        "| method | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 1) + "|",
    ]
    for name, row in results["methods"].items():
        lines.append(f"| {name} | " + " | ".join(_f(row.get(c)) for c in cols) + " |")
    ref = results.get("reference")
    if ref:
        lines += [
            "",
            f"Reference mode: grid {ref['grid_sizes']}, {ref['n_objects']} objects, exact posterior "
            f"median MAE {_f(ref['mae_exact'])}, exact 68% coverage {_f(ref['coverage_68_exact'])}; "
            "regret = method MAE - exact MAE on those maps (models trained on the full simulator).",
        ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------
def _reference_set(sim_cfg, size: dict, seed: int) -> dict | None:
    """Reference-mode test maps with their exact posterior, or None when the reference mode is unavailable."""
    try:
        from core.data.simulators.ifu_reference import reference_grid, reference_posterior, simulate_reference
    except ImportError:
        return None
    from core.data.simulators.ifu_config import CHANNEL_UNITS
    from core.metrics.maps import coverage_pixel, galaxy_pixels, mae_pixel

    t0 = time.perf_counter()
    grid = reference_grid(sim_cfg, sizes=tuple(size["ref_sizes"]), channels=CHANNELS)
    draw = simulate_reference(grid, size["n_ref"], seed=seed + 3)
    exact = reference_posterior(grid, draw["maps"], draw["ivar"], draw["mask"])
    data = SimpleNamespace(
        maps=draw["maps"],
        channels=CHANNELS,
        units=tuple(CHANNEL_UNITS[c] for c in CHANNELS),
        mask=draw["mask"],
        f_ex=draw["f_ex"],
        meta={"source": "ifu reference mode"},
    )
    pixels = galaxy_pixels(draw["mask"], draw["f_ex"])
    lv = exact.levels
    return {
        "data": data,
        "exact": exact,
        "pixels": pixels,
        "seconds": round(time.perf_counter() - t0, 1),
        "mae_exact": mae_pixel(exact.quantiles[:, lv.index(0.5)], draw["f_ex"], pixels),
        "coverage_68_exact": coverage_pixel(
            exact.quantiles[:, lv.index(0.16)], exact.quantiles[:, lv.index(0.84)], draw["f_ex"], pixels
        ),
    }


def _log_epoch(report) -> None:
    if report.epoch % 5 == 0:
        print(
            f"[bench]   epoch {report.epoch}: train {report.train_loss:.4g}, val {report.val_loss:.4g}, "
            f"{report.elapsed:.0f} s",
            flush=True,
        )
