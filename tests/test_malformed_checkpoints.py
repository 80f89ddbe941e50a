"""Checkpoint validation: metadata schema before building, tensors against the config, zip safety, task match."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.errors import GPSError
from core.inference.checkpoints import check_task_matches, data_task_of, load_checkpoint, read_metadata
from tests.corpus.files_checkpoints import _ckpt_parts, _ckpt_write, _tensors

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def parts():
    meta, weights, rest = _ckpt_parts("halo_mass_flow")
    meta = {k: v for k, v in meta.items() if k != "typicality"}  # these tests write weights + metadata only
    return meta, weights, rest


def _write(tmp_path, name, meta, weights, others=None, raw_meta=None):
    p = tmp_path / name
    _ckpt_write(p, meta, weights, others or {}, True, raw_meta)
    return p


@pytest.mark.parametrize("key, value, field", [
    ("features", [1, 2], "metadata.json:features"), ("config", [1], "metadata.json:config"),
    ("units", "dex", "metadata.json:units"), ("provenance", [1], "metadata.json:provenance"),
    ("task", 3, "metadata.json:task"), ("features", ["log_mstar", "nonsense"], "metadata.json:features"),
    ("text_members", "abc", "metadata.json:text_members"), ("format_version", "1", "metadata.json:format_version"),
])
def test_metadata_types_are_checked_before_building(tmp_path, parts, key, value, field):
    meta, weights, _ = parts
    p = _write(tmp_path, "c.gps", dict(meta, **{key: value}), weights)
    with pytest.raises(GPSError) as ei:
        read_metadata(p)
    assert "c.gps" in str(ei.value) and f"[{field}]" in str(ei.value)


@pytest.mark.parametrize("raw", [b"null", b"[1, 2]", b"\xff\xfe\x00garbage"])
def test_metadata_that_is_not_an_object_is_refused(tmp_path, parts, raw):
    meta, weights, _ = parts
    with pytest.raises(GPSError, match=r"c.gps \[metadata.json\]"):
        read_metadata(_write(tmp_path, "c.gps", meta, weights, raw_meta=raw))


@pytest.mark.parametrize("edit, field", [
    (lambda t: t.__setitem__("x_mean", t["x_mean"][:3]), "weights.safetensors:x_mean"),
    (lambda t: t.__setitem__("x_std", t["x_std"][None]), "weights.safetensors:x_std"),
    (lambda t: t.__setitem__("x_std", np.zeros_like(t["x_std"])), "weights.safetensors:x_std"),
    (lambda t: t.__setitem__("flow.base.loc", np.full_like(t["flow.base.loc"], np.nan)),
     "weights.safetensors:flow.base.loc"),
])
def test_tensors_are_checked_against_the_features(tmp_path, parts, edit, field):
    meta, weights, _ = parts
    p = _write(tmp_path, "c.gps", meta, _tensors(weights, edit))
    with pytest.raises(GPSError) as ei:
        load_checkpoint(p)
    assert "c.gps" in str(ei.value) and f"[{field}]" in str(ei.value)


def test_zero_scale_in_metadata_state_is_refused(tmp_path, parts):
    meta, weights, _ = parts
    p = _write(tmp_path, "c.gps", dict(meta, state=dict(meta["state"], y_std=0.0)), weights)
    with pytest.raises(GPSError, match=r"\[metadata.json:state.y_std\]"):
        load_checkpoint(p)


@pytest.mark.parametrize("member", ["../../evil.txt", "/abs/evil.txt"])
def test_member_names_never_escape_the_folder(tmp_path, parts, member):
    meta, weights, _ = parts
    p = _write(tmp_path, "c.gps", meta, weights, others={member: b"x"})
    with pytest.raises(GPSError, match="path traversal"):
        load_checkpoint(p)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_zip_bomb_is_refused_by_declared_size(tmp_path, parts):
    meta, weights, _ = parts
    p = tmp_path / "bomb.gps"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(meta))
        zf.writestr("weights.safetensors", weights)
        zf.writestr("text/pad.txt", b"\0" * (8 << 20))
    with pytest.raises(GPSError, match=r"bomb.gps \[text/pad.txt\]: checkpoint member inflates too much"):
        load_checkpoint(p)


def test_binary_text_member_is_refused(tmp_path, parts):
    meta, weights, _ = parts
    p = _write(tmp_path, "c.gps", dict(meta, text_members=["x"]), weights, others={"text/x.txt": b"\xff\xfe\xfa"})
    with pytest.raises(GPSError, match=r"c.gps \[text/x.txt\]: text member is not UTF-8"):
        load_checkpoint(p)


def test_a_pickle_is_never_loaded(tmp_path):
    import pickle

    p = tmp_path / "w.gps"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(GPSError, match="pickle"):
        load_checkpoint(p)


def test_checkpoint_of_another_task_is_refused_for_a_table(tmp_path):
    model = load_checkpoint(ROOT / "checkpoints" / "central_mass_powerlaw.gps")
    t = tmp_path / "t.csv"
    t.write_text("log_mstar,log_mh\n10,12\n")
    assert data_task_of(str(t)) == "halo_mass"
    with pytest.raises(GPSError, match=r"cm.gps \[task\]: checkpoint is for another task \(t.csv is halo_mass data\) "
                                       r"\(expected halo_mass; found central_mass\)"):
        check_task_matches(model, data_task_of(str(t)), "cm.gps", str(t))


def test_valid_bundled_checkpoint_still_loads(parts, tmp_path):
    meta, weights, _ = parts
    m = load_checkpoint(_write(tmp_path, "ok.gps", meta, weights))
    assert m.task_name == "halo_mass" and tuple(m.features) == tuple(meta["features"])
