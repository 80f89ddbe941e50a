"""Shared test setup: deterministic seeds, explicit thread counts, marker auto-skips."""

from __future__ import annotations

import os
import random
import shutil

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("GPS_CACHE_DIR", os.path.join(os.path.dirname(__file__), "..", ".cache", "test-cache"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
        torch.set_num_threads(2)
    except ImportError:  # pragma: no cover
        pass
    yield


def pytest_collection_modifyitems(config, items):
    has_chromium = shutil.which("chromium") or os.path.exists("/usr/bin/chromium")
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_gpu = False
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="no CUDA GPU"))
        if "browser" in item.keywords and not has_chromium:
            item.add_marker(pytest.mark.skip(reason="/usr/bin/chromium not installed"))
