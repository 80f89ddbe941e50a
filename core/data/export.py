"""Posterior exports: summaries (and optional samples) with units and provenance as CSV, FITS or HDF5.

Posterior *maps* (:func:`write_map_posterior`) are written as FITS (one image HDU per summary map, the input's WCS
moved onto the model grid; several objects: cubes + an OBJECTS table) or HDF5 (``maps/<name>``, ``input_mask``,
the regridded ``inputs``, ``ids``, ``headers``, ``truth``, optional ``samples``), provenance in the primary header
(notes as HISTORY cards) or the ``provenance`` attribute (JSON).

One mechanism serves the app's downloads and the CLI's streaming ``predict``: :class:`PosteriorWriter` receives
chunks of rows and writes them in constant memory (FITS: the row count is declared up front; samples go through a
disk-backed buffer and are appended as an image HDU at the end).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import SUMMARY_PERCENTILES, Posterior

__all__ = ["posterior_columns", "posterior_table", "PosteriorWriter", "write_posterior", "EXPORT_FORMATS",
           "format_from_path", "write_map_posterior", "map_summaries"]

EXPORT_FORMATS = ("csv", "fits", "hdf5")
_EXT = {".csv": "csv", ".fits": "fits", ".fit": "fits", ".fits.gz": "fits", ".h5": "hdf5", ".hdf5": "hdf5"}


def format_from_path(path: str | os.PathLike) -> str:
    low = str(path).lower()
    for ext, fmt in sorted(_EXT.items(), key=lambda kv: -len(kv[0])):
        if low.endswith(ext):
            return fmt
    raise GPSError("cannot tell the output format from the file name", source=str(path),
                   expected="a name ending in .csv, .fits or .h5/.hdf5")


def posterior_columns(post: Posterior, data: CatalogData) -> dict[str, tuple[np.ndarray, str]]:
    """Ordered columns name -> (values, unit): id, truth (when known), summaries, validity, diagnostics."""
    cols: dict[str, tuple[np.ndarray, str]] = {"id": (np.asarray(data.ids), "")}
    if data.y is not None:
        for j, t in enumerate(data.targets):
            cols[f"{t}_true"] = (data.y[:, j], data.units.get(t, ""))
    summ = post.summaries()
    for j, p in enumerate(post.params):
        unit = post.units[j] if j < len(post.units) else ""
        for key in ("mean", "median", "std") + tuple(f"p{q:g}" for q in SUMMARY_PERCENTILES):
            cols[f"{p}_{key}"] = (summ[f"{p}_{key}"], unit)
    cols["valid"] = (post.valid.astype(np.int8), "")
    for k, v in post.diagnostics.items():
        v = np.asarray(v)
        if v.ndim == 1 and len(v) == post.n:
            cols[k] = (v, "")
    return cols


def posterior_table(post: Posterior, data: CatalogData, provenance: dict | None = None):
    """astropy QTable of :func:`posterior_columns` with provenance in ``meta``."""
    from astropy import units as u
    from astropy.table import QTable

    t = QTable()
    for name, (vals, unit) in posterior_columns(post, data).items():
        t[name] = vals * u.Unit(unit) if unit else vals
    t.meta.update(_flat_provenance(provenance or {}))
    return t


def write_posterior(post: Posterior, data: CatalogData, target: str | os.PathLike | BinaryIO, fmt: str | None = None,
                    *, include_samples: bool = False, n_samples: int = 1000, provenance: dict | None = None,
                    seed: int = 0) -> None:
    """Write the whole posterior at once (used by the app's download buttons)."""
    fmt = fmt or format_from_path(target)
    cols = posterior_columns(post, data)
    samples = post.sample(n_samples, seed) if include_samples else None
    if hasattr(target, "write"):
        with tempfile.TemporaryDirectory(prefix="gps-export-") as tmp:
            path = Path(tmp) / f"posterior.{fmt}"
            _write_all(path, fmt, cols, samples, post.params, provenance)
            target.write(path.read_bytes())
    else:
        _write_all(Path(target), fmt, cols, samples, post.params, provenance)


def _write_all(path, fmt, cols, samples, params, provenance):
    n = len(next(iter(cols.values()))[0])
    w = PosteriorWriter(path, fmt, n_total=n, columns={k: u for k, (_, u) in cols.items()},
                        sample_shape=None if samples is None else samples.shape[1:], params=params,
                        provenance=provenance)
    w.write({k: v for k, (v, _) in cols.items()}, samples)
    w.close()


class PosteriorWriter:
    """Streaming writer. ``columns`` maps column names to units; ``sample_shape`` = (n_samples, n_params) or None."""

    def __init__(self, path: str | os.PathLike, fmt: str, *, n_total: int, columns: dict[str, str],
                 sample_shape: tuple[int, int] | None = None, params: tuple[str, ...] = (),
                 provenance: dict | None = None) -> None:
        if fmt not in EXPORT_FORMATS:
            raise GPSError("unsupported export format", source=str(path), expected=" | ".join(EXPORT_FORMATS),
                           found=fmt)
        self.path, self.fmt, self.n_total = Path(path), fmt, int(n_total)
        self.columns, self.sample_shape, self.params = dict(columns), sample_shape, tuple(params)
        self.provenance = provenance or {}
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".part")
        getattr(self, f"_open_{fmt}")()

    # -- public ---------------------------------------------------------------------------------------
    def write(self, cols: dict[str, np.ndarray], samples: np.ndarray | None = None) -> None:
        m = len(next(iter(cols.values())))
        if self.rows + m > self.n_total:
            raise GPSError("more rows than declared", source=str(self.path), expected=str(self.n_total),
                           found=str(self.rows + m))
        getattr(self, f"_write_{self.fmt}")(cols, samples, m)
        self.rows += m

    def close(self) -> None:
        getattr(self, f"_close_{self.fmt}")()
        os.replace(self._tmp, self.path)

    # -- CSV ------------------------------------------------------------------------------------------
    def _open_csv(self):
        self._fh = open(self._tmp, "w", encoding="utf-8")
        for k, v in _flat_provenance(self.provenance).items():
            self._fh.write(f"# {k}: {v}\n")
        self._fh.write("# units: " + json.dumps({k: u for k, u in self.columns.items() if u}) + "\n")
        if self.sample_shape is not None:
            self._fh.write("# samples: not stored in CSV (use FITS or HDF5 for posterior samples)\n")
        self._fh.write(",".join(self.columns) + "\n")

    def _write_csv(self, cols, samples, m):
        arr = [np.asarray(cols[k]) for k in self.columns]
        for i in range(m):
            self._fh.write(",".join(_fmt(a[i]) for a in arr) + "\n")

    def _close_csv(self):
        self._fh.close()

    # -- HDF5 -----------------------------------------------------------------------------------------
    def _open_hdf5(self):
        import h5py

        self._h5 = h5py.File(self._tmp, "w")
        self._h5.attrs["format"] = "galaxy-posterior-studio/posterior"
        self._h5.attrs["provenance"] = json.dumps(_jsonable(self.provenance))
        g = self._h5.create_group("summaries")
        for k, unit in self.columns.items():
            d = g.create_dataset(k, shape=(self.n_total,), dtype="f8" if k != "id" else "i8")
            d.attrs["unit"] = unit
        if self.sample_shape is not None:
            s = self._h5.create_dataset("samples", shape=(self.n_total, *self.sample_shape), dtype="f4",
                                        chunks=(min(1024, max(1, self.n_total)), *self.sample_shape))
            s.attrs["params"] = json.dumps(list(self.params))
            s.attrs["axes"] = "object, sample, parameter"

    def _write_hdf5(self, cols, samples, m):
        g = self._h5["summaries"]
        sl = slice(self.rows, self.rows + m)
        for k in self.columns:
            g[k][sl] = np.asarray(cols[k])
        if self.sample_shape is not None and samples is not None:
            self._h5["samples"][sl] = samples

    def _close_hdf5(self):
        self._h5.attrs["n_rows"] = self.rows
        self._h5.close()

    # -- FITS -----------------------------------------------------------------------------------------
    def _open_fits(self):
        from astropy.io import fits

        with warnings.catch_warnings():  # 'dex(...)' units are not in the FITS standard but are the field's usage
            warnings.simplefilter("ignore")
            cols = [fits.Column(name=k, format="K" if k == "id" else "D", unit=u or None)
                    for k, u in self.columns.items()]
            hdu = fits.BinTableHDU.from_columns(cols, nrows=0)
        hdu.header["EXTNAME"] = "POSTERIOR"
        hdu.header["NAXIS2"] = self.n_total
        for k, v in _flat_provenance(self.provenance).items():
            key = ("HIERARCH " + k.upper())[:60]
            try:
                hdu.header[key] = str(v)[:60]
            except (ValueError, KeyError):
                hdu.header.add_comment(f"{k}: {v}"[:72])
        primary = fits.PrimaryHDU()
        primary.header["ORIGIN"] = "Galaxy Posterior Studio"
        self._fh = open(self._tmp, "wb")
        self._fh.write(primary.header.tostring().encode("ascii"))
        self._fh.write(hdu.header.tostring().encode("ascii"))
        self._dtype = np.dtype([(k, ">i8" if k == "id" else ">f8") for k in self.columns])
        self._written = 0
        self._samp = None
        if self.sample_shape is not None:
            self._samp_path = self.path.with_name(self.path.name + ".samples.tmp")
            self._samp = np.memmap(self._samp_path, dtype=">f4", mode="w+",
                                   shape=(max(1, self.n_total), *self.sample_shape))

    def _write_fits(self, cols, samples, m):
        rec = np.empty(m, dtype=self._dtype)
        for k in self.columns:
            rec[k] = np.asarray(cols[k])
        b = rec.tobytes()
        self._fh.write(b)
        self._written += len(b)
        if self._samp is not None and samples is not None:
            self._samp[self.rows:self.rows + m] = samples

    def _close_fits(self):
        from astropy.io import fits

        if self.rows != self.n_total:
            raise GPSError("fewer rows written than declared", source=str(self.path), expected=str(self.n_total),
                           found=str(self.rows))
        self._fh.write(b"\0" * (-self._written % 2880))
        if self._samp is not None:
            self._samp.flush()
            h = fits.ImageHDU(data=np.zeros((1, 1, 1), ">f4")).header
            h["NAXIS1"], h["NAXIS2"], h["NAXIS3"] = self.sample_shape[1], self.sample_shape[0], self.n_total
            h["BITPIX"] = -32
            h["EXTNAME"] = "SAMPLES"
            h["PARAMS"] = ",".join(self.params)
            h.add_comment("axes (FITS order): parameter, sample, object")
            self._fh.write(h.tostring().encode("ascii"))
            nbytes = 0
            step = 4096
            for i in range(0, self.n_total, step):
                b = np.asarray(self._samp[i:i + step]).tobytes()
                self._fh.write(b)
                nbytes += len(b)
            self._fh.write(b"\0" * (-nbytes % 2880))
            del self._samp
            os.remove(self._samp_path)
        self._fh.close()


# --------------------------------------------------------------------------------------------------- maps
def map_summaries(post) -> dict[str, tuple[np.ndarray, str, str]]:
    """name -> ((N, H, W) float32, unit, description) for every summary map of a MapPosterior."""
    unit = post.unit
    out = {"mean": (post.mean, unit, "posterior mean"), "std": (post.std, unit, "posterior standard deviation"),
           "q2.5": (post.q025, unit, "2.5th percentile"), "q16": (post.q16, unit, "16th percentile"),
           "median": (post.q50, unit, "posterior median (50th percentile)"),
           "q84": (post.q84, unit, "84th percentile"), "q97.5": (post.q975, unit, "97.5th percentile")}
    for j, t in enumerate(post.thresholds):
        out[f"p_gt_{t:g}"] = (post.p_exceed[:, j], "", f"posterior probability that {post.target} > {t:g}")
    res = post.residual
    if res is not None:
        out["residual"] = (res, unit, f"posterior mean minus true {post.target} (NaN where the input is masked)")
    return {k: (np.asarray(v, np.float32), u, d) for k, (v, u, d) in out.items()}


def write_map_posterior(post, stack, out_path: str, fmt: str, *, provenance: dict,
                        save_samples: bool = False) -> Path:
    """Write a MapPosterior of the objects of ``stack`` (the prepared MapStack: its headers hold the WCS on the
    model grid) as FITS or HDF5 (see the module docstring); atomic (a ``.part`` file renamed at the end)."""
    out = Path(out_path)
    tmp = out.with_name(out.name + ".part")
    try:
        if fmt == "fits":
            _map_fits(post, stack, provenance).writeto(tmp, overwrite=True)
        else:
            _map_hdf5(post, stack, provenance, tmp, save_samples)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out



def _map_fits(post, stack, prov: dict):
    from astropy.io import fits
    from astropy.table import Table

    maps = map_summaries(post)
    if post.n == 1:
        hdul = post.to_hdulist(0, header=stack.fits_header(0))
        for hdu in hdul[1:]:
            key = hdu.name.lower()
            match = next((k for k in maps if k.upper()[:68] == hdu.name), None)
            if match:
                hdu.header["BUNIT"] = maps[match][1]
                hdu.header["COMMENT"] = maps[match][2] if match.startswith("p_gt") else \
                    f"{maps[match][2]} of {post.target} (dimensionless fraction)"
            elif key == "input_mask":
                hdu.header["COMMENT"] = "1 = no input data (model output there is an extrapolation)"
    else:
        hdul = fits.HDUList([fits.PrimaryHDU()])
        hdul[0].header["TARGET"] = (post.target, "posterior target")
        hdul[0].header["METHOD"] = (post.method, "inference method")
        hdul[0].header["NSAMPLE"] = (post.n_samples, "posterior samples per object")
        for name, (arr, unit, desc) in maps.items():
            hdu = fits.ImageHDU(arr, name=name.upper()[:68])
            hdu.header["BUNIT"] = unit
            hdu.header["COMMENT"] = f"{desc} of {post.target}; axis 3 = object (row of the OBJECTS table)"
            hdul.append(hdu)
        hdu = fits.ImageHDU(post.mask.astype(np.uint8), name="INPUT_MASK")
        hdu.header["COMMENT"] = "1 = no input data; axis 3 = object"
        hdul.append(hdu)
        hdul.append(fits.BinTableHDU(Table({
            "id": np.asarray([str(i) for i in post.ids]), "reff_arcsec": np.asarray(stack.reff_arcsec, float),
            "pixel_scale_arcsec": np.asarray(stack.pixel_scale_arcsec, float),
            "wcs": np.asarray([_celestial_header_text(stack.fits_header(i)) for i in range(len(stack))])}),
            name="OBJECTS"))
    h = hdul[0].header
    for key, value in (("TASK", prov["task"]), ("MODEL", prov["model"]), ("CKPT", prov["checkpoint"]),
                       ("INFILE", prov["input_file"]), ("INSHA256", prov["input_sha256"]),
                       ("MODE", prov.get("mode", "")), ("SEED", prov["seed"]), ("ORIGIN", "Galaxy Posterior Studio"),
                       ("GPSVERS", prov.get("package_version", ""))):
        h[key] = str(value)[:68] if isinstance(value, str) else value
    for note in prov.get("reader_notes", []) + prov.get("prepare_notes", []):
        h.add_history(str(note))
    h.add_comment("features: " + ", ".join(prov.get("features", [])))
    return hdul


def _map_hdf5(post, stack, prov: dict, path: Path, save_samples: bool) -> None:
    import h5py

    comp = dict(compression="gzip", compression_opts=4, shuffle=True)
    str_dt = h5py.string_dtype("utf-8")
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "galaxy-posterior-studio/posterior-maps"
        f.attrs["provenance"] = json.dumps(prov, default=str)
        f.attrs["target"], f.attrs["unit"], f.attrs["method"] = post.target, post.unit, post.method
        f.attrs["n_samples"] = int(post.n_samples)
        f.attrs["thresholds"] = np.asarray(post.thresholds, float)
        f.attrs["axes"] = "object, y, x (FITS order: row 0 = first FITS row)"
        g = f.create_group("maps")
        for name, (arr, unit, desc) in map_summaries(post).items():
            d = g.create_dataset(name, data=arr, **comp)
            d.attrs["unit"], d.attrs["description"] = unit, desc
        f.create_dataset("input_mask", data=post.mask.astype(np.uint8), **comp).attrs["description"] = \
            "1 = no input data"
        d = f.create_dataset("inputs", data=stack.data, **comp)
        d.attrs["channels"] = json.dumps(list(stack.channels))
        d.attrs["units"] = json.dumps(list(stack.units))
        d.attrs["description"] = "the input maps on the model grid (after channel selection and regridding)"
        f.create_dataset("ids", data=np.asarray([str(i) for i in post.ids], dtype=object), dtype=str_dt)
        f.create_dataset("headers", data=np.asarray(list(stack.headers), dtype=object), dtype=str_dt)
        f.create_dataset("reff_arcsec", data=np.asarray(stack.reff_arcsec, float))
        f.create_dataset("pixel_scale_arcsec", data=np.asarray(stack.pixel_scale_arcsec, float))
        if post.truth is not None:
            f.create_dataset("truth", data=np.asarray(post.truth, np.float32), **comp)
        if save_samples and post.samples is not None:
            d = f.create_dataset("samples", data=post.samples, chunks=(1,) + post.samples.shape[1:], **comp)
            d.attrs["axes"] = "object, sample, y, x"


def _celestial_header_text(header) -> str:
    from astropy.wcs import WCS

    if not len(header):
        return ""
    try:
        return WCS(header).celestial.to_header().tostring(sep="\n").strip()
    except Exception:  # noqa: BLE001 - no valid WCS: none
        return ""


def _fmt(v) -> str:
    if isinstance(v, (np.integer, int)):
        return str(int(v))
    v = float(v)
    return "" if not np.isfinite(v) else f"{v:.6g}"


def _jsonable(obj: Any):
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def _flat_provenance(prov: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in prov.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat_provenance(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(_jsonable(v))
        else:
            out[key] = str(v)
    return out
