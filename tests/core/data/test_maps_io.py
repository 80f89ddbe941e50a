"""MapStack container, regridding, and the IFU map readers (MaNGA DAP, Pipe3D, Firefly CSV, HDF5 stack)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from core.data.io import identify_format, read, write
from core.data.maps import CHANNEL_UNITS, MapStack, describe_missing, missing_channels
from core.errors import GPSError

DATA = Path(__file__).resolve().parents[2] / "data"
DAP = DATA / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.cut.fits.gz"
PIPE3D = DATA / "NGC4047_cut.pipe3d.hdf5"
FIREFLY = DATA / "manga-8077-6104_mstar.csv"
EXSITU = ("log_sigma_star", "vel", "sigma", "log_age", "metallicity")


def _stack(n=2, h=12, w=10, seed=0, **kw) -> MapStack:
    rng = np.random.default_rng(seed)
    data = np.stack([rng.normal(8.0, 0.3, (n, h, w)), rng.normal(0, 50, (n, h, w)),
                     rng.uniform(50, 150, (n, h, w)), rng.normal(9.7, 0.1, (n, h, w)),
                     rng.normal(-0.2, 0.1, (n, h, w))], axis=1)
    mask = np.zeros((n, h, w), bool)
    mask[:, 0, :] = True
    args = dict(data=data, channels=EXSITU, units=tuple(CHANNEL_UNITS[c] for c in EXSITU), mask=mask,
                ivar=rng.uniform(1, 4, data.shape), pixel_scale_arcsec=0.5, reff_arcsec=np.full(n, 2.0),
                ids=np.arange(n) + 100, meta={"file": "/tmp/synthetic.maps.h5"},
                targets={"f_ex": rng.uniform(0, 1, (n, h, w)), "log_mstar": rng.normal(10, 1, n)})
    args.update(kw)
    return MapStack(**args)


# ------------------------------------------------------------------------------------------ container
def test_channels_select_subset():
    s = _stack(n=3)
    assert s.channel("vel").shape == (3, 12, 10)
    sub = s.select_channels(["sigma", "vel"])
    assert sub.channels == ("sigma", "vel") and sub.units == ("km / s", "km / s")
    np.testing.assert_array_equal(sub.data[:, 1], s.data[:, 1])
    np.testing.assert_array_equal(sub.ivar[:, 0], s.ivar[:, 2])
    one = s.subset([2])
    assert len(one) == 1 and one.ids[0] == 102 and one.targets["f_ex"].shape == (1, 12, 10)
    with pytest.raises(GPSError, match=r"missing channel\(s\) g_r.*present: log_sigma_star, vel"):
        s.select_channels(["vel", "g_r"])


def test_missing_channels_message_names_file_and_runnable_models():
    s = _stack().select_channels(["vel", "sigma"])
    s.meta["file"] = "/x/manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz"
    assert missing_channels(s, EXSITU) == ["log_sigma_star", "log_age", "metallicity"]
    msg = describe_missing(s, EXSITU, {"exsitu_map(all channels)": EXSITU,
                                       "exsitu_map[vel,sigma]": ("vel", "sigma")},
                           needed_by="exsitu_map(all channels)")
    assert msg == ("manga-7815-3702-MAPS-HYB10-GAU-MILESHC.fits.gz lacks channels log_sigma_star, log_age, "
                   "metallicity needed by exsitu_map(all channels); models that can run: exsitu_map[vel,sigma]")
    assert describe_missing(s, ("vel",)) is None
    assert "no available model" in describe_missing(s, EXSITU, {"full": EXSITU})


def test_hdf5_round_trip(tmp_path):
    s = _stack(n=3)
    s.headers[1] = "OBJECT  = 'NGC 1'"
    p = tmp_path / "stack.maps.h5"
    write(s, p)                                 # through the registry, by extension
    assert identify_format(p) == "map_stack_hdf5"
    r = read(p)
    for k in ("data", "mask", "ivar", "pixel_scale_arcsec", "reff_arcsec", "center_xy", "ids"):
        np.testing.assert_array_equal(getattr(r, k), getattr(s, k), err_msg=k)
    assert r.channels == s.channels and r.units == s.units and r.headers == s.headers
    np.testing.assert_array_equal(r.targets["f_ex"], s.targets["f_ex"])
    np.testing.assert_array_equal(r.targets["log_mstar"], s.targets["log_mstar"])
    assert r.ids.dtype.kind == "i" and len(r.meta["sha256"]) == 64
    r2 = MapStack.from_hdf5(p)
    np.testing.assert_array_equal(r2.data, s.data)
    q = tmp_path / "plain_name.h5"              # any name: identified by content
    s.to_hdf5(q)
    assert identify_format(q) == "map_stack_hdf5"
    with pytest.raises(GPSError, match="takes a MapStack"):
        write(np.zeros(3), tmp_path / "x.maps.h5")


# ------------------------------------------------------------------------------------------ regrid
def test_regrid_identity_and_linear_field_exact():
    h = w = 16
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    field = 3.0 + 0.5 * xx - 0.25 * yy
    s = MapStack(data=field[None, None], channels=("vel",), units=("km / s",), mask=np.zeros((1, h, w), bool),
                 ivar=np.full((1, 1, h, w), 2.0), pixel_scale_arcsec=0.5, reff_arcsec=2.0)
    ident = s.regrid(16, 4.0)                    # 16 px over 4 R_eff = 8" = 16 input pixels: identity
    np.testing.assert_allclose(ident.data[0, 0], field, atol=1e-5)
    np.testing.assert_allclose(ident.ivar[0, 0], 2.0, rtol=1e-5)
    assert not ident.mask.any()
    up = s.regrid(24, 2.0)                       # upsampling inside the footprint: linear fields are exact
    step = 2.0 * 2.0 / 24 / 0.5
    c_in, c_out = (w - 1) / 2, (24 - 1) / 2
    gx = c_in + (np.arange(24) - c_out) * step
    expect = 3.0 + 0.5 * gx[None, :] - 0.25 * gx[:, None]
    np.testing.assert_allclose(up.data[0, 0], expect, atol=1e-4)
    assert up.pixel_scale_arcsec[0] == pytest.approx(step * 0.5)


def test_regrid_block_average_ivar_and_mask():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (8, 8))
    mask = np.zeros((1, 8, 8), bool)
    mask[0, 6, 6] = True
    s = MapStack(data=x[None, None], channels=("vel",), units=("km / s",), mask=mask,
                 ivar=np.full((1, 1, 8, 8), 3.0), pixel_scale_arcsec=1.0, reff_arcsec=2.0)
    r = s.regrid(4, 4.0)                         # 2x2 input pixels per output pixel
    blocks = x.reshape(4, 2, 4, 2).mean(axis=(1, 3))
    ok = ~r.mask[0]
    np.testing.assert_allclose(r.data[0, 0][ok], blocks[ok], atol=1e-5)
    np.testing.assert_allclose(r.ivar[0, 0][ok], 12.0, rtol=1e-5)       # var/4
    assert r.mask[0, 3, 3] and r.mask[0].sum() == 1                      # block holding the masked pixel
    big = s.regrid(8, 8.0)                       # +-4 R_eff = 16": twice the footprint -> outer ring masked
    assert big.mask[0, 0, 0] and big.mask[0, -1, -1] and not big.mask[0, 4, 4]
    assert big.data[0, 0][big.mask[0]].max() == 0.0


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_regrid_needs_reff_and_moves_wcs():
    s = read(DAP)
    r = s.regrid(64, 4.0)
    from astropy.io import fits
    from astropy.wcs import WCS

    hdr = fits.Header.fromstring(r.headers[0], sep="\n")
    ra, dec = WCS(hdr, naxis=2).all_pix2world([[31.5, 31.5]], 0)[0]
    assert ra == pytest.approx(hdr["OBJRA"], abs=1e-6) and dec == pytest.approx(hdr["OBJDEC"], abs=1e-6)
    assert r.pixel_scale_arcsec[0] == pytest.approx(4 * 3.77495 / 64, rel=1e-6)
    f = read(FIREFLY)
    with pytest.raises(GPSError, match=r"manga-8077-6104_mstar.csv.*effective radius unknown"):
        f.regrid(32, 4.0)
    assert f.regrid(32, 4.0, reff_arcsec=5.0).shape == (1, 1, 32, 32)


# ------------------------------------------------------------------------------------------ readers
def test_manga_dap_reader():
    assert identify_format(DAP) == "manga_dap"
    s = read(DAP)
    assert s.channels == ("vel", "sigma", "flux") and s.units[0] == "km / s"
    assert (~s.mask).sum() == 773                 # spaxels with STELLAR_VEL_MASK == 0 in this file
    assert s.reff_arcsec[0] == pytest.approx(3.77495) and s.pixel_scale_arcsec[0] == pytest.approx(0.5, 1e-4)
    assert np.allclose(s.center_xy[0], (21.0, 21.0), atol=0.1)          # OBJRA/OBJDEC at CRPIX 22 (1-based)
    from astropy.io import fits

    with fits.open(DAP) as f:
        sig, corr = f["STELLAR_SIGMA"].data, f["STELLAR_SIGMACORR"].data
        ok = ~s.mask[0]
        np.testing.assert_allclose(s.channel("sigma")[0][ok], np.sqrt(sig ** 2 - corr ** 2)[ok], rtol=1e-5)
        np.testing.assert_allclose(s.channel("vel")[0][ok], f["STELLAR_VEL"].data[ok])
    flux_only = read(DAP, channels=("flux",))     # the flux footprint is larger than the kinematics one
    assert (~flux_only.mask).sum() > 773
    assert s.ids[0] == "7815-3702" and s.meta["format"] == "manga_dap"
    assert describe_missing(s, EXSITU).startswith(f"{DAP.name} lacks channels log_sigma_star, log_age, metallicity")


def test_dap_sigmacorr_negative_masked(tmp_path):
    from astropy.io import fits

    p = tmp_path / "manga-1-1-MAPS-X.fits"
    with fits.open(DAP) as f:
        f["STELLAR_SIGMACORR"].data = f["STELLAR_SIGMA"].data * 0 + 80.0     # larger than many sigmas
        f.writeto(p)
    s = read(p)
    base = read(DAP)
    assert (~s.mask).sum() < (~base.mask).sum()
    assert any("STELLAR_SIGMA < STELLAR_SIGMACORR" in n for n in s.meta["notes"])
    assert (s.channel("sigma")[~s.mask] > 0).all()


def test_pipe3d_reader():
    assert identify_format(PIPE3D) == "pipe3d"
    s = read(PIPE3D)
    assert s.channels[:5] == EXSITU and s.units[0] == "dex(solMass / kpc2)"
    from astropy.table import Table

    t = Table.read(PIPE3D, path="SSP")
    k = int(np.argmax(np.isfinite(np.asarray(t["sigstar"])) & (np.asarray(t["sigstar"]) > 0)))
    ix, iy = int(t["ix"][k]), int(t["iy"][k])
    # Pipe3D's Salpeter masses on the simulator's Kroupa IMF (-0.20 dex, recorded in meta)
    assert s.channel("log_sigma_star")[0, iy, ix] == pytest.approx(np.log10(t["sigstar"][k]) + 6 - 0.20, abs=1e-5)
    assert "Salpeter IMF -> Kroupa" in s.meta["imf_conversion"]
    assert s.channel("log_age")[0, iy, ix] == pytest.approx(t["age_mwt"][k], abs=1e-6)
    assert abs(np.median(s.channel("vel")[~s.mask])) < 20           # systemic velocity removed
    assert 3000 < s.meta["v_sys_kms"] < 3700
    assert s.pixel_scale_arcsec[0] == pytest.approx(1.0, abs=1e-3)
    assert 3 < s.reff_arcsec[0] < 20 and any("WARNING" in n and "R_eff" in n for n in s.meta["notes"])
    light = read(PIPE3D, weighting="light")
    assert light.channel("log_age")[0, iy, ix] == pytest.approx(t["age_lwt"][k], abs=1e-6)
    assert missing_channels(s, EXSITU) == []
    r = s.regrid(32, 2.0)
    assert r.shape == (1, 6, 32, 32) and (~r.mask).sum() > 500


def test_firefly_reader():
    assert identify_format(FIREFLY) == "firefly_csv"
    s = read(FIREFLY)
    assert s.shape == (1, 1, 54, 54) and (~s.mask).sum() == 1316
    assert s.channel("log_mstar_pix")[0, 7, 20] == pytest.approx(7.091855049133301)
    z = read(FIREFLY, redshift=0.05)
    assert z.channels == ("log_mstar_pix", "log_sigma_star")
    d = z.channel("log_sigma_star") - z.channel("log_mstar_pix")
    # at z=0.05 (Planck18) 1" ~ 0.98 kpc: a 0.5" spaxel is ~0.24 kpc2 -> +0.62 dex
    assert np.allclose(d[~z.mask], 0.62, atol=0.03)


# ------------------------------------------------------------------------------------------ bad input
def test_mismatched_shapes():
    with pytest.raises(GPSError, match=r"synthetic.maps.h5 \[mask\].*shape"):
        _stack(mask=np.zeros((2, 5, 5), bool))
    with pytest.raises(GPSError, match=r"\[ivar\]"):
        _stack(ivar=np.ones((2, 5, 12, 11)))


def test_dap_mismatched_hdu_shapes(tmp_path):
    from astropy.io import fits

    p = tmp_path / "manga-bad-MAPS.fits"
    with fits.open(DAP) as f:
        f["STELLAR_SIGMA"].data = f["STELLAR_SIGMA"].data[:40, :40]
        f.writeto(p)
    with pytest.raises(GPSError, match=r"manga-bad-MAPS.fits \[STELLAR_SIGMA\]: map shapes do not match"):
        read(p)


def test_all_masked_and_nan_outside_mask():
    s = _stack(mask=np.ones((2, 12, 10), bool))
    with pytest.raises(GPSError, match=r"synthetic.maps.h5 \[object 100\]: every pixel is masked"):
        s.validate()
    s = _stack()
    s.data[1, 2, 5, 5] = np.nan
    with pytest.raises(GPSError, match=r"\[sigma\]: NaN/inf values outside the mask.*1 bad pixels \(first object 101"):
        s.validate()
    s.mask[1, 5, 5] = True
    s.validate()                                  # NaN under the mask is fine


def test_wrong_velocity_units(tmp_path):
    s = _stack()
    s.data[:, 1] *= 1000.0                        # m/s values labelled km/s
    with pytest.raises(GPSError, match=r"\[vel\]: implausible velocities for km/s.*m/s"):
        s.validate()
    s2 = _stack(units=("dex(solMass / kpc2)", "m / s", "km / s", "dex(yr)", "dex"))
    s2.data[:, 1] *= 1000.0                       # declared m/s: convertible
    with pytest.raises(GPSError, match=r"\[vel\]: wrong unit.*to_canonical_units.*expected km / s; found 'm / s'"):
        s2.validate()
    c = s2.to_canonical_units().validate()
    np.testing.assert_allclose(c.channel("vel"), _stack().channel("vel"), rtol=1e-5)
    np.testing.assert_allclose(c.channel_ivar("vel"), s2.channel_ivar("vel") * 1e6, rtol=1e-5)
    p = tmp_path / "ms.maps.h5"
    s2.to_hdf5(p)                                  # the HDF5 reader converts declared units itself
    assert read(p).unit("vel") == "km / s"
    s3 = _stack(units=("dex(solMass / pc2)", "km / s", "km / s", "dex(yr)", "dex"))
    s3.data[:, 0] -= 6.0
    np.testing.assert_allclose(s3.to_canonical_units().channel("log_sigma_star"), _stack().channel("log_sigma_star"),
                               atol=1e-5)
    s4 = _stack(units=("dex(solMass / kpc2)", "km", "km / s", "dex(yr)", "dex"))
    with pytest.raises(GPSError, match=r"\[vel\]: unit cannot be converted"):
        s4.to_canonical_units()


def test_fits_without_expected_hdus(tmp_path):
    from astropy.io import fits

    p = tmp_path / "manga-0-0-MAPS-NOKIN.fits"
    with fits.open(DAP) as f:
        fits.HDUList([f[0].copy(), f["SPX_MFLUX"].copy()]).writeto(p)
        fits.HDUList([f[0].copy(), f["SPX_MFLUX"].copy(), f["SPX_MFLUX_IVAR"].copy()]).writeto(tmp_path / "fl.fits")
    assert identify_format(p) == "manga_dap"
    with pytest.raises(GPSError, match=r"manga-0-0-MAPS-NOKIN.fits \[STELLAR_VEL, .*lacks the MaNGA DAP MAPS"
                                       r".*found HDUs PRIMARY, SPX_MFLUX\)"):
        read(p)
    fl = read(tmp_path / "fl.fits")             # only the flux HDUs: a flux-only stack, noted
    assert fl.channels == ("flux",) and "vel, sigma not read" in fl.meta["notes"][0]
    with pytest.raises(GPSError, match=r"fl.fits \[STELLAR_VEL"):
        read(tmp_path / "fl.fits", channels=("vel", "flux"))


def test_corrupt_and_truncated_hdf5(tmp_path):
    s = _stack()
    good = tmp_path / "good.maps.h5"
    s.to_hdf5(good)
    raw = good.read_bytes()
    trunc = tmp_path / "trunc.maps.h5"
    trunc.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(GPSError, match=r"trunc.maps.h5.*(corrupt|truncated)"):
        read(trunc)
    with pytest.raises(GPSError, match=r"trunc.maps.h5.*(corrupt|truncated)"):
        MapStack.from_hdf5(trunc)
    garbage = tmp_path / "garbage.maps.h5"
    garbage.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 500)
    with pytest.raises(GPSError, match=r"garbage.maps.h5.*corrupt"):
        read(garbage)
    import h5py

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(GPSError, match=r"foreign.h5 \[/ attrs gps_format\]: not a GPS map stack"):
        read(foreign, format="map_stack_hdf5")


def test_truncated_gzip_fits(tmp_path):
    p = tmp_path / "manga-trunc-MAPS.fits.gz"
    p.write_bytes(DAP.read_bytes()[:6000])
    with pytest.raises(GPSError, match=r"manga-trunc-MAPS.fits.gz \[STELLAR_VEL.*truncated or corrupt"):
        read(p, format="manga_dap")
    p2 = tmp_path / "manga-trunc-MAPS.fits"
    with gzip.open(DAP) as fh:
        p2.write_bytes(fh.read()[: 2880 * 5 + 100])
    with pytest.raises(GPSError, match=r"manga-trunc-MAPS.fits .*(truncated or corrupt|cannot read)"):
        read(p2)


def test_concatenate_summary_header():
    a, b = _stack(n=2, seed=1), _stack(n=1, seed=2)
    c = MapStack.concatenate([a, b])
    assert len(c) == 3 and np.array_equal(c.data[2], b.data[0]) and c.targets["f_ex"].shape == (3, 12, 10)
    with pytest.raises(GPSError, match="different channels"):
        MapStack.concatenate([a, a.select_channels(["vel"])])
    summ = {d["channel"]: d for d in a.summary()}
    assert summ["vel"]["n_valid"] == 2 * 11 * 10 and summ["vel"]["unit"] == "km / s"
    s = read(DAP)
    assert s.fits_header(0)["PLATEIFU"] == "7815-3702" and s.fits_header(0)["CTYPE1"] == "RA---TAN"
    assert len(_stack().fits_header(0)) == 0


def test_fixture_sizes_small():
    total = sum(p.stat().st_size for p in (DAP, PIPE3D, FIREFLY))
    assert total < 1.5e6
    with gzip.open(DAP) as fh:
        assert fh.read(6) == b"SIMPLE"
