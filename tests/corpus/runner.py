"""Run corpus entries through ``core.api`` (in-process) and the CLI (``core.__main__.main``), and classify each run.

Outcomes: ``refused`` (GPSError / exit 2, message names the file, nothing written), ``refused_unnamed`` (the
message does not name the file), ``masked`` (ran; the bad rows are written masked, the good ones kept in order),
``ok`` (a valid control ran), ``traceback`` (any other exception), ``silent`` (ran although it should have been
refused or flagged), ``wrote_on_refusal`` (refused but left an output file), ``slow`` (a refusal after > 10 s),
``timeout`` (any run still going after 30 s, stopped).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.corpus.generate import N_ROWS, Entry

TIME_LIMIT_S = 10.0
HANG_S = 30                     # a run still going after this is stopped and counted as "timeout"


class _Hang(BaseException):
    """Raised by the alarm in the main thread (a BaseException so that no ``except Exception`` swallows it)."""


@contextlib.contextmanager
def _alarm(seconds: int):
    import signal

    def fire(*_):
        raise _Hang()

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
_MODELS: dict[str, Any] = {}


def _bundled(task: str, data=None):
    from core import api

    if task == "halo_mass":
        if task not in _MODELS:
            _MODELS[task] = api.load_bundled(task)
        return _MODELS[task]
    return api.load_bundled(task, data=data)


def _ok_rows(valid: np.ndarray, e: Entry, marginalises: bool = False) -> bool:
    valid = np.asarray(valid).astype(bool)
    if len(valid) != N_ROWS:
        return False
    want = np.ones(N_ROWS, bool)
    if not (marginalises and e.extra.get("missing_input")):   # sentinels are missing values: kept if marginalised
        want[list(e.bad_rows)] = False
    return bool((valid == want).all())


def classify_success(e: Entry, valid: np.ndarray | None = None, n_scored: int | None = None,
                     marginalises: bool = False) -> str:
    if e.expect == "ok":
        return "ok"
    if e.expect == "refuse":
        return "silent"
    if valid is not None:
        return "masked" if _ok_rows(valid, e, marginalises) else "silent"
    if n_scored is not None:
        drop = 0 if (marginalises and e.extra.get("missing_input")) else e.extra.get("eval_drop", len(e.bad_rows))
        return "masked" if n_scored <= N_ROWS - drop else "silent"
    return "silent"


def run_api(e: Entry, corpus: Path) -> tuple[str, str]:
    """(outcome, message) of reading + validating + a posterior through ``core.api``."""
    from core import api
    from core.errors import GPSError

    path = corpus / e.name
    try:
        if e.role == "checkpoint":
            model = api.load_checkpoint(path, expected_task=e.task)
            data, _ = api.table_to_catalog(api.read_table(corpus / "valid.csv"), e.task)
        elif e.task == "halo_mass":
            data, _ = api.table_to_catalog(api.read_table(path), e.task)
            model = _bundled(e.task)
        else:
            data = api.read_data(path, e.task)
            model = _bundled(e.task, data)
        post = api.posterior(model, data, n_samples=20, seed=0)
        valid = getattr(post, "valid", None)
        if e.task == "halo_mass" or e.role == "checkpoint":
            samples = post.samples if post.samples is not None else post.pdf
            fin = np.isfinite(samples.reshape(post.n, -1)).all(axis=1)
            if (fin[np.asarray(post.valid, bool)] == False).any():  # noqa: E712 - NaN written as a result
                return "silent", "non-finite posterior rows marked valid"
        return classify_success(e, valid=valid if e.expect == "mask" and e.task == "halo_mass" else None,
                                marginalises=api.capabilities(model).any_subset), ""
    except GPSError as err:
        msg = str(err)
        return ("refused" if _names_file(msg, e) else "refused_unnamed"), msg
    except Exception as err:  # noqa: BLE001 - a traceback is the failure being counted
        return "traceback", f"{type(err).__name__}: {err}"


def run_cli(e: Entry, corpus: Path, command: str, out_dir: Path) -> tuple[str, str]:
    """(outcome, message) of ``python -m core predict|evaluate`` run in-process through ``core.__main__.main``."""
    from core.__main__ import main

    path = corpus / e.name
    ext = ".fits" if e.task == "exsitu_map" else ".csv"
    out = out_dir / f"{command}_{e.name}{ext}"
    for p in (out, Path(str(out) + ".part")):
        p.unlink(missing_ok=True)
    if command == "predict":
        argv = ["predict", "--input", str(corpus / "valid.csv") if e.role == "checkpoint" else str(path),
                "--out", str(out), "--samples", "20", "--quiet"]
    else:
        argv = ["evaluate", "--data", str(corpus / "valid.csv") if e.role == "checkpoint" else str(path),
                "--samples", "20"]
    argv += ["--checkpoint", str(path)] if e.role == "checkpoint" else ["--task", e.task]
    so, se = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
            rc = main(argv)
    except SystemExit as ex:
        rc = ex.code if isinstance(ex.code, int) else 1
    except Exception as err:  # noqa: BLE001
        return "traceback", f"{type(err).__name__}: {err}"
    written = out.exists() or Path(str(out) + ".part").exists()
    if rc == 2:
        msg = se.getvalue().strip().splitlines()[-1] if se.getvalue().strip() else ""
        if written:
            return "wrote_on_refusal", msg
        return ("refused" if _names_file(msg, e) else "refused_unnamed"), msg
    if rc != 0:
        return "traceback", f"exit {rc}: {se.getvalue()[-300:]}"
    from core import api

    marg = e.task == "halo_mass" and api.capabilities(_bundled("halo_mass")).any_subset   # the CLI's default model
    if command == "predict":
        valid = None
        if e.expect == "mask" and e.task == "halo_mass" and out.exists():
            valid = _read_valid(out)
        res = classify_success(e, valid=valid, marginalises=marg)
    else:
        try:
            n = int(json.loads(so.getvalue()).get("n", N_ROWS))
        except (ValueError, AttributeError):
            n = N_ROWS
        res = classify_success(e, n_scored=n, marginalises=marg)
    out.unlink(missing_ok=True)
    return res, ""


def _read_valid(path: Path) -> np.ndarray | None:
    from astropy.table import Table

    try:
        t = Table.read(path, format="ascii.csv", comment="#")
    except Exception:  # noqa: BLE001
        return None
    return np.asarray(t["valid"]) if "valid" in t.colnames else None


def _names_file(msg: str, e: Entry) -> bool:
    return e.name in msg


def run_entry(e: Entry, corpus: Path, out_dir: Path, modes=("api", "predict", "evaluate")) -> dict[str, Any]:
    """Outcome, message and seconds of every mode for one entry."""
    row: dict[str, Any] = {"name": e.name, "fmt": e.fmt, "kind": e.kind, "expect": e.expect}
    for mode in modes:
        t0 = time.perf_counter()
        try:
            with _alarm(HANG_S):
                res, msg = run_api(e, corpus) if mode == "api" else run_cli(e, corpus, mode, out_dir)
        except _Hang:
            res, msg = "timeout", f"still running after {HANG_S} s (stopped)"
        dt = time.perf_counter() - t0
        if dt > TIME_LIMIT_S and res == "refused":    # a refusal must come before any heavy work; runs that
            res = "slow"                             # give results are bounded by HANG_S (machine-load dependent)
        row[mode] = {"outcome": res, "message": msg[:400], "seconds": round(dt, 2)}
    return row


GOOD = {"refused", "masked", "ok"}


def warm_up(corpus: Path) -> None:
    """Import and load the bundled models once (JAX compile, torch import), so that run times measure the files."""
    run_api(Entry("valid.csv", "csv", "valid_control", "halo_mass", "ok"), corpus)
    run_api(Entry("valid.maps.h5", "map_stack", "valid_control", "exsitu_map", "ok"), corpus)
