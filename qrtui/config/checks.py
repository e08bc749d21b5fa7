"""Reading the TOML file: every table and key checked, one line per mistake."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

from qrtui.config.nodes import (
    CONFIG_ENV,
    GROUP_NAMES,
    ClientConfig,
    Config,
    ConfigError,
    Profile,
    RemoteNode,
    StoreNode,
)

Check = Callable[[Any], str | None]


def check_aet(value: str) -> str | None:
    if not value.strip():
        return "AE title is empty"
    if len(value) > 16:
        return f"AE title {value!r} is longer than 16 characters"
    if "\\" in value:
        return f"AE title {value!r} contains a backslash"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"AE title {value!r} contains a control character"
    return None


def check_port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"port {value} is outside 1-65535"


def _check_timeout(value: float) -> str | None:
    return None if 0 < value <= 3600 else f"timeout {value} must be above 0 and at most 3600 s"


def _check_deadline(value: float) -> str | None:
    return None if 1 <= value <= 86400 else f"{value} must be between 1 and 86400 s"


def _check_associations(value: int) -> str | None:
    return None if 1 <= value <= 16 else f"{value} must be between 1 and 16"


def _check_cap(value: int) -> str | None:
    return None if 1 <= value <= 1_000_000 else f"{value} must be between 1 and 1000000"


def _check_rate(value: float) -> str | None:
    return None if 0 < value <= 1000 else f"{value} must be above 0 and at most 1000"


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """'07:00-19:00' -> its start and end; a window may run past midnight ('22:00-06:00').
    ValueError, worded for the user, when it is not two different HH:MM times."""
    first, dash, last = text.partition("-")
    try:
        if not dash:
            raise ValueError
        start, end = (datetime.strptime(t.strip(), "%H:%M").time() for t in (first, last))
    except ValueError:
        raise ValueError(f'{text!r} is not a window like "07:00-19:00" (HH:MM-HH:MM)') from None
    if start == end:
        raise ValueError(f"{text!r} starts and ends at the same time")
    return start, end


def _check_quiet_hours(value: str) -> str | None:
    try:
        parse_quiet_hours(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check_aets(value: tuple[str, ...]) -> str | None:
    for aet in value:
        problem = check_aet(aet)
        if problem:
            return problem
    return None


def _check_networks(value: tuple[str, ...]) -> str | None:
    for network in value:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            return f"{network!r} is not an IP address or network (such as 10.1.2.0/24)"
    return None


def _check_retrieve(value: str) -> str | None:
    if value in ("auto", "move", "get"):
        return None
    return f'retrieve {value!r} must be "auto", "move" or "get"'


def _check_nonempty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


_OVERLAP = re.compile(r"^(\d{1,5})([dh])$")


def parse_overlap(text: str) -> timedelta:
    """'1d', '36h', '0d': how far before a checkpoint a --since-last run looks again."""
    match = _OVERLAP.match(text.strip().lower())
    if not match:
        raise ValueError(f"overlap {text!r} is not Nd (days) or Nh (hours), such as 1d or 12h")
    amount, unit = int(match.group(1)), match.group(2)
    overlap = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
    if overlap > timedelta(days=3650):
        raise ValueError(f"overlap {text!r} is more than ten years")
    return overlap


def _check_overlap(value: str) -> str | None:
    try:
        parse_overlap(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check_groups(value: tuple[str, ...]) -> str | None:
    for group in value:
        if group.lower() not in GROUP_NAMES:
            return f"unknown group {group!r} (known: {', '.join(GROUP_NAMES)})"
    return None


def _check_terms(value: tuple[str, ...]) -> str | None:
    for term in value:
        if "," in term:
            return f"term {term!r} contains a comma: give each term as its own string"
    return None


@dataclass(frozen=True)
class _Key:
    kind: type
    required: bool = False
    check: Check | None = None


_CLIENT_KEYS = {"aet": _Key(str, check=check_aet)}


_REMOTE_KEYS = {
    "aet": _Key(str, required=True, check=check_aet),
    "host": _Key(str, required=True, check=_check_nonempty),
    "port": _Key(int, check=check_port),
    "retrieve": _Key(str, check=_check_retrieve),
    "timeout": _Key(float, check=_check_timeout),
    "dimse_timeout": _Key(float, check=_check_timeout),
    "use_modality_tag": _Key(bool),
    "retrieve_deadline": _Key(float, check=_check_deadline),
    "max_associations": _Key(int, check=_check_associations),
    "result_cap": _Key(int, check=_check_cap),
    "max_queries_per_second": _Key(float, check=_check_rate),
    "quiet_hours": _Key(str, check=_check_quiet_hours),
    "tls": _Key(bool),
    "tls_ca": _Key(str, check=_check_nonempty),
    "tls_cert": _Key(str, check=_check_nonempty),
    "tls_key": _Key(str, check=_check_nonempty),
}


_STORE_KEYS = {
    "aet": _Key(str, required=True, check=check_aet),
    "port": _Key(int, check=check_port),
    "host": _Key(str, check=_check_nonempty),
    "directory": _Key(str, check=_check_nonempty),
    "bind": _Key(str, check=_check_nonempty),
    "timeout": _Key(float, check=_check_timeout),
    "allowed_aets": _Key(tuple, check=_check_aets),
    "allowed_addresses": _Key(tuple, check=_check_networks),
    "tls": _Key(bool),
    "tls_ca": _Key(str, check=_check_nonempty),
    "tls_cert": _Key(str, check=_check_nonempty),
    "tls_key": _Key(str, check=_check_nonempty),
}


_PROFILE_KEYS = {
    "remote": _Key(str, required=True, check=_check_nonempty),
    "store": _Key(str, required=True, check=_check_nonempty),
    "groups": _Key(tuple, check=_check_groups),
    "sr_only": _Key(bool),
    "include": _Key(tuple, check=_check_terms),
    "exclude": _Key(tuple, check=_check_terms),
    "station_include": _Key(tuple, check=_check_terms),
    "station_exclude": _Key(tuple, check=_check_terms),
    "toshiba": _Key(bool),
    "emptysr": _Key(bool),
    "dup": _Key(bool),
    "overlap": _Key(str, check=_check_overlap),
}


_NODE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    tuple: "a list of strings",
}


def name_problem(name: str) -> str | None:
    """Why this cannot name a node or profile, or None."""
    if not _NODE_NAME.match(name) or name.isdigit():
        return "names use letters, digits, '_', '.', '-' and are not only digits"
    return None


def _typed(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is tuple:
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def _read_table(
    table: Any, keys: Mapping[str, _Key], where: str, fail: Callable[[str, str], ConfigError]
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise fail(where, "must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        spec = keys.get(key)
        if spec is None:
            raise fail(f"{where}.{key}", f"unknown key (known: {', '.join(keys)})")
        if not _typed(value, spec.kind):
            raise fail(f"{where}.{key}", f"must be {_TYPE_NAMES[spec.kind]}, not {value!r}")
        problem = spec.check(value) if spec.check else None
        if problem:
            raise fail(f"{where}.{key}", problem)
        out[key] = float(value) if spec.kind is float else value
        if spec.kind is tuple:
            out[key] = tuple(value)
    for key, spec in keys.items():
        if spec.required and key not in out:
            raise fail(f"{where}.{key}", "is required")
    return out


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate a decoded TOML document and build the frozen configuration."""

    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {problem}")

    for top in data:
        if top not in ("client", "remotes", "stores", "profiles"):
            raise fail(top, "unknown table (known: client, remotes, stores, profiles)")
    client = ClientConfig(**_read_table(data.get("client", {}), _CLIENT_KEYS, "client", fail))

    def node_tables(section: str) -> list[tuple[str, Any]]:
        tables = data.get(section, {})
        if not isinstance(tables, dict):
            raise fail(section, f"must be tables like [{section}.NAME]")
        for name in tables:
            problem = name_problem(name)
            if problem:
                raise fail(f"{section}.{name}", problem)
        return list(tables.items())

    remotes = []
    for name, table in node_tables("remotes"):
        values = _read_table(table, _REMOTE_KEYS, f"remotes.{name}", fail)
        _check_tls(values, f"remotes.{name}", fail, server=False)
        remotes.append(RemoteNode(name=name, set_keys=frozenset(values), **values))
    stores: list[StoreNode] = []
    for name, table in node_tables("stores"):
        where = f"stores.{name}"
        values = _read_table(table, _STORE_KEYS, where, fail)
        if "directory" in values:
            if "host" in values:
                raise fail(
                    f"{where}.host",
                    "an embedded store (with directory) listens on 'bind'; "
                    "'host' is only for external stores",
                )
            values["directory"] = Path(values["directory"]).expanduser()
        elif "host" not in values:
            raise fail(where, "needs 'directory' (embedded store) or 'host' (external store)")
        elif "bind" in values:
            raise fail(f"{where}.bind", "only an embedded store (with directory) listens")
        elif values.get("tls"):
            raise fail(f"{where}.tls", "only an embedded store (with directory) listens")
        _check_tls(values, where, fail, server=True)
        stores.append(StoreNode(name=name, set_keys=frozenset(values), **values))

    _check_store_clashes(stores, fail)
    profiles = []
    for name, table in node_tables("profiles"):
        where = f"profiles.{name}"
        values = _read_table(table, _PROFILE_KEYS, where, fail)
        for kind, nodes in (("remote", remotes), ("store", stores)):
            if not any(n.name == values[kind] for n in nodes):
                known = ", ".join(n.name for n in nodes) or "none configured"
                raise fail(f"{where}.{kind}", f"no {kind} {values[kind]!r} (known: {known})")
        values["groups"] = tuple(g.lower() for g in values.get("groups", ()))
        if values.get("sr_only") and values["groups"]:
            raise fail(f"{where}.sr_only", "SR only cannot be combined with groups")
        if not values.get("sr_only") and not values["groups"]:
            raise fail(f"{where}.groups", "name at least one group (ct, mg, fl, dx) or sr_only")
        profiles.append(Profile(name=name, **values))
    return Config(
        path=path,
        client=client,
        remotes=tuple(remotes),
        stores=tuple(stores),
        profiles=tuple(profiles),
    )


def _check_tls(
    values: dict[str, Any], where: str, fail: Callable[[str, str], ConfigError], *, server: bool
) -> None:
    files = [k for k in ("tls_ca", "tls_cert", "tls_key") if k in values]
    if files and not values.get("tls"):
        raise fail(f"{where}.{files[0]}", "is only used with tls = true")
    if ("tls_cert" in values) != ("tls_key" in values):
        raise fail(f"{where}.tls_cert", "tls_cert and tls_key go together")
    if server and values.get("tls") and "tls_cert" not in values:
        raise fail(f"{where}.tls_cert", "a store that listens with TLS needs tls_cert and tls_key")


def _check_store_clashes(stores: list[StoreNode], fail: Callable[[str, str], ConfigError]) -> None:
    seen_aet: dict[str, str] = {}
    seen_port: dict[int, str] = {}
    for store in stores:
        aet = store.aet.strip()
        if aet in seen_aet:
            raise fail(
                f"stores.{store.name}.aet",
                f"AE title {aet!r} is already used by stores.{seen_aet[aet]}",
            )
        seen_aet[aet] = store.name
        if store.embedded:
            if store.port in seen_port:
                raise fail(
                    f"stores.{store.name}.port",
                    f"port {store.port} is already used by stores.{seen_port[store.port]}",
                )
            seen_port[store.port] = store.name


def load_config(path: Path) -> Config:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: configuration file not found (copy config.example.toml there, "
            f"or pass --config PATH or set ${CONFIG_ENV})"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: TOML syntax error: {exc}") from None
    return parse_config(data, path)
