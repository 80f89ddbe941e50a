"""Pipe3D-style per-pixel tables (e.g. the CALIFA/EDGE ``*.pipe3d.hdf5`` astropy-table files) gridded into maps.

The SSP table has one row per pixel with integer ``ix``, ``iy`` and stellar-population columns (see
README_SSP.txt of Pipe3D): sigstar [Msun/pc2], age_mwt/age_lwt [dex yr], ZH_mwt/ZH_lwt [dex], vel_ssp,
vdisp_ssp [km/s] with errors, medflx_ssp [1e-16 erg/s/cm2/A].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["PIPE3D_CHANNELS", "DEFAULT_PIXEL_SCALE", "read_pipe3d", "identify_pipe3d"]

PIPE3D_CHANNELS = ("log_sigma_star", "vel", "sigma", "log_age", "metallicity", "flux")
DEFAULT_PIXEL_SCALE = 1.0       # arcsec: CALIFA cubes (Sanchez+12); used when ra/dec offsets are absent
_LN10 = np.log(10.0)
_REFF_KEYS = ("REFF", "reff", "Re", "re_arcsec", "reff_arcsec", "RE_ARCSEC")
#: Pipe3D's SSP libraries (CALIFA gsd156, MaNGA MaStar) assume a Salpeter IMF; the exsitu_map simulator's stellar
#: masses are Kroupa (bagpipes BC03). Salpeter -> Kroupa/Chabrier: x 0.63 (-0.20 dex; Madau & Dickinson 2014, sec.
#: 3.1, 0.61 for Chabrier, Kroupa ~0.03 dex heavier)
SALPETER_TO_KROUPA_DEX = -0.20


def read_pipe3d(path: str | os.PathLike, channels: Sequence[str] | None = None, weighting: str = "mass",
                table: str = "SSP", imf: str = "kroupa", **_: object):
    """Read a Pipe3D SSP table into a one-object MapStack on the (iy, ix) grid.

    Channels: log_sigma_star = log10(sigstar) + 6 [dex(Msun/kpc2)] (error from fe_medflx, approximate), with
    Pipe3D's Salpeter IMF converted to the task's Kroupa IMF (``imf="kroupa"``, default: -0.20 dex,
    :data:`SALPETER_TO_KROUPA_DEX`, recorded in ``meta``) or kept as Salpeter (``imf="salpeter"``);
    vel = vel_ssp - v_sys [km/s] with v_sys the median over valid pixels (stored in meta); sigma = vdisp_ssp;
    log_age = age_mwt (or age_lwt if ``weighting="light"``) [dex(yr)]; metallicity = ZH_mwt / ZH_lwt [dex]
    (errors of both from the light-weighted error columns e_age_lwt, e_ZH_lwt); flux = medflx_ssp.
    Pixel scale from the ra/dec offsets; R_eff from the table metadata, else estimated from the flux growth
    curve along ``rad_arc`` (with a warning in ``meta["notes"]``); centre = pixel of minimum ``rad_arc``.
    """
    from astropy.table import Table

    from core.data.catalog import file_sha256
    from core.data.maps import MapStack

    name = Path(path).name
    if weighting not in ("mass", "light"):
        raise GPSError("weighting must be 'mass' or 'light'", source=name, found=repr(weighting))
    if imf not in ("kroupa", "salpeter"):
        raise GPSError("imf must be 'kroupa' (convert) or 'salpeter' (as in the file)", source=name, field="imf",
                       found=repr(imf))
    chans = tuple(channels) if channels else PIPE3D_CHANNELS
    unknown = [c for c in chans if c not in PIPE3D_CHANNELS]
    if unknown:
        raise GPSError("Pipe3D reader has no such channel", source=name, field=", ".join(unknown),
                       expected=", ".join(PIPE3D_CHANNELS))
    t = _read_table(path, table, name)
    w = "mwt" if weighting == "mass" else "lwt"
    cols = {"log_sigma_star": ("sigstar", "fe_medflx"), "vel": ("vel_ssp", "e_vel_ssp"),
            "sigma": ("vdisp_ssp", "e_vdisp_ssp"), "log_age": (f"age_{w}", "e_age_lwt"),
            "metallicity": (f"ZH_{w}", "e_ZH_lwt"), "flux": ("medflx_ssp", "e_medflx_ssp")}
    need = ["ix", "iy"] + [c for ch in chans for c in cols[ch]]
    missing = [c for c in need if c not in t.colnames]
    if missing:
        raise GPSError("Pipe3D SSP table lacks columns", source=name, field=", ".join(missing),
                       expected=", ".join(need), found=", ".join(t.colnames))
    if len(t) == 0:
        raise GPSError("the Pipe3D table has no rows", source=name, field=table, expected="one row per pixel",
                       found="0 rows")
    for c in need:
        if t[c].dtype.kind not in "biuf" or t[c].ndim != 1:
            raise GPSError("Pipe3D column is not numeric", source=name, field=c, expected="one number per pixel",
                           found=f"{t[c].dtype} shape {t[c].shape}")
    for c in ("ix", "iy"):
        col = np.asarray(t[c], dtype=np.float64)
        if not np.isfinite(col).all() or (col != np.round(col)).any():
            raise GPSError("pixel indices must be whole numbers", source=name, field=c, expected="integers >= 0",
                           found=f"{int((~np.isfinite(col) | (col != np.round(col))).sum())} bad values")
    ix, iy = np.asarray(t["ix"], dtype=np.int64), np.asarray(t["iy"], dtype=np.int64)
    from core.data.io.registry import check_declared_size

    check_declared_size(float(iy.max() + 1) * float(ix.max() + 1) * (2 * len(chans) + 1), name, "ix/iy",
                        "map grid (max iy + 1) x (max ix + 1) x planes")
    if len(set(zip(ix.tolist(), iy.tolist()))) != len(ix):
        raise GPSError("the same pixel appears in several rows", source=name, field="ix/iy",
                       expected="one row per pixel", found=f"{len(ix) - len(set(zip(ix.tolist(), iy.tolist())))} "
                       "duplicated (ix, iy)")
    if ix.min() < 0 or iy.min() < 0:
        raise GPSError("negative pixel indices", source=name, field="ix/iy", expected=">= 0",
                       found=f"min ix {ix.min()}, min iy {iy.min()}")
    h, wd = int(iy.max()) + 1, int(ix.max()) + 1
    notes: list[str] = [f"age/metallicity: {weighting}-weighted; their errors from the light-weighted error columns"]
    if weighting == "light":
        notes.append("log_age/metallicity are light-weighted: the exsitu_map inputs are mass-weighted")
    planes, ivars, masks = [], [], []
    meta_extra: dict = {}
    for ch in chans:
        v = np.asarray(t[cols[ch][0]], dtype=np.float64)
        e = np.asarray(t[cols[ch][1]], dtype=np.float64)
        if ch == "log_sigma_star":
            ok = v > 0
            v = np.where(ok, np.log10(np.where(ok, v, 1.0)) + 6.0, np.nan)
            e = np.abs(e) / _LN10
            if imf == "kroupa":
                v = v + SALPETER_TO_KROUPA_DEX
                meta_extra["imf_conversion"] = (f"log_sigma_star: Pipe3D Salpeter IMF -> Kroupa, "
                                                f"{SALPETER_TO_KROUPA_DEX:+.2f} dex (Madau & Dickinson 2014)")
                notes.append(meta_extra["imf_conversion"])
            else:
                notes.append("log_sigma_star: Salpeter IMF as in the file (the exsitu_map simulator's is Kroupa, "
                             f"{-SALPETER_TO_KROUPA_DEX:.2f} dex lower); imf='kroupa' converts")
        elif ch == "vel":
            vsys = float(np.nanmedian(v))
            v = v - vsys
            meta_extra["v_sys_kms"] = vsys
            notes.append(f"vel: systemic velocity {vsys:.1f} km/s (median) subtracted")
        val, iv, m = _grid(v, e, ix, iy, h, wd)
        planes.append(val), ivars.append(iv), masks.append(m)
    mask = np.any(masks, axis=0)
    data = np.where(mask[None], 0.0, np.stack(planes)).astype(np.float32)
    ivar = np.where(mask[None], 0.0, np.stack(ivars)).astype(np.float32)
    scale = _pixel_scale(t, ix, iy, notes)
    center = _center(t, ix, iy, mask, notes)
    reff = _reff(t, notes)
    gal = _galaxy_name(t, name)
    header = _wcs_header(t, ix, iy, center, scale, gal)
    units = {"log_sigma_star": "dex(solMass / kpc2)", "vel": "km / s", "sigma": "km / s", "log_age": "dex(yr)",
             "metallicity": "dex", "flux": "1e-16 erg / (Angstrom cm2 pix s)"}
    meta = {"file": str(path), "sha256": file_sha256(path), "format": "pipe3d", "table": table,
            "weighting": weighting, "imf": imf, "notes": notes, **meta_extra}
    stack = MapStack(data=data[None], channels=chans, units=tuple(units[c] for c in chans), mask=mask[None],
                     ivar=ivar[None], pixel_scale_arcsec=scale, reff_arcsec=reff, center_xy=np.array([center]),
                     headers=[header], ids=np.array([gal]), meta=meta)
    return stack.validate()


def identify_pipe3d(path: str, head: bytes) -> bool:
    """HDF5 file holding an astropy table ``SSP`` (with its ``__table_column_meta__``) that has ix, iy."""
    if not head.startswith(b"\x89HDF\r\n\x1a\n"):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            ds = f.get("SSP")
            return ds is not None and "SSP.__table_column_meta__" in f and \
                ds.dtype.names is not None and {"ix", "iy"} <= set(ds.dtype.names)
    except OSError:
        return False


# ----------------------------------------------------------------------------------------------------
def _read_table(path, table: str, name: str):
    import h5py
    from astropy.table import Table

    try:
        with h5py.File(str(path), "r") as f:
            tables = [k for k in f.keys() if not k.endswith("__table_column_meta__")]
    except OSError as err:
        raise GPSError("cannot open as HDF5 (corrupt or truncated file?)", source=name,
                       found=str(err)) from None
    if table not in tables:
        raise GPSError(f"no table {table!r} in the Pipe3D file", source=name, field=table,
                       expected=f"table {table!r}", found="tables " + ", ".join(tables))
    try:
        return Table.read(str(path), path=table)
    except Exception as err:
        raise GPSError("cannot read the Pipe3D table", source=name, field=table,
                       found=f"{type(err).__name__}: {err}") from None


def _grid(v, e, ix, iy, h, w):
    val = np.full((h, w), np.nan)
    err = np.full((h, w), np.nan)
    val[iy, ix] = v
    err[iy, ix] = e
    ok = np.isfinite(val) & np.isfinite(err) & (err > 0)
    iv = np.where(ok, 1.0 / np.where(ok, err, 1.0) ** 2, 0.0)
    return np.where(ok, val, 0.0), iv, ~ok


def _pixel_scale(t, ix, iy, notes) -> float:
    if "dec_off" in t.colnames and len(np.unique(iy)) > 1:
        dec = np.asarray(t["dec_off"], dtype=np.float64) * 3600.0
        A = np.c_[ix, iy, np.ones_like(ix)].astype(np.float64)
        coef = np.linalg.lstsq(A, dec, rcond=None)[0]
        scale = float(np.hypot(coef[0], coef[1]))
        if 0.01 < scale < 100:
            notes.append(f"pixel scale {scale:.4g} arcsec from the dec offsets")
            return scale
    notes.append(f"WARNING: pixel scale unknown; CALIFA default {DEFAULT_PIXEL_SCALE} arcsec assumed")
    return DEFAULT_PIXEL_SCALE


def _center(t, ix, iy, mask, notes) -> tuple[float, float]:
    if "rad_arc" in t.colnames:
        k = int(np.argmin(np.asarray(t["rad_arc"], dtype=np.float64)))
        return float(ix[k]), float(iy[k])
    notes.append("no rad_arc column: the image centre is taken as the galaxy centre")
    return (mask.shape[1] - 1) / 2.0, (mask.shape[0] - 1) / 2.0


def _reff(t, notes) -> float:
    for k in _REFF_KEYS:
        if k in t.meta:
            try:
                return float(t.meta[k])
            except (TypeError, ValueError):
                pass
    if "rad_arc" in t.colnames and "medflx_ssp" in t.colnames:
        r = np.asarray(t["rad_arc"], dtype=np.float64)
        f = np.asarray(t["medflx_ssp"], dtype=np.float64)
        ok = np.isfinite(f) & np.isfinite(r) & (f > 0)
        if ok.sum() > 10:
            o = np.argsort(r[ok])
            cum = np.cumsum(f[ok][o])
            re = float(r[ok][o][np.searchsorted(cum, 0.5 * cum[-1])])
            notes.append(f"WARNING: no R_eff in the file; {re:.3g} arcsec estimated from the flux growth curve "
                         "along the elliptical radius rad_arc inside the field (a lower limit if the galaxy "
                         "overfills it); pass reff_arcsec to regrid to override")
            return re
    notes.append("WARNING: R_eff unknown (no metadata, no rad_arc); pass reff_arcsec to regrid")
    return float("nan")


def _galaxy_name(t, name: str) -> str:
    if "Name" not in t.colnames or len(t) == 0:
        return Path(name).stem.split(".")[0]
    v = np.asarray(t["Name"])[0]
    return (v.decode() if isinstance(v, bytes) else str(v)).strip()


def _wcs_header(t, ix, iy, center, scale, gal) -> str:
    from astropy.io import fits

    hdr = fits.Header()
    hdr["OBJECT"] = gal
    if {"ra_abs", "dec_abs"} <= set(t.colnames):
        k = int(np.argmin((ix - center[0]) ** 2 + (iy - center[1]) ** 2))
        hdr["CTYPE1"], hdr["CTYPE2"] = "RA---TAN", "DEC--TAN"
        hdr["CRPIX1"], hdr["CRPIX2"] = float(ix[k]) + 1.0, float(iy[k]) + 1.0
        hdr["CRVAL1"], hdr["CRVAL2"] = float(t["ra_abs"][k]), float(t["dec_abs"][k])
        hdr["CDELT1"], hdr["CDELT2"] = -scale / 3600.0, scale / 3600.0
        hdr["CUNIT1"], hdr["CUNIT2"] = "deg", "deg"
    hdr["NAXIS1"], hdr["NAXIS2"] = int(ix.max()) + 1, int(iy.max()) + 1
    hdr["HISTORY"] = "GPS: gridded from a Pipe3D per-pixel table (ix, iy)"
    return hdr.tostring(sep="\n")
