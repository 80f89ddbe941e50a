"""The Data page asks for h when a mapped unit is h-scaled and uses it; the validation warnings follow the data onto
the Posterior page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from astropy.table import Table  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_h_field_for_h_scaled_units_and_warnings_on_posterior():
    lg = np.linspace(9.0, 11.0, 40)
    lg[:3] = 12.8  # outside the training domain: warned, not refused
    t = Table({"mstar": 10**lg / 1e10 * 0.7, "log_sfr": np.zeros(40)})
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.session_state["table"], at.session_state["table_name"] = t, "h_scaled.csv"
    at.switch_page("pages/1_data.py").run()
    at.selectbox(key="map.log_mstar").set_value("mstar").run()
    at.selectbox(key="map.log_mh").set_value(None).run()
    assert "hubble_h" not in [w.key for w in at.number_input]  # no h-scaled unit yet: no h field
    at.text_input(key="unit.log_mstar.mstar").set_value("1e10 Msun/h").run()  # a CSV column without units
    assert at.number_input(key="hubble_h").value == pytest.approx(0.6774)
    at.number_input(key="hubble_h").set_value(0.7).run()
    at.button(key="use_upload").click().run()
    assert not at.exception and not at.error, [e.value for e in at.exception] + [e.value for e in at.error]
    cat = at.session_state["data"]
    np.testing.assert_allclose(cat.x[:, list(cat.features).index("log_mstar")], lg, atol=1e-6)
    assert any("outside the training domain" in w for w in at.session_state["report"].warnings)
    at.switch_page("pages/3_posterior.py").run()
    assert any("outside the training domain" in w.value for w in at.warning)
