"""Reading users' files (paths or uploaded bytes, size-limited) and splitting data: the data half of ``core.api``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import GPSError
from core.tasks import get_task, get_task_obj

__all__ = [
    "MAX_UPLOAD_BYTES",
    "read_data",
    "read_table",
    "suggest_mapping",
    "table_to_catalog",
    "split",
    "as_path",
    "as_paths",
]

MAX_UPLOAD_BYTES = 512 * 1024 * 1024


def read_data(
    source: str | os.PathLike | bytes | Sequence[str | os.PathLike | bytes],
    task: str,
    filename: str | Sequence[str] | None = None,
    **options,
):
    """Read a user's file (path or uploaded bytes) into ``task``'s data container (map files for map tasks).

    Tasks whose adapter reads several files (``multi_file``, e.g. exsitu_map) also take a list of paths or of uploaded
    bytes (``filename``: their names, in order), a folder or a glob: the files of one object are combined (a SAMI
    galaxy's velocity and dispersion files, by CATID). ``options`` go to the adapter's reader (e.g. ``reff_arcsec``).
    """
    t = get_task_obj(task)
    if t.data.table_input:
        raise GPSError(
            "catalogue tasks read tables: use read_table + table_to_catalog (column mapping)", field="task", found=task
        )
    many = isinstance(source, (list, tuple))
    if many and len(source) == 1:
        source, many = source[0], False
        filename = filename[0] if isinstance(filename, (list, tuple)) else filename
    if many and not getattr(t.data, "multi_file", False):
        raise GPSError(
            f"{task} reads one file at a time", field="input", expected="one file", found=f"{len(source)} files"
        )
    if many:
        names = list(filename) if isinstance(filename, (list, tuple)) else [None] * len(source)
        if len(names) != len(source):
            raise GPSError(
                "one file name per uploaded file", field="filename", expected=str(len(source)), found=str(len(names))
            )
        with as_paths(source, names) as paths:
            data = t.data.read(paths, **options)
            tmp = {str(p): Path(p).name for p, s in zip(paths, source) if isinstance(s, (bytes, bytearray))}
        if tmp and isinstance(getattr(data, "meta", None), dict):
            data.meta["files"] = [tmp.get(str(f), str(f)) for f in data.meta.get("files", [])]
        return data
    with as_path(source, filename) as path:
        data = t.data.read(path, **options)
    if isinstance(source, (bytes, bytearray)):
        data.meta["file"] = Path(filename or "upload.dat").name
    return data


def read_table(source: str | os.PathLike | bytes, filename: str | None = None, format: str | None = None):
    """Read a catalogue table from a path or uploaded bytes (written to a private temp dir, size-limited)."""
    from core.data import io as dio

    with as_path(source, filename) as path:
        table = dio.read(path, format=format, kind="table")
    if isinstance(source, (bytes, bytearray)):
        table.meta["source_file"] = Path(path).name
    return table


@contextlib.contextmanager
def as_path(source, filename: str | None):
    """A path for ``source``: itself, or uploaded bytes written to a private temp dir (size-limited)."""
    if not isinstance(source, (bytes, bytearray)):
        yield source
        return
    if len(source) > MAX_UPLOAD_BYTES:
        raise GPSError(
            "upload too large",
            source=filename,
            expected=f"<= {MAX_UPLOAD_BYTES // 2**20} MiB",
            found=f"{len(source) // 2**20} MiB",
        )
    with tempfile.TemporaryDirectory(prefix="gps-upload-") as tmp:
        path = Path(tmp) / Path(filename or "upload.dat").name
        path.write_bytes(bytes(source))
        yield path


@contextlib.contextmanager
def as_paths(sources: Sequence, filenames: Sequence[str | None]):
    """Paths for several sources: paths as they are, uploaded bytes written under their own names into one private
    temp dir (the total size-limited), so files read together keep their names (e.g. SAMI ``<CATID>_...`` files)."""
    total = sum(len(s) for s in sources if isinstance(s, (bytes, bytearray)))
    if total > MAX_UPLOAD_BYTES:
        raise GPSError(
            "upload too large",
            source=", ".join(str(n) for n in filenames if n)[:200] or None,
            expected=f"<= {MAX_UPLOAD_BYTES // 2**20} MiB in all",
            found=f"{total // 2**20} MiB",
        )
    if not any(isinstance(s, (bytes, bytearray)) for s in sources):
        yield list(sources)
        return
    with tempfile.TemporaryDirectory(prefix="gps-upload-") as tmp:
        out, used = [], set()
        for k, (src, name) in enumerate(zip(sources, filenames)):
            if not isinstance(src, (bytes, bytearray)):
                out.append(src)
                continue
            base = Path(name or f"upload{k}.dat").name
            if base in used:
                raise GPSError("two uploaded files have the same name", source=base, expected="distinct file names")
            used.add(base)
            path = Path(tmp) / base
            path.write_bytes(bytes(src))
            out.append(path)
        yield out


def suggest_mapping(table, task: str) -> dict[str, str | None]:
    from core.data.schema import suggest_mapping as _sm

    return _sm(table, get_task(task))


def table_to_catalog(
    table,
    task: str,
    mapping: dict | None = None,
    units: dict | None = None,
    require_target: bool = False,
    h: float | None = None,
    id_column: str | None = None,
):
    """(CatalogData, ValidationReport) in the task's canonical units (``h``: Hubble h for little-h units;
    ``id_column``: the column holding the object ids)."""
    from core.data.schema import to_catalog

    return to_catalog(
        table, get_task(task), mapping=mapping, units=units, require_target=require_target, h=h, id_column=id_column
    )


def split(data, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0):
    """Random train/val/test split (grouped by ``extra['galaxy_id']`` when present)."""
    rng = np.random.default_rng(seed)
    groups = data.extra.get("galaxy_id", data.ids)
    uniq = np.unique(groups)
    perm = rng.permutation(uniq)
    cuts = np.cumsum(np.asarray(fractions, float) / np.sum(fractions))[:-1] * len(uniq)
    parts = np.split(perm, np.round(cuts).astype(int))
    return tuple(data.subset(np.isin(groups, p)) for p in parts)
