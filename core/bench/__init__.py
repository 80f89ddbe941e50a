"""Benchmarks: every method of a task trained on one simulated set and scored on one held-out set, same run."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Sequence

from core.errors import GPSError

__all__ = ["run_benchmark", "write_results", "BENCHMARKS"]

BENCHMARKS = {"halo_mass": "core.bench.halo_mass", "exsitu_map": "core.bench.exsitu_map",
              "central_mass": "core.bench.central_mass", "dm_to_galaxies": "core.tasks.dm_to_galaxies.bench"}


def run_benchmark(task: str, *, quick: bool = False, out: str | Path, seed: int = 0, device: str | None = None,
                  methods: Sequence[str] | None = None) -> dict[str, Any]:
    if task not in BENCHMARKS:
        raise GPSError(f"no benchmark for task {task!r}", expected=", ".join(BENCHMARKS))
    mod = importlib.import_module(BENCHMARKS[task])
    results = mod.run(quick=quick, seed=seed, device=device, methods=methods)
    write_results(results, out, mod.markdown(results))
    return results


def write_results(results: dict, out: str | Path, markdown: str) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=_num))
    out.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"wrote {out} and {out.with_suffix('.md')}")


def _num(o):
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)
