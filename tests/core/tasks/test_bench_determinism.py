"""Benchmarks on fixed budgets: two runs with the same seed and budget give identical metric values (timings
aside), whatever the machine load; nothing in a benchmark config is a wall-clock cap."""

from __future__ import annotations

import json

import pytest

from core.bench import benchmark_module, run_benchmark
from core.bench.common import metric_values

TINY = {
    "halo_mass": (
        {"n_train": 3000, "n_test": 200, "n_throughput": 400, "epochs": {"flow": 2}},
        ["flow", "lightgbm", "shmr"],
    ),
    "exsitu_map": (
        {
            "n_gal_train": 6,
            "n_gal_test": 2,
            "n_samples": 8,
            "cvae_epochs": 2,
            "flow_epochs": 2,
            "ref_sizes": (2, 2, 2),
            "n_ref": 3,
            "map_size": 32,
        },
        ["flow", "prior", "mean_map"],
    ),
    "central_mass": ({"n_galaxies": 8, "fractions": (0.5, 0.25, 0.25), "epochs": 2}, ["resnet", "lightgbm"]),
}


@pytest.mark.parametrize("task", sorted(TINY))
def test_tiny_benchmark_twice_gives_identical_metrics(task, tmp_path, monkeypatch):
    size, methods = TINY[task]
    monkeypatch.setitem(benchmark_module(task).SIZES, True, size)
    runs = []
    for k in range(2):
        out = tmp_path / f"run{k}.json"
        run_benchmark(task, quick=True, out=out, seed=4, methods=methods)
        runs.append(json.loads(out.read_text()))
    assert set(runs[0]["methods"]) == set(methods)
    assert metric_values(runs[0]) == metric_values(runs[1])


@pytest.mark.parametrize("task", ["halo_mass", "exsitu_map", "central_mass"])
def test_benchmark_budgets_are_epochs_not_minutes(task):
    for quick in (True, False):
        size = benchmark_module(task).SIZES[quick]
        assert not any("minute" in k or "seconds" in k for k in size), size
