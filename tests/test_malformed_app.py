"""Malformed-but-readable catalogues through the app's upload path (AppTest): a message, never an exception box."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from tests.corpus.generate import _table, _value_kinds, base_columns  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "app.py")
CASES = {  # corpus kind -> (level, text the message must contain)
    "linear_mass": ("error", "units={'log_mstar': 'solMass'}"),
    "sim_units_1e10_msun_h": ("error", "1e10 Msun/h"),
    "conc_1e6": ("warning", "2 row(s) refused"),
    "sentinel_m99_30pct": ("warning", "sentinel value(s) of log_sfr"),
}


def test_upload_path_shows_unit_mistakes_refused_rows_and_sentinels():
    kinds = {k: fn for k, fn, _, _ in _value_kinds()}
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    for kind, (level, needle) in CASES.items():
        table = _table(kinds[kind](base_columns()))
        table.meta["source_file"] = f"{kind}.csv"
        at.session_state["table"] = table                   # what the uploader stores after api.read_table
        at.session_state["table_name"] = f"{kind}.csv"
        at.switch_page("pages/1_data.py").run()
        at.button(key="use_upload").click().run()
        assert not at.exception, (kind, [e.value for e in at.exception])
        shown = [m.value for m in (at.error if level == "error" else at.warning)]
        assert any(needle in m and f"{kind}.csv" in m for m in shown), (kind, shown)
