"""The application's Celery configuration is the package's own, whatever the worker's current directory holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = "from galaxy_tasks.celery_app import app; print(app.conf.task_acks_late, app.conf.task_default_queue)"


def test_a_celeryconfig_py_in_the_current_directory_does_not_replace_the_packages(tmp_path: Path) -> None:
    (tmp_path / "celeryconfig.py").write_text("task_acks_late = False\ntask_default_queue = 'stray'\n")
    shown = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True
    )
    assert shown.stdout.split() == ["True", "galaxy.periodic"]


def test_no_top_level_celeryconfig_module_is_installed() -> None:
    import galaxy_tasks.celeryconfig as ours

    assert Path(ours.__file__).parent.name == "galaxy_tasks"
    found = subprocess.run(
        [sys.executable, "-c", "import importlib.util; print(importlib.util.find_spec('celeryconfig'))"],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert found.stdout.strip() == "None"
