"""Reading the project's YAML files (machines, solver presets, problems) with one-sentence errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from warpsched.scheduler.errors import InputError


def resolve(name_or_path: str | Path, folder: Path, what: str) -> Path:
    """A path as given, or `folder/<name>.yaml` for a bare name (listing the known names if absent)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    named = folder / f"{name_or_path}.yaml"
    if not named.exists():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise InputError(f"unknown {what} {str(name_or_path)!r}; use one of {known} or a path to a YAML file")
    return named


def read_yaml(path: Path, what: str) -> Any:
    text = read_text(path, what)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{what} file {str(path)!r} is not valid YAML ({first})") from None


def read_text(path: Path, what: str) -> str:
    """A text file's contents, or a one-sentence error for a missing, unreadable or binary file."""
    if not path.exists():
        raise InputError(f"{what} file {str(path)!r} does not exist")
    if path.is_dir():
        raise InputError(f"{what} file {str(path)!r} is a directory; give the path of a file")
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{what} file {str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{what} file {str(path)!r} cannot be read ({exc.strerror or exc})") from None
