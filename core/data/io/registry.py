"""File-format registry (astropy-style): each format has an identifier, a reader and optionally a writer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from core.errors import GPSError
from core.registry import Registry

__all__ = ["FormatSpec", "FORMATS", "register_format", "identify_format", "read", "write", "head_bytes", "guarded",
           "check_declared_size", "max_cells", "MAX_CELLS_ENV"]


@dataclass(frozen=True)
class FormatSpec:
    """``identify(path, head)`` gets the path and the first 2 KiB of the file and says whether it is this format.

    ``read(path, **kw)`` returns an astropy ``Table`` (kind "table") or a ``MapStack`` (kind "maps");
    ``write(obj, path, **kw)`` writes one back (None if the format is read-only).
    """

    name: str
    kind: Literal["table", "maps"]
    description: str
    extensions: tuple[str, ...]
    identify: Callable[[str, bytes], bool]
    read: Callable[..., Any]
    write: Callable[..., None] | None = None
    priority: int = 0       # higher = tried first when several identify the same file


FORMATS: Registry[FormatSpec] = Registry("file format")


def register_format(spec: FormatSpec) -> FormatSpec:
    return FORMATS.register(spec.name, spec)


def head_bytes(path: str | os.PathLike, n: int = 2048) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(n)
    except FileNotFoundError:
        raise GPSError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise GPSError("is a directory, not a file", source=str(path)) from None


def identify_format(path: str | os.PathLike, kind: str | None = None) -> str:
    """Name of the registered format of ``path`` (by content first, then extension).

    Every identifier is asked; the claim of the highest ``priority`` wins (a specialised reader, e.g. a TNG chunk,
    over a generic one, e.g. an HDF5 table). Two claims at the same top priority are ambiguous: the file is refused
    with a message naming both readers (pass ``format=`` to choose), never read by whichever came first.
    """
    path = str(path)
    head = head_bytes(path)
    if len(head) == 0:
        raise GPSError("the file is empty", source=Path(path).name, expected="a table or map file", found="0 bytes")
    specs = sorted((s for _, s in FORMATS.items() if kind is None or s.kind == kind), key=lambda s: -s.priority)
    claims = []
    for s in specs:
        try:
            if s.identify(path, head):
                claims.append(s)
        except Exception:  # an identifier must never crash identification
            continue
    if claims:
        top = [s for s in claims if s.priority == claims[0].priority]
        if len(top) > 1:
            raise GPSError("ambiguous file: several readers claim it", source=Path(path).name, field="format",
                           expected="one reader (choose one with format=)",
                           found=" and ".join(f"{s.name} ({s.description.split(':')[0]})" for s in top))
        return top[0].name
    known = ", ".join(f"{s.name} ({'/'.join(s.extensions)})" for s in specs)
    raise GPSError("unrecognised file format", source=Path(path).name,
                   expected=f"one of {known}", found=f"first bytes {head[:16]!r}")


def read(path: str | os.PathLike, format: str | None = None, kind: str | None = None, **kw: Any):
    """Read ``path`` with the named format or the identified one.

    A reader's own :class:`GPSError` passes through; any other failure of a reader on a damaged file (a library's
    parse error, a decoding error, an allocation refused) becomes a GPSError naming the file and the format, so bad
    input never ends in a traceback.
    """
    name = format or identify_format(path, kind)
    return guarded(FORMATS.get(name).read, str(path), name, **kw)


def guarded(fn: Callable[..., Any], path: str, fmt: str, /, **kw: Any):
    """``fn(path, **kw)`` with non-GPSError failures turned into a GPSError naming ``path`` and ``fmt``."""
    try:
        return fn(path, **kw)
    except GPSError:
        raise
    except MemoryError:
        raise GPSError("not enough memory to read this file", source=Path(path).name, field=fmt,
                       expected=f"a file whose declared size fits (see {MAX_CELLS_ENV})", found="MemoryError") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file must give a message, not a traceback
        text = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise GPSError(f"cannot read this file as {fmt}", source=Path(path).name, field=fmt,
                       expected=f"a valid {fmt} file", found=f"{type(exc).__name__}: {text}") from None


MAX_CELLS_ENV = "GPS_MAX_CELLS"
DEFAULT_MAX_CELLS = 50_000_000      # values (rows x columns, N x C x H x W) one read may allocate: ~400 MB as float64


def max_cells() -> int:
    """The largest declared size (number of values) a reader allocates; ``GPS_MAX_CELLS`` raises it."""
    try:
        return int(float(os.environ.get(MAX_CELLS_ENV, DEFAULT_MAX_CELLS)))
    except ValueError:
        return DEFAULT_MAX_CELLS


def check_declared_size(cells: float, source: str, field: str, what: str) -> None:
    """Refuse, before allocating, a read whose declared size ``cells`` (number of values) is over the limit."""
    limit = max_cells()
    if not (cells <= limit):
        raise GPSError(f"declared size too large to read ({what})", source=Path(source).name, field=field,
                       expected=f"at most {limit:,} values (raise the limit with the environment variable "
                                f"{MAX_CELLS_ENV})", found=f"{cells:,.0f} values")


def write(obj: Any, path: str | os.PathLike, format: str | None = None, **kw: Any) -> None:
    """Write ``obj`` with the named format or the one implied by the extension."""
    path = str(path)
    if format is None:
        low = path.lower()
        cands = [s for _, s in FORMATS.items() if s.write is not None and any(low.endswith(e) for e in s.extensions)]
        if not cands:
            raise GPSError("cannot tell the output format from the file name", source=path,
                           expected="an extension of " + ", ".join(
                               sorted({e for _, s in FORMATS.items() if s.write for e in s.extensions})))
        spec = max(cands, key=lambda s: s.priority)
    else:
        spec = FORMATS.get(format)
        if spec.write is None:
            raise GPSError(f"format {format!r} is read-only", source=path)
    spec.write(obj, path, **kw)
