"""Faults a hospital meets at 2 a.m. (issue 7, first part): configuration mistakes caught
before any network traffic, a retrieve that never ends, unsolicited senders."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from qrtui import worker
from qrtui.config import StoreNode
from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.dicom.storescp import Receiver, StorageSCP
from qrtui.query import build_query
from qrtui.store import Store
from tests.conftest import require, require_corpus
from tests.servers import free_port

STORESCU = shutil.which("storescu")


def scripted(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def config_with(tmp_path: Path, remote_port: int, directory: Path, store_port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"[remotes.pacs]\naet = 'PACS'\nhost = '127.0.0.1'\nport = {remote_port}\n"
        f"[stores.local]\naet = 'STORE'\nport = {store_port}\nbind = '127.0.0.1'\n"
        f"directory = '{directory}'\n"
    )
    return path


def test_a_store_directory_that_is_a_file_is_a_usage_error_before_any_query(
    tmp_path, silent_listener
):
    """The remote is a port that never answers: reaching it would take the timeout."""
    (tmp_path / "store").write_text("a file")
    config = config_with(tmp_path, silent_listener, tmp_path / "store", free_port())
    result = scripted(config, "pacs", "local", "-ct")
    assert result.returncode == 2, result.stderr
    assert "is not a directory" in result.stderr and "timed out" not in result.stderr


def test_a_listen_port_in_use_is_a_usage_error_before_any_query(tmp_path, silent_listener):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        config = config_with(tmp_path, silent_listener, tmp_path / "store", port)
        result = scripted(config, "pacs", "local", "-ct")
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_a_retrieve_that_keeps_sending_pending_is_stopped_at_its_deadline(tmp_path):
    with DemoPacs(faults=Faults(delay=0.4)) as pacs:
        config = demo_config(tmp_path, pacs)
        remote = replace(config.remote(DEMO_REMOTE), retrieve_deadline=1.0)
        params = build_query(today=date.today(), date_from="yesterday", mg=True)
        outcome = worker.run(config, remote, config.store(DEMO_STORE), params, dry_run=False)
    assert outcome.status == 3
    assert "no final answer within 1 s (retrieve_deadline)" in outcome.message
    assert outcome.summary is not None and outcome.summary.problems


@pytest.fixture
def guarded_store(tmp_path):
    node = StoreNode(
        "local", "STORE", free_port(), directory=tmp_path / "store", bind="127.0.0.1",
        allowed_aets=("PACS_A",),
    )  # fmt: skip
    lines: list[str] = []
    assert node.directory
    with Store(node.directory) as store, StorageSCP(node, Receiver(store), log=lines.append):
        yield node, store, lines


def test_only_allowed_calling_ae_titles_may_send(guarded_store):
    require(STORESCU, "DCMTK is not installed (apt-get install dcmtk)")
    node, store, lines = guarded_store
    rdsr = require_corpus() / "CT-RDSR-GEPixelMed.dcm"

    def send(aet: str) -> int:
        return subprocess.run(
            [STORESCU, "-aet", aet, "-aec", node.aet, "127.0.0.1", str(node.port), str(rdsr)],
            capture_output=True, timeout=30,
        ).returncode  # fmt: skip

    assert send("INTRUDER") != 0
    assert list(store.instances()) == []
    assert any("INTRUDER" in line and "rejected" in line for line in lines)
    assert send("PACS_A") == 0
    assert len(list(store.instances())) == 1
    assert not any("GEPixelMed" in line for line in lines)
