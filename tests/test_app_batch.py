"""AppTest of the Batch page: renders empty, refuses a bad path with a clear message, runs a small Parquet input on
thread workers to the end (parts done, rows, preview, download), and a rerun reuses every part."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
pytest.importorskip("distributed")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import api  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/6_batch.py"


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(PAGE).run()
    return at


def _finish(at: AppTest, seconds: float = 120) -> AppTest:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        at.run()
        job = at.session_state["batch_job"] if "batch_job" in at.session_state else None
        if job is None or job.finished:
            at.run()
            return at
        time.sleep(0.3)
    raise AssertionError("batch job did not finish in time")


def _start(at: AppTest, source: str, out: str) -> AppTest:
    at.text_input(key="batch_input").set_value(source)
    at.text_input(key="batch_out").set_value(out)
    at.number_input(key="batch_draws").set_value(20)
    at.number_input(key="batch_rows").set_value(200)
    at.number_input(key="batch_workers").set_value(1)
    at.checkbox(key="batch_threads").check()
    at.run()
    at.button(key="batch_start").click().run()
    return _finish(at)


def test_batch_page_runs_resumes_and_reports(tmp_path):
    at = _page()
    assert not at.exception and at.title[0].value == "Batch"
    _start(at, str(tmp_path / "nothing_here.parquet"), str(tmp_path / "bad"))
    assert not at.exception and any("input not found" in e.value for e in at.error)

    data = api.simulate("halo_mass", 500, seed=4)
    from core.data import io as dio

    dio.write(data.to_table(), tmp_path / "cat.parquet")
    at = _page()
    _start(at, str(tmp_path / "cat.parquet"), str(tmp_path / "out"))
    assert not at.exception and not at.error, [e.value for e in at.error]
    text = at.get("progress")[0].proto.text
    assert text.startswith("done: 3/3 parts, 0 failed, 500 rows"), text
    assert at.dataframe and len(at.dataframe[0].value) == 200
    assert "log_mh_mean" in at.dataframe[0].value.columns
    assert any("Results in" in s.value for s in at.success)
    at.button(key="batch_start").click().run()                     # same settings again: every part reused
    _finish(at)
    assert at.session_state["batch_job"].summary["skipped"] == 3
