"""One verb per job, each with its own help and an example: `qrtui run REMOTE STORE -ct`,
`qrtui echo`, `qrtui probe REMOTE`, `qrtui history STORE`, `qrtui summary STORE`,
`qrtui verify STORE`, `qrtui listen STORE`, `qrtui forward STORE`, `qrtui trace STUDY_UID`,
`qrtui completion bash|zsh`.

A verb's arguments land in the namespace the flat form (`qrtui --no-tui --probe REMOTE`)
gives, so both run the same code and qrscu-style cron lines keep working."""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qrtui.cli.flags import (
    UsageParser,
    add_config,
    add_forward_arguments,
    add_run_arguments,
    add_wait,
    build_parser,
)


@dataclass(frozen=True)
class Verb:
    name: str
    summary: str
    example: str
    arguments: Callable[[argparse.ArgumentParser], None]


def _dates(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-f", dest="date_from", metavar="DATE", help=f"{what} from this date")
    parser.add_argument("-t", dest="date_until", metavar="DATE", help=f"{what} until this date")


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")


def _echo(parser: argparse.ArgumentParser) -> None:
    """No arguments: the verb itself is the flat form's --echo (see parse_verb)."""


def _probe(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("probe", metavar="REMOTE", help="remote node (name or number)")
    _dates(parser, "studies")
    parser.add_argument(
        "--save", action="store_true", help="keep the findings in nodes.learned.toml"
    )
    parser.add_argument(
        "--move-test", action="store_true", help="also C-MOVE one SR series to a store"
    )
    parser.add_argument("--store", metavar="STORE", help="with --move-test: the store to move to")
    _json(parser)


def _history(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("history", metavar="STORE", help="embedded store (name or number)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the newest N runs")
    _json(parser)


def _summary(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("summary", metavar="STORE", help="embedded store (name or number)")
    _dates(parser, "studies")
    parser.add_argument("--csv", action="store_true", help="CSV (RFC 4180)")
    parser.add_argument(
        "--delivery", action="store_true",
        help="a last column: per destination, each study's objects sent, queued, refused",
    )  # fmt: skip
    _json(parser)


def _verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("verify", metavar="STORE", help="embedded store (name or number)")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="forget rows whose files are gone or cut short, index files without rows",
    )
    _json(parser)


def _listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("listen", metavar="STORE", help="embedded store (name or number)")


def _forward(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("forward", metavar="STORE", help="embedded store (name or number)")
    add_forward_arguments(parser, flat=False)
    add_wait(parser)
    parser.add_argument(
        "--only-study", dest="only_studies", action="append", metavar="UID",
        help="with --resend: this study (repeatable)",
    )  # fmt: skip
    _dates(parser, "with --resend: studies")
    _json(parser)


def _trace(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", metavar="STUDY_UID", help="the study's Study Instance UID")
    _json(parser)


def _completion(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")


VERBS = {
    verb.name: verb
    for verb in (
        Verb("run", "query and retrieve the dose objects of a window (qrscu's flags)",
             "qrtui run pacs local -ct -mg -f 7d --json", add_run_arguments),
        Verb("echo", "C-ECHO every node in parallel, one line each", "qrtui echo", _echo),
        Verb("probe", "ask a remote harmless questions about the studies of -f/-t (default "
             "the last 7 days): what it matches, returns, caps; retrieves nothing",
             "qrtui probe pacs --save", _probe),
        Verb("history", "the runs recorded in a store, newest first",
             "qrtui history local --limit 5", _history),
        Verb("summary", "one row per study a store holds, with its headline dose",
             "qrtui summary local -f 30d --csv > doses.csv", _summary),
        Verb("verify", "check a store's files against its index (and --repair it)",
             "qrtui verify local --repair", _verify),
        Verb("listen", "run a store as a Storage SCP until Ctrl-C, for pushes (and forward)",
             "qrtui listen local", _listen),
        Verb("forward", "deliver what a store holds queued to its destinations",
             "qrtui forward local --json", _forward),
        Verb("trace", "one study's chain of custody: listed, chosen, arrived, delivered",
             "qrtui trace 1.2.826.0.1.3680043.9.1", _trace),
        Verb("completion", "print a completion script for bash or zsh",
             'eval "$(qrtui completion bash)"', _completion),
    )
}  # fmt: skip


def verb_parser(verb: Verb) -> UsageParser:
    parser = UsageParser(
        prog=f"qrtui {verb.name}",
        description=verb.summary[0].upper() + verb.summary[1:] + ".",
        epilog=f"Example:\n  {verb.example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    add_config(parser)
    verb.arguments(parser)
    return parser


def split_verb(argv: Sequence[str]) -> tuple[list[str], str | None, list[str]]:
    """(what comes before the verb: --config PATH, the verb or None, its arguments)."""
    head: list[str] = []
    rest = list(argv)
    while rest and (rest[0] == "--config" or rest[0].startswith("--config=")):
        take = 1 if "=" in rest[0] else 2
        head, rest = head + rest[:take], rest[take:]
    if rest and not rest[0].startswith("-"):
        return head, rest[0], rest[1:]
    return head, None, rest


def parse_verb(
    verb_name: str, head: list[str], rest: list[str]
) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The verb's arguments, in the namespace of the flat form (`--no-tui`), with its
    defaults wherever the verb has no such argument. An unknown verb: exit 2, with the
    nearest one."""
    verb = VERBS.get(verb_name)
    if verb is None:
        close = difflib.get_close_matches(verb_name, VERBS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        build_parser().error(f"unknown verb '{verb_name}'{hint}; verbs: {', '.join(VERBS)}")
    parser = verb_parser(verb)
    namespace = build_parser().parse_args([])
    parser.parse_args(head + rest, namespace=namespace)
    namespace.no_tui = True
    namespace.echo = verb.name == "echo"
    return parser, namespace


def verbs_epilog() -> str:
    width = max(len(name) for name in VERBS)
    lines = [f"  {name:<{width}}  {verb.summary}" for name, verb in VERBS.items()]
    return (
        "verbs (qrtui VERB --help for each):\n" + "\n".join(lines) + "\n\n"
        "qrtui alone starts the terminal UI. The flat form of OpenREM's qrscu stays:\n"
        "  qrtui --no-tui REMOTE STORE -ct ...  is  qrtui run REMOTE STORE -ct ...\n"
        "  qrtui --no-tui --probe REMOTE        is  qrtui probe REMOTE (and so on)"
    )


def completion_script(shell: str) -> str:
    """Completion of verbs and of each verb's flags, generated from the parsers."""
    flat = " ".join(sorted(build_parser()._option_string_actions))
    cases = []
    for name, verb in VERBS.items():
        options = " ".join(sorted(verb_parser(verb)._option_string_actions))
        words = f"{options} bash zsh" if name == "completion" else options
        cases.append(f'    {name}) words="{words}" ;;')
    script = "\n".join(
        [
            "_qrtui() {",
            '    local cur="${COMP_WORDS[COMP_CWORD]}" words',
            '    if [ "$COMP_CWORD" -eq 1 ]; then',
            f'        COMPREPLY=($(compgen -W "{" ".join(VERBS)} {flat}" -- "$cur"))',
            "        return",
            "    fi",
            '    case "${COMP_WORDS[1]}" in',
            *cases,
            f'    *) words="{flat}" ;;',
            "    esac",
            '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
            "}",
            "complete -o default -F _qrtui qrtui",
        ]
    )
    if shell == "zsh":
        return f"#compdef qrtui\nautoload -U +X bashcompinit && bashcompinit\n{script}\n"
    return script + "\n"
