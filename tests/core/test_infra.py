"""Configs, registries, checkpoints (format, refusals, round trip), exports, CLI helpers."""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pytest

from core.config import Config, param
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.checkpoints import FORMAT_VERSION, checkpoint_bytes, load_checkpoint, read_metadata
from core.inference.posterior import Posterior
from core.models import build_model


@dataclass(frozen=True)
class _Cfg(Config):
    mode: Literal["a", "b"] = param("a")
    k: int = param(3, min=1, max=10)
    x: float = param(0.5)
    sizes: tuple[int, ...] = param((8, 8))


def test_config_validation_and_roundtrip():
    c = _Cfg.from_dict({"k": 4, "sizes": [16, 16, 16]})
    assert c.sizes == (16, 16, 16) and c.k == 4
    assert _Cfg.from_dict(json.loads(c.to_json())) == c
    assert c.config_hash() != _Cfg().config_hash()
    with pytest.raises(GPSError, match="unknown setting"):
        _Cfg.from_dict({"kk": 1})
    with pytest.raises(GPSError, match="invalid choice"):
        _Cfg(mode="c")
    with pytest.raises(GPSError, match="above the maximum"):
        _Cfg(k=11)
    with pytest.raises(GPSError, match="expected an integer"):
        _Cfg(k=1.5)
    assert _Cfg(x=1).x == 1.0 and isinstance(_Cfg(x=1).x, float)


def _toy_catalog(n=400, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.uniform(11, 14, n)
    from core.data.simulators.physics import shmr_logmstar

    ms = shmr_logmstar(h) + rng.normal(0, 0.2, n)
    return CatalogData(x=np.c_[ms, rng.normal(size=n)], features=("log_mstar", "log_sfr"), y=h,
                       targets=("log_mh",), units={"log_mh": "dex(solMass)", "log_mstar": "dex(solMass)"},
                       meta={"source": "file", "file": "toy.csv"})


def _trained_shmr():
    data = _toy_catalog()
    m = build_model("halo_mass", "shmr", None, data.features, data.targets, data.units)
    m.history = m.fit(data)
    return m, data


def test_checkpoint_roundtrip_gives_identical_posterior(tmp_path):
    m, data = _trained_shmr()
    blob = checkpoint_bytes(m, provenance={"source": "file"}, test_metrics={"rmse": 0.3})
    m2 = load_checkpoint(blob, expected_task="halo_mass")
    p1, p2 = m.posterior(data), m2.posterior(data)
    np.testing.assert_array_equal(p1.pdf, p2.pdf)
    meta = read_metadata(blob)
    assert meta["format_version"] == FORMAT_VERSION and meta["model"] == "shmr"
    assert meta["input_schema"][0]["unit"] == "dex(solMass)"
    assert meta["test_metrics"]["rmse"] == 0.3


def _rezip(blob: bytes, edit) -> bytes:
    zin = zipfile.ZipFile(io.BytesIO(blob))
    files = {n: zin.read(n) for n in zin.namelist()}
    edit(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return out.getvalue()


def test_checkpoint_refusals():
    m, _ = _trained_shmr()
    blob = checkpoint_bytes(m)
    with pytest.raises(GPSError, match="pickle"):
        load_checkpoint(pickle.dumps({"a": 1}), name="evil.pt")
    torchlike = _rezip(blob, lambda f: f.update({"archive/data.pkl": b"\x80\x04"}))
    with pytest.raises(GPSError, match="pickle"):
        load_checkpoint(torchlike, name="model.pt")
    with pytest.raises(GPSError, match="another task"):
        load_checkpoint(blob, expected_task="exsitu_map", name="shmr.gps")

    def newer(f):
        meta = json.loads(f["metadata.json"])
        meta["format_version"] = FORMAT_VERSION + 1
        f["metadata.json"] = json.dumps(meta).encode()

    with pytest.raises(GPSError, match="newer"):
        load_checkpoint(_rezip(blob, newer))

    def other(f):
        meta = json.loads(f["metadata.json"])
        meta["format"] = "something-else"
        f["metadata.json"] = json.dumps(meta).encode()

    with pytest.raises(GPSError, match="unknown checkpoint format"):
        load_checkpoint(_rezip(blob, other))
    with pytest.raises(GPSError, match="checksum"):
        load_checkpoint(_rezip(blob, lambda f: f.update({"weights.safetensors": f["weights.safetensors"][:-4]
                                                         + b"abcd"})))
    with pytest.raises(GPSError, match="empty"):
        load_checkpoint(b"")
    with pytest.raises(GPSError, match="not a Galaxy Posterior Studio checkpoint"):
        load_checkpoint(b"SIMPLE  =                    T", name="x.fits")


def test_export_formats_keep_units_and_provenance(tmp_path):
    from astropy.table import Table

    from core.data.export import write_posterior

    rng = np.random.default_rng(1)
    data = CatalogData(x=rng.normal(size=(7, 1)), features=("log_mstar",), y=rng.normal(size=7),
                       targets=("log_mh",), units={"log_mh": "dex(solMass)"})
    post = Posterior(params=("log_mh",), units=("dex(solMass)",), samples=rng.normal(size=(7, 300, 1)))
    for fmt in ("csv", "fits", "hdf5"):
        write_posterior(post, data, tmp_path / f"p.{fmt}", include_samples=fmt != "csv", n_samples=50,
                        provenance={"model": "flow", "checkpoint": "x.gps"})
    t = Table.read(tmp_path / "p.fits", hdu="POSTERIOR")
    assert len(t) == 7 and str(t["log_mh_mean"].unit).startswith("dex")
    np.testing.assert_allclose(t["log_mh_mean"], post.mean()[:, 0])
    from astropy.io import fits

    with fits.open(tmp_path / "p.fits") as hd:
        assert hd["SAMPLES"].data.shape == (7, 50, 1)
        assert hd["POSTERIOR"].header["HIERARCH MODEL"] == "flow"
    import h5py

    with h5py.File(tmp_path / "p.hdf5") as f:
        assert f["samples"].shape == (7, 50, 1)
        assert f["summaries/log_mh_p84"].attrs["unit"] == "dex(solMass)"
        assert json.loads(f.attrs["provenance"])["model"] == "flow"
    text = (tmp_path / "p.csv").read_text()
    assert "# model: flow" in text and "dex(solMass)" in text


def test_grid_and_sample_posteriors_agree():
    g = np.linspace(-6, 6, 2001)
    pdf = np.exp(-0.5 * g ** 2)[None] / np.sqrt(2 * np.pi)
    grid_post = Posterior(params=("y",), units=("",), grid=g, pdf=pdf)
    s = grid_post.sample(20000, seed=3)
    samp_post = Posterior(params=("y",), units=("",), samples=s)
    np.testing.assert_allclose(grid_post.quantiles([0.16, 0.84])[0, :, 0], [-0.994, 0.994], atol=0.01)
    np.testing.assert_allclose(samp_post.quantiles([0.16, 0.84])[0, :, 0], [-0.994, 0.994], atol=0.04)
    assert abs(grid_post.cdf_at(np.array([0.0]))[0, 0] - 0.5) < 1e-3


def test_cli_overrides_and_errors(capsys):
    from core.__main__ import main, parse_overrides

    assert parse_overrides(["train.epochs=5", "beta=0.5", "relation=behroozi13"]) == {
        "train": {"epochs": 5}, "beta": 0.5, "relation": "behroozi13"}
    with pytest.raises(GPSError):
        parse_overrides(["novalue"])
    assert main(["predict", "--checkpoint", "/nonexistent.gps", "--input", "x.csv", "--out", "y.csv"]) == 2
    assert "not found" in capsys.readouterr().err


def test_split_is_grouped_by_galaxy():
    from core import api

    n = 300
    data = CatalogData(x=np.zeros((n, 1)), features=("a",), extra={"galaxy_id": np.repeat(np.arange(100), 3)})
    tr, va, te = api.split(data, (0.6, 0.2, 0.2), seed=1)
    ids = [set(p.extra["galaxy_id"]) for p in (tr, va, te)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    assert len(tr) + len(va) + len(te) == n
