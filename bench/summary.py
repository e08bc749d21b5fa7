"""`qrtui --no-tui --summary STORE --csv` over a store index of 10,000 studies (issue 17:
under 2 s). The index is filled directly with dose summaries read from generated objects
(9,000 CT studies with an RDSR, 1,000 MG studies with four images), as retrieves leave it.

Run from the project root: `python bench/summary.py [--studies N]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qrtui.demo.studies import MG_IMAGE, image, rdsr  # noqa: E402
from qrtui.dose import read_dose  # noqa: E402
from qrtui.store import Store, StoredInstance  # noqa: E402


def fill(directory: Path, studies: int) -> int:
    """The index of a store holding `studies` studies; the number of objects."""
    ct = read_dose(rdsr()).to_json()
    mg_ds = image(MG_IMAGE, "MG")
    mg_ds.OrganDose = "0.0123"
    mg = read_dose(mg_ds).to_json()
    objects = 0
    with Store(directory) as store:
        for n in range(studies):
            study = f"1.2.3.{n}"
            date = f"2026{1 + n % 12:02d}{1 + n % 28:02d}"
            is_mg = n % 10 == 9
            for k in range(4 if is_mg else 1):
                summary = dict(mg if is_mg else ct, study_uid=study, study_date=date)
                uid = f"{study}.1.{k}"
                store._index(
                    StoredInstance(
                        uid, "1.2.840.10008.5.1.4.1.1.88.67", study, f"{study}.1", "SR",
                        directory / study / f"{uid}.dcm", 20_000, "PACS", "RDSR",
                        json.dumps(summary, separators=(",", ":")),
                    )
                )  # fmt: skip
                objects += 1
    return objects


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--studies", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        objects = fill(store, args.studies)
        config = Path(tmp) / "config.toml"
        config.write_text(f"[stores.local]\naet = 'S'\ndirectory = '{store}'\n")
        command = [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config),
                   "--summary", "local", "--csv"]  # fmt: skip
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            done = subprocess.run(command, capture_output=True, check=True)
            timings.append(time.perf_counter() - started)
        rows = done.stdout.count(b"\r\n") - 1
    best = min(timings)
    print(f"--summary --csv of {rows} studies ({objects} objects): best {best:.2f} s of "
          f"{', '.join(f'{t:.2f}' for t in timings)}; target < 2 s: "
          f"{'met' if best < 2 else 'NOT met'}")  # fmt: skip


if __name__ == "__main__":
    main()
