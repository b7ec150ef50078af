"""Reading the project's YAML configuration, with errors that say which file and why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def read_yaml(source: Path, what: str, error: type[Exception], parse: Callable[[str], Any] = yaml.safe_load) -> Any:
    """``parse`` the file's text (``yaml.compose`` keeps line numbers); any failure is an ``error``."""
    try:
        return parse(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{source}: cannot read the {what}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML: {exc}") from exc
