"""core.batch: partitioned runs on a small Dask cluster, resume after a stop or a killed worker (checked by ids),
bad parts recorded without stopping the others, HATS in and out through lsdb, the CLI, and the WHERE parser."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")

from core import api  # noqa: E402
from core.batch import BatchConfig, Manifest, read_results, run_batch  # noqa: E402
from core.batch.refine import select_rows  # noqa: E402
from core.errors import GPSError  # noqa: E402

N = 2400
ROWS = 600


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as lc, \
            Client(lc) as cl:
        yield cl


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """A simulated halo_mass table as one Parquet file (ids 0..N-1, row groups of ROWS rows) and its CatalogData."""
    import pyarrow.parquet as pq

    d = tmp_path_factory.mktemp("batch_in")
    data = api.simulate("halo_mass", N, seed=11)
    path = d / "sim.parquet"
    from core.data import io as dio

    dio.write(data.to_table(), d / "one_group.parquet")
    pq.write_table(pq.read_table(d / "one_group.parquet"), path, row_group_size=ROWS)
    return path, data


def _ids_complete(out: Path, n: int) -> None:
    ids = read_results(str(out))["id"].to_numpy()
    assert len(ids) == n and len(np.unique(ids)) == n            # no row duplicated
    assert np.array_equal(np.sort(ids), np.arange(n))            # no row missing


def test_stop_then_resume_gives_every_row_once_and_matches_in_process(client, catalogue, tmp_path):
    path, data = catalogue
    cfg = BatchConfig(input=str(path), out=str(tmp_path / "run"), draws=64, partition_rows=ROWS, seed=5)
    stop = threading.Event()
    first = run_batch(cfg, client=client, stop=stop, progress=lambda st: stop.set() if st["done"] >= 1 else None)
    assert first["stopped"] and not first["ok"] and first["done"] < N // ROWS
    second = run_batch(cfg, client=client)
    assert second["ok"] and second["skipped"] == first["done"] and second["done"] == N // ROWS
    _ids_complete(tmp_path / "run", N)
    # part k used seed + k: its summaries equal the in-process posterior of the same rows with that seed
    model = api.load_bundled("halo_mass")
    sl = np.arange(ROWS, 2 * ROWS)
    post = api.posterior(model, data.subset(sl), n_samples=64, seed=5 + 1)
    import pandas as pd

    part = pd.read_parquet(tmp_path / "run" / "parts" / "part-00001.parquet")
    assert np.array_equal(part["id"].to_numpy(), sl)
    np.testing.assert_allclose(part["log_mh_mean"].to_numpy(), post.mean()[:, 0], rtol=0, atol=1e-9)
    m = Manifest.read(tmp_path / "run")
    assert len(m.data["runs"]) == 2 and m.counts() == {"done": N // ROWS, "failed": 0, "pending": 0}
    # the same command in a directory holding another run is refused, with what to do
    with pytest.raises(GPSError, match="another run"):
        run_batch(cfg.replace(draws=32), client=client)


def test_bad_file_is_recorded_and_the_others_finish(client, catalogue, tmp_path):
    import pandas as pd

    path, data = catalogue
    src = tmp_path / "in"
    src.mkdir()
    df = pd.read_parquet(path)
    df.iloc[:500].to_parquet(src / "a.parquet")
    df.iloc[500:800].assign(log_mstar=np.nan).to_parquet(src / "b.parquet")     # rows without the main input
    (src / "c.parquet").write_bytes(b"not a parquet file")
    s = run_batch(BatchConfig(input=str(src), out=str(tmp_path / "run"), draws=32, partition_rows=ROWS),
                  client=client)
    assert s["failed"] == 1 and s["done"] == 2 and not s["ok"]
    assert "c.parquet" in s["failures"][0]["error"] and "Parquet" in s["failures"][0]["error"]
    res = read_results(str(tmp_path / "run"))
    assert len(res) == 800 and res["id"].is_unique
    bad, good = res[res["id"] >= 500], res[res["id"] < 500]
    # the default flow marginalises missing inputs: rows without log M* get (wider) posteriors from the others,
    # and say how many inputs they lacked
    assert (bad["valid"] == 1).all() and (bad["missing_inputs"] == 1).all() and (good["missing_inputs"] == 0).all()
    std = next(c for c in res.columns if c.startswith("log_mh_") and ("std" in c or "sd" in c))
    assert bad[std].median() > 1.1 * good[std].median()          # 0.150 vs 0.125: SFR and colours trace M*
    assert (good["valid"] == 1).all()


def test_hats_catalogue_in_and_out_through_lsdb(client, catalogue, tmp_path):
    lsdb = pytest.importorskip("lsdb")
    _path, data = catalogue
    df = data.to_table().to_pandas().iloc[:1200]
    rng = np.random.default_rng(0)
    df["ra"] = rng.uniform(0, 360, len(df))
    df["dec"] = np.degrees(np.arcsin(rng.uniform(-1, 1, len(df))))
    lsdb.from_dataframe(df, ra_column="ra", dec_column="dec", lowest_order=0, highest_order=1,
                        partition_rows=300, margin_threshold=None).write_catalog(tmp_path / "hin", catalog_name="sim")
    s = run_batch(BatchConfig(input=str(tmp_path / "hin"), out=str(tmp_path / "run"), draws=32), client=client)
    assert s["ok"] and s["kind"] == "hats" and s["rows"] == 1200
    back = lsdb.open_catalog(str(tmp_path / "run" / "hats")).compute()
    assert len(back) == 1200 and set(back["id"]) == set(df["id"])
    assert np.isfinite(back["log_mh_mean"]).all()
    # the coordinates travel with each row
    merged = back.reset_index().merge(df, on="id", suffixes=("", "_in"))
    np.testing.assert_allclose(merged["ra"], merged["ra_in"])


def test_cli_csv_streamed_by_the_driver(catalogue, tmp_path, capsys):
    from core.__main__ import main

    _path, data = catalogue
    csv = tmp_path / "sim.csv"
    from core.data import io as dio

    dio.write(data.subset(np.arange(900)).to_table(), csv)
    out = tmp_path / "run"
    argv = ["batch", str(csv), "--out", str(out), "--draws", "32", "--partition-rows", "400", "--workers", "1",
            "--thread-workers", "--quiet"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kind"] == "table" and summary["parts"] == 3 and summary["rows"] == 900
    _ids_complete(out, 900)
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["skipped"] == 3
    assert main(["batch", str(tmp_path / "missing.csv"), "--out", str(out / "x"), "--thread-workers"]) == 2


def test_one_huge_row_group_is_streamed_by_the_driver(client, catalogue, tmp_path):
    path, _data = catalogue
    one = path.parent / "one_group.parquet"                  # a single row group of N rows
    s = run_batch(BatchConfig(input=str(one), out=str(tmp_path / "run"), draws=16, partition_rows=500), client=client)
    assert s["ok"] and s["parts"] == 5
    assert {p["kind"] for p in Manifest.read(tmp_path / "run").parts.values()} == {"table"}
    _ids_complete(tmp_path / "run", N)


def test_refine_where_selects_rows():
    cols = {"id": (np.arange(5), ""), "log_mh_std": (np.array([0.1, 0.4, np.nan, 0.5, 0.2]), ""),
            "outside_domain": (np.array([0, 0, 1, 0, 1]), ""), "valid": (np.array([1, 1, 0, 1, 1]), "")}
    assert select_rows("log_mh_std>0.3", cols).tolist() == [False, True, False, True, False]
    assert select_rows("outside_domain or log_mh_std>=0.5", cols).tolist() == [False, False, True, True, True]
    assert select_rows("outside_domain and id<3", cols).tolist() == [False, False, True, False, False]
    assert select_rows("invalid", cols).tolist() == [False, False, True, False, False]
    with pytest.raises(GPSError, match="unknown column"):
        select_rows("wide>1", cols)
    with pytest.raises(GPSError, match="condition"):
        select_rows("log_mh_std ~ 3", cols)


@pytest.mark.slow
def test_refine_hmc_runs_nuts_on_the_selected_rows(client, catalogue, tmp_path):
    path, _data = catalogue
    s = run_batch(BatchConfig(input=str(path), out=str(tmp_path / "run"), draws=64, partition_rows=1200,
                              refine_hmc="id<3 or id>=2398"), client=client)
    assert s["ok"]
    res = read_results(str(tmp_path / "run"))
    ref = res[res["refined"] == 1]
    assert sorted(ref["id"]) == [0, 1, 2, 2398, 2399]
    assert np.isfinite(ref["log_mh_hmc_mean"]).all() and (ref["hmc_rhat"] < 1.1).all()
    assert res[res["refined"] == 0]["log_mh_hmc_mean"].isna().all()
    assert (abs(ref["log_mh_hmc_mean"] - ref["log_mh_mean"]) < 3 * ref["log_mh_std"] + 0.1).all()


@pytest.mark.slow
def test_killed_worker_and_killed_run_resume_without_duplicates(catalogue, tmp_path):
    """Process workers: one is killed after the first part; Dask reruns its work, every id appears once. Then the
    whole run is killed (a subprocess) and the same command completes it."""
    import signal
    import subprocess
    import sys
    import time

    from distributed import Client, LocalCluster

    from core.batch.cluster import worker_env

    path, _data = catalogue
    cfg = BatchConfig(input=str(path), out=str(tmp_path / "run"), draws=64, partition_rows=300)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, env=worker_env(1),
                      dashboard_address=":0") as lc, Client(lc) as cl:
        killed = []

        def kill_one(st):
            if st["done"] >= 1 and not killed:
                pid = next(iter(cl.run(os.getpid).values()))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        s = run_batch(cfg, client=cl, progress=kill_one)
    assert killed and s["ok"], s
    _ids_complete(tmp_path / "run", N)

    out2 = tmp_path / "run2"
    cmd = [sys.executable, "-m", "core", "batch", str(path), "--out", str(out2), "--draws", "64",
           "--partition-rows", "300", "--workers", "2", "--quiet"]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out2 / "parts").glob("part-*.parquet")):
        time.sleep(0.5)
    proc.kill()
    proc.wait()
    done_before = Manifest.read(out2).counts()["done"]
    assert done_before < N // 300
    assert subprocess.run(cmd, cwd=root, capture_output=True).returncode == 0
    _ids_complete(out2, N)


def test_map_files_one_output_each_plus_index_and_a_bad_file(client, tmp_path):
    import pandas as pd

    stack = api.simulate("exsitu_map", 1, seed=3)
    src = tmp_path / "maps"
    src.mkdir()
    for i in range(2):
        stack.subset([i]).to_hdf5(src / f"g{i}.maps.h5")
    (src / "broken.maps.h5").write_bytes(b"not hdf5")
    s = run_batch(BatchConfig(input=str(src), out=str(tmp_path / "run"), task="exsitu_map", draws=8), client=client)
    assert s["kind"] == "maps" and s["done"] == 2 and s["failed"] == 1 and s["rows"] == 2
    index = pd.read_parquet(tmp_path / "run" / "index.parquet").set_index("input")
    assert index.loc[str(src / "broken.maps.h5"), "status"] == "failed"
    assert "broken.maps.h5" in index.loc[str(src / "broken.maps.h5"), "error"]
    import h5py

    for i in range(2):
        row = index.loc[str(src / f"g{i}.maps.h5")]
        assert row["status"] == "done" and row["objects"] == 1
        with h5py.File(tmp_path / "run" / row["output"]) as f:
            assert f["maps/mean"].shape[0] == 1


def test_run_batch_by_scheduler_address_and_overwrite(client, catalogue, tmp_path):
    path, _data = catalogue
    cfg = {"input": str(path), "out": str(tmp_path / "run"), "draws": 16, "partition_rows": 1000,
           "scheduler": client.scheduler.address}
    s = run_batch(cfg)
    assert s["ok"] and s["parts"] == 3 and s["rows"] == N
    s = run_batch({**cfg, "partition_rows": 1200, "overwrite": True})          # another run: old parts removed
    assert s["ok"] and s["parts"] == 2 and s["skipped"] == 0
    assert {p["kind"] for p in Manifest.read(tmp_path / "run").parts.values()} == {"parquet"}
    assert sorted(p.name for p in (tmp_path / "run" / "parts").iterdir()) == ["part-00000.parquet",
                                                                              "part-00001.parquet"]
    _ids_complete(tmp_path / "run", N)
    with pytest.raises(GPSError, match="draws"):
        run_batch({"input": str(path), "out": str(tmp_path / "x"), "draws": 0})


def test_exact_chunks_recut_any_chunk_sizes():
    from astropy.table import Table

    from core.batch.parts import _exact_chunks

    pieces = [Table({"id": np.arange(a, b)}) for a, b in ((0, 3), (3, 4), (4, 11), (11, 12))]
    got = [(s, list(t["id"])) for s, t in _exact_chunks(iter(pieces), 5)]
    assert got == [(0, [0, 1, 2, 3, 4]), (5, [5, 6, 7, 8, 9]), (10, [10, 11])]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only")
def test_local_workers_get_disjoint_cores_and_every_thread_is_pinned():
    """``--threads-per-worker 1`` means one core: the local cluster hands each worker its own cores, and
    :func:`pin_cores` confines threads already running (JAX's pool) as well as the caller's."""
    import subprocess
    import sys

    from core.batch.cluster import core_sets

    cores = sorted(os.sched_getaffinity(0))
    sets = core_sets(len(cores), 1)
    assert sets == [str(c) for c in cores]
    assert core_sets(len(cores) + 1, 1) is None  # more workers than cores: nothing is pinned
    if len(cores) >= 2:
        assert core_sets(1, 2) == [f"{cores[0]},{cores[1]}"]
    code = (
        "import os, threading, time\n"
        "from core.batch.cluster import pin_cores\n"
        "ev = threading.Event(); t = threading.Thread(target=ev.wait); t.start()\n"
        f"assert pin_cores('{cores[-1]}')\n"
        "allowed = set()\n"
        "for tid in os.listdir('/proc/self/task'):\n"
        "    allowed.add(frozenset(os.sched_getaffinity(int(tid))))\n"
        "ev.set(); t.join()\n"
        "print(sorted(sorted(a) for a in allowed))\n"
    )
    root = Path(__file__).resolve().parent.parent
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"[[{cores[-1]}]]"
    assert sorted(os.sched_getaffinity(0)) == cores  # the test process itself untouched


def test_sami_folder_one_part_per_galaxy_with_its_r_e(client, tmp_path):
    """A folder of SAMI kinematics files: the velocity and dispersion files of a galaxy make one part (grouped by
    their Data Central names), each gets the R_e given by id, and a galaxy missing its dispersion file fails alone,
    its message naming the missing file."""
    import pyarrow.parquet as pq

    from tests.core.data.test_maps_sami import write_sami, write_sami_pair, galaxy

    d = tmp_path / "sami"
    d.mkdir()
    write_sami_pair(d, catid=111)
    write_sami_pair(d, catid=222)
    g = galaxy()
    write_sami(d / "333_A_stellar-velocity_default_two-moment.fits", g["vel"], "VEL_ERR", g["VEL_ERR"], g["SNR"],
               catid=333)
    with pytest.raises(GPSError, match="R_e must be a number"):
        BatchConfig(input=str(d), out=str(tmp_path / "x"), task="exsitu_map", reff_arcsec="111=big")
    cfg = BatchConfig(input=str(d), out=str(tmp_path / "run"), task="exsitu_map", draws=8,
                      reff_arcsec="111=4.0,222=6.5,3.0")
    s = run_batch(cfg, client=client, log=lambda _m: None)
    assert s["parts"] == 3 and s["done"] == 2 and s["failed"] == 1, s["failures"]
    assert "stellar-velocity-dispersion" in s["failures"][0]["error"] or "sigma" in s["failures"][0]["error"]
    index = pq.read_table(tmp_path / "run" / "index.parquet").to_pydict()
    done = [o for o, st in zip(index["output"], index["status"]) if st == "done"]
    assert len(done) == 2 and index["objects"].count(1) == 2
