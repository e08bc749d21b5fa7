"""qrtui against DCMTK on the same Orthanc, as shipped (Nagle on) and tuned (TCP_NODELAY=1).

Population: 200 CT studies (a tiny CT image and an RDSR each) and 10 MG studies (4 images of
2 MB each), spread over the last 30 days. Each side runs the whole job against a fresh store:
- qrtui: `qrtui --no-tui REMOTE STORE -ct -mg -f 30d` (funnel, selection, retrieve, index),
  with `retrieve_processes = 2` (a helper process receives a share; `--processes 1`: one);
- DCMTK, serially, one association per tool: findscu study queries, findscu series queries of
  every study, findscu image queries of every SR series, then the retrieve of exactly the series
  to fetch, twice: movescu into a running storescp, and getscu. The reference is the queries
  plus the faster of the two. Its queries are written beforehand from the known population, so
  DCMTK spends nothing on deciding: the reference is a lower bound for a serial tool.
Tuned, each side runs `--rounds` times (default 5), taking turns to go first, and each
figure is the median; a process's time is taken as it exits.

Run from the project root: `python bench/run.py` (needs orthanc and dcmtk installed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydicom.dataset import Dataset  # noqa: E402

from qrtui.demo.studies import CT_IMAGE, DemoStudy, StudyBuilder, image, rdsr  # noqa: E402
from tests.servers import Orthanc, free_port, stop, wait_until_listening  # noqa: E402

MG_IMAGE = "1.2.840.10008.5.1.4.1.1.1.2"
QRTUI_STORE_AET = "QRTUI_BENCH"
RETRIEVE = os.environ.get("BENCH_RETRIEVE", "")  # e.g. "retrieve = 'get'\n", to compare
DCMTK_AET = "DCMTK_SCU"
STORESCP_AET = "STORESCP"


@dataclass
class Population:
    studies: list[DemoStudy]
    files: list[Path]

    @property
    def ct(self) -> list[DemoStudy]:
        return [s for s in self.studies if s.group == "CT"]

    @property
    def mg(self) -> list[DemoStudy]:
        return [s for s in self.studies if s.group == "MG"]

    def fetched(self) -> list[Dataset]:
        """What a dose retrieve must bring: every RDSR and every MG image."""
        return [o for s in self.studies for o in s.objects if o.Modality in ("SR", "MG")]


def population(
    directory: Path, ct: int, mg: int, mg_size: int, same_second: bool = False
) -> Population:
    builder = StudyBuilder(date.today())
    for n in range(ct):
        s = builder.study(f"bench_ct_{n}", "CT CHEST", "CT", days_ago=1 if same_second else n % 30)
        builder.add(s, 1, image(CT_IMAGE, "CT"), "CT images")
        builder.add(s, 2, rdsr(), "Dose Report", dose=True)
        if same_second:  # a round answer no window can split (the look-closer's worst case)
            for ds in s.objects:
                ds.StudyTime = "101500"
    for n in range(mg):
        s = builder.study(f"bench_mg_{n}", "MAMMOGRAPHY", "MG", days_ago=n % 30)
        for _ in range(4):
            builder.add(s, 1, image(MG_IMAGE, "MG", mg_size), "MG images", dose=True)
    directory.mkdir(parents=True, exist_ok=True)
    files = []
    for study in builder.studies:
        for ds in study.objects:
            path = directory / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return Population(builder.studies, files)


# ------------------------------------------------------------------ measuring


@dataclass
class Run:
    seconds: float
    peak_rss_kb: int
    objects: int
    megabytes: float
    queries: float = 0.0  # DCMTK: its findscu steps; qrtui: its --dry-run (the funnel alone)
    status: int = 0
    move: float = 0.0  # DCMTK: movescu of the series to fetch, into a running storescp
    get: float = 0.0  # DCMTK: getscu of the same series; the reference takes the faster

    def line(self, name: str) -> str:
        return (
            f"{name:<24} {self.seconds:7.2f} s  {self.objects / self.seconds:7.1f} objects/s  "
            f"{self.megabytes / self.seconds:6.1f} MB/s  peak RSS {self.peak_rss_kb / 1024:5.0f} MB"
        )


def median_run(runs: Sequence[Run]) -> Run:
    """Each figure's median over rounds; the highest peak RSS and exit status."""

    def median(name: str) -> float:
        return statistics.median(getattr(r, name) for r in runs)

    return Run(
        median("seconds"), max(r.peak_rss_kb for r in runs), runs[0].objects,
        median("megabytes"), median("queries"), max(r.status for r in runs),
        median("move"), median("get"),
    )  # fmt: skip


def timed(
    command: Sequence[str], env: dict[str, str], ok: Sequence[int] = (0,)
) -> tuple[float, int]:
    """Wall time and peak RSS (kB) of one process, whose exit status must be in `ok`. The peak
    is the kernel's high-water mark of the process's own memory (VmHWM), read every 20 ms:
    rusage's ru_maxrss would also count the harness pages the child had before exec."""
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    errors: list[bytes] = []
    reader = threading.Thread(target=lambda: errors.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    ended: list[float] = []  # taken as the process ends, not at the next 20 ms look

    def wait() -> None:
        proc.wait()
        ended.append(time.perf_counter())

    waiter = threading.Thread(target=wait)
    waiter.start()
    peak = 0
    while waiter.is_alive():
        peak = max(peak, _high_water_kb(proc.pid))
        waiter.join(0.02)
    elapsed = ended[0] - started
    reader.join()
    if proc.returncode not in ok:
        raise SystemExit(f"{command[0]} failed ({proc.returncode}): {errors[0].decode()[-2000:]}")
    timed.status = proc.returncode  # type: ignore[attr-defined]
    return elapsed, peak


def _high_water_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def received(directory: Path) -> tuple[int, float]:
    files = [p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")]
    files = [p for p in files if p.suffix not in (".sqlite", ".sqlite-wal", ".sqlite-shm", ".lock")]
    return len(files), sum(p.stat().st_size for p in files) / 1e6


def query_file(path: Path, level: str, **keys: str) -> Path:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for key, value in keys.items():
        setattr(ds, key, value)
    ds.save_as(path, implicit_vr=True, little_endian=True)  # findscu reads bare datasets
    return path


def dcmtk_reference(pop: Population, pacs: Orthanc, work: Path, env: dict[str, str]) -> Run:
    queries = work / "queries"
    queries.mkdir(parents=True)
    since = (date.today() - timedelta(days=30)).strftime("%Y%m%d")
    window = f"{since}-{date.today():%Y%m%d}"
    studies = [
        query_file(queries / f"study-{m}.dcm", "STUDY", StudyDate=window, ModalitiesInStudy=m,
                   StudyInstanceUID="", StudyDescription="", NumberOfStudyRelatedSeries="")
        for m in ("CT", "MG")
    ]  # fmt: skip
    series = [
        query_file(queries / f"series-{n}.dcm", "SERIES", StudyInstanceUID=uid,
                   SeriesInstanceUID="", Modality="", SeriesDescription="",
                   NumberOfSeriesRelatedInstances="")
        for n, uid in enumerate(s.objects[0].StudyInstanceUID for s in pop.studies)
    ]  # fmt: skip
    sr_series = {
        o.SeriesInstanceUID: o.StudyInstanceUID for o in pop.fetched() if o.Modality == "SR"
    }
    images = [
        query_file(queries / f"image-{n}.dcm", "IMAGE", StudyInstanceUID=study,
                   SeriesInstanceUID=uid, SOPInstanceUID="", SOPClassUID="")
        for n, (uid, study) in enumerate(sr_series.items())
    ]  # fmt: skip
    fetch = {o.SeriesInstanceUID: o.StudyInstanceUID for o in pop.fetched()}
    moves = [
        query_file(queries / f"move-{n}.dcm", "SERIES", StudyInstanceUID=study,
                   SeriesInstanceUID=uid)
        for n, (uid, study) in enumerate(fetch.items())
    ]  # fmt: skip

    out = work / "storescp"
    out.mkdir()
    port = pacs.modalities["storescp"][2]
    log = work / "storescp.log"
    with log.open("wb") as sink:
        scp = subprocess.Popen(
            ["storescp", "-aet", STORESCP_AET, "-od", str(out), "-uf", str(port)],
            env=env, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    wait_until_listening(port, scp, log)
    peer = ["-aet", DCMTK_AET, "-aec", pacs.aet, "127.0.0.1", str(pacs.dicom_port)]
    got = work / "getscu"
    got.mkdir()
    steps = [
        ["findscu", "-S", *peer, *map(str, studies)],
        ["findscu", "-S", *peer, *map(str, series)],
        ["findscu", "-S", *peer, *map(str, images)],
        ["movescu", "-S", "-aem", STORESCP_AET, *peer, *map(str, moves)],
        ["getscu", "-S", "-od", str(got), *peer, *map(str, moves)],
    ]
    seconds_of: dict[str, float] = {"findscu": 0.0, "movescu": 0.0, "getscu": 0.0}
    try:
        peak = 0
        for command in steps:
            # DCMTK 3.6.7's getscu ends with SIGSEGV after its last request when given more
            # than one query file, with every object received: counted below, not trusted
            crash = (-11,) if command[0] == "getscu" else ()
            seconds, rss = timed(command, env, ok=(0, *crash))
            seconds_of[command[0]] += seconds
            peak = max(peak, rss)
    finally:
        stop(scp)
    objects, megabytes = received(out)
    if received(got)[0] != objects:
        print(f"  warning: getscu received {received(got)[0]} objects, movescu {objects}")
    queries, move, get = seconds_of["findscu"], seconds_of["movescu"], seconds_of["getscu"]
    total = queries + min(move, get)  # DCMTK's best way: the faster of its two tools
    return Run(total, peak, objects, megabytes, queries, move=move, get=get)


def qrtui_run(
    pacs: Orthanc, work: Path, store_port: int, env: dict[str, str], processes: int = 2
) -> Run:
    store = work / "store"
    work.mkdir(parents=True)
    config = work / "qrtui.toml"
    config.write_text(
        f"[client]\naet = 'QRTUI'\n"
        f"[remotes.pacs]\naet = '{pacs.aet}'\nhost = '127.0.0.1'\nport = {pacs.dicom_port}\n"
        f"retrieve_processes = {processes}\n{RETRIEVE}"
        f"[stores.local]\naet = '{QRTUI_STORE_AET}'\nport = {store_port}\nbind = '127.0.0.1'\n"
        f"directory = '{store}'\n"
    )
    env = {**env, "XDG_STATE_HOME": str(work / "state")}
    command = [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config)]
    query = ["pacs", "local", "-ct", "-mg", "-f", "30d"]
    funnel, funnel_rss = timed([*command, *query, "--dry-run"], env, ok=(0, 1))
    seconds, rss = timed([*command, *query], env, ok=(0, 1))
    status = timed.status  # type: ignore[attr-defined]
    objects, megabytes = received(store)
    return Run(seconds, max(rss, funnel_rss), objects, megabytes, funnel, status)


def wide_query(studies: int, work: Path, days: int = 30) -> Run:
    """`--dry-run` of a query answered by `studies` studies (a series query each), against a
    pynetdicom PACS in its own process: the measure is qrtui's peak memory."""
    work.mkdir(parents=True)
    pacs = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("wide_pacs.py")), str(studies), str(days)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert pacs.stdout
        port = int(pacs.stdout.readline())
        config = work / "wide.toml"
        config.write_text(
            f"[remotes.wide]\naet = 'WIDE_PACS'\nhost = '127.0.0.1'\nport = {port}\n"
            f"[stores.local]\naet = 'QRTUI_WIDE'\ndirectory = '{work / 'store'}'\n"
        )
        env = {**os.environ, "XDG_STATE_HOME": str(work / "state")}
        command = [sys.executable, "-m", "qrtui", "--no-tui", "--config", str(config)]
        since = ("-f", f"{days}d")
        seconds, rss = timed([*command, "wide", "local", "-ct", *since, "--dry-run"], env)
    finally:
        pacs.communicate("")
    return Run(seconds, rss, studies, 0.0)


def first_frame() -> float | None:
    """Seconds from starting `qrtui` in a terminal to its first screen (tmux; polled)."""
    if not shutil.which("tmux"):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "empty.toml"
        config.write_text("")
        session = f"qrtui-bench-{os.getpid()}"
        command = f"{sys.executable} -m qrtui --config {config}"
        started = time.perf_counter()
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command],
            check=True,
        )
        try:
            while time.perf_counter() - started < 10:
                screen = subprocess.run(
                    ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
                ).stdout
                if "^q" in screen or "Quit" in screen:
                    return time.perf_counter() - started
                time.sleep(0.01)
            return None
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def compiled() -> None:
    """qrtui's bytecode written, as an installed qrtui has it. Where PYTHONDONTWRITEBYTECODE
    is set (it is on the machine of bench/README.md), every run would otherwise compile its
    80 modules again, about 0.1 s; DCMTK's tools are compiled too."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "qrtui")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ct", type=int, default=200)
    parser.add_argument("--mg", type=int, default=10)
    parser.add_argument("--mg-size", type=int, default=1024, help="MG image side (2 MB at 1024)")
    parser.add_argument("--only", choices=("shipped", "tuned"), default=None)
    parser.add_argument(
        "--same-second", action="store_true", help="every CT study yesterday at 10:15:00"
    )
    parser.add_argument(
        "--wide", type=int, default=10000, help="studies in the memory run (0: skip)"
    )
    parser.add_argument("--wide-days", type=int, default=30, help="days the memory run spans")
    parser.add_argument(
        "--rounds", type=int, default=5, help="tuned: rounds of each side, in turn; medians"
    )
    parser.add_argument(
        "--processes", type=int, default=2, help="qrtui's retrieve_processes (1: one process)"
    )
    args = parser.parse_args()
    for tool in ("Orthanc", "findscu", "movescu", "getscu", "storescp"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed: apt-get install orthanc dcmtk")

    compiled()
    with tempfile.TemporaryDirectory(prefix="qrtui-bench-") as tmp:
        root = Path(tmp)
        pop = population(root / "population", args.ct, args.mg, args.mg_size, args.same_second)
        expected = len(pop.fetched())
        print(
            f"population: {len(pop.ct)} CT + {len(pop.mg)} MG studies, {len(pop.files)} objects; "
            f"a dose retrieve fetches {expected}; qrtui retrieve_processes = {args.processes}"
        )
        frame = first_frame()
        print(f"first TUI frame: {frame:.2f} s" if frame else "first TUI frame: (no tmux)")
        if args.wide:
            wide = wide_query(args.wide, root / "wide", args.wide_days)
            print(
                f"{args.wide}-study query over {args.wide_days} days (dry run): "
                f"{wide.seconds:.1f} s, "
                f"peak RSS {wide.peak_rss_kb / 1024:.0f} MB (target < 200 MB)"
            )
        results: dict[str, tuple[Run, Run]] = {}
        for mode in ("shipped", "tuned"):
            if args.only and args.only != mode:
                continue
            env = dict(os.environ)
            env.pop("TCP_NODELAY", None)
            if mode == "tuned":
                env["TCP_NODELAY"] = "1"
            work = root / mode
            store_port, storescp_port = free_port(), free_port()
            pacs = Orthanc(
                work / "orthanc",
                modalities={
                    "qrtui": (QRTUI_STORE_AET, "127.0.0.1", store_port),
                    "client": ("QRTUI", "127.0.0.1", store_port),
                    "storescp": (STORESCP_AET, "127.0.0.1", storescp_port),
                    "dcmtk": (DCMTK_AET, "127.0.0.1", storescp_port),
                },
                env=env,
            ).start()
            rounds = args.rounds if mode == "tuned" else 1  # as shipped, DCMTK takes a minute
            theirs: list[Run] = []
            mine: list[Run] = []
            try:
                pacs.upload(pop.files)
                for n in range(rounds):  # in turn, so that a drift of the machine hits both,
                    for side in ("dcmtk", "qrtui")[:: 1 if n % 2 == 0 else -1]:  # first by turns
                        if side == "dcmtk":
                            theirs.append(dcmtk_reference(pop, pacs, work / f"dcmtk-{n}", env))
                        else:
                            run = qrtui_run(
                                pacs, work / f"qrtui-{n}", store_port, env, args.processes
                            )
                            mine.append(run)
            finally:
                pacs.stop()
            for name, runs in (("dcmtk", theirs), ("qrtui", mine)):
                for run in runs:
                    if run.objects != expected:
                        print(f"  warning: {name} received {run.objects} objects, not {expected}")
            dcmtk, ours = median_run(theirs), median_run(mine)
            results[mode] = dcmtk, ours
            print(f"\n{mode} (TCP_NODELAY={env.get('TCP_NODELAY', 'unset')}):")
            if rounds > 1:
                print(f"  medians of {rounds} rounds, in turn:")
                for name, runs in (("DCMTK", theirs), ("qrtui", mine)):
                    whole = " ".join(f"{r.seconds:.2f}" for r in runs)
                    queries = " ".join(f"{r.queries:.2f}" for r in runs)
                    print(f"    {name}: whole {whole} s; queries {queries} s")
            print("  " + dcmtk.line("DCMTK serial reference"))
            print(
                f"  DCMTK retrieve: movescu {dcmtk.move:.2f} s, getscu {dcmtk.get:.2f} s; "
                "the reference takes the faster of the two in each round"
            )
            print("  " + ours.line("qrtui"))
            print(
                f"  queries: DCMTK findscu {dcmtk.queries:.2f} s, qrtui --dry-run "
                f"{ours.queries:.2f} s; qrtui exit status {ours.status}"
            )
            print(f"  ratio qrtui / DCMTK: {ours.seconds / dcmtk.seconds:.2f}")
        targets = {"shipped": 0.15, "tuned": 2.0}  # issue 26
        print()
        for mode, (dcmtk, ours) in results.items():
            ratio = ours.seconds / dcmtk.seconds
            verdict = "met" if ratio <= targets[mode] else "NOT met"
            print(f"{mode}: {ratio:.2f}x DCMTK (target <= {targets[mode]}x): {verdict}")
            if mode == "tuned":
                funnel = ours.queries / dcmtk.queries
                line = f"tuned, the funnel alone: {funnel:.2f}x DCMTK's queries"
                if args.same_second:  # issue 26 sets its target on this population
                    line += f" (target <= 1.0x): {'met' if funnel <= 1.0 else 'NOT met'}"
                print(line)
            print(f"{mode}: qrtui exit status {ours.status} (target 0)")
        peak = max((r.peak_rss_kb for pair in results.values() for r in pair), default=0)
        print(f"peak RSS of every run: {peak / 1024:.0f} MB (target < 200 MB)")


if __name__ == "__main__":
    main()
