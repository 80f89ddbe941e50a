"""The Dask cluster of a run: any scheduler by address, or an embedded local one that follows the app's device policy.

Local default: ``workers`` processes of ``threads_per_worker`` threads each; every worker gets
``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/XLA single-thread flags matching its thread count (torch threads are set in
the worker). Those flags do not confine JAX's CPU runtime (a "1-thread" worker sampling a flow was measured using 1.7
cores), so when the workers' threads fit the cores this process may use, each worker is also pinned to its own cores
(``GPS_CPU_CORES``, applied to every thread of the worker by :func:`pin_cores`): ``--threads-per-worker 1`` then
means one core, and N workers use N cores without stealing each other's. When the device policy (:func:`core.device.resolve_device`, ``GPS_DEVICE``) picks CUDA, the local cluster
has one worker per visible GPU, each seeing only its own (``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

from core.errors import GPSError

__all__ = ["open_client", "worker_env", "gpu_count", "pin_cores", "core_sets"]


def worker_env(threads: int) -> dict[str, str]:
    t = str(max(1, threads))
    return {"OMP_NUM_THREADS": t, "MKL_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t,
            "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
                         f"intra_op_parallelism_threads={t}",
            "GPS_BATCH_THREADS": t}


def core_sets(workers: int, threads: int) -> list[str] | None:
    """Disjoint CPU sets (``"0,1"``-style strings) for ``workers`` local workers of ``threads`` threads, or None when
    they do not fit the cores this process may run on (then nothing is pinned) or the OS cannot pin."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))
    t = max(1, threads)
    if workers * t > len(cores):
        return None
    return [",".join(str(c) for c in cores[i * t:(i + 1) * t]) for i in range(workers)]


def pin_cores(cores: str | None = None) -> bool:
    """Confine every thread of this process to ``cores`` (default ``GPS_CPU_CORES``); threads started later inherit
    it from their (pinned) parent thread. Returns whether anything was pinned. Linux only; a no-op elsewhere."""
    spec = cores if cores is not None else os.environ.get("GPS_CPU_CORES", "")
    if not spec or not hasattr(os, "sched_setaffinity"):
        return False
    wanted = {int(c) for c in spec.split(",") if c.strip()}
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        tids = [0]
    pinned = False
    for tid in tids:
        try:
            os.sched_setaffinity(tid, wanted)
            pinned = True
        except OSError:                   # a thread that ended meanwhile, or a core we may not use
            pass
    return pinned


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
    import dask
    from distributed import Client

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
    with dask.config.set({"distributed.nanny.pre-spawn-environ": spawn_environ(), "distributed.worker.profile.enabled": False}):
        cluster = _local_cluster(n, gpus, threads_per_worker, processes, env, kw)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def spawn_environ() -> dict:
    """Dask's pre-spawn environment of worker processes without ``MALLOC_TRIM_THRESHOLD_``: any explicit glibc malloc
    threshold turns off glibc's dynamic mmap threshold, so every large array becomes a fresh mmap with its page
    faults; measured on the flow's batch posteriors (20,000 rows x 1,000 draws per part, one core): 2.8 s per part
    with glibc's defaults, 3.2 s with Dask's 65536 and 4.2 s with a 32 MiB mmap threshold. Parts are bounded in
    size, so the memory a worker keeps is bounded too (the bench's peak-RSS check)."""
    import dask

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    return env


def _local_cluster(n: int, gpus: int, threads_per_worker: int, processes: bool, env: dict, kw: dict):
    from distributed import LocalCluster

    if gpus:
        return _spec_cluster({f"gpu-{i}": {**env, "CUDA_VISIBLE_DEVICES": str(i % gpus), "GPS_DEVICE": "cuda"}
                              for i in range(n)}, threads_per_worker, kw)
    if processes:
        sets = core_sets(n, threads_per_worker)
        if sets:
            return _spec_cluster({f"cpu-{i}": {**env, "GPS_CPU_CORES": c} for i, c in enumerate(sets)},
                                 threads_per_worker, kw)
        return LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=True, env=env, **kw)
    return LocalCluster(n_workers=n, threads_per_worker=threads_per_worker, processes=False, **kw)


def _spec_cluster(envs: dict[str, dict[str, str]], threads: int, kw: dict):
    """A local cluster of one worker process (behind a nanny) per entry of ``envs``, each with its own environment."""
    from distributed import Nanny, Scheduler, SpecCluster

    workers = {name: {"cls": Nanny, "options": {"nthreads": threads, "env": env}} for name, env in envs.items()}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": kw["dashboard_address"]}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=kw["silence_logs"])

