"""Command line: `qrtui` starts the TUI; `qrtui --no-tui ...` is the scripted mode."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from qrtui import __version__
from qrtui.config import Config, ConfigError, load_config, resolve_config_path

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


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


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(resolve_config_path(args.config))
    except ConfigError as exc:
        print(f"qrtui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.no_tui:
        return _scripted(parser, args, config)
    from qrtui.tui.app import run_app  # Textual loads only for the TUI

    return run_app(config)


def _scripted(parser: argparse.ArgumentParser, args: argparse.Namespace, config: Config) -> int:
    if args.echo:
        return _echo(config)
    parser.error("--no-tui needs --echo")


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
