"""File-format registry (astropy-style): each format has an identifier, a reader and optionally a writer."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from core.errors import GPSError
from core.registry import Registry

__all__ = ["FormatSpec", "FORMATS", "register_format", "identify_format", "read", "write", "head_bytes"]


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
    """Name of the registered format of ``path`` (by content first, then extension)."""
    path = str(path)
    head = head_bytes(path)
    if len(head) == 0:
        raise GPSError("the file is empty", source=path, expected="a table or map file", found="0 bytes")
    specs = sorted((s for _, s in FORMATS.items() if kind is None or s.kind == kind), key=lambda s: -s.priority)
    for s in specs:
        try:
            if s.identify(path, head):
                return s.name
        except Exception:  # an identifier must never crash identification
            continue
    known = ", ".join(f"{s.name} ({'/'.join(s.extensions)})" for s in specs)
    raise GPSError("unrecognised file format", source=Path(path).name,
                   expected=f"one of {known}", found=f"first bytes {head[:16]!r}")


def read(path: str | os.PathLike, format: str | None = None, kind: str | None = None, **kw: Any):
    """Read ``path`` with the named format or the identified one."""
    name = format or identify_format(path, kind)
    return FORMATS.get(name).read(str(path), **kw)


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
