"""Readers for DM density fields: ``.npy`` stacks (CAMELS Multifield layout), HDF5 and FITS images and cubes.

Layouts accepted (after picking the array): (N, N) one 2-D map, (n, N, N) a stack of 2-D maps, (N, N, N) one
3-D grid, (n, N, N, N) a stack of grids. A 3-axis array is a stack of maps unless ``dim=3`` is given or the
file/header says 3-D. CAMELS Multifield files ``Maps_Mtot_Nbody_*.npy`` are (n, 256, 256) projected total-mass
maps of 25 Mpc/h boxes [Msun/h / (Mpc/h)^2]; any density unit works since every field is divided by its own mean
(rho / rho_bar). ``box_size`` [Mpc/h] comes from the option, else a header (HDF5 attribute ``box_size`` /
``BoxSize`` [Mpc/h, or kpc/h when > 1000 with ``BoxSize``], FITS ``BOXSIZE``), else the CAMELS default 25 for
CAMELS names; otherwise a GPSError asks for it. Wrong rank, non-square grids, NaN/inf, negative densities, empty
(all-zero) fields and declared shapes above ``max_voxels`` are refused with a GPSError naming the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import GPSError
from core.tasks.dm_to_galaxies.data import FieldData

__all__ = ["read_field", "MAX_VOXELS", "CAMELS_PATTERN"]

MAX_VOXELS = 256**3 * 8  # refuse declared shapes larger than this (before reading any data)
CAMELS_PATTERN = re.compile(r"Maps_(\w+?)_(Nbody|IllustrisTNG|SIMBA|Astrid)[^/]*\.npy$")


def read_field(
    path: str | os.PathLike,
    *,
    box_size: float | None = None,
    dim: int | None = None,
    key: str | None = None,
    max_voxels: int = MAX_VOXELS,
    max_fields: int | None = None,
) -> FieldData:
    """Read DM density field(s) into a :class:`FieldData` of rho / rho_bar (galaxies = None)."""
    path = Path(path)
    name = path.name
    if not path.exists():
        raise GPSError("file not found", source=str(path))
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    header: dict[str, Any] = {}
    if suffix == ".npy":
        arr = _read_npy(path, max_voxels)
    elif suffix in (".h5", ".hdf5", ".hdf"):
        arr, header = _read_hdf5(path, key, max_voxels)
    elif suffix in (".fits", ".fit", ".fits.gz", ".fz"):
        arr, header = _read_fits(path, max_voxels)
    else:
        raise GPSError(
            "unknown field file format", source=name, expected=".npy, .h5/.hdf5 or .fits", found=suffix or "no suffix"
        )
    camels = CAMELS_PATTERN.search(name)
    dim = dim or header.get("dim") or (2 if camels else None)
    stack = _to_stack(arr, dim, name)
    if max_fields is not None:
        stack = stack[:max_fields]
    stack = _validate(stack, name)
    box = box_size or header.get("box_size") or (25.0 if camels else None)
    if box is None:
        raise GPSError(
            "the box size is unknown: give box_size (Mpc/h)",
            source=name,
            field="box_size",
            expected="a header attribute box_size/BoxSize/BOXSIZE or the box_size option",
            found="none",
        )
    if not np.isfinite(box) or box <= 0:
        raise GPSError("invalid box size", source=name, field="box_size", expected="> 0 Mpc/h", found=str(box))
    meta = {
        "source": "file",
        "file": name,
        "n_fields": int(len(stack)),
        "dim": int(stack.ndim - 1),
        "units_in": header.get("units", "density (any unit; divided by each field's mean)"),
        "camels": bool(camels),
        "box_size_from": "option" if box_size else ("header" if header.get("box_size") else "CAMELS default"),
    }
    return FieldData(stack, float(box), None, None, meta)


# ---------------------------------------------------------------------------------------------------------------
def _check_shape(shape: tuple[int, ...], name: str, max_voxels: int) -> None:
    if len(shape) not in (2, 3, 4):
        raise GPSError(
            "a DM field must be a 2-D map, a 3-D grid or a stack of them",
            source=name,
            expected="2 to 4 axes",
            found=f"{len(shape)} axes {shape}",
        )
    if int(np.prod(shape, dtype=np.int64)) > max_voxels:
        raise GPSError(
            "the field is larger than this reader accepts",
            source=name,
            expected=f"<= {max_voxels} voxels",
            found=f"{shape}",
        )


def _read_npy(path: Path, max_voxels: int) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as e:
        raise GPSError(f"not a plain numeric .npy array ({e})", source=path.name) from None
    _check_shape(arr.shape, path.name, max_voxels)
    return np.asarray(arr, np.float64)


def _read_hdf5(path: Path, key: str | None, max_voxels: int) -> tuple[np.ndarray, dict]:
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise GPSError(f"not a readable HDF5 file ({e})", source=path.name) from None
    with f:
        if key is None:
            found: list[str] = []
            f.visititems(
                lambda n, o: (
                    found.append(n)
                    if isinstance(o, h5py.Dataset) and o.ndim in (2, 3, 4) and o.dtype.kind in "fiu"
                    else None
                )
            )
            if not found:
                raise GPSError(
                    "no 2-D/3-D numeric dataset in the file",
                    source=path.name,
                    expected="a dataset of shape (N,N), (n,N,N), (N,N,N) or (n,N,N,N)",
                    found="none",
                )
            key = found[0]
        if key not in f or not isinstance(f[key], h5py.Dataset):
            raise GPSError("dataset not found", source=path.name, field=key, expected="an existing dataset")
        ds = f[key]
        _check_shape(ds.shape, path.name, max_voxels)
        header = _header({**dict(f.attrs), **dict(ds.attrs)})
        return np.asarray(ds[()], np.float64), header


def _read_fits(path: Path, max_voxels: int) -> tuple[np.ndarray, dict]:
    from astropy.io import fits

    try:
        hdul = fits.open(path, memmap=False)
    except OSError as e:
        raise GPSError(f"not a readable FITS file ({e})", source=path.name) from None
    with hdul:
        for hdu in hdul:
            naxis = int(hdu.header.get("NAXIS", 0))
            if hdu.is_image and naxis >= 2:
                shape = tuple(int(hdu.header[f"NAXIS{i}"]) for i in range(naxis, 0, -1))
                _check_shape(shape, f"{path.name}[{hdu.name}]", max_voxels)
                return np.asarray(hdu.data, np.float64), _header(dict(hdu.header))
    raise GPSError("no image HDU with 2 or more axes", source=path.name, expected="an image or cube HDU", found="none")


def _header(h: dict) -> dict:
    out: dict[str, Any] = {}
    low = {str(k).lower(): v for k, v in h.items()}
    for k in ("box_size", "boxsize", "boxlen"):
        if k in low:
            v = float(np.asarray(low[k]).ravel()[0])
            out["box_size"] = v / 1000.0 if (k == "boxsize" and v > 1000) else v  # TNG-style kpc/h
            break
    if "dim" in low:
        out["dim"] = int(np.asarray(low["dim"]).ravel()[0])
    for k in ("units", "bunit"):
        if k in low:
            v = low[k]
            out["units"] = v.decode() if isinstance(v, bytes) else str(v)
    return out


def _to_stack(arr: np.ndarray, dim: int | None, name: str) -> np.ndarray:
    if dim not in (None, 2, 3):
        raise GPSError("dim must be 2 or 3", source=name, field="dim", expected="2 or 3", found=str(dim))
    if arr.ndim == 2:
        if dim == 3:
            raise GPSError(
                "a 3-D field was requested but the array is 2-D",
                source=name,
                expected="3 or 4 axes",
                found=str(arr.shape),
            )
        stack = arr[None]
    elif arr.ndim == 3:
        stack = arr[None] if dim == 3 else arr
    else:
        if dim == 2:
            raise GPSError(
                "a 2-D field was requested but the array is 4-D",
                source=name,
                expected="2 or 3 axes",
                found=str(arr.shape),
            )
        stack = arr
    grid = stack.shape[1:]
    if len(set(grid)) != 1:
        raise GPSError(
            "fields must be square (2-D) or cubic (3-D) grids", source=name, expected="equal sides", found=str(grid)
        )
    if stack.shape[0] == 0 or grid[0] < 4:
        raise GPSError(
            "empty field stack or grid too small",
            source=name,
            expected=">= 1 field of >= 4 voxels/side",
            found=str(stack.shape),
        )
    return stack


def _validate(stack: np.ndarray, name: str) -> np.ndarray:
    bad = ~np.isfinite(stack)
    if bad.any():
        i = np.argwhere(bad)[0]
        raise GPSError(
            f"{int(bad.sum())} non-finite value(s) (NaN/inf); first at index {tuple(int(x) for x in i)}",
            source=name,
            expected="finite densities",
            found=str(stack[tuple(i)]),
        )
    if (stack < 0).any():
        i = np.argwhere(stack < 0)[0]
        raise GPSError(
            f"{int((stack < 0).sum())} negative density value(s); first at index "
            f"{tuple(int(x) for x in i)} (an overdensity delta? give 1 + delta)",
            source=name,
            expected="densities >= 0",
            found=str(stack[tuple(i)]),
        )
    means = stack.reshape(len(stack), -1).mean(1)
    if (means <= 0).any():
        raise GPSError(
            "a field is all zero",
            source=name,
            field=f"field {int(np.argmin(means))}",
            expected="a positive mean density",
            found="0",
        )
    rho = stack / means.reshape((-1,) + (1,) * (stack.ndim - 1))
    return np.maximum(rho, 1e-6 * rho.reshape(len(rho), -1).max(1).reshape((-1,) + (1,) * (rho.ndim - 1)))
