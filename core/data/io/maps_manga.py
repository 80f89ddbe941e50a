"""MaNGA readers: DAP MAPS files (stellar kinematics + flux) and Firefly per-spaxel stellar-mass CSV maps.

DAP mask bits (``MANGA_DAPPIXMASK``): 0 NOCOV, 1 LOWCOV, 2 DEADFIBER, 3 FORESTAR, 4 NOVALUE, 5 UNRELIABLE,
6 MATHERROR, 7 FITFAILED, 8 NEARBOUND, 9 NOCORRECTION, 10 MULTICOMP, 30 DONOTUSE. By default any nonzero bit
masks a spaxel (conservative); pass ``mask_bits=DONOTUSE`` to mask only what the DAP says not to use.
"""

from __future__ import annotations

import gzip
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["DONOTUSE", "DAP_CHANNELS", "read_manga_dap", "identify_manga_dap", "read_firefly_csv",
           "identify_firefly_csv"]

DONOTUSE = 1 << 30
DAP_CHANNELS = ("vel", "sigma", "flux")
_FLUX_UNIT = "1e-17 erg / (Angstrom cm2 pix s)"     # DAP BUNIT '1E-17 erg/s/cm^2/ang/spaxel'
_DAP_HDUS = {
    "vel": ("STELLAR_VEL", "STELLAR_VEL_IVAR", "STELLAR_VEL_MASK"),
    "sigma": ("STELLAR_SIGMA", "STELLAR_SIGMA_IVAR", "STELLAR_SIGMA_MASK", "STELLAR_SIGMACORR"),
    "flux": ("SPX_MFLUX", "SPX_MFLUX_IVAR"),
}


def read_manga_dap(path: str | os.PathLike, channels: Sequence[str] | None = None,
                   mask_bits: int | None = None, **_: object):
    """Read a MaNGA DAP MAPS file (.fits or .fits.gz) into a one-object MapStack.

    Channels: ``vel`` = STELLAR_VEL [km/s] (relative to the DAP input redshift), ``sigma`` =
    sqrt(STELLAR_SIGMA^2 - STELLAR_SIGMACORR^2) [km/s] (masked where negative; ivar scaled by (sigma/sigma_c)^2),
    ``flux`` = SPX_MFLUX, the g-band-weighted mean flux [1e-17 erg/s/cm2/A/spaxel]. The mask is the union over
    the channels read (``channels`` restricts them, e.g. ("flux",) keeps the whole flux footprint; by default
    every channel whose HDUs are present is read, and a file with none of them is refused).
    R_eff from the primary header REFF [arcsec]; pixel scale from the WCS (0.5"); centre from OBJRA/OBJDEC.
    """
    from astropy.io import fits

    from core.data.catalog import file_sha256
    from core.data.maps import MapStack

    name = Path(path).name
    chans = tuple(channels) if channels else None
    bad = [c for c in chans or () if c not in DAP_CHANNELS]
    if bad:
        raise GPSError("a DAP MAPS file has no such channel", source=name, field=", ".join(bad),
                       expected=", ".join(DAP_CHANNELS), found=", ".join(chans))
    bits = -1 if mask_bits is None else int(mask_bits)
    hdul, present = open_fits(path, name, "a MaNGA DAP MAPS FITS file")
    with hdul:
        notes: list[str] = []
        if chans is None:                 # default: every channel whose HDUs are all present
            chans = tuple(c for c in DAP_CHANNELS if all(h in present for h in _DAP_HDUS[c])) or DAP_CHANNELS
            skipped = [c for c in DAP_CHANNELS if c not in chans]
            if skipped:
                notes.append(f"channels {', '.join(skipped)} not read: their HDUs are missing")
        need = [h for c in chans for h in _DAP_HDUS[c]]
        missing = [h for h in need if h not in present]
        if missing and _truncated(str(path)):
            raise GPSError("FITS file is truncated or corrupt", source=name, field=", ".join(missing),
                           expected="complete FITS blocks / gzip stream", found="HDUs " + ", ".join(present))
        if missing:
            raise GPSError("FITS file lacks the MaNGA DAP MAPS extensions", source=name, field=", ".join(missing),
                           expected=", ".join(need), found="HDUs " + ", ".join(present))
        try:
            arrays = {h: np.asarray(hdul[h].data) for h in need}
        except (OSError, EOFError, ValueError, TypeError) as err:
            raise GPSError("cannot read the FITS data (corrupt or truncated file?)", source=name,
                           found=f"{type(err).__name__}: {err}") from None
        ref = _DAP_HDUS[chans[0]][0]
        shape = arrays[ref].shape
        for h, a in arrays.items():
            if h == "STELLAR_SIGMACORR" and a.ndim == 3 and a.shape[1:] == shape:
                continue
            if a.shape != shape:
                raise GPSError("map shapes do not match", source=name, field=h,
                               expected=f"{shape} (as {ref})", found=str(a.shape))
        if len(shape) != 2:
            raise GPSError("DAP map is not 2-D", source=name, field=ref, expected="(NY, NX)", found=str(shape))
        primary = hdul[0].header
        data_hdr = hdul[ref].header
        planes, ivars, masks = [], [], []
        for c in chans:
            d, iv, m = _dap_channel(c, arrays, bits, hdul, notes)
            planes.append(d), ivars.append(iv), masks.append(m)
        header, scale, center = _dap_geometry(primary, data_hdr, shape, hdul, notes)
    mask = np.any(masks, axis=0)
    data = np.where(mask[None], 0.0, np.nan_to_num(np.stack(planes))).astype(np.float32)
    ivar = np.where(mask[None], 0.0, np.stack(ivars)).astype(np.float32)
    try:
        reff = float(primary.get("REFF", np.nan) or np.nan)
    except (TypeError, ValueError):
        raise GPSError("REFF is not a number", source=name, field="PRIMARY REFF", expected="R_e in arcsec",
                       found=repr(primary.get("REFF"))) from None
    if not np.isfinite(reff) or reff <= 0:
        notes.append("no REFF in the primary header: R_eff unknown (pass reff_arcsec to regrid)")
        reff = np.nan
    units = tuple({"vel": "km / s", "sigma": "km / s", "flux": _FLUX_UNIT}[c] for c in chans)
    plateifu = str(primary.get("PLATEIFU", Path(name).stem))
    meta = {"file": str(path), "sha256": file_sha256(path), "format": "manga_dap",
            "daptype": str(primary.get("DAPTYPE", "")), "dapversion": str(primary.get("VERSDAP", "")),
            "mask_bits": "any nonzero" if mask_bits is None else hex(bits), "notes": notes,
            "psf_fwhm_arcsec": float(primary.get("RFWHM", np.nan) or np.nan)}
    stack = MapStack(data=data[None], channels=chans, units=units, mask=mask[None], ivar=ivar[None],
                     pixel_scale_arcsec=scale, reff_arcsec=reff, center_xy=np.array([center]),
                     headers=[header], ids=np.array([plateifu]), meta=meta)
    return stack.validate()


def open_fits(path, name: str, expected: str):
    """(the open HDU list, its HDU names) of a FITS map file; an unreadable file is refused as a GPSError naming
    ``name`` and what was ``expected`` (truncation is reported by the caller, which knows the HDUs it needs)."""
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hdul = fits.open(str(path), memmap=False)
            hdul.verify("silentfix")
            return hdul, [h.name for h in hdul]
    except (OSError, EOFError, ValueError) as err:
        raise GPSError("cannot read as FITS (corrupt or truncated file?)", source=name, expected=expected,
                       found=f"{type(err).__name__}: {err}") from None


def identify_manga_dap(path: str, head: bytes) -> bool:
    """FITS (or gzipped FITS) whose primary header says DAPFRMT = 'MAPS' or MASKNAME = 'MANGA_DAPPIXMASK'."""
    text = _fits_head(path, head)
    return text.startswith(b"SIMPLE") and (b"'MAPS" in text or b"MANGA_DAPPIXMASK" in text)


def read_firefly_csv(path: str | os.PathLike, redshift: float | None = None, pixel_scale_arcsec: float = 0.5,
                     reff_arcsec: float | None = None, **_: object):
    """Read a Firefly per-spaxel log10(M*/Msun) map CSV (first line: column indices; empty cell = no data).

    Channel ``log_mstar_pix`` [dex(solMass)] per spaxel; with ``redshift`` (Planck18 angular-diameter
    distance) also ``log_sigma_star`` [dex(solMass/kpc2)] = log M*_pix - log10(spaxel area in kpc2).
    Row 0 of the file is row 0 of the map (the array order Marvin writes, FITS order).
    """
    from core.data.catalog import file_sha256
    from core.data.maps import MapStack

    name = Path(path).name
    try:
        lines = Path(path).read_text().splitlines()
    except UnicodeDecodeError:
        raise GPSError("not a text CSV file", source=name, expected="Firefly map CSV") from None
    lines = [ln for ln in lines if ln.strip()]
    if len(lines) < 2:
        raise GPSError("CSV map has no data rows", source=name, expected="a header line of column indices + rows")
    head = lines[0].split(",")
    skip = 1 if head and head[0].strip() == "" else 0       # an unnamed row-index column (pandas)
    ncol = len(head) - skip
    rows = []
    for k, ln in enumerate(lines[1:], start=2):
        cells = ln.split(",")[skip:]
        if len(cells) != ncol:
            raise GPSError("ragged CSV map: rows have different lengths", source=name, field=f"line {k}",
                           expected=f"{ncol} cells", found=f"{len(cells)} cells")
        try:
            rows.append([float(c) if c.strip() else np.nan for c in cells])
        except ValueError:
            raise GPSError("non-numeric cell in CSV map", source=name, field=f"line {k}",
                           expected="numbers or empty cells") from None
    m = np.asarray(rows, dtype=np.float64)
    mask = ~np.isfinite(m)
    notes = ["Firefly log M* per spaxel; pixel scale %.3g arcsec assumed" % pixel_scale_arcsec]
    planes, chans, units = [np.nan_to_num(m)], ["log_mstar_pix"], ["dex(solMass)"]
    if redshift is not None:
        from astropy.cosmology import Planck18

        kpc_per_arcsec = Planck18.angular_diameter_distance(float(redshift)).to_value("kpc") * np.pi / 180 / 3600
        area = (pixel_scale_arcsec * kpc_per_arcsec) ** 2
        planes.append(np.nan_to_num(m - np.log10(area)))
        chans.append("log_sigma_star")
        units.append("dex(solMass / kpc2)")
        notes.append(f"log_sigma_star from z={redshift} (Planck18): spaxel area {area:.4g} kpc2")
    else:
        notes.append("no redshift given: log_sigma_star not derived (pass redshift=...)")
    if reff_arcsec is None:
        notes.append("R_eff unknown (pass reff_arcsec=...)")
    data = np.where(mask[None], 0.0, np.stack(planes))
    meta = {"file": str(path), "sha256": file_sha256(path), "format": "firefly_csv", "notes": notes}
    stack = MapStack(data=data[None], channels=tuple(chans), units=tuple(units), mask=mask[None], ivar=None,
                     pixel_scale_arcsec=pixel_scale_arcsec, reff_arcsec=reff_arcsec,
                     ids=np.array([Path(name).stem]), meta=meta)
    return stack.validate()


def identify_firefly_csv(path: str, head: bytes) -> bool:
    """A CSV whose first line is exactly the column indices 0, 1, ..., n-1 (n >= 8)."""
    if not path.lower().endswith(".csv"):
        return False
    first = head.split(b"\n", 1)[0].strip().decode("ascii", "replace").split(",")
    if first and first[0] == "":
        first = first[1:]
    return len(first) >= 8 and first == [str(i) for i in range(len(first))]


# ----------------------------------------------------------------------------------------------------
def _dap_channel(c: str, a: dict, bits: int, hdul, notes: list[str]):
    if c == "vel":
        d, iv = a["STELLAR_VEL"].astype(np.float64), a["STELLAR_VEL_IVAR"].astype(np.float64)
        m = (a["STELLAR_VEL_MASK"].astype(np.int64) & bits) != 0
    elif c == "sigma":
        s, iv = a["STELLAR_SIGMA"].astype(np.float64), a["STELLAR_SIGMA_IVAR"].astype(np.float64)
        corr = a["STELLAR_SIGMACORR"].astype(np.float64)
        if corr.ndim == 3:
            hdr = hdul["STELLAR_SIGMACORR"].header
            names = [str(hdr.get(f"C{k + 1}", "")) for k in range(corr.shape[0])]
            k = next((i for i, nm in enumerate(names) if "EMP" in nm.upper()), 0)
            corr = corr[k]
            notes.append(f"STELLAR_SIGMACORR channel {k + 1} ({names[k] or 'unnamed'}) used")
        s2 = s ** 2 - corr ** 2
        neg = ~(s2 > 0)
        d = np.sqrt(np.where(neg, 0.0, s2))
        with np.errstate(divide="ignore", invalid="ignore"):
            iv = np.where(neg, 0.0, iv * (d / np.where(s > 0, s, 1.0)) ** 2)
        m = ((a["STELLAR_SIGMA_MASK"].astype(np.int64) & bits) != 0)
        nneg = int((neg & ~m).sum())
        if nneg:
            notes.append(f"sigma: {nneg} spaxels with STELLAR_SIGMA < STELLAR_SIGMACORR masked")
        m = m | neg
    else:
        d, iv = a["SPX_MFLUX"].astype(np.float64), a["SPX_MFLUX_IVAR"].astype(np.float64)
        m = np.zeros(d.shape, bool)
    m = m | ~np.isfinite(d) | ~np.isfinite(iv) | ~(iv > 0)
    return d, np.where(m, 0.0, iv), m


def map_wcs(primary, wcs_header, shape, default_scale: float):
    """(header without the data-layout cards, pixel scale arcsec, celestial WCS or None, WCS unreadable?) of a map
    whose celestial WCS is in ``wcs_header``; the scale is ``default_scale`` unless the WCS gives one."""
    from astropy.wcs import WCS

    header = primary.copy()
    for k in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "CHECKSUM", "DATASUM"):
        header.remove(k, ignore_missing=True, remove_all=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = WCS(wcs_header, naxis=2)
    except Exception:  # a broken WCS leaves the defaults; the caller notes it
        return header, default_scale, None, True
    if not w.has_celestial:
        return header, default_scale, None, False
    header.update(w.to_header())
    return header, float(np.mean([q.to_value("arcsec") for q in w.proj_plane_pixel_scales()])), w, False


def _dap_geometry(primary, data_hdr, shape, hdul, notes):
    """(header string with the map WCS, pixel scale arcsec, (x, y) centre pixel)."""
    from astropy.io import fits

    header, scale, w, broken = map_wcs(primary, data_hdr, shape, 0.5)
    center = ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
    ra, dec = primary.get("OBJRA"), primary.get("OBJDEC")
    if w is not None and ra is not None and dec is not None:
        try:
            x, y = w.all_world2pix([[float(ra), float(dec)]], 0)[0]
        except Exception:  # no convergence: the image centre stays
            x = y = -1.0
        if 0 <= x < shape[1] and 0 <= y < shape[0]:
            center = (float(x), float(y))
    if broken:
        notes.append("WCS unreadable: pixel scale 0.5 arcsec and image-centre galaxy centre assumed")
    header["NAXIS1"], header["NAXIS2"] = shape[1], shape[0]
    return fits.Header(header).tostring(sep="\n"), scale, center


def _truncated(path: str) -> bool:
    """True if a gzip stream ends early / is corrupt, or a plain FITS file is not a whole number of blocks."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                n = 0
                while chunk := fh.read(1 << 20):
                    n += len(chunk)
            return n % 2880 != 0
        except (OSError, EOFError):
            return True
    return os.path.getsize(path) % 2880 != 0


def _fits_head(path: str, head: bytes) -> bytes:
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(2880 * 8)
        except (OSError, EOFError):
            return b""
    try:
        with open(path, "rb") as fh:
            return fh.read(2880 * 8)
    except OSError:
        return head
