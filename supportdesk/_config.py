"""Loading the data files of config/: packaged defaults, optionally overridden by a folder."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from supportdesk.errors import ConfigError

__all__ = ["config_path", "load_jsonl", "load_yaml"]


def config_path(name: str, override_dir: Path | None = None) -> Path:
    """Path of a config file: ``override_dir/name`` if it exists there, else the packaged one."""
    if override_dir is not None:
        candidate = Path(override_dir) / name
        if candidate.exists():
            return candidate
    packaged = Path(str(resources.files("supportdesk.config").joinpath(name)))
    if not packaged.exists():
        raise ConfigError(f"config file {name!r} not found (looked in {override_dir or 'nowhere'} and the package)")
    return packaged


def load_yaml(name: str, override_dir: Path | None = None) -> Any:
    """Parse a YAML config file; a syntax error becomes a one-line :class:`ConfigError`."""
    path = config_path(name, override_dir)
    try:
        with path.open(encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"broken YAML in {path}{where}: {problem}") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    if data is None:
        raise ConfigError(f"{path} is empty")
    return data


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read a JSON-lines file; a bad line becomes a :class:`ConfigError` naming the line."""
    rows: list[dict[str, Any]] = []
    try:
        with Path(path).open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{path} line {number}: invalid JSON ({exc.msg})") from exc
                if not isinstance(row, dict):
                    raise ConfigError(f"{path} line {number}: expected a JSON object")
                rows.append(row)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return rows
