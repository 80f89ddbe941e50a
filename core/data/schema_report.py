"""The validation report of a table mapped onto a task: per-feature units, conversions, counts, problems."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FeatureReport", "ValidationReport"]


@dataclass
class FeatureReport:
    """One mapped task quantity: where it came from, which unit was found/used, what was done, what is in it.

    ``n_nan`` counts missing values after conversion (NaN/empty cells, sentinels, log10 of 0);
    ``n_outside_domain`` counts finite values outside the task quantity's ``domain`` (flagged, not removed);
    ``min``/``max`` are over finite converted values (None if there are none).
    """

    name: str
    column: str
    role: str = "input"                 # "input" | "target"
    unit_found: str = ""
    unit_used: str = ""
    conversion: str = ""
    n: int = 0
    n_nan: int = 0
    n_inf: int = 0
    n_outside_domain: int = 0
    n_sentinel: int = 0                 # sentinel values (-99, 9999 ...) read as missing
    n_refused: int = 0                  # rows refused for an implausible value of this quantity
    min: float | None = None
    max: float | None = None
    domain: tuple[float, float] | None = None
    ood: str = ""                       # out-of-distribution note vs the training data ("" = inside / not checked)


@dataclass
class ValidationReport:
    """Everything the Data page shows about a mapped table; ``ok`` is False when there are errors."""

    task: str
    source: str
    n_rows: int = 0
    features: list[FeatureReport] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)        # task inputs not mapped (simply absent)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refused_rows: dict[int, list[str]] = field(default_factory=dict)   # row -> reasons (written as masked)
    ood: list[dict] = field(default_factory=list)        # per-input checks vs the training data (core.data.ood)
    ood_reference: str = ""                              # what the inputs were compared with

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def messages(self) -> list[str]:
        """Errors then warnings, each prefixed with its level."""
        return [f"error: {m}" for m in self.errors] + [f"warning: {m}" for m in self.warnings]

    def add_ood(self, entries: list[dict], reference_label: str) -> list[str]:
        """Record per-input out-of-distribution checks (:func:`core.data.ood.ood_check`): a warning per flagged
        column (returned too) and a short note in that column's row. Replaces an earlier check."""
        from core.data.ood import ood_messages

        old = {m for e in self.ood for m in ood_messages([e], self.source, self.ood_reference)}
        self.warnings = [w for w in self.warnings if w not in old]
        self.ood, self.ood_reference = list(entries), reference_label
        by = {e["name"]: e for e in entries}
        for f in self.features:
            e = by.get(f.name)
            f.ood = "" if e is None or not e["flagged"] else (
                f"median {e['shift_sd']:.1f} sd off, {100 * e['frac_outside']:.0f}% outside training range")
        msgs = ood_messages(entries, self.source, reference_label)
        self.warnings.extend(msgs)
        return msgs

    def rows(self) -> list[dict[str, Any]]:
        """One dict per task quantity (mapped ones first, then the missing inputs), for a UI table."""
        out = []
        for f in self.features:
            d = asdict(f)
            d["domain"] = None if f.domain is None else f"[{f.domain[0]}, {f.domain[1]}]"
            d["status"] = ("error" if f.n_inf else f"{f.n_refused} row(s) refused" if f.n_refused
                           else "outside the training distribution" if f.ood else "ok")
            out.append(d)
        for name in self.missing:
            out.append({"name": name, "column": None, "role": "input", "unit_found": "", "unit_used": "",
                        "conversion": "", "n": 0, "n_nan": self.n_rows, "n_inf": 0, "n_outside_domain": 0,
                        "n_sentinel": 0, "n_refused": 0,
                        "min": None, "max": None, "domain": None, "ood": "", "status": "missing (not used)"})
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (checkpoint / export provenance)."""
        return {"task": self.task, "source": self.source, "n_rows": self.n_rows, "ok": self.ok,
                "features": self.rows(), "missing": list(self.missing), "errors": list(self.errors),
                "warnings": list(self.warnings), "n_refused_rows": len(self.refused_rows),
                "ood": list(self.ood), "ood_reference": self.ood_reference}

    def summary(self) -> str:
        """A few human-readable lines."""
        used = ", ".join(f"{f.name}<-{f.column}" for f in self.features) or "none"
        lines = [f"{self.source}: {self.n_rows} rows for task {self.task}; mapped: {used}"]
        if self.missing:
            lines.append("not available: " + ", ".join(self.missing))
        lines += self.messages
        return "\n".join(lines)
