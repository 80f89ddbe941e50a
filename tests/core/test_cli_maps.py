"""Command line for the map tasks (exsitu_map, central_mass): simulate -> train -> evaluate -> predict, real files,
bad input, and the bundled map checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import api
from core.__main__ import main

ROOT = Path(__file__).resolve().parents[2]
# trimmed copies of the real files (provenance in tests/data/README.md): a fresh clone runs these tests too
CALIFA = ROOT / "tests" / "data" / "NGC4047_cut.pipe3d.hdf5"
DAP = ROOT / "tests" / "data" / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.cut.fits.gz"
TINY_CVAE = ["--set", "widths=[4,8,16,16]", "--set", "latent=4", "--set", "embed=8", "--set", "flow_hidden=[16]",
             "--set", "flow_transforms=1", "--set", "train.epochs=2", "--set", "flow_train.epochs=2"]
TINY_RESNET = ["--set", "width=4", "--set", "hidden=16", "--set", "train.epochs=2"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Tiny checkpoints trained through the CLI (seconds): all-channel and kinematics-only ex-situ models, and a
    central_mass ResNet on image, vel, sigma; plus a simulated map-stack file with the true maps."""
    import torch

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("cli_maps")
    assert main(["simulate", "--task", "exsitu_map", "--n", "3", "--seed", "11", "--out", str(d / "sim.maps.h5")]) == 0
    common = ["train", "--task", "exsitu_map", "--model", "cvae_flow", "--simulate", "8", "--seed", "5",
              "--samples", "8", "--quiet"]
    assert main(common + TINY_CVAE + ["--out", str(d / "ex_all.gps")]) == 0
    assert main(common + TINY_CVAE + ["--features", "vel,sigma", "--out", str(d / "ex_kin.gps")]) == 0
    assert main(["train", "--task", "central_mass", "--model", "resnet", "--simulate", "8", "--seed", "5",
                 "--features", "image,vel,sigma", "--samples", "100", "--quiet", *TINY_RESNET,
                 "--out", str(d / "cm.gps")]) == 0
    return d


def _err(capsys) -> str:
    return capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- simulate/train
def test_simulated_map_stack_round_trips_with_truth(work):
    stack = api.read_data(work / "sim.maps.h5", "exsitu_map")
    assert len(stack) == 9 and stack.has_truth                    # 3 galaxies x 3 projections
    assert len(np.unique(stack.galaxy_id)) == 3
    assert stack.targets["f_ex"].shape == (9,) + stack.data.shape[2:]


def test_simulate_refuses_central_mass_and_non_hdf5_outputs(work, capsys):
    assert main(["simulate", "--task", "central_mass", "--n", "2", "--out", str(work / "c.h5")]) == 2
    assert "simulate them on the fly" in _err(capsys)
    assert main(["simulate", "--task", "exsitu_map", "--n", "2", "--out", str(work / "m.csv")]) == 2
    assert ".h5" in _err(capsys) and not (work / "m.csv").exists()


def test_train_writes_map_metrics_and_a_model_card(work):
    from core.inference.checkpoints import read_metadata

    meta = read_metadata(work / "ex_all.gps")
    tm = meta["test_metrics"]
    assert meta["features"] == ["log_sigma_star", "vel", "sigma", "log_age", "metallicity"]
    assert 0.0 <= tm["mae_pixel"] <= 1.0 and 0.0 <= tm["coverage_68_pixel"] <= 1.0 and tm["n_test"] > 0
    card = (work / "ex_all.md").read_text()
    assert "| mae_pixel |" in card and "- cvae:" in card and "- flow:" in card and "projections" in card
    assert read_metadata(work / "ex_kin.gps")["features"] == ["vel", "sigma"]
    cm = read_metadata(work / "cm.gps")
    by = cm["test_metrics"]["by_target"]
    assert set(by) == {"log_mstar_re", "log_mtot_re", "log_ml_r"}
    assert all(r["scatter_dex"] >= 0 and 0 <= r["coverage_68"] <= 1 for r in by.values())
    assert "| log_mtot_re |" in (work / "cm.md").read_text()


def test_evaluate_map_checkpoint_on_a_stack_file_gives_json(work, capsys):
    out = work / "ev.json"
    assert main(["evaluate", "--checkpoint", str(work / "ex_all.gps"), "--data", str(work / "sim.maps.h5"),
                 "--samples", "6", "--out", str(out)]) == 0
    capsys.readouterr()
    ev = json.loads(out.read_text())
    assert ev["task"] == "exsitu_map" and ev["scores"]["n_objects"] == 9 and "pixels" not in ev
    assert 0.0 <= ev["scores"]["mae_pixel"] <= 1.0
    assert main(["evaluate", "--checkpoint", str(work / "cm.gps"), "--simulate", "3", "--seed", "21",
                 "--samples", "50", "--out", str(out)]) == 0
    ev = json.loads(out.read_text())
    assert ev["n"] == 9 and set(ev["scores_by_target"]) == {"log_mstar_re", "log_mtot_re", "log_ml_r"}


# ---------------------------------------------------------------------------------------------------- predict
def test_predict_stack_file_gives_cubes_and_hdf5(work, capsys):
    from astropy.io import fits

    fits_out, h5_out = work / "stack_post.fits", work / "stack_post.h5"
    base = ["predict", "--checkpoint", str(work / "ex_all.gps"), "--input", str(work / "sim.maps.h5"),
            "--samples", "10", "--quiet"]
    assert main(base + ["--out", str(fits_out)]) == 0
    assert main(base + ["--out", str(h5_out), "--save-samples"]) == 0
    capsys.readouterr()
    with fits.open(fits_out) as h:
        names = [x.name for x in h]
        for name in ("MEAN", "STD", "Q2.5", "Q16", "MEDIAN", "Q84", "Q97.5", "P_GT_0.5", "RESIDUAL", "INPUT_MASK"):
            assert name in names
            assert h[name].data.shape == (9, 64, 64)
        assert len(h["OBJECTS"].data) == 9
        q16, med, q84 = h["Q16"].data, h["MEDIAN"].data, h["Q84"].data
        assert np.all(q16 <= med + 1e-6) and np.all(med <= q84 + 1e-6)
        p = h["P_GT_0.5"].data
        assert p.min() >= 0 and p.max() <= 1
        assert h[0].header["TASK"] == "exsitu_map" and h[0].header["INFILE"] == "sim.maps.h5"
    import h5py

    with h5py.File(h5_out) as f:
        assert f["maps/mean"].shape == (9, 64, 64) and f["samples"].shape == (9, 10, 64, 64)
        assert f["inputs"].shape == (9, 5, 64, 64) and "truth" in f
        prov = json.loads(f.attrs["provenance"])
        assert prov["input_sha256"] and prov["checkpoint"].endswith("ex_all.gps")


def test_predict_califa_file_keeps_wcs_and_provenance(work, capsys):
    from astropy.io import fits
    from astropy.wcs import WCS

    from core.data.catalog import file_sha256

    out = work / "califa.fits"
    assert main(["predict", "--checkpoint", str(work / "ex_all.gps"), "--input", str(CALIFA), "--out", str(out),
                 "--samples", "10", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["objects"] == 1 and summary["map_shape"] == [64, 64]
    with fits.open(out) as h:
        assert h["MEAN"].data.shape == (64, 64) and "RESIDUAL" not in [x.name for x in h]
        w = WCS(h["MEAN"].header)
        assert w.has_celestial and h["MEAN"].header["CTYPE1"].startswith("RA")
        ra, dec = w.celestial.wcs_pix2world([[31.5, 31.5]], 0)[0]
        assert abs(ra - 180.71) < 0.05 and abs(dec - 48.636) < 0.05             # NGC 4047
        assert h[0].header["INSHA256"] == file_sha256(CALIFA)
        assert any("regridded onto the model grid" in str(c) for c in h[0].header["HISTORY"])
        assert h["INPUT_MASK"].data.any() and not h["INPUT_MASK"].data.all()


def test_predict_dap_file_names_missing_channels_or_runs_kinematics_model(work, capsys):
    out = work / "dap.fits"
    assert main(["predict", "--checkpoint", str(work / "ex_all.gps"), "--input", str(DAP), "--out", str(out),
                 "--quiet"]) == 2
    err = _err(capsys)
    assert "lacks channels log_sigma_star, log_age, metallicity" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["predict", "--checkpoint", str(work / "ex_kin.gps"), "--input", str(DAP), "--out", str(out),
                 "--samples", "10", "--quiet"]) == 0
    from astropy.io import fits

    with fits.open(out) as h:
        assert h["MEAN"].data.shape == (64, 64) and h[0].header["MODEL"] == "cvae_flow"
        assert np.isfinite(h["MEAN"].data).all()


@pytest.mark.parametrize("ext", ["csv", "fits", "h5"])
def test_predict_central_mass_table_has_summaries_units_and_notes(work, capsys, ext):
    out = work / f"central.{ext}"
    assert main(["predict", "--checkpoint", str(work / "cm.gps"), "--input", str(DAP), "--out", str(out),
                 "--samples", "300", "--quiet"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["targets"] == ["log_mstar_re", "log_mtot_re", "log_ml_r"] and len(summary["domain_notes"]) == 1
    from astropy.table import Table

    if ext == "csv":
        text = out.read_text()
        assert "# domain_notes:" in text and "# reader_notes:" in text and "SPX_MFLUX" in text
        assert '"log_mtot_re_p84": "dex(solMass)"' in text
    elif ext == "fits":
        from astropy.io import fits

        t = Table.read(out, hdu="POSTERIOR")
        assert len(t) == 1 and str(t["log_ml_r_median"].unit).startswith("dex")
        comments = " ".join(str(c) for c in fits.getheader(out, "POSTERIOR")["COMMENT"])
        assert "domain (object 0)" in comments and "SPX_MFLUX" in comments
    else:
        import h5py

        with h5py.File(out) as f:
            prov = json.loads(f.attrs["provenance"])
            assert prov["domain_notes"] and prov["reader_notes"]
            assert f["summaries/log_mstar_re_p16"][0] <= f["summaries/log_mstar_re_p84"][0]


# ---------------------------------------------------------------------------------------------------- bad input
def test_bad_inputs_give_one_message_and_status_2(work, tmp_path, capsys):
    table = tmp_path / "cat.csv"
    table.write_text("log_mstar,z\n10.5,0.1\n")
    cases = [
        (["predict", "--checkpoint", str(work / "ex_all.gps"), "--input", str(table), "--out", str(tmp_path / "a.fits")],
         "cat.csv"),                                                           # not a map file
        (["predict", "--checkpoint", str(work / "cm.gps"), "--task", "exsitu_map", "--input", str(work / "sim.maps.h5"),
          "--out", str(tmp_path / "b.fits")], "another task"),                # checkpoint of another task
        (["predict", "--checkpoint", str(work / "ex_all.gps"), "--input", str(work / "sim.maps.h5"),
          "--out", str(tmp_path / "c.csv")], "images"),                       # maps cannot go in a CSV
        (["predict", "--checkpoint", str(work / "cm.gps"), "--input", str(work / "sim.maps.h5"),
          "--out", str(tmp_path / "d.csv")], "MaNGA DAP"),                    # central_mass reads DAP files only
        (["predict", "--checkpoint", str(work / "cm.gps"), "--input", str(work / "sim.maps.h5"), "--mode", "prior",
          "--out", str(tmp_path / "e.csv")], "--mode"),
        (["evaluate", "--checkpoint", str(work / "ex_all.gps"), "--data", str(table)], "cat.csv"),
    ]
    for args, needle in cases:
        assert main(args + ["--quiet"] if args[0] == "predict" else args) == 2, args
        err = _err(capsys)
        assert err.startswith("error:") and needle in err and "Traceback" not in err, (needle, err)
    assert not list(tmp_path.glob("*.fits")) and not list(tmp_path.glob("*.part"))


# ---------------------------------------------------------------------------------------------------- bundled
BUNDLED_MAPS = [b for t in ("exsitu_map", "central_mass") for b in api.bundled_checkpoints(t)]


@pytest.mark.parametrize("item", BUNDLED_MAPS, ids=[b["file"] for b in BUNDLED_MAPS])
def test_bundled_map_checkpoint_runs_on_simulated_objects(item):
    import torch

    torch.set_num_threads(1)
    model = api.load_checkpoint(item["path"], expected_task=item["task"])
    data = api.simulate(item["task"], 2, seed=77)
    n = 8 if item["task"] == "exsitu_map" else 200
    post = api.posterior(model, data, n_samples=n, seed=0)
    assert post.n == len(data) == 6
    ev = api.evaluate(post, api.prepare(model, data))
    assert ev["n"] > 0
    tm = item["metadata"]["test_metrics"]
    assert tm.get("n_test", 0) > 0 and (Path(item["path"]).with_suffix(".md")).exists()


def test_bundled_models_on_the_real_files(tmp_path, capsys):
    if not api.bundled_checkpoints("exsitu_map"):
        pytest.skip("no bundled exsitu_map checkpoints")
    from astropy.io import fits

    for src, name in ((CALIFA, "califa"), (DAP, "dap")):
        out = tmp_path / f"{name}.fits"
        rc = main(["predict", "--task", "exsitu_map", "--input", str(src), "--out", str(out), "--samples", "20",
                   "--quiet"])
        captured = capsys.readouterr()
        kin = any(b["metadata"]["features"] == ["vel", "sigma"] for b in api.bundled_checkpoints("exsitu_map"))
        if rc == 0:
            with fits.open(out) as h:
                assert h["MEAN"].data.shape == (64, 64)
            if name == "dap":
                assert json.loads(captured.out)["checkpoint"] == "bundled:exsitu_map_cvae_flow_kinematics.gps"
        else:
            assert rc == 2 and name == "dap" and not kin and "lacks channels" in captured.err
    if api.bundled_checkpoints("central_mass"):
        assert main(["predict", "--task", "central_mass", "--input", str(DAP), "--out", str(tmp_path / "c.csv"),
                     "--samples", "200", "--quiet"]) == 0
