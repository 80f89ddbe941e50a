"""On-disk cache of simulated datasets (HDF5, no pickle), keyed by simulator name, config hash, n, seed, version.

``cached(name, config, n, seed, build)`` returns ``build()``'s result, storing it the first time under
``$GPS_CACHE_DIR`` (default ``~/.cache/galaxy-posterior-studio``). Two payloads are supported: a
:class:`CatalogData`, or a generic ``(arrays: dict[str, ndarray], meta: dict)`` pair (e.g. IFU map stacks),
written as HDF5 datasets plus a JSON metadata attribute. Loading returns an identical object.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from core.config import Config
from core.data.catalog import CatalogData
from core.errors import GPSError

__all__ = ["cache_dir", "cache_path", "cached", "save_arrays", "load_arrays", "save_catalog", "load_catalog"]

_FORMAT = "gps-cache-1"


def cache_dir() -> Path:
    """The cache folder: ``$GPS_CACHE_DIR`` or ``~/.cache/galaxy-posterior-studio`` (created on demand)."""
    d = Path(os.environ.get("GPS_CACHE_DIR") or Path.home() / ".cache" / "galaxy-posterior-studio")
    d.mkdir(parents=True, exist_ok=True)
    return d


def cache_path(name: str, config: Config, n: int, seed: int) -> Path:
    """File name ``{name}_{confighash}_n{n}_s{seed}_v{version}[_c{CACHE_VERSION}].h5`` inside :func:`cache_dir`.

    A simulator whose output changes for the same configuration (a numerical fix) bumps its config class's
    ``CACHE_VERSION``, so that no stale set is loaded."""
    import core

    tag = getattr(type(config), "CACHE_VERSION", 0)
    suffix = f"_c{tag}" if tag else ""
    return cache_dir() / f"{name}_{config.config_hash()}_n{int(n)}_s{int(seed)}_v{core.__version__}{suffix}.h5"


def cached(name: str, config: Config, n: int, seed: int, build: Callable[[], Any]) -> Any:
    """Load the cached result for (name, config, n, seed) or call ``build()`` and store it.

    ``build`` returns a :class:`CatalogData` or an ``(arrays, meta)`` tuple; the same type is returned.
    A corrupt cache file is rebuilt (and overwritten).
    """
    path = cache_path(name, config, n, seed)
    if path.exists():
        try:
            return _load_any(path)
        except (OSError, KeyError, ValueError, GPSError):
            path.unlink(missing_ok=True)
    result = build()
    if isinstance(result, CatalogData):
        save_catalog(result, path)
    elif isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], dict):
        save_arrays(result[0], result[1], path)
    else:
        raise TypeError("cached(): build() must return CatalogData or (dict of arrays, meta dict)")
    return result


def save_arrays(arrays: dict[str, np.ndarray], meta: dict[str, Any], path: str | os.PathLike,
                kind: str = "arrays") -> None:
    """Write named arrays (any shape; numeric, bool or fixed-width strings) + JSON meta to HDF5 atomically."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".h5.tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = _FORMAT
            f.attrs["kind"] = kind
            f.attrs["meta_json"] = json.dumps(meta, default=_json_default)
            g = f.create_group("arrays")
            for k, v in arrays.items():
                v = np.asarray(v)
                if v.dtype.kind == "U":
                    v = v.astype("S")
                    g.create_dataset(k, data=v).attrs["unicode"] = True
                else:
                    g.create_dataset(k, data=v)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read what :func:`save_arrays` wrote: (arrays, meta)."""
    import h5py

    with h5py.File(path, "r") as f:
        if f.attrs.get("format") != _FORMAT:
            raise GPSError("not a Galaxy Posterior Studio cache file", source=str(path), field="format",
                           expected=_FORMAT, found=str(f.attrs.get("format")))
        meta = json.loads(f.attrs["meta_json"])
        arrays: dict[str, np.ndarray] = {}

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                v = obj[()]
                arrays[name] = v.astype(str) if obj.attrs.get("unicode") else v

        f["arrays"].visititems(visit)
    return arrays, meta


def save_catalog(data: CatalogData, path: str | os.PathLike) -> None:
    """Store a :class:`CatalogData` (x, y, ids, names, units, meta, extras) in one HDF5 file."""
    arrays = {"x": data.x, "ids": data.ids}
    if data.y is not None:
        arrays["y"] = data.y
    for k, v in data.extra.items():
        arrays[f"extra/{k}"] = np.asarray(v)
    meta = {"catalog": {"features": list(data.features), "targets": list(data.targets), "units": data.units,
                        "extra": list(data.extra), "has_y": data.y is not None}, "meta": data.meta}
    save_arrays(arrays, meta, path, kind="catalog")


def load_catalog(path: str | os.PathLike) -> CatalogData:
    """Read a :class:`CatalogData` written by :func:`save_catalog`."""
    arrays, meta = load_arrays(path)
    c = meta["catalog"]
    extra = {k: arrays[f"extra/{k}"] for k in c["extra"]}
    return CatalogData(x=arrays["x"], features=tuple(c["features"]), y=arrays.get("y") if c["has_y"] else None,
                       targets=tuple(c["targets"]), ids=arrays["ids"], units=dict(c["units"]),
                       meta=meta["meta"], extra=extra)


# ---------------------------------------------------------------------------------------------------
def _load_any(path: Path) -> Any:
    import h5py

    with h5py.File(path, "r") as f:
        kind = f.attrs.get("kind")
    if kind == "catalog":
        return load_catalog(path)
    return load_arrays(path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
