"""Text tables: comma/tab/semicolon/whitespace CSV with optional '#'-commented header, ECSV, unit hints.

The layout is sniffed from the first lines (:func:`sniff_csv`): delimiter, where the header is (first data-less
line, or the last '#' comment line when the first line is already numbers), unit hints from a
``# units: col=unit, ...`` line or ``name [unit]`` headers. ECSV files (``# %ECSV``; what our writer produces,
comma-delimited so any CSV tool reads them) keep units and metadata exactly. Reading uses pandas (chunks for
streaming); missing cells become NaN, non-numeric junk stays text and is reported by the schema validator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from core.errors import GPSError

__all__ = ["CsvLayout", "sniff_csv", "read_csv", "iter_csv_chunks", "write_csv", "looks_like_text"]

_SNIFF_LINES = 200


@dataclass
class CsvLayout:
    """Where the header and data are in a text table, and what units the file states."""

    delimiter: str | None          # None = any whitespace
    skiprows: int                  # lines before the first data row (comments, header)
    names: list[str]
    units: dict[str, str] = field(default_factory=dict)
    ecsv: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    header_source: str = "first line"
    dtypes: dict[str, Any] = field(default_factory=dict)    # ECSV: declared column types
    simple: bool = True                                      # ECSV: no multi-dim/object columns


def looks_like_text(head: bytes) -> bool:
    """True if the first bytes look like a text table (no NUL bytes, decodable, has digits)."""
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = head.decode("latin-1")
        except UnicodeDecodeError:  # pragma: no cover
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.98 * len(text) and any(ch.isdigit() for ch in text)


def sniff_csv(path: str) -> CsvLayout:
    """Work out delimiter, header and units of a text table from its first lines."""
    name = Path(path).name
    lines = _first_lines(path)
    if not any(ln.strip() for ln in lines):
        raise GPSError("the file is empty", source=name, expected="a header line and data rows",
                       found="no non-blank lines")
    if lines[0].startswith("# %ECSV"):
        return _ecsv_layout(path, lines)
    comments, i = [], 0
    while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
        if lines[i].strip():
            comments.append(lines[i].lstrip()[1:].strip())
        i += 1
    units_line = next((c for c in comments if re.match(r"units?\s*:", c, re.I)), None)
    header_comments = [c for c in comments if c is not units_line and c]
    body = [ln for ln in lines[i:] if ln.strip() and not ln.lstrip().startswith("#")]
    if not body:
        if header_comments:  # header only in a comment, no data
            delim = _delimiter(header_comments[-1])
            names = _split(header_comments[-1], delim)
            return CsvLayout(delim, len(lines), *_names_units(names, units_line, name), header_source="comment")
        raise GPSError("no header or data rows", source=name, expected="a header line and data rows",
                       found=f"{len(comments)} comment line(s) only")
    first = body[0]
    delim = _delimiter(first)
    tok1 = _split(first, delim)
    tok2 = _split(body[1], delim) if len(body) > 1 else None
    n1 = sum(_is_number(t) for t in tok1)
    is_header = (n1 == 0) if tok2 is None else (n1 < sum(_is_number(t) for t in tok2))
    if is_header:
        names, skip, src = tok1, i + 1, "first line"
    else:
        names, skip, src = None, i, "generated"
        for c in reversed(header_comments):
            c = re.sub(r"^[A-Za-z]:", "", c)  # ANNz-style 'F:NAME;F:NAME2'
            cand = [re.sub(r"^[A-Za-z]:", "", t) for t in _split(c, _delimiter(c))]
            if len(cand) == len(tok1) and not any(_is_number(t) for t in cand):
                names, src = cand, "comment"
                break
        if names is None:
            names = [f"col{k + 1}" for k in range(len(tok1))]
    names, units = _names_units(names, units_line, name)
    return CsvLayout(delim, skip, names, units, header_source=src)


def read_csv(path: str, **kw: Any):
    """Read a whole text table into an astropy ``Table`` (units on columns where the file states them)."""
    from astropy.table import Table

    layout = sniff_csv(path)
    check_last_row(path, layout)
    if layout.ecsv and not layout.simple:
        return Table.read(path, format="ascii.ecsv")
    frames = list(_pandas_chunks(path, layout, None))
    return _to_table(frames[0], layout)


def iter_csv_chunks(path: str, chunk_rows: int) -> Iterator:
    """Yield astropy ``Table`` chunks of ``chunk_rows`` rows (constant memory; pandas chunked reader)."""
    layout = sniff_csv(path)
    check_last_row(path, layout)
    for df in _pandas_chunks(path, layout, chunk_rows):
        yield _to_table(df, layout)


def check_last_row(path: str, layout: CsvLayout) -> None:
    """Refuse a file whose last row has another number of fields than the header (a truncated or ragged file)."""
    if layout.ecsv and not layout.simple:
        return
    enc = encoding_of(path)
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    if enc == "utf-16":
        return                                    # (decoded by pandas; tail bytes may split a code unit)
    lines = tail.decode("utf-8", errors="replace").splitlines()
    if size > 65536:
        lines = lines[1:]                         # the first line of the tail window may be cut
    lines = [ln for ln in lines if ln.strip()]
    if not lines or lines[-1].lstrip().startswith("#") or size <= 65536 and len(lines) <= layout.skiprows:
        return
    last = lines[-1]
    n = len(_split(last, layout.delimiter))
    if n != len(layout.names):
        raise GPSError(f"the last row has {n} field(s) but the header names {len(layout.names)} (truncated or ragged "
                       "file?)", source=Path(path).name, field="last row",
                       expected=f"{len(layout.names)} fields ({', '.join(layout.names[:6])}...)",
                       found=f"{n} fields: {last[:60]!r}")
    if not tail.endswith((b"\n", b"\r")):
        _check_cut_last_value(path, layout, lines)


def _check_cut_last_value(path: str, layout: CsvLayout, lines: list[str]) -> None:
    """A file that stops without a line break may have been cut inside its last number: refuse it when that last
    value is shorter than every value of its column in the rows before (columns written at fixed precision)."""
    rows = [_split(ln, layout.delimiter) for ln in lines[-51:] if not ln.lstrip().startswith("#")]
    if len(rows) < 6:
        return
    last = rows[-1][-1].strip()
    before = [r[-1].strip() for r in rows[:-1] if len(r) == len(rows[-1]) and _is_number(r[-1].strip())]
    if len(before) < 5 or not _is_number(last):
        return
    shortest = min(len(v) for v in before)
    if len(last) < shortest:
        raise GPSError("the file ends without a line break, inside its last value (truncated file?)",
                       source=Path(path).name, field=f"{layout.names[-1]}, last row",
                       expected=f"a value of at least {shortest} characters like the rows before (e.g. {before[-1]!r})",
                       found=repr(last))


def write_csv(table, path: str, **kw: Any) -> None:
    """Write comma-delimited ECSV (a CSV whose '#' header carries units and metadata; pandas reads it too).

    The header comes from astropy's ECSV writer, the rows from pandas (about 20x faster for large tables);
    tables with multi-dimensional or object columns go entirely through astropy.
    """
    import io

    import pandas as pd
    from astropy.table import Table

    t = Table(table, copy=False)
    overwrite = kw.pop("overwrite", True)
    if not overwrite and Path(path).exists():
        raise GPSError("output file exists", source=str(path), expected="a new file name or overwrite=True")
    simple = all(t[c].ndim == 1 and t[c].dtype.kind in "biufUS" for c in t.colnames)
    if not simple or len(t) == 0:
        t.write(path, format="ascii.ecsv", delimiter=",", overwrite=True, **kw)
        return
    buf = io.StringIO()
    t[:0].write(buf, format="ascii.ecsv", delimiter=",")
    data = {}
    for c in t.colnames:
        col = t[c]
        vals = np.asarray(col)
        if np.ma.is_masked(getattr(col, "mask", None)) and np.any(col.mask):
            vals = np.ma.filled(np.ma.asarray(col), np.nan if vals.dtype.kind == "f" else "")
        if vals.dtype.kind == "S":
            vals = np.char.decode(vals)
        data[c] = vals
    with open(path, "w", newline="") as fh:
        fh.write(buf.getvalue())
        pd.DataFrame(data).to_csv(fh, header=False, index=False, na_rep="nan", lineterminator="\n")


# -------------------------------------------------------------------------------------------------
def encoding_of(path: str) -> str:
    """Text encoding from the byte-order mark: utf-16 / utf-8-sig, else utf-8 (bad bytes replaced, not fatal)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise GPSError("file not found", source=str(path)) from None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"


def _first_lines(path: str) -> list[str]:
    out = []
    try:
        with open(path, "r", encoding=encoding_of(path), errors="replace", newline=None) as fh:
            for _ in range(_SNIFF_LINES):
                ln = fh.readline()
                if not ln:
                    break
                out.append(ln.rstrip("\r\n"))
    except FileNotFoundError:
        raise GPSError("file not found", source=str(path)) from None
    return out


def _ecsv_layout(path: str, lines: list[str]) -> CsvLayout:
    from astropy.table import Table

    hdr = []
    for ln in lines:
        hdr.append(ln)
        if not ln.startswith("#"):
            break
    try:
        t0 = Table.read("\n".join(hdr) + "\n", format="ascii.ecsv")
    except Exception as exc:
        raise GPSError(f"malformed ECSV header: {exc}", source=Path(path).name) from None
    units = {c: t0[c].unit.to_string() for c in t0.colnames if t0[c].unit is not None}
    delim = "," if "," in hdr[-1] else None
    dtypes = {c: (str if t0[c].dtype.kind in "US" else t0[c].dtype) for c in t0.colnames}
    simple = ("subtype" not in "".join(hdr)
              and all(t0[c].ndim == 1 and t0[c].dtype.kind in "biufUS" for c in t0.colnames))
    return CsvLayout(delim, len(hdr), list(t0.colnames), units, ecsv=True, meta=dict(t0.meta),
                     header_source="ecsv", dtypes=dtypes, simple=simple)


def _delimiter(line: str) -> str | None:
    for d in (",", "\t", ";", "|"):
        if d in line:
            return d
    return None


def _split(line: str, delim: str | None) -> list[str]:
    parts = line.split() if delim is None else line.split(delim)
    return [p.strip().strip('"').strip("'") for p in parts]


def _is_number(tok: str) -> bool:
    try:
        float(tok)
        return True
    except ValueError:
        return tok.strip().lower() in ("", "nan", "inf", "-inf", "na", "null")


def _names_units(names: list[str], units_line: str | None, source: str) -> tuple[list[str], dict[str, str]]:
    units: dict[str, str] = {}
    clean = []
    for nm in names:
        m = re.fullmatch(r"(.*?)\s*[\[(]([^\])]+)[\])]", nm)
        if m and m.group(1):
            clean.append(m.group(1))
            units[m.group(1)] = m.group(2).strip()
        else:
            clean.append(nm or f"col{len(clean) + 1}")
    if units_line:
        spec = re.sub(r"^units?\s*:\s*", "", units_line, flags=re.I)
        items = [s.strip() for s in re.split(r"[,;\t]", spec) if s.strip()]
        if items and all("=" in s for s in items):
            for s in items:
                k, v = s.split("=", 1)
                units[k.strip()] = v.strip()
        elif len(items) == len(clean):
            units.update({k: v for k, v in zip(clean, items) if v not in ("", "-")})
        else:
            raise GPSError("cannot read the '# units:' line", source=source, field="units",
                           expected=f"'name=unit, ...' or {len(clean)} units in column order",
                           found=f"{len(items)} item(s)")
    from core.data.io.table_common import unique_names

    unique_names(clean, source, "header")       # a duplicated name is refused: which column is meant is unknown
    return clean, units


def _pandas_chunks(path: str, layout: CsvLayout, chunk_rows: int | None):
    import pandas as pd

    kw: dict[str, Any] = dict(header=None, names=layout.names, skiprows=layout.skiprows, comment=None,
                              skip_blank_lines=True, index_col=False, encoding=encoding_of(path),
                              encoding_errors="replace")
    if layout.dtypes:
        kw["dtype"] = {c: d for c, d in layout.dtypes.items() if d is str}
        kw["keep_default_na"] = True
    if layout.delimiter is None:
        kw["sep"] = r"\s+"
    else:
        kw["sep"] = layout.delimiter
    name = Path(path).name
    try:
        if chunk_rows is None:
            yield pd.read_csv(path, **kw)
        else:
            yield from pd.read_csv(path, chunksize=int(chunk_rows), **kw)
    except pd.errors.EmptyDataError:
        yield pd.DataFrame({n: np.zeros(0) for n in layout.names})
    except pd.errors.ParserError as exc:
        raise GPSError(f"malformed text table: {' '.join(str(exc).split())}", source=name,
                       expected=f"{len(layout.names)} columns per row ({', '.join(layout.names[:8])}...)") from None


def _to_table(df, layout: CsvLayout):
    from astropy import units as u
    from astropy.table import Table

    from core.data.units import parse_unit

    t = Table()
    for nm in layout.names:
        col = df[nm]
        vals = col.to_numpy()
        if vals.dtype.kind in "biuf":
            arr = vals
        else:
            arr = col.fillna("").astype(str).to_numpy(dtype=str)
        unit = layout.units.get(nm)
        pu = parse_unit(unit) if unit else None
        t[nm] = arr
        if pu is not None:
            try:
                t[nm].unit = pu
            except (TypeError, ValueError):
                t[nm].unit = u.Unit(str(unit), parse_strict="silent")
    t.meta.update(layout.meta)
    t.meta["csv_header"] = layout.header_source
    return t
