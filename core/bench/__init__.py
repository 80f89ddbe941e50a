"""Benchmarks: every method of a task trained on one simulated set and scored on one held-out set, same run.

Each task's benchmark lives in its package (``Task.bench`` names the module with ``run`` and ``markdown``).
Training budgets are fixed numbers of epochs / steps (never wall-clock caps) and every random source is seeded, so
a benchmark's metric values depend only on its seed and budget; timing columns vary with the machine.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Sequence

from core.errors import GPSError

__all__ = ["run_benchmark", "write_results", "benchmark_module", "benchmark_names", "EXTRA_BENCHMARKS"]

#: benchmarks that are not one task's (every task's own benchmark is ``Task.bench``)
EXTRA_BENCHMARKS = {"scale": "core.batch.bench", "halo_mass_shift": "core.tasks.halo_mass.shift_bench"}


def benchmark_names() -> list[str]:
    """Names ``python -m core bench`` accepts: every task with a benchmark, then the extra ones."""
    from core.tasks import all_tasks

    return [t.name for t in all_tasks() if t.bench] + list(EXTRA_BENCHMARKS)


def benchmark_module(task: str):
    """The benchmark module of ``task`` (``run``, ``markdown``)."""
    from core.tasks import get_task_obj

    if task in EXTRA_BENCHMARKS:
        return importlib.import_module(EXTRA_BENCHMARKS[task])
    t = get_task_obj(task)
    if not t.bench:
        raise GPSError(f"no benchmark for task {task!r}", field="task", found=task)
    return importlib.import_module(t.bench)


def run_benchmark(
    task: str,
    *,
    quick: bool = False,
    out: str | Path,
    seed: int = 0,
    device: str | None = None,
    methods: Sequence[str] | None = None,
) -> dict[str, Any]:
    from core.bench.common import deterministic_setup

    mod = benchmark_module(task)
    setup = deterministic_setup(seed)
    results = mod.run(quick=quick, seed=seed, device=device, methods=methods)
    results["determinism"] = setup
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
