"""AppTest smoke tests: every page, the demo flow, the upload (mapping -> validation) flow, training, errors, tabs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import api  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
PAGES = ["pages/home.py", "pages/1_data.py", "pages/2_model.py", "pages/3_posterior.py", "pages/4_evaluation.py",
         "pages/5_export.py"]


@pytest.fixture(scope="module", autouse=True)
def checkpoints(tmp_path_factory):
    """The bundled checkpoints when shipped; otherwise a tiny flow trained here (a few seconds)."""
    if api.bundled_checkpoints("halo_mass"):
        yield api.CHECKPOINT_DIR
        return
    import torch

    torch.set_num_threads(2)
    d = tmp_path_factory.mktemp("ckpt")
    data = api.simulate("halo_mass", 1500, seed=3)
    tr, va = api.split(data, (0.85, 0.15), seed=0)
    m = api.train("halo_mass", "flow", tr, {"hidden": [16], "transforms": 1, "train": {"epochs": 3}}, val=va)
    api.save_checkpoint(m, d / "halo_mass_flow.gps")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api, "CHECKPOINT_DIR", d)
        yield d


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    return at


def settle(at: AppTest, seconds: float = 180) -> AppTest:
    """Re-run until a run starts after every background job of this session has finished (what the page's polling
    fragment does): that run has taken and drawn the results."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        at.run()
        jobs = at.session_state["jobs"] if "jobs" in at.session_state else {}
        if all(j.finished and j.started + j.seconds < t for j in jobs.values()):
            return at
        time.sleep(0.3)
    raise AssertionError("background job did not finish in time")


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_data(page):
    at = new_app()
    at.switch_page(page)
    at.run()
    clean(at)
    assert at.title and at.title[0].value


def test_demo_flow_then_every_page():
    at = new_app()
    t0 = time.perf_counter()
    at.button(key="load_demo").click().run()
    took = time.perf_counter() - t0
    clean(at)
    assert charts(at) == 1
    assert at.success and "First posterior on screen" in at.success[0].value
    print(f"demo click -> posterior in AppTest: {took:.2f} s")
    at.switch_page("pages/3_posterior.py")
    settle(at)
    clean(at)
    assert charts(at) >= 1 and "post" in at.session_state
    at.switch_page("pages/4_evaluation.py")
    settle(at)
    clean(at)
    assert charts(at) >= 5
    assert at.session_state["eval"]["n"] == api.task_obj("halo_mass").defaults.demo_size
    at.switch_page("pages/5_export.py").run()
    at.selectbox(key="export_fmt").set_value("csv").run()
    at.button(key="export_prepare").click().run()
    clean(at)
    fmt, data = at.session_state["export_file"]
    assert fmt == "csv" and data.count(b"\n") > api.task_obj("halo_mass").defaults.demo_size


def test_upload_flow_mapping_and_validation():
    at = new_app()
    raw = (ROOT / "assets" / "example_halo_mass.csv").read_bytes()
    at.session_state["table"] = api.read_table(raw, filename="example_halo_mass.csv")   # what the uploader stores
    at.session_state["table_name"] = "example_halo_mass.csv"
    at.switch_page("pages/1_data.py").run()
    clean(at)
    assert at.selectbox(key="map.log_mstar").value == "logMstar"       # auto-filled from the column name
    assert at.selectbox(key="map.log_mh").value == "log_Mh"
    at.button(key="use_upload").click().run()
    clean(at)
    assert len(at.session_state["data"]) == 300 and at.session_state["data"].has_truth
    report = at.session_state["report"]
    assert report.ok and {r["name"] for r in report.rows()} >= {"log_mstar", "g_r", "log_mh"}
    assert charts(at) >= 2
    # drop a column: it becomes "missing (not used)" in the report
    at.selectbox(key="map.conc").select_index(0).run()      # "— not used —"
    at.button(key="use_upload").click().run()
    assert "conc" not in at.session_state["data"].features
    assert "conc" in at.session_state["report"].missing


def test_simulate_train_and_stop_keeps_model():
    at = new_app()
    at.switch_page("pages/1_data.py").run()
    at.number_input(key="sim_n").set_value(1200).run()
    at.button(key="simulate").click().run()
    settle(at)
    clean(at)
    assert len(at.session_state["data"]) == 1200
    at.switch_page("pages/2_model.py").run()
    at.selectbox(key="train_model").set_value("flow").run()
    at.text_input(key="cfg.flow.hidden").set_value("16").run()
    at.number_input(key="cfg.flow.transforms").set_value(1).run()
    at.number_input(key="cfg.flow.train.epochs").set_value(3).run()
    at.button(key="train").click().run()
    settle(at)
    clean(at)
    m = at.session_state["model"]
    assert m.name == "flow" and len(m.history["epochs"]) == 3
    assert "Trained flow" in at.success[0].value
    assert at.session_state["test_index"].sum() > 0          # evaluation will use the held-out part
    assert charts(at) >= 1                                   # loss curves


def test_errors_show_as_messages_not_tracebacks():
    at = new_app()
    at.switch_page("pages/1_data.py").run()
    at.number_input(key="sim.logmh_min").set_value(14.0).run()
    at.number_input(key="sim.logmh_max").set_value(14.2).run()
    at.button(key="simulate").click().run()
    assert not at.exception
    assert at.error and "halo-mass range is too narrow" in at.error[0].value


def test_two_sessions_do_not_share_state():
    a, b = new_app(), new_app()
    a.button(key="load_demo").click().run()
    b.run()
    assert "data" in a.session_state and a.session_state["data"] is not None
    assert "data" not in b.session_state or b.session_state["data"] is None
