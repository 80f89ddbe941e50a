"""Checkpoints: one self-describing file a user can download and upload, never a pickle.

A checkpoint is a zip archive (``.gps``) holding

* ``metadata.json`` — format name and version, package version, task, model name + config, input schema with
  units, normalization and other JSON state, training-data provenance, training history, test metrics, device,
  library versions, creation time;
* ``weights.safetensors`` — all numeric arrays of the model (torch weights, grids, ...);
* ``text/<key>.txt`` — long text state in the library's own format (e.g. LightGBM model text);
* ``typicality.safetensors`` (optional) — a standardised sample of the training inputs for the per-object
  typicality score (:mod:`core.metrics.typicality`), described in ``metadata.json:typicality``.

Loading goes through the model registry; nothing is unpickled. A pickle, a ``torch.save`` file, an unknown format
or a newer format version is refused with a clear message; old versions migrate through :data:`MIGRATIONS`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import platform
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.errors import GPSError
from core.inference.checkpoint_checks import (METADATA_SCHEMA, check_members, check_model_state, check_task_matches,
                                              check_tensors, data_task_of, validate_metadata)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "save_checkpoint", "checkpoint_bytes", "load_checkpoint",
           "read_metadata", "MIGRATIONS", "validate_metadata", "check_task_matches", "data_task_of",
           "METADATA_SCHEMA"]

FORMAT_NAME = "galaxy-posterior-studio/checkpoint"
FORMAT_VERSION = 1
_TEXT_MIN = 1024          # JSON-state strings longer than this are stored as separate text members
MAX_CHECKPOINT_BYTES = 512 * 1024 * 1024
TYPICALITY_MEMBER = "typicality.safetensors"   # optional: reference sample of the training inputs

#: version -> function(metadata) -> metadata of version + 1
MIGRATIONS: dict[int, Any] = {}


def checkpoint_bytes(model, *, provenance: dict | None = None, test_metrics: dict | None = None,
                     notes: str = "") -> bytes:
    """Serialize a trained :class:`core.models.base.PosteriorModel` to checkpoint bytes."""
    from safetensors.numpy import save as st_save

    import core
    from core.tasks import get_task

    tensors, extra = model.get_state()
    tensors = {k: np.ascontiguousarray(np.asarray(v)) for k, v in tensors.items()}
    extra = dict(extra)
    texts = {k: v for k, v in extra.items() if isinstance(v, str) and len(v) > _TEXT_MIN}
    for k in texts:
        extra.pop(k)
    weights = st_save(tensors) if tensors else st_save({"__empty__": np.zeros(1, np.float32)})
    task = get_task(model.task_name)
    schema = []
    for f in model.features:
        q = task.input(f)
        schema.append({"name": f, "unit": q.unit, "label": q.label, "description": q.description})
        if getattr(q, "definition", None) is not None:
            schema[-1]["definition"] = q.definition.to_dict()
    card = dict(getattr(model, "card", {}) or {})
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": core.__version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "task": model.task_name,
        "model": model.name,
        "config": model.config.to_dict(),
        "features": list(model.features),
        "targets": list(model.targets),
        "units": model.units,
        "input_schema": schema,
        "state": extra,
        "text_members": sorted(texts),
        "provenance": provenance if provenance is not None else card.get("provenance", {}),
        "history": _jsonable(model.history),
        "test_metrics": _jsonable(test_metrics if test_metrics is not None else card.get("test_metrics", {})),
        "device": card.get("device", model.history.get("device", "cpu") if isinstance(model.history, dict) else "cpu"),
        "notes": notes or card.get("notes", ""),
        "versions": _versions(),
        "weights_sha256": hashlib.sha256(weights).hexdigest(),
    }
    if card.get("input_distribution"):  # per-input training quantiles (core.data.ood), absent in older files
        meta["input_distribution"] = card["input_distribution"]
    ref = getattr(model, "typicality", None)          # reference sample of the training inputs (typicality score)
    ref_bytes = None
    if ref is not None:
        ref_bytes = st_save({"reference": np.ascontiguousarray(ref.z, dtype=np.float32)})
        meta["typicality"] = {**ref.meta(), "sha256": hashlib.sha256(ref_bytes).hexdigest()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(_jsonable(meta), indent=1, sort_keys=True))
        zf.writestr("weights.safetensors", weights)
        if ref_bytes is not None:
            zf.writestr(TYPICALITY_MEMBER, ref_bytes)
        for k, v in texts.items():
            zf.writestr(f"text/{k}.txt", v)
    return buf.getvalue()


def save_checkpoint(model, path: str | os.PathLike, **kw: Any) -> Path:
    """Write a checkpoint file atomically (a partial write never replaces a good file)."""
    path = Path(path)
    data = checkpoint_bytes(model, **kw)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


def read_metadata(source: str | os.PathLike | bytes | BinaryIO, name: str | None = None) -> dict:
    """Validated metadata of a checkpoint without building the model (for model cards)."""
    zf, label = _open(source, name)
    with zf:
        return _metadata(zf, label)


def load_checkpoint(source: str | os.PathLike | bytes | BinaryIO, *, expected_task: str | None = None,
                    name: str | None = None):
    """Load a checkpoint into a model object (``model.card`` holds the metadata).

    ``source`` is a path, raw bytes or a binary file object (an upload); ``name`` labels it in error messages.
    """
    from safetensors.numpy import load as st_load

    from core.models.base import build_model

    zf, label = _open(source, name)
    with zf:
        meta = _metadata(zf, label)
        if expected_task is not None and meta["task"] != expected_task:
            raise GPSError("checkpoint is for another task", source=label, field="task",
                           expected=expected_task, found=meta["task"])
        try:
            raw = zf.read("weights.safetensors")
        except KeyError:
            raise GPSError("checkpoint has no weights", source=label, field="weights.safetensors") from None
        if hashlib.sha256(raw).hexdigest() != meta.get("weights_sha256"):
            raise GPSError("weights do not match their checksum (corrupted or edited file)", source=label,
                           field="weights.safetensors")
        try:
            tensors = st_load(raw)
        except Exception as e:
            raise GPSError(f"unreadable safetensors weights: {e}", source=label, field="weights.safetensors") from None
        tensors.pop("__empty__", None)
        check_tensors(tensors, meta, label)
        reference = _typicality(zf, meta, label)
        extra = dict(meta.get("state", {}))
        for k in meta.get("text_members", []):
            try:
                extra[k] = zf.read(f"text/{k}.txt").decode("utf-8")
            except KeyError:
                raise GPSError("checkpoint is missing a text member", source=label, field=f"text/{k}.txt") from None
            except UnicodeDecodeError as e:
                raise GPSError("text member is not UTF-8 text", source=label, field=f"text/{k}.txt",
                               expected="UTF-8 text", found=f"binary data ({e.reason} at byte {e.start})") from None
    try:
        model = build_model(meta["task"], meta["model"], meta["config"], meta["features"], meta["targets"],
                            meta.get("units"))
    except GPSError as e:
        raise GPSError(f"cannot rebuild the model: {e}", source=label, field="config") from None
    except Exception as e:  # noqa: BLE001 - settings of the wrong type in metadata.json:config
        raise GPSError(f"cannot rebuild the model: {type(e).__name__}: {e}", source=label,
                       field="metadata.json:config") from None
    try:
        model.set_state(tensors, extra)
    except GPSError as e:  # a model's own refusal: name the file unless it already names one
        if e.source:
            raise
        raise GPSError(e.message, source=label, field=e.field, expected=e.expected, found=e.found) from None
    except Exception as e:  # shape mismatch, missing keys
        raise GPSError(f"weights do not fit the model described by the metadata: {e}", source=label,
                       field="weights.safetensors") from None
    check_model_state(model, label)
    if reference is not None:
        model.typicality = reference
    model.history = meta.get("history", {})
    model.card = meta
    return model


# ---------------------------------------------------------------------------------------------------
def _typicality(zf: zipfile.ZipFile, meta: dict, label: str):
    """The stored reference sample of the training inputs (:mod:`core.metrics.typicality`), or None."""
    info = meta.get("typicality")
    if not isinstance(info, dict):
        return None
    from safetensors.numpy import load as st_load

    from core.metrics.typicality import Reference

    field = f"{TYPICALITY_MEMBER} / metadata.json:typicality"
    try:
        raw = zf.read(TYPICALITY_MEMBER)
    except KeyError:
        raise GPSError("checkpoint metadata names a typicality reference the archive lacks", source=label,
                       field=TYPICALITY_MEMBER) from None
    if hashlib.sha256(raw).hexdigest() != info.get("sha256"):
        raise GPSError("typicality reference does not match its checksum (corrupted or edited file)",
                       source=label, field=TYPICALITY_MEMBER)
    try:
        ref = Reference.from_stored(st_load(raw)["reference"], info)
    except Exception as e:  # noqa: BLE001 - wrong shape, keys or types
        raise GPSError(f"unreadable typicality reference: {type(e).__name__}: {e}", source=label,
                       field=field) from None
    if ref.features != tuple(meta["features"]) or not (np.isfinite(ref.scale).all() and (ref.scale > 0).all()):
        raise GPSError("typicality reference does not fit the model's features", source=label, field=field,
                       expected=", ".join(meta["features"]), found=", ".join(ref.features))
    return ref


def _open(source, name: str | None):
    if isinstance(source, (bytes, bytearray)):
        data, label = bytes(source), name or "uploaded checkpoint"
    elif hasattr(source, "read"):
        data, label = source.read(), name or getattr(source, "name", "uploaded checkpoint")
    else:
        p = Path(source)
        label = name or str(p)
        if not p.exists():
            raise GPSError("checkpoint file not found", source=label)
        if p.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise GPSError("checkpoint is too large", source=label, expected=f"<= {MAX_CHECKPOINT_BYTES} bytes",
                           found=f"{p.stat().st_size} bytes")
        data = p.read_bytes()
    if len(data) == 0:
        raise GPSError("checkpoint file is empty", source=label)
    if data[:1] == b"\x80" or data[:2] in (b"(d", b"(l", b"}q", b"]q"):
        raise GPSError("this is a Python pickle; pickles can execute code and are never loaded", source=label,
                       expected=f"a {FORMAT_NAME} zip archive (metadata.json + weights.safetensors)",
                       found="pickle data")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise GPSError("not a Galaxy Posterior Studio checkpoint", source=label,
                       expected="a zip archive with metadata.json and weights.safetensors",
                       found=f"first bytes {data[:8]!r}")
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise GPSError("damaged checkpoint archive", source=label, expected="a complete zip archive",
                       found=f"{type(e).__name__}: {e}") from None
    check_members(zf, infos, label)
    names = set(zf.namelist())
    if any(n.endswith(".pkl") or n.endswith("data.pkl") for n in names):
        zf.close()
        raise GPSError("this looks like a torch.save / pickle archive; it is never unpickled", source=label,
                       expected=f"a {FORMAT_NAME} archive", found="a member ending in .pkl")
    return zf, label


def _metadata(zf: zipfile.ZipFile, label: str) -> dict:
    try:
        meta = json.loads(zf.read("metadata.json").decode("utf-8"))
        if not isinstance(meta, dict):
            raise GPSError("metadata.json is not a JSON object", source=label, field="metadata.json",
                           expected="an object {...}", found=type(meta).__name__)
    except KeyError:
        raise GPSError("not a Galaxy Posterior Studio checkpoint", source=label, field="metadata.json",
                       expected="metadata.json in the archive", found=", ".join(sorted(zf.namelist())[:5])) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GPSError(f"metadata.json is not valid JSON: {e}", source=label, field="metadata.json") from None
    if meta.get("format") != FORMAT_NAME:
        raise GPSError("unknown checkpoint format", source=label, field="metadata.json:format",
                       expected=FORMAT_NAME, found=repr(meta.get("format")))
    version = meta.get("format_version")
    if not isinstance(version, int):
        raise GPSError("missing format version", source=label, field="metadata.json:format_version")
    if version > FORMAT_VERSION:
        raise GPSError("checkpoint was written by a newer Galaxy Posterior Studio; upgrade to load it",
                       source=label, field="format_version", expected=f"<= {FORMAT_VERSION}", found=str(version))
    while version < FORMAT_VERSION:
        if version not in MIGRATIONS:
            raise GPSError("no migration for this old checkpoint format", source=label, field="format_version",
                           found=str(version))
        meta = MIGRATIONS[version](meta)
        version = meta["format_version"]
    for key in ("task", "model", "config", "features", "targets"):
        if key not in meta:
            raise GPSError("checkpoint metadata is incomplete", source=label, field=f"metadata.json:{key}")
    validate_metadata(meta, label)
    return meta


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for mod in ("numpy", "torch", "jax", "numpyro", "zuko", "lightgbm", "safetensors", "astropy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # not installed / not imported: skip
            pass
    return out


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating,)):
        obj = float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
