"""CLI parity with the Data page: ``--map COLUMN=INPUT[:UNIT]``, ``--h``, ``--id-column``; the validation report's
warnings go to stderr and into the output's provenance; raw simulation units never pass in silence."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from core.__main__ import main
from core.data.column_map import parse_column_map
from core.errors import GPSError
from core.tasks import get_task

H = 0.6774


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """The same galaxies as a canonical table and as a raw TNG-like table (1e10 Msun/h, linear SFR, no units)."""
    d = tmp_path_factory.mktemp("colmap")
    assert main(["simulate", "--task", "halo_mass", "--n", "600", "--seed", "3", "--out", str(d / "sim.fits")]) == 0
    assert main(["train", "--task", "halo_mass", "--model", "shmr", "--data", str(d / "sim.fits"), "--quiet",
                 "--out", str(d / "shmr.gps")]) == 0
    sim = Table.read(d / "sim.fits")
    gal = np.arange(len(sim)) * 7 + 1000
    canon = Table({"galaxy": gal, "log_mstar": np.asarray(sim["log_mstar"]), "log_sfr": np.asarray(sim["log_sfr"])})
    raw = Table({"galaxy": gal, "mstar": 10 ** np.asarray(sim["log_mstar"]) / 1e10 * H,
                 "sfr": 10 ** np.asarray(sim["log_sfr"])})
    canon.write(d / "canon.csv")
    raw.write(d / "raw.csv")
    return d


def _predict(d, inp, out, *extra):
    return main(["predict", "--checkpoint", str(d / "shmr.gps"), "--input", str(d / inp), "--out", str(d / out),
                 "--samples", "200", "--quiet", *extra])


def test_raw_units_never_pass_in_silence(tables, capsys):
    rc = _predict(tables, "raw.csv", "raw_silent.csv")
    err = capsys.readouterr().err
    assert rc == 2 or "warning:" in err, err


def test_map_with_units_and_h_gives_the_converted_tables_posteriors(tables, capsys):
    assert _predict(tables, "canon.csv", "canon_post.csv", "--id-column", "galaxy") == 0
    rc = _predict(tables, "raw.csv", "raw_post.csv", "--map", "mstar=log_mstar:1e10 Msun/h",
                  "--map", "sfr=log_sfr:Msun/yr", "--h", str(H), "--id-column", "galaxy")
    assert rc == 0, capsys.readouterr().err
    a, b = (Table.read(tables / f, format="ascii.csv", comment="#") for f in ("canon_post.csv", "raw_post.csv"))
    assert list(a["id"]) == list(b["id"]) == list(Table.read(tables / "canon.csv")["galaxy"])  # ids and row order
    mean = next(c for c in a.colnames if c.endswith("_mean"))
    np.testing.assert_allclose(np.asarray(b[mean], float), np.asarray(a[mean], float), atol=1e-4)


def test_warnings_go_into_the_provenance(tables, capsys):
    t = Table.read(tables / "canon.csv")
    t["log_mstar"][:5] = 12.9  # outside the training domain: a warning, not a refusal
    t.write(tables / "edge.csv", overwrite=True)
    assert _predict(tables, "edge.csv", "edge_post.csv") == 0
    assert "warning:" in capsys.readouterr().err
    prov = [ln for ln in (tables / "edge_post.csv").read_text().splitlines() if ln.startswith("# validation_warnings")]
    assert prov and "5 value(s) of log_mstar outside the training domain" in prov[0]


def test_parse_column_map():
    task = get_task("halo_mass")
    assert parse_column_map(["M=log_mstar:1e10 Msun/h", "s=log_sfr"], task) == (
        {"log_mstar": "M", "log_sfr": "s"}, {"log_mstar": "1e10 Msun/h"})
    assert parse_column_map(["log_mstar=M"], task) == ({"log_mstar": "M"}, {})  # the older NAME=COLUMN order
    with pytest.raises(GPSError):
        parse_column_map(["M=not_an_input"], task)
