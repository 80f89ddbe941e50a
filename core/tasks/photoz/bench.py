"""photoz benchmark: every method on one mock test set (with exact posteriors) and on the real SDSS MGS file.

``python -m core bench photoz [--quick] --out FILE.json``. Mock: every learned method trains on the same simulated
training set (SDSS-like default configuration) and is scored on the same held-out test set against the truth and
the exact template posterior. Real: the mock-trained methods (``exact`` = template fit with the mock priors,
``mmvae``) are scored on the whole ``SDSS_MGS.train`` (errors with the simulator's 2% calibration floor added in
quadrature, :func:`core.tasks.photoz.simulator.floor_errors`); the empirical methods (``flow``, ``lightgbm``,
``knn``) are trained on a fixed 80% of it (``numpy.random.default_rng(0).permutation``) and scored on the other 20%.
Budgets are epochs / rounds / sizes, never wall-clock, so the numbers depend only on the seed. Timings are wall
and CPU seconds of this process (``time.process_time``).

JSON: ``{"task": "photoz", "mock": {METHOD: {sigma_nmad, outlier_frac, bias, coverage_68, coverage_95, pit_ks_p,
crps, kl_to_exact, train_seconds, galaxies_per_second, ...}}, "real": {"SDSS_MGS": {METHOD: {...}}},
"groups": {"mock"|"real": {METHOD: {quiescent, star_forming, z bins}}}, "timing": {...}, "sizes": {...}}``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

__all__ = ["run", "markdown", "SIZES", "METHODS", "real_data_path"]

METHODS = ("exact", "mmvae", "flow", "lightgbm", "knn")
_E = {"epochs": 60, "batch_size": 256, "lr": 2e-3, "patience": 10}
SIZES = {
    True: {
        "n_train": 80000,
        "n_val": 3000,
        "n_test": 1500,
        "n_speed": 10000,
        "draws": 400,
        "mmvae": {"hidden": 128, "spectral": _E, "photometry": _E, "parameters": _E},
        "flow": {"train": {"epochs": 60, "batch_size": 512, "lr": 2e-3, "patience": 10}},
        "flow_real": {"train": {"epochs": 150, "batch_size": 128, "lr": 1e-3, "patience": 15}},
    },
    False: {
        "n_train": 150000,
        "n_val": 10000,
        "n_test": 5000,
        "n_speed": 10000,
        "draws": 1000,
        "mmvae": {
            "hidden": 256,
            "spectral": dict(_E, epochs=100),
            "photometry": dict(_E, epochs=100),
            "parameters": dict(_E, epochs=100),
        },
        "flow": {"train": {"epochs": 100, "batch_size": 512, "lr": 2e-3, "patience": 10}},
        "flow_real": {"train": {"epochs": 300, "batch_size": 128, "lr": 1e-3, "patience": 20}},
    },
}
_COLS = (
    "sigma_nmad",
    "outlier_frac",
    "outlier_frac_rail",
    "bias",
    "coverage_68",
    "coverage_95",
    "pit_ks_p",
    "crps",
    "kl_to_exact",
    "train_seconds",
    "galaxies_per_second",
)


def real_data_path(name: str = "SDSS_MGS.train") -> Path | None:
    """``$GPS_SHARED_DATA/photoz/NAME`` or ``<repo>/../shared/data/photoz/NAME`` if it exists."""
    roots = [os.environ.get("GPS_SHARED_DATA", ""), str(Path(__file__).resolve().parents[3].parent / "shared" / "data")]
    for r in roots:
        if r and (Path(r) / "photoz" / name).exists():
            return Path(r) / "photoz" / name
    return None


def run(
    *, quick: bool = False, seed: int = 0, device: str | None = None, methods: Sequence[str] | None = None
) -> dict[str, Any]:
    from core.data.cache import cached
    from core.tasks.photoz.exact import exact_posterior
    from core.tasks.photoz.simulator import PhotozSimConfig, simulate

    size = SIZES[bool(quick)]
    methods = tuple(methods or METHODS)
    cfg = PhotozSimConfig()
    clock = _Clock()
    with clock("simulate"):
        train = cached("photoz", cfg, size["n_train"], seed + 1, lambda: simulate(size["n_train"], seed + 1, cfg))
        val = cached("photoz", cfg, size["n_val"], seed + 2, lambda: simulate(size["n_val"], seed + 2, cfg))
        test = cached("photoz", cfg, size["n_test"], seed + 3, lambda: simulate(size["n_test"], seed + 3, cfg))
    with clock("exact_mock"):
        ex = exact_posterior(test, cfg)
    res: dict[str, Any] = {
        "task": "photoz",
        "quick": bool(quick),
        "seed": seed,
        "mock": {},
        "real": {},
        "groups": {"mock": {}, "real": {}},
        "sizes": {k: v for k, v in size.items() if isinstance(v, int)},
        "simulator": cfg.to_dict(),
    }
    models = {}
    for m in methods:
        if m == "exact":
            res["mock"][m] = _score(ex, test, None, None, res["groups"]["mock"], m)
            res["mock"][m].update(train_seconds=0.0, galaxies_per_second=len(test) / clock.wall["exact_mock"])
            continue
        model = _build(m, size, mock=True)
        with clock(f"train_{m}"):
            model.fit(train, val, device=device)
        models[m] = model
        post = model.posterior(test, n_samples=size["draws"], seed=seed)
        qd = model.pz_grid(test, ex.grid) if hasattr(model, "pz_grid") else None
        res["mock"][m] = _score(post, test, ex, qd, res["groups"]["mock"], m)
        res["mock"][m]["train_seconds"] = clock.wall[f"train_{m}"]
        res["mock"][m]["galaxies_per_second"] = _speed(model, train, size["n_speed"], clock, m)
        if m == "mmvae":
            res["mock"][m]["temperature"] = model.temperature
            res["mmvae_stages"] = {
                k: {
                    "epochs": len(v["epochs"]),
                    "best_val_loss": v["best_val_loss"],
                    "seconds": v["seconds"],
                    "loss_curve": [e["val_loss"] for e in v["epochs"]],
                }
                for k, v in model.history["stages"].items()
            }
    path = real_data_path()
    if path is not None:
        res["real"]["SDSS_MGS"] = _real(path, methods, models, size, seed, clock, res["groups"]["real"], device)
    res["timing"] = {
        "wall_seconds": clock.wall,
        "cpu_seconds": clock.cpu,
        "total_wall": sum(clock.wall.values()),
        "total_cpu": sum(clock.cpu.values()),
    }
    return res


def markdown(results: dict) -> str:
    lines = [
        f"# photoz benchmark ({'quick' if results.get('quick') else 'full'})",
        "",
        f"sizes: {results.get('sizes')}; total wall {results['timing']['total_wall']:.0f} s, "
        f"CPU {results['timing']['total_cpu']:.0f} s",
        "",
        "## Mock (SDSS-like simulator, exact posterior)",
        "",
    ]
    lines += _table(results["mock"], _COLS)
    for ds, rows in results.get("real", {}).items():
        lines += ["", f"## Real: {ds} (mock-trained on the whole file; empirical methods 80/20 split)", ""]
        lines += _table(rows, ("n",) + tuple(c for c in _COLS if c != "kl_to_exact") + ("scored_on",))
    for part, groups in results.get("groups", {}).items():
        lines += ["", f"## sigma_NMAD by subsample ({part})", ""]
        keys = sorted({k for g in groups.values() for k in g}, key=lambda k: (k[0] == "z", k))
        lines += ["| method | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for m, g in groups.items():
            cells = [f"{_f(g.get(k, {}).get('sigma_nmad'))} (n={g.get(k, {}).get('n', 0)})" for k in keys]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    st = results.get("mmvae_stages")
    if st:
        lines += ["", "## mmvae stages", ""] + [
            f"- {k}: {v['epochs']} epochs, best val loss {_f(v['best_val_loss'])}, {v['seconds']:.0f} s"
            for k, v in st.items()
        ]
    lines += ["", "## Timing (wall / CPU seconds)", ""] + [
        f"- {k}: {results['timing']['wall_seconds'][k]:.1f} / {results['timing']['cpu_seconds'][k]:.1f}"
        for k in results["timing"]["wall_seconds"]
    ]
    return "\n".join(lines) + "\n"


# -- private -------------------------------------------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def __call__(self, name: str):
        clock = self

        class _Ctx:
            def __enter__(self):
                self.t, self.c = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                clock.wall[name] = clock.wall.get(name, 0.0) + time.perf_counter() - self.t
                clock.cpu[name] = clock.cpu.get(name, 0.0) + time.process_time() - self.c

        return _Ctx()


def _build(name: str, size: dict, mock: bool):
    from core.models.base import build_model
    from core.tasks.photoz.models.common import INPUTS

    cfg = {"mmvae": size["mmvae"], "flow": size["flow"] if mock else size["flow_real"]}.get(name, {})
    return build_model("photoz", name, cfg, INPUTS, ("z",))


def _score(post, data, ex, qd, groups: dict, name: str) -> dict:
    from core.tasks.photoz.metrics import score, score_groups

    z = data.y[:, 0]
    out = score(post, z, ex, q_density=qd)
    groups[name] = score_groups(post, z, data.column("mag_u"), data.column("mag_r"))
    return out


def _speed(model, data, n: int, clock: _Clock, name: str) -> float:
    """Galaxies per second for p(z) of ``n`` galaxies on a 300-node grid (density where the model has one)."""
    sub = data.subset(slice(0, n))
    grid = np.linspace(0.0, 1.5, 301)
    with clock(f"pz10k_{name}"):
        if hasattr(model, "pz_grid"):
            model.pz_grid(sub, grid)
        else:
            model.posterior(sub, n_samples=200, seed=0)
    return n / clock.wall[f"pz10k_{name}"]


def _real(path: Path, methods, models: dict, size: dict, seed: int, clock: _Clock, groups: dict, device) -> dict:
    from core.tasks.photoz.exact import exact_posterior
    from core.tasks.photoz.io import read_photometry
    from core.tasks.photoz.simulator import PhotozSimConfig, floor_errors

    data = read_photometry(path)
    floored = floor_errors(data, PhotozSimConfig())  # for the mock-trained methods
    perm = np.random.default_rng(0).permutation(len(data))
    n_tr = int(0.8 * len(data))
    train, test = data.subset(np.sort(perm[:n_tr])), data.subset(np.sort(perm[n_tr:]))
    out: dict[str, dict] = {}
    for m in methods:
        if m in ("exact", "mmvae"):
            with clock(f"real_{m}"):
                post = (
                    (
                        exact_posterior(floored, PhotozSimConfig())
                        if m == "exact"
                        else models[m].posterior(floored, n_samples=size["draws"], seed=seed)
                    )
                    if (m == "exact" or m in models)
                    else None
                )
            if post is None:
                continue
            out[m] = _score(post, data, None, None, groups, m)
            out[m].update(
                scored_on="whole file (mock-trained)",
                train_seconds=0.0,
                galaxies_per_second=len(data) / clock.wall[f"real_{m}"],
            )
        else:
            model = _build(m, size, mock=False)
            with clock(f"real_train_{m}"):
                model.fit(train, None, device=device)
            with clock(f"real_{m}"):
                post = model.posterior(test, n_samples=size["draws"], seed=seed)
            out[m] = _score(post, test, None, None, groups, m)
            out[m].update(
                scored_on="20% split (trained on 80%)",
                train_seconds=clock.wall[f"real_train_{m}"],
                galaxies_per_second=len(test) / clock.wall[f"real_{m}"],
            )
    return out


def _table(rows: dict, cols) -> list[str]:
    out = ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for m, r in rows.items():
        out.append(f"| {m} | " + " | ".join(_f(r.get(c)) for c in cols) + " |")
    return out


def _f(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    v = float(v)
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.3g}"
