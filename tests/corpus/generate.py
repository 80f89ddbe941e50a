"""Write the malformed-input corpus into a directory (at test time; never committed as binaries).

Every :class:`Entry` names one file, the format it pretends to be, the kind of damage, the task it is fed to and
what must happen: ``"refuse"`` (a GPSError / exit 2 naming the file) or ``"mask"`` (refused, or run with the bad
rows written as masked, ``valid = 0``, and the good rows kept in order). ``good_rows``/``bad_rows`` index rows.
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
N_ROWS = 40
INPUTS = ("log_mstar", "log_sfr", "u_g", "g_r", "r_i", "i_z", "conc", "log_fgas")


@dataclass
class Entry:
    name: str                      # file name inside the corpus directory
    fmt: str                       # format it pretends to be (csv, fits, hdf5, parquet, tng, map_stack, ...)
    kind: str                      # kind of damage
    task: str                      # task it is fed to (halo_mass, exsitu_map, central_mass) or "checkpoint"
    expect: str = "refuse"         # "refuse" | "mask" | "ok"
    bad_rows: tuple[int, ...] = ()
    role: str = "data"             # "data" or "checkpoint" (then the data is a valid table)
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------- base data
def base_columns(n: int = N_ROWS, seed: int = 0) -> dict[str, np.ndarray]:
    """A plausible halo_mass catalogue: every input and the target in canonical units."""
    rng = np.random.default_rng(seed)
    ms = rng.uniform(9.5, 11.3, n)
    return {"id": np.arange(n, dtype=np.int64), "log_mstar": ms, "log_sfr": rng.normal(0.0, 0.4, n),
            "u_g": rng.uniform(1.0, 1.8, n), "g_r": rng.uniform(0.4, 0.8, n), "r_i": rng.uniform(0.2, 0.45, n),
            "i_z": rng.uniform(0.1, 0.35, n), "conc": rng.uniform(2.0, 3.2, n),
            "log_fgas": rng.normal(-0.8, 0.3, n), "log_mh": 11.0 + 1.2 * (ms - 10.0) + rng.normal(0, 0.2, n)}


UNITS = {"log_mstar": "dex(solMass)", "log_sfr": "dex(solMass / yr)", "u_g": "mag", "g_r": "mag", "r_i": "mag",
         "i_z": "mag", "conc": "", "log_fgas": "dex", "log_mh": "dex(solMass)"}


def _table(cols: dict, units: bool = True):
    from astropy.table import Table

    t = Table()
    for k, v in cols.items():
        t[k] = v
        if units and UNITS.get(k):
            t[k].unit = UNITS[k]
    return t


def _write_table(t, path: Path, fmt: str) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if fmt == "csv":
            t.write(path, format="ascii.csv", overwrite=True)
        elif fmt == "fits":
            t.write(path, format="fits", overwrite=True)
        elif fmt == "hdf5":
            t.write(path, path="catalog", serialize_meta=True, overwrite=True)
        elif fmt == "parquet":
            t.write(path, format="parquet", overwrite=True)


EXT = {"csv": ".csv", "fits": ".fits", "hdf5": ".h5", "parquet": ".parquet"}


# --------------------------------------------------------------------------------------------------- tables
def _value_kinds() -> list[tuple[str, Callable[[dict], dict], str, tuple[int, ...]]]:
    """(kind, mutate(cols) -> cols, expect, bad_rows) applied to every table format."""
    def set_col(name, fn):
        def f(c):
            c = dict(c)
            c[name] = fn(np.array(c[name], dtype=float))
            return c
        return f

    def rows(name, idx, val):
        def fn(v):
            v[list(idx)] = val
            return v
        return set_col(name, fn)

    return [
        ("linear_mass", set_col("log_mstar", lambda v: 10 ** v), "refuse", ()),
        ("sim_units_1e10_msun_h", set_col("log_mstar", lambda v: 10 ** v / 1e10 * 0.6774), "refuse", ()),
        ("linear_sfr_in_log_col", set_col("log_sfr", lambda v: 10 ** (v + 1.2)), "refuse", ()),
        ("mstar_1e300", rows("log_mstar", (3,), 1e300), "mask", (3,)),
        ("conc_1e6", rows("conc", (5, 6), 1e6), "mask", (5, 6)),
        ("mstar_minus5_rows", rows("log_mstar", (1, 7, 9), -5.0), "mask", (1, 7, 9)),
        ("sentinel_m99_30pct", rows("log_sfr", tuple(range(0, N_ROWS, 3)), -99.0), "mask",
         tuple(range(0, N_ROWS, 3))),
        ("sentinel_9999", rows("log_fgas", (2, 4), 9999.0), "mask", (2, 4)),
        ("sentinel_m999_target", rows("log_mh", (8,), -999.0), "mask", ()),   # predict: fine; evaluate: n - 1
        ("inf_value", rows("log_mstar", (4,), np.inf), "refuse", ()),
        ("all_nan_input", set_col("log_mstar", lambda v: v * np.nan), "refuse", ()),
        ("target_linear", set_col("log_mh", lambda v: 10 ** v), "refuse", ()),
        ("colour_is_magnitude", set_col("g_r", lambda v: v + 17.0), "refuse", ()),
    ]


def table_entries(d: Path) -> list[Entry]:
    out: list[Entry] = []
    base = base_columns()
    for fmt, ext in EXT.items():
        # valid control (must run)
        p = d / f"valid{ext}"
        _write_table(_table(base), p, fmt)
        out.append(Entry(p.name, fmt, "valid_control", "halo_mass", "ok"))
        for kind, fn, expect, bad in _value_kinds():
            p = d / f"{kind}{ext}"
            _write_table(_table(fn(base)), p, fmt)
            out.append(Entry(p.name, fmt, kind, "halo_mass", expect, bad,
                             extra={"eval_drop": 1} if kind == "sentinel_m999_target" else {}))
        # structural kinds
        good = d / f"valid{ext}"
        raw = good.read_bytes()
        for kind, data in (("zero_byte", b""), ("truncated", raw[: len(raw) // 2]),
                           ("garbage", bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8))),
                           ("truncated_tail", raw[:-7])):
            p = d / f"{kind}{ext}"
            p.write_bytes(data)
            out.append(Entry(p.name, fmt, kind, "halo_mass"))
        p = d / f"header_only{ext}"
        _write_table(_table({k: v[:0] for k, v in base.items()}), p, fmt)
        out.append(Entry(p.name, fmt, "header_only", "halo_mass"))
        p = d / f"no_inputs{ext}"
        _write_table(_table({"id": base["id"], "foo": base["conc"], "bar": base["g_r"]}), p, fmt)
        out.append(Entry(p.name, fmt, "no_inputs", "halo_mass"))
        p = d / f"text_values{ext}"
        cols = dict(base)
        cols["log_sfr"] = np.array(["high" if i % 2 else f"{v:.3f}" for i, v in enumerate(base["log_sfr"])])
        _write_table(_table(cols, units=False), p, fmt)
        out.append(Entry(p.name, fmt, "text_values", "halo_mass"))
        p = d / f"bad_unit{ext}"
        t = _table(base)
        t["log_mstar"].unit = "km / s"
        _write_table(t, p, fmt)
        out.append(Entry(p.name, fmt, "incompatible_unit", "halo_mass", "ok" if fmt == "csv" else "refuse"))
    for fmt, ext in EXT.items():     # wrong extension: another format's (refusable) content under this one
        other = {"csv": "fits", "fits": "parquet", "hdf5": "csv", "parquet": "hdf5"}[fmt]
        p = d / f"wrong_ext_{other}_content{ext}"
        p.write_bytes((d / f"linear_mass{EXT[other]}").read_bytes())
        out.append(Entry(p.name, fmt, "wrong_extension", "halo_mass"))
    out += _csv_specific(d, base) + _fits_specific(d, base) + _hdf5_specific(d, base) + _parquet_specific(d, base)
    return out


def _csv_text(cols: dict) -> str:
    names = list(cols)
    lines = [",".join(names)]
    for i in range(len(cols[names[0]])):
        lines.append(",".join(str(cols[k][i]) for k in names))
    return "\n".join(lines) + "\n"


def _csv_specific(d: Path, base: dict) -> list[Entry]:
    out = []
    text = _csv_text(base)

    def w(name, data, kind, expect="refuse", bad=()):
        p = d / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        out.append(Entry(name, "csv", kind, "halo_mass", expect, bad))

    w("latin1.csv", ("# galaxies from M\xfcnchen, \xb0C\n" + text).encode("latin-1"), "latin1_bytes", "ok")
    w("utf16_bom.csv", text.encode("utf-16"), "utf16_bom", "ok")
    dup = text.replace("conc", "log_mstar", 1)
    w("dup_column.csv", dup, "duplicate_column")
    w("ragged_rows.csv", text + "1,2,3\n", "ragged_rows")
    w("only_header_line.csv", text.splitlines()[0] + "\n", "header_only_line")
    w("binary_nul.csv", b"id,log_mstar\n1,\x00\x00\x00\n", "nul_bytes")
    w("one_column.csv", "log_mstar\n" + "\n".join(f"{v}" for v in base["log_mstar"]) + "\n", "one_input_only")
    w("huge_line.csv", "id,log_mstar\n1," + "9" * 200000 + "\n", "huge_number")
    w("semicolon_decimal_comma.csv", text.replace(",", ";").replace(".", ","), "decimal_comma")
    w("only_comments.csv", "# nothing here\n# still nothing\n", "comments_only")
    w("blank_lines.csv", "\n\n\n\n", "blank_only")
    w("bom_utf8.csv", b"\xef\xbb\xbf" + text.encode(), "utf8_bom", "ok")
    w("quote_unbalanced.csv", text.replace("log_sfr", '"log_sfr', 1), "unbalanced_quote")
    return out


def _fits_specific(d: Path, base: dict) -> list[Entry]:
    from astropy.io import fits

    out = []
    good = (d / "valid.fits").read_bytes()
    # duplicated column name: patch TTYPE of column 9 (conc) to log_mstar
    b = bytearray(good)
    i = b.find(b"TTYPE8  = 'conc")
    if i > 0:
        b[i:i + 80] = fits.Card("TTYPE8", "log_mstar").image.encode()
    (d / "dup_column.fits").write_bytes(bytes(b))
    out.append(Entry("dup_column.fits", "fits", "duplicate_column", "halo_mass"))
    b = bytearray(good)
    i = b.find(b"TFORM2  =")
    b[i:i + 80] = fits.Card("TFORM2", "QQQ").image.encode()
    (d / "bad_tform.fits").write_bytes(bytes(b))
    out.append(Entry("bad_tform.fits", "fits", "invalid_tform", "halo_mass"))
    b = bytearray(good)
    i = b.find(b"NAXIS2  =", 2880)
    b[i:i + 80] = fits.Card("NAXIS2", 2_000_000_000_000).image.encode()
    (d / "huge_naxis2.fits").write_bytes(bytes(b))
    out.append(Entry("huge_naxis2.fits", "fits", "huge_dimensions", "halo_mass"))
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 4)))]).writeto(d / "image_only.fits", overwrite=True)
    out.append(Entry("image_only.fits", "fits", "no_table_hdu", "halo_mass"))
    (d / "header_no_end.fits").write_bytes(good[:2880 - 80].ljust(2880, b" ")[:2000])
    out.append(Entry("header_no_end.fits", "fits", "truncated_header", "halo_mass"))
    return out


def _hdf5_specific(d: Path, base: dict) -> list[Entry]:
    import h5py

    out = []
    src = d / "valid.h5"
    p = d / "bad_yaml.h5"
    p.write_bytes(src.read_bytes())
    with h5py.File(p, "a") as f:
        key = "catalog.__table_column_meta__"
        del f[key]
        f.create_dataset(key, data=np.array([b"# %ECSV 1.0", b"---", b"datatype: [ {name: x", b"  :: ]]"]))
    out.append(Entry(p.name, "hdf5", "malformed_yaml", "halo_mass"))
    p = d / "group_2d.h5"
    with h5py.File(p, "w") as f:
        f["log_mstar"] = np.ones((N_ROWS, 3))
        f["log_sfr"] = np.ones((N_ROWS, 3))
    out.append(Entry(p.name, "hdf5", "2d_datasets", "halo_mass"))
    p = d / "group_strings.h5"
    with h5py.File(p, "w") as f:
        f["log_mstar"] = np.array([b"abc"] * N_ROWS)
        f["log_sfr"] = np.array([b"x"] * N_ROWS)
    out.append(Entry(p.name, "hdf5", "string_datasets", "halo_mass"))
    p = d / "huge_dataset.h5"
    with h5py.File(p, "w") as f:
        for k in INPUTS:
            f.create_dataset(k, shape=(4_000_000_000,), dtype="f8", chunks=(1024,))
    out.append(Entry(p.name, "hdf5", "huge_dimensions", "halo_mass"))
    p = d / "empty_file_structure.h5"
    with h5py.File(p, "w") as f:
        f.create_group("nothing")
    out.append(Entry(p.name, "hdf5", "no_table", "halo_mass"))
    p = d / "unequal_lengths.h5"
    with h5py.File(p, "w") as f:
        for j, k in enumerate(INPUTS):
            f[k] = base[k][: N_ROWS - (j % 3)]
    out.append(Entry(p.name, "hdf5", "unequal_lengths", "halo_mass", "refuse"))
    return out


def _parquet_specific(d: Path, base: dict) -> list[Entry]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = []
    cols = {k: pa.array(v) for k, v in base.items()}
    cols["log_sfr"] = pa.array([[float(v), 1.0] for v in base["log_sfr"]])
    pq.write_table(pa.table(cols), d / "list_column.parquet")
    out.append(Entry("list_column.parquet", "parquet", "list_typed_column", "halo_mass"))
    tab = pa.table({k: pa.array(v) for k, v in base.items()})
    tab = tab.replace_schema_metadata({b"table_meta_yaml": b"# %ECSV 1.0\n---\ndatatype: [ {name: : ]]\n"})
    pq.write_table(tab, d / "bad_yaml.parquet")
    out.append(Entry("bad_yaml.parquet", "parquet", "malformed_yaml", "halo_mass"))
    t2 = pa.table({"log_mstar": pa.array(base["log_mstar"]), "log_mstar ": pa.array(base["log_mstar"] + 1)})
    pq.write_table(t2, d / "near_dup.parquet")
    out.append(Entry("near_dup.parquet", "parquet", "only_one_input_near_dup", "halo_mass", "refuse"))
    pq.write_table(pa.table({k: pa.array(v.astype(str)) for k, v in base.items()}), d / "all_strings.parquet")
    out.append(Entry("all_strings.parquet", "parquet", "numbers_as_strings", "halo_mass", "ok"))
    return out


# --------------------------------------------------------------------------------------------------- TNG
def _tng_file(path: Path, *, n_groups: int = 6, mutate: Callable | None = None) -> None:
    import h5py

    rng = np.random.default_rng(3)
    ns = n_groups * 2
    grnr = np.repeat(np.arange(n_groups), 2)
    first = np.arange(0, ns, 2)
    mass_in_rad = np.zeros((ns, 6))
    mass_in_rad[:, 4] = rng.uniform(0.5, 10, ns)
    mass_in_rad[:, 0] = rng.uniform(0.1, 3, ns)
    fields = {
        "Group": {"GroupFirstSub": first.astype(np.int32), "Group_M_Crit200": rng.uniform(10, 500, n_groups)},
        "Subhalo": {"SubhaloGrNr": grnr.astype(np.int32), "SubhaloMassInRadType": mass_in_rad,
                    "SubhaloMassType": mass_in_rad * 1.5, "SubhaloSFRinRad": rng.uniform(0.1, 5, ns),
                    "SubhaloSFR": rng.uniform(0.1, 5, ns),
                    "SubhaloStellarPhotometrics": rng.uniform(-22, -18, (ns, 8)),
                    "SubhaloFlag": np.ones(ns, bool)},
    }
    header = {"HubbleParam": 0.6774, "Redshift": 0.0, "BoxSize": 75000.0, "NumFiles": 1}
    if mutate is not None:
        mutate(fields, header)
    with h5py.File(path, "w") as f:
        h = f.create_group("Header")
        for k, v in header.items():
            h.attrs[k] = v
        for g, ds in fields.items():
            gg = f.create_group(g)
            for k, v in ds.items():
                gg[k] = v


def tng_entries(d: Path) -> list[Entry]:
    out = []

    def add(kind, mutate, expect="refuse", bad=()):
        p = d / f"fof_subhalo_tab_099.{len(out)}_{kind}.hdf5"
        _tng_file(p, mutate=mutate)
        out.append(Entry(p.name, "tng", kind, "halo_mass", expect, bad))

    def hdr(key, val):
        return lambda f, h: h.__setitem__(key, val)

    def fld(g, key, fn):
        def m(f, h):
            f[g][key] = fn(f[g][key])
        return m

    add("valid_control", None, "ok")
    add("zero_hubble", hdr("HubbleParam", 0.0))
    add("nan_hubble", hdr("HubbleParam", float("nan")))
    add("string_hubble", hdr("HubbleParam", "h"))
    add("negative_numfiles", hdr("NumFiles", -3))
    add("string_mass", fld("Subhalo", "SubhaloMassInRadType", lambda v: np.array([b"x"] * len(v))))
    add("mass_1d", fld("Subhalo", "SubhaloMassInRadType", lambda v: v[:, 4]))
    add("photometry_1d", fld("Subhalo", "SubhaloStellarPhotometrics", lambda v: v[:, 0]))
    add("negative_masses", fld("Subhalo", "SubhaloMassInRadType", lambda v: -v), "mask", tuple(range(6)))
    add("firstsub_out_of_range", fld("Group", "GroupFirstSub", lambda v: v + 10_000), "refuse")
    add("grnr_wrong_length", fld("Subhalo", "SubhaloGrNr", lambda v: v[:3]))
    add("m200_1e30", fld("Group", "Group_M_Crit200", lambda v: v * 1e30), "mask", tuple(range(6)))
    add("empty_groups", lambda f, h: [f["Group"].__setitem__(k, v[:0]) for k, v in list(f["Group"].items())])
    p = d / "fof_subhalo_tab_099.99.hdf5"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    out.append(Entry(p.name, "tng", "truncated", "halo_mass"))
    p = d / "fof_subhalo_tab_099.98.hdf5"
    _tng_file(p)
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    out.append(Entry(p.name, "tng", "truncated_half", "halo_mass"))
    return out


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
    out += _pipe3d_entries(d) + _manga_entries(d) + _firefly_entries(d)
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


# --------------------------------------------------------------------------------------------------- checkpoints
def _ckpt_parts(name: str = "halo_mass_flow") -> tuple[dict, bytes, dict[str, bytes]]:
    zf = zipfile.ZipFile(ROOT / "checkpoints" / f"{name}.gps")
    meta = json.loads(zf.read("metadata.json"))
    others = {n: zf.read(n) for n in zf.namelist() if n not in ("metadata.json", "weights.safetensors")}
    return meta, zf.read("weights.safetensors"), others


def _ckpt_write(path: Path, meta, weights: bytes, others: dict | None = None, fix_sha: bool = True,
                raw_meta: bytes | None = None) -> None:
    import hashlib

    if fix_sha and isinstance(meta, dict):
        meta = dict(meta, weights_sha256=hashlib.sha256(weights).hexdigest())
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", raw_meta if raw_meta is not None else json.dumps(meta))
        zf.writestr("weights.safetensors", weights)
        for k, v in (others or {}).items():
            zf.writestr(k, v)


def _tensors(weights: bytes, fn) -> bytes:
    from safetensors.numpy import load, save

    t = load(weights)
    fn(t)
    return save(t)


def checkpoint_entries(d: Path) -> list[Entry]:
    import pickle

    out = []
    meta, weights, others = _ckpt_parts()

    def add(kind, meta_=None, weights_=None, others_=None, raw_meta=None, fix_sha=True, expect="refuse"):
        p = d / f"ckpt_{kind}.gps"
        _ckpt_write(p, meta if meta_ is None else meta_, weights if weights_ is None else weights_,
                    others if others_ is None else others_, fix_sha, raw_meta)
        out.append(Entry(p.name, "checkpoint", kind, "halo_mass", expect, role="checkpoint"))

    add("valid_control", expect="ok")
    add("features_as_ints", dict(meta, features=[1, 2, 3]))
    add("config_as_list", dict(meta, config=[1, 2]))
    add("units_as_string", dict(meta, units="dex"))
    add("provenance_as_list", dict(meta, provenance=[1]))
    add("metadata_null", raw_meta=b"null")
    add("metadata_list", raw_meta=b"[1, 2]")
    add("metadata_binary", raw_meta=b"\xff\xfe\x00garbage")
    add("task_as_int", dict(meta, task=3))
    add("state_as_list", dict(meta, state=[0]))
    add("config_wrong_type", dict(meta, config=dict(meta["config"], hidden="abc")))
    add("config_unknown_key", dict(meta, config=dict(meta["config"], bogus=1)))
    add("model_unknown", dict(meta, model="nonsense"))
    add("targets_empty", dict(meta, targets=[]))
    add("features_unknown", dict(meta, features=["log_mstar", "nonsense"] + meta["features"][2:]))
    add("features_duplicated", dict(meta, features=["log_mstar"] * len(meta["features"])))
    add("text_members_as_string", dict(meta, text_members="abc"))
    add("binary_text_member", dict(meta, text_members=["x"]), others_={"text/x.txt": b"\xff\xfe\xfa"})
    add("format_version_string", dict(meta, format_version="1"))
    add("newer_version", dict(meta, format_version=99))
    add("y_std_zero", dict(meta, state=dict(meta["state"], y_std=0.0)))
    add("y_mean_string", dict(meta, state=dict(meta["state"], y_mean="ten")))
    add("x_mean_wrong_length", weights_=_tensors(weights, lambda t: t.__setitem__("x_mean", t["x_mean"][:3])))
    add("x_std_wrong_rank", weights_=_tensors(weights, lambda t: t.__setitem__("x_std", t["x_std"][None, :])))
    add("x_std_zero", weights_=_tensors(weights, lambda t: t.__setitem__("x_std", np.zeros_like(t["x_std"]))))
    add("weights_all_nan", weights_=_tensors(weights, lambda t: [t.__setitem__(k, np.full_like(v, np.nan))
                                                                   for k, v in list(t.items())
                                                                   if v.dtype.kind == "f"]))
    add("weights_inf", weights_=_tensors(weights, lambda t: t.__setitem__("flow.base.scale",
                                                                           np.full_like(t["flow.base.scale"],
                                                                                        np.inf))))
    add("weight_missing", weights_=_tensors(weights, lambda t: t.pop("x_mean")))
    add("checksum_mismatch", fix_sha=False, weights_=_tensors(weights, lambda t: t["x_mean"].__imul__(1.01)))
    add("weights_garbage", weights_=b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage" + b"\x00" * 50)
    add("weights_header_huge", weights_=struct.pack("<Q", 1 << 40) + b"{}")
    add("path_traversal_member", others_={"../../evil.txt": b"x", "/abs/evil.txt": b"y"})
    add("pickle_member", others_={"archive/data.pkl": pickle.dumps({"a": 1})})
    # another task's checkpoint on a halo_mass table (evaluate/predict must refuse it)
    for other in ("exsitu_map_cvae_flow_kinematics", "central_mass_powerlaw"):
        p = d / f"ckpt_other_task_{other}.gps"
        p.write_bytes((ROOT / "checkpoints" / f"{other}.gps").read_bytes())
        out.append(Entry(p.name, "checkpoint", f"other_task_{other.split('_')[0]}", "halo_mass", role="checkpoint"))
    # files that are not checkpoints at all
    for kind, data in (("pickle_renamed", pickle.dumps({"weights": [1, 2, 3]})), ("zero_byte", b""),
                       ("truncated_zip", (ROOT / "checkpoints/halo_mass_flow.gps").read_bytes()[:5000]),
                       ("text_file", b"hello, I am not a checkpoint\n"),
                       ("torch_zip", _torch_like_zip())):
        p = d / f"ckpt_{kind}.gps"
        p.write_bytes(data)
        out.append(Entry(p.name, "checkpoint", kind, "halo_mass", role="checkpoint"))
    p = d / "ckpt_zip_bomb.gps"
    _zip_bomb(p, meta, weights)
    out.append(Entry(p.name, "checkpoint", "zip_bomb", "halo_mass", role="checkpoint"))
    return out


def _torch_like_zip() -> bytes:
    import pickle

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps([1]))
        zf.writestr("archive/version", "3")
    return buf.getvalue()


def _zip_bomb(path: Path, meta: dict, weights: bytes) -> None:
    """A checkpoint whose metadata.json member inflates to 2 GiB of spaces (a few MB on disk is too much for
    a test; the deflate stream of zeros is ~1000:1, so we write 64 MiB and patch the declared sizes)."""
    import hashlib

    blob = b" " * (8 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(dict(meta, weights_sha256=hashlib.sha256(weights).hexdigest()))
                    .encode() + blob)
        zf.writestr("weights.safetensors", weights)
        zf.writestr("text/pad.txt", b"\x00" * (16 << 20))


# --------------------------------------------------------------------------------------------------- all
def build_corpus(d: str | Path) -> list[Entry]:
    """Write every corpus file into ``d`` and return their entries (>= 200)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    return table_entries(d) + tng_entries(d) + map_entries(d) + checkpoint_entries(d)


if __name__ == "__main__":  # pragma: no cover
    import sys

    es = build_corpus(sys.argv[1] if len(sys.argv) > 1 else "/tmp/gps-corpus")
    print(len(es), "files")
