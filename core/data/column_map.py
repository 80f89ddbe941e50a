"""The CLI's column mapping, the same choices the app's Data page offers: ``--map COLUMN=INPUT[:UNIT]`` (repeatable),
``--h`` and ``--id-column``.

``COLUMN=INPUT[:UNIT]`` maps the file column ``COLUMN`` (or an ``"A - B"`` difference) to the task quantity
``INPUT`` and, with ``:UNIT``, declares the column's unit (e.g. ``SubhaloMassType_4=log_mstar:1e10 Msun/h``);
the older order ``INPUT=COLUMN`` is read too when the left side is a task quantity and the right side is not.
"""

from __future__ import annotations

import re
from typing import Sequence

from core.errors import GPSError

__all__ = ["parse_column_map", "merge_mapping", "definition_conflict", "refused_columns"]


def parse_column_map(items: Sequence[str] | None, task) -> tuple[dict[str, str], dict[str, str]]:
    """``(mapping, units)`` from ``--map`` items: mapping = quantity name -> column, units = quantity -> unit."""
    names = {q.name for q in task.inputs + task.targets}
    mapping: dict[str, str] = {}
    units: dict[str, str] = {}
    for item in items or ():
        left, sep, right = str(item).partition("=")
        left, right = left.strip(), right.strip()
        qty, _, unit = right.partition(":")
        qty, unit = qty.strip(), unit.strip()
        if sep and left and qty in names:
            col = left
        elif sep and left in names and right and right not in names:
            qty, col, unit = left, right, ""
        else:
            raise GPSError(
                "cannot read this column mapping",
                field="--map",
                expected=f"COLUMN=INPUT or COLUMN=INPUT:UNIT with INPUT one of {', '.join(sorted(names))}",
                found=str(item),
            )
        if qty in mapping and mapping[qty] != col:
            raise GPSError(
                f"{qty} is mapped twice", field="--map", expected="one column per input", found=f"{mapping[qty]}, {col}"
            )
        mapping[qty] = col
        if unit:
            units[qty] = unit
    return mapping, units


def merge_mapping(suggested: dict, given: dict[str, str]) -> dict:
    """The suggested mapping with the given entries on top (a column given for one quantity is no longer proposed
    for another)."""
    taken = set(given.values())
    out = {k: (None if v in taken else v) for k, v in suggested.items()}
    out.update(given)
    return out


# ------------------------------------------------------------------------------------------ definitions
_JOHNSON = "UBVRI"  # Johnson-Cousins / Buser bands written in capitals (SDSS bands are lower case)
_SDSS_LIKE = {"u": "U", "r": "R", "i": "I"}  # SDSS bands whose capital letter is another (Johnson) band
_REST = ("rest", "restframe", "abs", "absmag", "kcorr", "kcorrected")
_OBSERVED = ("obs", "observed", "app", "apparent")
_NODUST = ("nodust", "dustfree", "dustcorr", "dustcorrected", "intrinsic", "unattenuated", "noatten")
_NOT_HI = ("h2", "mol", "molecular", "total", "tot", "allphase", "allphases", "hot", "cold", "ionised", "ionized")
_LIGHT = ("lw", "lwt", "light", "lum", "lumweighted", "lightweighted")


def _tokens(column: str) -> list[str]:
    """Lower-case words of a column name, split at separators and at lower->upper case changes."""
    parts = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(column))
    return [t for t in re.split(r"[^a-z0-9]+", parts.lower()) if t]


def _quantity_bands(q) -> tuple[str, ...]:
    """SDSS bands a quantity is made of: ``u_g`` -> (u, g), ``mag_r``/``err_r`` -> (r,), else ()."""
    if re.fullmatch(r"[a-z]_[a-z]", q.name):
        return tuple(q.name.split("_"))
    m = re.fullmatch(r"(?:mag|err)_([a-z])", q.name)
    return (m.group(1),) if m else ()


def _capital_band(column: str, bands: tuple[str, ...], columns: Sequence[str]) -> str | None:
    """The capital Johnson letter (U, R, I) standing for one of the quantity's SDSS ``bands`` in ``column``, if
    the name uses case to tell bands apart (an all-capitals FITS name such as ``U_G`` is not read this way,
    except a one-letter band column in a table whose other band columns are lower case, e.g. TNG's U, g, r)."""
    caps = {_SDSS_LIKE[b] for b in bands if b in _SDSS_LIKE}
    if not caps:
        return None
    col = str(column)
    if len(col) == 1:
        others = [c for c in columns if len(str(c)) == 1 and str(c) != col]
        return col if col in caps and any(c.islower() for c in others) else None
    if not any(ch.islower() for ch in col):
        return None
    for m in re.finditer(r"(?<![A-Za-z])([A-Z])(?=$|[^a-z]|[a-z](?:$|[^a-z])|mag)", col):
        if m.group(1) in caps:
            return m.group(1)
    return None


def definition_conflict(column: str, q, columns: Sequence[str] = ()) -> str | None:
    """Why file column ``column`` is known to mean something else than task quantity ``q`` (None if nothing is
    known against it), judged from the name against ``q.definition``: a capital Johnson/Buser band (``U_g``, ``U``
    next to lower-case ``g``) for an SDSS colour or magnitude, a rest-frame or absolute column (``_rest``,
    ``absmag``) for an observed-frame one, a dust-free one (``_nodust``, ``intrinsic``) for one with dust, another
    gas phase (``_total``, ``h2``) for an HI fraction, a Salpeter mass for a Chabrier/Kroupa one, a light-weighted
    value for a mass-weighted one. ``columns``: the table's other column names (context for one-letter bands).
    The automatic mapping never proposes such a column; mapped by hand it gets a warning."""
    d = getattr(q, "definition", None)
    if d is None:
        return None
    toks = _tokens(column)
    flat = "".join(toks)

    def want(value: str) -> str:
        return f"the task's {q.name} ({q.label}) is {value}"

    if d.band_system and "SDSS" in d.band_system:
        cap = _capital_band(column, _quantity_bands(q), columns)
        if cap:
            return f"column {column!r} has the Johnson/Buser {cap} band, not SDSS {cap.lower()}; " + want(d.band_system)
    frame = (d.frame or "").lower()
    if frame.startswith("observed") and any(t in _REST or t.startswith("rest") or t.startswith("absmag") for t in toks):
        return f"column {column!r} is rest-frame / absolute (K-corrected); " + want(d.frame)
    if frame.startswith("rest") and any(t in _OBSERVED for t in toks):
        return f"column {column!r} is observed-frame; " + want(d.frame)
    if (d.dust or "").lower().startswith("included") and any(k in flat for k in _NODUST):
        return f"column {column!r} is dust-free / dust-corrected; " + want("dust " + d.dust)
    if (d.gas_phase or "").startswith("HI") and (any(t in _NOT_HI for t in toks) or "h2" in flat or "total" in flat):
        return f"column {column!r} is another gas phase (total, molecular or hot gas), not HI; " + want(d.gas_phase)
    imf = (d.imf or "").lower()
    if ("chabrier" in imf or "kroupa" in imf) and "salp" in flat:
        return f"column {column!r} assumes a Salpeter IMF (~0.2 dex heavier); " + want("IMF " + d.imf)
    if (d.weighting or "").lower().startswith("mass-weighted") and any(t in _LIGHT for t in toks):
        return f"column {column!r} is light-weighted; " + want(d.weighting)
    return None


def refused_columns(table, spec) -> dict[str, list[str]]:
    """``{input name: [note, ...]}``: columns that look like an input of ``spec`` (its name or an alias, or a band
    column of a colour) but whose name says another definition, so the automatic mapping left them out."""
    cols = list(table.colnames)
    out: dict[str, list[str]] = {}
    for q in spec.inputs + spec.targets:
        keys = {_norm(q.name)} | {_norm(a) for a in q.aliases}
        bands = _quantity_bands(q) if re.fullmatch(r"[a-z]_[a-z]", q.name) else ()
        notes = []
        for c in cols:
            candidate = _norm(c) in keys or _core_norm(c) in keys or (bands and _is_band_column(c, bands))
            why = definition_conflict(c, q, cols) if candidate else None
            if why:
                notes.append(why)
        if notes:
            out[q.name] = notes
    return out


def _norm(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(s).lower())


def _core_norm(s: str) -> str:
    """The normalised name without the words that state a definition (``u_g_rest`` -> ``ug``), to recognise a
    column that is an input under another definition."""
    drop = (
        set(_REST)
        | set(_OBSERVED)
        | {"nodust", "dust", "free", "no", "intrinsic", "lw", "lwt", "mw", "mwt", "salpeter", "total", "tot"}
    )
    return "".join(t for t in _tokens(s) if t not in drop)


def _is_band_column(column: str, bands: tuple[str, ...]) -> bool:
    n = _norm(column)
    return any(n in (b, f"mag{b}", f"{b}mag", f"absmag{b}", f"abs{b}", f"m{b}") for b in bands)
