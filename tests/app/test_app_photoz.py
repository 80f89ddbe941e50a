"""AppTest flows of the photometry view (task photoz): demo, Data (simulate, colour plots), Posterior (p(z) with the
exact p(z), z-age contours, multi-modal flags), Evaluation (z_phot vs z_spec, PIT, per-bin table), Export (p(z) on a
grid); and a real MLZ table with spec-z."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import api  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
SDSS = ROOT / "tests" / "data" / "photoz_SDSS_MGS_head40.train"


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=240)
    at.run()
    at.selectbox(key="task_picker").set_value("photoz").run()
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
def test_photoz_pages_render_without_data(page):
    at = new_app()
    at.switch_page(page).run()
    clean(at)
    assert at.title and at.title[0].value


def test_photoz_demo_then_simulated_set_through_every_page():
    at = new_app()
    at.button(key="load_demo").click().run()
    clean(at)
    assert charts(at) == 1 and "First posterior on screen" in at.success[0].value
    model = at.session_state["model"]
    assert model.name == api.get_task("photoz").models[0]  # the bundled default (joint posterior)

    at.switch_page("pages/1_data.py").run()
    at.number_input(key="sim_n").set_value(300).run()
    at.button(key="simulate").click().run()
    settle(at)
    clean(at)
    assert len(at.session_state["data"]) == 300
    assert charts(at) == 2  # colour-colour and colour-redshift

    at.switch_page("pages/3_posterior.py")
    settle(at)
    clean(at)
    post = at.session_state["post"]
    assert post.n == 300 and "age" in post.params
    assert charts(at) == 2  # p(z) with the exact p(z), z-age contours
    assert '"name":"exact"' in at.get("plotly_chart")[0].proto.spec.replace(" ", "")
    assert any(m.label == "multi-modal p(z)" for m in at.metric)

    at.switch_page("pages/4_evaluation.py")
    settle(at)
    clean(at)
    res = at.session_state["eval_pz"]
    assert 0 < res["scores"]["sigma_nmad"] < 0.1 and "kl_to_exact" in res["scores"]
    assert {"quiescent", "star_forming"} <= set(res["groups"])
    assert charts(at) == 2  # z_phot vs z_spec, PIT

    at.switch_page("pages/5_export.py").run()
    at.selectbox(key="export_fmt").set_value("csv").run()
    at.button(key="export_prepare").click().run()
    clean(at)
    fmt, data = at.session_state["export_file"]
    header = next(line for line in data.decode().splitlines() if not line.startswith("#"))
    assert fmt == "csv" and "z_median" in header and "n_peaks" in header and header.count("pz_") > 100
    assert data.count(b"\n") > 300


def test_photoz_real_table_with_specz():
    at = new_app()
    at.session_state["data"] = api.read_data(SDSS, "photoz")
    at.session_state["data_label"] = SDSS.name
    at.session_state["model"] = api.load_bundled("photoz", "flow")
    at.switch_page("pages/1_data.py").run()
    clean(at)
    assert charts(at) == 2
    at.switch_page("pages/3_posterior.py")
    settle(at)
    clean(at)
    assert charts(at) == 1  # p(z) only (flow), no exact p(z) for a real file
    assert '"name":"exact"' not in at.get("plotly_chart")[0].proto.spec.replace(" ", "")
    assert any("No exact p(z)" in c.value for c in at.caption)
    at.switch_page("pages/4_evaluation.py")
    settle(at)
    clean(at)
    sc = at.session_state["eval_pz"]["scores"]
    assert sc["n"] >= 30 and "kl_to_exact" not in sc
