"""The Task shape: adapters and writers given in a simpler form are normalized once at registration; the lazy
registries fill themselves from the task packages; the defaults live in one place."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from core.errors import GPSError
from core.tasks.base import DataAdapter, ResultWriter, _as_adapter


def test_adapter_like_objects_become_data_adapters():
    calls = []
    obj = SimpleNamespace(
        simulate=lambda n, seed, config: calls.append((n, seed)) or "data",
        read=lambda p: p,
        prepare=lambda m, d: d,
        unit="field",
    )
    a = _as_adapter(obj)
    assert isinstance(a, DataAdapter) and a.unit == "field" and not a.table_input and a.check_save is None
    assert a.simulate(5, 2, None, False) == "data" and calls == [(5, 2)]  # use_cache accepted and dropped
    with pytest.raises(GPSError, match="no file format"):
        a.save("data", "out.h5")


def test_plain_writer_function_is_wrapped(tmp_path):
    got = {}
    w = ResultWriter(lambda post, data, path, fmt, *, provenance, save_samples=False: got.update(fmt=fmt))
    w("post", "data", tmp_path / "x.csv", "csv", provenance={})
    assert got == {"fmt": "csv"} and w.formats == ("csv", "fits", "hdf5")


def test_registries_load_the_task_packages_on_first_lookup():
    import subprocess
    import sys

    code = (
        "import sys, core.tasks as t; assert 'core.tasks.halo_mass' not in sys.modules; "
        "names = t.TASKS.names(); assert names[:3] == ['halo_mass', 'exsitu_map', 'central_mass'], names; "
        "assert t.get_task_obj('exsitu_map').defaults.draws == 100"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
