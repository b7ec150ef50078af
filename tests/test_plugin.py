"""Airflow's plugin loader imports every ``.py`` under the plugins folder as a bare module.

The api-server, the scheduler and the workers call ``ensure_plugins_loaded()``; before
the package moved to ``src/``, that left ``plan``, ``cli``, ``seed``, ``tasks``... in
``sys.modules`` beside ``poco_migration.*``. The plugins folder now holds only the
plugin's registration, which imports the installed package.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

# Loaded the way Airflow's programs load it, in a fresh interpreter (the test session's
# own imports must not hide or fake anything).
PROBE = """
import json, sys
before = set(sys.modules)
from airflow import plugins_manager
plugins_manager.ensure_plugins_loaded()
apps, _ = plugins_manager.get_fastapi_plugins()
plugins, errors = plugins_manager._get_plugins()
print(json.dumps({
    "new": sorted(set(sys.modules) - before),
    "plugins": [p.name for p in plugins],
    "errors": errors,
    "apps": [a["url_prefix"] for a in apps],
}))
"""


def project_module_names() -> set[str]:
    """The bare name of every module and package of the runtime and the tools."""
    names = set()
    for package in ("poco_migration", "poco_migration_tools"):
        for path in (REPO / "src" / package).rglob("*.py"):
            names.add(path.parent.name if path.name == "__init__.py" else path.stem)
    return names - {"poco_migration", "poco_migration_tools"}


def test_the_plugins_folder_holds_only_the_plugin() -> None:
    assert sorted(p.name for p in (REPO / "plugins").iterdir() if p.name != "__pycache__") == [
        "poco_migration_plugin.py"
    ]


def test_loading_the_plugins_imports_no_module_of_the_project_under_a_bare_name(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])

    assert loaded["errors"] == {}
    assert "poco_migration" in loaded["plugins"]
    assert "/poco-migration" in loaded["apps"]
    bare = project_module_names() & set(loaded["new"])
    assert bare == set(), f"imported under a bare name: {sorted(bare)}"
    assert {"plan", "cli", "seed", "tasks", "bench", "pipeline", "redirects"} <= project_module_names()
    assert not any(m.startswith("poco_migration_tools") for m in loaded["new"]), "the runtime imported the tools"
