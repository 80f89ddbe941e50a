"""Several map files as one MapStack: files of one object (same id, e.g. a SAMI CATID) combine channel-wise, objects
stack; plus the caller's effective radius for files that carry none.

Sources: one path, a list of paths, a folder (searched recursively) or a glob. A single file is read as it is
(whatever its number of objects). From several files every file is read through the format registry, the one-object
stacks are grouped by id and merged (:meth:`core.data.maps.MapStack.merge_channels`: same grid, same
``meta["merge_key"]``, no channel twice), and the objects are stacked when they have the same channels; otherwise one
message says which object lacks which channel and which file gives it (``meta["companions"]``). In a folder or glob
the files no map reader recognises (e.g. SAMI cubes or gas maps next to the stellar-kinematics files) are skipped
and counted in the notes; a file named explicitly must be readable.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["MAP_SUFFIXES", "expand_sources", "is_several", "read_map_files", "apply_reff", "parse_reff"]

#: file endings looked at in a folder (the map readers' extensions)
MAP_SUFFIXES = (".fits", ".fits.gz", ".fit", ".fits.fz", ".h5", ".hdf5", ".csv")


def is_several(source: Any) -> bool:
    """True if ``source`` names several files or may: a list/tuple of more than one, a folder or a glob."""
    if isinstance(source, (list, tuple)):
        return len(source) != 1 or is_several(source[0])
    p = Path(str(source))
    return p.is_dir() or (not p.exists() and _is_glob(str(source)))


def expand_sources(source: Any) -> tuple[list[str], bool]:
    """(the files ``source`` names, in order and without repeats; whether a folder or glob was searched)."""
    items = list(source) if isinstance(source, (list, tuple)) else [source]
    if not items:
        raise GPSError("no input files given", field="input", expected="one or more map files, a folder or a glob")
    files: list[str] = []
    searched = False
    for it in items:
        p = Path(str(it))
        if p.is_dir():
            searched = True
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                           and f.name.lower().endswith(MAP_SUFFIXES))
            if not found:
                raise GPSError("no map files in the folder", source=str(it),
                               expected="files ending in " + ", ".join(MAP_SUFFIXES), found="none")
        elif not p.exists() and _is_glob(str(it)):
            searched = True
            found = sorted(f for f in glob.glob(str(it), recursive=True) if Path(f).is_file())
            if not found:
                raise GPSError("no file matches the pattern", source=str(it), expected="at least one map file",
                               found="none")
        else:
            found = [str(it)]
        files.extend(found)
    return list(dict.fromkeys(files)), searched


def group_files(files: Sequence[str]) -> list[list[str]]:
    """``files`` grouped by object for work that runs one object at a time (batch parts): the files of one
    observation that several files make up (SAMI: velocity + dispersion, :func:`core.data.io.maps_sami.group_key`)
    together, every other file alone; in the order of each group's first file."""
    from core.data.io.maps_sami import group_key

    groups: dict[str, list[str]] = {}
    for f in files:
        groups.setdefault(group_key(f) or f"file:{f}", []).append(str(f))
    return list(groups.values())


def read_map_files(source: Any, *, format: str | None = None, reff_arcsec: Any = None, **options: Any):
    """One MapStack from ``source`` (a file, a list of files, a folder or a glob); see the module docstring.

    ``options`` go to every reader (each ignores those it does not take); ``reff_arcsec`` (a number, or a mapping
    id -> R_e with an optional ``"*"`` default) is given to the readers that take it and then set on the stack
    (:func:`apply_reff`), replacing a file's value.
    """
    from core.data.io.registry import identify_format, read
    from core.data.maps import CHANNEL_UNITS, MapStack

    scalar = None if isinstance(reff_arcsec, Mapping) else reff_arcsec
    if not is_several(source):
        path = source[0] if isinstance(source, (list, tuple)) else source
        return apply_reff(read(path, format=format, kind="maps", reff_arcsec=scalar, **options), reff_arcsec)
    files, searched = expand_sources(source)
    stacks, skipped = [], []
    for f in files:
        fmt = format
        if searched and fmt is None:
            try:
                fmt = identify_format(f, kind="maps")
            except GPSError:
                skipped.append(Path(f).name)
                continue
        stacks.append(read(f, format=fmt, kind="maps", reff_arcsec=scalar, **options))
    if not stacks:
        raise GPSError("none of the files is a map file a reader recognises", source=str(source),
                       expected="map files (MaNGA DAP, Pipe3D, Firefly, SAMI kinematics, map stacks)",
                       found=f"{len(files)} files, e.g. {', '.join(skipped[:3])}")
    groups: dict[str, list] = {}
    for s in stacks:
        for i in range(len(s)):
            one = s if len(s) == 1 else s.subset([i])
            groups.setdefault(str(one.ids[0]), []).append(one)
    objects = [g[0] if len(g) == 1 else MapStack.merge_channels(g) for g in groups.values()]
    _check_same_channels(objects)
    known = list(CHANNEL_UNITS)
    order = tuple(sorted(objects[0].channels, key=lambda c: (known.index(c) if c in known else len(known), c)))
    objects = [o if o.channels == order else o.select_channels(order) for o in objects]
    out = objects[0] if len(objects) == 1 else MapStack.concatenate(objects)
    meta = dict(out.meta)
    if len(objects) > 1:
        meta["file"] = f"{len(objects)} objects from {len(stacks)} files"
        meta["notes"] = [f"[{o.ids[0]}] {n}" for o in objects for n in o.meta.get("notes", [])]
        comp = {}
        for o in objects:
            for c, name in (o.meta.get("companions") or {}).items():
                comp.setdefault(c, []).append(name)
        meta["companions"] = {c: ", ".join(v[:3]) + (f" and {len(v) - 3} more" if len(v) > 3 else "")
                              for c, v in comp.items()}
        if not meta["companions"]:
            meta.pop("companions")
    meta["files"] = [str(f) for s in stacks for f in (s.meta.get("files") or [s.meta.get("file", "")])]
    if skipped:
        meta["notes"] = list(meta.get("notes", [])) + [
            f"{len(skipped)} files no map reader recognises were skipped (e.g. {', '.join(skipped[:3])})"]
    return apply_reff(replace(out, meta=meta), reff_arcsec)


class ReffTable(dict):
    """R_e [arcsec] by id for a run over many files (a batch run: each part reads one galaxy), where most ids are
    not in any one file: :func:`apply_reff` then takes the ids it finds instead of refusing the others."""


def apply_reff(stack, reff_arcsec: Any):
    """``stack`` with the caller's R_e [arcsec]: a number for every object, or a mapping id -> R_e (``"*"``: the
    others; ids not in the data are refused as typos, except from a :class:`ReffTable`); the file's value is
    replaced (noted). None: unchanged. A value that is not a plausible R_e is refused."""
    from core.data.maps import REFF_MAX_ARCSEC

    if reff_arcsec is None:
        return stack
    ids = [str(i) for i in stack.ids]
    if isinstance(reff_arcsec, Mapping):
        given = {str(k): v for k, v in reff_arcsec.items()}
        unknown = [k for k in given if k != "*" and k not in ids]
        if unknown and not isinstance(reff_arcsec, ReffTable):
            raise GPSError("R_e given for objects that are not in the data", source=stack.source,
                           field="reff_arcsec", expected="ids among " + ", ".join(ids[:10]),
                           found=", ".join(unknown[:10]))
        values = [given.get(i, given.get("*")) for i in ids]
    else:
        values = [reff_arcsec] * len(ids)
    new = np.array(stack.reff_arcsec, dtype=np.float64)
    notes = list(stack.meta.get("notes", []))
    for k, v in enumerate(values):
        if v is None:
            continue
        try:
            r = float(v)
        except (TypeError, ValueError):
            raise GPSError("R_e must be a number of arcsec", source=stack.source, field="reff_arcsec",
                           found=repr(v)) from None
        if not (np.isfinite(r) and 0 < r < REFF_MAX_ARCSEC):
            raise GPSError("implausible effective radius", source=stack.source, field="reff_arcsec",
                           expected=f"R_e in (0, {REFF_MAX_ARCSEC:g}) arcsec", found=repr(v))
        old = new[k]
        if np.isfinite(old) and abs(old - r) > 1e-9:
            notes.append(f"R_e of {ids[k]}: {r:g} arcsec given (replaces the file's {old:.4g})")
        elif not np.isfinite(old):
            notes.append(f"R_e of {ids[k]}: {r:g} arcsec given")
        new[k] = r
    return replace(stack, reff_arcsec=new, meta=dict(stack.meta, notes=notes))


def parse_reff(items: Sequence[str] | None) -> float | dict[str, float] | None:
    """``--reff-arcsec`` values: one number for every object, or ``ID=NUMBER`` items (a plain number among them is
    the default for the other objects). None or empty: None."""
    if not items:
        return None
    out: dict[str, float] = {}
    for it in items:
        key, _, val = str(it).rpartition("=")
        try:
            num = float(val)
        except ValueError:
            raise GPSError("R_e must be a number of arcsec", field="--reff-arcsec",
                           expected="ARCSEC or ID=ARCSEC (e.g. 9011900001=4.2)", found=repr(it)) from None
        out[key.strip() or "*"] = num
    return out["*"] if list(out) == ["*"] else out


def _check_same_channels(objects: list) -> None:
    sets = {o.channels for o in objects}
    if len({frozenset(c) for c in sets}) <= 1:
        return
    every = sorted({c for o in objects for c in o.channels})
    parts = []
    for o in objects:
        lack = [c for c in every if c not in o.channels]
        if lack:
            comp = o.meta.get("companions") or {}
            add = [comp[c] for c in lack if c in comp]
            parts.append(f"{o.ids[0]} ({o.source}) lacks {', '.join(lack)}"
                         + (f": add {', '.join(add)}" if add else ""))
    lacking = [o.source for o in objects if set(o.channels) != set(every)]
    raise GPSError("the files do not pair up: objects (by id) have different channels",
                   source=", ".join(lacking[:3]) + (" ..." if len(lacking) > 3 else ""), field="ids",
                   expected=f"every object with {', '.join(every)} (files of one object share its id, e.g. the "
                            "SAMI CATID)",
                   found="; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else ""))


def _is_glob(s: str) -> bool:
    return any(ch in s for ch in "*?[")

