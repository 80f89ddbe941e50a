"""Plausibility (sentinels, unit mistakes, refused rows), duplicate columns, ambiguous formats, output sanity."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table

from core.data.io import registry
from core.data.io.registry import FORMATS, FormatSpec, check_declared_size, identify_format
from core.data.io.tables import read_table
from core.data.schema import to_catalog
from core.errors import GPSError
from core.inference.posterior import Posterior
from core.inference.sanity import FLAG_NONFINITE, FLAG_REFUSED_INPUT, check_posterior, checked_posterior


def _t(**cols) -> Table:
    t = Table({k: np.asarray(v) for k, v in cols.items()})
    t.meta["source_file"] = "cat.csv"
    return t


def test_sentinels_outside_the_plausible_range_are_missing_and_counted():
    t = _t(log_mstar=[10.0, 10.5, 11.0, 9.8], log_sfr=[0.1, -99.0, 9999.0, -0.3])
    cat, rep = to_catalog(t, "halo_mass")
    assert np.isnan(cat.x[1, 1]) and np.isnan(cat.x[2, 1]) and cat.x[0, 1] == 0.1
    fr = {f.name: f for f in rep.features}["log_sfr"]
    assert fr.n_sentinel == 2 and "2 sentinel value(s)" in fr.conversion
    assert any("sentinel" in w and "read as missing" in w for w in rep.warnings)


def test_a_plausible_99_is_not_a_sentinel():
    from core.data.plausible import screen

    res = screen("x", "", (0.0, 200.0), np.array([99.0, 10.0]))
    assert res.n_sentinel == 0 and res.values[0] == 99.0


@pytest.mark.parametrize("values, cause, fix", [
    (10 ** np.linspace(9.5, 11.2, 20), "linear, not log10", "units={'log_mstar': 'solMass'}"),
    (10 ** np.linspace(9.5, 11.2, 20) / 1e10 * 0.7, "1e10 Msun/h", "units={'log_mstar': '1e10 solMass / h'}"),
])
def test_unit_mistakes_are_named_with_the_fix(values, cause, fix):
    with pytest.raises(GPSError) as ei:
        to_catalog(_t(log_mstar=values), "halo_mass")
    msg = str(ei.value)
    assert "cat.csv [log_mstar]" in msg and cause in msg and fix in msg


def test_the_declared_fix_then_reads_the_values():
    vals = 10 ** np.linspace(9.5, 11.2, 20) / 1e10 * 0.7
    cat, _ = to_catalog(_t(log_mstar=vals), "halo_mass", units={"log_mstar": "1e10 solMass / h"}, h=0.7)
    np.testing.assert_allclose(cat.x[:, 0], np.linspace(9.5, 11.2, 20))


def test_implausible_rows_are_refused_with_reason_and_order_kept():
    ms = np.linspace(9.5, 11.0, 10)
    ms[[2, 7]] = [1e300, -5.0]
    cat, rep = to_catalog(_t(log_mstar=ms), "halo_mass")
    assert len(cat) == 10 and set(rep.refused_rows) == {2, 7}
    assert np.isnan(cat.x[[2, 7], 0]).all() and np.isfinite(cat.x[[0, 1, 3], 0]).all()
    assert "plausible range [5, 13]" in cat.extra["refused"][2] and cat.extra["refused"][0] == ""
    assert {f.name: f for f in rep.features}["log_mstar"].n_refused == 2


def test_mostly_implausible_column_is_refused():
    with pytest.raises(GPSError, match=r"cat.csv \[g_r\]: .* outside the plausible range"):
        to_catalog(_t(log_mstar=np.full(5, 10.0), g_r=np.full(5, 17.5)), "halo_mass")


def test_duplicate_column_names_are_refused_naming_both_positions(tmp_path):
    p = tmp_path / "dup.csv"
    p.write_text("log_mstar,log_sfr,log_mstar\n10,0.1,1e6\n11,0.2,2e6\n")
    with pytest.raises(GPSError, match=r"dup.csv \[header\]: duplicated column name 'log_mstar' \(columns 1 and 3\)"):
        read_table(p)


def test_latin1_and_utf16_text_tables_are_read(tmp_path):
    text = "# from M\xfcnchen\nlog_mstar,log_sfr\n10.0,0.1\n11.0,0.2\n"
    for enc, name in (("latin-1", "a.csv"), ("utf-16", "b.csv")):
        p = tmp_path / name
        p.write_bytes(text.encode(enc))
        t = read_table(p)
        assert list(t["log_mstar"]) == [10.0, 11.0]


def test_truncated_last_row_is_refused(tmp_path):
    p = tmp_path / "cut.csv"
    p.write_text("log_mstar,log_sfr,g_r\n10.0,0.1,0.5\n11.0,0.2")
    with pytest.raises(GPSError, match=r"cut.csv \[last row\]: the last row has 2 field\(s\)"):
        read_table(p)


def test_ambiguous_claims_are_refused_naming_both(tmp_path, monkeypatch):
    p = tmp_path / "x.zz"
    p.write_bytes(b"zzzz")
    for n in ("zz_a", "zz_b"):
        monkeypatch.setitem(FORMATS._items, n, FormatSpec(n, "zz", f"{n} reader", (".zz",),
                                                          lambda path, head: head.startswith(b"zz"), None, priority=5))
    with pytest.raises(GPSError, match=r"x.zz \[format\]: ambiguous file.*zz_a.*and zz_b"):
        identify_format(p, kind="zz")
    monkeypatch.setitem(FORMATS._items, "zz_c", FormatSpec("zz_c", "zz", "specialised", (".zz",),
                                                           lambda path, head: True, None, priority=9))
    assert identify_format(p, kind="zz") == "zz_c"


def test_reader_failures_become_messages_naming_file_and_format(tmp_path):
    def boom(path, **kw):
        raise ValueError("setting an array element with a sequence")

    with pytest.raises(GPSError, match=r"f.dat \[fmt\]: cannot read this file as fmt .*ValueError: setting"):
        registry.guarded(boom, str(tmp_path / "f.dat"), "fmt")


def test_declared_size_limit_and_its_environment_override(monkeypatch):
    with pytest.raises(GPSError, match=r"declared size too large.*GPS_MAX_CELLS"):
        check_declared_size(2e12, "big.fits", "HDU 1", "NAXISn")
    monkeypatch.setenv("GPS_MAX_CELLS", "3e12")
    check_declared_size(2e12, "big.fits", "HDU 1", "NAXISn")


def test_nonfinite_draws_are_masked_and_all_nonfinite_refused():
    s = np.random.default_rng(0).normal(size=(4, 50, 1))
    s[1, 3, 0] = np.nan
    post = check_posterior(Posterior(params=("y",), units=("",), samples=s.copy()))
    assert list(post.valid) == [True, False, True, True] and post.diagnostics["flag"][1] == FLAG_NONFINITE
    assert np.isnan(post.summaries()["y_mean"][1]) and np.isfinite(post.summaries()["y_mean"][0])
    with pytest.raises(GPSError, match="no finite posterior"):
        check_posterior(Posterior(params=("y",), units=("",), samples=np.full((3, 5, 1), np.nan)), source="f.csv")


def test_refused_rows_are_not_given_to_the_model_and_come_back_masked():
    seen = {}

    class Model:
        name = "toy"

        def posterior(self, data, n_samples=10, seed=0):
            seen["n"] = len(data)
            assert np.isfinite(data.x).all()
            return Posterior(params=("log_mh",), units=("dex(solMass)",),
                             samples=np.repeat(data.x[:, :1, None], n_samples, axis=1))

    ms = np.linspace(9.5, 11.0, 6)
    ms[4] = 1e300
    cat, _ = to_catalog(_t(log_mstar=ms), "halo_mass")
    post = checked_posterior(Model(), cat, n_samples=5)
    assert seen["n"] == 5 and post.n == 6 and list(post.valid) == [1, 1, 1, 1, 0, 1]
    assert post.diagnostics["flag"][4] == FLAG_REFUSED_INPUT
    np.testing.assert_allclose(post.mean()[[0, 5], 0], ms[[0, 5]])


def test_refused_rows_are_dropped_for_training():
    from core.inference.sanity import drop_refused

    ms = np.linspace(9.5, 11.0, 6)
    ms[1] = -5.0
    cat, _ = to_catalog(_t(log_mstar=ms, log_mh=np.full(6, 12.0)), "halo_mass")
    kept = drop_refused(cat)
    assert len(kept) == 5 and np.isfinite(kept.x).all() and list(kept.ids) == [0, 2, 3, 4, 5]


def test_rows_missing_an_input_are_masked_when_the_model_cannot_marginalize():
    from core.inference.sanity import FLAG_MISSING_INPUT
    from core.models.base import refuse_missing

    class Model:
        name = "toy"

        def posterior(self, data, n_samples=10, seed=0):
            refuse_missing(data.x, data.features, self.name)
            return Posterior(params=("log_mh",), units=("dex(solMass)",),
                             samples=np.repeat(data.x[:, :1, None], n_samples, axis=1))

    cat, rep = to_catalog(_t(log_mstar=np.linspace(9.5, 11.0, 5), log_sfr=[0.1, -99.0, 0.2, 0.3, -99.0]), "halo_mass")
    post = checked_posterior(Model(), cat, n_samples=4)
    assert list(post.valid) == [1, 0, 1, 1, 0] and list(post.diagnostics["flag"]) == [0, 3, 0, 0, 3]
    assert FLAG_MISSING_INPUT == 3 and post.info["missing_rows"] == 2
    every, rep = to_catalog(_t(log_mstar=[10.0, 11.0], log_sfr=[0.1, 0.2]), "halo_mass")
    every.x[:, every.features.index("log_sfr")] = np.nan
    with pytest.raises(GPSError, match="cannot marginalize"):       # every row missing: refused, nothing to give
        checked_posterior(Model(), every)
    # a column with no value at all (here only sentinels) is an input not provided, with a warning
    empty, rep = to_catalog(_t(log_mstar=[10.0, 11.0], log_sfr=[-99.0, -99.0]), "halo_mass")
    assert "log_sfr" not in empty.features and any("no finite values" in w for w in rep.warnings)
