"""Know each PACS (issue 15): the probe's facts about real Orthanc and dcmqrscp and about each
demo PACS knob; findings kept apart from the configuration; runs that use them send fewer
C-FINDs and plan exactly the same."""

from __future__ import annotations

import json
import re
import stat
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from qrtui import clock, funnel, worker
from qrtui.config import load_config
from qrtui.demo import DEMO_REMOTE, DEMO_STORE, demo_config
from qrtui.demo.pacs import DemoPacs, Faults
from qrtui.funnel import IMAGE_QUERIES, SERIES_QUERIES
from qrtui.query import build_query
from tests.conftest import corpus_if_present, qrtui, require
from tests.servers import (
    DCMQRSCP_BIN,
    ORTHANC_BIN,
    Dcmqrscp,
    Orthanc,
    free_port,
    qrtui_modalities,
)
from tests.studies import CT_IMAGE, PopulationBuilder, build_population, synthetic_image

TODAY = clock.today()
STORE_AET = "QRTUI_STORE"
BOOLEANS = (
    "modalities_in_study_matched", "sop_classes_in_study", "station_name_returned",
    "series_description_returned", "sop_class_at_image_level", "relational_image_query",
    "wildcards", "c_get",
)  # fmt: skip


def probed(config: Path, node: str, *args: str) -> dict:
    done = qrtui(config, "--probe", node, "--json", *args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert {"echo_ms", "max_associations", "result_cap", "notes", *BOOLEANS} <= set(report)
    return report


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> PopulationBuilder:
    return build_population(corpus_if_present(), tmp_path_factory.mktemp("objects"), TODAY)


@pytest.fixture(scope="module")
def real_pacs(population, tmp_path_factory) -> Iterator[Path]:
    """A configuration naming a real Orthanc and a real dcmqrscp holding the population."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    require(DCMQRSCP_BIN, "DCMTK is not installed (apt-get install dcmtk)")
    tmp = tmp_path_factory.mktemp("real")
    store_port = free_port()
    orthanc = Orthanc(tmp / "orthanc", modalities=qrtui_modalities(STORE_AET, store_port)).start()
    dcmtk = Dcmqrscp(tmp / "dcmqrscp", hosts={"store": (STORE_AET, "127.0.0.1", store_port)})
    try:
        orthanc.upload(population.files())
        dcmtk.start(population.files())
        config = tmp / "config.toml"
        config.write_text(
            f"[remotes.orthanc]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {orthanc.dicom_port}\n"
            f"[remotes.dcmqrscp]\naet = 'DCMQRSCP'\nhost = '127.0.0.1'\nport = {dcmtk.port}\n"
            f"[stores.local]\naet = '{STORE_AET}'\nport = {store_port}\nbind = '127.0.0.1'\n"
            f"directory = '{tmp / 'store'}'\n"
        )
        yield config
    finally:
        orthanc.stop()
        dcmtk.stop()


def test_the_probe_tells_orthanc_from_dcmqrscp(real_pacs):
    orthanc = probed(real_pacs, "orthanc")
    dcmtk = probed(real_pacs, "dcmqrscp")
    assert orthanc["studies_seen"] == dcmtk["studies_seen"] > 0
    assert orthanc["modalities_in_study_matched"] is True
    assert dcmtk["modalities_in_study_matched"] is False
    assert orthanc["sop_class_at_image_level"] is True
    assert dcmtk["sop_class_at_image_level"] is False
    assert orthanc["series_description_returned"] is True
    assert dcmtk["series_description_returned"] is False
    assert orthanc["c_get"] is True and dcmtk["c_get"] is True
    assert orthanc["result_cap"] is None and dcmtk["result_cap"] is None
    assert orthanc["max_associations"] == dcmtk["max_associations"] == 4
    assert orthanc["c_move"] is None, "not tried without --move-test"
    text = qrtui(real_pacs, "--probe", "dcmqrscp").stdout
    assert "ModalitiesInStudy: ignored" in text and "C-GET: accepted" in text


def test_move_test_moves_one_sr_series_into_a_throwaway_store(real_pacs):
    report = probed(real_pacs, "orthanc", "--move-test")
    assert report["c_move"] is True
    # one series, whichever the node lists first: the Toshiba study's holds an RDSR and a report
    received = [re.search(r"success, (\d+) received", n) for n in report["notes"]]
    counts = [int(m.group(1)) for m in received if m]
    assert len(counts) == 1 and counts[0] in (1, 2), report["notes"]  # SR series hold 1 or 2
    assert not (real_pacs.parent / "store").exists(), "the real store is not touched"


def test_the_probe_finds_the_cap_of_a_capped_orthanc(tmp_path):
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    b = PopulationBuilder(corpus_if_present(), tmp_path / "objects", TODAY)
    for n in range(15):
        study = b.study(f"ct{n}", "CT CHEST", days_ago=1 + n % 3, group="CT")
        b.add(study, "img", synthetic_image(CT_IMAGE, "CT"), "Axial")
    known = {"client": ("QRTUI", "127.0.0.1", 1)}
    orthanc = Orthanc(tmp_path / "orthanc", modalities=known, extra={"LimitFindResults": 10})
    orthanc.start()
    try:
        orthanc.upload(b.files())
        config = tmp_path / "config.toml"
        config.write_text(
            f"[remotes.capped]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {orthanc.dicom_port}\n"
        )
        report = probed(config, "capped")
    finally:
        orthanc.stop()
    assert report["result_cap"] == 10
    assert any("0xFE00" in n for n in report["notes"]), report["notes"]


# ---------------------------------------------------------------- the demo PACS's knobs


@pytest.mark.parametrize(
    ("faults", "key", "value"),
    [
        (Faults(), "modalities_in_study_matched", True),
        (Faults(ignore_modalities_in_study=True), "modalities_in_study_matched", False),
        (Faults(), "sop_class_at_image_level", True),
        (Faults(hide_sop_class=True), "sop_class_at_image_level", False),
        (Faults(hide_series_description=True), "series_description_returned", False),
        (Faults(), "result_cap", None),
        (Faults(cap_results=5), "result_cap", 5),  # silently: its halves tell
        (Faults(cap_results=5, cap_status=0xA700), "result_cap", 5),
        (Faults(), "max_associations", 4),
        (Faults(max_associations=1), "max_associations", 1),
        (Faults(), "wildcards", True),
    ],
)
def test_each_demo_knob_shows_in_the_report(tmp_path, faults, key, value):
    with DemoPacs(faults=faults) as pacs:
        config = demo_config(tmp_path, pacs)
        report = probed(config.path, DEMO_REMOTE)
    assert report[key] == value, report


def test_a_node_that_will_not_answer_our_queries_is_told_so(tmp_path):
    """Orthanc answers C-ECHO from anyone, C-FIND only from AE titles it knows."""
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    orthanc = Orthanc(tmp_path / "orthanc").start()
    try:
        config = tmp_path / "config.toml"
        config.write_text(
            f"[remotes.pacs]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {orthanc.dicom_port}\n"
        )
        done = qrtui(config, "--probe", "pacs")
    finally:
        orthanc.stop()
    assert done.returncode == 1, done.stderr
    assert "does pacs know our AE title QRTUI?" in done.stdout


def test_a_node_that_rejects_us_is_reported_unreachable(tmp_path):
    with DemoPacs(faults=Faults(reject_associations=True)) as pacs:
        config = demo_config(tmp_path, pacs)
        done = qrtui(config.path, "--probe", DEMO_REMOTE)
    assert done.returncode == 3 and "not reachable" in done.stdout and "rejected" in done.stdout


def test_a_finding_that_disagrees_with_the_configuration_is_named(tmp_path):
    with DemoPacs(faults=Faults(max_associations=2)) as pacs:
        config = demo_config(tmp_path, pacs)
        text = config.path.read_text().replace(
            f"[remotes.{DEMO_REMOTE}]\n", f"[remotes.{DEMO_REMOTE}]\nmax_associations = 6\n"
        )
        config.path.write_text(text)
        report = probed(config.path, DEMO_REMOTE)
    assert report["max_associations"] == 2
    assert any(
        "max_associations = 6 in config.toml" in n and "allowed 2" in n for n in report["notes"]
    ), report["notes"]


# ---------------------------------------------------------------- findings drive the funnel


def plan_of(result) -> dict:
    """What each study fetches: the same whichever way it was found out."""
    return {
        p.study.study_instance_uid: (
            str(p.decision),
            sorted(
                (role, q.series.series_instance_uid, tuple(sorted(q.sop_instance_uids)))
                for role, picks in (("pick", p.picks), ("probe", p.probe), ("else", p.fallback))
                for q in picks
            ),
        )
        for p in result.plans
    }


def plan_with_and_without_findings(
    config_path: Path, remote: str, asked: Callable[[], int] = lambda: 0, **flags
):
    """(plan, C-FINDs) without findings, then after --probe --save; `asked` counts what the
    PACS answered, and the plan after the findings records how many it asked in between."""
    params = build_query(today=TODAY, date_from="7d", **flags)
    config = load_config(config_path)
    store = config.stores[0]
    before = worker.plan(config, config.remote(remote), store, params)
    assert before.status == 0, before.message
    done = qrtui(config_path, "--probe", remote, "--save")
    assert done.returncode == 0, done.stderr
    learned = config_path.with_name("nodes.learned.toml")
    assert stat.S_IMODE(learned.stat().st_mode) == 0o600
    assert remote in tomllib.loads(learned.read_text())["nodes"]
    asked_before = asked()
    after = worker.plan(config, config.remote(remote), store, params)
    assert after.status == 0, after.message
    after.result.counts["asked by the test's PACS"] = asked() - asked_before
    return before.result, after.result


@pytest.mark.parametrize("node", ["orthanc", "dcmqrscp"])
def test_findings_ask_fewer_questions_for_the_same_plan(real_pacs, tmp_path, node, monkeypatch):
    # one series query a study, so that what the findings save is seen on its own
    monkeypatch.setattr(funnel.counts, "SERIES_PER_QUERY", 0)
    config = tmp_path / "config.toml"
    config.write_text(real_pacs.read_text())
    before, after = plan_with_and_without_findings(config, node, ct=True, mg=True, fl=True, dx=True)
    assert plan_of(after) == plan_of(before)
    assert before.to_fetch
    if node == "orthanc":  # SOPClassesInStudy known: FL studies without a dose class dropped
        assert after.find_requests < before.find_requests, (
            before.find_requests, after.find_requests,
        )  # fmt: skip
    else:  # nothing dcmqrscp tells lets us ask less; nothing more is asked either
        assert after.find_requests <= before.find_requests


def test_a_node_known_to_ignore_modalities_in_study_gets_one_study_query(tmp_path):
    with DemoPacs(faults=Faults(ignore_modalities_in_study=True)) as pacs:
        config = demo_config(tmp_path, pacs)
        before, after = plan_with_and_without_findings(
            config.path, DEMO_REMOTE, lambda: pacs.study_queries, ct=True, mg=True, fl=True,
            dx=True,
        )  # fmt: skip
    assert plan_of(after) == plan_of(before)
    assert after.counts["asked by the test's PACS"] == 1, "one study query, not one a modality"
    assert after.find_requests <= before.find_requests
    assert any("known to ignore ModalitiesInStudy" in n for n in after.notices)


def test_a_known_number_of_associations_is_where_runs_start(tmp_path):
    with DemoPacs(faults=Faults(max_associations=1)) as pacs:
        config = demo_config(tmp_path, pacs)
        done = qrtui(config.path, "--probe", DEMO_REMOTE, "--save")
        assert done.returncode == 0, done.stderr
        reloaded = load_config(config.path)
        node, found = worker.knowledge(reloaded, reloaded.remote(DEMO_REMOTE))
        assert found.max_associations == 1 and node.max_associations == 1
        explicit = replace(reloaded.remote(DEMO_REMOTE), set_keys=frozenset({"max_associations"}))
        assert worker.knowledge(reloaded, explicit)[0].max_associations == 4, "the user wins"
        outcome = worker.run(
            reloaded, node, reloaded.store(DEMO_STORE),
            build_query(today=TODAY, date_from="1d", mg=True), dry_run=False,
        )  # fmt: skip
        assert outcome.status == 0, outcome.message


# ---------------------------------------------------------------- shortcuts and the long way


def plans_with_and_without_shortcuts(config_path: Path, remote: str, monkeypatch, **flags):
    """(plan with every shortcut, plan the long way): one series query a study, and an
    image query of every SR series even where SOPClassesInStudy says they are all RDSRs."""
    params = build_query(today=TODAY, date_from="7d", **flags)
    config = load_config(config_path)
    node, store = config.remote(remote), config.stores[0]
    short = worker.plan(config, node, store, params)
    with monkeypatch.context() as patched:
        patched.setattr(funnel.counts, "SERIES_PER_QUERY", 0)
        patched.setattr(funnel.Funnel, "_sr_known_from_classes", lambda self, study: False)
        long = worker.plan(config, node, store, params)
    assert short.status == long.status == 0, (short.message, long.message)
    assert plan_of(short.result) == plan_of(long.result)
    assert short.result.to_fetch
    assert not short.result.incomplete and not long.result.incomplete
    return short.result, long.result


@pytest.mark.parametrize("node", ["orthanc", "dcmqrscp"])
def test_shortcuts_give_the_plan_of_the_long_way(real_pacs, node, monkeypatch):
    short, long = plans_with_and_without_shortcuts(
        real_pacs, node, monkeypatch, ct=True, mg=True, fl=True, dx=True
    )
    studies = long.counts[SERIES_QUERIES]
    assert studies > 2
    if node == "orthanc":  # it counts each study's series and gives SOPClassesInStudy
        assert short.counts[SERIES_QUERIES] < studies
        assert short.counts[IMAGE_QUERIES] < long.counts[IMAGE_QUERIES]
    else:  # dcmqrscp gives neither: every study is asked the long way
        assert short.counts[SERIES_QUERIES] == studies
        assert short.counts[IMAGE_QUERIES] == long.counts[IMAGE_QUERIES]


@pytest.mark.parametrize(
    "faults",
    [
        Faults(),
        Faults(ignore_modalities_in_study=True),
        Faults(ignore_uid_lists=True),  # answers with every series it holds
        Faults(miscount_series=True),  # its counts never match its series answers
        Faults(hide_instance_count=True, hide_series_description=True),
    ],
    ids=["plain", "modalities-ignored", "lists-ignored", "miscounted", "terse"],
)
def test_shortcuts_never_change_the_plan_on_the_demo_pacs(tmp_path, monkeypatch, faults):
    with DemoPacs(faults=faults) as pacs:
        config = demo_config(tmp_path, pacs)
        short, long = plans_with_and_without_shortcuts(
            config.path, DEMO_REMOTE, monkeypatch, ct=True, mg=True, fl=True, dx=True
        )
    studies = long.counts[SERIES_QUERIES]
    if faults.ignore_uid_lists or faults.miscount_series:  # each study asked alone as well
        assert short.counts[SERIES_QUERIES] > studies
    else:
        assert short.counts[SERIES_QUERIES] < studies
