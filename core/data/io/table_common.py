"""Shared helpers of the table readers: file signatures, provenance meta, lenient units, JSON-safe meta."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from core.data.catalog import file_sha256
from core.errors import GPSError

__all__ = ["finish", "check_nonempty", "unique_names", "has_ext", "fix_units", "jsonable", "FITS_MAGIC", "HDF5_MAGIC",
           "PARQUET_MAGIC", "GZIP_MAGIC", "FITS_EXT", "HDF5_EXT", "PARQUET_EXT", "CSV_EXT"]

FITS_MAGIC = b"SIMPLE  ="
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
FITS_EXT = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fz")
HDF5_EXT = (".h5", ".hdf5", ".hdf", ".he5")
PARQUET_EXT = (".parquet", ".pq")
CSV_EXT = (".csv", ".tsv", ".txt", ".dat", ".ecsv", ".tab", ".ascii")


def finish(t, path: str, fmt: str, **extra: Any):
    """Add provenance (file name, absolute path, SHA-256, format) and reader extras to ``t.meta``."""
    t.meta.update(extra)
    t.meta.update({"source_file": Path(path).name, "source_path": os.path.abspath(path),
                   "sha256": file_sha256(path), "format": fmt})
    return t


def check_nonempty(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            head = fh.read(2048)
    except FileNotFoundError:
        raise GPSError("file not found", source=str(path)) from None
    if not head:
        raise GPSError("the file is empty", source=Path(path).name, expected="a table file", found="0 bytes")
    return head


def has_ext(path: str, exts) -> bool:
    low = path.lower()
    return any(low.endswith(e) for e in exts)


def fix_units(t) -> None:
    """Re-parse unit strings astropy's FITS/HDF5 parsers did not understand (dex(...), Msun/h ...)."""
    from astropy import units as u

    from core.data.units import parse_unit

    for c in t.colnames:
        unit = getattr(t[c], "unit", None)
        if isinstance(unit, u.UnrecognizedUnit):
            pu = parse_unit(unit.to_string())
            if pu is not None and not isinstance(pu, u.UnrecognizedUnit):
                t[c].unit = pu


def jsonable(meta: dict) -> dict:
    """Keep metadata that survives JSON/YAML (numbers, strings, bools, lists/dicts of those)."""
    out = {}
    for k, v in meta.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, bytes):
            v = v.decode(errors="replace")
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[str(k)] = v
    return out


def unique_names(names: list[str], source: str, field: str) -> None:
    """Refuse duplicated column names, naming the name and both positions (1-based)."""
    seen: dict[str, int] = {}
    for k, n in enumerate(names, start=1):
        key = n.strip()
        if key in seen:
            raise GPSError(f"duplicated column name {key!r} (columns {seen[key]} and {k}); which one is meant is "
                           "unknown", source=source, field=field, expected="unique column names",
                           found=f"{key!r} at positions {seen[key]} and {k}")
        seen[key] = k
