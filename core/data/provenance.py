"""The one provenance record written with every posterior (CLI predict, map export, the app's Export page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["result_provenance"]


def result_provenance(
    model,
    *,
    checkpoint: str,
    data=None,
    prepared=None,
    input_path: str | None = None,
    input_name: str | None = None,
    n_samples: int | None = None,
    seed: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """Task, model, checkpoint (label and creation time), inputs, input file (name, sha256, format), reader and
    prepare notes, draws, seed, training data and package version; ``extra`` keys are added (e.g. ``mode``).

    ``data``: the data as read; ``prepared``: as the model ran on them (its extra notes are the prepare notes);
    ``input_path``: the file read (hashed); ``input_name``: a display name when there is no path (an upload). Several
    files read together (a list, a folder or a glob) are named and hashed as the reader recorded them (``meta``).
    """
    meta = dict(getattr(data, "meta", None) or {})
    sha = ""
    if input_path is not None and not (isinstance(input_path, (str, Path)) and Path(input_path).is_file()):
        input_name, input_path = input_name or meta.get("file", ""), None
    if input_path is not None:
        from core.data.catalog import file_sha256

        sha = file_sha256(input_path)
    reader_notes = [str(s) for s in meta.get("notes", [])]
    prep_notes = (
        [str(s) for s in (getattr(prepared, "meta", None) or {}).get("notes", [])][len(reader_notes) :]
        if prepared is not None
        else []
    )
    card = getattr(model, "card", None) or {}
    prov = {
        "task": model.task_name,
        "model": model.name,
        "checkpoint": checkpoint,
        "checkpoint_created": card.get("created", ""),
        "features": list(model.features),
        "input_file": Path(input_path).name if input_path is not None else (input_name or meta.get("file", "")),
        "input_sha256": sha or meta.get("sha256", ""),
        "input_format": meta.get("format", ""),
        "n_samples": n_samples,
        "seed": seed,
        "reader_notes": reader_notes,
        "prepare_notes": prep_notes,
        "training_data": card.get("provenance", {}).get("simulator", "file"),
        "package_version": card.get("package_version", ""),
    }
    prov.update(extra)
    return prov
