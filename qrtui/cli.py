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
from datetime import date
from typing import NoReturn

from qrtui import __version__
from qrtui.config import (
    ClientConfig,
    Config,
    ConfigError,
    RemoteNode,
    StoreNode,
    load_config,
    resolve_config_path,
)
from qrtui.events import Event, FunnelProgress, RetrieveProgress, size_text
from qrtui.query import QueryError, QueryParams, build_query
from qrtui.status import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, EXIT_USAGE, usage_problem


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

            return run_app(config, start="query")
        args.remote, args.store = args.remote or DEMO_REMOTE, args.store or DEMO_STORE
        if not (args.ct or args.mg or args.fl or args.dx or args.sr):
            args.ct = args.mg = args.fl = args.dx = True
        if not (args.date_from or args.date_until or args.single_date):
            args.date_from, args.date_until = "yesterday", "today"
        print(
            f"qrtui: demo PACS {pacs.aet} on 127.0.0.1:{pacs.port}, store in {directory / 'store'}",
            file=sys.stderr,
        )
        return _scripted(parser, args, config)


def _scripted(parser: argparse.ArgumentParser, args: argparse.Namespace, config: Config) -> int:
    if args.echo:
        return _echo(config)
    if args.listen:
        return _listen(config, args.listen)
    if not (args.remote and args.store):
        parser.error("--no-tui needs REMOTE and STORE (or --echo)")
    try:
        params = build_query(
            today=date.today(),
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
    signal.signal(signal.SIGTERM, _interrupt)
    return _run(config, remote, store, params, as_json=args.json, dry_run=args.dry_run)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: associations aborted, store closed


_QUERY_FLAGS = (
    "ct", "mg", "fl", "dx", "sr", "date_from", "date_until", "single_date", "time_from",
    "time_until", "desc_exclude", "desc_include", "station_exclude", "station_include",
    "dup", "toshiba", "emptysr",
)  # fmt: skip


def _run(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    *,
    as_json: bool,
    dry_run: bool,
) -> int:
    from qrtui import worker
    from qrtui.report import plan_json, plan_lines, retrieve_lines

    progress = _StderrProgress() if sys.stderr.isatty() else None
    outcome = worker.run(
        config, remote, store_node, params, dry_run=dry_run, emit=progress or _ignore
    )
    if progress:
        progress.clear()
    if outcome.message:
        print(f"qrtui: {outcome.message}", file=sys.stderr)
    if outcome.result is None:
        return outcome.status
    if as_json:
        document = plan_json(remote.name, store_node.name, params, outcome.result)
        if outcome.summary is not None:
            document["retrieve"] = outcome.summary.to_json()
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        lines = plan_lines(remote.name, store_node.name, outcome.result)
        if outcome.summary is not None:
            lines += retrieve_lines(outcome.summary)
        print("\n".join(lines))
    return outcome.status


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
