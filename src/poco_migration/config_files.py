"""Where the project's files are, and reading its YAML configuration with errors that say
which file and why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# The checkout the package runs from (src/poco_migration/ is two levels down): its
# config/, expectations/ and var/. An image that installs the package elsewhere points
# at its files with the POCO_MIGRATION_* variables instead (Dockerfile).
PROJECT = Path(__file__).resolve().parents[2]


def read_yaml(source: Path, what: str, error: type[Exception], parse: Callable[[str], Any] = yaml.safe_load) -> Any:
    """``parse`` the file's text (``yaml.compose`` keeps line numbers); any failure is an ``error``."""
    try:
        return parse(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{source}: cannot read the {what}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc
