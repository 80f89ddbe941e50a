"""Table readers/writers: round trips with units + meta, chunked streaming, CSV dialects, TNG chunks, bad files."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy import units as u
from astropy.cosmology import units as cu
from astropy.io import fits
from astropy.table import Table, vstack

from core.data.io import identify_format
from core.data.io.tables import iter_table_chunks, read_table, write_table
from core.data.io.tng import read_tng_groupcat
from core.errors import GPSError

DATA = Path(__file__).resolve().parents[2] / "data"
TNG = DATA / "fof_subhalo_tab_099.36_trim.hdf5"
EXT = {"csv": "csv", "fits": "fits", "hdf5": "h5", "parquet": "parquet"}


def _table(n: int = 7) -> Table:
    rng = np.random.default_rng(1)
    t = Table()
    t["id"] = np.arange(n, dtype=np.int64) + 100
    t["log_mstar"] = rng.uniform(9, 12, n) * u.dex(u.Msun)
    t["log_sfr"] = rng.uniform(-2, 1, n) * u.dex(u.Msun / u.yr)
    t["g_r"] = rng.uniform(0, 1, n) * u.mag
    t["m200"] = rng.uniform(1, 100, n) * (u.Unit("1e10 solMass") / cu.littleh)
    t["conc"] = rng.uniform(2, 3, n)
    t["name"] = [f"gal{i}" for i in range(n)]
    t["log_mstar"][2] = np.nan
    t.meta.update({"h": 0.6774, "simulator": "catalog", "seed": 3})
    return t


# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", list(EXT))
def test_round_trip_keeps_values_units_meta(tmp_path, fmt):
    t = _table()
    p = tmp_path / f"cat.{EXT[fmt]}"
    write_table(t, p)
    assert identify_format(p, kind="table") == fmt
    r = read_table(p)
    assert r.colnames == t.colnames
    for c in ("log_mstar", "log_sfr", "g_r", "m200", "conc"):
        np.testing.assert_allclose(np.asarray(r[c]), np.asarray(t[c]), rtol=0, atol=1e-12, equal_nan=True)
        assert (r[c].unit is None) == (t[c].unit is None), c
        if t[c].unit is not None:
            assert r[c].unit == t[c].unit, (c, r[c].unit)
    assert list(r["name"]) == list(t["name"]) and list(r["id"]) == list(t["id"])
    assert r.meta["h"] == 0.6774 and r.meta["seed"] == 3 and r.meta["simulator"] == "catalog"
    assert r.meta["source_file"] == p.name and r.meta["format"] == fmt and len(r.meta["sha256"]) == 64


@pytest.mark.parametrize("fmt", list(EXT))
def test_chunks_concatenate_to_the_whole_table(tmp_path, fmt):
    t = _table(23)
    p = tmp_path / f"cat.{EXT[fmt]}"
    write_table(t, p)
    chunks = list(iter_table_chunks(p, 5))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 3]
    assert [c.meta["chunk_start"] for c in chunks] == [0, 5, 10, 15, 20]
    whole = vstack(chunks, metadata_conflicts="silent")
    np.testing.assert_allclose(np.asarray(whole["log_mstar"]), np.asarray(t["log_mstar"]), equal_nan=True)
    assert all(c["log_mstar"].unit == u.dex(u.Msun) and c["g_r"].unit == u.mag for c in chunks)
    assert chunks[-1].meta["source_file"] == p.name and chunks[0].meta["h"] == 0.6774


def test_csv_chunks_stream_in_constant_memory(tmp_path):
    n = 200_000
    p = tmp_path / "big.csv"
    rng = np.random.default_rng(0)
    with open(p, "w") as fh:
        fh.write("log_mstar,log_sfr,g_r\n")
        np.savetxt(fh, rng.normal(size=(n, 3)), delimiter=",", fmt="%.6f")
    small = tmp_path / "small.csv"
    small.write_text("a,b\n1,2\n")
    list(iter_table_chunks(small, 10))                  # warm up: imports are not the reader's memory
    tracemalloc.start()
    total = 0
    for c in iter_table_chunks(p, 2_000):
        total += len(c)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == n
    assert peak < 3e6, f"peak {peak / 1e6:.1f} MB for a {os.path.getsize(p) / 1e6:.1f} MB file"


@pytest.mark.parametrize("text,sep_name", [
    ("# a catalogue\nlog_mstar\tlog_sfr\tg-r\n10.5\t0.1\t0.7\n11.0\t-1\t0.8\n", "tab"),
    ("#log_mstar log_sfr g-r\n10.5   0.1  0.7\n11.0 -1 0.8\n", "whitespace, '#' header"),
    ("log_mstar;log_sfr;g-r\n10.5;0.1;0.7\n11.0;-1;0.8\n", "semicolon"),
    ("#F:log_mstar;F:log_sfr;F:g-r\n10.5;0.1;0.7\n11.0;-1;0.8\n", "ANNz type prefixes"),
])
def test_csv_dialects(tmp_path, text, sep_name):
    p = tmp_path / "t.txt"
    p.write_text(text)
    t = read_table(p)
    assert t.colnames == ["log_mstar", "log_sfr", "g-r"], sep_name
    np.testing.assert_allclose(t["log_sfr"], [0.1, -1.0])


def test_csv_unit_hints_and_missing_cells(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("# units: mstar=Msun, sfr=Msun/yr\nmstar,sfr,M200 [1e10 Msun/h],g_r\n1e10,1.5,3,\n2e10,,4,0.5\n")
    t = read_table(p)
    assert t["mstar"].unit == u.Msun and t["sfr"].unit == u.Msun / u.yr
    assert t["M200"].unit == u.Unit("1e10 solMass") / cu.littleh
    assert np.isnan(t["sfr"][1]) and np.isnan(t["g_r"][0])


def test_csv_without_header_gets_generated_names(tmp_path):
    p = tmp_path / "n.dat"
    p.write_text("1 2 3\n4 5 6\n")
    t = read_table(p)
    assert t.colnames == ["col1", "col2", "col3"] and t.meta["csv_header"] == "generated"


def test_fits_picks_first_table_hdu_or_the_named_one(tmp_path):
    p = tmp_path / "two.fits"
    a, b = Table({"x": [1.0, 2.0]}), Table({"y": [3.0, 4.0, 5.0]})
    b["y"].unit = u.km / u.s
    hdus = [fits.PrimaryHDU(np.zeros((2, 2))), fits.table_to_hdu(a), fits.table_to_hdu(b)]
    hdus[1].name, hdus[2].name = "FIRST", "SECOND"
    fits.HDUList(hdus).writeto(p)
    assert read_table(p).colnames == ["x"]
    r = read_table(p, hdu="SECOND")
    assert r.colnames == ["y"] and r["y"].unit == u.km / u.s and r.meta["fits_hdu"] == 2
    with pytest.raises(GPSError, match=r"two.fits \[HDU 0 'PRIMARY'\].*not a table"):
        read_table(p, hdu=0)
    with pytest.raises(GPSError, match=r"two.fits \[hdu\].*no HDU 'NOPE'.*SECOND"):
        read_table(p, hdu="NOPE")


def test_hdf5_group_of_datasets_with_unit_attrs_and_named_path(tmp_path):
    p = tmp_path / "g.h5"
    with h5py.File(p, "w") as f:
        g = f.create_group("galaxies")
        g["mstar"] = np.array([1e10, 2e10])
        g["mstar"].attrs["unit"] = "Msun"
        g["sfr"] = np.array([1.0, 0.0])
        g["sfr"].attrs["units"] = b"Msun/yr"
        g["spectrum"] = np.zeros((2, 5))            # not a column: skipped, noted
        f["other/x"] = np.arange(3.0)
    t = read_table(p)
    assert t.meta["hdf5_path"] == "galaxies" and t.meta["hdf5_other_tables"] == ["other"]
    assert t.colnames == ["mstar", "sfr"] and t["mstar"].unit == u.Msun and t["sfr"].unit == u.Msun / u.yr
    assert t.meta["hdf5_skipped"] == ["spectrum"]
    assert read_table(p, path="other").colnames == ["x"]
    with pytest.raises(GPSError, match=r"g.h5 \[path\].*no table at path 'nope'.*galaxies"):
        read_table(p, path="nope")
    assert [len(c) for c in iter_table_chunks(p, 1, hdf5_path="galaxies")] == [1, 1]


# ---------------------------------------------------------------------------------------------------
# IllustrisTNG Subfind chunk (trimmed real fixture)
# ---------------------------------------------------------------------------------------------------
def test_tng_fixture_is_identified_and_read_with_known_values():
    assert identify_format(TNG, kind="table") == "tng_subfind"
    t = read_table(TNG)
    with h5py.File(TNG, "r") as f:        # independent recomputation from the raw fields
        h = f["Header"].attrs["HubbleParam"]
        m200 = float(f["Group/Group_M_Crit200"][0])
        s = f["Group/GroupFirstSub"][0] - 83280
        mrad = f["Subhalo/SubhaloMassInRadType"][s].astype(np.float64)
        phot = f["Subhalo/SubhaloStellarPhotometrics"][s].astype(np.float64)
        sfr_rad = f["Subhalo/SubhaloSFRinRad"][s]
    assert len(t) == 1 and t["subhalo_id"][0] == 83280 and t["group_id"][0] == 8
    assert h == pytest.approx(0.6774)
    assert t["log_mh"][0] == pytest.approx(np.log10(m200 * 1e10 / h), abs=1e-6)
    assert t["log_mh"][0] == pytest.approx(14.318, abs=1e-3)
    assert t["log_mstar"][0] == pytest.approx(np.log10(mrad[4] * 1e10 / h), abs=1e-6)
    assert t["g_r_rest_nodust"][0] == pytest.approx(phot[4] - phot[5], abs=1e-6)
    assert t["i_z_rest_nodust"][0] == pytest.approx(phot[6] - phot[7], abs=1e-6)
    assert t["log_mgas_total_over_mstar"][0] == pytest.approx(np.log10(mrad[0] / mrad[4]), abs=1e-6)
    # rest-frame dust-free colours and total gas are not the task's inputs: never under the task's names
    assert not {"g_r", "r_i", "i_z", "log_fgas"} & set(t.colnames)
    assert sfr_rad == 0 and np.isnan(t["log_sfr"][0])             # zero SFR -> missing, not a fake value
    assert "u_g" not in t.colnames
    assert t["log_mh"].unit == u.dex(u.Msun) and t["log_sfr"].unit == u.dex(u.Msun / u.yr)
    assert t["g_r_rest_nodust"].unit == u.mag
    m = t.meta
    assert (m["snapshot"], m["chunk"], m["h"], m["box_size"]) == (99, 36, pytest.approx(0.6774), 75000.0)
    assert m["redshift"] == pytest.approx(0.0, abs=1e-12) and "SFR = 0" in m["notes"]


def test_tng_total_aperture_and_sfr_floor():
    t = read_tng_groupcat(TNG, aperture="total", sfr_floor=-3.0)
    with h5py.File(TNG, "r") as f:
        mt = f["Subhalo/SubhaloMassType"][0].astype(np.float64)
        sfr = float(f["Subhalo/SubhaloSFR"][0])
    assert t["log_mstar"][0].value == pytest.approx(np.log10(mt[4] * 1e10 / 0.6774), abs=1e-6)
    assert t["log_sfr"][0].value == pytest.approx(np.log10(sfr), abs=1e-6)   # total SFR > 0 here
    assert t["log_mgas_total_over_mstar"][0].value == pytest.approx(np.log10(mt[0] / mt[4]), abs=1e-6)


def _fake_chunk(path, first_sub, grnr, m200, numfiles=4):
    n = len(grnr)
    with h5py.File(path, "w") as f:
        hd = f.create_group("Header")
        hd.attrs.update({"HubbleParam": 0.7, "Redshift": 0.0, "BoxSize": 1000.0, "NumFiles": numfiles})
        f["Group/GroupFirstSub"] = np.asarray(first_sub, np.int32)
        f["Group/Group_M_Crit200"] = np.asarray(m200, np.float32)
        mt = np.zeros((n, 6), np.float32)
        mt[:, 4] = np.arange(1, n + 1)
        mt[:, 0] = 2 * np.arange(1, n + 1)
        for k in ("SubhaloMassType", "SubhaloMassInRadType"):
            f[f"Subhalo/{k}"] = mt
        f["Subhalo/SubhaloSFR"] = np.ones(n, np.float32)
        f["Subhalo/SubhaloSFRinRad"] = np.ones(n, np.float32)
        f["Subhalo/SubhaloStellarPhotometrics"] = np.zeros((n, 8), np.float32)
        f["Subhalo/SubhaloGrNr"] = np.asarray(grnr, np.int32)


def test_tng_centrals_matched_through_global_offsets(tmp_path):
    # chunk: groups 50..53 (global); subhaloes 1000..1006 (global); group 52 has no subhalo; the first two
    # local subhaloes are satellites of group 49 (stored in an earlier chunk); group 53's central is elsewhere.
    p = tmp_path / "fof_subhalo_tab_033.2.hdf5"
    _fake_chunk(p, first_sub=[1002, 1005, -1, 2000], grnr=[49, 49, 50, 50, 50, 51, 51],
                m200=[10.0, 5.0, 1.0, 0.5])
    t = read_table(p)
    assert list(t["subhalo_id"]) == [1002, 1005] and list(t["group_id"]) == [50, 51]
    assert t.meta["subhalo_offset"] == 1000 and t.meta["group_offset"] == 50
    np.testing.assert_allclose(t["log_mstar"], np.log10(np.array([3.0, 6.0]) * 1e10 / 0.7))
    np.testing.assert_allclose(t["log_mh"], np.log10(np.array([10.0, 5.0]) * 1e10 / 0.7))
    assert t.meta["snapshot"] == 33 and t.meta["chunk"] == 2


# ---------------------------------------------------------------------------------------------------
# bad input: each error names the file, the HDU/path/column, what was expected and what was found
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["csv", "fits", "h5", "parquet"])
def test_empty_file(tmp_path, ext):
    p = tmp_path / f"empty.{ext}"
    p.write_bytes(b"")
    with pytest.raises(GPSError, match=rf"empty.{ext}.*empty.*found 0 bytes"):
        read_table(p)


def test_truncated_fits(tmp_path):
    p = tmp_path / "cut.fits"
    write_table(_table(500), p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) - 9000])
    with pytest.raises(GPSError, match=r"cut.fits \[HDU 1 'CATALOG'\]: file is truncated \(expected \d+ bytes"):
        read_table(p)


def test_text_file_with_fits_extension(tmp_path):
    p = tmp_path / "fake.fits"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(GPSError, match=r"fake.fits: not a FITS file \(expected the FITS signature.*found first "
                                       r"bytes b'a,b"):
        read_table(p)


def test_text_file_with_hdf5_extension_and_truncated_hdf5(tmp_path):
    p = tmp_path / "fake.h5"
    p.write_text("just text 123\n")
    with pytest.raises(GPSError, match=r"fake.h5: not an HDF5 file \(expected the HDF5 signature"):
        read_table(p)
    q = tmp_path / "cut.h5"
    write_table(_table(2000), q)
    q.write_bytes(q.read_bytes()[:3000])
    with pytest.raises(GPSError, match=r"cut.h5: cannot (open|read).*(expected a complete HDF5 file)?"):
        read_table(q)


def test_tng_file_without_expected_groups(tmp_path):
    p = tmp_path / "fof_subhalo_tab_099.0.hdf5"
    with h5py.File(p, "w") as f:
        f.create_group("Header").attrs["HubbleParam"] = 0.7
        f["Group/GroupFirstSub"] = np.zeros(2, np.int32)
    assert identify_format(p, kind="table") == "tng_subfind"
    with pytest.raises(GPSError, match=r"fof_subhalo_tab_099.0.hdf5 \[/\]: not a TNG Subfind group catalogue: "
                                       r"missing HDF5 group\(s\) Subhalo \(expected groups Header, Group, Subhalo"
                                       r".*found top-level keys: Group, Header\)"):
        read_table(p)
    with h5py.File(p, "a") as f:
        f["Subhalo/SubhaloGrNr"] = np.zeros(2, np.int32)
    with pytest.raises(GPSError, match=r"\[Group\]: TNG chunk lacks field\(s\) Group_M_Crit200"):
        read_table(p)


def test_unrecognised_binary_file(tmp_path):
    p = tmp_path / "blob.bin"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(GPSError, match=r"blob.bin: unrecognised file format \(expected one of .*found first bytes"):
        read_table(p)


def test_unknown_output_extension(tmp_path):
    with pytest.raises(GPSError, match=r"out.xyz.*cannot tell the table format.*found .xyz"):
        write_table(_table(), tmp_path / "out.xyz")
