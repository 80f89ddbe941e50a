"""Corpus files for the checkpoint loader: the bundled halo_mass flow checkpoint with damaged metadata, tensors and
zip members, other tasks' checkpoints, and files that are not checkpoints at all (pickles, text, torch zips)."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np

from tests.corpus.generate import ROOT, Entry

# --------------------------------------------------------------------------------------------------- checkpoints
def _ckpt_parts(name: str = "halo_mass_flow") -> tuple[dict, bytes, dict[str, bytes]]:
    zf = zipfile.ZipFile(ROOT / "checkpoints" / f"{name}.gps")
    meta = json.loads(zf.read("metadata.json"))
    others = {n: zf.read(n) for n in zf.namelist() if n not in ("metadata.json", "weights.safetensors")}
    return meta, zf.read("weights.safetensors"), others


def _ckpt_write(path: Path, meta, weights: bytes, others: dict | None = None, fix_sha: bool = True,
                raw_meta: bytes | None = None) -> None:
    import hashlib

    if fix_sha and isinstance(meta, dict):
        meta = dict(meta, weights_sha256=hashlib.sha256(weights).hexdigest())
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", raw_meta if raw_meta is not None else json.dumps(meta))
        zf.writestr("weights.safetensors", weights)
        for k, v in (others or {}).items():
            zf.writestr(k, v)


def _tensors(weights: bytes, fn) -> bytes:
    from safetensors.numpy import load, save

    t = load(weights)
    fn(t)
    return save(t)


def checkpoint_entries(d: Path) -> list[Entry]:
    import pickle

    out = []
    meta, weights, others = _ckpt_parts()

    def add(kind, meta_=None, weights_=None, others_=None, raw_meta=None, fix_sha=True, expect="refuse"):
        p = d / f"ckpt_{kind}.gps"
        _ckpt_write(p, meta if meta_ is None else meta_, weights if weights_ is None else weights_,
                    others if others_ is None else others_, fix_sha, raw_meta)
        out.append(Entry(p.name, "checkpoint", kind, "halo_mass", expect, role="checkpoint"))

    add("valid_control", expect="ok")
    add("features_as_ints", dict(meta, features=[1, 2, 3]))
    add("config_as_list", dict(meta, config=[1, 2]))
    add("units_as_string", dict(meta, units="dex"))
    add("provenance_as_list", dict(meta, provenance=[1]))
    add("metadata_null", raw_meta=b"null")
    add("metadata_list", raw_meta=b"[1, 2]")
    add("metadata_binary", raw_meta=b"\xff\xfe\x00garbage")
    add("task_as_int", dict(meta, task=3))
    add("state_as_list", dict(meta, state=[0]))
    add("config_wrong_type", dict(meta, config=dict(meta["config"], hidden="abc")))
    add("config_unknown_key", dict(meta, config=dict(meta["config"], bogus=1)))
    add("model_unknown", dict(meta, model="nonsense"))
    add("targets_empty", dict(meta, targets=[]))
    add("features_unknown", dict(meta, features=["log_mstar", "nonsense"] + meta["features"][2:]))
    add("features_duplicated", dict(meta, features=["log_mstar"] * len(meta["features"])))
    add("text_members_as_string", dict(meta, text_members="abc"))
    add("binary_text_member", dict(meta, text_members=["x"]), others_={"text/x.txt": b"\xff\xfe\xfa"})
    add("format_version_string", dict(meta, format_version="1"))
    add("newer_version", dict(meta, format_version=99))
    add("y_std_zero", dict(meta, state=dict(meta["state"], y_std=0.0)))
    add("y_mean_string", dict(meta, state=dict(meta["state"], y_mean="ten")))
    add("x_mean_wrong_length", weights_=_tensors(weights, lambda t: t.__setitem__("x_mean", t["x_mean"][:3])))
    add("x_std_wrong_rank", weights_=_tensors(weights, lambda t: t.__setitem__("x_std", t["x_std"][None, :])))
    add("x_std_zero", weights_=_tensors(weights, lambda t: t.__setitem__("x_std", np.zeros_like(t["x_std"]))))
    add("weights_all_nan", weights_=_tensors(weights, lambda t: [t.__setitem__(k, np.full_like(v, np.nan))
                                                                   for k, v in list(t.items())
                                                                   if v.dtype.kind == "f"]))
    add("weights_inf", weights_=_tensors(weights, lambda t: t.__setitem__("flow.base.scale",
                                                                           np.full_like(t["flow.base.scale"],
                                                                                        np.inf))))
    add("weight_missing", weights_=_tensors(weights, lambda t: t.pop("x_mean")))
    add("checksum_mismatch", fix_sha=False, weights_=_tensors(weights, lambda t: t["x_mean"].__imul__(1.01)))
    add("weights_garbage", weights_=b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage" + b"\x00" * 50)
    add("weights_header_huge", weights_=struct.pack("<Q", 1 << 40) + b"{}")
    add("path_traversal_member", others_={"../../evil.txt": b"x", "/abs/evil.txt": b"y"})
    add("pickle_member", others_={"archive/data.pkl": pickle.dumps({"a": 1})})
    # another task's checkpoint on a halo_mass table (evaluate/predict must refuse it)
    for other in ("exsitu_map_cvae_flow_kinematics", "central_mass_powerlaw"):
        p = d / f"ckpt_other_task_{other}.gps"
        p.write_bytes((ROOT / "checkpoints" / f"{other}.gps").read_bytes())
        out.append(Entry(p.name, "checkpoint", f"other_task_{other.split('_')[0]}", "halo_mass", role="checkpoint"))
    # files that are not checkpoints at all
    for kind, data in (("pickle_renamed", pickle.dumps({"weights": [1, 2, 3]})), ("zero_byte", b""),
                       ("truncated_zip", (ROOT / "checkpoints/halo_mass_flow.gps").read_bytes()[:5000]),
                       ("text_file", b"hello, I am not a checkpoint\n"),
                       ("torch_zip", _torch_like_zip())):
        p = d / f"ckpt_{kind}.gps"
        p.write_bytes(data)
        out.append(Entry(p.name, "checkpoint", kind, "halo_mass", role="checkpoint"))
    p = d / "ckpt_zip_bomb.gps"
    _zip_bomb(p, meta, weights)
    out.append(Entry(p.name, "checkpoint", "zip_bomb", "halo_mass", role="checkpoint"))
    return out


def _torch_like_zip() -> bytes:
    import pickle

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps([1]))
        zf.writestr("archive/version", "3")
    return buf.getvalue()


def _zip_bomb(path: Path, meta: dict, weights: bytes) -> None:
    """A checkpoint whose metadata.json member inflates to 2 GiB of spaces (a few MB on disk is too much for
    a test; the deflate stream of zeros is ~1000:1, so we write 64 MiB and patch the declared sizes)."""
    import hashlib

    blob = b" " * (8 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(dict(meta, weights_sha256=hashlib.sha256(weights).hexdigest()))
                    .encode() + blob)
        zf.writestr("weights.safetensors", weights)
        zf.writestr("text/pad.txt", b"\x00" * (16 << 20))
