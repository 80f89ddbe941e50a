"""One view per data kind: the pages route every step to the view of the current task's ``spec.data_kind``.

A view module implements the steps a page delegates (each takes the task spec first):

* ``data_page(spec)`` — upload / simulate, validation, preview;
* ``posterior_page(spec, data, model)`` — per-object summaries and the chosen object's posterior;
* ``evaluation_page(spec, data, model, ev)`` — scores and calibration on labelled data ``ev``;
* ``demo(spec) -> dict`` and ``demo_result(spec, shown: dict)`` — Home's one-click demo and its figure;
* ``NOUN`` — what a data set is called ("catalogue", "set of maps").

A task with a new data kind ("photometry", "field") adds one module here and one line in :data:`VIEWS`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["VIEWS", "view_for"]

#: data kind -> view module
VIEWS = {
    "catalog": "app_ui.views.catalog",
    "maps": "app_ui.views.maps",
    "multi_target_maps": "app_ui.views.multi_target_maps",
    "photometry": "app_ui.views.photometry",
    "field": "app_ui.views.field",
}


def view_for(spec) -> ModuleType:
    """The view module of ``spec.data_kind`` (a GPSError when the app has none)."""
    if spec.data_kind not in VIEWS:
        from core.errors import GPSError

        raise GPSError(
            f"the app has no view for {spec.data_kind!r} data",
            field="data_kind",
            expected=" | ".join(VIEWS),
            found=spec.data_kind,
        )
    return importlib.import_module(VIEWS[spec.data_kind])
