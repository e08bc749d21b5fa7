"""One verb per job (issue 24): each has its own help with an example; the flat qrscu form
and the `--no-tui --echo/--probe/--history/--summary/--verify/--listen` forms still run,
and give what the verbs give; mistakes are one line and exit 2, with a suggestion."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from qrtui.cli.verbs import VERBS
from qrtui.demo import demo_config
from qrtui.demo.pacs import DemoPacs
from tests.conftest import qrtui

TODAY = date(2026, 3, 10)
WINDOW = ("-f", (TODAY - timedelta(days=1)).isoformat(), "-t", TODAY.isoformat())


def command(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "qrtui", *args], capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_the_help_lists_every_verb_and_each_verb_has_its_own_help_with_an_example():
    main = command("--help")
    assert main.returncode == 0
    for name in VERBS:
        assert f"\n  {name} " in main.stdout, name
        own = command(name, "--help")
        assert own.returncode == 0, own.stderr
        assert own.stdout.startswith(f"usage: qrtui {name}")
        assert f"Example:\n  qrtui {name}" in own.stdout or name == "completion"
        assert "Example:\n  " in own.stdout


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("rnu",), "unknown verb 'rnu' (did you mean 'run'?)"),
        (("prob", "pacs"), "did you mean 'probe'?"),
        (("run", "pacs", "local", "-ct", "--jsn"), "--jsn (did you mean --json?)"),
        (("--no-tui", "pacs", "local", "-ct", "--dryrun"), "(did you mean --dry-run?)"),
        (("history",), "the following arguments are required: STORE"),
    ],
)
def test_a_mistyped_verb_or_flag_is_one_line_and_exit_2(args, said):
    done = command(*args)
    assert done.returncode == 2
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.fixture
def demo(tmp_path):
    with DemoPacs(today=TODAY) as pacs:
        yield demo_config(tmp_path, pacs).path


def both(config: Path, verb: tuple[str, ...], flat: tuple[str, ...]) -> tuple[dict, dict]:
    """The verb's JSON document and the flat form's, each exit 0."""
    documents = []
    for args in (verb, flat):
        if args[0] in VERBS:
            done = command(args[0], "--config", str(config), *args[1:])
        else:
            done = qrtui(config, *args)
        assert done.returncode == 0, (args, done.stderr)
        documents.append(json.loads(done.stdout))
    return documents[0], documents[1]


def test_run_is_the_flat_qrscu_form(demo):
    verb, flat = both(
        demo, ("run", "demo", "demo-store", "-mg", *WINDOW, "--json"),
        ("demo", "demo-store", "-mg", *WINDOW, "--json"),
    )  # fmt: skip
    assert verb["retrieve"]["stored"] > 0 and verb["query"] == flat["query"]
    # the same query, a second time: what the verb fetched, the flat form finds held
    assert flat["retrieve"]["stored"] == 0
    assert flat["counts"]["removed: already held"] == len(verb["studies"])


def test_probe_history_summary_and_verify_as_verbs_and_as_flags(demo):
    assert qrtui(demo, "demo", "demo-store", "-mg", *WINDOW).returncode == 0
    probe = both(
        demo, ("probe", "demo", "-f", WINDOW[1], "--json"), ("--probe", "demo", "-f", WINDOW[1],
                                                              "--json"),
    )  # fmt: skip
    assert probe[0]["c_get"] is probe[1]["c_get"] is True
    history = both(demo, ("history", "demo-store", "--json"), ("--history", "demo-store", "--json"))
    assert history[0] == history[1] and len(history[0]["runs"]) == 1
    summary = both(demo, ("summary", "demo-store", "--json"), ("--summary", "demo-store", "--json"))
    assert summary[0] == summary[1] and summary[0]["studies"]
    verify = both(demo, ("verify", "demo-store", "--json"), ("--verify", "demo-store", "--json"))
    assert verify[0] == verify[1] and verify[0]["clean"] is True


def test_echo_as_a_verb_and_as_a_flag(demo):
    verb = command("echo", "--config", str(demo))
    flat = qrtui(demo, "--echo")
    assert verb.returncode == flat.returncode == 0, verb.stderr + flat.stderr
    assert verb.stdout.splitlines()[0].split(":")[0] == flat.stdout.splitlines()[0].split(":")[0]


@pytest.mark.parametrize("form", ["verb", "flag"])
def test_listen_as_a_verb_and_as_a_flag(demo, form):
    args = ["listen", "demo-store"] if form == "verb" else ["--no-tui", "--listen", "demo-store"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "qrtui", "--config", str(demo), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # written once the store listens
        assert "listening as QRTUI_DEMO_STORE" in first, first + proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "stopped: 0 stored" in out


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts_complete_the_verbs_and_their_flags(shell):
    done = command("completion", shell)
    assert done.returncode == 0
    for name in VERBS:
        assert name in done.stdout
    assert "--repair" in done.stdout and "--since-last" in done.stdout
    bash = shutil.which("bash")
    if shell == "bash" and bash:
        script = (
            done.stdout + "\nCOMP_WORDS=(qrtui ver); COMP_CWORD=1; _qrtui; echo ${COMPREPLY[@]}\n"
        )
        ran = subprocess.run([bash, "-c", script], capture_output=True, text=True, timeout=30)
        assert ran.stdout.split() == ["verify"], ran.stderr
        script = (
            done.stdout
            + "\nCOMP_WORDS=(qrtui verify --re); COMP_CWORD=2; _qrtui; echo ${COMPREPLY[@]}\n"
        )
        ran = subprocess.run([bash, "-c", script], capture_output=True, text=True, timeout=30)
        assert ran.stdout.split() == ["--repair"], ran.stderr
    else:
        assert done.stdout.startswith("#compdef qrtui")


def test_the_command_ends_with_mains_status_its_output_written_and_exit_functions_run(
    tmp_path,
):
    """qrtui.cli.run leaves without Python's tear-down of every module, but not without
    what a run registered to do at exit, nor what it wrote."""
    marker = tmp_path / "exit-function-ran"
    script = (
        f"import atexit, sys; atexit.register(lambda: open({str(marker)!r}, 'w').close()); "
        "sys.argv = ['qrtui', 'completion', 'bash']; from qrtui.cli import run; run()"
    )
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=buffered
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# bash completion") or "_qrtui" in done.stdout
    assert marker.exists(), "the exit functions ran"
    bad = script.replace("'completion', 'bash'", "'--no-tui', '--config', '/nonexistent/x'")
    failed = subprocess.run(
        [sys.executable, "-c", bad], capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 2 and "configuration file not found" in failed.stderr
