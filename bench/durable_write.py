"""What the directory fsync of a durable write costs (issue 22): objects written into a
store the way the Storage SCP writes them (file fsync, rename, directory fsync, then the
index row), against the same without the directory fsync.

Run from the project root: `python bench/durable_write.py [--objects N] [--size BYTES]`.
The store lives in a temporary directory on the disk under the project (not /tmp, which
may be memory); `--dir` chooses another.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from qrtui.store import Store, StoredInstance  # noqa: E402
from qrtui.store import index as store_module  # noqa: E402


def write(directory: Path, objects: int, size: int, sync_dirs: bool) -> float:
    """Seconds to store `objects` objects of `size` bytes, 4 to a series, 1 series a study."""
    real = store_module.sync_directory
    if not sync_dirs:
        store_module.sync_directory = lambda folder: None
    data = b"\0" * size
    try:
        with Store(directory) as store:
            start = time.perf_counter()
            for n in range(objects):
                study, series, sop = f"1.2.{n // 4}", f"1.2.{n // 4}.1", f"1.2.{n // 4}.1.{n}"
                path = store.path_for(study, series, sop)
                store.add(data, StoredInstance(sop, "1.2", study, series, "SR", path, size, "B"))
            return time.perf_counter() - start
    finally:
        store_module.sync_directory = real


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--size", type=int, default=20_000)  # an RDSR is 10-60 kB
    parser.add_argument("--dir", type=Path, default=ROOT / "bench")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for sync_dirs in (False, True):
            with tempfile.TemporaryDirectory(dir=args.dir, prefix=".durable-") as temp:
                figures[sync_dirs].append(write(Path(temp), args.objects, args.size, sync_dirs))
    for sync_dirs, label in ((False, "file fsync + rename"), (True, "+ directory fsync")):
        runs = sorted(figures[sync_dirs])
        median = runs[len(runs) // 2]
        print(
            f"{label:22s} {args.objects} objects of {args.size} bytes: median {median:.2f} s "
            f"({1000 * median / args.objects:.2f} ms an object; runs "
            + ", ".join(f"{r:.2f}" for r in runs)
            + ")"
        )


if __name__ == "__main__":
    main()
