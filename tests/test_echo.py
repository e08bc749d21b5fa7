from __future__ import annotations

import subprocess
import sys

import pytest

from qrtui.config import load_config
from qrtui.dicom.assoc import Outcome
from qrtui.dicom.echo import echo_all


def config_for(write_config, remotes: dict[str, tuple[str, int, float]], stores: str = ""):
    text = "[client]\naet = 'QRTUI'\n"
    for name, (aet, port, timeout) in remotes.items():
        text += f"[remotes.{name}]\naet = '{aet}'\nhost = '127.0.0.1'\nport = {port}\ntimeout = {timeout}\n"
    return write_config(text + stores)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrtui", *args], capture_output=True, text=True, timeout=60
    )


def test_echo_orthanc_and_dcmqrscp_answer(write_config, orthanc, dcmqrscp):
    path = config_for(
        write_config,
        {"orthanc": ("ORTHANC", orthanc.dicom_port, 5), "dcmtk": ("DCMQRSCP", dcmqrscp.port, 5)},
    )
    results = echo_all(load_config(path))
    assert [r.node for r in results] == ["orthanc", "dcmtk"]
    for result in results:
        assert result.outcome is Outcome.ANSWERED, result.line()
        assert result.rtt_ms is not None and result.rtt_ms > 0


def test_closed_port_is_refused(write_config, closed_port):
    path = config_for(write_config, {"dead": ("DEAD", closed_port, 5)})
    [result] = echo_all(load_config(path))
    assert result.outcome is Outcome.REFUSED
    assert f"port {closed_port}" in result.detail


def test_unknown_host_is_one_clear_line(write_config):
    path = write_config("[remotes.far]\naet = 'X'\nhost = 'no-such-host.invalid'\n")
    [result] = echo_all(load_config(path))
    assert result.outcome is Outcome.UNREACHABLE and "unknown host" in result.detail


def test_silent_port_is_bounded_by_the_timeout(write_config, silent_listener):
    path = config_for(write_config, {"mute": ("MUTE", silent_listener, 1)})
    [result] = echo_all(load_config(path))
    assert result.outcome is Outcome.TIMED_OUT
    assert "no association answer within 1 s" in result.detail  # the timeout ended it


def test_rejected_association_gives_the_reason(write_config, dcmqrscp):
    path = config_for(write_config, {"wrong": ("NOT_ITS_AET", dcmqrscp.port, 5)})
    [result] = echo_all(load_config(path))
    assert result.outcome is Outcome.REJECTED
    assert "Rejected" in result.detail and "AE title" in result.detail


def test_echoes_run_in_parallel(write_config, tmp_path):
    """Three silent nodes: all three connections are open at once (one after another, the
    first would be closed by its timeout before the third connected). No clock involved."""
    import socket
    import threading

    listeners = []
    for _ in range(3):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        sock.settimeout(60)
        listeners.append(sock)
    path = config_for(
        write_config, {f"m{i}": ("MUTE", s.getsockname()[1], 5) for i, s in enumerate(listeners)}
    )
    results: list[object] = []
    echoing = threading.Thread(target=lambda: results.extend(echo_all(load_config(path))))
    echoing.start()
    accepted = [sock.accept()[0] for sock in listeners]
    still_open = []
    for conn in accepted:  # drained: the association request, maybe an abort, then EOF?
        conn.setblocking(False)
        try:
            while conn.recv(65536):
                pass
            still_open.append(False)  # end of file: that echo had given up already
        except BlockingIOError:
            still_open.append(True)
    echoing.join()
    for sock in [*accepted, *listeners]:
        sock.close()
    assert all(still_open), "the echoes ran one after another"
    assert all(r.outcome is Outcome.TIMED_OUT for r in results)  # type: ignore[attr-defined]


def test_embedded_store_checks_port_and_directory(write_config, tmp_path, silent_listener):
    from tests.servers import free_port

    stores = f"""
[stores.good]
aet = "GOOD"
port = {free_port()}
directory = "{tmp_path / "new" / "store"}"
bind = "127.0.0.1"
[stores.busy]
aet = "BUSY"
port = {silent_listener}
directory = "{tmp_path}"
bind = "127.0.0.1"
[stores.file]
aet = "FILE"
port = {free_port()}
directory = "{tmp_path / "config.toml"}"
"""
    results = {r.node: r for r in echo_all(load_config(config_for(write_config, {}, stores)))}
    assert results["good"].usable, results["good"].line()
    assert not (tmp_path / "new").exists(), "an echo must not create the store directory"
    assert not results["busy"].usable and "in use" in results["busy"].detail
    assert not results["file"].usable and "is not a directory" in results["file"].detail


def test_cli_echo_exit_statuses(write_config, orthanc, closed_port):
    good = config_for(write_config, {"orthanc": ("ORTHANC", orthanc.dicom_port, 5)})
    ok = run_cli("--no-tui", "--config", str(good), "--echo")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "remote orthanc (ORTHANC @ 127.0.0.1" in ok.stdout and "answered in" in ok.stdout

    text = (
        good.read_text()
        + f"[remotes.dead]\naet = 'DEAD'\nhost = '127.0.0.1'\nport = {closed_port}\n"
    )
    good.write_text(text)
    bad = run_cli("--no-tui", "--config", str(good), "--echo")
    assert bad.returncode == 3
    assert "remote dead" in bad.stdout and "connection refused" in bad.stdout


@pytest.mark.parametrize(
    "text", ["[remotes.pacs\n", "[remotes.pacs]\naet = 'A'\nhost = 'h'\nport = 99999\n"]
)
def test_cli_config_error_is_one_line_exit_2(write_config, text):
    path = write_config(text)
    result = run_cli("--no-tui", "--config", str(path), "--echo")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_missing_config_from_environment(tmp_path):
    env_path = tmp_path / "nowhere.toml"
    result = subprocess.run(
        [sys.executable, "-m", "qrtui", "--no-tui", "--echo"],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "QRTUI_CONFIG": str(env_path)},
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{env_path}: configuration file not found" in result.stderr


def test_help_documents_the_main_flags():
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in ("--no-tui", "--config", "--echo"):
        assert flag in result.stdout
