"""Model cards: a human-readable markdown summary of a checkpoint's metadata (shown in the app, written by train)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["model_card_markdown"]

_SCORES = ("rmse", "rmse_ratio", "mae", "r2", "bias", "coverage_68", "coverage_95", "pit_ks_p", "crps",
           "kl_to_exact", "w1_to_exact")


def model_card_markdown(meta: dict[str, Any], command: str | None = None) -> str:
    """Markdown for a checkpoint's metadata: task, model, inputs with units, data provenance, metrics, history."""
    prov = meta.get("provenance", {}) or {}
    hist = meta.get("history", {}) or {}
    lines = [f"# {meta.get('task')} / {meta.get('model')}", "",
             f"- created: {meta.get('created', '?')} with Galaxy Posterior Studio {meta.get('package_version', '?')}"
             f" (checkpoint format {meta.get('format_version')})",
             f"- trained on: {meta.get('device', '?')}"]
    if command or meta.get("notes"):
        lines.append(f"- reproduce: `{command or meta.get('notes')}`")
    lines += ["", "## Inputs", "", "| feature | unit | description |", "|---|---|---|"]
    for f in meta.get("input_schema", []):
        lines.append(f"| {f['name']} | {f.get('unit') or '—'} | {f.get('description', '')} |")
    lines += ["", f"Target(s): {', '.join(meta.get('targets', []))}", "", "## Training data", ""]
    if prov.get("source") == "simulator":
        lines.append(f"Simulated by `{prov.get('simulator')}` (seed {prov.get('seed')}, {prov.get('n_objects')} "
                     f"objects; fingerprint {prov.get('fingerprint')}). Predictions on real data are extrapolations "
                     "from this simulator: check the domain warnings.")
        cfg = prov.get("config")
        if cfg:
            lines += ["", "<details><summary>simulator configuration</summary>", "", "```json",
                      json.dumps(cfg, indent=1, sort_keys=True), "```", "</details>"]
    else:
        lines.append(f"File `{prov.get('file', prov.get('source_file', '?'))}` (sha256 {prov.get('sha256', '?')}, "
                     f"{prov.get('n_objects', '?')} objects).")
    tm = meta.get("test_metrics") or {}
    if tm:
        lines += ["", f"## Held-out test metrics (n = {tm.get('n_test', tm.get('n', '?'))})", "",
                  "| metric | value |", "|---|---|"]
        for k in _SCORES:
            if tm.get(k) is not None:
                lines.append(f"| {k} | {tm[k]:.4g} |")
    if hist:
        lines += ["", "## Training", "",
                  f"{len(hist.get('epochs', []))} epochs, best epoch {hist.get('best_epoch', '?')}, "
                  f"stopped: {hist.get('stopped_reason', '?')}, {hist.get('seconds', 0):.0f} s"]
    lines += ["", "## Configuration", "", "```json", json.dumps(meta.get("config", {}), indent=1, sort_keys=True),
              "```", ""]
    return "\n".join(lines)
