"""Table formats (CSV/ECSV, FITS binary tables, HDF5, Parquet, TNG Subfind chunks) in the format registry.

Every reader returns an astropy ``Table`` with units where the file states them and provenance in
``meta["source_file"]`` (file name), ``meta["source_path"]``, ``meta["sha256"]`` and ``meta["format"]``.
Writers keep units and JSON-like metadata (round-trip tested). :func:`iter_table_chunks` streams a large file
in constant memory for ``predict``. Bad files raise :class:`core.errors.GPSError` naming the file and the
HDU/path/column, what was expected and what was found.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from core.data.catalog import file_sha256
from core.data.io import csv_text
from core.data.io.hdf5_tables import iter_hdf5, read_hdf5, write_hdf5
from core.data.io.table_common import (FITS_MAGIC, GZIP_MAGIC, HDF5_MAGIC, PARQUET_MAGIC, CSV_EXT, FITS_EXT,
                                       HDF5_EXT, PARQUET_EXT, check_nonempty, finish, fix_units, has_ext,
                                       jsonable, unique_names)
from core.data.io.registry import (FORMATS, FormatSpec, check_declared_size, guarded, identify_format, read,
                                   register_format, write)
from core.errors import GPSError

__all__ = ["read_table", "write_table", "iter_table_chunks"]


def read_table(source: str | os.PathLike, format: str | None = None, **kw: Any):
    """Read any registered table format (identified from content, then extension) into an astropy Table.

    Format options: ``hdu=`` (FITS extension name or index), ``path=``/``hdf5_path=`` (HDF5 table path),
    ``aperture=``/``sfr_floor=``/``colours=`` (TNG chunks, see :func:`core.data.io.tng.read_tng_groupcat`).
    """
    name = format or identify_format(source, kind="table")
    return guarded(FORMATS.get(name).read, str(source), name, **kw)


def write_table(table, path: str | os.PathLike, format: str | None = None, **kw: Any) -> None:
    """Write a Table/QTable as csv (ECSV), fits, hdf5 or parquet (from ``format`` or the extension)."""
    if format is None:
        low = str(path).lower()
        cands = [s for _, s in FORMATS.items() if s.kind == "table" and s.write is not None
                 and any(low.endswith(e) for e in s.extensions)]
        if not cands:
            raise GPSError("cannot tell the table format from the file name", source=str(path),
                           expected="an extension of " + ", ".join(
                               e for _, s in FORMATS.items() if s.kind == "table" and s.write for e in s.extensions),
                           found=Path(str(path)).suffix or "no extension")
        format = max(cands, key=lambda s: s.priority).name
    write(table, path, format=format, **kw)


def iter_table_chunks(path: str | os.PathLike, chunk_rows: int = 100_000, format: str | None = None,
                      **kw: Any) -> Iterator:
    """Yield the rows of a table file as astropy Tables of at most ``chunk_rows`` rows, in constant memory.

    CSV through pandas chunks, Parquet through pyarrow record batches, HDF5 through h5py slices, FITS through
    memory-mapped row slices; TNG chunks are small and read whole. Every chunk carries units and the same
    provenance meta as :func:`read_table` plus ``meta["chunk_start"]`` (row offset of its first row).
    """
    path = str(path)
    if chunk_rows < 1:
        raise GPSError("chunk_rows must be positive", source=path, expected=">= 1", found=str(chunk_rows))
    fmt = format or identify_format(path, kind="table")
    prov = {"source_file": Path(path).name, "source_path": os.path.abspath(path), "sha256": file_sha256(path),
            "format": fmt}
    if fmt == "csv":
        gen = csv_text.iter_csv_chunks(path, chunk_rows)
    elif fmt == "parquet":
        gen = _iter_parquet(path, chunk_rows)
    elif fmt == "hdf5":
        gen = iter_hdf5(path, chunk_rows, **kw)
    elif fmt == "fits":
        gen = _iter_fits(path, chunk_rows, **kw)
    else:
        whole = read(path, format=fmt, **kw)
        gen = (whole[i:i + chunk_rows] for i in range(0, max(len(whole), 1), chunk_rows))
    start = 0
    while True:
        try:
            t = next(gen)
        except StopIteration:
            return
        except GPSError:
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged file gives a message naming it, not a traceback
            guarded(_raise, path, fmt, exc=exc)
        t.meta.update(prov)
        t.meta["chunk_start"] = start
        start += len(t)
        yield t


def _raise(path: str, exc: BaseException):
    raise exc


# -------------------------------------------------------------------------------------------------
# CSV
# -------------------------------------------------------------------------------------------------
def _read_csv(path: str, **kw: Any):
    check_nonempty(path)
    t = csv_text.read_csv(path, **kw)
    fix_units(t)
    return finish(t, path, "csv")


def _identify_csv(path: str, head: bytes) -> bool:
    if has_ext(path, FITS_EXT + HDF5_EXT + PARQUET_EXT):
        return False
    return has_ext(path, CSV_EXT) or csv_text.looks_like_text(head)


# -------------------------------------------------------------------------------------------------
# FITS
# -------------------------------------------------------------------------------------------------
def _read_fits(path: str, hdu: int | str | None = None, **kw: Any):
    from astropy.table import Table

    hdul, idx = _open_fits(path, hdu, memmap=False)
    with hdul:
        hdr = hdul[idx].header
        unique_names([str(hdr.get(f"TTYPE{i}", f"col{i}")) for i in range(1, int(hdr.get("TFIELDS", 0)) + 1)],
                     Path(path).name, f"HDU {idx} {hdul[idx].name!r}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                t = Table.read(hdul, hdu=idx)
            except Exception as exc:
                raise GPSError(f"cannot read the table: {exc}", source=Path(path).name,
                               field=f"HDU {idx} {hdul[idx].name!r}") from None
    fix_units(t)
    raw = t.meta.pop("GPSMETA", None)
    if raw:
        try:
            t.meta.update(json.loads(raw))
        except json.JSONDecodeError:
            t.meta["GPSMETA"] = raw
    return finish(t, path, "fits", fits_hdu=idx)


def _open_fits(path: str, hdu, memmap: bool):
    """Open, check signature and completeness, pick the table HDU: ``(hdul, index)``."""
    from astropy.io import fits

    name = Path(path).name
    head = check_nonempty(path)
    gz = head.startswith(GZIP_MAGIC)
    if not (head.startswith(FITS_MAGIC) or gz):
        raise GPSError("not a FITS file", source=name, expected="the FITS signature 'SIMPLE  =' at byte 0",
                       found=f"first bytes {head[:16]!r}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdul = fits.open(path, memmap=memmap and not gz)
            check_fits_sizes(hdul, name)
            hdul.readall()
        except GPSError:
            raise
        except Exception as exc:  # astropy raises OSError/ValueError/TypeError on damaged files
            raise GPSError(f"cannot read FITS structure: {exc}", source=name,
                           expected="a complete FITS file (header blocks + data)") from None
    trunc = [str(w.message) for w in caught if "truncat" in str(w.message).lower()]
    listing = ", ".join(f"{i}:{h.name or '-'}({type(h).__name__})" for i, h in enumerate(hdul))
    try:
        idx = _pick_fits_hdu(hdul, hdu, name, listing)
    except GPSError:
        hdul.close()
        raise
    size = os.path.getsize(path)
    info = hdul[idx].fileinfo()
    need = info["datLoc"] + hdul[idx]._data_size if info else 0
    if trunc or (not gz and info and need > size):
        hdul.close()
        raise GPSError("file is truncated", source=name, field=f"HDU {idx} {hdul[idx].name!r}",
                       expected=f"{need} bytes (header + data)", found=f"{size} bytes")
    return hdul, idx


def check_fits_sizes(hdul, name: str) -> None:
    """Refuse, from the headers alone, an HDU whose declared data size is over the reader's limit."""
    for i, h in enumerate(hdul):
        hdr = h.header
        try:
            dims = [int(hdr.get(f"NAXIS{k}", 0)) for k in range(1, int(hdr.get("NAXIS", 0)) + 1)]
        except (TypeError, ValueError):
            raise GPSError("invalid NAXISn keywords", source=name, field=f"HDU {i}", expected="integers",
                           found=repr([hdr.get(f"NAXIS{k}") for k in range(1, 4)])) from None
        if any(d < 0 for d in dims):
            raise GPSError("negative NAXISn", source=name, field=f"HDU {i}", expected=">= 0", found=str(dims))
        if "TFIELDS" in hdr and len(dims) == 2:          # table: rows x columns values
            cells = float(dims[1]) * max(int(hdr.get("TFIELDS", 1)), 1)
        else:
            cells = float(np.prod([float(d) for d in dims])) if dims else 0.0
        check_declared_size(cells, name, f"HDU {i} {h.name!r}", "NAXISn from the header")


def _pick_fits_hdu(hdul, hdu, name: str, listing: str) -> int:
    from astropy.io import fits

    if hdu is not None:
        try:
            idx = hdul.index_of(hdu)
        except (KeyError, IndexError):
            raise GPSError(f"no HDU {hdu!r}", source=name, field="hdu", expected="one of " + listing,
                           found=str(hdu)) from None
        if not isinstance(hdul[idx], (fits.BinTableHDU, fits.TableHDU)):
            raise GPSError("HDU is not a table", source=name, field=f"HDU {idx} {hdul[idx].name!r}",
                           expected="a binary or ASCII table HDU", found=type(hdul[idx]).__name__)
        return idx
    for i, h in enumerate(hdul):
        if isinstance(h, (fits.BinTableHDU, fits.TableHDU)):
            return i
    raise GPSError("no table HDU in this FITS file", source=name, field="hdu",
                   expected="a binary-table extension (BINTABLE)", found=listing)


def _write_fits(table, path: str, hdu_name: str = "CATALOG", overwrite: bool = True, **kw: Any) -> None:
    from astropy import units as u
    from astropy.io import fits
    from astropy.table import Table

    t = Table(table, copy=True)
    meta = dict(t.meta)
    t.meta.clear()
    odd = {}
    for c in t.colnames:
        unit = t[c].unit
        if unit is not None:
            try:
                unit.to_string("fits")
            except (ValueError, AttributeError, TypeError):
                odd[c] = unit.to_string()
                t[c].unit = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)
        bh = fits.table_to_hdu(t)
    for i, c in enumerate(t.colnames, start=1):
        if c in odd:
            bh.header[f"TUNIT{i}"] = odd[c]
    bh.name = hdu_name
    bh.header["GPSMETA"] = json.dumps(jsonable(meta))
    fits.HDUList([fits.PrimaryHDU(), bh]).writeto(path, overwrite=overwrite)


def _iter_fits(path: str, chunk_rows: int, hdu=None, **kw: Any):
    from astropy.table import Table

    hdul, idx = _open_fits(path, hdu, memmap=True)
    with hdul:
        h = hdul[idx]
        unique_names([str(h.header.get(f"TTYPE{i}", f"col{i}")) for i in range(1, int(h.header.get("TFIELDS", 0)) + 1)],
                     Path(path).name, f"HDU {idx} {h.name!r}")
        units = {c.name: c.unit for c in h.columns if c.unit}
        n = h.header.get("NAXIS2", 0)
        raw = h.header.get("GPSMETA")
        meta = {}
        if raw:
            try:
                meta = json.loads(raw)
            except json.JSONDecodeError:
                meta = {}
        for i in range(0, max(n, 1), chunk_rows):
            rows = h.data[i:i + chunk_rows] if n else h.data
            t = Table({c: np.array(rows[c]) for c in h.columns.names}) if rows is not None else Table()
            for c, un in units.items():
                t[c].unit = _u_parse(un)
            t.meta.update(meta)
            yield t


def _u_parse(text: str):
    """Unit of a FITS TUNIT / file unit string, lenient (dex(...), Msun/h); unknown strings kept as-is."""
    from astropy import units as u

    from core.data.units import parse_unit

    pu = parse_unit(text)
    return pu if pu is not None else u.dimensionless_unscaled


# -------------------------------------------------------------------------------------------------
# Parquet
# -------------------------------------------------------------------------------------------------
def _read_parquet(path: str, **kw: Any):
    from astropy.table import Table

    name = Path(path).name
    _check_parquet(path)
    _parquet_size(path, name)
    try:
        t = Table.read(path, format="parquet")
    except Exception as exc:
        raise GPSError(f"cannot read Parquet file (truncated or damaged?): {exc}", source=name,
                       expected="a complete Parquet file") from None
    fix_units(t)
    return finish(t, path, "parquet")


def _write_parquet(table, path: str, overwrite: bool = True, **kw: Any) -> None:
    from astropy.table import Table

    t = Table(table, copy=True)
    meta = jsonable(dict(t.meta))
    t.meta.clear()
    t.meta.update(meta)
    t.write(path, format="parquet", overwrite=overwrite)


def _iter_parquet(path: str, chunk_rows: int):
    import pyarrow.parquet as pq
    from astropy.table import Table
    from astropy.table.meta import get_header_from_yaml

    from core.data.units import parse_unit

    _check_parquet(path)
    _parquet_size(path, Path(path).name)
    pf = pq.ParquetFile(path)
    md = pf.schema_arrow.metadata or {}
    units, meta = {}, {}
    if b"table_meta_yaml" in md:
        header = get_header_from_yaml(md[b"table_meta_yaml"].decode().splitlines())
        units = {c["name"]: parse_unit(c["unit"]) for c in header.get("datatype", []) if c.get("unit")}
        meta = dict(header.get("meta", {}))
    empty = True
    for batch in pf.iter_batches(batch_size=chunk_rows):
        empty = False
        t = Table({nm: batch.column(i).to_numpy(zero_copy_only=False) for i, nm in enumerate(batch.schema.names)})
        for c, un in units.items():
            if c in t.colnames and un is not None:
                t[c].unit = un
        t.meta.update(meta)
        yield t
    if empty:
        yield _read_parquet(path)


def _parquet_size(path: str, name: str) -> None:
    import pyarrow.parquet as pq

    try:
        md = pq.ParquetFile(path).metadata
    except Exception as exc:  # noqa: BLE001 - damaged footer
        raise GPSError("cannot read Parquet metadata (truncated or damaged?)", source=name, field="footer",
                       expected="a complete Parquet file", found=f"{type(exc).__name__}: {exc}") from None
    check_declared_size(float(md.num_rows) * max(md.num_columns, 1), name, "footer", "rows x columns")
    unique_names(list(md.schema.to_arrow_schema().names), name, "schema")


def _check_parquet(path: str) -> None:
    head = check_nonempty(path)
    if not head.startswith(PARQUET_MAGIC):
        raise GPSError("not a Parquet file", source=Path(path).name, expected="the Parquet signature b'PAR1'",
                       found=f"first bytes {head[:16]!r}")


# -------------------------------------------------------------------------------------------------
def _read_tng(path: str, **kw: Any):
    from astropy.table import Table

    from core.data.io.tng import read_tng_groupcat

    return Table(read_tng_groupcat(path, **kw))


def _identify_tng(path: str, head: bytes) -> bool:
    from core.data.io.tng import is_tng_groupcat

    return is_tng_groupcat(path, head)


register_format(FormatSpec(
    "csv", "table", "Text table: CSV/TSV/whitespace, '#' comment header, ECSV (units + meta)", CSV_EXT,
    _identify_csv, _read_csv, csv_text.write_csv, priority=-10))
def _claims(magic: bytes, exts) -> Any:
    """Identifier: the signature at byte 0, or the extension when the content is not another known format's."""
    others = tuple(m for m in (FITS_MAGIC, HDF5_MAGIC, PARQUET_MAGIC) if m != magic)
    return lambda p, h: h.startswith(magic) or (has_ext(p, exts) and not h.startswith(others))


register_format(FormatSpec(
    "fits", "table", "FITS binary table (first table HDU, or hdu=NAME/INDEX); TUNIT units", FITS_EXT,
    _claims(FITS_MAGIC, FITS_EXT), _read_fits, _write_fits, priority=10))
register_format(FormatSpec(
    "hdf5", "table", "HDF5 table: astropy table dataset (path=) or a group of equal-length 1-D datasets",
    HDF5_EXT, _claims(HDF5_MAGIC, HDF5_EXT), read_hdf5, write_hdf5, priority=10))
register_format(FormatSpec(
    "parquet", "table", "Apache Parquet table (astropy units/meta kept)", PARQUET_EXT,
    _claims(PARQUET_MAGIC, PARQUET_EXT), _read_parquet, _write_parquet, priority=10))
register_format(FormatSpec(
    "tng_subfind", "table", "IllustrisTNG Subfind group catalogue chunk (fof_subhalo_tab_*.hdf5): centrals",
    (".hdf5",), _identify_tng, _read_tng, None, priority=20))
