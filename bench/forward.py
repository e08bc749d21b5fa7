"""Forwarding stored RDSRs (issue 25): `qrtui forward STORE` against DCMTK's storescu sending
the same files, each into a fresh Orthanc, timed as whole processes.

Population: N RDSRs (default 1,000), one study each, in an embedded store whose ledger
queues them for the destination `orthanc`; the same files in a folder for storescu. Each
round starts a fresh Orthanc (TCP_NODELAY=1 for its DCMTK networking, as bench/run.py's
tuned mode, and for storescu's too: DCMTK at its best) and re-queues the ledger, then
times one side; the sides alternate.

Run from the project root: `python bench/forward.py [--objects N] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qrtui.demo.studies import StudyBuilder, rdsr  # noqa: E402
from qrtui.store import INDEX_NAME, Store, StoredInstance  # noqa: E402
from tests.servers import Orthanc  # noqa: E402

RDSR_CLASS = "1.2.840.10008.5.1.4.1.1.88.67"


def populate(work: Path, objects: int) -> tuple[Path, Path]:
    """(the store's directory, the folder of the same files for storescu)."""
    files, store_dir = work / "files", work / "store"
    files.mkdir()
    builder = StudyBuilder(date(2026, 3, 10))
    with Store(store_dir) as store:
        store.forward_to = ("orthanc",)
        for n in range(objects):
            study = builder.study(f"s{n}", "CT DOSE", "CT")
            builder.add(study, 1, rdsr(), "Dose Report", dose=True)
            ds = study.objects[0]
            path = files / f"{n:05}.dcm"
            ds.save_as(path, enforce_file_format=True)
            final = store.path_for(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
            size = path.stat().st_size
            store.add(path, StoredInstance(
                ds.SOPInstanceUID, RDSR_CLASS, ds.StudyInstanceUID, ds.SeriesInstanceUID, "SR",
                final, size, "BENCH",
            ))  # fmt: skip
    return store_dir, files


def requeue(store_dir: Path) -> None:
    with sqlite3.connect(store_dir / INDEX_NAME) as db:
        db.execute("UPDATE deliveries SET state = 'queued', attempts = 0, sent_at = NULL")


def orthanc(work: Path, n: int) -> Orthanc:
    env = {**os.environ, "TCP_NODELAY": "1"}
    return Orthanc(work / f"orthanc-{n}", env=env).start()


def config_file(work: Path, store_dir: Path, port: int) -> Path:
    path = work / "config.toml"
    path.write_text(
        f"[stores.bench]\naet = 'BENCH'\ndirectory = '{store_dir}'\nforward = ['orthanc']\n"
        f"[destinations.orthanc]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {port}\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    storescu = shutil.which("storescu")
    assert storescu, "storescu not found (apt-get install dcmtk)"
    work = Path(tempfile.mkdtemp(prefix="qrtui-forward-bench-", dir=ROOT / "bench"))
    times: dict[str, list[float]] = {"qrtui forward": [], "storescu": []}
    try:
        store_dir, files = populate(work, args.objects)
        for n in range(args.rounds):
            for side in times:
                pacs = orthanc(work, len(times["storescu"]) * 2 + (side == "storescu") + n * 10)
                try:
                    requeue(store_dir)
                    if side == "storescu":
                        command = [storescu, "-aec", "ORTHANC", "+sd", "127.0.0.1",
                                   str(pacs.dicom_port), str(files)]  # fmt: skip
                    else:
                        config = config_file(work, store_dir, pacs.dicom_port)
                        command = [sys.executable, "-m", "qrtui", "forward", "--config",
                                   str(config), "bench"]  # fmt: skip
                    start = time.perf_counter()
                    done = subprocess.run(
                        command, capture_output=True, text=True, cwd=ROOT,
                        env={**os.environ, "TCP_NODELAY": "1"},  # DCMTK's best, both ends
                    )  # fmt: skip
                    elapsed = time.perf_counter() - start
                    assert done.returncode == 0, done.stderr
                    times[side].append(elapsed)
                finally:
                    pacs.stop()
        for side, figures in times.items():
            print(
                f"{side:14} {args.objects} RDSRs: median {statistics.median(figures):.2f} s "
                f"(min {min(figures):.2f}, max {max(figures):.2f}, {len(figures)} rounds)"
            )
        ratio = statistics.median(times["qrtui forward"]) / statistics.median(times["storescu"])
        print(f"qrtui / storescu: {ratio:.2f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
