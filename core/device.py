"""Device choice: ``cuda`` if present, else ``mps``, else ``cpu``; overridable by argument or GPS_DEVICE. CPU thread
count for torch (:func:`pin_threads`): ``GPS_THREADS``, else 1 on small machines."""

from __future__ import annotations

import os

from core.errors import GPSError

__all__ = ["resolve_device", "device_description", "available_devices", "cpu_threads", "pin_threads",
           "jax_compilation_cache"]

_JAX_CACHE: list[str] = []


def cpu_threads() -> int:
    """Torch intra-op threads for the CLI and each app session lane: ``GPS_THREADS``, else 1 on machines with up to
    4 cores and a quarter of the cores (at most 8) above. Two spinning OpenMP threads on a loaded 2-core machine
    were 4-6x slower than one (training 3.8 vs 0.9 s/epoch, 36 map posteriors 35 vs 5.5 s)."""
    env = os.environ.get("GPS_THREADS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise GPSError("GPS_THREADS must be a whole number", field="GPS_THREADS", expected="1, 2, ...",
                           found=env) from None
    n = os.cpu_count() or 1
    return 1 if n <= 4 else min(8, n // 4)


def pin_threads() -> int:
    """Set the calling thread's torch thread count to :func:`cpu_threads` (OpenMP's setting is per thread, so call
    it in the worker thread that runs torch); returns the count."""
    import torch

    n = cpu_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def jax_compilation_cache() -> str:
    """Keep JAX's compiled samplers on disk (``<GPS cache>/jax``, or the user's ``JAX_COMPILATION_CACHE_DIR``), so a
    new process (a batch worker, an app server, a CLI run) loads them instead of compiling again: measured on one
    core, a worker's first 20,000-row flow part spent about 7 s compiling; with the cache the second process's
    first posterior took 2.5 s instead of 6.3 s. ``GPS_JAX_CACHE=0`` turns it off. Call before the first jit; returns
    the folder ('' when off)."""
    if _JAX_CACHE:
        return _JAX_CACHE[0]
    import jax

    folder = ""
    if os.environ.get("GPS_JAX_CACHE", "1").strip() not in ("0", "false", "no"):
        folder = os.environ.get("JAX_COMPILATION_CACHE_DIR", "")
        if not folder:
            from core.data.cache import cache_dir

            folder = str(cache_dir() / "jax")
            jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    _JAX_CACHE.append(folder)
    return folder


def resolve_device(preference: str | None = None):
    """Return a ``torch.device``. ``preference`` is ``None``/"auto", "cpu", "cuda", "cuda:N" or "mps"."""
    import torch

    pref = (preference or os.environ.get("GPS_DEVICE") or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise GPSError("CUDA was requested but no CUDA GPU is visible to torch",
                           field="device", expected="auto | cpu | mps", found=pref)
        return torch.device(pref)
    if pref == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise GPSError("MPS was requested but is not available", field="device", found=pref)
        return torch.device("mps")
    if pref == "cpu":
        return torch.device("cpu")
    raise GPSError("unknown device", field="device", expected="auto | cpu | cuda | cuda:N | mps", found=pref)


def device_description(device=None) -> str:
    """Human-readable device name, e.g. 'cuda:0 (NVIDIA H100 80GB HBM3)' or 'cpu (2 threads)'."""
    import torch

    device = device if device is not None else resolve_device()
    device = torch.device(device)
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def available_devices() -> list[str]:
    """Choices for a device menu: "auto", "cpu" and every CUDA device (imports torch)."""
    import torch

    return ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
