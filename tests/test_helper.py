"""A second process that receives a share of a retrieve (`retrieve_processes = 2`, issue 26),
against a real Orthanc: the run's store, history and counts are those of one process; a
helper killed mid-run leaves its work to the parent, nothing lost or stored twice; Ctrl-C
to the whole process group stops both, the helper leaving no process behind."""

# ruff: noqa: F811  (the backfill fixture, imported, is each test's argument)
from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from qrtui import clock, helpers, worker
from qrtui.config import RemoteNode, StoreNode, load_config
from qrtui.dicom.find import identifier
from qrtui.funnel import counts
from qrtui.query import build_query
from qrtui.report import plan_json
from qrtui.store import Store
from qrtui.worker import helper
from tests.test_backfill_orthanc import (  # noqa: F401  (backfill: the fixture)
    DAY_BY_DAY,
    FIRST,
    HELD,
    LAST,
    TODAY,
    Backfill,
    backfill,
    interrupted,
)
from tests.test_retrieve_integration import stored_objects

HELPED = "retrieve = 'get'\nretrieve_processes = 2\n"


def helped(backfill: Backfill, day_by_day: bool = False) -> Path:
    """The config's C-GET remote ("pacs-get") with a helper process; windows grown, or a
    day each."""
    text = backfill.config.read_text().replace("retrieve = 'get'\n", HELPED)
    if not day_by_day:
        text = text.replace(DAY_BY_DAY, "timeout = 10\n")
    backfill.config.write_text(text)
    return backfill.config


def helpers_of(pid: int) -> list[int]:
    """The helper processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rpartition(")")[2].split()[1])
        if parent == pid and b"qrtui.helping" in command:
            found.append(int(entry.name))
    return found


def run(config: Path, emit=lambda event: None) -> worker.JobOutcome:
    loaded = load_config(config)
    params = build_query(
        today=TODAY, date_from=FIRST.isoformat(), date_until=LAST.isoformat(), ct=True
    )
    return worker.run(
        loaded, loaded.remote("pacs-get"), loaded.store("local"), params, dry_run=False,
        emit=emit,
    )  # fmt: skip


def test_a_helper_takes_requests_and_the_run_is_that_of_one_process(
    backfill, tmp_path, monkeypatch
):
    (backfill.work / "release").touch()  # no day held
    monkeypatch.setattr(helper, "READY_SECONDS", 60.0)  # the pool waits for it
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    text = backfill.config.read_text().replace(str(tmp_path / "store"), str(plain_dir / "store"))
    (plain_dir / "config.toml").write_text(text)
    helped(backfill)

    two = run(backfill.config)
    assert two.status == 0, two.message
    assert two.summary is not None and two.summary.by_helpers > 0, "the helper sent requests"
    assert helpers_of(os.getpid()) == [], "stopped at the end of the run"
    one = run(plain_dir / "config.toml")
    assert one.status == 0 and one.summary is not None and one.summary.by_helpers == 0

    stores = {"two": tmp_path / "store", "one": plain_dir / "store"}
    assert stored_objects(stores["two"]) == stored_objects(stores["one"])
    assert stored_objects(stores["two"]) == set().union(*backfill.rdsrs.values())
    counts = {name: outcome.summary.to_json() for name, outcome in (("two", two), ("one", one))}
    assert counts["two"].pop("requests_by_helpers") == two.summary.by_helpers
    assert counts["two"] == counts["one"]
    doses = {}
    for name, path in stores.items():
        with Store(path) as index:
            doses[name] = sorted(index.doses.summaries())  # each RDSR's, as indexed
    assert doses["two"] == doses["one"] and len(doses["two"]) == 2 * len(backfill.rdsrs)


@pytest.mark.parametrize("when", ["handed a request", "its first object told"])
def test_a_helper_killed_mid_run_leaves_its_studies_to_the_parent(
    backfill, tmp_path, monkeypatch, when
):
    """Killed as the parent hands it a request (nothing of it answered: the parent asks it
    again itself), or as the parent reads the first object it stored (its index row stays;
    asked again, the object is not stored twice)."""
    (backfill.work / "release").touch()
    monkeypatch.setattr(helper, "READY_SECONDS", 60.0)
    helped(backfill)  # windows grown: a pool of more than one session
    killed: list[int] = []

    def kill(process: subprocess.Popen[bytes]) -> None:
        if not killed:
            killed.append(process.pid)
            process.kill()
            process.wait()

    if when == "handed a request":
        send = helper.Helper._send

        def send_then_die(self: helper.Helper, **message: object) -> bool:
            sent = send(self, **message)
            if message["op"] == "retrieve":
                kill(self._process)
            return sent

        monkeypatch.setattr(helper.Helper, "_send", send_then_die)
    else:
        told = helper.received_from_wire
        made: list[helper.Helper] = []
        monkeypatch.setattr(helper, "Helper", _Recorded(made))

        def told_then_die(found: dict) -> object:
            kill(made[0]._process)
            return told(found)

        monkeypatch.setattr(helper, "received_from_wire", told_then_die)

    outcome = run(backfill.config)
    assert killed, "the helper was killed"
    assert outcome.status == 0, outcome.message
    assert outcome.summary is not None and not outcome.summary.problems
    every = set().union(*backfill.rdsrs.values())
    assert stored_objects(tmp_path / "store") == every
    assert outcome.summary.stored == len(every), "each object counted stored once"


class _Recorded:
    """helper.Helper, keeping each one made."""

    def __init__(self, made: list[helper.Helper]) -> None:
        self.made = made
        self.real = helper.Helper

    def __call__(self, *args: object) -> helper.Helper:
        one = self.real(*args)  # type: ignore[arg-type]
        self.made.append(one)
        return one


def test_ctrl_c_to_the_process_group_stops_the_run_and_its_helper(backfill):
    config = helped(backfill, day_by_day=True)
    command = backfill.command()
    command[command.index("pacs")] = "pacs-get"
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip

    def ctrl_c() -> None:  # as a terminal's: to every process of the group
        assert helpers_of(proc.pid), "the helper runs beside the parent"
        os.killpg(proc.pid, signal.SIGINT)

    out, _ = interrupted(backfill, proc, ctrl_c)
    assert json.loads(out)["interrupted"] is True
    with pytest.raises(ProcessLookupError):  # nothing of the group is left
        os.killpg(proc.pid, 0)
    before = {d for d in backfill.rdsrs if d < HELD}
    assert stored_objects(config.parent / "store") == set().union(
        *(backfill.rdsrs[d] for d in before)
    )


def test_a_run_that_cannot_start_its_helper_works_without_it(backfill, tmp_path, monkeypatch):
    """No process to be had (a task limit, say): the run is that of one process."""
    (backfill.work / "release").touch()
    helped(backfill)
    real = subprocess.Popen

    def no_helper(command: list[str], *args: object, **kwargs: object) -> object:
        if helpers.START in command:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return real(command, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "Popen", no_helper)
    outcome = run(backfill.config)
    assert outcome.status == 0, outcome.message
    assert outcome.summary is not None and outcome.summary.by_helpers == 0
    assert stored_objects(tmp_path / "store") == set().union(*backfill.rdsrs.values())


def test_a_helper_whose_parent_dies_mid_message_leaves(tmp_path):
    """Its input ends inside a line (the parent killed as it wrote): it leaves at once."""
    node = RemoteNode("pacs", "PACS", "127.0.0.1", 104)
    alone = helpers.Helper("QRTUI", node, StoreNode("local", "QRTUI", directory=tmp_path))
    process = alone._process
    assert process is not None and process.stdin is not None
    try:
        assert alone.ready.wait(120), "the helper started"
        process.stdin.write(b'{"op": "expected", "expected": {"1.2.3": ["1.2')
        process.stdin.close()
        assert process.wait(60) == 0
    finally:
        alone.kill()
        process.wait()


def planned(config: Path) -> worker.JobOutcome:
    """A dry run of the range."""
    loaded = load_config(config)
    params = build_query(
        today=TODAY, date_from=FIRST.isoformat(), date_until=LAST.isoformat(), ct=True
    )
    return worker.run(
        loaded, loaded.remote("pacs-get"), loaded.store("local"), params, dry_run=True
    )  # fmt: skip


def plan_of(outcome: worker.JobOutcome, sent: bool = True) -> dict[str, object]:
    """What a dry run decided and said, but for who sent its queries (and, unless `sent`,
    how many were sent)."""
    assert outcome.result is not None
    found = plan_json("pacs", "local", outcome.params, outcome.result)
    found.pop("find_requests_by_helpers", None)
    if not sent:
        found.pop("find_requests")
    return found


@pytest.fixture
def one_query_a_study(monkeypatch):
    """Series asked study by study: many queries a window, so the funnel's pool grows to
    take the helper (which the pool waits for)."""
    monkeypatch.setattr(counts, "SERIES_PER_QUERY", 1)
    monkeypatch.setattr(helper, "READY_SECONDS", 60.0)


def test_a_helper_takes_queries_and_the_plan_is_that_of_one_process(
    backfill, tmp_path, one_query_a_study
):
    (backfill.work / "release").touch()
    plain = tmp_path / "plain.toml"
    plain.write_text(backfill.config.read_text().replace(DAY_BY_DAY, "timeout = 10\n"))
    one = planned(plain)
    assert one.status == 0 and one.result is not None, one.message
    assert one.result.find_requests_by_helpers == 0
    two = planned(helped(backfill))
    assert two.status == 0 and two.result is not None, two.message
    assert two.result.find_requests_by_helpers > 0, "the helper sent queries"
    assert plan_json("pacs", "local", two.params, two.result)["find_requests_by_helpers"] > 0
    assert helpers_of(os.getpid()) == [], "stopped at the end of the run"
    assert plan_of(two) == plan_of(one)
    assert {s["study_instance_uid"] for s in plan_of(two)["studies"]} == {  # type: ignore[attr-defined]
        uid for day in backfill.rdsrs for uid in _studies_of(backfill, day)
    }


def _studies_of(backfill: Backfill, day: object) -> set[str]:
    """The studies of a day whose RDSRs the fixture made."""
    from pydicom import dcmread

    found = set()
    for path in (backfill.work.parent / "objects").rglob("*.dcm"):
        ds = dcmread(path, stop_before_pixels=True)
        if ds.SOPInstanceUID in backfill.rdsrs[day]:  # type: ignore[index]
            found.add(str(ds.StudyInstanceUID))
    return found


@pytest.mark.parametrize(
    "how", ["killed as it is handed a query", "a fault of its own", "cancelled unasked"]
)
def test_a_query_the_helper_does_not_answer_is_asked_by_the_run(
    backfill, tmp_path, monkeypatch, one_query_a_study, how
):
    """Killed as the parent hands it a query, failing on it for a reason of its own (here:
    a query it cannot read), or ending it cancelled when the run did not cancel: the run
    asks the query itself, and the plan is the same."""
    (backfill.work / "release").touch()
    plain = tmp_path / "plain.toml"
    plain.write_text(backfill.config.read_text().replace(DAY_BY_DAY, "timeout = 10\n"))
    one = planned(plain)
    send, struck = helper.Helper._send, []

    def send_then_strike(self: helper.Helper, **message: object) -> bool:
        if message["op"] == "find" and not struck:
            struck.append(message["id"])
            if how == "a fault of its own":
                message = {**message, "identifier": {"00080052": {"vr": "??"}}}
            sent = send(self, **message)
            if how == "killed as it is handed a query":
                assert self._process is not None
                self._process.kill()
                self._process.wait()
            if how == "cancelled unasked":
                send(self, op="cancel", id=message["id"])
            return sent
        return send(self, **message)

    monkeypatch.setattr(helper.Helper, "_send", send_then_strike)
    two = planned(helped(backfill))
    assert struck, "the helper was handed a query"
    assert two.status == 0, two.message
    assert plan_of(two, sent=False) == plan_of(one, sent=False)
    assert two.result is not None and one.result is not None
    assert two.result.find_requests >= one.result.find_requests  # the helper's counted too
    assert helpers_of(os.getpid()) == []


def test_a_helper_whose_run_is_gone_stops_the_query_it_is_sending(backfill, tmp_path):
    """Its input closed (the run gone) while a query of its is held by the node: it stops
    that query at the node's next answer and leaves, without answering it."""
    loaded = load_config(helped(backfill))
    alone = helpers.Helper(loaded.client.aet, loaded.remote("pacs-get"), loaded.store("local"))
    process = alone._process
    assert process is not None and process.stdin is not None and process.stdout is not None
    try:
        assert alone.ready.wait(120), "the helper started"
        opened = next(alone.ask(op="find_open"))
        assert opened == {"op": "find_opened", "ok": True}
        query = identifier("STUDY", StudyDate=HELD.strftime("%Y%m%d"), StudyInstanceUID="")
        alone.send(op="find", id=1, identifier=query.to_json_dict(), limit=None)
        deadline = clock.monotonic() + 120
        while not (backfill.work / "held").exists():  # Orthanc's Lua holds the query
            assert clock.monotonic() < deadline and process.poll() is None
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(0.05)
        process.stdin.close()  # the run is gone
        (backfill.work / "release").touch()  # the node answers
        assert process.wait(60) == 0
        said = []  # all it wrote, to its end
        while (answer := alone._answers.get(timeout=60)) is not None:
            said.append(answer["op"])
        assert "found" not in said and "error" in said, said
    finally:
        (backfill.work / "release").touch()
        alone.kill()
        process.wait()
