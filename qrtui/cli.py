"""Command line: `qrtui` starts the TUI; `qrtui --no-tui ...` is the scripted mode."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, NoReturn

from qrtui import __version__, clock
from qrtui.config import (
    GROUP_NAMES,
    ClientConfig,
    Config,
    ConfigError,
    Profile,
    RemoteNode,
    StoreNode,
    load_config,
    parse_overlap,
    resolve_config_path,
)
from qrtui.events import Event, FunnelProgress, RetrieveProgress, size_text
from qrtui.query import QueryError, QueryParams, build_query, parse_date
from qrtui.status import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, EXIT_USAGE, usage_problem

if TYPE_CHECKING:
    from qrtui.worker import RunContext


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"qrtui: {message} (see qrtui --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qrtui",
        description="Query and retrieve radiation-dose objects (RDSR, Enhanced SR, "
        "dose pages, DX/MG/CR headers) from PACS and modalities.",
        epilog="Exit status: 0 done, 1 some objects failed, 2 usage or configuration error, "
        "3 a node could not be reached.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"qrtui {__version__}")
    parser.add_argument(
        "--no-tui", action="store_true", help="scripted mode: no terminal UI, output on stdout"
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $QRTUI_CONFIG, else config.toml in the user "
        "configuration directory)",
    )
    parser.add_argument(
        "--echo",
        action="store_true",
        help="with --no-tui: C-ECHO every node in parallel, one line each; exit 0 when all "
        "are usable, 3 when any is not",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run against a built-in demo PACS on loopback, with its own configuration and "
        "store (emptied at each demo start); with --no-tui, defaults to every modality, "
        "yesterday to today",
    )
    parser.add_argument(
        "--listen",
        metavar="STORE",
        help="with --no-tui: run the embedded store STORE as a Storage SCP until stopped "
        "(Ctrl-C or SIGTERM), so modalities can send to it",
    )
    parser.add_argument(
        "--history",
        metavar="STORE",
        help="with --no-tui: the runs recorded in STORE's index, newest first (--limit N, --json)",
    )
    parser.add_argument(
        "--limit", type=int, metavar="N", help="with --history: only the newest N runs"
    )
    parser.add_argument(
        "--summary",
        metavar="STORE",
        help="with --no-tui: one row per study STORE holds, with its headline dose values "
        "(-f/-t for study dates; --csv or --json)",
    )
    parser.add_argument("--csv", action="store_true", help="with --summary: CSV (RFC 4180)")
    parser.add_argument(
        "--verify",
        metavar="STORE",
        help="with --no-tui: check an embedded store's files against its index",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help="with --verify: forget rows whose files are gone or cut short, index orphan files",
    )
    parser.add_argument(
        "--probe",
        metavar="REMOTE",
        help="with --no-tui: ask REMOTE a few harmless questions (studies of -f/-t, default "
        "the last 7 days) and report what it matches, returns, accepts and caps; retrieves "
        "nothing",
    )
    parser.add_argument(
        "--save",
        action="store_true",
        help="with --probe: keep the findings in nodes.learned.toml beside the configuration, "
        "where runs use them (keys set in config.toml win)",
    )
    parser.add_argument(
        "--move-test",
        action="store_true",
        help="with --probe: also C-MOVE one SR series to the store (STORE, else the first), "
        "received into a throwaway directory",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="run the saved query [profiles.NAME] of the configuration; flags given here "
        "override its values",
    )
    parser.add_argument(
        "--since-last",
        action="store_true",
        help="from the last complete run of this query (less its overlap) to now; failed "
        "studies of earlier runs are asked again (needs an embedded store)",
    )
    parser.add_argument(
        "--overlap",
        metavar="DURATION",
        help="with --since-last: how far before the last complete run to look again, Nd or "
        "Nh (default: the profile's, else 1d)",
    )
    parser.add_argument("remote", nargs="?", metavar="REMOTE", help="remote node (name or number)")
    parser.add_argument("store", nargs="?", metavar="STORE", help="store node (name or number)")
    mods = parser.add_argument_group("modalities (at least one, or -sr alone)")
    mods.add_argument("-ct", action="store_true", help="CT, including PET-CT and NM")
    mods.add_argument("-mg", action="store_true", help="mammography")
    mods.add_argument("-fl", action="store_true", help="fluoroscopy (RF, XA)")
    mods.add_argument("-dx", action="store_true", help="planar radiography (DX, CR)")
    mods.add_argument("-sr", action="store_true", help="studies holding only SR objects")
    when = parser.add_argument_group(
        "dates: yyyy-mm-dd, today, yesterday or Nd (N days ago); times HHMM"
    )
    when.add_argument("-f", dest="date_from", metavar="DATE", help="from this study date")
    when.add_argument("-t", dest="date_until", metavar="DATE", help="until this study date")
    when.add_argument("-sd", dest="single_date", metavar="DATE", help="a single study date")
    when.add_argument("-tf", dest="time_from", metavar="HHMM", help="from this time (with -sd)")
    when.add_argument("-tt", dest="time_until", metavar="HHMM", help="until this time (with -sd)")
    terms = parser.add_argument_group("filters: comma-separated terms, case-insensitive")
    terms.add_argument("-e", dest="desc_exclude", metavar="TERMS", help="exclude descriptions")
    terms.add_argument("-i", dest="desc_include", metavar="TERMS", help="include descriptions")
    terms.add_argument("-sne", dest="station_exclude", metavar="TERMS", help="exclude stations")
    terms.add_argument("-sni", dest="station_include", metavar="TERMS", help="include stations")
    opts = parser.add_argument_group("options")
    opts.add_argument("-dup", action="store_true", help="fetch again what the store holds")
    opts.add_argument(
        "-toshiba", action="store_true", help="CT without RDSR: dose summary and first images"
    )
    opts.add_argument(
        "-emptysr",
        action="store_true",
        help="take SR series of unknown type as dose objects instead of inspecting them",
    )
    opts.add_argument(
        "--only-study",
        dest="only_studies",
        action="append",
        metavar="UID",
        help="only this study, whatever its date (repeatable): a re-run of chosen studies",
    )
    opts.add_argument(
        "--exclude-study",
        dest="exclude_studies",
        action="append",
        metavar="UID",
        help="leave this study out of the plan (repeatable)",
    )
    opts.add_argument("--dry-run", action="store_true", help="plan only, retrieve nothing")
    opts.add_argument("--json", action="store_true", help="one JSON document on stdout")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("qrtui: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("QRTUI_DEBUG"):
            raise
        print(
            f"qrtui: unexpected error: {type(exc).__name__}: {exc} "
            "(set QRTUI_DEBUG=1 to see where)",
            file=sys.stderr,
        )
        return EXIT_PARTIAL


def _quiet_library_warnings() -> None:
    """pydicom warns with element values, which may be patient data: keep them off the terminal."""
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.addHandler(logging.NullHandler())
    warnings_logger.propagate = False


def _main(argv: Sequence[str] | None) -> int:
    _quiet_library_warnings()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.demo:
        return _demo(parser, args)
    path = resolve_config_path(args.config)
    try:
        if not args.no_tui and not path.exists():  # a first start: nodes are added in the TUI
            config = Config(path, ClientConfig(), (), ())
        else:
            config = load_config(path)
    except ConfigError as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.no_tui:
        return _scripted(parser, args, config)
    from qrtui.tui.app import run_app  # Textual loads only for the TUI

    return run_app(config)


def _demo(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config, fresh_demo_directory
    from qrtui.demo.pacs import DemoPacs

    if args.config:
        parser.error("--demo makes its own configuration: drop --config")
    directory = fresh_demo_directory()
    with DemoPacs() as pacs:
        config = demo_config(directory, pacs)
        if not args.no_tui:
            from qrtui.tui.app import run_app

            return run_app(config, start="query", demo=True)
        args.remote, args.store = args.remote or DEMO_REMOTE, args.store or DEMO_STORE
        if not (args.ct or args.mg or args.fl or args.dx or args.sr):
            args.ct = args.mg = args.fl = args.dx = True
        if not (args.date_from or args.date_until or args.single_date):
            args.date_from, args.date_until = "yesterday", "today"
        print(
            f"qrtui: demo PACS {pacs.aet} on 127.0.0.1:{pacs.port}, store in {directory / 'store'}",
            file=sys.stderr,
        )
        return _scripted(parser, args, config, face="demo")


def _scripted(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    config: Config,
    face: str = "scripted",
) -> int:
    if args.echo:
        return _echo(config)
    if args.listen:
        return _listen(config, args.listen)
    if args.history:
        return _history(config, args.history, limit=args.limit, as_json=args.json)
    if args.probe:
        return _probe(config, args)
    if args.summary:
        return _summary(config, args)
    if args.verify:
        return _verify(config, args.verify, repair=args.repair, as_json=args.json)
    try:
        profile = config.profile(args.profile) if args.profile else None
        if profile is not None:
            _apply_profile(args, profile)
        if not (args.remote and args.store):
            parser.error("--no-tui needs REMOTE and STORE (or --profile, --echo, --history)")
        since = _since_last(args, profile)
        params = build_query(
            today=clock.today(),
            **{k: getattr(args, k) for k in _QUERY_FLAGS},
        )
        remote, store = config.remote(args.remote), config.store(args.store)
    except (QueryError, ConfigError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = usage_problem(remote, store)
    if problem and not args.dry_run:
        print(f"qrtui: {problem}", file=sys.stderr)
        return EXIT_USAGE
    from qrtui.worker import RunContext, SinceLast, query_key

    context = RunContext(face=face, profile=profile.name if profile else None)
    if since is not None:
        overlap, first_from = since
        key = profile.name if profile else query_key(remote.name, store.name, params)
        context = replace(context, since_last=SinceLast(key, overlap, first_from))
    signal.signal(signal.SIGTERM, _interrupt)
    return _run(
        config, remote, store, params, as_json=args.json, dry_run=args.dry_run, context=context
    )


def _apply_profile(args: argparse.Namespace, profile: Profile) -> None:
    """The profile's values wherever the command line gave none."""
    args.remote = args.remote or profile.remote
    args.store = args.store or profile.store
    if not any(getattr(args, g) for g in (*GROUP_NAMES, "sr")):
        for group in profile.groups:
            setattr(args, group, True)
        args.sr = profile.sr_only
    for flag, terms in (
        ("desc_exclude", profile.exclude),
        ("desc_include", profile.include),
        ("station_exclude", profile.station_exclude),
        ("station_include", profile.station_include),
    ):
        if getattr(args, flag) is None and terms:
            setattr(args, flag, ",".join(terms))
    for flag in ("toshiba", "emptysr", "dup"):
        setattr(args, flag, getattr(args, flag) or getattr(profile, flag))
    if args.overlap is None:
        args.overlap = profile.overlap


def _since_last(
    args: argparse.Namespace, profile: Profile | None
) -> tuple[timedelta, date | None] | None:
    """(overlap, first run's start) for --since-last, checked; None without it."""
    if not args.since_last:
        if args.overlap is not None and profile is None:
            raise QueryError("--overlap only applies to --since-last")
        return None
    for flag, name in (("date_until", "-t"), ("single_date", "-sd"), ("time_from", "-tf"),
                       ("time_until", "-tt")):  # fmt: skip
        if getattr(args, flag):
            raise QueryError(
                f"--since-last runs to now: drop {name} (-f only sets where a first run starts)"
            )
    try:
        overlap = parse_overlap(args.overlap or "1d")
    except ValueError as exc:
        raise QueryError(str(exc)) from None
    first_from = parse_date(args.date_from, clock.today()) if args.date_from else None
    args.date_from = None
    return overlap, first_from


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: associations aborted, store closed


_QUERY_FLAGS = (
    "ct", "mg", "fl", "dx", "sr", "date_from", "date_until", "single_date", "time_from",
    "time_until", "desc_exclude", "desc_include", "station_exclude", "station_include",
    "dup", "toshiba", "emptysr", "only_studies", "exclude_studies",
)  # fmt: skip


def _run(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    *,
    as_json: bool,
    dry_run: bool,
    context: RunContext,
) -> int:
    from qrtui import worker
    from qrtui.report import plan_json, plan_lines, retrieve_lines

    progress = _StderrProgress() if sys.stderr.isatty() else None
    outcome = worker.run(
        config, remote, store_node, params, dry_run=dry_run, emit=progress or _ignore,
        context=context,
    )  # fmt: skip
    if progress:
        progress.clear()
    if outcome.message:
        print(f"qrtui: {outcome.message}", file=sys.stderr)
    elif outcome.status:  # a cron job's error log must say why, whatever the output
        print(f"qrtui: ended with status {outcome.status}; see the summary", file=sys.stderr)
    if outcome.result is None:
        return outcome.status
    params = outcome.params or params
    if as_json:
        document = plan_json(remote.name, store_node.name, params, outcome.result)
        document["profile"] = context.profile
        if outcome.summary is not None:
            document["retrieve"] = outcome.summary.to_json()
            document["missing"] = [
                {"study_instance_uid": o.study_instance_uid, "study_date": o.study_date,
                 "reason": o.reason()}
                for o in outcome.summary.missing()
            ]  # fmt: skip
        document["run_id"] = outcome.run_id
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        lines = plan_lines(remote.name, store_node.name, outcome.result)
        if outcome.summary is not None:
            lines += retrieve_lines(outcome.summary)
        print("\n".join(lines))
    return outcome.status


def _probe(config: Config, args: argparse.Namespace) -> int:
    from qrtui.learned import load_learned, merged, save_learned
    from qrtui.probe import default_window, probe, report_lines

    try:
        remote = config.remote(args.probe)
        start, end = default_window(clock.today())
        if args.date_from:
            start = parse_date(args.date_from, clock.today())
        if args.date_until:
            end = parse_date(args.date_until, clock.today())
        if start > end:
            raise QueryError(f"from date {start} is after until date {end}")
        store = None
        if args.move_test:
            ref = args.store or args.remote
            if ref:
                store = config.store(ref)
            elif config.stores:
                store = config.stores[0]
            else:
                raise ConfigError(f"{config.path}: --move-test needs a store to move to")
    except (QueryError, ConfigError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    progress = _StderrProgress() if sys.stderr.isatty() else None

    def say(step: str) -> None:
        if progress:
            sys.stderr.write(f"\r\033[Kprobing {remote.name}: {step}")
            sys.stderr.flush()

    report = probe(
        config, remote, date_from=start, date_until=end, store=store,
        move_test=args.move_test, say=say,
    )  # fmt: skip
    if progress:
        progress.clear()
    if args.save and report.reachable:
        learned = load_learned(config.path)
        learned[remote.name] = merged(learned.get(remote.name), report.findings)
        try:
            where = save_learned(config.path, learned)
        except OSError as exc:
            print(f"qrtui: findings not saved: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_PARTIAL
        report.notes.append(f"saved to {where}")
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(report_lines(report)))
    if not report.reachable:
        return EXIT_UNREACHABLE
    return EXIT_PARTIAL if report.queries_failed else EXIT_OK


def _summary(config: Config, args: argparse.Namespace) -> int:
    from qrtui import summary
    from qrtui.store import Store, StoreBusy, StoreError

    if args.csv and args.json:
        print("qrtui: --csv and --json: choose one", file=sys.stderr)
        return EXIT_USAGE
    try:
        node = config.store(args.summary)
        if node.directory is None:
            raise ConfigError(
                f"store {node.name} is external (no directory): only an embedded store can be "
                "summed up"
            )
        today = clock.today()
        start = parse_date(args.date_from, today) if args.date_from else None
        end = parse_date(args.date_until, today) if args.date_until else None
    except (ConfigError, QueryError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with Store(node.directory, lock=False) as store:
            table = summary.rows(summary.study_doses(store, start, end))
    except (StoreBusy, StoreError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if args.csv:
        sys.stdout.write(summary.csv_text(table))
    elif args.json:
        json.dump({"store": node.name, "studies": summary.json_rows(table)}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(summary.text_lines(node.name, table)))
    return EXIT_OK


def _verify(config: Config, ref: str, *, repair: bool, as_json: bool) -> int:
    from qrtui.store import Store, StoreBusy, StoreError
    from qrtui.verify import verify

    try:
        node = config.store(ref)
        if node.directory is None:
            raise ConfigError(f"store {node.name} is external (no directory): nothing to verify")
    except ConfigError as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:  # repairing writes: the store is locked against a run
        with Store(node.directory, lock=repair) as store:
            report = verify(store, repair=repair)
    except (StoreBusy, StoreError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if as_json:
        json.dump({"store": node.name, **report.to_json()}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(report.lines(node.name)))
    if not report.clean:
        what = "could not be indexed" if repair else "disagree with the index (see above)"
        print(f"qrtui: store {node.name}: files {what}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def _history(config: Config, ref: str, *, limit: int | None, as_json: bool) -> int:
    from qrtui.report import history_lines
    from qrtui.store import StoreBusy, StoreError
    from qrtui.worker import opened_store

    if limit is not None and limit < 1:
        print("qrtui: --limit must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    try:
        node = config.store(ref)
        if not node.embedded:
            raise ConfigError(
                f"store {node.name} is external (no directory): only an embedded store keeps "
                "a history"
            )
        with opened_store(node, for_writing=False) as store:
            runs = store.history.runs(limit) if store is not None else []
    except ConfigError as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StoreBusy, StoreError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if as_json:
        json.dump({"store": node.name, "runs": [r.to_json() for r in runs]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        print("\n".join(history_lines(node.name, runs)))
    return EXIT_OK


def _listen(config: Config, ref: str) -> int:
    from qrtui.dicom.storescp import Receiver, StorageSCP
    from qrtui.store import Store, StoreBusy, StoreError

    try:
        node = config.store(ref)
    except ConfigError as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if node.directory is None:
        print(
            f"qrtui: store {node.name} is external (no directory): only an embedded store "
            "can listen",
            file=sys.stderr,
        )
        return EXIT_USAGE
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    def log(line: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)

    try:
        with Store(node.directory) as store:
            receiver = Receiver(store)
            with StorageSCP(node, receiver, log=log):
                for signum in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(signum, on_signal)
                log(
                    f"store {node.name} listening as {node.aet} on {node.address}, into "
                    f"{node.directory}; Ctrl-C stops"
                )
                while not stop.wait(0.5):
                    pass
            log(f"stopped: {len(receiver.received)} stored, {receiver.refused} refused")
    except (StoreBusy, StoreError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ConfigError as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def _ignore(event: Event) -> None:
    pass


class _StderrProgress:
    """One self-overwriting line on a terminal's stderr."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, FunnelProgress):
            total = f"/{event.total}" if event.total is not None else ""
            sys.stderr.write(f"\r\033[K{event.stage} {event.done}{total}")
        elif isinstance(event, RetrieveProgress):
            sys.stderr.write(
                f"\r\033[Kretrieve: study {event.studies_done}/{event.studies_total}, "
                f"{event.completed} completed, {event.failed} failed, "
                f"{size_text(event.bytes)}"
            )
        else:
            sys.stderr.write(f"\r\033[K{event.text}\n")
        sys.stderr.flush()

    def clear(self) -> None:
        sys.stderr.write("\r\033[K")
        sys.stderr.flush()


def _echo(config: Config) -> int:
    from qrtui.dicom.echo import all_usable, echo_all

    results = echo_all(config, on_result=None)
    for result in results:
        print(result.line())
    if not results:
        print(f"no nodes configured in {config.path}")
    return EXIT_OK if all_usable(results) else EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
