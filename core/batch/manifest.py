"""The run manifest (``manifest.json`` in the output directory): settings, every part's state, and atomic writes.

Only the driver writes the manifest (temp file + rename after every finished part), so a killed run leaves a valid
manifest that lists what is finished. A part counts as done when the manifest says so *and* its output file exists;
parts written by a run killed between the rename and the manifest update are simply redone (same seed, same rows).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from core.errors import GPSError

__all__ = ["Manifest", "atomic_write_bytes", "atomic_path", "MANIFEST_NAME"]

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1


class Manifest:
    """State of a run in ``out_dir``: ``settings``, ``fingerprint``, ``parts`` (id -> plan + state) and ``runs``."""

    def __init__(self, out_dir: str | os.PathLike, data: dict[str, Any]):
        self.dir = Path(out_dir)
        self.data = data

    # -- open / create ------------------------------------------------------------------------------------
    @classmethod
    def open(cls, out_dir: str | os.PathLike, settings: dict, fingerprint: str, parts: list[dict],
             overwrite: bool = False) -> "Manifest":
        """The manifest of ``out_dir`` for this run: the existing one when its fingerprint matches (resume), a new one
        otherwise (``overwrite``) or a GPSError naming the differing run."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / MANIFEST_NAME
        old = cls.read(out) if path.exists() else None
        if old is not None and old.data.get("fingerprint") != fingerprint and not overwrite:
            raise GPSError("the output directory holds another run (other input, model or settings)", source=str(path),
                           field="--out", expected=f"settings fingerprint {fingerprint}",
                           found=f"{old.data.get('fingerprint')}; use another --out or --overwrite")
        same = old is not None and old.data.get("fingerprint") == fingerprint
        if old is not None and not same:                 # --overwrite: remove the other run's outputs (ours only)
            for p in old.parts.values():
                (out / p["out"]).unlink(missing_ok=True)
        for stale in out.rglob(".*.tmp"):                # temp files of parts a killed run was writing
            stale.unlink(missing_ok=True)
        states = old.data["parts"] if same else {}
        merged = {}
        for p in parts:
            prev = states.get(p["id"], {})
            keep = {k: prev[k] for k in ("status", "rows", "seconds", "error", "worker", "peak_rss_mb", "refined")
                    if k in prev and prev.get("path") == p["path"] and prev.get("start") == p["start"]}
            merged[p["id"]] = {**p, **keep}
        m = cls(out, {"format_version": FORMAT_VERSION, "fingerprint": fingerprint, "settings": settings,
                      "created": (old.data.get("created") if same else None) or _now(),
                      "runs": (old.data.get("runs", []) if same else []),
                      "parts": merged})
        m.save()
        return m

    @classmethod
    def read(cls, out_dir: str | os.PathLike) -> "Manifest":
        path = Path(out_dir) / MANIFEST_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise GPSError("no batch run in this directory", source=str(path), expected=MANIFEST_NAME) from None
        except json.JSONDecodeError as e:
            raise GPSError("the run manifest is not valid JSON", source=str(path), found=str(e)) from None
        if not isinstance(data, dict) or data.get("format_version", 0) > FORMAT_VERSION or "parts" not in data:
            raise GPSError("unknown run manifest format", source=str(path), expected=f"format_version <= "
                           f"{FORMAT_VERSION}", found=str(data.get("format_version") if isinstance(data, dict) else ""))
        return cls(out_dir, data)

    # -- state ----------------------------------------------------------------------------------------------
    @property
    def parts(self) -> dict[str, dict]:
        return self.data["parts"]

    def is_done(self, part_id: str) -> bool:
        p = self.parts[part_id]
        return p.get("status") == "done" and (self.dir / p["out"]).exists()

    def record(self, part_id: str, result: dict[str, Any], save: bool = True) -> None:
        self.parts[part_id].update(result)
        if result.get("status") == "done":
            self.parts[part_id].pop("error", None)
        if save:
            self.save()

    def add_run(self, summary: dict[str, Any]) -> None:
        self.data["runs"].append(summary)
        self.save()

    def counts(self) -> dict[str, int]:
        out = {"done": 0, "failed": 0, "pending": 0}
        for pid in self.parts:
            st = "done" if self.is_done(pid) else self.parts[pid].get("status") or "pending"
            out[st if st in out else "pending"] += 1
        return out

    def failures(self) -> list[dict[str, str]]:
        return [{"id": pid, "path": p["path"], "error": p.get("error", "")} for pid, p in self.parts.items()
                if p.get("status") == "failed"]

    def save(self) -> None:
        atomic_write_bytes(self.dir / MANIFEST_NAME, json.dumps(self.data, indent=1, default=str).encode())


def atomic_path(target: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``target`` (same directory, so the final rename is atomic)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    tmp = atomic_path(target)
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
