"""Real DICOM peers on loopback for the integration tests: Orthanc and DCMTK's dcmqrscp."""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ORTHANC_BIN = shutil.which("Orthanc")
DCMQRSCP_BIN = shutil.which("dcmqrscp")
DCMQRIDX_BIN = shutil.which("dcmqridx")


_HANDED_OUT: set[int] = set()


def _outgoing_ports_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free now, below the range the kernel gives outgoing connections: one of a
    test's hundreds of associations must not take a port a server is about to listen on
    (a C-MOVE test once failed so). Each port is handed out once per process."""
    start = _outgoing_ports_start()
    if start > 12000:
        for _ in range(500):
            port = random.randrange(start - 10000, start)
            if port in _HANDED_OUT:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qrtui_modalities(store_aet: str, store_port: int) -> dict[str, tuple[str, str, int]]:
    """Orthanc's DicomModalities for qrtui: our store as move destination, and our calling AE
    title (Orthanc answers C-FIND only to titles it knows)."""
    return {
        "store": (store_aet, "127.0.0.1", store_port),
        "client": ("QRTUI", "127.0.0.1", store_port),
    }


def wait_until_listening(
    port: int, proc: subprocess.Popen[bytes], log: Path, limit: float = 30
) -> None:
    """Poll for the server's readiness: it has no other signal we can await."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(
        f"server not listening on {port} after {limit} s:\n{log.read_text()[-3000:]}"
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@dataclass
class Orthanc:
    """An Orthanc with temporary storage; `modalities` maps name -> (aet, host, port)."""

    workdir: Path
    aet: str = "ORTHANC"
    modalities: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    dicom_port: int = 0
    http_port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] | None = None  # e.g. TCP_NODELAY for its DCMTK networking

    def start(self) -> Orthanc:
        assert ORTHANC_BIN
        self.dicom_port = self.dicom_port or free_port()  # set: a node that comes back
        self.http_port = free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "qrtui-test",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "storage"),
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "DicomModalities": {k: list(v) for k, v in self.modalities.items()},
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "StorageCompression": False,
            "HttpThreadsCount": 4,
            **self.extra,
        }
        cfg = self.workdir / "orthanc.json"
        cfg.write_text(json.dumps(config, indent=2))
        log = self.workdir / "orthanc.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [ORTHANC_BIN, str(cfg)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env,
            )
        wait_until_listening(self.http_port, self.proc, log)
        wait_until_listening(self.dicom_port, self.proc, log)
        return self

    def upload(self, files: Iterable[Path]) -> None:
        for path in files:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.http_port}/instances",
                data=path.read_bytes(),
                headers={"Content-Type": "application/dicom"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                status = json.load(response)
            assert status.get("Status") in ("Success", "AlreadyStored"), status

    def stop(self) -> None:
        """Killed, not stopped: its storage is the test's to throw away, and a graceful
        stop takes Orthanc about 3 s, some twenty times a suite."""
        if self.proc:
            self.proc.kill()
            self.proc.wait()

    def add(self, files: Iterable[Path]) -> None:
        """More objects while it runs, as Dcmqrscp.add."""
        self.upload(files)


@dataclass
class Dcmqrscp:
    """DCMTK's archive with a temporary database, indexed with dcmqridx."""

    workdir: Path
    aet: str = "DCMQRSCP"
    hosts: dict[str, tuple[str, str, int]] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def start(self, files: Iterable[Path] = ()) -> Dcmqrscp:
        assert DCMQRSCP_BIN and DCMQRIDX_BIN
        self.port = free_port()
        db = self.workdir / "db"
        db.mkdir(parents=True, exist_ok=True)
        self.add(files)
        host_lines = "\n".join(f"{n} = ({a}, {h}, {p})" for n, (a, h, p) in self.hosts.items())
        cfg = self.workdir / "dcmqrscp.cfg"
        cfg.write_text(
            f"NetworkTCPPort = {self.port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
            f"HostTable BEGIN\n{host_lines}\nHostTable END\n"
            "VendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\n{self.aet} {db} RW (2000, 1024mb) ANY\nAETable END\n"
        )
        log = self.workdir / "dcmqrscp.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [DCMQRSCP_BIN, "-c", str(cfg), str(self.port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until_listening(self.port, self.proc, log)
        return self

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)

    def add(self, files: Iterable[Path]) -> None:
        """Copy into the archive and index; each association of dcmqrscp reads the index."""
        assert DCMQRIDX_BIN
        db = self.workdir / "db"
        stored = []
        for path in files:
            target = db / f"obj{len(list(db.glob('obj*.dcm'))):05d}.dcm"
            shutil.copyfile(path, target)
            stored.append(str(target))
        if stored:
            subprocess.run([DCMQRIDX_BIN, str(db), *stored], check=True, capture_output=True)
