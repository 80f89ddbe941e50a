"""Model cards: a human-readable markdown summary of a checkpoint's metadata (shown in the app, written by train)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["model_card_markdown", "input_rows"]

_SCORES = ("rmse", "rmse_ratio", "mae", "r2", "bias", "coverage_68", "coverage_95", "pit_ks_p", "crps",
           "kl_to_exact", "w1_to_exact",
           # per-pixel scores of map posteriors (galaxy pixels only)
           "n_pixels", "mae_pixel", "mae_pixel_mean", "rmse_pixel", "bias_pixel", "coverage_68_pixel",
           "coverage_95_pixel", "width_68", "regret_reference",
           # per-voxel scores of galaxy-field posteriors (dm_to_galaxies)
           "precision", "recall", "f1", "mcc", "pr_auc", "poisson_deviance", "total_count_error",
           "pk_ratio_mean_abs_dev", "r_k_mean")
_TARGET_SCORES = ("scatter_dex", "bias_dex", "rmse", "coverage_68", "coverage_95", "width_68", "pit_ks_p")


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
    lines += ["", "## Inputs", "", "Each input means what the training simulator produced (definition); a file column "
              "with another definition is not the same input.", "",
              "| feature | unit | description | definition |", "|---|---|---|---|"]
    for r in input_rows(meta):
        lines.append(f"| {r['name']} | {r['unit'] or '—'} | {r['description']} | {r['definition'] or '—'} |")
    dist = (meta.get("input_distribution") or {}).get("features") or {}
    if dist:
        lv = list((meta.get("input_distribution") or {}).get("levels") or [])
        i0, i5, i9 = (lv.index(x) if x in lv else None for x in (0.005, 0.5, 0.995))
        if None not in (i0, i5, i9):
            lines += ["", "Training distribution of the inputs (uploads far from it are flagged per column): "
                      + "; ".join(f"{k} median {v['quantiles'][i5]:.3g} [0.5-99.5%: {v['quantiles'][i0]:.3g}, "
                                  f"{v['quantiles'][i9]:.3g}]" for k, v in dist.items())]
    else:
        lines += ["", "No training distribution stored: uploads are compared with a simulated sample of the task's "
                  "default simulator."]
    lines += ["", f"Target(s): {', '.join(meta.get('targets', []))}", "", "## Training data", ""]
    if prov.get("source") == "simulator":
        gal = (f"{prov['n_galaxies']} simulated galaxies x {prov.get('n_proj', '?')} projections, split by galaxy; "
               if prov.get("n_galaxies") else "")
        lines.append(f"Simulated by `{prov.get('simulator')}` (seed {prov.get('seed')}; {gal}{prov.get('n_objects')} "
                     f"training objects; fingerprint {prov.get('fingerprint')}). Predictions on real data are "
                     "extrapolations from this simulator: check the domain warnings.")
        cfg = prov.get("config")
        if cfg:
            lines += ["", "<details><summary>simulator configuration</summary>", "", "```json",
                      json.dumps(cfg, indent=1, sort_keys=True), "```", "</details>"]
    else:
        lines.append(f"File `{prov.get('file', prov.get('source_file', '?'))}` (sha256 {prov.get('sha256', '?')}, "
                     f"{prov.get('n_objects', '?')} objects).")
    if prov.get("note"):                       # fine-tuned from <checkpoint> on <file> / trained from scratch on
        lines += ["", f"Provenance: {prov['note']}."]
    if hist.get("prior"):                      # trained on a proposal set, posteriors under the physical prior
        lines += ["", f"Prior: {hist['prior']}."]
    tm = meta.get("test_metrics") or {}
    if tm:
        lines += ["", f"## Held-out test metrics (n = {tm.get('n_test', tm.get('n', '?'))})", ""]
        if not tm.get("by_target"):
            lines += ["| metric | value |", "|---|---|"]
        by = tm.get("by_target") or {}
        for k in () if by else _SCORES:        # several targets: the per-target table below says it all
            if isinstance(tm.get(k), (int, float)):
                lines.append(f"| {k} | {tm[k]:.4g} |")
        if by:
            cols = [c for c in _TARGET_SCORES if any(isinstance(r.get(c), (int, float)) for r in by.values())]
            lines += ["Per target (scatter_dex = std of the posterior-mean residuals):", "",
                      "| target | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
            order = [t for t in meta.get("targets", []) if t in by] + [t for t in by if t not in meta.get("targets", [])]
            for t, row in ((t, by[t]) for t in order):
                lines.append(f"| {t} | " + " | ".join(f"{row[c]:.4g}" if isinstance(row.get(c), (int, float))
                                                      else "—" for c in cols) + " |")
        before = tm.get("before_finetune") or {}
        if before:
            lines += ["", "Same held-out rows, the checkpoint before fine-tuning: "
                      + ", ".join(f"{k} {before[k]:.4g}" for k in ("rmse", "bias", "coverage_68", "crps")
                                  if isinstance(before.get(k), (int, float))) + "."]
    if hist:
        lines += ["", "## Training", ""] + _history_lines(hist)
    lines += ["", "## Configuration", "", "```json", json.dumps(meta.get("config", {}), indent=1, sort_keys=True),
              "```", ""]
    return "\n".join(lines)


def input_rows(meta: dict[str, Any]) -> list[dict[str, str]]:
    """One row per checkpoint input: name, unit, description and definition (the one stored in the checkpoint,
    else the task's current one for older checkpoints), with the definition's note in ``note``."""
    stored = {f.get("name"): f for f in meta.get("input_schema", []) or []}
    names = list(meta.get("features") or stored)
    spec = _task_spec(meta.get("task"))
    rows = []
    for name in names:
        f = stored.get(name, {})
        d = f.get("definition")
        if d is None and spec is not None and name in spec.input_names:
            q = spec.input(name)
            d = q.definition.to_dict() if q.definition is not None else None
            f = {"unit": q.unit, "description": q.description, **f}
        d = d or {}
        label = {"band_system": "bands", "gas_phase": "gas phase", "imf": "IMF"}
        text = "; ".join(f"{label.get(k, k)}: {v}" for k, v in d.items() if k != "note")
        rows.append({"name": str(name), "unit": str(f.get("unit") or ""), "description": str(f.get("description", "")),
                     "definition": text, "note": str(d.get("note", ""))})
    return rows


def _task_spec(task):
    try:
        from core.tasks import TASKS

        return TASKS.get(task) if task in TASKS else None
    except Exception:  # noqa: BLE001 - a card renders without the registry
        return None


def _history_lines(hist: dict[str, Any]) -> list[str]:
    """One line per training stage: epoch histories (two-stage models keep one per stage: the cVAE and its latent
    flow, or the photo-z VAE's ``stages``), step-based loss logs (the field models: a list of mean losses per
    reporting interval, ``train_seconds``), or the values a fitted baseline chose."""
    staged = hist.get("stages") if isinstance(hist.get("stages"), dict) else hist
    order = ("cvae", "flow", "spectral", "photometry", "parameters")      # training order of the known stages
    stages = sorted(((k, staged[k]) for k in staged if isinstance(staged[k], dict) and "epochs" in staged[k]),
                    key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
    if not stages and "epochs" in hist:
        stages = [("", hist)]
    out = []
    for name, h in stages:
        label = f"{name}: " if name else ""
        out.append(f"- {label}{len(h.get('epochs', []))} epochs, best epoch {h.get('best_epoch', '?')}, "
                   f"stopped: {h.get('stopped_reason', '?')}, {float(h.get('seconds', 0) or 0):.0f} s")
    if stages:
        if hist.get("n_train") is not None and stages[0][0] and staged is hist:
            out.append(f"- {hist.get('n_train')} training maps, {hist.get('n_val', 0)} validation maps, "
                       f"{hist.get('dropped_all_masked', 0)} all-masked maps dropped")
        return out
    for k, v in hist.items():                                  # step-based training: loss logs
        if isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v):
            out.append(f"- {k}: {len(v)} loss reports, first {v[0]:.4g}, last {v[-1]:.4g}")
    if "train_seconds" in hist:
        out.append(f"- trained in {float(hist['train_seconds']):.0f} s on {hist.get('device', '?')}")
    fitted = [f"{k} {v:.4g}" for k, v in hist.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
              and k != "train_seconds"]
    if fitted:
        out.append("- fitted: " + ", ".join(fitted))
    return out or ["- no training history recorded"]
