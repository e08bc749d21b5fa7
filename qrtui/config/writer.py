"""Writing the configuration back: atomically, keeping the user's comments where it can,
with a backup and a question where it cannot."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from qrtui.config.checks import (
    _CLIENT_KEYS,
    _PROFILE_KEYS,
    _REMOTE_KEYS,
    _STORE_KEYS,
    parse_config,
)
from qrtui.config.destinations import Destination
from qrtui.config.keys import read_table
from qrtui.config.nodes import ClientConfig, Config, ConfigError, Profile, RemoteNode, StoreNode
from qrtui.config.sending import destination_from
from qrtui.config.textedit import update_text


def config_to_dict(config: Config) -> dict[str, Any]:
    def node_dict(node: RemoteNode | StoreNode | Destination) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in fields(node):
            value = getattr(node, spec.name)
            if spec.name in ("name", "set_keys") or value is None:
                continue
            if spec.name == "bind" and isinstance(node, StoreNode) and not node.embedded:
                continue
            if value == spec.default and spec.name not in node.set_keys:
                continue  # a default the user did not write stays unwritten
            if isinstance(value, tuple):
                if value:
                    out[spec.name] = list(value)
                continue
            out[spec.name] = str(value) if isinstance(value, Path) else value
        return out

    def profile_dict(profile: Profile) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for spec in fields(profile):
            value = getattr(profile, spec.name)
            if spec.name == "name" or (value == spec.default and spec.name != "overlap"):
                continue
            out[spec.name] = list(value) if isinstance(value, tuple) else value
        return out

    data: dict[str, Any] = {
        "client": {"aet": config.client.aet},
        "remotes": {n.name: node_dict(n) for n in config.remotes},
        "stores": {n.name: node_dict(n) for n in config.stores},
    }
    if config.profiles:
        data["profiles"] = {p.name: profile_dict(p) for p in config.profiles}
    if config.destinations:
        data["destinations"] = {d.name: node_dict(d) for d in config.destinations}
    return data


def _meaning(key: tuple[str, ...], table: Mapping[str, Any]) -> object:
    """What a table of the file stands for, defaults filled in and paths expanded."""

    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(problem)

    try:
        if key == ("client",):
            return ClientConfig(**read_table(table, _CLIENT_KEYS, "client", fail))
        if len(key) != 2:
            return dict(table)
        section, name = key
        if section == "remotes":
            return RemoteNode(name=name, **read_table(table, _REMOTE_KEYS, "", fail))
        if section == "stores":
            values = read_table(table, _STORE_KEYS, "", fail)
            if "directory" in values:
                values["directory"] = Path(values["directory"]).expanduser()
            return StoreNode(name=name, **values)
        if section == "destinations":
            return destination_from(name, table, "", fail)
        if section == "profiles":
            values = read_table(table, _PROFILE_KEYS, "", fail)
            values["groups"] = tuple(g.lower() for g in values.get("groups", ()))
            return Profile(name=name, **values)
    except (ConfigError, TypeError):
        return object()  # unreadable: never the same as anything
    return dict(table)


def _same_table(key: tuple[str, ...], a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return _meaning(key, a) == _meaning(key, b)


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + ".bak")


def comments_a_save_drops(config: Config, path: Path | None = None) -> int:
    """Comment lines of the file that saving `config` would not keep (0: a save keeps every
    comment). Then save_config keeps a copy of the file as it was, at backup_path()."""
    target = path or config.path
    return update_text(_read_text(target), config_to_dict(config), _same_table).dropped_comments


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def save_config(config: Config, path: Path | None = None) -> Config:
    """Validate, then replace the file atomically (temp file, fsync, rename). Tables that did
    not change stay as the user wrote them, comments included; where comments cannot be kept,
    the file as it was is copied to config.toml.bak first."""
    target = path or config.path
    data = config_to_dict(config)
    validated = parse_config(data, target)
    old_text = _read_text(target)
    update = update_text(old_text, data, _same_table)
    if update.dropped_comments and old_text is not None:
        write_atomically(backup_path(target), old_text)
    write_atomically(target, update.text)
    return validated


def write_atomically(target: Path, text: str) -> None:
    """Replace target with text, mode 0600, fsynced with its directory; raises OSError."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o600)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
