from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from qrtui.config import StoreNode
from qrtui.dicom.storescp import Receiver, StorageSCP
from qrtui.store import Store
from tests.servers import DCMQRSCP_BIN, ORTHANC_BIN, Dcmqrscp, Orthanc, free_port

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "openrem"

# One day for the whole session, for the tests and every qrtui they start: a suite that
# runs across midnight, or under a shifted clock, agrees with itself (qrtui.clock).
os.environ.setdefault("QRTUI_TODAY", date.today().isoformat())

IN_CI = bool(os.environ.get("CI"))


def require(present: object, reason: str) -> None:
    """Skip without the peer; in CI, where .ci/run installs it, its absence is a failure."""
    if not present:
        if IN_CI:
            pytest.fail(f"{reason}: .ci/run should have installed it")
        pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    # Without the corpus the screens built from it are skipped, so their snapshots go unused:
    # a clean skip, not stale files. With it, an unused snapshot still fails the run.
    if not CORPUS.is_dir():
        config.option.warn_unused_snapshots = True


def corpus_if_present() -> Path | None:
    """The corpus for vendor breadth where it is, else None: generated stand-ins
    (tests.studies.generated_object) prove the same rules."""
    return CORPUS if CORPUS.is_dir() else None


CORPUS_SKIP = "corpus not found at"


def _skips(config: pytest.Config) -> tuple[list[str], list[str]]:
    """Skipped tests: (for want of the corpus, for any other reason)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    corpus, other = [], []
    for report in skipped:
        (corpus if CORPUS_SKIP in str(report.longrepr) else other).append(report.nodeid)
    return corpus, other


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In CI every test runs: a skip fails the run, except a corpus test without the corpus."""
    if IN_CI and _skips(session.config)[1] and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    corpus, other = _skips(config)
    if corpus:
        terminalreporter.write_line(
            f"{len(corpus)} tests skipped for want of the corpus ({CORPUS}): they add vendor "
            "breadth; the rules themselves ran on generated objects"
        )
    if IN_CI and other:
        terminalreporter.write_line(
            f"CI runs every test, and {len(other)} were skipped: " + ", ".join(other[:10])
        )


def require_corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"{CORPUS_SKIP} {CORPUS}")
    return CORPUS


@pytest.fixture(autouse=True)
def own_state_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What qrtui remembers between runs (node caps) stays inside each test."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def orthanc(tmp_path: Path) -> Iterator[Orthanc]:
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    server = Orthanc(tmp_path / "orthanc", modalities={"qrtui": ("QRTUI", "127.0.0.1", 1)}).start()
    yield server
    server.stop()


@pytest.fixture
def dcmqrscp(tmp_path: Path) -> Iterator[Dcmqrscp]:
    require(DCMQRSCP_BIN, "DCMTK is not installed (apt-get install dcmtk)")
    server = Dcmqrscp(tmp_path / "dcmqrscp").start()
    yield server
    server.stop()


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield int(sock.getsockname()[1])
    sock.close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "config.toml"
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def listening_store(tmp_path: Path) -> Iterator[tuple[StoreNode, Store, Receiver]]:
    """An embedded store on a free loopback port, its SCP listening for the test."""
    node = StoreNode(
        "local", "QRTUI_STORE", free_port(), directory=tmp_path / "store", bind="127.0.0.1"
    )
    assert node.directory
    with Store(node.directory) as store:
        receiver = Receiver(store)
        with StorageSCP(node, receiver):
            yield node, store, receiver


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """small_disk(kb): a tmpfs of that size, unmounted after the test; skips where mounting
    is not allowed."""
    mounted: list[Path] = []

    def mount(kilobytes: int) -> Path:
        point = tmp_path / f"small-{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(point)],
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def qrtui(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`qrtui --no-tui` with this configuration; whatever it says, never a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config), *args],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done
