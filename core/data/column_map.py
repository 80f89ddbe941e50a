"""The CLI's column mapping, the same choices the app's Data page offers: ``--map COLUMN=INPUT[:UNIT]`` (repeatable),
``--h`` and ``--id-column``.

``COLUMN=INPUT[:UNIT]`` maps the file column ``COLUMN`` (or an ``"A - B"`` difference) to the task quantity
``INPUT`` and, with ``:UNIT``, declares the column's unit (e.g. ``SubhaloMassType_4=log_mstar:1e10 Msun/h``);
the older order ``INPUT=COLUMN`` is read too when the left side is a task quantity and the right side is not.
"""

from __future__ import annotations

from typing import Sequence

from core.errors import GPSError

__all__ = ["parse_column_map", "merge_mapping"]


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
