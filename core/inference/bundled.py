"""The checkpoints shipped in ``checkpoints/`` (or ``$GPS_CHECKPOINT_DIR``): listing and matching, no loading."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CHECKPOINT_DIR", "bundled_checkpoints", "bundled_file", "channel_sets"]

CHECKPOINT_DIR = Path(os.environ.get("GPS_CHECKPOINT_DIR") or Path(__file__).resolve().parents[2] / "checkpoints")


def bundled_checkpoints(task: str | None = None, directory: Path | None = None) -> list[dict]:
    """Metadata of the bundled checkpoints (path, file, task, model, metadata), of ``task`` or all."""
    from core.errors import GPSError
    from core.inference.checkpoints import read_metadata

    out = []
    for p in sorted(Path(directory or CHECKPOINT_DIR).glob("*.gps")):
        try:
            meta = read_metadata(p)
        except GPSError:
            continue
        if task is None or meta["task"] == task:
            out.append({"path": str(p), "file": p.name, "task": meta["task"], "model": meta["model"], "metadata": meta})
    return out


def bundled_file(model) -> str:
    """The bundled checkpoint file a loaded model came from (matched by its creation time, name and inputs)."""
    for b in bundled_checkpoints(model.task_name):
        if (
            b["model"] == model.name
            and b["metadata"].get("created") == model.card.get("created")
            and b["metadata"].get("features") == list(model.features)
        ):
            return b["file"]
    return f"{model.task_name}_{model.name}"


def channel_sets(task: str) -> dict[str, tuple[str, ...]]:
    """Bundled checkpoint ("file (inputs)") -> the inputs it needs (for "which models can run on this file")."""
    out = {}
    for b in bundled_checkpoints(task):
        names = tuple(b["metadata"].get("features") or ())
        out[f"{b['file']} ({', '.join(names)})"] = names
    return out
