"""Command line for photoz: ``predict --task photoz`` on the real-format fixtures (MLZ whitespace table, ANNz typed
CSV) through the shared predict path (task adapter, bundled checkpoint, task writer), on a mock file with known
redshifts, and bad output names."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import api
from core.__main__ import main

DATA = Path(__file__).resolve().parents[1] / "data"
SDSS = DATA / "photoz_SDSS_MGS_head40.train"
BOSS = DATA / "photoz_boss_dr10_head40.csv"
COLS = ("z_median", "z_p16", "z_p84", "z_mode", "n_peaks")


@pytest.fixture(autouse=True)
def one_thread():
    import torch

    torch.set_num_threads(1)


def _summary(capsys) -> dict:
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_predict_bundled_default_on_mlz_table_writes_pz_grid(tmp_path, capsys):
    import h5py

    out = tmp_path / "sdss.h5"
    assert main(["predict", "--task", "photoz", "--input", str(SDSS), "--out", str(out), "--quiet"]) == 0
    s = _summary(capsys)
    assert s["task"] == "photoz" and s["checkpoint"].startswith("bundled:photoz_") and s["objects"] == 40
    with h5py.File(out, "r") as f:
        g, grid = f["photoz"], f["pz_grid"][:]
        cols = {c: g[c][:] for c in g}
    assert set(COLS) <= set(cols) and cols["pz"].shape == (40, grid.size)
    ok = cols["valid"] == 1
    assert ok.sum() == s["valid"] >= 30
    np.testing.assert_allclose(np.trapezoid(cols["pz"][ok], grid, axis=1), 1.0, atol=0.02)
    assert np.all(cols["z_p16"][ok] <= cols["z_median"][ok]) and np.all(cols["z_median"][ok] <= cols["z_p84"][ok])
    assert np.all(cols["n_peaks"][ok] >= 1)
    # SDSS main galaxies are at z ~ 0.1: the mock-trained default lands there (|dz| < 0.15 (1+z) for most)
    dz = np.abs(cols["z_median"][ok] - cols["z_true"][ok]) / (1 + cols["z_true"][ok])
    assert np.mean(dz < 0.15) > 0.8


def test_predict_exact_on_annz_csv(tmp_path, capsys):
    out = tmp_path / "boss.csv"
    assert main(["predict", "--task", "photoz", "--model", "exact", "--input", str(BOSS), "--out", str(out)]) == 0
    assert _summary(capsys)["model"] == "exact"
    from astropy.table import Table

    t = Table.read(out, format="ascii.csv", comment="#")
    assert len(t) == 40 and set(COLS) <= set(t.colnames)
    assert sum(c.startswith("pz_") for c in t.colnames) > 100


def test_predict_recovers_known_redshifts_of_a_mock_file(tmp_path, capsys):
    """Mock galaxies written as a plain CSV (mag_*, err_*, z_spec) come back with z close to the truth and
    sensible 68% intervals (the mock-trained flow reads the errors as features: no floor is added for it)."""
    from astropy.table import Table

    sim = api.simulate("photoz", 150, seed=77)
    t = Table({f: sim.column(f) for f in sim.features})
    t["z_spec"] = sim.y[:, 0]
    src = tmp_path / "mock.csv"
    t.write(src, format="ascii.csv")
    out = tmp_path / "mock_out.fits"
    args = ["predict", "--task", "photoz", "--model", "flow", "--input", str(src), "--out", str(out), "--quiet"]
    assert main(args) == 0
    r = Table.read(out, hdu="PHOTOZ")
    z = sim.y[:, 0]
    np.testing.assert_allclose(r["z_true"], z)
    nmad = 1.4826 * np.median(np.abs((r["z_median"] - z) / (1 + z)))
    inside = np.mean((r["z_p16"] <= z) & (z <= r["z_p84"]))
    assert nmad < 0.05 and 0.5 < inside < 0.9, (nmad, inside)


def test_predict_refuses_unknown_output_format(tmp_path, capsys):
    assert main(["predict", "--task", "photoz", "--input", str(SDSS), "--out", str(tmp_path / "x.txt")]) == 2
    assert ".csv" in capsys.readouterr().err and not (tmp_path / "x.txt").exists()


def test_prepare_adds_the_calibration_floor_to_files_only():
    m = api.load_bundled("photoz", "exact")
    real = api.read_data(SDSS, "photoz")
    sim = api.simulate("photoz", 20, seed=3)
    got = api.prepare(m, real)
    j = real.features.index("err_r")
    assert np.all(got.x[:, j][np.isfinite(real.x[:, j])] > real.x[:, j][np.isfinite(real.x[:, j])])
    assert api.prepare(m, sim) is sim
    flow = api.load_bundled("photoz", "flow")
    assert api.prepare(flow, real) is real
