"""Command line: `qrtui` starts the TUI; `qrtui VERB ...` runs one job (run, echo, probe,
history, summary, verify, listen, forward, trace, completion); `qrtui --no-tui ...`,
qrscu's flat form, stays. A face: it may import the worker and the plain types below it,
never Textual (the TUI is loaded only when it starts); `listen` runs the storage SCP itself."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from qrtui.cli.delivery import forward_job, trace_job
from qrtui.cli.flags import build_parser
from qrtui.cli.jobs import echo_job, history_job, listen_job, probe_job, summary_job, verify_job
from qrtui.cli.run import run_demo, scripted
from qrtui.cli.verbs import completion_script, parse_verb, split_verb
from qrtui.config import ClientConfig, Config, ConfigError, load_config, resolve_config_path
from qrtui.status import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE


def run() -> NoReturn:
    """The command: main(), then out at once. Python's own exit tears down every module
    (pydicom's dictionaries, pynetdicom's contexts), about 50 ms of every run. Everything
    of the run is closed by then (the store, its associations, its helper); what is left
    is written out, and the exit functions run, first. Where a thread of the run still
    works, Python's own exit waits for it."""
    code = main()
    others = (t for t in threading.enumerate() if t is not threading.main_thread())
    if any(t.is_alive() and not t.daemon for t in others):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a reader gone: nothing more to tell it
            stream.flush()
    os._exit(code)


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
    argv = sys.argv[1:] if argv is None else list(argv)
    head, verb, rest = split_verb(argv)
    if verb == "completion":
        _, args = parse_verb(verb, head, rest)
        sys.stdout.write(completion_script(args.shell))
        return EXIT_OK
    if verb is not None and "--no-tui" not in argv:  # the flat form names REMOTE STORE
        parser, args = parse_verb(verb, head, rest)
    else:
        parser = build_parser()
        args = parser.parse_args(argv)
    if args.demo:
        return run_demo(parser, args)  # a run, against the demo PACS
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
        return _job(parser, args, config)
    from qrtui.tui.app import run_app  # Textual loads only for the TUI

    return run_app(config)


def _job(parser: argparse.ArgumentParser, args: argparse.Namespace, config: Config) -> int:
    """The scripted job the flags name; a run where they name none."""
    if args.echo:
        return echo_job(config)
    if args.listen:
        return listen_job(config, args.listen)
    if args.history:
        return history_job(config, args.history, limit=args.limit, as_json=args.json)
    if args.probe:
        return probe_job(config, args)
    if args.summary:
        return summary_job(config, args)
    if args.verify:
        return verify_job(config, args.verify, repair=args.repair, as_json=args.json)
    if args.forward:
        return forward_job(config, args)
    if args.trace:
        return trace_job(config, args.trace, as_json=args.json)
    return scripted(parser, args, config)
