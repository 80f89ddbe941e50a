"""The Dask cluster of a run: any scheduler by address, or an embedded local one that follows the app's device policy.

Local default: ``LocalCluster`` with ``workers`` processes of ``threads_per_worker`` threads each; every worker gets
``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/XLA single-thread flags matching its thread count (torch threads are set in
the worker). When the device policy (:func:`core.device.resolve_device`, ``GPS_DEVICE``) picks CUDA, the local cluster
has one worker per visible GPU, each seeing only its own (``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Iterator

from core.errors import GPSError

__all__ = ["open_client", "worker_env", "gpu_count"]


def worker_env(threads: int) -> dict[str, str]:
    t = str(max(1, threads))
    return {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t,
            "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                         f"intra_op_parallelism_threads={t}",
            "GPS_BATCH_THREADS": t}


def gpu_count(device: str | None) -> int:
    """CUDA devices the local workers should use under the device policy (0 = CPU workers)."""
    from core.device import resolve_device

    dev = resolve_device(device or None)
    if dev.type != "cuda":
        return 0
    import torch

    return torch.cuda.device_count()


@contextlib.contextmanager
def open_client(scheduler: str = "", workers: int = 0, threads_per_worker: int = 1, processes: bool = True,
                device: str | None = None) -> Iterator:
    """A ``distributed.Client``: connected to ``scheduler`` when given, else to a new local cluster (closed on exit)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as e:
            raise GPSError("cannot reach the Dask scheduler", field="--scheduler", found=f"{scheduler}: {e}") from None
        try:
            yield client
        finally:
            client.close()
        return
    gpus = gpu_count(device) if processes else 0
    n = workers or gpus or 2
    env = worker_env(threads_per_worker)
    kw = dict(dashboard_address=":0", silence_logs=logging.ERROR)
    if gpus:
        cluster = _gpu_cluster(n, gpus, threads_per_worker, env, kw)
    elif processes:
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True, env=env, **kw)
    else:
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=False, **kw)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _gpu_cluster(n: int, gpus: int, threads: int, env: dict, kw: dict):
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {f"gpu-{i}": {"cls": Nanny, "options": {"nthreads": threads, "env": {
        **env, "CUDA_VISIBLE_DEVICES": str(i % gpus), "GPS_DEVICE": "cuda"}}} for i in range(n)}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": kw["dashboard_address"]}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=kw["silence_logs"])

