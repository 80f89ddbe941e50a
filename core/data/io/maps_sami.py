"""SAMI Galaxy Survey stellar-kinematics maps (DR2, Scott et al. 2018, MNRAS 481, 2299; DR3 alike): one quantity per
FITS file, several files per galaxy.

What the format is, with where it comes from:

* Files (Data Central, ``ifs/<CATID>/``): ``<CATID>_<C>_stellar-velocity_<binning>_two-moment.fits`` and
  ``<CATID>_<C>_stellar-velocity-dispersion_<binning>_two-moment.fits``; ``<C>`` is the cube (repeat observation)
  letter, A = the first/best cube; ``<binning>`` is ``default`` (unbinned 0.5" spaxels), ``adaptive`` (Voronoi,
  one value repeated over the spaxels of a bin), ``annular`` or ``sectors``; DR3 adds ``four-moment`` fits.
  Source: the DR3 ingestion code of the SAMI team (``reformat_stelkin`` in sami_dr3_ingestion.py, "based on
  sami_dr2_ingestion.py"), file names as used in public SAMI analysis code (e.g. hzovaro/spaxelsleuth).
* HDUs (same source): PRIMARY = the map (velocity or dispersion), then ``VEL_ERR`` (velocity files) or
  ``SIG_ERR`` (dispersion files), ``FLUX``, ``FLUX_ERR`` and the per-spaxel continuum S/N (``SNR`` in that code;
  DR2 files may call it ``SN``, not verified: both are accepted). The primary header carries the pipeline header
  and the extension's ``UNIT``/``DP_NAME``/``DESCRIPT`` cards. Which quantity a file holds is read from its error
  HDU (``VEL_ERR`` -> ``vel``, ``SIG_ERR`` -> ``sigma``), not from its name.
* Values in km/s (as the SAMI docs and papers quote them; a UNIT/BUNIT card is read when present); spaxels without
  a measurement are NaN (as in the cubes, DR3 docs; public analysis code masks the NaN spaxels). The spectra are
  de-redshifted with the galaxy's spectroscopic redshift before the pPXF fit (DR2 docs, "Stellar kinematics data
  products", sec. 2.2), so the velocity is relative to that redshift (not re-centred here; the median is noted).
  The dispersion is taken as instrument-corrected: pPXF fits with templates broadened to the SAMI resolution
  (van de Sande+17a), so there is no SIGMACORR step as in the MaNGA DAP (assumed from the method, not stated in
  the file).
* Grid: 50 x 50 spaxels of 0.5 arcsec (DR2 "Core data products"); the cube (hence map) WCS is centred on the
  galaxy (CRPIX 25.5, CRVAL = object coordinates; DR3 ingestion ``fix_crpix``/``fix_wcs_all``).
* Quality cuts recommended by the survey (van de Sande et al. 2017a; DR2/DR3 docs; Croom et al. 2021): S/N > 3,
  VEL_ERR < 30 km/s; for the dispersion also SIG_ERR < 0.1 sigma + 25 km/s and sigma > 35 km/s. Applied by
  default (``quality_cuts=False`` keeps every finite spaxel); combining a velocity and a dispersion file masks the
  union, so the velocity-error cut reaches the dispersion too, as in the SAMI recipe.

Assumed where the docs are silent (not verified on a real file): the CATID is taken from a primary-header keyword
``CATID``, ``CATAID``, ``NAME`` or ``OBJECT`` holding digits, else from the file name (``<CATID>_...``); the unit
from ``BUNIT``/``UNIT`` (of the primary, else the error HDU), km/s when absent (noted); the WCS from the primary
header (0.5" and the image centre when it has none, noted). R_e and the redshift are not in these files (they are
in the SAMI input catalogues, e.g. ``r_e`` of InputCatGAMADR2, or the MGE catalogue): pass ``reff_arcsec``;
without it R_e is NaN with a note and regridding onto a model's grid asks for it.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from core.errors import GPSError

__all__ = ["SAMI_PIXEL_SCALE", "QUALITY_CUTS", "read_sami_kinematics", "identify_sami_kinematics",
           "sami_file_name"]

SAMI_PIXEL_SCALE = 0.5          # arcsec per spaxel (DR2 core data products)
#: SAMI-recommended cuts (van de Sande+17a): S/N > 3, VEL_ERR < 30 km/s; SIG_ERR < 0.1 sigma + 25 km/s, sigma > 35
QUALITY_CUTS = {"snr_min": 3.0, "vel_err_max": 30.0, "sig_err_frac": 0.1, "sig_err_add": 25.0, "sig_min": 35.0}
#: error HDU -> channel it says the primary map is; the other SAMI stellar products are recognised and refused
_ERR_HDU = {"VEL_ERR": "vel", "SIG_ERR": "sigma"}
_OTHER_ERR = {"H3_ERR": "h3", "H4_ERR": "h4"}
_SNR_HDUS = ("SNR", "SN")
_PRODUCT = {"vel": "stellar-velocity", "sigma": "stellar-velocity-dispersion"}
_NAME_RE = re.compile(r"^(?P<catid>\d+)_(?P<cube>[A-Z])_(?P<product>stellar-[a-z0-9-]+?)_(?P<binning>[a-z-]+)_"
                      r"(?P<moments>[a-z]+)-moment\.fits(?:\.gz)?$")
_CATID_KEYS = ("CATID", "CATAID", "NAME", "OBJECT")
_MAX_IDENTIFY_BYTES = 64 << 20  # a SAMI map file is ~100 KB; never decompress a big foreign file to identify it


def sami_file_name(catid: str, channel: str, cube: str = "A", binning: str = "default",
                   moments: str = "two") -> str:
    """The Data Central name of a SAMI stellar-kinematics file, e.g. ``9011900001_A_stellar-velocity_default_two-moment
    .fits`` (used to name the file a lone velocity or dispersion file lacks)."""
    return f"{catid}_{cube}_{_PRODUCT[channel]}_{binning}_{moments}-moment.fits"


def read_sami_kinematics(path: str | os.PathLike, reff_arcsec: float | None = None, quality_cuts: bool = True,
                         **_: object):
    """Read one SAMI stellar velocity or dispersion FITS file into a one-object, one-channel MapStack.

    Channel ``vel`` or ``sigma`` [km/s] (from the error HDU present); ivar = 1 / error^2; masked: NaN values or
    errors, errors <= 0 and (``quality_cuts``, default) the SAMI-recommended cuts (:data:`QUALITY_CUTS`). The id is
    the CATID, so a velocity and a dispersion file of one galaxy combine by CATID
    (:func:`core.data.io.map_sets.read_map_files`); ``meta["merge_key"]`` (CATID, cube letter, binning, moments)
    must agree between the files combined, and ``meta["companions"]`` names the file giving the other channel.
    ``reff_arcsec``: the galaxy's R_e (not in the file). See the module docstring for the format and its sources.
    """
    from astropy.io import fits

    from core.data.catalog import file_sha256
    from core.data.io.maps_manga import _truncated, open_fits
    from core.data.maps import MapStack

    name = Path(path).name
    hdul, present = open_fits(path, name, "a SAMI stellar-kinematics FITS file")
    with hdul:
        err_hdus = [h for h in _ERR_HDU if h in present]
        other = [h for h in _OTHER_ERR if h in present]
        if not err_hdus and other:
            raise GPSError(f"a SAMI {_OTHER_ERR[other[0]]} map: not an input of the models", source=name,
                           field=other[0], expected="a stellar velocity (VEL_ERR) or dispersion (SIG_ERR) file",
                           found="HDUs " + ", ".join(present))
        if len(err_hdus) != 1:
            if not err_hdus and _truncated(str(path)):
                raise GPSError("FITS file is truncated or corrupt", source=name, field="VEL_ERR / SIG_ERR",
                               expected="complete FITS blocks / gzip stream", found="HDUs " + ", ".join(present))
            raise GPSError("not one SAMI stellar-kinematics quantity: the error HDU says which map the file holds",
                           source=name, field="VEL_ERR / SIG_ERR",
                           expected="exactly one of VEL_ERR (velocity file) or SIG_ERR (dispersion file)",
                           found="HDUs " + ", ".join(present))
        err_name = err_hdus[0]
        chan = _ERR_HDU[err_name]
        try:
            value = _image(hdul[0].data, name, "PRIMARY")
            err = _image(hdul[err_name].data, name, err_name)
            snr_name = next((h for h in _SNR_HDUS if h in present), None)
            snr = _image(hdul[snr_name].data, name, snr_name) if snr_name else None
        except (OSError, EOFError, ValueError, TypeError) as exc:
            raise GPSError("cannot read the FITS data (corrupt or truncated file?)", source=name,
                           found=f"{type(exc).__name__}: {exc}") from None
        if value.ndim != 2:
            raise GPSError("SAMI map is not 2-D", source=name, field="PRIMARY", expected="(NY, NX), e.g. (50, 50)",
                           found=str(value.shape))
        for hname, arr in ((err_name, err), (snr_name, snr)):
            if arr is not None and arr.shape != value.shape:
                raise GPSError("map shapes do not match", source=name, field=hname,
                               expected=f"{value.shape} (as PRIMARY)", found=str(arr.shape))
        primary = hdul[0].header
        err_hdr = hdul[err_name].header
        notes: list[str] = []
        scale = _to_kms(primary, err_hdr, name, notes)
        header, pix, center = _geometry(primary, value.shape, notes)
    value, err = value * scale, np.abs(err * scale)
    bad = ~np.isfinite(value) | ~np.isfinite(err) | ~(err > 0)
    mask = bad.copy()
    if quality_cuts:
        mask |= _quality_mask(chan, value, err, snr, bad, notes)
    else:
        notes.append("SAMI quality cuts not applied (quality_cuts=False): every finite spaxel kept")
    catid, parts = _catid(primary, name, notes)
    ok = ~mask
    if chan == "vel" and ok.any():
        notes.append(f"vel: relative to the SAMI spectroscopic redshift (not re-centred); median "
                     f"{float(np.median(value[ok])):.1f} km/s over the unmasked spaxels")
    if chan == "sigma":
        notes.append("sigma: pPXF with templates at the SAMI resolution, i.e. instrument-corrected")
    if parts.get("binning", "default") != "default":
        notes.append(f"{parts['binning']}-binned map: spaxels of one bin share a value (neighbours correlated)")
    reff = np.nan if reff_arcsec is None else float(reff_arcsec)
    if reff_arcsec is None:
        notes.append("R_eff unknown: SAMI kinematics files carry none (pass reff_arcsec, e.g. r_e of the SAMI input "
                     "catalogue)")
    else:
        notes.append(f"R_e {reff:g} arcsec given (SAMI kinematics files carry none)")
    other_chan = "sigma" if chan == "vel" else "vel"
    key = {"survey": "SAMI", "catid": catid, "cube": parts.get("cube", ""), "binning": parts.get("binning", ""),
           "moments": parts.get("moments", "")}
    companion = sami_file_name(catid, other_chan, parts.get("cube") or "A", parts.get("binning") or "default",
                               parts.get("moments") or "two")
    meta = {"file": str(path), "sha256": file_sha256(path), "format": "sami_kinematics", "catid": catid,
            "quantity": chan, "quality_cuts": bool(quality_cuts), "merge_key": key,
            "companions": {other_chan: companion}, "notes": notes}
    data = np.where(mask, 0.0, value)[None, None].astype(np.float32)
    ivar = np.where(mask, 0.0, 1.0 / np.where(mask, 1.0, err) ** 2)[None, None].astype(np.float32)
    stack = MapStack(data=data, channels=(chan,), units=("km / s",), mask=mask[None], ivar=ivar,
                     pixel_scale_arcsec=pix, reff_arcsec=reff, center_xy=np.array([center]), headers=[header],
                     ids=np.array([catid]), meta=meta)
    return stack.validate()


def group_key(path: str) -> str | None:
    """The key shared by the files of one SAMI galaxy observation (CATID, cube, binning, moments) from a Data
    Central file name, or None for a file not named that way: batch runs put such files in one part."""
    m = _NAME_RE.match(Path(str(path)).name)
    if m is None:
        return None
    d = m.groupdict()
    return f"sami:{int(d['catid'])}_{d['cube']}_{d['binning']}_{d['moments']}"


def identify_sami_kinematics(path: str, head: bytes) -> bool:
    """A FITS file with a 2-D primary image and a SAMI stellar velocity or dispersion error HDU (VEL_ERR or SIG_ERR)
    among its first HDUs: by content, whatever the file is called. (The h3/h4 files of four-moment fits are not
    claimed, so a folder of SAMI products skips them; read with ``format="sami_kinematics"`` they are refused.)"""
    from core.data.io.maps_manga import _fits_head

    text = _fits_head(path, head)
    if not text.startswith(b"SIMPLE") or b"MANGA_DAPPIXMASK" in text:
        return False
    m = re.search(rb"NAXIS   =\s+(\d+)", text[:2880 * 4])
    if m is None or int(m.group(1)) != 2:
        return False
    if os.path.getsize(path) > _MAX_IDENTIFY_BYTES:
        return False
    from astropy.io import fits

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
                names = []
                for k, h in enumerate(hdul):
                    if k > 8:
                        break
                    names.append(h.name)
    except Exception:  # an identifier never raises
        return False
    return any(n in _ERR_HDU for n in names)


# ----------------------------------------------------------------------------------------------------
def _image(data, name: str, hdu: str) -> np.ndarray:
    if data is None:
        raise GPSError("HDU has no data", source=name, field=hdu, expected="a 2-D image", found="empty HDU")
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise GPSError("HDU is not a numeric image", source=name, field=hdu, expected="a 2-D image",
                       found=f"dtype {arr.dtype}")
    return arr.astype(np.float64)


def _to_kms(primary, err_hdr, name: str, notes: list[str]) -> float:
    """Factor from the file's unit (BUNIT/UNIT of the primary, else of the error HDU) to km/s."""
    import astropy.units as u

    raw = next((str(h[k]).strip() for h in (primary, err_hdr) for k in ("BUNIT", "UNIT")
                if str(h.get(k, "") or "").strip()), "")
    if not raw:
        notes.append("no BUNIT/UNIT keyword: km/s assumed (the SAMI unit)")
        return 1.0
    text = raw.replace("km s-1", "km/s").replace("km.s-1", "km/s").replace("km s^-1", "km/s")
    factor = None
    for cand in (text, text.lower()):
        try:
            factor = float((1.0 * u.Unit(cand, parse_strict="raise")).to_value(u.km / u.s))
            break
        except Exception:  # noqa: BLE001 - any parse or conversion failure: try the next spelling, then refuse
            continue
    if factor is None:
        raise GPSError("unit of a SAMI kinematics map is not a velocity", source=name, field="PRIMARY BUNIT/UNIT",
                       expected="km/s (or another velocity unit)", found=repr(raw))
    if factor != 1.0:
        notes.append(f"converted {raw} -> km/s (x {factor:g})")
    return factor


def _quality_mask(chan, value, err, snr, bad, notes) -> np.ndarray:
    q = QUALITY_CUTS
    with np.errstate(invalid="ignore"):
        if chan == "vel":
            cut = ~(err < q["vel_err_max"])
            what = f"VEL_ERR < {q['vel_err_max']:g} km/s"
        else:
            cut = ~(err < q["sig_err_frac"] * value + q["sig_err_add"]) | ~(value > q["sig_min"])
            what = f"SIG_ERR < {q['sig_err_frac']:g} sigma + {q['sig_err_add']:g} km/s, sigma > {q['sig_min']:g} km/s"
        if snr is not None:
            cut |= ~(snr > q["snr_min"])
            what += f", S/N > {q['snr_min']:g}"
        else:
            notes.append("no SNR/SN HDU: the S/N > 3 cut not applied")
    n = int((cut & ~bad).sum())
    notes.append(f"SAMI quality cuts ({what}; van de Sande+17a): {n} of {int((~bad).sum())} measured spaxels masked")
    return cut


def _catid(primary, name: str, notes: list[str]) -> tuple[str, dict]:
    m = _NAME_RE.match(name)
    parts = m.groupdict() if m else {}
    from_header = None
    for k in _CATID_KEYS:
        v = str(primary.get(k, "") or "").strip()
        if v.isdigit():
            from_header = str(int(v))
            break
    from_name = parts.get("catid")
    if from_name is not None:
        from_name = str(int(from_name))
    if from_header and from_name and from_header != from_name:
        notes.append(f"CATID {from_header} from the header, not {from_name} from the file name")
    catid = from_header or from_name
    if catid is None:
        catid = name.split("_")[0].split(".")[0]
        notes.append(f"no CATID in the header or the file name: id {catid!r} from the file name")
    return catid, parts


def _geometry(primary, shape, notes) -> tuple[str, float, tuple[float, float]]:
    """(header string with the map WCS, pixel scale arcsec, (x, y) centre pixel = the WCS reference pixel)."""
    from astropy.io import fits

    from core.data.io.maps_manga import map_wcs

    header, scale, w, broken = map_wcs(primary, primary, shape, SAMI_PIXEL_SCALE)
    center = ((shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0)
    if w is not None:
        x, y = (float(c) - 1.0 for c in w.wcs.crpix)
        if 0 <= x <= shape[1] - 1 and 0 <= y <= shape[0] - 1:
            center = (x, y)
        else:
            notes.append("WCS reference pixel outside the map: the image centre is taken as the galaxy centre")
    elif broken:
        notes.append(f"WCS unreadable: {SAMI_PIXEL_SCALE} arcsec spaxels and the image centre assumed")
    else:
        notes.append(f"no celestial WCS: {SAMI_PIXEL_SCALE} arcsec spaxels and the image centre assumed")
    if not 0.05 < scale < 5.0:
        notes.append(f"WCS pixel scale {scale:.4g} arcsec is not SAMI's: {SAMI_PIXEL_SCALE} arcsec used")
        scale = SAMI_PIXEL_SCALE
    header["NAXIS1"], header["NAXIS2"] = shape[1], shape[0]
    return fits.Header(header).tostring(sep="\n"), scale, center
