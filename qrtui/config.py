"""The TOML node configuration: locate, read (tomllib), validate, save (tomli-w, atomic).

Every mistake becomes one ConfigError line naming the file, the node and the key.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

from qrtui.configfile import update_text

APP_NAME = "qrtui"
CONFIG_ENV = "QRTUI_CONFIG"


class ConfigError(Exception):
    """A configuration problem, worded as one line for the user."""


@dataclass(frozen=True)
class ClientConfig:
    aet: str = "QRTUI"


@dataclass(frozen=True)
class RemoteNode:
    """A node we query and retrieve from."""

    name: str
    aet: str
    host: str
    port: int = 104
    retrieve: str = "auto"  # C-GET where the node takes it, else C-MOVE
    timeout: float = 5.0
    dimse_timeout: float = 60.0
    use_modality_tag: bool = False
    retrieve_deadline: float = 3600.0  # for one C-MOVE/C-GET, however many Pendings come
    max_associations: int = 4  # requests in parallel; fewer if the node refuses more
    result_cap: int | None = None  # the most study matches the node returns per C-FIND
    tls: bool = False
    tls_ca: str | None = None  # CA certificates to trust (default: the system's)
    tls_cert: str | None = None  # our certificate, for a node that wants one
    tls_key: str | None = None
    # the keys the user wrote (others are defaults): where they disagree with what qrtui
    # learned about the node, the user's win
    set_keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class StoreNode:
    """Where retrieved objects go: embedded (has a directory) or an external SCP (has a host)."""

    name: str
    aet: str
    port: int = 11112
    host: str | None = None
    directory: Path | None = None
    bind: str = "0.0.0.0"
    timeout: float = 5.0
    allowed_aets: tuple[str, ...] = ()  # calling AE titles let in; empty: any
    allowed_addresses: tuple[str, ...] = ()  # sender IP addresses or networks; empty: any
    tls: bool = False  # the embedded SCP speaks DICOM TLS with tls_cert and tls_key
    tls_ca: str | None = None  # when set, senders must show a certificate it signed
    tls_cert: str | None = None
    tls_key: str | None = None
    set_keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def embedded(self) -> bool:
        return self.directory is not None

    @property
    def address(self) -> str:
        return f"{self.bind if self.embedded else self.host}:{self.port}"


GROUP_NAMES = ("ct", "mg", "fl", "dx")


@dataclass(frozen=True)
class Profile:
    """A saved query: everything the query form holds, and how far back --since-last looks."""

    name: str
    remote: str
    store: str
    groups: tuple[str, ...] = ()  # some of GROUP_NAMES
    sr_only: bool = False
    include: tuple[str, ...] = ()  # study description terms
    exclude: tuple[str, ...] = ()
    station_include: tuple[str, ...] = ()
    station_exclude: tuple[str, ...] = ()
    toshiba: bool = False
    emptysr: bool = False
    dup: bool = False
    overlap: str = "1d"  # Nd or Nh: how far before the checkpoint --since-last looks again


_N = TypeVar("_N", RemoteNode, StoreNode)


@dataclass(frozen=True)
class Config:
    path: Path
    client: ClientConfig
    remotes: tuple[RemoteNode, ...]
    stores: tuple[StoreNode, ...]
    profiles: tuple[Profile, ...] = ()

    def remote(self, ref: str) -> RemoteNode:
        return _pick(self.remotes, ref, "remote", self.path)

    def store(self, ref: str) -> StoreNode:
        return _pick(self.stores, ref, "store", self.path)

    def profile(self, name: str) -> Profile:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        known = ", ".join(p.name for p in self.profiles) or "none configured"
        raise ConfigError(f"{self.path}: no profile {name!r} (known: {known})")


def _pick(nodes: tuple[_N, ...], ref: str, kind: str, path: Path) -> _N:
    for node in nodes:
        if node.name == ref:
            return node
    if ref.isdigit() and 1 <= int(ref) <= len(nodes):
        return nodes[int(ref) - 1]
    known = ", ".join(n.name for n in nodes) or "none configured"
    raise ConfigError(f"{path}: no {kind} node {ref!r} (known: {known})")


# ---------------------------------------------------------------- locating


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    if cli_path:
        return Path(cli_path).expanduser()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    return default_config_path()


# ---------------------------------------------------------------- checks

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


# ---------------------------------------------------------------- saving


def config_to_dict(config: Config) -> dict[str, Any]:
    def node_dict(node: RemoteNode | StoreNode) -> dict[str, Any]:
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
    return data


def _meaning(key: tuple[str, ...], table: Mapping[str, Any]) -> object:
    """What a table of the file stands for, defaults filled in and paths expanded."""

    def fail(where: str, problem: str) -> ConfigError:
        return ConfigError(problem)

    try:
        if key == ("client",):
            return ClientConfig(**_read_table(table, _CLIENT_KEYS, "client", fail))
        if len(key) != 2:
            return dict(table)
        section, name = key
        if section == "remotes":
            return RemoteNode(name=name, **_read_table(table, _REMOTE_KEYS, "", fail))
        if section == "stores":
            values = _read_table(table, _STORE_KEYS, "", fail)
            if "directory" in values:
                values["directory"] = Path(values["directory"]).expanduser()
            return StoreNode(name=name, **values)
        if section == "profiles":
            values = _read_table(table, _PROFILE_KEYS, "", fail)
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
