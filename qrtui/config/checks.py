"""Reading the TOML file: every table and key checked, one line per mistake."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qrtui.config.keys import (
    Check,
    Key,
    check_aet,
    check_aets,
    check_associations,
    check_cap,
    check_deadline,
    check_groups,
    check_names,
    check_networks,
    check_nonempty,
    check_overlap,
    check_port,
    check_processes,
    check_quiet_hours,
    check_rate,
    check_retrieve,
    check_terms,
    check_timeout,
    check_tls,
    name_problem,
    parse_overlap,
    parse_quiet_hours,
    read_table,
)
from qrtui.config.nodes import (
    CONFIG_ENV,
    ClientConfig,
    Config,
    ConfigError,
    Profile,
    RemoteNode,
    StoreNode,
)
from qrtui.config.sending import check_forward, read_destinations

__all__ = [
    "Check", "check_aet", "check_port", "load_config", "name_problem", "parse_overlap",
    "parse_quiet_hours",
]  # fmt: skip

_CLIENT_KEYS = {"aet": Key(str, check=check_aet)}


_REMOTE_KEYS = {
    "aet": Key(str, required=True, check=check_aet),
    "host": Key(str, required=True, check=check_nonempty),
    "port": Key(int, check=check_port),
    "retrieve": Key(str, check=check_retrieve),
    "timeout": Key(float, check=check_timeout),
    "dimse_timeout": Key(float, check=check_timeout),
    "use_modality_tag": Key(bool),
    "retrieve_deadline": Key(float, check=check_deadline),
    "max_associations": Key(int, check=check_associations),
    "result_cap": Key(int, check=check_cap),
    "max_queries_per_second": Key(float, check=check_rate),
    "quiet_hours": Key(str, check=check_quiet_hours),
    "window_studies": Key(int, check=check_cap),
    "retrieve_processes": Key(int, check=check_processes),
    "tls": Key(bool),
    "tls_ca": Key(str, check=check_nonempty),
    "tls_cert": Key(str, check=check_nonempty),
    "tls_key": Key(str, check=check_nonempty),
}


_STORE_KEYS = {
    "aet": Key(str, required=True, check=check_aet),
    "port": Key(int, check=check_port),
    "host": Key(str, check=check_nonempty),
    "directory": Key(str, check=check_nonempty),
    "bind": Key(str, check=check_nonempty),
    "timeout": Key(float, check=check_timeout),
    "allowed_aets": Key(tuple, check=check_aets),
    "allowed_addresses": Key(tuple, check=check_networks),
    "tls": Key(bool),
    "tls_ca": Key(str, check=check_nonempty),
    "tls_cert": Key(str, check=check_nonempty),
    "tls_key": Key(str, check=check_nonempty),
    "forward": Key(tuple, check=check_names),
}


_PROFILE_KEYS = {
    "remote": Key(str, required=True, check=check_nonempty),
    "store": Key(str, required=True, check=check_nonempty),
    "groups": Key(tuple, check=check_groups),
    "sr_only": Key(bool),
    "include": Key(tuple, check=check_terms),
    "exclude": Key(tuple, check=check_terms),
    "station_include": Key(tuple, check=check_terms),
    "station_exclude": Key(tuple, check=check_terms),
    "toshiba": Key(bool),
    "emptysr": Key(bool),
    "dup": Key(bool),
    "overlap": Key(str, check=check_overlap),
    "forward": Key(tuple, check=check_names),
}


def parse_config(data: Mapping[str, Any], path: Path) -> Config:
    """Validate a decoded TOML document and build the frozen configuration."""

    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(f"{path}: {where}: {problem}")

    for top in data:
        if top not in ("client", "remotes", "stores", "profiles", "destinations"):
            raise fail(
                top, "unknown table (known: client, remotes, stores, profiles, destinations)"
            )
    client = ClientConfig(**read_table(data.get("client", {}), _CLIENT_KEYS, "client", fail))

    def node_tables(section: str) -> list[tuple[str, Any]]:
        tables = data.get(section, {})
        if not isinstance(tables, dict):
            raise fail(section, f"must be tables like [{section}.NAME]")
        for name in tables:
            problem = name_problem(name)
            if problem:
                raise fail(f"{section}.{name}", problem)
        return list(tables.items())

    destinations = read_destinations(node_tables("destinations"), fail)
    remotes = []
    for name, table in node_tables("remotes"):
        values = read_table(table, _REMOTE_KEYS, f"remotes.{name}", fail)
        check_tls(values, f"remotes.{name}", fail, server=False)
        remotes.append(RemoteNode(name=name, set_keys=frozenset(values), **values))
    stores: list[StoreNode] = []
    for name, table in node_tables("stores"):
        where = f"stores.{name}"
        values = read_table(table, _STORE_KEYS, where, fail)
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
        check_tls(values, where, fail, server=True)
        check_forward(values, destinations, where, fail)
        stores.append(StoreNode(name=name, set_keys=frozenset(values), **values))

    _check_store_clashes(stores, fail)
    profiles = []
    for name, table in node_tables("profiles"):
        where = f"profiles.{name}"
        values = read_table(table, _PROFILE_KEYS, where, fail)
        for kind, nodes in (("remote", remotes), ("store", stores)):
            if not any(n.name == values[kind] for n in nodes):
                known = ", ".join(n.name for n in nodes) or "none configured"
                raise fail(f"{where}.{kind}", f"no {kind} {values[kind]!r} (known: {known})")
        values["groups"] = tuple(g.lower() for g in values.get("groups", ()))
        if values.get("sr_only") and values["groups"]:
            raise fail(f"{where}.sr_only", "SR only cannot be combined with groups")
        if not values.get("sr_only") and not values["groups"]:
            raise fail(f"{where}.groups", "name at least one group (ct, mg, fl, dx) or sr_only")
        check_forward(values, destinations, where, fail)
        profiles.append(Profile(name=name, **values))
    return Config(
        path=path,
        client=client,
        remotes=tuple(remotes),
        stores=tuple(stores),
        profiles=tuple(profiles),
        destinations=destinations,
    )


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
