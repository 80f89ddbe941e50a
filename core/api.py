"""The small surface that the app pages and the CLI call: data, models, inference, evaluation, export.

Pages stay thin: widgets -> a config -> one call here -> figures from ``core.viz``. Nothing here imports
streamlit; long calls accept ``progress``/``callbacks`` and a ``stop`` event so the UI never freezes.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.config import Config
from core.data.catalog import CatalogData
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.tasks import TASKS, TaskSpec, get_task

__all__ = [
    "list_tasks", "list_models", "model_config_class", "simulate", "demo_data", "read_table", "read_data", "prepare",
    "suggest_mapping", "table_to_catalog", "split", "train", "checkpoint_bytes", "save_checkpoint",
    "load_checkpoint", "bundled_checkpoints", "load_bundled", "posterior", "exact_posterior", "refine_hmc",
    "posterior_predictive", "evaluate", "compare_methods", "export_posterior", "MAX_UPLOAD_BYTES", "CHECKPOINT_DIR",
]

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
CHECKPOINT_DIR = Path(os.environ.get("GPS_CHECKPOINT_DIR") or Path(__file__).resolve().parent.parent / "checkpoints")
DEMO_SIZE = 2000
DEMO_SEED = 20261122


# --------------------------------------------------------------------------------------------------- tasks
def list_tasks() -> list[TaskSpec]:
    return [TASKS.get(n) for n in TASKS.names()]


def list_models(task: str, kind: str | None = None):
    """Model specs registered for ``task`` (``kind``: "model" | "baseline" | None for all)."""
    from core.models import models_for_task

    return [s for s in models_for_task(task) if kind is None or s.kind == kind]


def model_config_class(task: str, model: str) -> type[Config]:
    from core.models import get_model_spec

    return get_model_spec(task, model).config_class()


# --------------------------------------------------------------------------------------------------- data
def simulate(task: str, n: int, seed: int = 0, config: dict | Config | None = None,
             use_cache: bool = True):
    """Simulate ``n`` galaxies for ``task`` with its default simulator, in the task's data container
    (:mod:`core.data.task_data`; map tasks give every galaxy's projections). Cached by config hash outside the repo."""
    from core.data.simulators import SIMULATORS
    from core.data.task_data import task_data

    spec = SIMULATORS.get(get_task(task).simulator)
    cfg = config if isinstance(config, spec.config_cls) else spec.config_cls.from_dict(config or {})
    if n < 1:
        raise GPSError("number of objects must be positive", field="n", expected=">= 1", found=str(n))
    make = task_data(task).simulate
    if task != "halo_mass" or not use_cache:          # the map simulators cache their own arrays
        return make(n, seed, cfg)
    from core.data.cache import cached

    return cached(spec.name, cfg, n, seed, lambda: make(n, seed, cfg))


def demo_data(task: str):
    """The bundled demo set: a fixed simulated sample (same seed for every user)."""
    from core.data.task_data import task_data

    return simulate(task, task_data(task).demo_galaxies, DEMO_SEED)


def read_data(source: str | os.PathLike | bytes, task: str, filename: str | None = None, **options):
    """Read a user's file (path or uploaded bytes) into ``task``'s data container (map files for map tasks)."""
    from core.data.task_data import task_data

    if get_task(task).data_kind == "catalog":
        raise GPSError("catalogue tasks read tables: use read_table + table_to_catalog (column mapping)",
                       field="task", found=task)
    with _as_path(source, filename) as path:
        data = task_data(task).read(path, **options)
    if isinstance(source, (bytes, bytearray)):
        data.meta["file"] = Path(filename or "upload.dat").name
    return data


def prepare(model, data):
    """``data`` as ``model`` runs on it: its inputs selected and (maps) regridded onto its grid; a GPSError names
    the inputs a file lacks and the bundled models that can run on it."""
    from core.data.task_data import task_data

    return task_data(model.task_name).prepare(model, data)


def read_table(source: str | os.PathLike | bytes, filename: str | None = None, format: str | None = None):
    """Read a catalogue table from a path or uploaded bytes (written to a private temp dir, size-limited)."""
    from core.data import io as dio

    with _as_path(source, filename) as path:
        table = dio.read(path, format=format, kind="table")
    if isinstance(source, (bytes, bytearray)):
        table.meta["source_file"] = Path(path).name
    return table


@contextlib.contextmanager
def _as_path(source, filename: str | None):
    """A path for ``source``: itself, or uploaded bytes written to a private temp dir (size-limited)."""
    if not isinstance(source, (bytes, bytearray)):
        yield source
        return
    if len(source) > MAX_UPLOAD_BYTES:
        raise GPSError("upload too large", source=filename, expected=f"<= {MAX_UPLOAD_BYTES // 2**20} MiB",
                       found=f"{len(source) // 2**20} MiB")
    with tempfile.TemporaryDirectory(prefix="gps-upload-") as tmp:
        path = Path(tmp) / Path(filename or "upload.dat").name
        path.write_bytes(bytes(source))
        yield path


def suggest_mapping(table, task: str) -> dict[str, str | None]:
    from core.data.schema import suggest_mapping as _sm

    return _sm(table, get_task(task))


def table_to_catalog(table, task: str, mapping: dict | None = None, units: dict | None = None,
                     require_target: bool = False):
    """(CatalogData, ValidationReport) in the task's canonical units."""
    from core.data.schema import to_catalog

    return to_catalog(table, get_task(task), mapping=mapping, units=units, require_target=require_target)


def split(data: CatalogData, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0):
    """Random train/val/test split (grouped by ``extra['galaxy_id']`` when present)."""
    rng = np.random.default_rng(seed)
    groups = data.extra.get("galaxy_id", data.ids)
    uniq = np.unique(groups)
    perm = rng.permutation(uniq)
    cuts = np.cumsum(np.asarray(fractions, float) / np.sum(fractions))[:-1] * len(uniq)
    parts = np.split(perm, np.round(cuts).astype(int))
    return tuple(data.subset(np.isin(groups, p)) for p in parts)


# --------------------------------------------------------------------------------------------------- models
def train(task: str, model: str, data: CatalogData, config: dict | Config | None = None, *,
          features: Sequence[str] | None = None, val: CatalogData | None = None,
          callbacks: Sequence[Callable] = (), stop: threading.Event | None = None, device: str | None = None):
    """Build and train a model on ``data`` (its features, or the ``features`` subset); returns the model."""
    from core.models import build_model

    t = get_task(task)
    if not data.has_truth:
        raise GPSError("training needs the target column", field=", ".join(t.target_names),
                       expected="a labelled catalogue (simulate one, or map a target column)")
    feats = tuple(features) if features else tuple(f for f in t.input_names if f in data.features)
    if not feats:
        raise GPSError("no input features to train on", expected=", ".join(t.input_names),
                       found=", ".join(data.features))
    units = data.units if isinstance(data.units, dict) else dict(zip(data.features, data.units))
    m = build_model(task, model, config, feats, t.target_names, units)
    m.history = m.fit(data.select_features(feats), None if val is None else val.select_features(feats),
                      callbacks=callbacks, stop=stop, device=device) or {}
    m.card = {"provenance": provenance_of(data), "device": m.history.get("device", "cpu")}
    return m


def provenance_of(data: CatalogData) -> dict:
    prov = {k: v for k, v in data.meta.items() if isinstance(v, (str, int, float, bool, dict, list))}
    prov["n_objects"] = len(data)
    prov["fingerprint"] = data.fingerprint()
    return prov


def checkpoint_bytes(model, **kw) -> bytes:
    from core.inference.checkpoints import checkpoint_bytes as _cb

    return _cb(model, **kw)


def save_checkpoint(model, path, **kw) -> Path:
    from core.inference.checkpoints import save_checkpoint as _sc

    return _sc(model, path, **kw)


def load_checkpoint(source, *, name: str | None = None, expected_task: str | None = None):
    from core.inference.checkpoints import load_checkpoint as _lc

    return _lc(source, name=name, expected_task=expected_task)


def bundled_checkpoints(task: str | None = None) -> list[dict]:
    """Metadata of the checkpoints shipped in ``checkpoints/`` (path, task, model, test metrics)."""
    from core.inference.checkpoints import read_metadata

    out = []
    for p in sorted(CHECKPOINT_DIR.glob("*.gps")):
        try:
            meta = read_metadata(p)
        except GPSError:
            continue
        if task is None or meta["task"] == task:
            out.append({"path": str(p), "file": p.name, "task": meta["task"], "model": meta["model"],
                        "metadata": meta})
    return out


def load_bundled(task: str, model: str | None = None, data=None):
    """Load a bundled checkpoint of ``task``: of ``model``, or the task's models in their default order. With
    ``data``, the first whose inputs ``data`` has (e.g. the kinematics-only ex-situ model for a MaNGA DAP file that
    has no age or metallicity maps); when none fits, the default one (its :func:`prepare` then says what is missing).
    """
    items = bundled_checkpoints(task)
    if not items:
        raise GPSError(f"no bundled checkpoint for task {task!r}", source=str(CHECKPOINT_DIR))
    order = list(get_task(task).methods)
    if model is not None:
        items = [i for i in items if i["model"] == model]
        if not items:
            raise GPSError(f"no bundled checkpoint for model {model!r}", source=str(CHECKPOINT_DIR))
    items.sort(key=lambda i: (order.index(i["model"]) if i["model"] in order else 99, -len(i["metadata"].get(
        "features") or ()), i["file"]))
    if data is not None:
        have = set(data.features)
        fits = [i for i in items if set(i["metadata"].get("features") or ()) <= have]
        items = fits or items
    return load_checkpoint(items[0]["path"], expected_task=task)


# --------------------------------------------------------------------------------------------------- inference
def posterior(model, data, *, n_samples: int = 1000, seed: int = 0,
              progress: Callable[[int, int], None] | None = None, device: str | None = None, **options):
    """Posterior of every object of ``data`` under ``model`` (a :class:`Posterior`, or a ``MapPosterior`` for map
    targets). ``data`` is first put in the form the model runs on (:func:`prepare`); ``options`` go to the model
    (e.g. ``mode="prior"`` for the ex-situ map model)."""
    return model.posterior(prepare(model, data), n_samples=n_samples, seed=seed, progress=progress, device=device,
                           **options)


def exact_posterior(data: CatalogData) -> Posterior | None:
    """The simulator's exact posterior when ``data`` were simulated with a simulator that has one, else None."""
    from core.data.simulators import SIMULATORS

    if data.meta.get("source") != "simulator" or data.meta.get("simulator") not in SIMULATORS:
        return None
    spec = SIMULATORS.get(data.meta["simulator"])
    if spec.exact_posterior_factory is None:
        return None
    cfg = spec.config_cls.from_dict(data.meta.get("config", {}))
    return spec.exact_posterior_factory(cfg, data.features).posterior(data.x)


def refine_hmc(model, data: CatalogData, *, seed: int = 0, progress=None, **hmc_overrides) -> Posterior:
    """Run NUTS for the objects of ``data`` (vae_hmc models): samples, R-hat, ESS, divergences, chains."""
    if not hasattr(model, "run_hmc"):
        if getattr(model, "name", "") == "vae_hmc" and not hmc_overrides:   # its posterior() is the NUTS run
            return model.posterior(data, seed=seed, progress=progress)
        raise GPSError(f"the {model.name!r} model has no HMC refinement", expected="a vae_hmc model")
    return model.run_hmc(data, seed=seed, progress=progress, **hmc_overrides)


def posterior_predictive(model, data: CatalogData, post: Posterior, n: int = 200, seed: int = 0) -> np.ndarray:
    """Observables replicated from the posterior: (n_objects, n, d) in the model's feature order."""
    if not hasattr(model, "posterior_predictive"):
        raise GPSError(f"the {model.name!r} model has no generative likelihood for predictive checks",
                       expected="a vae_hmc model (or the simulator's exact model)")
    return model.posterior_predictive(data, post, n, seed)


# --------------------------------------------------------------------------------------------------- evaluation
def evaluate(post, data, exact: Posterior | None = None,
             bin_edges: Sequence[float] | None = None) -> dict[str, Any]:
    """Scores of ``post`` against the truth in ``data`` (and the exact posterior when given), overall and per bin.

    Scalar targets: ``scores`` of the first target (``scores_by_target`` for every one), ``per_bin`` rows in bins of
    the task's first target. Map posteriors: per-pixel scores on galaxy pixels (:func:`core.metrics.maps.
    score_map_posterior`) and ``residual_vs_truth`` rows.
    """
    from core.inference.posterior_maps import MapPosterior
    from core.metrics import score_posterior
    from core.metrics.binned import metrics_per_bin

    if not data.has_truth:
        raise GPSError("evaluation needs the true target values", source=getattr(data, "source", None),
                       expected="labelled data (simulate a set, or map a target column)")
    if isinstance(post, MapPosterior):
        return _evaluate_maps(post, data)
    y = data.y if data.y.ndim == 2 else data.y[:, None]
    names = tuple(getattr(data, "targets", ()) or post.params)
    by_target, keep_all = {}, None
    for j, name in enumerate(post.params):
        truth = y[:, names.index(name) if name in names else j]
        keep = np.isfinite(truth) & post.valid
        keep_all = keep if keep_all is None else keep_all
        p = _one_param(post, j).subset(keep) if len(post.params) > 1 else post.subset(keep)
        e = exact.subset(keep) if (exact is not None and j == 0) else None
        by_target[name] = score_posterior(p, truth[keep], exact=e)
    truth = y[:, 0]
    keep = keep_all
    p = (_one_param(post, 0) if len(post.params) > 1 else post).subset(keep)
    e = exact.subset(keep) if exact is not None else None
    if bin_edges is None:
        lo, hi = np.nanpercentile(truth[keep], [0.5, 99.5])
        bin_edges = np.arange(np.floor(lo * 2) / 2, hi + 0.5, 0.5)
    rows = metrics_per_bin(truth[keep], p, np.asarray(bin_edges), exact=e)
    return {"scores": by_target[post.params[0]], "scores_by_target": by_target, "per_bin": rows,
            "n": int(keep.sum())}


def _one_param(post: Posterior, j: int) -> Posterior:
    from core.metrics import _one_param as one

    return one(post, j)


def _evaluate_maps(post, data) -> dict[str, Any]:
    from core.metrics.maps import galaxy_pixels, residual_vs_truth, score_map_posterior

    truth = np.asarray(data.targets["f_ex"], dtype=np.float32)
    if truth.shape != post.mean.shape:
        raise GPSError("the true maps are not on the posterior's grid", source=getattr(data, "source", None),
                       field="f_ex", expected=str(post.mean.shape), found=str(truth.shape))
    pixels = galaxy_pixels(post.mask, truth, getattr(data, "galaxy", None))
    scores = score_map_posterior(post, truth=truth, pixels=pixels)
    return {"scores": scores, "per_bin": residual_vs_truth(post.q50, truth, pixels, bins=10),
            "n": int(post.n), "pixels": pixels}


HMC_MAX_GALAXIES = 200      # NUTS methods are scored on at most this many galaxies in comparisons (seconds each)


def compare_methods(task: str, cat: CatalogData, ev: CatalogData, current=None, *,
                    progress: Callable[..., None] | None = None,
                    stop: threading.Event | None = None) -> dict[str, Any]:
    """Score every method of ``task`` on the same test galaxies ``ev`` ("all methods side by side").

    Methods come from ``current`` (the user's model), a bundled checkpoint, or (baselines) a fit on the galaxies of
    ``cat`` not used for scoring. When ``ev`` is the whole catalogue it is split in halves: baselines fit on one half
    and every method scores on the other. NUTS methods score on at most :data:`HMC_MAX_GALAXIES` galaxies.
    """
    spec = get_task(task)
    if ev is cat or len(ev) == len(cat):
        fit_part, ev = split(ev, (0.5, 0.5), seed=0)
    else:
        fit_part = cat.subset(~np.isin(cat.ids, ev.ids))
    exact = exact_posterior(ev)
    bundled = {b["model"]: b["path"] for b in bundled_checkpoints(task)}
    out: dict[str, Any] = {"scores": {}, "notes": [], "importance": None, "n": len(ev)}
    methods = list(spec.methods)
    for k, name in enumerate(methods):
        if progress is not None:
            progress(k, len(methods), f"{name} …")
        if stop is not None and stop.is_set():
            out["notes"].append("stopped by user")
            break
        try:
            mspec = next(s for s in list_models(task) if s.name == name)
            if current is not None and current.name == name:
                m, how = current, "current model"
            elif name in bundled:
                m, how = load_checkpoint(bundled[name], expected_task=task), "bundled checkpoint"
            elif mspec.kind == "baseline":
                feats = [f for f in fit_part.features if f in spec.input_names]
                m, how = train(task, name, fit_part, None, features=feats), f"fit on {len(fit_part)}"
            else:
                out["notes"].append(f"{name}: no bundled checkpoint; train it on the Model page to compare")
                continue
            sub = ev if name != "vae_hmc" else ev.subset(slice(0, HMC_MAX_GALAXIES))
            post = posterior(m, sub, n_samples=1000, seed=0)
            ex = None if exact is None else (exact if len(sub) == len(ev) else exact.subset(slice(0, len(sub))))
            res = evaluate(post, sub, None if name == "exact" else ex)
            out["scores"][name] = {"source": how, **{k2: v for k2, v in res["scores"].items()
                                                     if isinstance(v, (int, float))}}
            if hasattr(m, "feature_importance"):
                out["importance"] = m.feature_importance(kind="gain")
        except ImportError as e:
            out["notes"].append(f"{name}: not available ({e})")
        except Exception as e:  # noqa: BLE001 - one failing method must not hide the others
            out["notes"].append(f"{name}: {e}")
    if progress is not None:
        progress(len(methods), len(methods), "done")
    return out


# --------------------------------------------------------------------------------------------------- export
def export_posterior(post, data, fmt: str = "csv", *, include_samples: bool = False,
                     n_samples: int = 1000, provenance: dict | None = None) -> bytes:
    """Posterior summaries (+ samples) with units and provenance as CSV, FITS or HDF5 bytes.

    Map posteriors (``data``: the prepared map stack, whose headers carry the WCS on the model grid) are written as
    FITS (one HDU per summary map) or HDF5 by :func:`core.predict_maps.write_map_posterior`, as ``predict`` does.
    """
    from core.inference.posterior_maps import MapPosterior

    if isinstance(post, MapPosterior):
        from core.predict_maps import write_map_posterior

        if fmt not in ("fits", "hdf5"):
            raise GPSError("posterior maps are written as FITS or HDF5", field="format", expected="fits | hdf5",
                           found=fmt)
        with tempfile.TemporaryDirectory(prefix="gps-export-") as tmp:
            path = Path(tmp) / f"posterior.{fmt}"
            write_map_posterior(post, data, str(path), fmt, provenance=provenance or {}, save_samples=include_samples)
            return path.read_bytes()
    from core.data.export import write_posterior

    buf = io.BytesIO()
    write_posterior(post, data, buf, fmt, include_samples=include_samples, n_samples=n_samples,
                    provenance=provenance)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------- batch
def batch(config, *, client=None, progress=False, stop: threading.Event | None = None) -> dict[str, Any]:
    """Run or resume a survey-scale batch on Dask (:func:`core.batch.run_batch`; ``config``: a ``BatchConfig`` or
    its dict) and return its summary (done / skipped / failed parts, rows/s)."""
    from core.batch import run_batch

    return run_batch(config, client=client, progress=progress, stop=stop)
