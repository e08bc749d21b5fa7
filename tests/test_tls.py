"""DICOM TLS against a real Orthanc with TLS on (certificates made with openssl): echo,
query and C-GET retrieve on one verified connection; plain TCP and an untrusted CA fail."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sqlite3
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from qrtui import clock
from tests.conftest import corpus_if_present, qrtui, require, require_corpus
from tests.servers import ORTHANC_BIN, Orthanc
from tests.studies import build_population, rdsr_store

OPENSSL = shutil.which("openssl")


def make_ca_and_server_cert(directory: Path, name: str = "ca") -> dict[str, Path]:
    def run(*args: str) -> None:
        subprocess.run([OPENSSL, *args], check=True, capture_output=True, cwd=directory)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN=qrtui test {name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        f"{name}-server.key",
        "-out",
        f"{name}-server.csr",
    )
    (directory / "san.cnf").write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    run(
        "x509",
        "-req",
        "-in",
        f"{name}-server.csr",
        "-CA",
        f"{name}.crt",
        "-CAkey",
        f"{name}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
        "-out",
        f"{name}-server.crt",
    )
    return {
        "ca": directory / f"{name}.crt",
        "cert": directory / f"{name}-server.crt",
        "key": directory / f"{name}-server.key",
    }  # fmt: skip


@pytest.fixture(scope="module")
def tls_orthanc(tmp_path_factory):
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    require(OPENSSL, "openssl is not installed")
    certs_dir = tmp_path_factory.mktemp("certs")
    certs = make_ca_and_server_cert(certs_dir)
    other = make_ca_and_server_cert(certs_dir, "other")
    population = build_population(
        corpus_if_present(), tmp_path_factory.mktemp("objects"), clock.today()
    )
    server = Orthanc(
        tmp_path_factory.mktemp("orthanc"),
        modalities={"client": ("QRTUI", "127.0.0.1", 1)},
        extra={
            "DicomTlsEnabled": True,
            "DicomTlsCertificate": str(certs["cert"]),
            "DicomTlsPrivateKey": str(certs["key"]),
            "DicomTlsTrustedCertificates": str(certs["ca"]),
            "DicomTlsRemoteCertificateRequired": False,
        },
    ).start()
    try:
        server.upload(population.files())
        yield server, certs, other, population
    finally:
        server.stop()


def config_for(tmp_path: Path, port: int, tls: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"[remotes.pacs]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {port}\n"
        f"retrieve = 'get'\ntimeout = 10\n{tls}"
        f"[stores.local]\naet = 'QRTUI_STORE'\ndirectory = '{tmp_path / 'store'}'\n"
        "bind = '127.0.0.1'\n"
    )
    return path


class CountingProxy:
    """A TCP relay on loopback in front of the PACS: counts the connections made to it, and
    keeps the first byte each client sent (0x16 opens a TLS handshake)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.first_bytes: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            first = client.recv(1)
            self.first_bytes.append(first)
            upstream.sendall(first)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


def test_echo_query_and_c_get_over_verified_tls(tls_orthanc, tmp_path):
    """Every connection of the job goes to the node's TLS port and opens with a handshake;
    the store's port is held by someone else throughout, so nothing could connect back."""
    server, certs, _, population = tls_orthanc
    proxy = CountingProxy(server.dicom_port)
    config = config_for(tmp_path, proxy.port, f"tls = true\ntls_ca = '{certs['ca']}'\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        text = config.read_text() + f"port = {taken.getsockname()[1]}\n"  # the store's
        config.write_text(text)
        try:
            echo = qrtui(config, "--echo")
            result = qrtui(config, "pacs", "local", "-mg", "-f", "7d", "--json")
        finally:
            proxy.close()
    assert echo.returncode == 3, echo.stdout + echo.stderr  # the store's port is not ours
    assert echo.stdout.startswith("remote pacs (ORTHANC") and "answered" in echo.stdout, echo.stdout
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["retrieve"]
    assert summary["failed"] == 0 and summary["method"] == "C-GET"
    wanted = {
        uid
        for s in population.studies.values() if s.group == "MG"
        for label, idx in s.expect.items()
        for n, uid in enumerate(s.series[label].sop_uids) if idx is None or n in idx
    }  # fmt: skip
    with sqlite3.connect(tmp_path / "store" / ".qrtui-index.sqlite") as db:
        stored = {uid for (uid,) in db.execute("SELECT sop_instance_uid FROM instances")}
    assert stored == wanted
    assert proxy.first_bytes and set(proxy.first_bytes) == {b"\x16"}, proxy.first_bytes


@pytest.mark.parametrize("how", ["plain", "untrusted"])
def test_plain_tcp_or_an_untrusted_certificate_fails_clearly(tls_orthanc, tmp_path, how):
    server, _, other, _ = tls_orthanc
    tls = "" if how == "plain" else f"tls = true\ntls_ca = '{other['ca']}'\n"
    config = config_for(tmp_path, server.dicom_port, tls)
    result = qrtui(config, "pacs", "local", "-mg", "-f", "7d")
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if how == "untrusted":
        assert "TLS failed" in result.stderr and "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").glob("*/*/*.dcm"))


def test_tls_files_that_cannot_be_read_are_a_configuration_error(tmp_path, tls_orthanc):
    server, *_ = tls_orthanc
    config = config_for(tmp_path, server.dicom_port, "tls = true\ntls_ca = '/nonexistent/ca.crt'\n")
    result = qrtui(config, "pacs", "local", "-mg")
    assert result.returncode == 2 and "TLS files" in result.stderr


def test_the_embedded_store_listens_with_tls_for_dcmtk_storescu(tmp_path):
    storescu = shutil.which("storescu")
    require(storescu and OPENSSL, "DCMTK and openssl are needed")
    from qrtui.config import StoreNode
    from qrtui.dicom.storescp import Receiver, StorageSCP
    from qrtui.store import Store
    from tests.servers import free_port

    certs = make_ca_and_server_cert(tmp_path)
    node = StoreNode(
        "local", "STORE", free_port(), directory=tmp_path / "store", bind="127.0.0.1",
        tls=True, tls_cert=str(certs["cert"]), tls_key=str(certs["key"]),
    )  # fmt: skip
    rdsr = require_corpus() / "CT-RDSR-GEPixelMed.dcm"
    assert node.directory

    def send(*tls: str) -> int:
        command = [storescu, *tls, "-aec", "STORE", "127.0.0.1", str(node.port), str(rdsr)]
        return subprocess.run(command, capture_output=True, timeout=30).returncode

    with Store(node.directory) as store, StorageSCP(node, Receiver(store)):
        assert send() != 0, "plain TCP is not accepted"
        assert list(store.instances()) == []
        # A client that connects and never starts the handshake keeps nobody else out.
        with socket.create_connection(("127.0.0.1", node.port)):
            assert send("+tla", "+cf", str(certs["ca"])) == 0
        assert len(list(store.instances())) == 1


@pytest.mark.parametrize("trusted", [True, False])
def test_a_destination_over_tls_is_delivered_only_to_a_trusted_certificate(
    tls_orthanc, tmp_path, trusted
):
    """Issue 25: forwarding verifies the destination's certificate as a query does."""
    server, certs, other, _ = tls_orthanc
    uids = rdsr_store(tmp_path / "store", 2, "secure")
    ca = certs["ca"] if trusted else other["ca"]
    config = tmp_path / "config.toml"
    config.write_text(
        f"[stores.local]\naet = 'LOCAL'\ndirectory = '{tmp_path / 'store'}'\n"
        f"forward = ['secure']\n[destinations.secure]\naet = 'ORTHANC'\nhost = '127.0.0.1'\n"
        f"port = {server.dicom_port}\ntls = true\ntls_ca = '{ca}'\n"
    )
    done = qrtui(config, "--forward", "local", "--json")
    report = json.loads(done.stdout)["forward"]["secure"]
    if trusted:
        assert done.returncode == 0, done.stderr
        assert report["sent"] == 2
        with urllib.request.urlopen(
            f"http://127.0.0.1:{server.http_port}/instances?expand", timeout=30
        ) as answer:
            held = {i["MainDicomTags"]["SOPInstanceUID"] for i in json.load(answer)}
        assert set(uids) <= held
    else:
        assert done.returncode == 4
        assert (report["sent"], report["queued"]) == (0, 2)
        assert "TLS failed" in report["stopped"], report
