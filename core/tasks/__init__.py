"""Task registry: what is inferred from what (schemas with units), the data adapter, the models and the defaults.

Each task is one package ``core/tasks/<name>/`` that builds a :class:`~core.tasks.base.Task` and registers it;
:data:`TASK_PACKAGES` lists them (adding a task = one folder + one line here). Packages are imported on the first
lookup, so ``import core.tasks`` stays cheap (no numpy, torch or jax).

A task's *inputs* and *targets* are :class:`Quantity` specs. Readers map a file's columns onto these names
(``aliases`` help the automatic mapping; ``unit`` is the canonical unit every value is converted to).
The UI menus, the checkpoint loader and parametrized tests all read :data:`TASKS`.
"""

from __future__ import annotations

from core.tasks.base import (
    TASK_OBJECTS,
    TASKS,
    Capabilities,
    DataAdapter,
    Definition,
    Quantity,
    ResultWriter,
    Task,
    TaskDefaults,
    TaskSpec,
    get_task,
    get_task_obj,
    register_task,
)

__all__ = [
    "Definition",
    "Quantity",
    "TaskSpec",
    "TASKS",
    "get_task",
    "get_task_obj",
    "TASK_PACKAGES",
    "TASK_OBJECTS",
    "register_task",
    "Task",
    "Capabilities",
    "TaskDefaults",
    "DataAdapter",
    "ResultWriter",
    "all_tasks",
]

#: the task packages, in menu order (first = the app's default task)
TASK_PACKAGES = ("halo_mass", "exsitu_map", "central_mass", "photoz", "dm_to_galaxies")


def all_tasks() -> list[Task]:
    """Every registered :class:`Task`, in registry order."""
    return [TASK_OBJECTS.get(n) for n in TASKS.names()]
