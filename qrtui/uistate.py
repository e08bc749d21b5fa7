"""Small choices the TUI remembers between starts, per configuration file: the last remote
and store of the query form. Best effort: a file that cannot be read or written is only a
default forgotten."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import platformdirs

from qrtui.config import APP_NAME


def _path() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME)) / "ui-state.json"


def _load() -> dict[str, dict[str, str]]:
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(_path().read_text(encoding="utf-8"))
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if isinstance(v, dict)}
    return {}


def last_choice(config_path: Path) -> dict[str, str]:
    return _load().get(str(config_path.resolve()), {})


def remember_choice(config_path: Path, **choice: str) -> None:
    data = _load()
    data[str(config_path.resolve())] = choice
    path = _path()
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temp, path)
