"""Corpus files for the map readers: our HDF5 map stack, Pipe3D tables, MaNGA DAP and Firefly files (mutated from
the tests/data fixtures), SAMI stellar-kinematics files (synthetic, written here)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np

from tests.corpus.generate import ROOT, Entry

# --------------------------------------------------------------------------------------------------- maps
def _stack(n=2, size=16, seed=0):
    from core.data.maps import MapStack

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    r = np.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2)
    ch = ("log_sigma_star", "vel", "sigma", "log_age", "metallicity")
    data = np.stack([np.stack([9.0 - r / size * 3, 100 * np.tanh((xx - size / 2) / 4), 150 - r * 3,
                               9.5 + 0 * r + rng.normal(0, 0.05, r.shape), -0.2 - r / size * 0.3]) for _ in range(n)])
    mask = np.broadcast_to(r > size / 2, (n, size, size)).copy()
    return MapStack(data=data, channels=ch, units=("dex(solMass / kpc2)", "km / s", "km / s", "dex(yr)", "dex"),
                    mask=mask, ivar=np.ones_like(data), pixel_scale_arcsec=0.5,
                    reff_arcsec=np.full(n, 3.0), meta={"source": "file"})


def _patch_h5(path: Path, fn) -> None:
    import h5py

    with h5py.File(path, "a") as f:
        fn(f)


def _replace(name, value):
    def fn(f):
        del f[name]
        f[name] = value
    return fn


def map_entries(d: Path) -> list[Entry]:
    out = []
    base = d / "valid.maps.h5"
    _stack().to_hdf5(base)
    out.append(Entry(base.name, "map_stack", "valid_control", "exsitu_map", "ok"))

    def add(kind, fn, expect="refuse"):
        p = d / f"{kind}.maps.h5"
        p.write_bytes(base.read_bytes())
        _patch_h5(p, fn)
        out.append(Entry(p.name, "map_stack", kind, "exsitu_map", expect))

    add("zero_objects", lambda f: [_replace(k, f[k][:0])(f) for k in ("data", "mask", "ivar", "pixel_scale_arcsec",
                                                                         "reff_arcsec", "center_xy", "ids",
                                                                         "headers")])
    add("one_by_one_maps", lambda f: [_replace(k, f[k][..., :1, :1])(f) for k in ("data", "mask", "ivar")])
    add("reff_zero", _replace("reff_arcsec", np.zeros(2)))
    add("reff_1e300", _replace("reff_arcsec", np.full(2, 1e300)))
    add("negative_pixel_scale", _replace("pixel_scale_arcsec", np.full(2, -0.5)))
    add("nan_pixel_scale", _replace("pixel_scale_arcsec", np.full(2, np.nan)))
    add("all_masked", _replace("mask", np.ones((2, 16, 16), np.uint8)))
    add("nan_data", _replace("data", np.full((2, 5, 16, 16), np.nan, np.float32)))
    add("string_data", _replace("data", np.array([b"a"] * 4)))
    add("data_3d", lambda f: _replace("data", f["data"][:, 0])(f))
    add("channels_not_json", lambda f: f.attrs.__setitem__("channels", "log_sigma_star vel"))
    add("channels_count_mismatch", lambda f: f.attrs.__setitem__("channels", json.dumps(["vel"])))
    add("units_wrong", lambda f: f.attrs.__setitem__("units", json.dumps(["km / s"] * 5)))
    add("vel_in_m_per_s_1e9", lambda f: _replace("data", f["data"][...] * np.array([1, 1e9, 1, 1, 1],
                                                                                     np.float32)[None, :, None,
                                                                                                  None])(f))
    add("age_linear_years", lambda f: _replace("data", np.concatenate(
        [f["data"][:, :3], 10 ** f["data"][:, 3:4], f["data"][:, 4:]], axis=1))(f))
    add("huge_dims", lambda f: [f.__delitem__("data"), f.create_dataset("data", shape=(2, 5, 200000, 200000),
                                                                        dtype="f4", chunks=(1, 1, 64, 64))])
    add("ids_wrong_length", _replace("ids", np.array([b"a"])))
    add("center_wrong_shape", _replace("center_xy", np.zeros(3)))
    add("ivar_negative", _replace("ivar", -np.ones((2, 5, 16, 16), np.float32)))
    add("meta_not_json", lambda f: f.attrs.__setitem__("meta", "{not json"))
    add("version_999", lambda f: f.attrs.__setitem__("gps_version", 999))
    add("missing_data", lambda f: f.__delitem__("data"))
    p = d / "truncated.maps.h5"
    p.write_bytes(base.read_bytes()[:3000])
    out.append(Entry(p.name, "map_stack", "truncated", "exsitu_map"))
    p = d / "zero_byte.maps.h5"
    p.write_bytes(b"")
    out.append(Entry(p.name, "map_stack", "zero_byte", "exsitu_map"))
    out += _pipe3d_entries(d) + _manga_entries(d) + _firefly_entries(d) + _sami_entries(d)
    return out


def _pipe3d_table(n_side=12, mutate=None):
    from astropy.table import Table

    yy, xx = np.mgrid[:n_side, :n_side]
    ix, iy = xx.ravel(), yy.ravel()
    r = np.hypot(ix - n_side / 2, iy - n_side / 2)
    cols = {"ix": ix, "iy": iy, "sigstar": 10 ** (3 - r / n_side), "fe_medflx": np.full(ix.size, 0.05),
            "vel_ssp": 3000 + 50 * np.tanh((ix - n_side / 2) / 3), "e_vel_ssp": np.full(ix.size, 10.0),
            "vdisp_ssp": 150 - r, "e_vdisp_ssp": np.full(ix.size, 10.0), "age_mwt": 9.6 + 0 * r,
            "e_age_lwt": np.full(ix.size, 0.1), "ZH_mwt": -0.2 + 0 * r, "e_ZH_lwt": np.full(ix.size, 0.1),
            "medflx_ssp": np.exp(-r / 3), "e_medflx_ssp": np.full(ix.size, 0.01), "rad_arc": r}
    if mutate:
        cols = mutate(cols)
    t = Table(cols)
    t.meta["REFF"] = 4.0
    return t


def _pipe3d_entries(d: Path) -> list[Entry]:
    out = []

    def add(kind, mutate, expect="refuse"):
        p = d / f"{kind}.pipe3d.hdf5"
        _pipe3d_table(mutate=mutate).write(p, path="SSP", serialize_meta=True, overwrite=True)
        out.append(Entry(p.name, "pipe3d", kind, "exsitu_map", expect))

    def setc(k, fn):
        def m(c):
            c = dict(c)
            c[k] = fn(c[k])
            return c
        return m

    add("valid_control", None, "ok")
    add("zero_rows", lambda c: {k: v[:0] for k, v in c.items()})
    add("string_velocities", setc("vel_ssp", lambda v: np.array([f"v{x:.0f}" for x in v])))
    add("pixel_index_2e9", setc("ix", lambda v: np.where(v == 3, 2_000_000_000, v)))
    add("negative_index", setc("iy", lambda v: v - 5))
    add("float_index_nan", setc("ix", lambda v: np.where(v == 2, np.nan, v.astype(float))))
    add("all_errors_zero", lambda c: {**c, **{k: np.zeros_like(v) for k, v in c.items() if k.startswith("e_")}})
    add("missing_vel", lambda c: {k: v for k, v in c.items() if k != "vel_ssp"})
    add("sigstar_negative", setc("sigstar", lambda v: -v))
    add("age_in_gyr", setc("age_mwt", lambda v: 10 ** v / 1e9))
    add("one_pixel", lambda c: {k: v[:1] for k, v in c.items()})
    add("duplicate_pixels", lambda c: {k: np.concatenate([v, v[:5]]) for k, v in c.items()})
    return out


MANGA_FIXTURE = ROOT / "tests" / "data" / "manga-7815-3702-MAPS-HYB10-GAU-MILESHC.cut.fits.gz"
FIREFLY_FIXTURE = ROOT / "tests" / "data" / "manga-8077-6104_mstar.csv"


def _manga_hdul(mutate=None):
    """The trimmed MaNGA DAP fixture (tests/data), mutated in memory."""
    from astropy.io import fits

    with fits.open(MANGA_FIXTURE) as src:
        hl = fits.HDUList([h.copy() for h in src])
    if mutate:
        mutate(hl)
    return hl


def _manga_entries(d: Path) -> list[Entry]:
    from astropy.io import fits

    out = []

    def add(kind, mutate, task="exsitu_map", expect="refuse"):
        p = d / f"manga-{kind}-MAPS-{task}.fits"
        _manga_hdul(mutate).writeto(p, overwrite=True)
        out.append(Entry(p.name, "manga_dap", kind, task, expect))

    def setdata(name, fn):
        def m(hl):
            hl[name].data = fn(hl[name].data)
        return m

    for task in ("exsitu_map", "central_mass"):
        add("valid_control", None, task, "ok")
        add("missing_stellar_vel", lambda hl: [hl.__delitem__(k) for k in ("STELLAR_VEL_MASK", "STELLAR_VEL_IVAR",
                                                                          "STELLAR_VEL")], task)
        add("vel_shape_mismatch", setdata("STELLAR_VEL", lambda v: v[:5, :5]), task)
        add("all_masked", setdata("STELLAR_VEL_MASK", lambda v: np.full_like(v, 1 << 30)), task)
        add("reff_zero", lambda hl: hl[0].header.__setitem__("REFF", 0.0), task)
        add("reff_negative", lambda hl: hl[0].header.__setitem__("REFF", -3.0), task)
        add("reff_1e300", lambda hl: hl[0].header.__setitem__("REFF", 1e300), task)
        add("vel_1e12", setdata("STELLAR_VEL", lambda v: v * 1e12), task)
        add("sigma_nan_unmasked", setdata("STELLAR_SIGMA", lambda v: v * np.nan), task)
        add("string_reff", lambda hl: hl[0].header.__setitem__("REFF", "big"), task)
        add("vel_as_int_strings", lambda hl: hl.__setitem__("STELLAR_VEL", fits.BinTableHDU.from_columns(
            [fits.Column("x", "10A", array=np.array(["a"] * 3))], name="STELLAR_VEL")), task)
    raw = MANGA_FIXTURE.read_bytes()
    p = d / "manga-truncated-MAPS.fits.gz"
    p.write_bytes(raw[: len(raw) // 3])
    out.append(Entry(p.name, "manga_dap", "truncated", "exsitu_map"))
    buf = io.BytesIO()
    _manga_hdul().writeto(buf)
    plain = bytearray(buf.getvalue())
    i = plain.find(b"NAXIS1  =", 2880)
    plain[i:i + 80] = fits.Card("NAXIS1", 3_000_000_000).image.encode()
    p = d / "manga-huge-naxis-MAPS.fits"
    p.write_bytes(bytes(plain))
    out.append(Entry(p.name, "manga_dap", "huge_dimensions", "exsitu_map"))
    return out


def _firefly_entries(d: Path) -> list[Entry]:
    out = []
    good = FIREFLY_FIXTURE.read_text().splitlines()

    def add(kind, lines, expect="refuse"):
        p = d / f"firefly_{kind}.csv"
        p.write_text("\n".join(lines) + "\n")
        out.append(Entry(p.name, "firefly_csv", kind, "exsitu_map", expect))

    add("header_only", good[:1])
    add("text_cells", good[:1] + [",".join(["x"] * len(good[0].split(",")))] * 10)
    add("ragged", good[:20] + ["1,2"])
    add("all_empty", good[:1] + [","] * 10 + [",".join([""] * len(good[0].split(",")))] * 10)
    add("values_1e300", good[:1] + [",".join(["1e300"] * len(good[0].split(",")))] * 54)
    return out


def _sami_file(path: Path, mutate=None) -> None:
    """A synthetic SAMI stellar-velocity file (PRIMARY map, VEL_ERR, FLUX, FLUX_ERR, SNR; 50 x 50, WCS), mutated."""
    from astropy.io import fits

    yy, xx = np.mgrid[:50, :50] - 24.5
    r = np.hypot(xx, yy)
    vel = np.where(r < 18, 120 * np.tanh(r / 4) * xx / np.maximum(r, 1e-9), np.nan)
    h = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 25.5, "CRPIX2": 25.5, "CRVAL1": 180.0,
                     "CRVAL2": 0.5, "CDELT1": -0.5 / 3600, "CDELT2": 0.5 / 3600, "CATID": 9011900001, "UNIT": "km/s"})
    hl = fits.HDUList([fits.PrimaryHDU(vel, header=h), fits.ImageHDU(np.where(r < 18, 8.0, np.nan), name="VEL_ERR"),
                       fits.ImageHDU(np.ones((50, 50)), name="FLUX"), fits.ImageHDU(np.ones((50, 50)), name="FLUX_ERR"),
                       fits.ImageHDU(np.where(r < 18, 20.0, np.nan), name="SNR")])
    if mutate:
        mutate(hl)
    hl.writeto(path, overwrite=True)


def _sami_entries(d: Path) -> list[Entry]:
    out = []

    def add(kind, mutate):
        p = d / f"9011900001_A_stellar-velocity_default_two-moment_{kind}.fits"
        _sami_file(p, mutate)
        out.append(Entry(p.name, "sami_kinematics", kind, "exsitu_map"))

    def setdata(name, fn):
        def m(hl):
            hl[name].data = fn(hl[name].data)
        return m

    add("lone_velocity_file", None)                   # readable; the kinematics model needs its dispersion file
    add("err_shape_mismatch", setdata("VEL_ERR", lambda v: v[:40, :40]))
    add("all_nan", setdata("PRIMARY", lambda v: v * np.nan))
    add("unit_deg", lambda hl: hl[0].header.__setitem__("UNIT", "deg"))
    add("vel_m_per_s_unlabelled", setdata("PRIMARY", lambda v: v * 1000))
    add("cube_primary", setdata("PRIMARY", lambda v: np.stack([v, v])))
    p = d / "9011900001_A_stellar-velocity_default_two-moment_truncated.fits"
    _sami_file(p)
    p.write_bytes(p.read_bytes()[:30000])
    out.append(Entry(p.name, "sami_kinematics", "truncated", "exsitu_map"))
    return out
