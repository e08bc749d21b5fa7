"""A scripted run: the query of the flags (or of a profile), planned, retrieved, reported."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from dataclasses import replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

from qrtui import clock, helpers
from qrtui.cli.progress import StderrProgress, pauses_only
from qrtui.config import (
    GROUP_NAMES,
    Config,
    ConfigError,
    Profile,
    RemoteNode,
    StoreNode,
    parse_overlap,
)
from qrtui.query import QueryError, QueryParams, build_query, parse_date
from qrtui.status import EXIT_USAGE, usage_problem

if TYPE_CHECKING:
    from qrtui.worker import RunContext


def run_demo(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
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
        return scripted(parser, args, config, face="demo")


def scripted(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    config: Config,
    face: str = "scripted",
) -> int:
    try:
        profile = config.profile(args.profile) if args.profile else None
        if profile is not None:
            apply_profile(args, profile)
        if not (args.remote and args.store):
            parser.error("--no-tui needs REMOTE and STORE (or --profile, --echo, --history)")
        since = since_last_window(args, profile)
        params = build_query(
            today=clock.today(),
            **{k: getattr(args, k) for k in QUERY_FLAGS},
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

    context = RunContext(
        face=face,
        profile=profile.name if profile else None,
        forward=config.forward_for(store, profile),
        wait=args.wait or 0.0,
        on_wait=say,
    )
    if since is not None:
        overlap, first_from = since
        key = profile.name if profile else query_key(remote.name, store.name, params)
        context = replace(context, since_last=SinceLast(key, overlap, first_from))
    signal.signal(signal.SIGTERM, interrupt)
    return run_query(
        config, remote, store, params, as_json=args.json, dry_run=args.dry_run, context=context
    )


def say(line: str) -> None:
    print(f"qrtui: {line}", file=sys.stderr, flush=True)


def apply_profile(args: argparse.Namespace, profile: Profile) -> None:
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


def since_last_window(
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


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: associations aborted, store closed


QUERY_FLAGS = (
    "ct", "mg", "fl", "dx", "sr", "date_from", "date_until", "single_date", "time_from",
    "time_until", "desc_exclude", "desc_include", "station_exclude", "station_include",
    "dup", "toshiba", "emptysr", "only_studies", "exclude_studies",
)  # fmt: skip


def run_query(
    config: Config,
    remote: RemoteNode,
    store_node: StoreNode,
    params: QueryParams,
    *,
    as_json: bool,
    dry_run: bool,
    context: RunContext,
) -> int:
    helpers.prestart(config.client.aet, remote, store_node)  # before what follows loads
    from qrtui import worker
    from qrtui.cli.streamed import stdout_report
    from qrtui.report import missing_json, plan_json, plan_lines, retrieve_lines

    progress = StderrProgress() if sys.stderr.isatty() else None
    streamed = stdout_report(remote.name, store_node.name, as_json, context.profile, progress)
    try:
        outcome = worker.run(
            config, remote, store_node, params, dry_run=dry_run, emit=progress or pauses_only,
            context=context, on_window=streamed.window,
        )  # fmt: skip
    except KeyboardInterrupt:
        if streamed.started:  # what was written stays one document
            streamed.finish(worker.JobOutcome(130), interrupted=True)
        raise
    finally:
        helpers.discard()  # where the run ended before it took them
    if progress:
        progress.clear()
    if outcome.message:
        print(f"qrtui: {outcome.message}", file=sys.stderr)
    elif outcome.status:  # a cron job's error log must say why, whatever the output
        print(f"qrtui: ended with status {outcome.status}; see the summary", file=sys.stderr)
    if streamed.started:  # a run in days: its studies are written already
        streamed.finish(outcome)
        return outcome.status
    if outcome.result is None:
        return outcome.status
    params = outcome.params or params
    if as_json:
        document = plan_json(remote.name, store_node.name, params, outcome.result)
        document["profile"] = context.profile
        if outcome.summary is not None:
            document["retrieve"] = outcome.summary.to_json()
            document["missing"] = missing_json(outcome.summary)
        if outcome.delivery is not None:
            document["forward"] = outcome.delivery.to_json()
        document["run_id"] = outcome.run_id
        json.dump(document, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        lines = plan_lines(remote.name, store_node.name, outcome.result)
        if outcome.summary is not None:
            lines += retrieve_lines(outcome.summary)
        if outcome.delivery is not None:
            lines += ["", "Delivered:"] + [d.line() for d in outcome.delivery.destinations]
        print("\n".join(lines))
    return outcome.status
