"""Per-galaxy typicality (misspecification) score: calibration on the training distribution, power on shifted
inputs, missing inputs, checkpoint storage, the bundled fallback, and the columns in exports and CLI outputs."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from scipy import stats

from core import api
from core.errors import GPSError
from core.metrics import typicality as T

FEATS = ("log_mstar", "log_sfr", "u_g", "g_r", "r_i", "i_z", "conc", "log_fgas")


@pytest.fixture(scope="module")
def ref():
    return T.build_reference(api.simulate("halo_mass", 3000, seed=11), FEATS)


@pytest.fixture(scope="module")
def fresh():
    return T._matrix(api.simulate("halo_mass", 1500, seed=12), FEATS)


def test_p_values_are_uniform_on_fresh_draws_of_the_training_distribution(ref, fresh):
    p = T.typicality_p(ref, fresh)
    assert np.isfinite(p).all() and p.min() > 0 and p.max() <= 1
    assert stats.kstest(p, "uniform").pvalue > 1e-3
    assert (p < T.ALPHA).mean() < 0.03  # 1% expected


@pytest.mark.parametrize(
    "cols, shift, min_flagged", [((0,), 1.5, 0.2), ((2, 3, 4, 5), 0.5, 0.9)], ids=["mstar+1.5dex", "colours+0.5mag"]
)
def test_shifted_inputs_get_small_p(ref, fresh, cols, shift, min_flagged):
    # log M* +1.5 dex moves a galaxy partly along the family's own SHMR spread (26% flagged on the family simulator,
    # 47% on the former single-relation one); colours +0.5 mag leave the colour-mass locus entirely
    x = fresh.copy()
    x[:, list(cols)] += shift
    p = T.typicality_p(ref, x)
    assert np.median(p) < 0.05
    assert (p < T.ALPHA).mean() > min_flagged


def test_missing_inputs_are_scored_on_the_observed_ones(ref, fresh):
    x = fresh.copy()
    x[::2, 2] = np.nan  # u-g missing in half the rows
    x[1::3, 6:] = np.nan  # conc and f_gas missing in a third
    x[5] = np.nan  # nothing observed: no score, not flagged
    p = T.typicality_p(ref, x)
    ok = np.isfinite(p)
    assert ok.sum() == len(x) - 1 and not ok[5]
    assert stats.kstest(p[ok], "uniform").pvalue > 1e-3
    shifted = x.copy()
    shifted[:, 0] += 1.5
    shifted[:, 3] += 0.5
    assert np.nanmedian(T.typicality_p(ref, shifted)) < 0.05


def _shmr_with_reference():
    tr = api.simulate("halo_mass", 2000, seed=13)
    m = api.train("halo_mass", "shmr", tr)
    T.attach_reference(m, tr)
    return m


def test_reference_is_stored_in_the_checkpoint_and_tampering_is_refused(fresh):
    m = _shmr_with_reference()
    raw = api.checkpoint_bytes(m)
    back = api.load_checkpoint(raw)
    assert back.typicality.features == m.typicality.features and back.typicality.n == m.typicality.n
    x = fresh[:, :1]  # the SHMR model reads log M* only
    np.testing.assert_allclose(T.typicality_p(back.typicality, x), T.typicality_p(m.typicality, x), atol=2e-3)
    meta = json.loads(zipfile.ZipFile(io.BytesIO(raw)).read("metadata.json"))
    assert (
        meta["typicality"]["k"] == T.K_NEIGHBOURS
        and "typicality.safetensors" in zipfile.ZipFile(io.BytesIO(raw)).namelist()
    )
    # an edited reference no longer matches its checksum
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(buf, "w") as dst:
        for n in src.namelist():
            b = src.read(n)
            if n == "typicality.safetensors":
                b = b[:-8] + bytes(8)
            dst.writestr(n, b)
    with pytest.raises(GPSError, match="typicality reference"):
        api.load_checkpoint(buf.getvalue())


def test_bundled_checkpoint_without_reference_simulates_one():
    m = api.load_bundled("halo_mass", "shmr")
    m.typicality = None
    ref = T.reference_for(m)
    assert ref is not None and ref.n == T.N_REFERENCE and "simulated" in ref.source


def test_annotate_adds_columns_that_reach_the_export(tmp_path):
    from astropy.table import Table

    m = _shmr_with_reference()
    d = api.simulate("halo_mass", 300, seed=14)
    d.x[:30, 0] += 4.0  # ten per cent far outside (the SHMR model reads log M* only)
    post = T.annotate(m, d, api.posterior(m, d, n_samples=100))
    assert post.diagnostics["atypical"][:30].mean() > 0.5 and post.diagnostics["atypical"][30:].mean() < 0.05
    s = T.summary(post)
    assert s["n_scored"] == 300 and 0.05 < s["fraction_atypical"] < 0.2
    groups = {r["rows"]: r for r in T.scores_by_typicality(post, d.y)}
    assert groups["typical"]["n"] + groups["atypical"]["n"] == 300
    for fmt, ext in (("csv", "csv"), ("fits", "fits"), ("hdf5", "h5")):
        raw = api.export_posterior(post, d, fmt, task="halo_mass")
        p = tmp_path / f"post.{ext}"
        p.write_bytes(raw)
        if fmt == "hdf5":
            import h5py

            with h5py.File(p) as f:
                names = set(f["posterior"].dtype.names) if "posterior" in f else set(_h5_names(f))
        elif fmt == "csv":
            names = set(Table.read(p, format="ascii.csv", comment="#").colnames)
        else:
            names = set(Table.read(p, hdu=1).colnames)
        assert {"typicality_p", "atypical"} <= names, (fmt, names)


def _h5_names(f):
    out = []
    f.visit(out.append)
    return [n.rsplit("/", 1)[-1] for n in out]
