"""What a batch run reads: the input kinds, the partitions ("parts") they split into, and reading one part.

Kinds:

* ``parquet`` — a Parquet file, a directory of Parquet files or a glob: each file split in row ranges of at most
  ``partition_rows`` (from the row-group metadata; the worker reads only the row groups it needs). A file whose row
  groups are much larger than a partition (one huge row group) would make every worker decode far more than its
  rows, so its parts are ``table`` parts instead (streamed by the driver);
* ``table`` — one CSV/FITS/HDF5 table: the driver streams it with :func:`core.data.io.tables.iter_table_chunks`
  (constant memory) and ships each chunk to a worker;
* ``hats`` — a HATS catalogue: one part per HEALPix pixel, read on the workers by ``lsdb`` (``Catalog.to_delayed``);
* ``maps`` — map files (DAP MAPS, Pipe3D, map-stack HDF5, SAMI kinematics) in a directory or glob: one part per
  file, or per galaxy where one observation is several files (a SAMI velocity + dispersion pair: ``paths``).

A part is a JSON dict (``id``, ``kind``, ``path``, ``start``/``stop`` rows, ``offset`` = global row index of its
first row, ``out`` = its output path relative to the run directory); partitioning depends only on the input and
``partition_rows``, so a rerun finds the same parts.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from core.errors import GPSError

__all__ = ["plan_parts", "input_kind", "read_parquet_rows", "stream_parts", "MAP_SUFFIXES"]

#: a Parquet file whose largest row group exceeds this many partitions is streamed by the driver
ROW_GROUP_FACTOR = 4
MAP_SUFFIXES = (".fits", ".fits.gz", ".fit", ".h5", ".hdf5")
_HATS_MARKERS = ("properties", "hats.properties", "collection.properties", "partition_info.csv")


def input_kind(source: str, data_kind: str = "catalog") -> str:
    """``parquet`` | ``table`` | ``hats`` | ``maps`` for ``source`` read by a task whose data are ``data_kind``."""
    p = Path(source)
    if data_kind != "catalog":
        return "maps"
    if p.is_dir():
        if any((p / m).exists() for m in _HATS_MARKERS):
            return "hats"
        return "parquet"
    if _is_glob(source) or str(source).lower().endswith((".parquet", ".pq")):
        return "parquet"
    return "table"


def plan_parts(source: str, kind: str, partition_rows: int) -> list[dict[str, Any]]:
    """The parts of ``source`` (see the module docstring); raises GPSError when there is nothing to read."""
    if kind == "parquet":
        return _parquet_parts(_files(source, (".parquet", ".pq"), "Parquet files"), partition_rows)
    if kind == "table":
        return _table_parts(source, partition_rows)
    if kind == "maps":
        from core.data.io.map_sets import group_files

        groups = group_files(_files(source, MAP_SUFFIXES, "map files"))
        return [{"id": f"map-{i:05d}", "index": i, "kind": "maps", "path": g[0], "start": 0, "stop": 1, "offset": i,
                 "out": f"maps/{i:05d}-{_stem(g[0])}.posterior.h5", **({"paths": g} if len(g) > 1 else {})}
                for i, g in enumerate(groups)]
    if kind == "hats":
        from core.batch.hats import hats_parts

        return hats_parts(source)
    raise GPSError("unknown input kind", field="kind", expected="parquet | table | hats | maps", found=kind)


def read_parquet_rows(path: str, start: int, stop: int):
    """Rows [start, stop) of a Parquet file as an astropy Table with the units it was written with (astropy's
    ``table_meta_yaml`` schema metadata, or ``unit`` field metadata); reads only the row groups needed."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.table import Table

    try:
        pf = pq.ParquetFile(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise GPSError("cannot read this Parquet file", source=path, found=str(e)) from None
    md = pf.metadata
    bounds = np.concatenate([[0], np.cumsum([md.row_group(i).num_rows for i in range(md.num_row_groups)])])
    groups = [i for i in range(md.num_row_groups) if bounds[i] < stop and bounds[i + 1] > start]
    tbl = pf.read_row_groups(groups) if groups else pf.schema_arrow.empty_table()
    if groups:
        tbl = tbl.slice(start - int(bounds[groups[0]]), stop - start)
    t = Table({n: tbl.column(n).to_numpy(zero_copy_only=False) for n in tbl.column_names})
    for name, unit in _parquet_units(pf).items():
        if name in t.colnames and unit:
            try:
                t[name].unit = unit
            except ValueError:
                pass
    return t


def stream_parts(parts: list[dict[str, Any]], partition_rows: int) -> Iterator[tuple[dict[str, Any], Any]]:
    """(part, rows as an astropy Table) for the ``table`` parts, reading each file once in order, in constant memory
    (chunks re-cut to exactly ``partition_rows`` rows so that they match the planned row ranges)."""
    from core.data.io.tables import iter_table_chunks

    by_file: dict[str, dict[int, dict]] = {}
    for p in parts:
        by_file.setdefault(p["path"], {})[p["start"]] = p
    for path, wanted in by_file.items():
        last = max(wanted)
        for start, chunk in _exact_chunks(iter_table_chunks(path, partition_rows), partition_rows):
            if start in wanted:
                yield wanted[start], chunk
            if start >= last:
                break


# --------------------------------------------------------------------------------------------------- helpers
def _exact_chunks(chunks, rows: int):
    """(row offset, table) of exactly ``rows`` rows (the last may be shorter) from tables of any sizes."""
    from astropy.table import vstack

    start, pending, have = 0, [], 0
    for t in chunks:
        pending.append(t)
        have += len(t)
        while have >= rows:
            whole = pending[0] if len(pending) == 1 else vstack(pending, metadata_conflicts="silent")
            yield start, whole[:rows]
            start += rows
            rest = whole[rows:]
            pending, have = ([rest] if len(rest) else []), len(rest)
    if have:
        yield start, (pending[0] if len(pending) == 1 else vstack(pending, metadata_conflicts="silent"))

def _is_glob(s: str) -> bool:
    return any(c in str(s) for c in "*?[")


def _files(source: str, suffixes: tuple[str, ...], what: str) -> list[str]:
    p = Path(source)
    if _is_glob(source):
        files = sorted(glob.glob(source, recursive=True))
    elif p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.is_file())
    elif p.is_file():
        files = [str(p)]
    else:
        raise GPSError("input not found", source=str(source), expected="a file, a directory or a glob")
    files = [f for f in files if f.lower().endswith(suffixes) and not Path(f).name.startswith(".")]
    if not files:
        raise GPSError(f"no {what} found", source=str(source), expected=" / ".join(suffixes))
    return files


def _stem(path: str) -> str:
    name = Path(path).name
    for suf in sorted(MAP_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def _parquet_parts(files: list[str], partition_rows: int) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    parts, offset = [], 0
    for f in files:
        try:
            md = pq.ParquetFile(f).metadata
        except Exception as e:  # noqa: BLE001 - a bad file is one failed part, not a failed run
            parts.append(_part(len(parts), "parquet", f, 0, 0, offset, error=f"cannot read this Parquet file: {e}"))
            continue
        n = md.num_rows
        biggest = max((md.row_group(i).num_rows for i in range(md.num_row_groups)), default=0)
        kind = "parquet" if biggest <= ROW_GROUP_FACTOR * partition_rows else "table"
        for start in range(0, n, partition_rows):
            stop = min(start + partition_rows, n)
            parts.append(_part(len(parts), kind, f, start, stop, offset + start))
        offset += n
    return parts


def _table_parts(source: str, partition_rows: int) -> list[dict[str, Any]]:
    from core.data.io.tables import iter_table_chunks

    if not Path(source).is_file():
        raise GPSError("input not found", source=str(source), expected="a table file, a directory or a glob")
    parts, offset = [], 0
    for chunk in iter_table_chunks(source, partition_rows):   # counts rows in constant memory
        parts.append(_part(len(parts), "table", str(source), offset, offset + len(chunk), offset))
        offset += len(chunk)
    if offset == 0:
        raise GPSError("the input table has no rows", source=str(source))
    return parts


def _part(i: int, kind: str, path: str, start: int, stop: int, offset: int, error: str = "") -> dict[str, Any]:
    part = {"id": f"part-{i:05d}", "index": i, "kind": kind, "path": path, "start": int(start), "stop": int(stop),
            "offset": int(offset), "out": f"parts/part-{i:05d}.parquet"}
    if error:
        part["plan_error"] = error
    return part


def _parquet_units(pf) -> dict[str, str]:
    import json

    md = pf.schema_arrow.metadata or {}
    units: dict[str, str] = {}
    if b"table_meta_yaml" in md:
        from astropy.table.meta import get_header_from_yaml

        header = get_header_from_yaml(md[b"table_meta_yaml"].decode().splitlines())
        units = {c["name"]: c["unit"] for c in header.get("datatype", []) if c.get("unit")}
    for field in pf.schema_arrow:
        fm = field.metadata or {}
        if b"unit" in fm:
            units.setdefault(field.name, fm[b"unit"].decode())
    if b"gps_units" in md:
        units.update({k: v for k, v in json.loads(md[b"gps_units"]).items() if v})
    return units

