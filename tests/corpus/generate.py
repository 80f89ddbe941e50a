"""Write the malformed-input corpus into a directory (at test time; never committed as binaries).

Every :class:`Entry` names one file, the format it pretends to be, the kind of damage, the task it is fed to and
what must happen: ``"refuse"`` (a GPSError / exit 2 naming the file) or ``"mask"`` (refused, or run with the bad
rows written as masked, ``valid = 0``, and the good rows kept in order). ``good_rows``/``bad_rows`` index rows.
"""

from __future__ import annotations

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
        # NaN = missing: an all-NaN column is an input not provided (a warning), the rest of the inputs are used
        ("all_nan_input", set_col("log_mstar", lambda v: v * np.nan), "ok", ()),
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
            extra = {"eval_drop": 1} if kind == "sentinel_m999_target" else {}
            if kind in ("sentinel_m99_30pct", "sentinel_9999"):
                extra["missing_input"] = True     # a model that marginalises missing inputs keeps these rows
            out.append(Entry(p.name, fmt, kind, "halo_mass", expect, bad, extra=extra))
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
    # one input only: the default halo_mass model (any subset of inputs) runs on log M* alone
    w("one_column.csv", "log_mstar\n" + "\n".join(f"{v}" for v in base["log_mstar"]) + "\n", "one_input_only", "ok")
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


# --------------------------------------------------------------------------------------------------- all
def build_corpus(d: str | Path) -> list[Entry]:
    """Write every corpus file into ``d`` and return their entries (>= 200)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    from tests.corpus.files_checkpoints import checkpoint_entries
    from tests.corpus.files_maps import map_entries

    return table_entries(d) + tng_entries(d) + map_entries(d) + checkpoint_entries(d)


if __name__ == "__main__":  # pragma: no cover
    import sys

    es = build_corpus(sys.argv[1] if len(sys.argv) > 1 else "/tmp/gps-corpus")
    print(len(es), "files")
