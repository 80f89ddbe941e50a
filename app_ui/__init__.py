"""The app's Streamlit helpers (the only Streamlit code outside ``app.py`` and ``pages/``).

* :mod:`app_ui.state` — per-tab session state, error display, caches, per-session engine lanes, table frames;
* :mod:`app_ui.jobs` — background jobs with progress, live content and Stop;
* :mod:`app_ui.forms` — forms generated from configs, the simulator tab, the model card;
* :mod:`app_ui.views` — one view module per data kind (``VIEWS``), which the pages route to;
* :mod:`app_ui.model_panel` — the Model page's tabs (generic over tasks).

Pages use ``import app_ui as ui``: the helpers of state, jobs and forms are re-exported here.
"""

from app_ui.forms import config_form, model_card, simulate_tab
from app_ui.panels import data_warnings, figures_download, validation_warnings, workflow_links
from app_ui.jobs import (
    Job,
    JobCancelled,
    compare_methods,
    job,
    job_panel,
    keyed_job,
    leave_pages,
    running,
    start_job,
    take_result,
    watch,
)
from app_ui.state import (
    app_tasks,
    bundled_model,
    catalog_frame,
    data,
    defaults,
    demo_count,
    demo_data,
    demo_seconds,
    engine,
    eval_data,
    frame,
    guard,
    model,
    need,
    on_engine,
    register_figure,
    results_key,
    rows_frame,
    set_data,
    set_model,
    show_figure,
    ss,
    task,
    user_waiting,
    task_name,
    warm_up,
)

__all__ = [
    "figures_download",
    "workflow_links",
    "config_form",
    "model_card",
    "simulate_tab",
    "Job",
    "compare_methods",
    "job",
    "job_panel",
    "keyed_job",
    "user_waiting",
    "demo_count",
    "watch",
    "demo_seconds",
    "data_warnings",
    "validation_warnings",
    "leave_pages",
    "JobCancelled",
    "running",
    "start_job",
    "take_result",
    "app_tasks",
    "bundled_model",
    "catalog_frame",
    "data",
    "defaults",
    "demo_data",
    "engine",
    "eval_data",
    "frame",
    "guard",
    "model",
    "need",
    "on_engine",
    "register_figure",
    "results_key",
    "rows_frame",
    "set_data",
    "set_model",
    "show_figure",
    "ss",
    "task",
    "task_name",
    "warm_up",
]
