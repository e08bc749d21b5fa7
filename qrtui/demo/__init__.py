"""The demo: `qrtui --demo` runs the whole job against a built-in PACS on loopback.

The demo PACS (qrtui.demo.pacs) doubles as the fault injector of the project's tests.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import platformdirs

from qrtui.config import APP_NAME, ClientConfig, Config, RemoteNode, StoreNode, save_config
from qrtui.demo.pacs import DemoPacs

DEMO_REMOTE = "demo"
DEMO_STORE = "demo-store"


def demo_directory() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "demo"


def fresh_demo_directory() -> Path:
    """The demo directory, emptied: the previous demo's store and configuration go."""
    directory = demo_directory()
    if directory.name == "demo" and directory.is_dir():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    return directory


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(directory: Path, pacs: DemoPacs) -> Config:
    """A configuration naming the running demo PACS and an embedded store in `directory`,
    saved there; the PACS learns the store as its move destination."""
    store = StoreNode(
        DEMO_STORE, "QRTUI_DEMO_STORE", _free_port(), directory=directory / "store",
        bind="127.0.0.1",
    )  # fmt: skip
    remote = RemoteNode(DEMO_REMOTE, pacs.aet, "127.0.0.1", pacs.port, timeout=5)
    pacs.destinations[store.aet] = ("127.0.0.1", store.port)
    config = Config(directory / "config.toml", ClientConfig("QRTUI"), (remote,), (store,))
    return save_config(config)
