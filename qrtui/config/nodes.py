"""Nodes, profiles and the configuration as a whole; where it lives."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import platformdirs

from qrtui.config.destinations import Destination

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
    max_queries_per_second: float | None = None  # requests, over all associations
    quiet_hours: str | None = None  # "07:00-19:00": no new window or study inside
    window_studies: int = 500  # a backfill's window grows to about this many studies
    retrieve_processes: int = 1  # processes that send queries and C-GET retrieves (helpers.py)
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
    forward: tuple[str, ...] = ()  # destinations every dose object stored here is delivered to
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
    forward: tuple[str, ...] | None = None  # destinations; None: the store's


_N = TypeVar("_N", RemoteNode, StoreNode)


@dataclass(frozen=True)
class Config:
    path: Path
    client: ClientConfig
    remotes: tuple[RemoteNode, ...]
    stores: tuple[StoreNode, ...]
    profiles: tuple[Profile, ...] = ()
    destinations: tuple[Destination, ...] = ()

    def remote(self, ref: str) -> RemoteNode:
        return _pick(self.remotes, ref, "remote", self.path)

    def store(self, ref: str) -> StoreNode:
        return _pick(self.stores, ref, "store", self.path)

    def destination(self, name: str) -> Destination:
        for destination in self.destinations:
            if destination.name == name:
                return destination
        known = ", ".join(d.name for d in self.destinations) or "none configured"
        raise ConfigError(f"{self.path}: no destination {name!r} (known: {known})")

    def forward_for(self, store: StoreNode, profile: Profile | None = None) -> tuple[str, ...]:
        """Where a run into this store delivers: the profile's list, else the store's."""
        if profile is not None and profile.forward is not None:
            return profile.forward
        return store.forward

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


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    if cli_path:
        return Path(cli_path).expanduser()
    if environ.get(CONFIG_ENV):
        return Path(environ[CONFIG_ENV]).expanduser()
    return default_config_path()
