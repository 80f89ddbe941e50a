"""Command line: ``python -m core {simulate,train,predict,batch,evaluate,bench} ...`` (each with ``--help``).

Errors in the user's input (files, columns, units, checkpoints, settings) print one clear message and exit with
status 2; nothing is written on failure (outputs are written to a temporary name and renamed at the end).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.errors import GPSError

__all__ = ["main", "parse_overrides", "test_metrics"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "cmd", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except GPSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# --------------------------------------------------------------------------------------------------- commands
def cmd_simulate(args) -> int:
    from core import api

    adapter = api.task_obj(args.task).data
    if adapter.check_save is not None:
        adapter.check_save(args.out)
    data = api.simulate(args.task, args.n, args.seed, parse_overrides(args.set), use_cache=False)
    print(api.task_obj(args.task).data.save(data, args.out))
    return 0


def cmd_train(args) -> int:
    _pin_threads()
    from core import api
    from core.inference.training import EpochReport

    data = _load_data(args, require_target=True)
    train, val, test = api.split(data, (0.8, 0.1, 0.1), seed=args.seed)
    feats = args.features.split(",") if args.features else None
    config = parse_overrides(args.set)
    t0 = time.perf_counter()

    def report(r: EpochReport) -> None:
        if not args.quiet:
            print(f"\repoch {r.epoch + 1:4d}/{r.epochs}  train {r.train_loss:9.4f}  val {r.val_loss:9.4f}  "
                  f"best {r.best_val_loss:9.4f} (epoch {r.best_epoch + 1})  {r.elapsed:6.1f}s", end="",
                  file=sys.stderr, flush=True)

    init = None
    if args.init:
        from core.inference.finetune import finetune

        init = api.load_checkpoint(args.init, expected_task=args.task)
        if args.model not in (None, init.name):
            raise GPSError("--model differs from the model of the --init checkpoint", field="--model",
                           expected=init.name, found=args.model)
        if feats:
            raise GPSError("--features cannot change the inputs of a fine-tuned model", field="--features",
                           expected=", ".join(init.features))
        model = finetune(init, train, val, config, init_label=Path(args.init).name, data_label=_data_label(args),
                         data_sha256=_data_sha(args), callbacks=[report], device=args.device)
    else:
        if not args.model:
            raise GPSError("give --model NAME (or --init CHECKPOINT to fine-tune)", field="--model")
        from core.metrics.typicality import attach_reference

        model = api.train(args.task, args.model, train, config, features=feats, val=val, callbacks=[report],
                          device=args.device)
        attach_reference(model, train)     # the typicality score's reference sample, saved with the checkpoint
        if args.data:
            model.card["provenance"]["data_sha256"] = _data_sha(args)
            model.card["provenance"]["note"] = f"trained from scratch on {_data_label(args)}"
    if not args.quiet:
        print(file=sys.stderr)
    train_s = time.perf_counter() - t0
    if args.eval_n and len(test) > args.eval_n:
        test = test.subset(np.arange(args.eval_n))
    test = _physical_prior_test(api, args, model, data, test)
    metrics, typ = _test_scores(api, model, test, args)
    if init is not None:                  # the same held-out rows scored with the checkpoint before fine-tuning
        metrics["before_finetune"] = {k: v for k, v in _test_scores(api, init, test, args)[0].items()
                                      if not isinstance(v, dict)}
    command = "python -m core " + " ".join(sys.argv[1:]) if argv_is_cli() else ""
    path = api.save_checkpoint(model, args.out, test_metrics=metrics, notes=command)
    from core.inference.checkpoints import read_metadata
    from core.inference.model_card import model_card_markdown

    Path(path).with_suffix(".md").write_text(model_card_markdown(read_metadata(path)))
    out = {"checkpoint": str(path), "train_seconds": round(train_s, 1), "stopped": _stopped(model.history),
           "n_train": len(train), "n_val": len(val), "n_test": len(test), "test": metrics,
           "validation_warnings": data.meta.get("validation_warnings", [])}
    if init is not None:
        out["fine_tuned"] = model.card["provenance"]["note"]
    if typ:
        out["test_typicality"] = typ
    print(json.dumps(out, indent=1, default=_num))
    return 0


def _test_scores(api, model, test, args) -> tuple[dict, dict | None]:
    """Held-out scores of ``model`` on ``test`` (checkpoint ``test_metrics``) and its typicality summary."""
    from core.metrics import typicality

    test = _drop_empty_maps(api.prepare(model, test))   # the model's inputs on its grid (truth maps alike)
    post = model.posterior(test, n_samples=_samples(args, args.task), seed=args.seed)
    ev = api.evaluate(post, test, api.exact_posterior(test))
    metrics = test_metrics(ev, len(test))
    typ = typicality.summary(typicality.annotate(model, test, post))
    if typ is not None:
        metrics["fraction_atypical"] = typ["fraction_atypical"]
        typ["by_group"] = typicality.scores_by_typicality(post, test.y)
    return metrics, typ


def _data_label(args) -> str:
    return Path(args.data).name if getattr(args, "data", None) else f"{args.simulate} simulated objects"


def _data_sha(args) -> str:
    from core.data.catalog import file_sha256

    return file_sha256(args.data) if getattr(args, "data", None) and Path(args.data).is_file() else ""


def cmd_predict(args) -> int:
    _pin_threads()
    from core.predict import predict_file

    inputs = args.input[0] if len(args.input) == 1 else list(args.input)
    summary = predict_file(inputs, args.out, checkpoint=args.checkpoint, task=args.task, model=args.model,
                           n_samples=args.samples, save_samples=args.save_samples, chunk_rows=args.chunk_rows,
                           seed=args.seed, device=args.device, progress=not args.quiet, mode=args.mode,
                           column_map=args.map, h=args.h, id_column=args.id_column, reff_arcsec=args.reff_arcsec)
    print(json.dumps(summary, indent=1, default=_num))
    return 0


def cmd_evaluate(args) -> int:
    _pin_threads()
    from core import api

    model = _load_model(args)
    if getattr(args, "data", None):       # a catalogue table scored with a map task's checkpoint: refuse
        from core.inference.checkpoints import check_task_matches, data_task_of

        check_task_matches(model, data_task_of(args.data), args.checkpoint, args.data)
    args.task = model.task_name
    data = _load_data(args, require_target=True)
    data = _drop_empty_maps(api.prepare(model, data))   # the model's inputs on its grid (truth maps alike)
    options = {"mode": args.mode} if args.mode else {}
    from core.inference.sanity import checked_posterior

    post = checked_posterior(model, data, n_samples=_samples(args, model.task_name), seed=args.seed, **options)
    ev = api.evaluate(post, data, api.exact_posterior(data))
    out = {"task": model.task_name, "model": model.name, "checkpoint": args.checkpoint or "bundled",
           "features": list(model.features), **_json_ready(ev),
           "validation_warnings": data.meta.get("validation_warnings", [])}
    from core.metrics import typicality

    typ = typicality.summary(typicality.annotate(model, data, post))
    if typ is not None:
        out["typicality"] = {**typ, "by_group": typicality.scores_by_typicality(post, data.y)}
    if len(ev.get("scores_by_target") or ()) > 1:     # several targets: with scatter_dex / bias_dex per target
        out["scores_by_target"] = test_metrics(ev, ev["n"])["by_target"]
    text = json.dumps(out, indent=1, default=_num)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


def cmd_batch(args) -> int:
    from core.batch.cli import run

    return run(args)


def cmd_bench(args) -> int:
    from core.bench import run_benchmark

    run_benchmark(args.task, quick=args.quick, out=args.out, seed=args.seed, device=args.device,
                  methods=args.methods.split(",") if args.methods else None)
    return 0


# --------------------------------------------------------------------------------------------------- helpers
def parse_overrides(items: Sequence[str] | None) -> dict[str, Any]:
    """``["a=1", "train.epochs=5", "shmr=\"behroozi13\""]`` -> nested dict; values parsed as JSON when possible."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise GPSError("a setting must look like key=value", field="--set", found=item)
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def test_metrics(ev: dict, n_test: int) -> dict[str, Any]:
    """Held-out scores stored in a checkpoint: the (first-target or per-pixel) scores, and for several targets
    ``by_target`` with ``scatter_dex`` (std of the posterior-mean residuals) and ``bias_dex`` per target."""
    out: dict[str, Any] = {"n_test": int(n_test), **{k: v for k, v in ev["scores"].items()
                                                   if v is None or isinstance(v, (int, float, str))}}
    by = ev.get("scores_by_target")
    if by and len(by) > 1:
        out["by_target"] = {}
        for t, sc in by.items():
            rmse, bias = float(sc.get("rmse", np.nan)), float(sc.get("bias", np.nan))
            row = {k: v for k, v in sc.items() if isinstance(v, (int, float))}
            row["scatter_dex"] = float(np.sqrt(max(rmse ** 2 - bias ** 2, 0.0)))
            row["bias_dex"] = bias
            out["by_target"][t] = row
    return out


def argv_is_cli() -> bool:
    return Path(sys.argv[0]).name in ("__main__.py", "gps", "core")


def _physical_prior_test(api, args, model, data, test):
    """A model trained on a proposal set (e.g. flat in log Mh) and reweighted to the physical prior is scored on as
    many fresh objects drawn from the physical prior (another seed): the proposal's held-out rows would make a
    correct posterior look biased."""
    from core.data.simulators import prior_correction

    corr = prior_correction(data)
    if corr is None or not model.physical_prior:
        return test
    overrides = {**parse_overrides(getattr(args, "sim_set", None)), **corr["physical"]}
    print(f"note: trained on a proposal set; scored on {len(test)} objects simulated under the physical prior "
          f"({', '.join(f'{k}={v}' for k, v in corr['physical'].items())}, seed {args.seed + 1})", file=sys.stderr)
    return api.simulate(args.task, len(test), args.seed + 1, overrides)


def _load_data(args, require_target: bool):
    from core import api

    if getattr(args, "simulate", None):
        return api.simulate(args.task, args.simulate, args.seed, parse_overrides(getattr(args, "sim_set", None)))
    if not getattr(args, "data", None):
        raise GPSError("no data given", expected="--data FILE or --simulate N")
    if not api.task_obj(args.task).data.table_input:          # map tasks: the task's own file readers
        data = api.read_data(args.data, args.task)
        if require_target and not data.has_truth:
            raise GPSError("this file has no true target maps/values to train on or score against",
                           source=args.data, expected="a labelled map stack (python -m core simulate --task "
                           f"{args.task} ...) or --simulate N", found="no truth")
        return data
    table = api.read_table(args.data)
    data, report = api.table_to_catalog(table, args.task, require_target=require_target, **_mapping_args(args, table))
    for msg in report.warnings:
        print(f"warning: {msg}", file=sys.stderr)
    data.meta["validation_warnings"] = list(report.warnings)
    return data


def _mapping_args(args, table=None) -> dict:
    """``--map COLUMN=INPUT[:UNIT]``, ``--h`` and ``--id-column`` as keyword arguments of the table reader (the
    given mapping on top of the suggested one when ``table`` is given)."""
    from core import api
    from core.data.column_map import merge_mapping, parse_column_map

    mapping, units = parse_column_map(getattr(args, "map", None), api.get_task(args.task))
    if mapping and table is not None:
        mapping = merge_mapping(api.suggest_mapping(table, args.task), mapping)
    return {"mapping": mapping or None, "units": units or None, "h": getattr(args, "h", None),
            "id_column": getattr(args, "id_column", None)}


def _pin_threads() -> None:
    """Torch threads as the app's session lanes use them (core.device.cpu_threads: GPS_THREADS, else 1 on small
    machines), so the CLI and the app train and predict at the same speed."""
    from core.device import pin_threads

    pin_threads()


def _load_model(args):
    from core import api

    if args.checkpoint:
        return api.load_checkpoint(args.checkpoint, expected_task=args.task)
    if not args.task:
        raise GPSError("give --checkpoint FILE or --task NAME (bundled default checkpoint)")
    return api.load_bundled(args.task, getattr(args, "model", None))


def _drop_empty_maps(data):
    """Simulated map stacks can hold maps with no unmasked pixel (carry no information; models refuse them):
    scores leave them out, with a note."""
    mask = getattr(data, "mask", None)
    if not isinstance(mask, np.ndarray) or mask.ndim != 3 or not data.has_truth:
        return data
    empty = mask.reshape(len(mask), -1).all(axis=1)
    if empty.any():
        print(f"note: {int(empty.sum())} of {len(mask)} maps have no unmasked pixel and are not scored",
              file=sys.stderr)
        data = data.subset(np.flatnonzero(~empty))
    return data


def _samples(args, task: str) -> int:
    """--samples, or the task's default draws (``Task.defaults.draws``)."""
    if getattr(args, "samples", None):
        return int(args.samples)
    from core.tasks import get_task_obj

    return get_task_obj(task).defaults.draws


def _stopped(hist: dict) -> str:
    if not isinstance(hist, dict):
        return ""
    if "cvae" in hist:    # two-stage models: one reason per stage
        return "; ".join(f"{k}: {hist[k].get('stopped_reason', '')}" for k in ("cvae", "flow")
                         if isinstance(hist.get(k), dict))
    return str(hist.get("stopped_reason", ""))


def _json_ready(ev: dict) -> dict:
    """Scores without per-pixel arrays (the galaxy-pixel mask of map evaluations)."""
    return {k: v for k, v in ev.items() if not (isinstance(v, np.ndarray) and v.size > 64)}


def _num(o):
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)


def _map_arguments(p) -> None:
    """The Data page's choices for tables: column mapping with units, Hubble h, id column."""
    p.add_argument("--map", action="append", metavar="COLUMN=INPUT[:UNIT]", help="use file column COLUMN as task "
                   "quantity INPUT, optionally in UNIT (repeatable), e.g. 'SubhaloMassType_4=log_mstar:1e10 Msun/h'")
    p.add_argument("--h", type=float, default=None, help="Hubble h for columns in little-h units, e.g. 0.6774")
    p.add_argument("--id-column", default=None, help="column holding the object ids (kept in the output)")


def _parser() -> argparse.ArgumentParser:
    from core.tasks import TASKS

    tasks = TASKS.names()
    p = argparse.ArgumentParser(prog="python -m core", description="Galaxy Posterior Studio: simulate, train, "
                                "predict, evaluate and benchmark posterior models.")
    sub = p.add_subparsers(dest="cmd")

    s = sub.add_parser("simulate", help="simulate a labelled dataset with the task's default simulator")
    s.add_argument("--task", default="halo_mass", choices=tasks)
    s.add_argument("--n", type=int, required=True, help="number of objects")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="simulator setting (repeatable)")
    s.add_argument("--out", required=True, help="output table (.csv, .fits, .h5/.hdf5, .parquet); map tasks: an "
                   "HDF5 map stack (.maps.h5) with the true maps (exsitu_map)")
    s.set_defaults(func=cmd_simulate)

    t = sub.add_parser("train", help="train a model and write a checkpoint (.gps)")
    t.add_argument("--task", default="halo_mass", choices=tasks)
    t.add_argument("--model", default=None, help="model name (see the task's models); with --init: its model")
    t.add_argument("--init", metavar="CHECKPOINT", default=None,
                   help="fine-tune: start from this checkpoint's weights (a bundled .gps or your own) and train on "
                   "--data (held-out split, early stopping on the validation part); without it: from scratch")
    g = t.add_mutually_exclusive_group(required=True)
    g.add_argument("--data", help="labelled training table (any supported format)")
    g.add_argument("--simulate", type=int, metavar="N", help="train on N simulated objects")
    t.add_argument("--sim-set", action="append", metavar="KEY=VALUE", help="simulator setting (with --simulate)")
    _map_arguments(t)
    t.add_argument("--features", help="comma-separated subset of input features (default: all present)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="model setting, e.g. train.epochs=50")
    t.add_argument("--seed", type=int, default=0, help="split / simulation seed")
    t.add_argument("--samples", type=int, default=None,
                   help="posterior samples for the test metrics (default: the task's draws, 1000; exsitu_map: 100)")
    t.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N | mps")
    t.add_argument("--eval-n", type=int, default=2000, help="score at most this many held-out objects (0 = all)")
    t.add_argument("--out", required=True, help="checkpoint file to write (.gps)")
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train)

    r = sub.add_parser("predict", help="posterior summaries for every object of a table (streamed in chunks), or "
                       "posterior maps / per-target summaries for a map file (map tasks)")
    r.add_argument("--checkpoint", help="checkpoint file (.gps)")
    r.add_argument("--task", choices=tasks, help="use the task's bundled default checkpoint")
    r.add_argument("--model", help="with --task: a bundled model other than the default")
    r.add_argument("--input", required=True, nargs="+", metavar="PATH",
                   help="input table or map file; map tasks also take several files, a folder or a glob, whose files "
                   "of one object are combined (e.g. a SAMI galaxy's velocity and dispersion files, by CATID)")
    r.add_argument("--reff-arcsec", action="append", metavar="ARCSEC|ID=ARCSEC",
                   help="map tasks: effective radius for files that carry none (SAMI kinematics, Firefly); one value "
                   "for every object, or ID=ARCSEC per object (repeatable); replaces a file's value")
    r.add_argument("--out", required=True, help="output file (.csv, .fits, .h5/.hdf5)")
    r.add_argument("--samples", type=int, default=None,
                   help="posterior samples per object (default: the task's draws, 1000; exsitu_map: 100)")
    _map_arguments(r)
    r.add_argument("--mode", default=None, help="inference mode of models that have several (cvae_flow: flow | prior)")
    r.add_argument("--save-samples", action="store_true", help="also store the samples (FITS/HDF5 only)")
    r.add_argument("--chunk-rows", type=int, default=20000, help="rows per chunk (memory bound)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default=None)
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_predict)

    e = sub.add_parser("evaluate", help="score a checkpoint on a labelled table or a fresh simulation")
    e.add_argument("--checkpoint")
    e.add_argument("--task", choices=tasks)
    e.add_argument("--model")
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--data")
    g.add_argument("--simulate", type=int, metavar="N")
    e.add_argument("--sim-set", action="append", metavar="KEY=VALUE")
    _map_arguments(e)
    e.add_argument("--samples", type=int, default=None, help="default 1000; exsitu_map: 100 per map")
    e.add_argument("--seed", type=int, default=1)
    e.add_argument("--mode", default=None, help="exsitu_map inference mode: flow | prior | reconstruction")
    e.add_argument("--out", help="write the scores as JSON")
    e.set_defaults(func=cmd_evaluate)

    from core.batch.cli import add_parser as add_batch_parser

    add_batch_parser(sub, cmd_batch)

    b = sub.add_parser("bench", help="train and score every method of a task on one train/test set, same run")
    from core.bench import benchmark_names

    b.add_argument("task", choices=benchmark_names())
    b.add_argument("--quick", action="store_true", help="smaller sizes (halo_mass: < 10 min on 2 CPU cores)")
    b.add_argument("--out", required=True, help="JSON file (a markdown table is written beside it)")
    b.add_argument("--methods", help="comma-separated subset of methods")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--device", default=None)
    b.set_defaults(func=cmd_bench)
    return p


if __name__ == "__main__":
    sys.exit(main())
