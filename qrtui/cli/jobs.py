"""The scripted jobs other than a run: echo, probe, history, summary, verify, listen."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from qrtui import clock
from qrtui.cli.progress import StderrProgress
from qrtui.config import Config, ConfigError
from qrtui.query import QueryError, parse_date
from qrtui.status import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, EXIT_USAGE


def echo_job(config: Config) -> int:
    from qrtui.dicom.echo import all_usable, echo_all

    results = echo_all(config, on_result=None)
    for result in results:
        print(result.line())
    if not results:
        print(f"no nodes configured in {config.path}")
    return EXIT_OK if all_usable(results) else EXIT_UNREACHABLE


def probe_job(config: Config, args: argparse.Namespace) -> int:
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
    progress = StderrProgress() if sys.stderr.isatty() else None

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


def history_job(config: Config, ref: str, *, limit: int | None, as_json: bool) -> int:
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


def summary_job(config: Config, args: argparse.Namespace) -> int:
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
            if args.delivery:
                table = summary.with_delivery(table, store)
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


def verify_job(config: Config, ref: str, *, repair: bool, as_json: bool) -> int:
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
            store.forward_to = node.forward  # an orphan indexed now was never queued
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


def listen_job(config: Config, ref: str) -> int:
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

    arrived = threading.Event()  # an object came in: wakes the forwarder

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
        arrived.set()

    def log(line: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)

    try:
        with Store(node.directory) as store:
            store.forward_to = node.forward
            receiver = Receiver(store, on_received=lambda received: arrived.set())
            forwarder = threading.Thread(
                target=forward_while_listening, args=(config, store, arrived, stop, log),
                name="forward", daemon=True,
            )  # fmt: skip
            with StorageSCP(node, receiver, log=log):
                for signum in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(signum, on_signal)
                forwarder.start()
                log(
                    f"store {node.name} listening as {node.aet} on {node.address}, into "
                    f"{node.directory}; Ctrl-C stops"
                )
                while not stop.wait(0.5):
                    pass
                forwarder.join()
            log(f"stopped: {len(receiver.received)} stored, {receiver.refused} refused")
    except (StoreBusy, StoreError) as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ConfigError as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


RETRY_SECONDS = 60.0  # how often a listener tries again what a destination did not take
GATHER_SECONDS = 1.0  # objects of one push are delivered together


def forward_while_listening(
    config: Config,
    store: Any,
    arrived: threading.Event,
    stop: threading.Event,
    log: Callable[[str], None],
) -> None:
    """Deliver what is queued when objects arrive, and again every RETRY_SECONDS."""
    from qrtui.forward import deliver

    arrived.set()  # what earlier runs left queued goes first
    while not stop.is_set():
        arrived.wait(RETRY_SECONDS)  # an arrival, a stop, or time to try again
        if stop.wait(GATHER_SECONDS):
            return
        arrived.clear()
        if stop.is_set() or not store.ledger.destinations_waiting():
            continue
        report = deliver(config, store, cancel=stop)
        for part in report.destinations:
            if part.sent or part.refused or part.stopped:
                log(part.line())
