"""SAMI DR2 stellar-kinematics maps: one quantity per FITS file, a galaxy's files combined by CATID (lists, uploads,
folders, globs), units, masks and quality cuts, bad input, and a run through the kinematics-only ex-situ model.

The fixtures are synthetic files written here in the SAMI layout (PRIMARY map, VEL_ERR or SIG_ERR, FLUX, FLUX_ERR,
SNR; 50 x 50 spaxels of 0.5 arcsec, WCS centred on the galaxy), not real survey files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core import api
from core.data.io import identify_format, read
from core.data.io.map_sets import apply_reff, parse_reff, read_map_files
from core.errors import GPSError

CATID = 9011900001
N = 50
VEL_NAME = "{catid}_{cube}_stellar-velocity_{binning}_two-moment.fits"
SIG_NAME = "{catid}_{cube}_stellar-velocity-dispersion_{binning}_two-moment.fits"


def galaxy(n: int = N):
    """Velocity, its error, dispersion, its error and S/N maps of a rotating disc; NaN beyond 18 spaxels."""
    yy, xx = np.mgrid[0:n, 0:n].astype(float)
    c = (n - 1) / 2
    x, y = xx - c, yy - c
    r = np.hypot(x, y)
    vel = 120.0 * np.tanh(r / 4) * x / np.maximum(r, 1e-9)
    sig = 60.0 + 120.0 * np.exp(-r / 6)
    snr = 60.0 * np.exp(-r / 8)
    verr = 5.0 + 40.0 * (r / 18) ** 2
    serr = 5.0 + 30.0 * (r / 18) ** 2
    out = r > 18
    for a in (vel, sig, snr, verr, serr):
        a[out] = np.nan
    return {"vel": vel, "VEL_ERR": verr, "sigma": sig, "SIG_ERR": serr, "SNR": snr}


def write_sami(path: Path, value: np.ndarray, err_name: str, err: np.ndarray, snr: np.ndarray | None = None,
               catid: int | None = CATID, unit: str | None = "km/s", snr_name: str = "SNR", wcs: bool = True) -> Path:
    """One SAMI stellar-kinematics file: PRIMARY map, its error HDU, FLUX, FLUX_ERR and the S/N HDU."""
    from astropy.io import fits

    h = fits.Header()
    if wcs:
        h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
        h["CRPIX1"] = h["CRPIX2"] = 25.5
        h["CRVAL1"], h["CRVAL2"] = 180.0, 0.5
        h["CDELT1"], h["CDELT2"] = -0.5 / 3600, 0.5 / 3600
        h["CUNIT1"] = h["CUNIT2"] = "deg"
    if catid is not None:
        h["CATID"] = catid
    if unit is not None:
        h["UNIT"] = unit
    hdus = [fits.PrimaryHDU(value, header=h), fits.ImageHDU(err, name=err_name),
            fits.ImageHDU(np.nan_to_num(value) * 0 + 10.0, name="FLUX"), fits.ImageHDU(np.ones_like(value),
                                                                                       name="FLUX_ERR")]
    if snr is not None:
        hdus.append(fits.ImageHDU(snr, name=snr_name))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def write_sami_pair(d: Path, catid: int = CATID, cube: str = "A", binning: str = "default",
                    maps: dict | None = None, **kw) -> tuple[Path, Path]:
    """A galaxy's velocity and dispersion files under their Data Central names in ``d``."""
    g = maps or galaxy()
    names = {"catid": catid, "cube": cube, "binning": binning}
    v = write_sami(d / VEL_NAME.format(**names), g["vel"], "VEL_ERR", g["VEL_ERR"], g["SNR"], catid=catid, **kw)
    s = write_sami(d / SIG_NAME.format(**names), g["sigma"], "SIG_ERR", g["SIG_ERR"], g["SNR"], catid=catid, **kw)
    return v, s


@pytest.fixture
def pair(tmp_path):
    return write_sami_pair(tmp_path)


# ------------------------------------------------------------------------------------------ one file
def test_one_velocity_file_by_content_with_units_mask_ivar_and_geometry(pair, tmp_path):
    vel_path, sig_path = pair
    assert identify_format(vel_path) == identify_format(sig_path) == "sami_kinematics"
    renamed = tmp_path / "whatever.fits"                      # identified by its HDUs, not its name
    renamed.write_bytes(vel_path.read_bytes())
    assert identify_format(renamed, kind="maps") == "sami_kinematics"
    import gzip

    gz = tmp_path / (vel_path.name + ".gz")
    gz.write_bytes(gzip.compress(vel_path.read_bytes()))
    assert identify_format(gz) == "sami_kinematics" and read(gz).ids.tolist() == [str(CATID)]
    s = read(vel_path, quality_cuts=False)
    g = galaxy()
    assert s.channels == ("vel",) and s.units == ("km / s",) and s.data.shape == (1, 1, N, N)
    assert s.ids.tolist() == [str(CATID)] and s.meta["format"] == "sami_kinematics"
    assert np.isnan(s.reff_arcsec[0])
    assert any("R_eff unknown" in n for n in s.meta["notes"])
    np.testing.assert_array_equal(s.mask[0], ~np.isfinite(g["vel"]))        # the NaN spaxels, and only those
    ok = ~s.mask[0]
    np.testing.assert_allclose(s.data[0, 0][ok], g["vel"][ok], rtol=1e-6)
    np.testing.assert_allclose(s.ivar[0, 0][ok], 1 / g["VEL_ERR"][ok] ** 2, rtol=1e-5)
    assert (s.data[0, 0][~ok] == 0).all() and (s.ivar[0, 0][~ok] == 0).all()
    assert s.pixel_scale_arcsec[0] == pytest.approx(0.5)
    np.testing.assert_allclose(s.center_xy[0], [24.5, 24.5])                 # CRPIX 25.5 (1-based)
    assert s.fits_header()["CTYPE1"] == "RA---TAN"
    assert s.meta["companions"] == {"sigma": SIG_NAME.format(catid=CATID, cube="A", binning="default")}
    d = read(sig_path)
    assert d.channels == ("sigma",) and any("instrument-corrected" in n for n in d.meta["notes"])


def test_sami_quality_cuts_mask_what_the_survey_recommends(tmp_path):
    g = galaxy()
    g["VEL_ERR"][25, 30] = 40.0             # VEL_ERR >= 30 km/s
    g["SNR"][25, 20] = 2.0                  # S/N <= 3
    g["sigma"][30, 25] = 30.0               # sigma <= 35 km/s
    g["SIG_ERR"][20, 25] = 0.1 * g["sigma"][20, 25] + 26.0
    v, s = write_sami_pair(tmp_path, maps=g)
    vel, vel_all = read(v), read(v, quality_cuts=False)
    assert vel.mask[0, 25, 30] and vel.mask[0, 25, 20] and not vel_all.mask[0, 25, 30]
    sig = read(s)
    assert sig.mask[0, 30, 25] and sig.mask[0, 20, 25] and sig.mask[0, 25, 20] and not sig.mask[0, 25, 30]
    assert vel.mask.sum() > vel_all.mask.sum()
    assert any("quality cuts" in n and "van de Sande" in n for n in vel.meta["notes"])
    both = api.read_data([v, s], "exsitu_map")
    np.testing.assert_array_equal(both.mask[0], vel.mask[0] | sig.mask[0])   # the velocity cut reaches sigma


def test_units_from_the_header_are_converted_or_refused(tmp_path):
    g = galaxy()
    p = write_sami(tmp_path / "v_ms.fits", g["vel"] * 1000, "VEL_ERR", g["VEL_ERR"] * 1000, g["SNR"], unit="m/s")
    s = read(p, quality_cuts=False)
    ok = ~s.mask[0]
    np.testing.assert_allclose(s.data[0, 0][ok], g["vel"][ok], rtol=1e-5)
    np.testing.assert_allclose(s.ivar[0, 0][ok], 1 / g["VEL_ERR"][ok] ** 2, rtol=1e-4)
    assert any("m/s -> km/s" in n for n in s.meta["notes"])
    p = write_sami(tmp_path / "v_none.fits", g["vel"], "VEL_ERR", g["VEL_ERR"], g["SNR"], unit=None)
    assert any("km/s assumed" in n for n in read(p).meta["notes"])
    p = write_sami(tmp_path / "v_upper.fits", g["vel"], "VEL_ERR", g["VEL_ERR"], g["SNR"], unit="KM/S")
    assert not any("converted" in n for n in read(p).meta["notes"])
    p = write_sami(tmp_path / "v_deg.fits", g["vel"], "VEL_ERR", g["VEL_ERR"], g["SNR"], unit="deg")
    with pytest.raises(GPSError, match=r"v_deg.fits \[PRIMARY BUNIT/UNIT\]: unit .* is not a velocity.*'deg'"):
        read(p)


def test_catid_from_the_header_else_the_file_name_and_dr2_sn_hdu(tmp_path):
    g = galaxy()
    p = write_sami(tmp_path / "123456_B_stellar-velocity_adaptive_two-moment.fits", g["vel"], "VEL_ERR",
                   g["VEL_ERR"], g["SNR"], catid=None, snr_name="SN", wcs=False)
    s = read(p)
    assert s.ids.tolist() == ["123456"]
    assert s.meta["merge_key"] == {"survey": "SAMI", "catid": "123456", "cube": "B", "binning": "adaptive",
                                   "moments": "two"}
    assert s.meta["companions"]["sigma"] == "123456_B_stellar-velocity-dispersion_adaptive_two-moment.fits"
    assert not any("S/N > 3 cut not applied" in n for n in s.meta["notes"])      # DR2's SN HDU is used
    assert any("no celestial WCS" in n for n in s.meta["notes"]) and s.pixel_scale_arcsec[0] == 0.5
    assert any("adaptive-binned" in n for n in s.meta["notes"])
    q = write_sami(tmp_path / "123456_A_stellar-velocity_default_two-moment.fits", g["vel"], "VEL_ERR",
                   g["VEL_ERR"], None, catid=777)
    s = read(q)
    assert s.ids.tolist() == ["777"] and any("CATID 777 from the header" in n for n in s.meta["notes"])
    assert any("S/N > 3 cut not applied" in n for n in s.meta["notes"])


# ------------------------------------------------------------------------------------------ several files
def test_a_pair_combines_by_catid_from_paths_uploads_folders_and_globs(pair, tmp_path):
    vel_path, sig_path = pair
    s = api.read_data([sig_path, vel_path], "exsitu_map")
    assert s.channels == ("vel", "sigma") and len(s) == 1 and s.ids.tolist() == [str(CATID)]
    assert s.meta["file"] == f"{sig_path.name} + {vel_path.name}" and "companions" not in s.meta
    assert s.meta["format"] == "sami_kinematics" and len(s.meta["sha256"].split(",")) == 2
    assert any(n.startswith(vel_path.name + ": ") for n in s.meta["notes"])
    up = api.read_data([vel_path.read_bytes(), sig_path.read_bytes()], "exsitu_map",
                       filename=[vel_path.name, sig_path.name])        # what the app's uploader passes
    assert up.channels == ("vel", "sigma") and up.meta["files"] == [vel_path.name, sig_path.name]
    np.testing.assert_array_equal(up.data, s.data)
    (tmp_path / "README.txt").write_text("not a map")
    cube = tmp_path / f"{CATID}_A_cube_blue.fits"                     # a SAMI cube next to the maps: skipped
    from astropy.io import fits

    fits.PrimaryHDU(np.zeros((4, N, N), np.float32)).writeto(cube)
    by_dir = api.read_data(tmp_path, "exsitu_map")
    assert by_dir.channels == ("vel", "sigma") and len(by_dir) == 1
    assert any("1 files no map reader recognises were skipped" in n for n in by_dir.meta["notes"])
    by_glob = api.read_data(str(tmp_path / "*_two-moment.fits"), "exsitu_map")
    assert by_glob.channels == ("vel", "sigma") and len(by_glob) == 1


def test_a_folder_of_two_galaxies_gives_two_objects_with_their_own_r_e(tmp_path):
    write_sami_pair(tmp_path, catid=111)
    write_sami_pair(tmp_path, catid=222)
    s = api.read_data(tmp_path, "exsitu_map", reff_arcsec={"111": 3.0, "*": 5.0})
    assert len(s) == 2 and s.ids.tolist() == ["111", "222"] and s.channels == ("vel", "sigma")
    np.testing.assert_allclose(s.reff_arcsec, [3.0, 5.0])
    assert s.meta["file"] == "2 objects from 4 files" and len(s.meta["files"]) == 4
    assert any(n.startswith("[222] ") for n in s.meta["notes"])


def test_files_that_do_not_pair_up_are_refused_naming_them(tmp_path):
    g = galaxy()
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    v, _ = write_sami_pair(tmp_path / "a", catid=111)
    _, s2 = write_sami_pair(tmp_path / "b", catid=222)
    with pytest.raises(GPSError, match="do not pair up") as e:                   # mismatched CATIDs
        api.read_data([v, s2], "exsitu_map")
    assert "111 (" in str(e.value) and "lacks sigma" in str(e.value)
    assert "add 111_A_stellar-velocity-dispersion_default_two-moment.fits" in str(e.value)
    v2 = write_sami(tmp_path / "111_B_stellar-velocity_default_two-moment.fits", g["vel"], "VEL_ERR", g["VEL_ERR"],
                    g["SNR"], catid=111)
    with pytest.raises(GPSError, match="two files give channel vel of object 111"):
        api.read_data([v, v2], "exsitu_map")
    s_adapt = write_sami(tmp_path / "111_A_stellar-velocity-dispersion_adaptive_two-moment.fits", g["sigma"],
                         "SIG_ERR", g["SIG_ERR"], g["SNR"], catid=111)
    with pytest.raises(GPSError, match=r"\[binning\]: files of object 111 do not belong together.*default.*adaptive"):
        api.read_data([v, s_adapt], "exsitu_map")
    small = {k: a[5:45, 5:45] for k, a in galaxy().items()}
    s_small = write_sami(tmp_path / "111_A_stellar-velocity-dispersion_default_two-moment.fits", small["sigma"],
                         "SIG_ERR", small["SIG_ERR"], small["SNR"], catid=111)
    with pytest.raises(GPSError, match=r"maps of object 111 have different shapes.*\(50, 50\).*\(40, 40\)"):
        api.read_data([v, s_small], "exsitu_map")
    with pytest.raises(GPSError, match="central_mass reads one file at a time"):
        api.read_data([v, s2], "central_mass")
    with pytest.raises(GPSError, match="no file matches the pattern"):
        api.read_data(str(tmp_path / "nothing_*.fits"), "exsitu_map")


def test_bad_files_name_the_file_hdu_expected_and_found(tmp_path):
    from astropy.io import fits

    g = galaxy()
    no_err = tmp_path / "no_err.fits"
    fits.HDUList([fits.PrimaryHDU(g["vel"]), fits.ImageHDU(g["SNR"], name="SNR")]).writeto(no_err)
    with pytest.raises(GPSError, match="unrecognised file format"):
        read(no_err, kind="maps")                                       # not claimed by the SAMI identifier
    with pytest.raises(GPSError, match=r"no_err.fits \[VEL_ERR / SIG_ERR\].*exactly one of VEL_ERR.*found HDUs "
                                       r"PRIMARY, SNR"):
        read(no_err, format="sami_kinematics")
    bad_shape = write_sami(tmp_path / "bad_shape.fits", g["vel"], "VEL_ERR", g["VEL_ERR"][:40, :40], g["SNR"])
    with pytest.raises(GPSError, match=r"bad_shape.fits \[VEL_ERR\]: map shapes do not match.*\(50, 50\).*\(40, 40\)"):
        read(bad_shape)
    cube = tmp_path / "cube.fits"
    fits.HDUList([fits.PrimaryHDU(np.stack([g["vel"]] * 3)), fits.ImageHDU(np.stack([g["VEL_ERR"]] * 3),
                                                                            name="VEL_ERR")]).writeto(cube)
    with pytest.raises(GPSError, match=r"cube.fits \[PRIMARY\]: SAMI map is not 2-D.*\(3, 50, 50\)"):
        read(cube, format="sami_kinematics")
    h3 = write_sami(tmp_path / "h3.fits", g["vel"] / 1000, "H3_ERR", g["VEL_ERR"] / 1000, g["SNR"], unit=None)
    with pytest.raises(GPSError, match=r"h3.fits \[H3_ERR\]: a SAMI h3 map: not an input of the models"):
        read(h3, format="sami_kinematics")
    empty = write_sami(tmp_path / "empty.fits", np.full((N, N), np.nan), "VEL_ERR", g["VEL_ERR"], g["SNR"])
    with pytest.raises(GPSError, match=r"empty.fits \[object 9011900001\]: every pixel is masked"):
        read(empty)
    trunc = tmp_path / "trunc.fits"
    trunc.write_bytes((tmp_path / "h3.fits").read_bytes()[:4000])
    with pytest.raises(GPSError, match="trunc.fits"):
        read(trunc, format="sami_kinematics")


# ------------------------------------------------------------------------------------------ R_e
def test_reff_is_an_explicit_parameter_with_notes_and_checks(pair):
    vel_path, _ = pair
    s = read(vel_path)
    assert np.isnan(s.reff_arcsec[0])
    given = apply_reff(s, 4.0)
    assert given.reff_arcsec[0] == 4.0 and any("4 arcsec given" in n for n in given.meta["notes"])
    with pytest.raises(GPSError, match="implausible effective radius"):
        apply_reff(s, -1.0)
    with pytest.raises(GPSError, match=r"R_e given for objects that are not in the data.*found 42"):
        apply_reff(s, {"42": 3.0})
    assert parse_reff(["4.5"]) == 4.5 and parse_reff(["111=3", "2.5"]) == {"111": 3.0, "*": 2.5}
    assert parse_reff(None) is None
    with pytest.raises(GPSError, match=r"\[--reff-arcsec\].*ID=ARCSEC"):
        parse_reff(["111=big"])
    assert read_map_files(vel_path, reff_arcsec=2.0).reff_arcsec[0] == 2.0


# ------------------------------------------------------------------------------------------ through the model
@pytest.fixture(scope="module")
def kin_model():
    items = [b for b in api.bundled_checkpoints("exsitu_map")
             if tuple(b["metadata"].get("features") or ()) == ("vel", "sigma")]
    if not items:
        pytest.skip("no bundled kinematics-only ex-situ checkpoint")
    return api.load_checkpoint(items[0]["path"])


def test_lone_velocity_file_names_the_missing_dispersion_file_and_unknown_r_e_is_asked_for(pair, kin_model):
    vel_path, sig_path = pair
    lone = api.read_data(vel_path, "exsitu_map", reff_arcsec=4.0)
    with pytest.raises(GPSError, match="lacks channel sigma") as e:
        api.prepare(kin_model, lone)
    assert f"sigma is in {sig_path.name} (read the files together)" in str(e.value)
    no_re = api.read_data([vel_path, sig_path], "exsitu_map")
    with pytest.raises(GPSError, match=r"\[reff_arcsec\]: the effective radius is unknown.*--reff-arcsec"):
        api.prepare(kin_model, no_re)


def test_a_sami_pair_runs_through_the_kinematics_checkpoint(pair, kin_model):
    vel_path, sig_path = pair
    data = api.read_data([vel_path, sig_path], "exsitu_map", reff_arcsec=4.0)
    m = api.load_bundled("exsitu_map", data=data)             # the bundled model whose inputs the pair has
    assert tuple(m.features) == ("vel", "sigma")
    post = api.posterior(kin_model, data, n_samples=20, seed=0)
    assert post.n == 1
    ok = ~post.mask[0]
    assert ok.sum() > 100 and np.isfinite(post.mean[0][ok]).all()
    assert ((post.mean[0][ok] >= 0) & (post.mean[0][ok] <= 1)).all()


def test_predict_cli_takes_the_pair_and_an_r_e(pair, tmp_path, kin_model, capsys):
    from astropy.io import fits

    from core.__main__ import main

    vel_path, sig_path = pair
    out = tmp_path / "fex.fits"
    rc = main(["predict", "--task", "exsitu_map", "--input", str(vel_path), str(sig_path), "--reff-arcsec", "4",
               "--samples", "10", "--quiet", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out)
    assert summary["objects"] == 1 and summary["checkpoint"].endswith("kinematics.gps")
    with fits.open(out) as hdul:
        hdr = hdul[0].header
        assert hdr["OBJID"] == str(CATID) and hdr["INFILE"].startswith(f"{vel_path.name} + ")
        history = "".join(hdr["HISTORY"])
        assert "R_e 4 arcsec given" in history and "SAMI quality cuts" in history
    assert main(["predict", "--task", "exsitu_map", "--input", str(vel_path), str(sig_path), "--quiet",
                 "--out", str(tmp_path / "x.fits")]) == 2
    assert "effective radius is unknown" in capsys.readouterr().err
    assert main(["predict", "--task", "central_mass", "--input", str(vel_path), str(sig_path), "--quiet",
                 "--out", str(tmp_path / "c.csv")]) == 2
    assert "central_mass reads one --input file at a time" in capsys.readouterr().err
    assert main(["predict", "--task", "central_mass", "--input", str(vel_path), "--reff-arcsec", "3", "--quiet",
                 "--out", str(tmp_path / "c.csv")]) == 2
    assert "--reff-arcsec does not apply to central_mass" in capsys.readouterr().err
