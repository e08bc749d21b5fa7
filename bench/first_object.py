"""How soon a long retrieve stores its first object (issue 26): `wide_pacs.py --dose`, in its
own process, holds N CT studies (images and an RDSR each) over the last DAYS days; qrtui runs
`-ct -f DAYSd` with C-GET into a fresh store, and the figure is the time from its start to
the first file in the store. qrtui is then stopped (SIGINT): the rest is not the measure.

    python bench/first_object.py [--studies 10000] [--days 365] [--rounds 3]
    python bench/first_object.py --qrtui /path/to/another/checkout   # a before figure
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def first_object(qrtui: Path, port: int, days: int, work: Path) -> float:
    store = work / "store"
    config = work / "qrtui.toml"
    config.write_text(
        f"[client]\naet = 'QRTUI'\n"
        f"[remotes.wide]\naet = 'WIDE_PACS'\nhost = '127.0.0.1'\nport = {port}\n"
        f"retrieve = 'get'\n"
        f"[stores.local]\naet = 'QRTUI_FIRST'\ndirectory = '{store}'\n"
    )
    # run from `work`: `-m` puts the current directory before PYTHONPATH
    env = {**os.environ, "PYTHONPATH": str(qrtui), "XDG_STATE_HOME": str(work / "state")}
    command = [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "wide", "local", "-ct", "-f", f"{days}d"], env=env, cwd=work,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        while proc.poll() is None:
            if any(store.glob("*/*/*.dcm")):
                return time.perf_counter() - started
            time.sleep(0.02)
        assert proc.stderr is not None
        raise SystemExit(f"qrtui ended ({proc.returncode}) before any object: {proc.stderr.read()}")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=10000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--qrtui", type=Path, default=HERE.parent, help="checkout to run")
    args = parser.parse_args()
    # qrtui's bytecode, as an installed qrtui has it (see compiled() in run.py)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(args.qrtui / "qrtui")], check=True
    )
    pacs = subprocess.Popen(
        [sys.executable, str(HERE / "wide_pacs.py"), str(args.studies), str(args.days), "--dose"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert pacs.stdout is not None
        port = int(pacs.stdout.readline())
        figures = []
        for n in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                figures.append(first_object(args.qrtui, port, args.days, Path(tmp)))
            print(f"round {n + 1}: first object after {figures[-1]:.2f} s", flush=True)
        figures.sort()
        print(
            f"{args.studies} studies over {args.days} days: first object after "
            f"{figures[len(figures) // 2]:.2f} s (median; {figures[0]:.2f}-{figures[-1]:.2f})"
        )
    finally:
        pacs.communicate("")


if __name__ == "__main__":
    main()
