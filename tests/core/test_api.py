"""core.api: bundled checkpoints load, and every method is compared on the same galaxies."""

from __future__ import annotations

import threading

import numpy as np

from core import api
from core.compare import compare_methods


def test_bundled_checkpoints_cover_every_halo_mass_method():
    names = {b["model"] for b in api.bundled_checkpoints("halo_mass")}
    assert set(api.get_task("halo_mass").methods) <= names
    m = api.load_bundled("halo_mass")
    assert m.name == api.get_task("halo_mass").models[0] == "flow"
    assert m.card["provenance"]["simulator"] == "catalog"


def test_compare_methods_scores_all_on_the_same_galaxies():
    cat = api.simulate("halo_mass", 600, seed=11)
    ev = cat.subset(np.arange(500, 530))
    calls = []
    out = compare_methods("halo_mass", cat, ev, None, progress=lambda k, n, msg="": calls.append((k, n)))
    assert out["n"] == 30 and not out["notes"], out["notes"]
    assert set(out["scores"]) == {"flow", "vae_hmc", "exact", "shmr", "lightgbm"}
    assert out["scores"]["exact"].get("kl_to_exact") in (None, 0.0)
    assert out["scores"]["flow"]["rmse"] > 0 and out["scores"]["vae_hmc"]["coverage_68"] >= 0
    assert out["scores"]["flow"]["kl_to_exact"] >= 0
    assert out["importance"] and "log_mstar" in out["importance"]
    assert calls[-1] == (5, 5)


def test_compare_methods_honours_stop():
    cat = api.simulate("halo_mass", 200, seed=12)
    stop = threading.Event()
    stop.set()
    out = compare_methods("halo_mass", cat, cat, None, stop=stop)
    assert out["scores"] == {} and out["notes"] == ["stopped by user"]


def test_prepare_is_idempotent_so_pages_prepare_once():
    """A real map file is regridded once: preparing prepared data returns them as they are (no second regrid, no
    doubled notes), so api.posterior after api.prepare does no extra work."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "data" / "NGC4047_cut.pipe3d.hdf5"
    data = api.read_data(path, "exsitu_map")
    m = api.load_bundled("exsitu_map", data=data)
    once = api.prepare(m, data)
    assert once is not data and any("regridded onto the model grid" in n for n in once.meta["notes"])
    twice = api.prepare(m, once)
    assert twice is once and sum("regridded onto the model grid" in n for n in twice.meta["notes"]) == 1
    assert "prepared_for" not in data.meta          # the file's own data are not marked

