"""Real-browser end-to-end test: streamlit server on 127.0.0.1 + Debian's headless Chromium via Playwright.

Clicks "Load demo", checks the corner plot appears, uploads the example CSV, trains a tiny model, checks that no
exception box is shown, saves screenshots under artifacts/ and prints page-load and click-to-posterior times.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _checkpoint_dir(tmp_path: Path) -> str | None:
    """None when checkpoints are bundled; else a folder with a tiny flow checkpoint trained here."""
    from core import api

    if api.bundled_checkpoints("halo_mass"):
        return None
    data = api.simulate("halo_mass", 1500, seed=3)
    tr, va = api.split(data, (0.85, 0.15), seed=0)
    m = api.train("halo_mass", "flow", tr, {"hidden": [16], "transforms": 1, "train": {"epochs": 3}}, val=va)
    api.save_checkpoint(m, tmp_path / "halo_mass_flow.gps")
    return str(tmp_path)


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    ck = _checkpoint_dir(tmp_path)
    if ck:
        env["GPS_CHECKPOINT_DIR"] = ck
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                             str(port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start: " + (tmp_path / "server.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_demo_upload_train_in_chromium(server):
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(server)
            page.get_by_role("button", name="Load demo").wait_for(timeout=60_000)
            print(f"\npage load (navigation -> 'Load demo' button visible): {time.perf_counter() - t0:.2f} s")
            time.sleep(8)   # let the background warm-up finish, as a user reading the page would
            t0 = time.perf_counter()
            page.get_by_role("button", name="Load demo").click()
            page.locator(".js-plotly-plot").first.wait_for(timeout=120_000)
            took = time.perf_counter() - t0
            print(f"click 'Load demo' -> first posterior drawn: {took:.2f} s")
            page.get_by_text("First posterior on screen").wait_for(timeout=30_000)
            assert page.locator(".stException").count() == 0
            page.screenshot(path=str(ARTIFACTS / "home_demo.png"), full_page=True)

            page.goto(server + "/data")
            page.locator("input[type=file]").first.set_input_files(str(ROOT / "assets" / "example_halo_mass.csv"))
            page.get_by_role("button", name="Use this catalogue").click(timeout=60_000)
            page.get_by_text("Validation report").wait_for(timeout=60_000)
            page.get_by_text("Current catalogue: example_halo_mass.csv").wait_for(timeout=60_000)
            assert page.locator(".stException").count() == 0
            page.screenshot(path=str(ARTIFACTS / "data_upload.png"), full_page=True)

            page.get_by_role("link", name="Model").first.click()
            page.get_by_role("tab", name="Train a model").click()
            page.get_by_label("transforms", exact=True).first.wait_for(timeout=30_000)
            _set_number(page, "epochs", "3")
            _set_number(page, "transforms", "1")
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text("Trained flow").wait_for(timeout=180_000)
            assert page.locator(".stException").count() == 0
            page.screenshot(path=str(ARTIFACTS / "model_trained.png"), full_page=True)
            print(f"screenshots: {ARTIFACTS}/home_demo.png, data_upload.png, model_trained.png")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_failure.png"), full_page=True)
            raise
        finally:
            browser.close()


def _set_number(page, label: str, value: str) -> None:
    """Fill a number input by its label (inside closed expanders too) and commit it with Enter."""
    box = page.get_by_label(label, exact=True).first
    if not box.is_visible():
        page.get_by_text("train: Optimisation settings").click()
    box.fill(value)
    box.press("Enter")
    time.sleep(0.5)


CALIFA = ROOT / "tests" / "data" / "NGC4047_cut.pipe3d.hdf5"   # trimmed copy of the CALIFA Pipe3D file (tests/data/README.md)
SDSS_MGS = ROOT / "tests" / "data" / "photoz_SDSS_MGS_head40.train"  # first 40 rows of the MLZ SDSS MGS file


@contextmanager
def _task_demo(server: str, task: str, ready_text: str, what: str, failure_png: str):
    """A Chromium page on the app with ``task`` picked and its Load demo clicked (first posterior on screen, no
    exception box); prints the click-to-posterior time, screenshots ``failure_png`` if the body raises."""
    import re

    from core import api

    if not api.bundled_checkpoints(task):
        pytest.skip(f"no bundled {task} checkpoint")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(server)
            page.get_by_role("button", name="Load demo").wait_for(timeout=60_000)
            page.locator('[data-testid="stSelectbox"]').filter(has_text="Task").click()
            page.get_by_role("option", name=re.compile(f"^{task}")).click()
            page.get_by_text(ready_text, exact=False).first.wait_for(timeout=30_000)  # the task's description
            t0 = time.perf_counter()
            page.get_by_role("button", name="Load demo").click()
            page.get_by_text("First posterior on screen").wait_for(timeout=120_000)
            print(f"\n{task}: click 'Load demo' -> {what}: {time.perf_counter() - t0:.2f} s")
            page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
            time.sleep(1)
            assert page.locator(".stException").count() == 0
            yield page
        except Exception:
            page.screenshot(path=str(ARTIFACTS / failure_png), full_page=True)
            raise
        finally:
            browser.close()


def _upload_then_posterior(page, path, loaded_text: str) -> None:
    """On Data, upload ``path`` and wait for ``loaded_text``; then open the Posterior page."""
    page.get_by_role("link", name="Data").first.click()
    page.locator("input[type=file]").first.set_input_files(str(path))
    page.get_by_text(loaded_text).wait_for(timeout=60_000)
    page.get_by_role("link", name="Posterior").first.click()


def test_exsitu_map_demo_and_real_file_in_chromium(server):
    """Pick the ex-situ map task, Load demo (posterior maps), upload the real CALIFA Pipe3D file, see its maps."""
    with _task_demo(server, "exsitu_map", "ex-situ", "posterior maps drawn", "browser_failure_maps.png") as page:
        page.screenshot(path=str(ARTIFACTS / "exsitu_demo.png"), full_page=True)
        _upload_then_posterior(page, CALIFA, f"Current data: {CALIFA.name}")
        page.get_by_text("regridded onto the model grid").wait_for(timeout=120_000)
        page.locator(".js-plotly-plot").nth(1).wait_for(timeout=60_000)
        assert page.locator(".stException").count() == 0
        assert page.locator('[data-testid="stAlert"]').filter(has_text="error").count() == 0
        page.screenshot(path=str(ARTIFACTS / "exsitu_califa_posterior.png"), full_page=True)
        print(f"screenshots: {ARTIFACTS}/exsitu_demo.png, exsitu_califa_posterior.png")


def test_photoz_demo_and_real_table_in_chromium(server):
    """Pick the photo-z task, Load demo (p(z) with the exact p(z) overlaid, z-age contours), upload a real SDSS MGS
    table (MLZ '#'-header format), see its p(z) and the z_phot - z_spec evaluation."""
    with _task_demo(server, "photoz", "ugriz magnitudes", "first p(z) on screen", "browser_failure_photoz.png") as page:
        page.screenshot(path=str(ARTIFACTS / "photoz_demo.png"), full_page=True)
        _upload_then_posterior(page, SDSS_MGS, f"Current catalogue: {SDSS_MGS.name}")
        page.get_by_text("No exact p(z)").wait_for(timeout=120_000)
        page.locator(".js-plotly-plot").first.wait_for(timeout=60_000)
        assert page.locator(".stException").count() == 0
        page.get_by_role("link", name="Evaluation").first.click()
        page.get_by_text("Per redshift bin and galaxy type").wait_for(timeout=120_000)
        assert page.locator(".stException").count() == 0
        page.screenshot(path=str(ARTIFACTS / "photoz_sdss_evaluation.png"), full_page=True)
        print(f"screenshots: {ARTIFACTS}/photoz_demo.png, photoz_sdss_evaluation.png")
