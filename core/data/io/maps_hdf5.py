"""Our own HDF5 map-stack format (``map_stack_hdf5``): one file = one MapStack, identified by a root attribute.

Layout (version 1): root attrs ``gps_format = "gps_map_stack"``, ``gps_version = 1``, ``channels``/``units``/
``meta`` (JSON strings); datasets ``data`` (N, C, H, W) float32, ``mask`` (N, H, W) uint8, optional ``ivar``,
``pixel_scale_arcsec`` (N,), ``reff_arcsec`` (N,), ``center_xy`` (N, 2), ``ids`` (N,) strings (attr
``kind`` "int" or "str"), ``headers`` (N,) strings; group ``targets`` with one dataset per target.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from core.errors import GPSError

__all__ = ["FORMAT_TAG", "FORMAT_VERSION", "write_map_stack", "read_map_stack", "identify_map_stack"]

FORMAT_TAG = "gps_map_stack"
FORMAT_VERSION = 1
_REQUIRED = ("data", "mask", "pixel_scale_arcsec", "reff_arcsec", "center_xy", "ids", "headers")


def write_map_stack(stack, path: str | os.PathLike, **_: object) -> None:
    """Write ``stack`` (a :class:`core.data.maps.MapStack`) to ``path`` (overwrites)."""
    import h5py

    from core.data.maps import MapStack

    if not isinstance(stack, MapStack):
        raise GPSError("the HDF5 map-stack writer takes a MapStack", source=str(path),
                       expected="MapStack", found=type(stack).__name__)
    str_dt = h5py.string_dtype("utf-8")
    comp = dict(compression="gzip", compression_opts=4, shuffle=True)
    with h5py.File(str(path), "w") as f:
        f.attrs["gps_format"] = FORMAT_TAG
        f.attrs["gps_version"] = FORMAT_VERSION
        f.attrs["channels"] = json.dumps(list(stack.channels))
        f.attrs["units"] = json.dumps(list(stack.units))
        f.attrs["meta"] = json.dumps(stack.meta, default=_json_default)
        chunks = (1,) + stack.data.shape[1:]
        f.create_dataset("data", data=stack.data, chunks=chunks, **comp)
        f.create_dataset("mask", data=stack.mask.astype(np.uint8), chunks=(1,) + stack.mask.shape[1:], **comp)
        if stack.ivar is not None:
            f.create_dataset("ivar", data=stack.ivar, chunks=chunks, **comp)
        f.create_dataset("pixel_scale_arcsec", data=stack.pixel_scale_arcsec)
        f.create_dataset("reff_arcsec", data=stack.reff_arcsec)
        f.create_dataset("center_xy", data=stack.center_xy)
        kind = "int" if np.issubdtype(stack.ids.dtype, np.integer) else "str"
        ds = f.create_dataset("ids", data=np.array([str(i) for i in stack.ids], dtype=object), dtype=str_dt)
        ds.attrs["kind"] = kind
        f.create_dataset("headers", data=np.array(list(stack.headers), dtype=object), dtype=str_dt)
        g = f.create_group("targets")
        for k, v in stack.targets.items():
            g.create_dataset(k, data=np.asarray(v), **(comp if np.asarray(v).ndim == 3 else {}))


def read_map_stack(path: str | os.PathLike, **_: object):
    """Read a map stack written by :func:`write_map_stack`; corrupt or foreign files raise GPSError."""
    import h5py

    from core.data.maps import MapStack

    name = Path(path).name
    if not Path(path).is_file():
        raise GPSError("file not found", source=str(path))
    try:
        f = h5py.File(str(path), "r")
    except OSError as err:
        raise GPSError("cannot open as HDF5 (corrupt or truncated file?)", source=name,
                       expected="an HDF5 map stack", found=str(err).split("(")[0].strip() or "unreadable") from None
    try:
        with f:
            tag = f.attrs.get("gps_format")
            tag = tag.decode() if isinstance(tag, bytes) else tag
            if tag != FORMAT_TAG:
                raise GPSError("not a GPS map stack", source=name, field="/ attrs gps_format",
                               expected=repr(FORMAT_TAG), found=repr(tag))
            ver = int(f.attrs.get("gps_version", -1))
            if ver > FORMAT_VERSION or ver < 1:
                raise GPSError("unsupported map-stack format version", source=name, field="gps_version",
                               expected=f"1..{FORMAT_VERSION}", found=str(ver))
            missing = [k for k in _REQUIRED if k not in f]
            if missing:
                raise GPSError("map stack lacks datasets", source=name, field=", ".join(missing),
                               expected=", ".join(_REQUIRED), found=", ".join(sorted(f.keys())))
            try:
                from core.data.io.registry import check_declared_size

                for k in ("data", "mask", "ivar"):
                    if k in f:
                        check_declared_size(float(f[k].size), name, k, "dataset shape")
                if f["data"].dtype.kind not in "biuf" or f["data"].ndim != 4:
                    raise GPSError("map data must be numbers of shape (N, C, H, W)", source=name, field="data",
                                   expected="a 4-D numeric dataset", found=f"{f['data'].dtype} {f['data'].shape}")
                channels = json.loads(_s(f.attrs["channels"]))
                units = json.loads(_s(f.attrs["units"]))
                meta = json.loads(_s(f.attrs.get("meta", "{}")))
                data = f["data"][...]
                mask = f["mask"][...].astype(bool)
                ivar = f["ivar"][...] if "ivar" in f else None
                ids = np.array([_s(i) for i in f["ids"][...]])
                if f["ids"].attrs.get("kind", "str") == "int":
                    ids = ids.astype(np.int64)
                headers = [_s(h) for h in f["headers"][...]]
                targets = {k: f["targets"][k][...] for k in f["targets"]} if "targets" in f else {}
                pix, reff, ctr = (f["pixel_scale_arcsec"][...], f["reff_arcsec"][...], f["center_xy"][...])
            except GPSError:
                raise
            except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
                raise GPSError("corrupt map stack (a dataset could not be read)", source=name,
                               found=f"{type(err).__name__}: {err}") from None
    except OSError as err:       # raised by h5py on truncated files while closing/reading
        raise GPSError("corrupt or truncated HDF5 map stack", source=name, found=str(err)) from None
    meta = dict(meta)
    meta.setdefault("format", "map_stack_hdf5")
    meta["file"] = str(path)
    from core.data.catalog import file_sha256
    meta["sha256"] = file_sha256(path)
    stack = MapStack(data=data, channels=tuple(channels), units=tuple(units), mask=mask, ivar=ivar,
                     pixel_scale_arcsec=pix, reff_arcsec=reff, center_xy=ctr, headers=headers, ids=ids,
                     meta=meta, targets=targets)
    return stack.to_canonical_units().validate()


def identify_map_stack(path: str, head: bytes) -> bool:
    """True for HDF5 files whose root attribute ``gps_format`` is ``gps_map_stack``.

    Also True for a file with the HDF5 signature that h5py cannot open (truncated/corrupt): no HDF5 reader
    could read it, and this reader then says clearly that the file is corrupt.
    """
    if not head.startswith(b"\x89HDF\r\n\x1a\n"):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _s(f.attrs.get("gps_format", "")) == FORMAT_TAG
    except OSError:
        return True


def _s(x) -> str:
    return x.decode("utf-8") if isinstance(x, bytes) else str(x)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
