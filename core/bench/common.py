"""Helpers shared by the benchmark modules: table cells and the deterministic set-up of a run."""

from __future__ import annotations

import os
import random

__all__ = ["fmt_value", "deterministic_setup", "metric_values", "BENCH_THREADS_ENV", "TIMING_WORDS"]

#: environment variable that sets the torch CPU threads of a benchmark (default 1: results then do not depend on
#: the core count; reductions split over threads can round differently)
BENCH_THREADS_ENV = "GPS_BENCH_THREADS"


def fmt_value(v) -> str:
    """Markdown cell for a number: 4 significant digits, '—' for a field that does not apply."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def deterministic_setup(seed: int) -> dict:
    """Seed Python, numpy and torch, pin torch's CPU threads and ask torch for deterministic kernels, so a
    benchmark's metric values depend only on its seed and its (epoch / step) budget, not on machine load.
    Returns what was set (recorded in the results)."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    threads = int(os.environ.get(BENCH_THREADS_ENV, "1"))
    out = {"seed": seed, "torch_threads": None}
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return out
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    out["torch_threads"] = threads
    return out


#: result keys that measure time or describe the machine (they may differ between two runs of one benchmark)
TIMING_WORDS = ("seconds", "per_second", "per_object_ms", "device", "machine")


def metric_values(results):
    """``results`` without its timing and machine entries (nested dicts / lists kept): what must be identical
    between two runs with the same seed and budget."""
    if isinstance(results, dict):
        return {k: metric_values(v) for k, v in results.items() if not any(w in str(k) for w in TIMING_WORDS)}
    if isinstance(results, (list, tuple)):
        return [metric_values(v) for v in results]
    return results
