"""AppTest: a labelled catalogue uploaded on the Data page (truth column mapped), fine-tuning the bundled flow on the
Train tab (held-out scores before/after, provenance on the card, checkpoint download); the typicality columns on the
Posterior page and in the Export file; the typical-vs-atypical scores on Evaluation."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from core import api  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "halo_mass_shifted_b13.csv"


def settle(at: AppTest, seconds: float = 300) -> AppTest:
    import time

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


@pytest.mark.skipif(not api.bundled_checkpoints("halo_mass"), reason="no bundled halo_mass checkpoints")
def test_finetune_on_an_uploaded_labelled_catalogue_then_posterior_export_evaluation():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.run()
    at.session_state["table"] = api.read_table(DATA.read_bytes(), filename=DATA.name)  # what the uploader stores
    at.session_state["table_name"] = DATA.name
    at.switch_page("pages/1_data.py").run()
    assert at.selectbox(key="map.log_mh").value == "log_mh"  # the truth column is mapped
    at.button(key="use_upload").click().run()
    clean(at)
    assert at.session_state["data"].has_truth and len(at.session_state["data"]) == 2000

    at.switch_page("pages/2_model.py").run()
    clean(at)
    opts = at.radio(key="train_start").options
    pick = next(o for o in opts if o == "fine-tune halo_mass_flow.gps")
    at.radio(key="train_start").set_value(pick).run()
    at.number_input(key="ft_epochs").set_value(5).run()
    at.button(key="train").click().run()
    settle(at)
    clean(at)
    m = at.session_state["model"]
    prov = m.card["provenance"]
    assert m.name == "flow" and prov["fine_tuned_from"]["checkpoint"] == "halo_mass_flow.gps"
    assert prov["note"].startswith("fine-tuned from halo_mass_flow.gps") and DATA.name in prov["note"]
    tm = m.card["test_metrics"]
    assert tm["n_test"] == 200 and tm["before_finetune"]["n_test"] == 200
    assert "Fine-tuned from halo_mass_flow.gps" in at.success[0].value
    assert len(at.session_state["train_scores"]) == 2  # this model, before fine-tuning
    ckpt = at.session_state["ckpt_bytes"][1]  # the download button's bytes: a loadable checkpoint with its card
    meta = json.loads(zipfile.ZipFile(io.BytesIO(ckpt)).read("metadata.json"))
    assert meta["provenance"]["fine_tuned_from"]["model"] == "flow" and "typicality" in meta
    assert api.load_checkpoint(ckpt).typicality.n == 1600

    at.switch_page("pages/3_posterior.py")
    settle(at)
    clean(at)
    post = at.session_state["post"]
    assert {"typicality_p", "atypical"} <= set(post.diagnostics)
    tables = [d.value for d in at.dataframe]
    assert any({"typicality_p", "atypical", "log_mh_median"} <= set(t.columns) for t in tables)
    assert any("atypical of the model's training inputs" in c.value for c in at.caption)

    at.switch_page("pages/5_export.py").run()
    at.selectbox(key="export_fmt").set_value("csv").run()
    at.button(key="export_prepare").click().run()
    clean(at)
    _, raw = at.session_state["export_file"]
    header = next(ln for ln in raw.decode().splitlines() if not ln.startswith("#"))
    assert "typicality_p" in header.split(",") and "atypical" in header.split(",")

    at.switch_page("pages/4_evaluation.py")
    settle(at)
    clean(at)
    rows = next(d.value for d in at.dataframe if "rows" in d.value.columns)  # typical vs atypical scores
    assert "typical" in set(rows["rows"]) and rows["n"].sum() == 200  # scored on the held-out part
