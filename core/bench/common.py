"""Helpers shared by the benchmark modules."""

from __future__ import annotations


def fmt_value(v) -> str:
    """Markdown cell for a number: 4 significant digits, '—' for a field that does not apply."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
