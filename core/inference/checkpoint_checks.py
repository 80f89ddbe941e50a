"""Checks of an uploaded checkpoint before anything is built: metadata.json schema, zip members, tensors, task.

Used by :mod:`core.inference.checkpoints`; every refusal is a :class:`GPSError` naming the checkpoint and the member
(``metadata.json:<key>``, ``weights.safetensors:<tensor>``, ``text/<name>.txt``) with what was expected and found.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import GPSError

__all__ = ["METADATA_SCHEMA", "validate_metadata", "check_members", "check_tensors", "check_model_state",
           "check_task_matches", "data_task_of", "MAX_MEMBER_BYTES", "MAX_RATIO"]

#: metadata.json schema: key -> (required, JSON type check, description of what is expected)
_STR, _LIST_STR = (lambda v: isinstance(v, str)), (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v))
_DICT = lambda v: isinstance(v, dict)  # noqa: E731
METADATA_SCHEMA: dict[str, tuple[bool, Any, str]] = {
    "format": (True, _STR, "a string"),
    "format_version": (True, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "task": (True, _STR, "a task name (string)"),
    "model": (True, _STR, "a model name (string)"),
    "config": (True, _DICT, "an object of settings"),
    "features": (True, lambda v: _LIST_STR(v) and len(v) > 0, "a non-empty list of input names (strings)"),
    "targets": (True, lambda v: _LIST_STR(v) and len(v) > 0, "a non-empty list of target names (strings)"),
    "units": (False, lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
              "an object name -> unit string"),
    "state": (False, _DICT, "an object"),
    "text_members": (False, _LIST_STR, "a list of member names (strings)"),
    "provenance": (False, _DICT, "an object"),
    "history": (False, lambda v: isinstance(v, (dict, list)), "an object"),
    "test_metrics": (False, _DICT, "an object"),
    "input_schema": (False, lambda v: isinstance(v, list), "a list"),
    "weights_sha256": (False, _STR, "a hex string"),
    "notes": (False, _STR, "a string"),
}
MAX_MEMBER_BYTES = 256 * 1024 * 1024     # declared uncompressed size of one member
MAX_RATIO = 200                          # uncompressed / compressed size of one member (zip bombs)


def validate_metadata(meta: dict, label: str) -> None:
    """Types and required keys of metadata.json, checked before anything is built; names the bad key."""
    from core.tasks import TASKS

    for key, (required, ok, what) in METADATA_SCHEMA.items():
        if key not in meta:
            if required:
                raise GPSError("checkpoint metadata is incomplete", source=label, field=f"metadata.json:{key}",
                               expected=what, found="missing")
            continue
        if not ok(meta[key]):
            raise GPSError("checkpoint metadata has the wrong type", source=label, field=f"metadata.json:{key}",
                           expected=what, found=f"{type(meta[key]).__name__} {json.dumps(meta[key])[:60]}")
    if meta["task"] not in TASKS:
        raise GPSError("checkpoint is for an unknown task", source=label, field="metadata.json:task",
                       expected=" | ".join(TASKS.names()), found=meta["task"])
    task = TASKS.get(meta["task"])
    for key, known in (("features", task.input_names), ("targets", task.target_names)):
        vals = meta[key]
        bad = [v for v in vals if v not in known]
        if bad or len(set(vals)) != len(vals):
            raise GPSError(f"checkpoint {key} do not belong to task {meta['task']!r}", source=label,
                           field=f"metadata.json:{key}", expected=f"distinct names from {', '.join(known)}",
                           found=", ".join(map(str, vals)))


def check_members(zf: zipfile.ZipFile, infos, label: str) -> None:
    """Refuse member names that would leave the archive's folder and members whose declared size is a bomb."""
    for i in infos:
        n = i.filename
        if n.startswith(("/", "\\")) or ".." in n.replace("\\", "/").split("/") or ":" in n:
            zf.close()
            raise GPSError("unsafe member name in checkpoint archive (path traversal)", source=label, field=n,
                           expected="plain relative names (metadata.json, weights.safetensors, text/*.txt)",
                           found=n)
        if i.file_size > MAX_MEMBER_BYTES or (i.file_size > (1 << 20) and
                                              i.file_size > MAX_RATIO * max(i.compress_size, 1)):
            zf.close()
            raise GPSError("checkpoint member inflates too much (zip bomb?)", source=label, field=n,
                           expected=f"<= {MAX_MEMBER_BYTES} bytes and a compression ratio <= {MAX_RATIO}",
                           found=f"{i.file_size} bytes from {i.compress_size}")


def check_tensors(tensors: dict, meta: dict, label: str) -> None:
    """Non-finite weights, zero/negative scales and normalisation vectors that do not fit the features."""
    n_feat = len(meta["features"])
    for k, v in tensors.items():
        a = np.asarray(v)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise GPSError("checkpoint weights are not finite", source=label, field=f"weights.safetensors:{k}",
                           expected="finite numbers", found=f"{int((~np.isfinite(a)).sum())} NaN/inf of {a.size}")
        leaf = k.rsplit(".", 1)[-1]
        if leaf in ("x_mean", "x_std") and a.shape != (n_feat,):
            raise GPSError("normalisation vector does not fit the features", source=label,
                           field=f"weights.safetensors:{k}", expected=f"shape ({n_feat},) for {n_feat} features",
                           found=f"shape {a.shape}")
        if (leaf.endswith("_std") or leaf in ("scale", "x_scale", "y_scale")) and a.dtype.kind == "f" and \
                (a <= 0).any():
            raise GPSError("zero or negative scale in checkpoint weights", source=label,
                           field=f"weights.safetensors:{k}", expected="scales > 0", found=f"min {a.min():.3g}")
    for k, v in (meta.get("state") or {}).items():
        if k.endswith("_std") or k.endswith("_scale"):
            vals = np.asarray(v, dtype=object).ravel()
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) and x > 0
                       for x in vals):
                raise GPSError("zero, negative or non-numeric scale in checkpoint metadata", source=label,
                               field=f"metadata.json:state.{k}", expected="finite numbers > 0",
                               found=json.dumps(v)[:60])
        if k.endswith("_mean"):
            vals = np.asarray(v, dtype=object).ravel()
            if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in vals):
                raise GPSError("non-numeric normalisation in checkpoint metadata", source=label,
                               field=f"metadata.json:state.{k}", expected="finite numbers",
                               found=json.dumps(v)[:60])


def check_model_state(model, label: str) -> None:
    """After ``set_state``: normalisation attributes of the built model are finite and scales positive."""
    for attr in ("x_std", "y_std"):
        v = getattr(model, attr, None)
        if v is None:
            continue
        try:
            a = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            raise GPSError("non-numeric scale in checkpoint", source=label, field=attr, expected="numbers > 0",
                           found=str(v)[:40]) from None
        if a.size and (not np.isfinite(a).all() or (a <= 0).any()):
            raise GPSError("zero, negative or non-finite scale in checkpoint", source=label, field=attr,
                           expected="finite numbers > 0", found=np.array2string(a.ravel()[:8], precision=3))


def check_task_matches(model, task: str | None, source: str | None = None, data: str | None = None) -> None:
    """Refuse running a checkpoint of another task on data of ``task`` (predict / evaluate); names both files."""
    if task is not None and model.task_name != task:
        what = f" ({Path(str(data)).name} is {task} data)" if data else ""
        raise GPSError(f"checkpoint is for another task{what}", source=source or model.card.get("file"),
                       field="task", expected=task, found=model.task_name)


def data_task_of(path: str) -> str | None:
    """The task kind a data file belongs to from its format: a catalogue table -> "halo_mass"; None if unknown."""
    from core.data.io.registry import identify_format

    try:
        identify_format(path, kind="table")
    except GPSError:
        return None
    try:
        identify_format(path, kind="maps")
        return None                         # both (e.g. an HDF5 file): undecided
    except GPSError:
        return "halo_mass"
