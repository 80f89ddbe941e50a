"""Lenient unit parsing and conversion to a task's canonical units (dex, mag, little-h, scaled masses).

Catalogue files spell units in many ways: ``Msun``, ``1e10 Msun/h``, ``log(Msun)``, ``dex(solMass / yr)``,
``mag``, ``AB``. :func:`parse_unit` turns such a string into an astropy unit (little h as
``astropy.cosmology.units.littleh``, never as "hour" next to a mass or length); :func:`convert_values` maps
numbers in a found unit onto a canonical unit and says in words what it did.
"""

from __future__ import annotations

import re

import numpy as np
from astropy import units as u
from astropy.cosmology import units as cu

__all__ = ["parse_unit", "unit_to_string", "canonical_unit", "convert_values", "UnitConversionError",
           "has_little_h", "is_dex", "is_mag"]


class UnitConversionError(ValueError):
    """The found unit cannot be converted to the canonical one (message says both)."""


def parse_unit(text) -> u.UnitBase | None:
    """Astropy unit for a unit string or unit object; ``None`` for no unit (empty, '-', dimensionless).

    ``h`` next to a mass or length (``Msun/h``, ``ckpc h^-1``) is little h; ``log(X)``/``log10(X)`` mean
    ``dex(X)``; an unparseable string becomes an ``UnrecognizedUnit`` (reported, not guessed).
    """
    if text is None:
        return None
    if isinstance(text, (u.UnitBase, u.FunctionUnitBase)):
        if text == u.dex and not isinstance(text, u.DexUnit):     # bare u.dex -> dex of a pure number
            return u.dex(u.one)
        return None if text == u.dimensionless_unscaled else text
    s = str(text).strip()
    if s in ("", "-", "--", "none", "None", "dimensionless", "1"):
        return None
    s = re.sub(r"\bM_?sun\b|\bM_?sol\b|\bM_?odot\b", "solMass", s)
    s = re.sub(r"\bL_?sun\b", "solLum", s)
    m = re.fullmatch(r"(?:log10|log|lg|dex)\s*\((.*)\)", s)
    if m:
        inner = parse_unit(m.group(1))
        if isinstance(inner, u.UnrecognizedUnit):
            return u.Unit(s, parse_strict="silent")
        return u.dex(inner if inner is not None else u.one)
    if s == "dex":
        return u.dex(u.one)
    if s in ("AB", "ABmag", "mag(AB)"):
        return u.ABmag
    if re.search(r"(?<![A-Za-z_])h(?![A-Za-z_])", s) and re.search(r"pc|solMass", s):
        s_h = re.sub(r"(?<![A-Za-z_])h(?![A-Za-z_])", "littleh", s)
        try:
            with u.add_enabled_units(cu):
                unit = u.Unit(s_h)
            rest = _strip_little_h(unit)[0]
            return unit
        except (ValueError, TypeError):
            pass
    try:
        with u.add_enabled_units(cu):
            unit = u.Unit(s)
    except (ValueError, TypeError):
        return u.Unit(s, parse_strict="silent")
    return None if unit == u.dimensionless_unscaled else unit


def unit_to_string(unit) -> str:
    """Generic astropy string of a unit ('' for none)."""
    if unit is None:
        return ""
    try:
        return unit.to_string()
    except Exception:  # pragma: no cover - exotic unit objects
        return str(unit)


def canonical_unit(text: str):
    """The canonical unit of a task quantity as an astropy unit (plain ``dex`` -> ``dex(1)``; '' -> None)."""
    return parse_unit(text)


def has_little_h(unit) -> bool:
    if unit is None:
        return False
    phys = unit.physical_unit if isinstance(unit, u.FunctionUnitBase) else unit
    return _strip_little_h(phys)[1] != 0


def is_dex(unit) -> bool:
    return isinstance(unit, u.DexUnit)


def is_mag(unit) -> bool:
    return unit is not None and (unit == u.mag or isinstance(unit, u.MagUnit))


def convert_values(values: np.ndarray, found, canonical, h: float | None = None) -> tuple[np.ndarray, str, int]:
    """Convert ``values`` (float array) from unit ``found`` (None = unitless) to ``canonical``.

    Returns ``(converted, description, n_zero_log)`` where ``n_zero_log`` counts values that were exactly 0
    in a linear unit and became NaN when taking log10 (missing, e.g. an SFR below resolution).
    Raises :class:`UnitConversionError` (incompatible units, negative values under a log, little h without
    ``h``). Unitless values are returned unchanged (assumed canonical; the caller checks plausibility).
    """
    values = np.asarray(values, dtype=np.float64)
    if isinstance(found, u.UnrecognizedUnit):
        raise UnitConversionError(f"unit {found.to_string()!r} is not understood; give the unit explicitly "
                                  f"(e.g. units={{column: {unit_to_string(canonical) or 'dimensionless'!r}}})")
    if found is None:
        return values, "none (unitless; assumed " + (unit_to_string(canonical) or "dimensionless") + ")", 0
    if canonical is None:                                   # dimensionless target (e.g. concentration)
        if isinstance(found, u.FunctionUnitBase) or not found.is_equivalent(u.one):
            raise UnitConversionError(f"found unit {unit_to_string(found)!r}, expected a dimensionless number")
        return values * found.to(u.one), f"{unit_to_string(found)} -> dimensionless", 0
    if is_mag(canonical):
        if is_mag(found):
            return values, f"{unit_to_string(found)} (magnitude difference kept as mag)", 0
        raise UnitConversionError(f"found unit {unit_to_string(found)!r}, expected magnitudes (mag)")
    if is_dex(canonical):
        return _to_dex(values, found, canonical, h)
    if isinstance(found, u.FunctionUnitBase):
        raise UnitConversionError(f"found logarithmic unit {unit_to_string(found)!r}, expected "
                                  f"{unit_to_string(canonical)!r}")
    phys, p = _strip_little_h(found)
    factor = _h_factor(p, h, found)
    try:
        scale = phys.to(canonical)
    except u.UnitConversionError:
        raise UnitConversionError(f"found unit {unit_to_string(found)!r}, expected something convertible to "
                                  f"{unit_to_string(canonical)!r}") from None
    desc = f"{unit_to_string(found)} -> {unit_to_string(canonical)} (x{scale * factor:.6g})"
    return values * scale * factor, desc + _h_note(p, h), 0


# -------------------------------------------------------------------------------------------------
def _to_dex(values, found, canonical, h):
    target = canonical.physical_unit
    if isinstance(found, u.DexUnit):
        fphys = found.physical_unit
        if fphys == u.one and target != u.one:
            return values, f"dex given as plain numbers, read as {unit_to_string(canonical)}", 0
        phys, p = _strip_little_h(fphys)
        factor = _h_factor(p, h, found)
        try:
            scale = phys.to(target)
        except u.UnitConversionError:
            raise UnitConversionError(f"found unit {unit_to_string(found)!r}, expected "
                                      f"{unit_to_string(canonical)!r}") from None
        off = np.log10(scale * factor)
        desc = (f"{unit_to_string(found)} -> {unit_to_string(canonical)} ({off:+.4f} dex)" if off != 0
                else unit_to_string(canonical))
        return values + off, desc + _h_note(p, h), 0
    if isinstance(found, u.FunctionUnitBase):
        raise UnitConversionError(f"found unit {unit_to_string(found)!r}, expected {unit_to_string(canonical)!r} "
                                  "or a linear unit convertible to " + (unit_to_string(target) or "1"))
    phys, p = _strip_little_h(found)
    factor = _h_factor(p, h, found)
    try:
        scale = phys.to(target)
    except u.UnitConversionError:
        raise UnitConversionError(f"found unit {unit_to_string(found)!r}, expected {unit_to_string(canonical)!r} "
                                  f"or a linear unit convertible to {unit_to_string(target) or '1'}") from None
    lin = values * scale * factor
    neg = np.flatnonzero(lin < 0)
    if neg.size:
        raise UnitConversionError(f"{neg.size} negative value(s) in a linear unit cannot be put on a log scale "
                                  f"(first at row {neg[0]}: {values[neg[0]]!r})")
    zero = lin == 0
    with np.errstate(divide="ignore"):
        out = np.log10(lin)
    out[zero] = np.nan
    desc = f"log10 of {unit_to_string(found)} (x{scale * factor:.6g}) -> {unit_to_string(canonical)}"
    if zero.any():
        desc += f"; {int(zero.sum())} zero value(s) -> NaN (missing)"
    return out, desc + _h_note(p, h), int(zero.sum())


def _strip_little_h(unit):
    """(unit without littleh, power of littleh)."""
    if unit is None or isinstance(unit, u.FunctionUnitBase):
        return unit, 0
    try:
        bases, powers = unit.bases, unit.powers
    except AttributeError:  # pragma: no cover
        return unit, 0
    p = 0
    rest = u.Unit(unit.scale) if hasattr(unit, "scale") else u.one
    for b, pw in zip(bases, powers):
        if b == cu.littleh:
            p += pw
        else:
            rest = rest * b ** pw
    return rest, p


def _h_factor(p, h, found) -> float:
    if p == 0:
        return 1.0
    if h is None:
        raise UnitConversionError(f"unit {unit_to_string(found)!r} contains little h; state the Hubble parameter "
                                  "(h=0.6774 for IllustrisTNG/Planck15, h=0.7 ...) to convert")
    return float(h) ** p


def _h_note(p, h) -> str:
    return f" with h={h}" if p else ""
