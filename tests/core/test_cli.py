"""End-to-end command line: simulate -> train -> predict (streamed) -> evaluate, bench JSON schema, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.__main__ import main


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    assert main(["simulate", "--task", "halo_mass", "--n", "1500", "--seed", "5", "--out", str(d / "sim.fits")]) == 0
    assert main(["train", "--task", "halo_mass", "--model", "shmr", "--data", str(d / "sim.fits"), "--quiet",
                 "--out", str(d / "shmr.gps")]) == 0
    card = (d / "shmr.md").read_text()
    assert "halo_mass / shmr" in card and "| log_mstar | dex(solMass)" in card and "coverage_68" in card
    return d


def test_every_command_has_help(capsys):
    for cmd in ("simulate", "train", "predict", "evaluate", "bench"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "usage" in capsys.readouterr().out


@pytest.mark.parametrize("ext", ["csv", "fits", "h5"])
def test_predict_streams_in_chunks_with_units_and_provenance(workdir, ext):
    out = workdir / f"post.{ext}"
    args = ["predict", "--checkpoint", str(workdir / "shmr.gps"), "--input", str(workdir / "sim.fits"),
            "--out", str(out), "--chunk-rows", "400", "--samples", "200", "--quiet"]
    if ext != "csv":
        args.append("--save-samples")
    assert main(args) == 0
    from astropy.table import Table

    if ext == "fits":
        t = Table.read(out, hdu="POSTERIOR")
        assert len(t) == 1500 and "log_mh_p84" in t.colnames
        assert str(t["log_mh_median"].unit).startswith("dex")
        truth = np.asarray(t["log_mh_true"])
        med = np.asarray(t["log_mh_median"])
        assert np.sqrt(np.mean((truth - med) ** 2)) < 0.3
        assert (np.asarray(t["log_mh_p16"]) <= med).all() and (med <= np.asarray(t["log_mh_p84"])).all()
    elif ext == "h5":
        import h5py

        with h5py.File(out) as f:
            assert f["samples"].shape == (1500, 200, 1)
            assert json.loads(f.attrs["provenance"])["model"] == "shmr"
            assert np.isfinite(f["summaries/log_mh_mean"][:]).all()
    else:
        text = out.read_text().splitlines()
        assert any(line.startswith("# input_file: sim.fits") for line in text)
        assert sum(1 for line in text if not line.startswith("#")) == 1501


def test_evaluate_reports_scores_against_exact(workdir, tmp_path):
    out = tmp_path / "ev.json"
    assert main(["evaluate", "--checkpoint", str(workdir / "shmr.gps"), "--simulate", "800", "--seed", "9",
                 "--out", str(out)]) == 0
    ev = json.loads(out.read_text())
    assert ev["scores"]["kl_to_exact"] is not None and ev["scores"]["kl_to_exact"] >= 0
    assert 0.5 < ev["scores"]["coverage_68"] < 0.85
    assert ev["per_bin"] and "rmse" in ev["per_bin"][0]


def test_bad_input_gives_one_clear_message(workdir, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("log_mstar,log_sfr\n10.5,abc\n")
    code = main(["predict", "--checkpoint", str(workdir / "shmr.gps"), "--input", str(bad),
                 "--out", str(tmp_path / "o.csv"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "bad.csv" in err and "Traceback" not in err
    assert not (tmp_path / "o.csv").exists()
    empty = tmp_path / "empty.fits"
    empty.write_bytes(b"")
    assert main(["predict", "--checkpoint", str(workdir / "shmr.gps"), "--input", str(empty),
                 "--out", str(tmp_path / "o.fits"), "--quiet"]) == 2
    assert "empty" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(workdir / "sim.fits"), "--input", str(empty),
                 "--out", str(tmp_path / "o.fits"), "--quiet"]) == 2
    assert "not a Galaxy Posterior Studio checkpoint" in capsys.readouterr().err


def test_bench_json_schema(tmp_path, monkeypatch):
    from core.tasks.halo_mass import bench as halo_mass

    monkeypatch.setitem(halo_mass.SIZES, True, {"n_train": 3000, "n_test": 300, "n_throughput": 2000,
                                               "epochs": {}})
    out = tmp_path / "b.json"
    assert main(["bench", "halo_mass", "--quick", "--methods", "exact,shmr", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["task"] == "halo_mass" and res["n_test"] == 300 and isinstance(res["device"], str)
    for name in ("exact", "shmr"):
        row = res["methods"][name]
        for key in ("rmse", "mae", "r2", "bias", "coverage_68", "coverage_95", "pit_ks_p", "crps", "kl_to_exact",
                    "train_seconds", "infer_seconds", "galaxies_per_second"):
            assert key in row
    assert res["methods"]["exact"]["train_seconds"] is None
    assert res["methods"]["shmr"]["rmse"] >= res["methods"]["exact"]["rmse"] * 0.97
    assert out.with_suffix(".md").read_text().count("|") > 20


def test_train_on_a_flat_proposal_is_scored_under_the_physical_prior(tmp_path, capsys):
    """A flow trained on a set drawn flat in log Mh is reweighted to the HMF prior, its checkpoint carries the
    ratio, and its held-out scores come from objects simulated under the HMF (the note says so)."""
    from core import api

    out = tmp_path / "flat.gps"
    assert main(["train", "--task", "halo_mass", "--model", "flow", "--simulate", "3000", "--sim-set", "prior=flat",
                 "--set", "train.epochs=2", "--set", "hidden=[16]", "--eval-n", "200", "--quiet",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "scored on 200 objects simulated under the physical prior (prior=hmf" in err
    m = api.load_checkpoint(out)
    assert m.physical_prior and m.prior_grid[0] == 10.5 and m.prior_grid[-1] == 15.0
    assert main(["train", "--task", "halo_mass", "--model", "flow", "--simulate", "3000", "--sim-set", "prior=flat",
                 "--set", "train.epochs=1", "--set", "hidden=[16]", "--set", "prior=training", "--quiet",
                 "--out", str(tmp_path / "keep.gps")]) == 0
    assert "physical prior" not in capsys.readouterr().err
    assert not api.load_checkpoint(tmp_path / "keep.gps").physical_prior
