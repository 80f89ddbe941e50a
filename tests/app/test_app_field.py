"""AppTest flows of the field view (task dm_to_galaxies): pages without data, then simulated fields with a quickly
fitted model through Data (DM slice), Posterior (side-by-side panels with the oracle, P(k)/T(k)/r(k)), Evaluation
(metric table with the oracle row, PR curve, one-point PDF) and Export (HDF5 of the predicted fields); the Home demo
with the bundled default model."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import api  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TASK = "dm_to_galaxies"


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.selectbox(key="task_picker").set_value(TASK).run()
    return at


def settle(at: AppTest) -> AppTest:
    from tests.app.test_app import settle as _settle

    return _settle(at, 240)


def clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


@pytest.mark.parametrize("page", ["pages/1_data.py", "pages/3_posterior.py", "pages/4_evaluation.py"])
def test_field_pages_render_without_data(page):
    at = new_app()
    at.switch_page(page).run()
    clean(at)
    assert at.title and at.title[0].value


def test_simulated_fields_through_every_page(tmp_path, monkeypatch):
    monkeypatch.setenv("GPS_CACHE_DIR", str(tmp_path / "cache"))
    data = api.simulate(TASK, 3, seed=4, config={"n_grid": 32})
    model = api.train(TASK, "threshold", data, {"n_bins": 8})
    at = new_app()
    at.session_state["data"], at.session_state["data_label"] = data, "3 simulated fields"
    at.session_state["model"] = model
    at.switch_page("pages/1_data.py").run()
    clean(at)
    assert charts(at) == 1  # the DM slice

    at.switch_page("pages/3_posterior.py")
    settle(at)
    clean(at)
    post = at.session_state["post"]
    assert post.prob.shape == data.dm.shape
    assert charts(at) == 2  # side-by-side panels, P(k) / T(k) / r(k)
    assert "oracle" in at.get("plotly_chart")[0].proto.spec  # the oracle panel

    at.switch_page("pages/4_evaluation.py")
    settle(at)
    clean(at)
    rows = at.session_state["eval_field"]["rows"]
    assert set(rows) == {"threshold", "oracle"} and 0 < rows["oracle"][1]["pr_auc"] <= 1
    assert charts(at) == 2  # PR curve, one-point PDF

    at.switch_page("pages/5_export.py").run()
    at.selectbox(key="export_fmt").set_value("hdf5").run()
    at.button(key="export_prepare").click().run()
    clean(at)
    import h5py

    fmt, blob = at.session_state["export_file"]
    with h5py.File(io.BytesIO(blob), "r") as f:
        assert fmt == "hdf5" and f["prob"].shape == data.dm.shape and f.attrs["box_size"] == data.box_size


def test_field_demo_uses_the_bundled_default_model():
    at = new_app()
    at.button(key="load_demo").click().run()
    clean(at)
    assert charts(at) == 1 and "First galaxy field on screen" in at.success[0].value
    assert at.session_state["model"].name == api.get_task(TASK).models[0]
