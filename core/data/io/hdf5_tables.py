"""HDF5 tables: astropy table datasets (``path=``) or a group of equal-length 1-D datasets (units from attrs)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from core.data.io.table_common import HDF5_MAGIC, check_nonempty, finish, fix_units, jsonable
from core.data.io.registry import check_declared_size, max_cells
from core.errors import GPSError

__all__ = ["read_hdf5", "write_hdf5", "iter_hdf5", "open_h5"]


def read_hdf5(filename: str, hdf5_path: str | None = None, **kw: Any):
    path = filename
    from astropy.table import Table

    name = Path(path).name
    path_in_file = kw.pop("path", hdf5_path)
    f = open_h5(path)
    with f:
        target, others = _pick_h5(f, path_in_file, name)
        obj = f[target]
        if _is_astropy_table(obj):
            kind = "astropy"
            check_declared_size(float(obj.shape[0]) * len(obj.dtype.names), name, target, "rows x columns")
        else:
            cols, skipped = _group_columns(obj)
            _check_equal_lengths(obj, cols, skipped, name, target)
            kind = "datasets"
            check_declared_size(float(obj[cols[0]].shape[0]) * len(cols), name, target, "rows x columns")
    if kind == "astropy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = Table.read(path, path=target)
        fix_units(t)
    else:
        t = _h5_group_table(path, target, cols, 0, None)
        if skipped:
            t.meta["hdf5_skipped"] = skipped
    extra = {"hdf5_path": target}
    if others:
        extra["hdf5_other_tables"] = others
    return finish(t, path, "hdf5", **extra)


def write_hdf5(table, filename: str, hdf5_path: str = "catalog", overwrite: bool = True, **kw: Any) -> None:
    path = filename
    from astropy.table import Table

    t = Table(table, copy=True)
    t.meta.clear()
    t.meta.update(jsonable(dict(table.meta)))
    t.write(path, path=kw.pop("path", hdf5_path), serialize_meta=True, overwrite=overwrite, **kw)


def iter_hdf5(filename: str, chunk_rows: int, hdf5_path: str | None = None, **kw: Any):
    path = filename
    from astropy.table import Table

    name = Path(path).name
    path_in_file = kw.pop("path", hdf5_path)
    with open_h5(path) as f:
        target, _ = _pick_h5(f, path_in_file, name)
        obj = f[target]
        if _is_astropy_table(obj):
            units, meta = _astropy_h5_header(f, target)
            n = obj.shape[0]
            _not_hollow(f, [target], n, name, target)
            for i in range(0, max(n, 1), chunk_rows):
                t = Table(obj[i:i + chunk_rows])
                for c, un in units.items():
                    if c in t.colnames:
                        t[c].unit = un
                t.meta.update(meta)
                yield t
            return
        cols, _ = _group_columns(obj)
        n = obj[cols[0]].shape[0] if cols else 0
        _not_hollow(obj, cols, n, name, target)
    for i in range(0, max(n, 1), chunk_rows):
        yield _h5_group_table(path, target, cols, i, i + chunk_rows)


def open_h5(path: str):
    import h5py

    name = Path(path).name
    head = check_nonempty(path)
    if not head.startswith(HDF5_MAGIC) and not h5py.is_hdf5(path):
        raise GPSError("not an HDF5 file", source=name, expected="the HDF5 signature b'\\x89HDF\\r\\n\\x1a\\n'",
                       found=f"first bytes {head[:16]!r}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise GPSError(f"cannot open HDF5 file (truncated or damaged?): {exc}", source=name,
                       expected="a complete HDF5 file") from None


def _not_hollow(group, cols, n: int, name: str, target: str) -> None:
    """Streaming reads allow big files, but not a declared size over the limit that the file does not hold."""
    if n * max(len(cols), 1) <= max_cells():
        return
    stored = sum(group[c].id.get_storage_size() for c in cols)
    need = sum(group[c].size * group[c].dtype.itemsize for c in cols)
    if stored < need / 100:
        raise GPSError("datasets declare far more rows than the file holds", source=name, field=target,
                       expected=f"about {need:,} bytes stored", found=f"{stored:,} bytes")


def _is_astropy_table(obj) -> bool:
    import h5py

    return isinstance(obj, h5py.Dataset) and obj.dtype.names is not None and obj.ndim == 1


def _pick_h5(f, path_in_file: str | None, name: str) -> tuple[str, list[str]]:
    import h5py

    cands: list[str] = []

    def visit(nm, obj):
        if nm.endswith(".__table_column_meta__"):
            return
        if _is_astropy_table(obj) or (isinstance(obj, h5py.Group) and _group_columns(obj)[0]):
            cands.append(nm)

    if _group_columns(f)[0]:
        cands.append("/")
    f.visititems(visit)
    if path_in_file is not None:
        key = path_in_file or "/"
        if key not in f:
            raise GPSError(f"no table at path {key!r}", source=name, field="path",
                           expected="one of " + (", ".join(cands) or "(no tables found)"), found=key)
        obj = f[key]
        if not (_is_astropy_table(obj) or (isinstance(obj, h5py.Group) and _group_columns(obj)[0])):
            raise GPSError("path holds no table", source=name, field=key,
                           expected="a compound (astropy) table dataset or a group of equal-length 1-D datasets",
                           found=type(obj).__name__ + (f" shape {obj.shape}" if hasattr(obj, "shape") else ""))
        return key, [c for c in cands if c != key]
    if not cands:
        raise GPSError("no table in this HDF5 file", source=name, field="/",
                       expected="a compound (astropy) table dataset or a group of equal-length 1-D datasets",
                       found="top-level keys: " + (", ".join(list(f.keys())[:20]) or "(none)"))
    return cands[0], cands[1:]


def _group_columns(group) -> tuple[list[str], list[str]]:
    """Names of the equal-length 1-D numeric/text datasets of a group (majority length) and the skipped ones."""
    import h5py

    if not isinstance(group, h5py.Group):
        return [], []
    ds = {k: v for k, v in group.items() if isinstance(v, h5py.Dataset)}
    ones = {k: v.shape[0] for k, v in ds.items() if v.ndim == 1 and v.dtype.names is None
            and not k.endswith(".__table_column_meta__")}
    if not ones:
        return [], list(ds)
    lengths = list(ones.values())
    n = max(set(lengths), key=lengths.count)
    cols = [k for k, m in ones.items() if m == n]
    return cols, [k for k in ds if k not in cols]


def _check_equal_lengths(group, cols: list[str], skipped: list[str], name: str, target: str) -> None:
    """1-D datasets of a table group must all have the table's length (a column silently dropped for being
    shorter would turn into a 'missing input' downstream)."""
    import h5py

    n = group[cols[0]].shape[0] if cols else 0
    odd = {k: group[k].shape[0] for k in skipped
           if isinstance(group[k], h5py.Dataset) and group[k].ndim == 1 and group[k].dtype.names is None}
    if cols and odd:
        found = ", ".join(f"{k} ({m} rows)" for k, m in sorted(odd.items()))
        raise GPSError("1-D datasets of different lengths in one table group", source=name, field=target,
                       expected=f"every column with {n} rows, like {', '.join(sorted(cols)[:4])}", found=found)


def _h5_group_table(path: str, target: str, cols: list[str], start: int, stop: int | None):
    import h5py
    from astropy.table import Table

    from core.data.units import parse_unit

    t = Table()
    with h5py.File(path, "r") as f:
        g = f[target]
        for c in cols:
            d = g[c]
            vals = d[start:stop]
            if vals.dtype.kind in "SO":
                vals = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in vals], dtype=str)
            t[c] = vals
            for key in ("unit", "units", "Unit", "Units", "UNIT"):
                if key in d.attrs:
                    un = d.attrs[key]
                    un = un.decode() if isinstance(un, bytes) else str(un)
                    pu = parse_unit(un)
                    if pu is not None:
                        t[c].unit = pu
                    break
        for k, v in g.attrs.items():
            if isinstance(v, (bytes, str, int, float, np.integer, np.floating)):
                t.meta[k] = v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item") else v)
    return t


def _astropy_h5_header(f, target: str):
    from astropy.table.meta import get_header_from_yaml

    from core.data.units import parse_unit

    key = target.rstrip("/") + ".__table_column_meta__"
    if key not in f:
        return {}, {}
    lines = [ln.decode() if isinstance(ln, bytes) else str(ln) for ln in f[key][()]]
    header = get_header_from_yaml(lines)
    units = {}
    for col in header.get("datatype", []):
        if col.get("unit"):
            units[col["name"]] = parse_unit(col["unit"])
    return units, dict(header.get("meta", {}))
