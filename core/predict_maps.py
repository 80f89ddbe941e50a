"""Command-line prediction for the map tasks: a map file -> posterior maps (exsitu_map) or per-target summaries.

``exsitu_map``: the file is read by :func:`core.api.read_data` (MaNGA DAP, Pipe3D, Firefly, our HDF5 map stack),
put on the model's grid by :func:`core.api.prepare` (or refused with one message naming the missing channels and the
bundled models that can run), and the posterior f_ex maps are written as

* FITS, one object: one image HDU per summary map (MEAN, STD, Q2.5, Q16, MEDIAN, Q84, Q97.5, P_GT_0.5, RESIDUAL
  when the truth is known) plus INPUT_MASK, every HDU carrying the regridded input's celestial WCS;
* FITS, several objects (a map-stack file): the same HDUs as cubes (N, H, W) (FITS axis 3 = object), and an OBJECTS
  table (id, R_e, pixel scale, each object's own celestial WCS header text, since objects do not share a WCS);
* HDF5: ``maps/<name>`` (N, H, W), ``input_mask``, the regridded ``inputs`` (N, C, H, W) the model saw, ``ids``,
  ``headers`` (each object's regridded FITS header) and ``truth`` when known; ``samples`` with ``--save-samples``.

Provenance (task, model, checkpoint, input file and its sha256, reader and regrid notes, samples, seed, mode) goes
into the primary FITS header (notes as HISTORY cards) or the HDF5 ``provenance`` attribute (JSON).

``central_mass``: a MaNGA DAP file -> one row per object with mean, median, std and percentiles of every target (with
units) through :func:`core.data.export.write_posterior`; the model's "outside the training simulator" notes
(``Posterior.info["domain_notes"]``) and the reader's notes go into the provenance (CSV ``#`` lines, HDF5 attribute,
FITS COMMENT cards).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import GPSError

__all__ = ["predict_map_file", "write_map_posterior", "simulate_to_file", "map_summaries", "DEFAULT_SAMPLES"]

#: posterior draws per object when ``--samples`` is not given
DEFAULT_SAMPLES = {"exsitu_map": 200, "central_mass": 1000}
_MAP_FORMATS = ("fits", "hdf5")


def predict_map_file(input_path: str, out_path: str, *, task: str, model=None, checkpoint: str | None = None,
                     model_name: str | None = None, n_samples: int | None = None, save_samples: bool = False,
                     seed: int = 0, device: str | None = None, progress: bool = True,
                     mode: str | None = None) -> dict[str, Any]:
    """Read ``input_path`` for ``task``, run ``model`` (a loaded one, else the bundled checkpoint whose inputs the
    file has, or ``model_name``) and write the posterior to ``out_path``. Returns a JSON-ready summary."""
    from core import api
    from core.data.catalog import file_sha256
    from core.data.export import format_from_path

    fmt = format_from_path(out_path)
    if task == "exsitu_map" and fmt not in _MAP_FORMATS:
        raise GPSError("posterior maps are written as images", source=str(out_path), field="--out",
                       expected="a .fits or .h5/.hdf5 file name", found=Path(out_path).suffix or "no extension")
    if save_samples and (task != "exsitu_map" or fmt != "hdf5"):
        raise GPSError("posterior samples of a map task are stored in HDF5 map outputs only", source=str(out_path),
                       field="--save-samples", expected="--task exsitu_map with a .h5/.hdf5 output")
    if mode is not None and task != "exsitu_map":
        raise GPSError("--mode applies to the exsitu_map task only", field="--mode", found=mode)
    t0 = time.perf_counter()
    data = api.read_data(input_path, task)
    if model is None:
        model = api.load_bundled(task, model_name, data=data)
        label = "bundled:" + _bundled_file(model)
    else:
        label = str(checkpoint or "given model")
    if model.task_name != task:
        raise GPSError("checkpoint is for another task", source=label, field="task", expected=task,
                       found=model.task_name)
    prepared = api.prepare(model, data)
    t_read = time.perf_counter() - t0
    n = int(n_samples or DEFAULT_SAMPLES.get(task, 1000))
    options: dict[str, Any] = {}
    if task == "exsitu_map":
        options["mode"] = mode or "flow"
        if options["mode"] == "reconstruction" and not prepared.has_truth:
            raise GPSError("the reconstruction mode needs the true f_ex maps", source=prepared.source,
                           field="--mode", expected="flow | prior for a real file", found="reconstruction")
        if save_samples:
            options["keep_samples"] = len(prepared)
    t1 = time.perf_counter()
    from core.inference.sanity import checked_posterior

    post = checked_posterior(model, prepared, n_samples=n, seed=seed, device=device,
                             progress=_bar(len(prepared), progress), **options)
    t_post = time.perf_counter() - t1
    prov = {"task": task, "model": model.name, "checkpoint": label,
            "checkpoint_created": model.card.get("created", ""), "features": list(model.features),
            "input_file": Path(input_path).name, "input_sha256": file_sha256(input_path),
            "input_format": data.meta.get("format", ""), "n_samples": n, "seed": seed,
            "reader_notes": [str(s) for s in data.meta.get("notes", [])],
            "prepare_notes": [str(s) for s in prepared.meta.get("notes", [])[len(data.meta.get("notes", [])):]],
            "training_data": model.card.get("provenance", {}).get("simulator", "file"),
            "package_version": model.card.get("package_version", "")}
    if task == "exsitu_map":
        prov["mode"] = options["mode"]
        write_map_posterior(post, prepared, out_path, fmt, provenance=prov, save_samples=save_samples)
        summary = {"objects": int(post.n), "map_shape": list(post.shape),
                   "maps": list(map_summaries(post)), "mean_f_ex_on_data": _mean_on_data(post)}
    else:
        notes = [str(s) or "inside the training domain" for s in post.info.get("domain_notes") or []]
        prov["domain_notes"] = notes or ["(this model computes no domain check)"]
        _write_table(post, prepared, out_path, fmt, prov)
        summary = {"objects": int(post.n), "targets": list(post.params),
                   "posterior_mean": {p: [round(float(v), 4) for v in post.mean()[:, j]]
                                      for j, p in enumerate(post.params)},
                   "domain_notes": notes}
    return {"out": str(out_path), "task": task, "model": model.name, "checkpoint": label, **summary,
            "read_prepare_seconds": round(t_read, 2), "posterior_seconds": round(t_post, 2),
            "seconds": round(time.perf_counter() - t0, 2)}


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


def simulate_to_file(task: str, n: int, seed: int, overrides: dict, out_path: str) -> str:
    """``python -m core simulate`` for a map task: exsitu_map -> an HDF5 map stack with the true maps."""
    from core import api
    from core.data.export import format_from_path

    if task == "central_mass":
        raise GPSError("central_mass sets have no file format: train and evaluate simulate them on the fly "
                       "(python -m core train|evaluate --task central_mass --simulate N; cached by configuration "
                       "hash in the dataset cache)", field="--task", found=task)
    if format_from_path(out_path) != "hdf5":
        raise GPSError("simulated map stacks are written as our HDF5 map stack", source=str(out_path),
                       field="--out", expected="a name ending in .h5 / .hdf5 (e.g. sim.maps.h5)")
    stack = api.simulate(task, n, seed, overrides)
    out = Path(out_path)
    tmp = out.with_name(out.name + ".part")
    try:
        stack.to_hdf5(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    targets = ", ".join(k for k in stack.targets)
    return (f"wrote {len(stack)} simulated maps ({n} galaxies x {len(stack) // max(n, 1)} projections; channels "
            f"{', '.join(stack.channels)}; {stack.data.shape[2]}x{stack.data.shape[3]} pixels; truth {targets}) "
            f"to {out}")


# ------------------------------------------------------------------------------------------------ private
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


def _write_table(post, data, out_path: str, fmt: str, prov: dict) -> None:
    from core.data.export import write_posterior

    write_posterior(post, data, out_path, fmt, provenance=prov)
    if fmt == "fits":     # the table header truncates long values: the notes in full as COMMENT cards
        from astropy.io import fits

        with fits.open(out_path, mode="update") as hdul:
            h = hdul["POSTERIOR"].header
            for i, note in enumerate(prov.get("domain_notes", [])):
                h.add_comment(f"domain (object {i}): {note}")
            for note in prov.get("reader_notes", []):
                h.add_comment(f"reader: {note}")


def _celestial_header_text(header) -> str:
    from astropy.wcs import WCS

    if not len(header):
        return ""
    try:
        return WCS(header).celestial.to_header().tostring(sep="\n").strip()
    except Exception:  # noqa: BLE001 - no valid WCS: none
        return ""


def _bundled_file(model) -> str:
    """The bundled checkpoint file a loaded model came from (matched by its creation time and model name)."""
    from core import api

    for b in api.bundled_checkpoints(model.task_name):
        if b["model"] == model.name and b["metadata"].get("created") == model.card.get("created") and \
                b["metadata"].get("features") == list(model.features):
            return b["file"]
    return f"{model.task_name}_{model.name}"


def _mean_on_data(post) -> list[float]:
    out = []
    for i in range(post.n):
        ok = ~post.mask[i]
        out.append(round(float(np.mean(post.mean[i][ok])), 4) if ok.any() else float("nan"))
    return out


def _bar(total: int, enabled: bool):
    if not enabled or total < 2:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="map", file=sys.stderr, dynamic_ncols=True)

    def update(done: int, n: int) -> None:
        bar.update(done - bar.n)
        if done >= n:
            bar.close()

    return update
