"""Regridding of IFU maps onto the model grid (square, +-fov/2 R_eff around the centre); used by MapStack.regrid."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from core.errors import GPSError

if TYPE_CHECKING:  # pragma: no cover
    from core.data.maps import MapStack

__all__ = ["regrid_stack", "resampling_matrix"]


def regrid_stack(stack: "MapStack", size: int, fov_reff: float, *, reff_arcsec=None,
                 oversample: int | None = None) -> "MapStack":
    """See :meth:`core.data.maps.MapStack.regrid`. Output pixel scale = fov_reff * R_eff / size [arcsec]."""
    src = stack.source
    if size < 2 or not np.isfinite(fov_reff) or fov_reff <= 0:
        raise GPSError("invalid regrid request", source=src, field="regrid",
                       expected="size >= 2 and fov_reff > 0", found=f"size={size}, fov_reff={fov_reff}")
    n, c, h, w = stack.data.shape
    reff = stack.reff_arcsec if reff_arcsec is None else np.broadcast_to(
        np.asarray(reff_arcsec, dtype=np.float64), (n,))
    data = np.zeros((n, c, size, size), np.float32)
    ivar = None if stack.ivar is None else np.zeros((n, c, size, size), np.float32)
    mask = np.ones((n, size, size), bool)
    tmaps = {k: np.zeros((n, size, size), np.float32) for k, v in stack.targets.items() if v.ndim == 3}
    scales = np.zeros(n)
    headers = list(stack.headers)
    for i in range(n):
        r = float(reff[i])
        if not np.isfinite(r) or r <= 0:
            raise GPSError("effective radius unknown: cannot place the model grid (field of view is in R_eff)",
                           source=src, field=f"reff_arcsec (object {stack.ids[i]})",
                           expected="R_eff > 0 arcsec (pass reff_arcsec=...)", found=str(r))
        p = float(stack.pixel_scale_arcsec[i])
        s = fov_reff * r / size / p                         # input pixels per output pixel
        k = oversample or max(1, min(8, math.ceil(s)))
        cx, cy = stack.center_xy[i]
        A, outside = resampling_matrix((h, w), size, s, (cx, cy), k)
        m_in = stack.mask[i].reshape(-1).astype(np.float64)
        touched = (A @ m_in) > 0
        mask[i] = (touched | outside).reshape(size, size)
        A2 = A.multiply(A).tocsr() if ivar is not None else None
        for j in range(c):
            x = np.where(stack.mask[i], 0.0, np.nan_to_num(stack.data[i, j].astype(np.float64))).reshape(-1)
            data[i, j] = (A @ x).reshape(size, size)
            if ivar is not None:
                iv = stack.ivar[i, j].astype(np.float64).reshape(-1)
                var = np.where(iv > 0, 1.0 / np.where(iv > 0, iv, 1.0), np.inf)
                var[stack.mask[i].reshape(-1)] = 0.0
                with np.errstate(divide="ignore", invalid="ignore"):
                    vo = A2 @ var
                    ivo = np.where((vo > 0) & np.isfinite(vo), 1.0 / vo, 0.0)
                ivar[i, j] = ivo.reshape(size, size)
        for name in tmaps:
            t = np.nan_to_num(stack.targets[name][i].astype(np.float64)).reshape(-1)
            tmaps[name][i] = (A @ t).reshape(size, size)
        data[i][:, mask[i]] = 0.0
        if ivar is not None:
            ivar[i][:, mask[i]] = 0.0
        scales[i] = s * p
        headers[i] = _regrid_header(headers[i], s, (cx, cy), size)
    targets = dict(stack.targets)
    targets.update(tmaps)
    notes = list(stack.meta.get("notes", []))
    notes.append(f"regridded to {size}x{size} over +-{fov_reff / 2:g} R_eff (area-weighted bilinear; "
                 "mask = any masked contribution or outside the footprint; ivar for independent noise)")
    meta = dict(stack.meta, notes=notes, grid={"size": size, "fov_reff": fov_reff})
    ctr = np.full((n, 2), (size - 1) / 2.0)
    return replace(stack, data=data, ivar=ivar, mask=mask, pixel_scale_arcsec=scales,
                   reff_arcsec=np.asarray(reff, dtype=np.float64).copy(), center_xy=ctr, headers=headers,
                   meta=meta, targets=targets)


def resampling_matrix(shape_in: tuple[int, int], size: int, step: float, center_xy: tuple[float, float],
                      oversample: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse (size*size, H*W) matrix A with out = A @ in.ravel(), and a bool (size*size,) 'outside footprint'.

    Output pixel (i, j) is centred at input pixel coordinates (cx + (j - c) * step, cy + (i - c) * step),
    c = (size - 1) / 2; it averages ``oversample``^2 bilinear samples spread over its area.
    """
    h, w = shape_in
    k = int(oversample)
    c = (size - 1) / 2.0
    sub = ((np.arange(k) + 0.5) / k - 0.5) * step                      # (k,)
    base = (np.arange(size) - c) * step
    xs = (center_xy[0] + base[None, :, None, None] + sub[None, None, None, :])    # (1, size, 1, k)
    ys = (center_xy[1] + base[:, None, None, None] + sub[None, None, :, None])    # (size, 1, k, 1)
    xs, ys = np.broadcast_arrays(xs, ys)                                # (size, size, k, k)
    xs = xs.reshape(size * size, k * k)
    ys = ys.reshape(size * size, k * k)
    outside = ((xs < -0.5) | (xs > w - 0.5) | (ys < -0.5) | (ys > h - 0.5)).any(axis=1)
    xc = np.clip(xs, 0.0, w - 1.0)
    yc = np.clip(ys, 0.0, h - 1.0)
    x0 = np.clip(np.floor(xc).astype(np.int64), 0, max(w - 2, 0))
    y0 = np.clip(np.floor(yc).astype(np.int64), 0, max(h - 2, 0))
    fx = xc - x0
    fy = yc - y0
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    rows = np.repeat(np.arange(size * size), k * k).reshape(size * size, k * k)
    cols, vals = [], []
    for yy, xx, ww in ((y0, x0, (1 - fx) * (1 - fy)), (y0, x1, fx * (1 - fy)),
                       (y1, x0, (1 - fx) * fy), (y1, x1, fx * fy)):
        cols.append(yy * w + xx)
        vals.append(ww / (k * k))
    r = np.concatenate([rows.ravel()] * 4)
    col = np.concatenate([a.ravel() for a in cols])
    val = np.concatenate([a.ravel() for a in vals])
    keep = val > 1e-9
    A = sp.csr_matrix((val[keep], (r[keep], col[keep])), shape=(size * size, h * w))
    A.sum_duplicates()
    return A, outside


def _regrid_header(text: str, step: float, center_xy: tuple[float, float], size: int) -> str:
    """Move the WCS of a FITS header string to the new grid (CRPIX shifted, CDELT/CD scaled by ``step``)."""
    if not text:
        return text
    from astropy.io import fits

    try:
        hdr = fits.Header.fromstring(text, sep="\n")
    except Exception:
        return text
    c = (size - 1) / 2.0
    origin = (center_xy[0] - c * step, center_xy[1] - c * step)     # input coords of output pixel (0, 0)
    for ax in (1, 2):
        key = f"CRPIX{ax}"
        if key in hdr:
            hdr[key] = (float(hdr[key]) - 1.0 - origin[ax - 1]) / step + 1.0
        if f"NAXIS{ax}" in hdr:
            hdr[f"NAXIS{ax}"] = size
    if "CD1_1" in hdr:
        for a in (1, 2):
            for b in (1, 2):
                if f"CD{a}_{b}" in hdr:
                    hdr[f"CD{a}_{b}"] = float(hdr[f"CD{a}_{b}"]) * step
    elif "CRPIX1" in hdr:
        for ax in (1, 2):
            hdr[f"CDELT{ax}"] = float(hdr.get(f"CDELT{ax}", 1.0)) * step
    hdr["HISTORY"] = f"GPS: regridded to {size}x{size}, {step:.6g} input pixels per output pixel"
    return hdr.tostring(sep="\n")
