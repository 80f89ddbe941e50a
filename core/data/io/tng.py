"""IllustrisTNG Subfind group-catalogue chunks (``fof_subhalo_tab_SSS.N.hdf5``) -> a table of central galaxies.

A chunk holds ``Header`` (attributes: HubbleParam, Redshift, BoxSize, NumFiles, ...), ``Group/*`` (FoF groups)
and ``Subhalo/*`` (Subfind subhaloes) in code units: masses in 1e10 Msun/h, lengths in ckpc/h, SFR in Msun/yr,
magnitudes absolute. A *central* is the subhalo named by its group's ``GroupFirstSub`` (>= 0). ``GroupFirstSub``
and ``SubhaloGrNr`` are *global* indices; the chunk's own offsets are found by matching them (or given).
Cite Nelson et al. (2019, Comp. Astrophys. Cosmol. 6, 2) when using TNG data.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import numpy as np

from core.data.catalog import file_sha256
from core.errors import GPSError

__all__ = ["read_tng_groupcat", "is_tng_groupcat", "REQUIRED_FIELDS", "COLOUR_MODES"]

#: ``colours=`` choices: "none" leaves the task's g_r/r_i/i_z out (rest-frame, dust-free colours kept under names that
#: are never auto-mapped), "observed_z0.05" K-corrects them to the observed frame at z = 0.05 (Chilingarian+10/12)
COLOUR_MODES = ("none", "observed_z0.05")
_COLOUR_Z = 0.05                                    # redshift at which the halo_mass colours are defined

REQUIRED_FIELDS = {
    "Group": ("Group_M_Crit200", "GroupFirstSub"),
    "Subhalo": ("SubhaloMassType", "SubhaloMassInRadType", "SubhaloSFR", "SubhaloSFRinRad",
                "SubhaloStellarPhotometrics", "SubhaloGrNr"),
}
_BANDS = ("U", "B", "V", "K", "g", "r", "i", "z")      # SubhaloStellarPhotometrics columns
#: columns of the 2-D fields (all others are 1-D, one value per group / subhalo)
_WIDTH = {"SubhaloMassType": 6, "SubhaloMassInRadType": 6, "SubhaloStellarPhotometrics": len(_BANDS)}
_NAME_RE = re.compile(r"fof_subhalo_tab_(\d+)(?:\.(\d+))?[^/]*\.hdf5$")


def read_tng_groupcat(path: str | os.PathLike, aperture: Literal["2rhalf", "total"] = "2rhalf",
                      sfr_floor: float | None = None, subhalo_offset: int | None = None,
                      group_offset: int | None = None, colours: Literal["none", "observed_z0.05"] = "none"):
    """Central galaxies of a TNG Subfind chunk as an astropy ``QTable`` in the ``halo_mass`` task's units.

    Columns (one row per central found in this chunk):

    * ``log_mh`` [dex(Msun)]: log10(Group_M_Crit200 * 1e10 / h) (M200c, physical Msun; 0 -> NaN).
    * ``log_mstar`` [dex(Msun)]: stellar mass. ``aperture="2rhalf"`` (default) uses
      ``SubhaloMassInRadType[:, 4]`` (within twice the stellar half-mass radius), which is closer to what
      survey photometry measures than ``SubhaloMassType[:, 4]`` (all bound stars, which for group/cluster
      centrals includes the intra-cluster light); ``aperture="total"`` uses the latter.
    * ``log_sfr`` [dex(Msun/yr)]: ``SubhaloSFRinRad`` ("2rhalf") or ``SubhaloSFR`` ("total"). SFR = 0 (below
      the resolution limit; common for quenched centrals) becomes NaN, i.e. *missing*, never a fake value,
      unless ``sfr_floor`` (in dex) is given, which is then used and recorded in ``meta``.
    * Colours. TNG's ``SubhaloStellarPhotometrics`` are *rest-frame*, *dust-free* absolute magnitudes of *all
      bound stars* (bands U, B, V, K Buser/Johnson, g, r, i, z SDSS). The ``halo_mass`` colours are SDSS, observed
      frame z = 0.05, dust included (core.tasks.halo_mass), so by default (``colours="none"``) ``g_r``, ``r_i``,
      ``i_z`` are left out (a note says so) and the TNG colours are kept as ``g_r_rest_nodust``, ``r_i_rest_nodust``,
      ``i_z_rest_nodust`` (names the automatic mapping never takes). ``colours="observed_z0.05"`` also writes
      ``g_r``, ``r_i``, ``i_z`` K-corrected to the observed frame at z = 0.05 with the Chilingarian+2010/2012
      polynomials (:mod:`core.data.io.kcorrect`; +0.06 mag in g - r for red centrals); dust is still *not*
      added (TNG has none; star-forming centrals stay bluer than dusty observed ones), recorded in ``meta``.
      ``u_g`` is never written: TNG has Buser U, not SDSS u (``U_g`` would be a different colour).
    * Gas: the task's ``log_fgas`` is the HI fraction (xGASS); TNG's subhalo gas mass is all phases (hot halo,
      ionised, H2 and HI), 1.3-2.1 dex above HI for massive centrals, so ``log_fgas`` is left out (a note says
      so) and ``log_mgas_total_over_mstar`` [dex] = log10(M_gas / M*) is kept (M_gas = ``SubhaloMassInRadType[:,
      0]`` for "2rhalf", ``SubhaloMassType[:, 0]`` for "total"), a name the automatic mapping never takes.
    * ``subhalo_id``, ``group_id`` (global indices), ``subhalo_flag`` (False = non-cosmological origin),
      ``log_mstar_total``.

    ``meta``: source_file, sha256, snapshot, chunk, redshift, h, box_size (ckpc/h), aperture, subhalo_offset,
    group_offset, colours, colour_conversion (when converted), notes. Raises :class:`GPSError` naming the missing group/field when the file is not a chunk.
    """
    import h5py
    from astropy import units as u
    from astropy.table import QTable

    path = str(path)
    name = Path(path).name
    if aperture not in ("2rhalf", "total"):
        raise GPSError("unknown aperture", source=name, field="aperture", expected="'2rhalf' or 'total'",
                       found=repr(aperture))
    if colours not in COLOUR_MODES:
        raise GPSError("unknown colour conversion", source=name, field="colours",
                       expected=" or ".join(repr(c) for c in COLOUR_MODES), found=repr(colours))
    from core.data.io.hdf5_tables import open_h5

    with open_h5(path) as f:
        _check_structure(f, name)
        hdr = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
               for k, v in f["Header"].attrs.items()}
        h = _hubble(hdr, name)
        G, S = f["Group"], f["Subhalo"]
        _check_fields(G, S, name)
        first = G["GroupFirstSub"][()].astype(np.int64)
        m200 = G["Group_M_Crit200"][()].astype(np.float64)
        grnr = S["SubhaloGrNr"][()].astype(np.int64)
        soff, goff = _offsets(first, grnr, hdr, subhalo_offset, group_offset, name)
        if int(hdr.get("NumFiles", 1)) == 1 and len(first) and ((first < -1) | (first >= len(grnr))).any():
            bad = int(np.flatnonzero((first < -1) | (first >= len(grnr)))[0])
            raise GPSError("GroupFirstSub points outside the subhaloes of this single-file catalogue",
                           source=name, field="Group/GroupFirstSub", expected=f"-1 or 0..{len(grnr) - 1}",
                           found=f"{first[bad]} for group {bad}")
        k = first - soff
        j = np.arange(len(first))
        ok = (first >= 0) & (k >= 0) & (k < len(grnr))
        ok[ok] &= (grnr[k[ok]] == goff + j[ok]) & _run_start(grnr, k[ok])
        j, k = j[ok], k[ok]
        rad = "SubhaloMassInRadType" if aperture == "2rhalf" else "SubhaloMassType"
        mtype = S[rad][()][k].astype(np.float64)
        mtot = S["SubhaloMassType"][()][k, 4].astype(np.float64)
        sfr = S["SubhaloSFRinRad" if aperture == "2rhalf" else "SubhaloSFR"][()][k].astype(np.float64)
        phot = S["SubhaloStellarPhotometrics"][()][k].astype(np.float64)
        flag = S["SubhaloFlag"][()][k].astype(bool) if "SubhaloFlag" in S else np.ones(len(k), bool)
        for fld, vals in (("Group/Group_M_Crit200", m200), (f"Subhalo/{rad}", mtype), ("Subhalo/SubhaloMassType", mtot),
                          ("Subhalo/SubhaloSFR" + ("inRad" if aperture == "2rhalf" else ""), sfr)):
            if (vals < 0).any():
                raise GPSError("negative masses / SFRs", source=name, field=fld, expected="values >= 0",
                               found=f"{int((vals < 0).sum())} negative, min {float(vals.min()):.3g}")
    notes = []
    mass_unit = 1e10 / h                                          # code mass unit in Msun
    with np.errstate(divide="ignore", invalid="ignore"):
        log_mh = np.where(m200[j] > 0, np.log10(m200[j] * mass_unit), np.nan)
        mstar = mtype[:, 4]
        log_mstar = np.where(mstar > 0, np.log10(mstar * mass_unit), np.nan)
        log_mstar_total = np.where(mtot > 0, np.log10(mtot * mass_unit), np.nan)
        log_sfr = np.where(sfr > 0, np.log10(sfr), np.nan)
        log_mgas_total = np.where((mtype[:, 0] > 0) & (mstar > 0), np.log10(mtype[:, 0] / mstar), np.nan)
    n_zero = int((sfr <= 0).sum())
    if n_zero:
        if sfr_floor is None:
            notes.append(f"{n_zero} central(s) with SFR = 0 (below resolution): log_sfr = NaN (missing)")
        else:
            log_sfr[sfr <= 0] = float(sfr_floor)
            notes.append(f"{n_zero} central(s) with SFR = 0 set to the floor log_sfr = {sfr_floor}")
    phot[np.abs(phot) >= 1e30] = np.nan                           # no stars: TNG writes 1e37
    band = {b: phot[:, i] for i, b in enumerate(_BANDS)}
    notes.append("u_g not provided: TNG photometry has Buser U, not SDSS u")
    notes.append("log_fgas (HI fraction) not provided: TNG gives total gas (all phases), kept as "
                 "log_mgas_total_over_mstar")
    rest = {"g_r": band["g"] - band["r"], "r_i": band["r"] - band["i"], "i_z": band["i"] - band["z"]}
    conversion = None
    if colours == "none":
        notes.append("g_r, r_i, i_z not provided: TNG colours are rest-frame and dust-free (the task's are observed "
                     "at z=0.05 with dust), kept as *_rest_nodust; read with colours='observed_z0.05' to K-correct")
    else:
        from core.data.io.kcorrect import REFERENCE, rest_to_observed_sdss

        obs = dict(zip(rest, rest_to_observed_sdss(rest["g_r"], rest["r_i"], rest["i_z"], z=_COLOUR_Z)))
        conversion = (f"g_r, r_i, i_z: TNG rest-frame dust-free colours K-corrected to the observed frame at "
                      f"z={_COLOUR_Z} ({REFERENCE}); dust NOT added (TNG has none), all bound stars")
        notes.append("g_r, r_i, i_z K-corrected to observed z=0.05 (Chilingarian+2010/2012); no dust added")
    t = QTable()
    t["subhalo_id"] = (k + soff).astype(np.int64)
    t["group_id"] = (j + goff).astype(np.int64)
    t["log_mh"] = log_mh * u.dex(u.Msun)
    t["log_mstar"] = log_mstar * u.dex(u.Msun)
    t["log_sfr"] = log_sfr * u.dex(u.Msun / u.yr)
    if conversion is not None:
        for c in ("g_r", "r_i", "i_z"):
            t[c] = obs[c] * u.mag
    for c in ("g_r", "r_i", "i_z"):
        t[f"{c}_rest_nodust"] = rest[c] * u.mag
    t["log_mgas_total_over_mstar"] = log_mgas_total * u.dex
    t["log_mstar_total"] = log_mstar_total * u.dex(u.Msun)
    t["subhalo_flag"] = flag
    m = _NAME_RE.search(name)
    t.meta.update({
        "source_file": name, "source_path": os.path.abspath(path), "sha256": file_sha256(path),
        "format": "tng_subfind", "simulation": "IllustrisTNG", "snapshot": int(m.group(1)) if m else None,
        "chunk": int(m.group(2)) if m and m.group(2) else None, "redshift": float(hdr.get("Redshift", np.nan)),
        "h": h, "box_size": float(hdr.get("BoxSize", np.nan)), "box_size_unit": "ckpc/h",
        "aperture": aperture, "sfr_floor": sfr_floor, "colours": colours, "subhalo_offset": int(soff), "group_offset": int(goff),
        "n_groups_in_chunk": int(len(first)), "n_centrals": int(len(k)),
        "mass_conversion": f"1e10 Msun/h -> Msun with h={h}", "notes": "; ".join(notes),
        "citation": "Nelson et al. 2019, Comp. Astrophys. Cosmol. 6, 2",
    })
    if conversion is not None:
        t.meta["colour_conversion"] = conversion
    return t


def is_tng_groupcat(path: str, head: bytes) -> bool:
    """True for an HDF5 file named ``fof_subhalo_tab_*.hdf5`` or holding Header + Group + Subhalo groups."""
    if _NAME_RE.search(Path(path).name):
        return True
    if not head.startswith(b"\x89HDF\r\n\x1a\n"):
        return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return all(g in f for g in ("Header", "Group", "Subhalo")) and "HubbleParam" in f["Header"].attrs
    except OSError:
        return False


# -------------------------------------------------------------------------------------------------
def _check_structure(f, name: str) -> None:
    missing = [g for g in ("Header", "Group", "Subhalo") if g not in f]
    if missing:
        raise GPSError("not a TNG Subfind group catalogue: missing HDF5 group(s) " + ", ".join(missing),
                       source=name, field="/", expected="groups Header, Group, Subhalo (fof_subhalo_tab_*.hdf5)",
                       found="top-level keys: " + (", ".join(f.keys()) or "(none)"))
    if "HubbleParam" not in f["Header"].attrs:
        raise GPSError("Header has no HubbleParam attribute", source=name, field="Header",
                       expected="attribute HubbleParam (h)", found=", ".join(f["Header"].attrs.keys()) or "none")
    for grp, fields in REQUIRED_FIELDS.items():
        absent = [x for x in fields if x not in f[grp]]
        if absent:
            have = ", ".join(list(f[grp].keys())[:12])
            raise GPSError("TNG chunk lacks field(s) " + ", ".join(absent), source=name, field=grp,
                           expected=", ".join(fields), found=have or "(empty group)")


def _hubble(hdr: dict, name: str) -> float:
    try:
        h = float(hdr["HubbleParam"])
    except (TypeError, ValueError):
        h = float("nan")
    if not (0.2 < h < 2.0):
        raise GPSError("implausible Hubble parameter", source=name, field="Header/HubbleParam",
                       expected="h in (0.2, 2), e.g. 0.6774", found=repr(hdr["HubbleParam"]))
    try:
        nfiles = int(hdr.get("NumFiles", 1))
    except (TypeError, ValueError):
        nfiles = -1
    if nfiles < 1:
        raise GPSError("invalid NumFiles", source=name, field="Header/NumFiles", expected="an integer >= 1",
                       found=repr(hdr.get("NumFiles")))
    return h


def _check_fields(G, S, name: str) -> None:
    """Numeric fields with the documented shapes, one row per group / subhalo, within the size limit."""
    from core.data.io.registry import check_declared_size

    for grp, fields in REQUIRED_FIELDS.items():
        g = G if grp == "Group" else S
        rows = None
        for k in fields:
            d = g[k]
            width = _WIDTH.get(k)
            shape_ok = d.ndim == 2 and d.shape[1] == width if width else d.ndim == 1
            if d.dtype.kind not in "biuf" or not shape_ok:
                raise GPSError("TNG field has the wrong type or shape", source=name, field=f"{grp}/{k}",
                               expected=f"numbers, shape (n, {width})" if width else "numbers, shape (n,)",
                               found=f"{d.dtype} shape {d.shape}")
            check_declared_size(float(d.size), name, f"{grp}/{k}", "dataset shape")
            if rows is None:
                rows = d.shape[0]
            elif d.shape[0] != rows:
                raise GPSError("TNG fields of one group have different lengths", source=name, field=f"{grp}/{k}",
                               expected=f"{rows} rows like {grp}/{fields[0]}", found=f"{d.shape[0]} rows")


def _run_start(grnr: np.ndarray, k: np.ndarray) -> np.ndarray:
    """True where subhalo ``k`` starts a run of equal SubhaloGrNr (where a group's central sits)."""
    prev = np.where(k > 0, grnr[np.maximum(k - 1, 0)], -1)
    return (k == 0) | (prev != grnr[k])


def _offsets(first, grnr, hdr, soff, goff, name) -> tuple[int, int]:
    """Global index of this chunk's first subhalo and first group, by matching GroupFirstSub to SubhaloGrNr."""
    if soff is not None and goff is not None:
        return int(soff), int(goff)
    if int(hdr.get("NumFiles", 1)) == 1:
        return int(soff or 0), int(goff or 0)
    has = np.flatnonzero(first >= 0)
    if len(has) == 0 or len(grnr) == 0:
        return int(soff or 0), int(goff or 0)
    is_start = np.r_[True, grnr[1:] != grnr[:-1]]      # a central is the first subhalo of its group's run
    starts = np.flatnonzero(is_start)[:200]
    j = np.arange(len(first))
    best, best_n = None, 0
    for j0 in has[:5]:
        for s in starts:
            so, go = first[j0] - s, grnr[s] - j0
            if (soff is not None and so != soff) or (goff is not None and go != goff):
                continue
            k = first[has] - so
            inside = (k >= 0) & (k < len(grnr))
            ki = k[inside]
            n = int(((grnr[ki] == go + j[has][inside]) & is_start[ki]).sum())
            if n > best_n:
                best, best_n = (int(so), int(go)), n
    if best is None:
        raise GPSError("cannot match groups to subhaloes in this chunk (GroupFirstSub vs SubhaloGrNr)",
                       source=name, field="Group/GroupFirstSub",
                       expected="the first subhalo of a group stored in this chunk",
                       found="no consistent offset; pass subhalo_offset= and group_offset= from the offsets file")
    return best
