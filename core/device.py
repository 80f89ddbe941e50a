"""Device choice: ``cuda`` if present, else ``mps``, else ``cpu``; overridable by argument or GPS_DEVICE."""

from __future__ import annotations

import os

from core.errors import GPSError

__all__ = ["resolve_device", "device_description", "available_devices"]


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
