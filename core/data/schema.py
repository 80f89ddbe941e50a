"""Map a table's columns onto a task's inputs/targets, convert to canonical units and validate the values.

``suggest_mapping`` proposes column names (exact name, then aliases, case- and separator-insensitive, colour
``"g - r"`` from band columns; incompatible units are skipped). ``to_catalog`` converts every mapped column to
its canonical unit (log10 of linear masses/SFRs, little-h with a stated ``h``, dex offsets, km/s -> m/s, ...),
keeps NaN as *missing*, and returns a :class:`CatalogData` plus a :class:`ValidationReport`. Infinite or
non-numeric values, missing columns and values that look like the wrong unit raise :class:`GPSError` naming the
file, the column (and row), what was expected and what was found; ``validate`` returns the report instead.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from core.data.catalog import CatalogData
from core.data.plausible import screen
from core.data.schema_report import FeatureReport, ValidationReport
from core.data.units import (UnitConversionError, canonical_unit, convert_values, is_dex, is_mag, parse_unit,
                             unit_to_string)
from core.errors import GPSError
from core.tasks import Quantity, TaskSpec, get_task

__all__ = ["suggest_mapping", "to_catalog", "validate", "load_catalog", "ValidationReport", "FeatureReport", "ID_COLUMNS"]

ID_COLUMNS = ("id", "objid", "obj_id", "specobjid", "subhalo_id", "galaxy_id", "galid", "gal_id", "object_id",
              "objname", "name", "plateifu", "mangaid")
_MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none", "--", "masked"}


def suggest_mapping(table, task: str | TaskSpec) -> dict[str, str | None]:
    """Proposed ``{task quantity name: column name or None}`` for the task's inputs and targets.

    Match order: exact name, same name ignoring case/separators, an alias of the quantity; for a colour
    ``a_b`` without a colour column, ``"A - B"`` from two magnitude columns (``g``, ``mag_g``, ``gmag`` ...).
    An alias column whose unit cannot be converted to the quantity's unit is not proposed (a column with the
    quantity's own name is, so that the unit problem is reported); a column is used once. A column whose name
    states another definition than the quantity's (Buser ``U_g`` for SDSS u-g, ``g_r_rest``, total gas for the HI
    fraction: :func:`core.data.column_map.definition_conflict`) is never proposed; ``refused_columns`` says why.
    """
    from core.data.column_map import definition_conflict

    task = get_task(task) if isinstance(task, str) else task
    cols = [c for c in table.colnames if _norm(c) not in {_norm(i) for i in ID_COLUMNS}]
    norm = {c: _norm(c) for c in cols}
    used: set[str] = set()
    out: dict[str, str | None] = {}
    for q in task.targets + task.inputs:
        best, score = None, 0
        for c in cols:
            if c in used:
                continue
            s = 3 if c == q.name else 2 if norm[c] == _norm(q.name) else 1 if norm[c] in {
                _norm(a) for a in q.aliases} else 0
            if s == 1 and not _unit_ok(getattr(table[c], "unit", None), q):
                continue              # an alias with an incompatible unit is another quantity; a same-name
            if s and definition_conflict(c, q, table.colnames):
                continue              # another definition (Buser U, rest frame, total gas ...)
            if s > score:             # column is kept so that the unit error names it
                best, score = c, s
        if best is None and is_mag(canonical_unit(q.unit)) and re.fullmatch(r"[a-z]_[a-z]", q.name):
            a, b = (_band_column(cols, norm, ch, used, q, table.colnames) for ch in q.name.split("_"))
            if a and b:
                best = f"{a} - {b}"
        if best is not None and " - " not in best:
            used.add(best)
        out[q.name] = best
    return out


def to_catalog(table, task: str | TaskSpec, mapping: dict[str, str | None] | None = None,
               units: dict[str, str] | None = None, source: str | None = None, require_target: bool = False,
               h: float | None = None, missing_values: tuple[float, ...] = (), id_column: str | None = None
               ) -> tuple[CatalogData, ValidationReport]:
    """Convert ``table`` (astropy Table/QTable) to a :class:`CatalogData` in the task's canonical units.

    ``mapping``: quantity name -> column (or ``"A - B"``; None/absent = not used); default
    :func:`suggest_mapping`. ``units``: unit strings overriding/adding the file's units, keyed by quantity or
    column name (e.g. ``{"log_mstar": "solMass"}`` for a linear-mass column without units). ``h``: Hubble
    parameter for columns in little-h units (default: ``table.meta["h"]`` if present, stated in the report).
    ``missing_values``: sentinel values (e.g. -99, -999) read as missing (NaN), counted in the report.
    ``require_target``: the task's targets must be mapped (training/evaluation data).
    Raises :class:`GPSError` on the first problem (``err.report`` holds the full :class:`ValidationReport`).
    """
    cat, report = _build(table, task, mapping, units, source, require_target, h, missing_values, id_column)
    if not report.ok:
        more = f" (and {len(report.errors) - 1} more problem(s))" if len(report.errors) > 1 else ""
        err = GPSError(report.errors[0] + more)
        err.report = report
        raise err
    return cat, report


def validate(table, task: str | TaskSpec, mapping: dict[str, str | None] | None = None,
             units: dict[str, str] | None = None, source: str | None = None, require_target: bool = False,
             h: float | None = None, missing_values: tuple[float, ...] = (), id_column: str | None = None
             ) -> ValidationReport:
    """Like :func:`to_catalog` but never raises on data problems: every problem is listed in the report."""
    return _build(table, task, mapping, units, source, require_target, h, missing_values, id_column)[1]


def load_catalog(path, task: str | TaskSpec, mapping: dict[str, str | None] | None = None,
                 units: dict[str, str] | None = None, require_target: bool = False, format: str | None = None,
                 h: float | None = None, missing_values: tuple[float, ...] = (), **read_kw: Any
                 ) -> tuple[CatalogData, ValidationReport]:
    """Read a table file (any registered format; ``read_kw`` e.g. ``hdu=``, ``path=``) and map it onto ``task``."""
    from core.data.io.tables import read_table

    table = read_table(path, format=format, **read_kw)
    return to_catalog(table, task, mapping=mapping, units=units, require_target=require_target, h=h,
                      missing_values=missing_values)


# -------------------------------------------------------------------------------------------------
def _build(table, task, mapping, units, source, require_target, h, missing_values, id_column):
    task = get_task(task) if isinstance(task, str) else task
    src = source or str(table.meta.get("source_file", "") or "<table>")
    rep = ValidationReport(task=task.name, source=src, n_rows=len(table))
    quantities = {q.name: q for q in task.inputs + task.targets}
    err = _error_adder(rep, src)
    if len(table) == 0:
        err("the table has no data rows", None, "at least one row", "0 rows; columns: " + _cols(table))
        return None, rep
    mapping = suggest_mapping(table, task) if mapping is None else dict(mapping)
    unknown = [k for k in mapping if k not in quantities]
    if unknown:
        err("mapping names unknown task quantities", ", ".join(unknown), ", ".join(quantities), ", ".join(unknown))
    mapped = {k: v for k, v in mapping.items() if v not in (None, "") and k in quantities}
    for k, col in mapped.items():
        for c in _expr_columns(col):
            if c not in table.colnames:
                err(f"column {c!r} mapped to {k} does not exist", c, "one of " + _cols(table), c)
    if not any(k in task.input_names for k in mapped):
        err(f"none of the inputs of task {task.name!r} were found", None,
            "; ".join(f"{q.name} (or {', '.join(q.aliases[:4])})" for q in task.inputs), "columns " + _cols(table))
    if require_target:
        for q in task.targets:
            if q.name not in mapped:
                err(f"target {q.name} ({q.description}) is required but not mapped", q.name,
                    f"a column named {q.name} or one of {', '.join(q.aliases)}", "columns " + _cols(table))
    rep.missing = [q.name for q in task.inputs if q.name not in mapped]
    _definition_warnings(table, task, mapped, rep)
    if rep.errors:
        return None, rep
    units = dict(units or {})
    h_used, h_src = (h, "argument") if h is not None else (table.meta.get("h", table.meta.get("HubbleParam")),
                                                            "file metadata")
    values: dict[str, np.ndarray] = {}
    for name, col in mapped.items():
        q = quantities[name]
        role = "target" if name in task.target_names else "input"
        v = _convert(table, q, col, units, h_used, h_src, missing_values, rep, err, role)
        if v is not None and role == "input" and len(v) and not np.isfinite(v).any():
            # NaN means missing: a column with no value at all is an input not provided (said, not used)
            rep.warnings.append(f"column {mapped[name]!r} (mapped to {name}) has no finite values: {name} is "
                                "treated as not provided")
            rep.missing.append(name)
            continue
        if v is not None:
            values[name] = v
    if not rep.errors and mapped and not any(q.name in values for q in task.inputs):
        err("no input column has a finite value", ", ".join(mapped[k] for k in mapped if k in task.input_names),
            "numbers in at least one input column", "only empty / NaN / sentinel values")
    if rep.errors:
        return None, rep
    feats = tuple(q.name for q in task.inputs if q.name in values)
    x = np.column_stack([values[f] for f in feats]) if feats else np.zeros((len(table), 0))
    tg = tuple(q.name for q in task.targets)
    y = np.column_stack([values.get(t, np.full(len(table), np.nan)) for t in tg]) if any(
        t in values for t in tg) else None
    ids = _ids(table, id_column)
    meta: dict[str, Any] = {"source": "file", "file": src, "task": task.name,
                            "sha256": table.meta.get("sha256"), "format": table.meta.get("format"),
                            "mapping": {k: mapped[k] for k in mapped},
                            "conversions": {f.name: f.conversion for f in rep.features},
                            "n_rows": len(table), "warnings": list(rep.warnings)}
    if h_used is not None and any("with h=" in f.conversion for f in rep.features):
        meta["h"] = float(h_used)
    for k in ("simulation", "snapshot", "redshift", "h", "box_size", "aperture", "notes"):
        if k in table.meta and k not in meta:
            meta[k] = table.meta[k]
    extra = {}
    if rep.refused_rows:
        reasons = [""] * len(table)
        for i, why in rep.refused_rows.items():
            reasons[i] = "; ".join(why)
            x[i] = np.nan                      # a refused row is never used as numbers (its truth is kept)
        extra["refused"] = np.array(reasons, dtype=str)
        meta["n_refused_rows"] = len(rep.refused_rows)
    cat = CatalogData(x=x, features=feats, y=y, targets=tg if y is not None else (), ids=ids,
                      units={q.name: q.unit for q in task.inputs + task.targets if q.name in values}, meta=meta,
                      extra=extra)
    return cat, rep


def _convert(table, q: Quantity, col: str, units, h, h_src, missing_values, rep, err, role: str):
    raw, found = _raw(table, col, err)
    if raw is None:
        return None
    ustr = units.get(q.name, units.get(col))
    if ustr is not None:
        found = parse_unit(ustr)
    canon = canonical_unit(q.unit)
    fr = FeatureReport(name=q.name, column=col, role=role, n=len(raw),
                       unit_found=unit_to_string(found), unit_used=q.unit, domain=q.domain)
    rep.features.append(fr)
    n_sent = 0
    for s in missing_values:
        hit = raw == s
        n_sent += int(hit.sum())
        raw[hit] = np.nan
    inf = np.flatnonzero(np.isinf(raw))
    fr.n_inf = int(inf.size)
    if inf.size:
        err(f"{inf.size} infinite value(s), first at row {inf[0]} (0-based, header excluded): {raw[inf[0]]}",
            col, "finite numbers (NaN or an empty cell for a missing value)", f"{raw[inf[0]]} in row {inf[0]}")
        return None
    try:
        v, conv, _ = convert_values(raw, found, canon, h=None if h is None else float(h))
    except UnitConversionError as exc:
        err(f"cannot use this column as {q.name} ({q.label}): {exc}", col, q.unit, fr.unit_found or "no unit")
        return None
    if "with h=" in conv and h_src == "file metadata":
        conv += " (h from file metadata)"
    scr = screen(q.name, q.unit, q.plausible, v, h=None if h is None else float(h),
                 extra_sentinels=tuple(missing_values), identity=found is None or found == canon)
    if scr.error:
        err(scr.error, col, scr.expected, scr.found)
        return None
    v, n_sent = scr.values, n_sent + scr.n_sentinel
    if scr.n_sentinel:
        rep.warnings.append(f"{rep.source} [{col}]: {scr.n_sentinel} sentinel value(s) of {q.name} (-99, 99, -999, "
                            "9999 ...) read as missing")
    if scr.refused_rows.size:
        for i in scr.refused_rows:
            rep.refused_rows.setdefault(int(i), []).append(scr.reason)
        rep.warnings.append(f"{rep.source} [{col}]: {scr.refused_rows.size} row(s) refused, {scr.reason} (first "
                            f"row {scr.refused_rows[0]}, 0-based); written as masked")
    fr.n_refused = int(scr.refused_rows.size)
    fr.n_sentinel = n_sent
    fr.conversion = conv + (f"; {n_sent} sentinel value(s) -> NaN" if n_sent else "")
    fin = v[np.isfinite(v)]
    fr.n_nan = int(np.isnan(v).sum())
    if fin.size:
        fr.min, fr.max = float(fin.min()), float(fin.max())
    if q.domain is not None and fin.size:
        lo, hi = q.domain
        inside = (fin >= lo) & (fin <= hi)
        fr.n_outside_domain = int((~inside).sum())
        if inside.mean() < 0.5 and q.plausible is None:
            med = float(np.median(fin))
            if is_dex(canon) and (fin > 0).all():
                lg = np.log10(fin)
                if ((lg >= lo) & (lg <= hi)).mean() >= 0.8:
                    lin = unit_to_string(canon.physical_unit) or "dimensionless"
                    err(f"values look linear, not log10 (median {med:.4g}; {q.name} expects {q.unit} in "
                        f"[{lo}, {hi}]); declare the column's linear unit, e.g. units={{{q.name!r}: {lin!r}}}, "
                        "or give log10 values", col, f"{q.unit} values in [{lo}, {hi}]",
                        f"median {med:.4g} with unit {fr.unit_found or 'none'!r}")
                    return None
            hint = (" (these look like magnitudes, not a colour: map the colour as 'A - B' of two band columns)"
                    if is_mag(canon) and abs(med) > 5 else "")
            rep.warnings.append(f"{rep.source} [{col}]: {fr.n_outside_domain} of {fin.size} values of {q.name} lie "
                                f"outside the training domain [{lo}, {hi}] (median {med:.4g}); check the unit and "
                                f"definition{hint}")
        elif fr.n_outside_domain:
            rep.warnings.append(f"{rep.source} [{col}]: {fr.n_outside_domain} value(s) of {q.name} outside the "
                                f"training domain [{lo}, {hi}] (flagged, not removed)")
    return v


def _raw(table, col: str, err) -> tuple[np.ndarray | None, Any]:
    """Float values and unit of a column or of an ``"A - B"`` difference; non-numeric text -> error."""
    parts = _expr_columns(col)
    if len(parts) == 2:
        (a, ua), (b, ub) = (_raw(table, p, err) for p in parts)
        if a is None or b is None:
            return None, None
        if ua != ub:
            err("the two columns of a difference have different units", col, "equal units",
                f"{unit_to_string(ua)!r} vs {unit_to_string(ub)!r}")
            return None, None
        return a - b, ua
    c = table[col]
    unit = parse_unit(getattr(c, "unit", None))
    data = getattr(c, "value", c)
    arr = np.ma.asarray(data)
    if arr.ndim != 1:
        err("column is not one value per row", col, "a 1-D column", f"shape {arr.shape}")
        return None, None
    if arr.dtype.kind in "biuf":
        out = np.ma.filled(arr.astype(np.float64), np.nan)
        return np.array(out, dtype=np.float64), unit
    if arr.dtype.kind not in "USO" or (arr.dtype.kind == "O" and any(
            np.ndim(a) != 0 or isinstance(a, (list, tuple, dict)) for a in np.ma.filled(arr, None)[:1000])):
        err("column is not one number per row", col, "a number (or text of a number) per row",
            f"{arr.dtype} values, e.g. {str(np.ma.filled(arr, None)[0])[:40]!r}")
        return None, None
    text = np.ma.filled(arr.astype(str), "")
    out = np.full(len(text), np.nan)
    bad = []
    for i, s in enumerate(text):
        s = s.strip()
        if s.lower() in _MISSING_TEXT:
            continue
        try:
            out[i] = float(s)
        except ValueError:
            bad.append(i)
    if bad:
        err(f"{len(bad)} non-numeric value(s), first at row {bad[0]} (0-based, header excluded): {text[bad[0]]!r}",
            col, "numbers (or an empty cell / NaN for missing)", repr(str(text[bad[0]])))
        return None, None
    return out, unit


def _definition_warnings(table, task, mapped: dict, rep: ValidationReport) -> None:
    """A warning per mapped column whose name states another definition than its quantity's, and a note per
    input left out because its look-alike column means something else (core.data.column_map)."""
    from core.data.column_map import definition_conflict, refused_columns

    quantities = {q.name: q for q in task.inputs + task.targets}
    for name, col in mapped.items():
        for c in _expr_columns(col):
            why = definition_conflict(c, quantities[name], table.colnames)
            if why:
                rep.warnings.append(f"{rep.source} [{c}]: mapped to {name} by hand, but {why}")
    for name, notes in refused_columns(table, task).items():
        if name not in mapped:
            rep.warnings.extend(f"{rep.source}: {name} not mapped automatically: {n}" for n in notes)


def _error_adder(rep: ValidationReport, src: str):
    def add(message: str, field: str | None, expected: str | None, found: str | None) -> None:
        rep.errors.append(str(GPSError(message, source=src, field=field, expected=expected, found=found)))
    return add


def _ids(table, id_column: str | None) -> np.ndarray | None:
    if id_column is not None:
        if id_column not in table.colnames:
            raise GPSError(f"id column {id_column!r} does not exist", source=table.meta.get("source_file"),
                           expected="one of " + _cols(table), found=id_column)
        return np.asarray(table[id_column])
    low = {_norm(c): c for c in table.colnames}
    for k in ID_COLUMNS:
        if _norm(k) in low:
            return np.asarray(getattr(table[low[_norm(k)]], "value", table[low[_norm(k)]]))
    return None


def _unit_ok(unit, q: Quantity) -> bool:
    found = parse_unit(unit)
    if found is None:
        return True
    try:
        convert_values(np.zeros(0), found, canonical_unit(q.unit), h=1.0)
        return True
    except UnitConversionError:
        return False


def _band_column(cols, norm, band: str, used, q=None, colnames=()) -> str | None:
    from core.data.column_map import definition_conflict

    keys = (f"mag{band}", f"{band}mag", f"modelmag{band}", f"cmodelmag{band}", f"petromag{band}",
            f"absmag{band}", f"abs{band}", f"m{band}", band)
    for k in keys:
        for c in cols:
            if norm[c] == k and c not in used and not (q is not None and definition_conflict(c, q, colnames)):
                return c
    return None


def _expr_columns(col: str) -> list[str]:
    parts = col.split(" - ")
    return [p.strip() for p in parts] if len(parts) == 2 else [col]


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(s).lower())


def _cols(table) -> str:
    names = list(table.colnames)
    return ", ".join(names[:30]) + (f", ... ({len(names)} columns)" if len(names) > 30 else "") or "(none)"
