"""The flags of the scripted mode (qrscu's, and ours): one parser for the old flat form, and
the groups of arguments the verbs share."""

from __future__ import annotations

import argparse
import difflib
from typing import NoReturn

from qrtui import __version__
from qrtui.status import EXIT_USAGE


class UsageParser(argparse.ArgumentParser):
    """A mistake is one line and exit 2, with the nearest flag where one is close."""

    def error(self, message: str) -> NoReturn:
        unknown = message.partition("unrecognized arguments: ")[2].split()
        known = list(self._option_string_actions)
        for word in unknown:
            close = difflib.get_close_matches(word, known, n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
                break
        self.exit(EXIT_USAGE, f"qrtui: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from qrtui.cli.verbs import verbs_epilog  # the verbs are built from these flags

    parser = UsageParser(
        prog="qrtui",
        description="Query and retrieve radiation-dose objects (RDSR, Enhanced SR, "
        "dose pages, DX/MG/CR headers) from PACS and modalities.",
        epilog=verbs_epilog() + "\n\nExit status: 0 done, 1 some objects failed, 2 usage or "
        "configuration error, 3 a node could not be reached, 4 fetched but not all delivered "
        "to the destinations, 5 skipped: another qrtui holds the store.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"qrtui {__version__}")
    parser.add_argument(
        "--no-tui", action="store_true", help="scripted mode: no terminal UI, output on stdout"
    )
    add_config(parser)
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
        "--delivery",
        action="store_true",
        help="with --summary: a last column saying, per destination, how many of each "
        "study's dose objects were sent, are queued or were refused",
    )
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
    add_forward_arguments(parser)
    parser.add_argument(
        "--trace",
        metavar="STUDY_UID",
        help="with --no-tui: one study's chain of custody from every embedded store's index: "
        "what the PACS listed, what the rules chose and why, what arrived and where it was "
        "delivered (--json)",
    )
    add_run_arguments(parser)
    return parser


def add_forward_arguments(parser: argparse.ArgumentParser, *, flat: bool = True) -> None:
    if flat:
        parser.add_argument(
            "--forward",
            metavar="STORE",
            help="with --no-tui: deliver what STORE holds queued to its destinations; exit 0 "
            "when nothing is left queued, 4 when some is",
        )
    parser.add_argument(
        "--resend",
        action="store_true",
        help="with --forward: queue again the objects of --only-study UID or of study dates "
        "-f/-t, delivered or not, then deliver them",
    )
    parser.add_argument(
        "--to",
        dest="destinations",
        action="append",
        metavar="DESTINATION",
        help="with --forward: only this destination (repeatable); --resend queues for these "
        "(default: the store's forward list)",
    )


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $QRTUI_CONFIG, else config.toml in the user "
        "configuration directory)",
    )


def add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="when another qrtui holds the store, wait up to this long for it (default: "
        "do not wait: exit 5, the next run catches up)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """What a run asks: qrscu's flags, a profile, --since-last, --dry-run, --json."""
    add_wait(parser)
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
