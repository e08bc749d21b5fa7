"""The funnel against a real Orthanc (the plan must be exact) and a real dcmqrscp
(which hides SOP classes and ModalitiesInStudy: nothing may be missed)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from qrtui import clock
from qrtui.config import RemoteNode
from qrtui.dicom.find import FindSession
from qrtui.funnel import Funnel, FunnelResult
from qrtui.query import build_query
from qrtui.selection import Decision
from tests.conftest import corpus_if_present, require
from tests.servers import DCMQRSCP_BIN, ORTHANC_BIN, Dcmqrscp, Orthanc
from tests.studies import PATIENT_ID, PATIENT_NAME, PopulationBuilder, build_population

TODAY = clock.today()
ALL = {"ct": True, "mg": True, "fl": True, "dx": True}


@pytest.fixture(scope="module")
def population(tmp_path_factory) -> PopulationBuilder:
    return build_population(corpus_if_present(), tmp_path_factory.mktemp("objects"), TODAY)


@pytest.fixture(scope="module")
def orthanc_pacs(population, tmp_path_factory) -> Iterator[RemoteNode]:
    require(ORTHANC_BIN, "Orthanc is not installed (apt-get install orthanc)")
    server = Orthanc(
        tmp_path_factory.mktemp("orthanc"), modalities={"q": ("QRTUI", "127.0.0.1", 1)}
    )
    server.start()
    try:
        server.upload(population.files())
        yield RemoteNode("orthanc", "ORTHANC", "127.0.0.1", server.dicom_port, timeout=10)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dcmtk_pacs(population, tmp_path_factory) -> Iterator[RemoteNode]:
    require(DCMQRSCP_BIN, "DCMTK is not installed (apt-get install dcmtk)")
    server = Dcmqrscp(tmp_path_factory.mktemp("dcmqrscp")).start(population.files())
    try:
        yield RemoteNode("dcmtk", "DCMQRSCP", "127.0.0.1", server.port, timeout=10)
    finally:
        server.stop()


def run(node: RemoteNode, **flags) -> FunnelResult:
    params = build_query(today=TODAY, date_from=flags.pop("date_from", "7d"), **flags)
    with FindSession("QRTUI", node) as session:
        return Funnel(session, node, params).run()


def expected_plan(population: PopulationBuilder, groups: set[str], days: int = 7):
    """study uid -> {series uid -> sorted sop uids, or None for the whole series}"""
    out = {}
    for study in population.studies.values():
        if study.group not in groups or not study.expect:
            continue
        if (TODAY - study.study_date).days > days:
            continue
        out[study.uid] = {
            study.series[label].uid: (
                None if idx is None else sorted(study.series[label].sop_uids[i] for i in idx)
            )
            for label, idx in study.expect.items()
        }
    return out


def actual_plan(result: FunnelResult):
    """What each study fetches: its picks, and its probes (which only the dose objects among
    them survive)."""
    return {
        plan.study.study_instance_uid: {
            pick.series.series_instance_uid: (sorted(pick.sop_instance_uids) or None)
            for pick in plan.picks + plan.probe
        }
        for plan in result.plans
    }


def test_orthanc_plan_is_exact(population, orthanc_pacs):
    result = run(orthanc_pacs, **ALL)
    assert not result.modalities_in_study_ignored
    # Orthanc gives SOP classes: only the Enhanced SRs are read before they count.
    undecided = {
        p.study.study_instance_uid for p in result.plans if p.decision is Decision.UNDECIDED
    }
    assert undecided == {population.studies[label].uid for label in ("ct_esr", "xa_esr")}
    assert actual_plan(result) == expected_plan(population, {"CT", "MG", "FL", "DX"})
    dropped = {
        uid: reason for uid, reason in ((s.study_instance_uid, r) for s, r in result.dropped)
    }
    assert "no RDSR, Enhanced SR or Dose Info" in dropped[population.studies["ct_images_only"].uid]
    assert "no RDSR or Enhanced SR" in dropped[population.studies["rf_images_only"].uid]
    assert result.counts["duplicate responses merged"] == 1  # PET-CT answers the CT and PT queries
    groups = {p.study.study_instance_uid: p.group for p in result.plans}
    assert groups[population.studies["petct"].uid] == "CT"
    assert groups[population.studies["cr_images"].uid] == "DX"


def test_orthanc_single_modality_and_sr_only(population, orthanc_pacs):
    assert actual_plan(run(orthanc_pacs, mg=True)) == expected_plan(population, {"MG"})
    sr_only = run(orthanc_pacs, sr=True)
    assert actual_plan(sr_only) == expected_plan(population, {"SR"})
    dropped = {s.study_instance_uid for s, _ in sr_only.dropped}
    assert population.studies["sr_only_report"].uid in dropped


def test_orthanc_date_range_and_description_terms(population, orthanc_pacs):
    old = population.studies["ct_old"].uid
    assert old not in actual_plan(run(orthanc_pacs, ct=True))
    assert old in actual_plan(run(orthanc_pacs, ct=True, date_from="60d"))

    research = population.studies["ct_research"].uid
    excluded = run(orthanc_pacs, ct=True, desc_exclude="Research")
    assert research not in actual_plan(excluded)
    assert (research, "study description excluded by the terms") in {
        (s.study_instance_uid, r) for s, r in excluded.dropped
    }
    assert excluded.counts["removed: study description"] == 1

    included = run(orthanc_pacs, ct=True, desc_include="chest")
    descriptions = {p.study.description for p in included.plans}
    assert descriptions == {"CT CHEST", "CT CHEST ABDOMEN", "CT CHEST RESEARCH"}


def test_dcmqrscp_misses_no_dose_object_and_keeps_no_excluded_study(population, dcmtk_pacs):
    result = run(dcmtk_pacs, **ALL, desc_exclude="research")
    assert result.modalities_in_study_ignored
    planned = {p.study.study_instance_uid: p for p in result.plans}
    for label, study in population.studies.items():
        within = (TODAY - study.study_date).days <= 7
        wanted = study.group in {"CT", "MG", "FL", "DX"} and within and label != "ct_research"
        if wanted and study.expect:
            assert study.uid in planned, f"{label}: a dose study is missing"
            plan = planned[study.uid]
            considered = {
                p.series.series_instance_uid for p in (*plan.picks, *plan.probe, *plan.fallback)
            }
            for series_label in study.expect:
                assert study.series[series_label].uid in considered, f"{label}/{series_label}"
        if not wanted:
            assert study.uid not in planned, f"{label}: an excluded study is in the plan"
    # Nothing that is only a report stands in for a dose object: SR of unknown type is probed.
    for plan in result.plans:
        for pick in plan.picks:
            assert not (pick.series.is_sr and not pick.series.sr_type_known)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qrtui", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_dry_run_json_has_no_patient_data_and_retrieves_nothing(
    population, orthanc_pacs, tmp_path
):
    store_dir = tmp_path / "store"
    config = tmp_path / "config.toml"
    config.write_text(
        f"[remotes.pacs]\naet = 'ORTHANC'\nhost = '127.0.0.1'\nport = {orthanc_pacs.port}\n"
        f"[stores.local]\naet = 'QRTUI_STORE'\ndirectory = '{store_dir}'\n"
    )
    result = run_cli(
        "--no-tui",
        "--config",
        str(config),
        "pacs",
        "1",
        "-ct",
        "-mg",
        "-fl",
        "-dx",
        "-f",
        "7d",
        "--dry-run",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["remote"] == "pacs" and doc["store"] == "local"
    assert doc["query"]["groups"] == ["MG", "DX", "FL", "CT"]
    counts = doc["counts"]
    assert counts["studies to retrieve"] + counts["studies undecided (inspect first)"] == 15
    assert len(doc["studies"]) == 15
    first = doc["studies"][0]
    assert {
        "study_instance_uid",
        "study_date",
        "study_description",
        "station_name",
        "modality",
        "decision",
        "series",
    } <= set(first)
    assert {
        "series_instance_uid",
        "modality",
        "series_description",
        "station_name",
        "instances",
        "sop_instance_uids",
    } <= set(first["series"][0])
    assert {d["study_instance_uid"] for d in doc["dropped"]} >= {
        population.studies["ct_images_only"].uid
    }
    readable = run_cli(
        "--no-tui", "--config", str(config), "pacs", "local", "-ct", "-f", "7d", "--dry-run"
    )
    assert readable.returncode == 0 and "studies to retrieve" in readable.stdout
    for output in (result.stdout, result.stderr, readable.stdout, readable.stderr):
        assert "Synthetic" not in output and PATIENT_ID not in output and PATIENT_NAME not in output
    assert not store_dir.exists(), "a dry run must not touch the store"


def test_cli_unreachable_remote_exits_3(tmp_path, closed_port):
    config = tmp_path / "config.toml"
    config.write_text(
        f"[remotes.pacs]\naet = 'X'\nhost = '127.0.0.1'\nport = {closed_port}\n"
        f"[stores.local]\naet = 'S'\ndirectory = '{tmp_path}'\n"
    )
    result = run_cli("--no-tui", "--config", str(config), "pacs", "local", "-ct", "--dry-run")
    assert result.returncode == 3
    assert result.stderr.strip().count("\n") == 0 and "connection refused" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pacs", "local"], "choose at least one modality"),
        (["pacs", "local", "-ct", "-sr"], "cannot be combined with a modality"),
        (["pacs", "local", "-ct", "-f", "last week"], "is not yyyy-mm-dd"),
        (["pacs", "local", "-ct", "-tf", "0800"], "-tf/-tt need -sd"),
        (["nope", "local", "-ct"], "no remote node 'nope'"),
        (["pacs", "9", "-ct"], "no store node '9'"),
        (["pacs", "local", "-ct", "--bogus"], "unrecognized arguments"),
        (["pacs"], "needs REMOTE and STORE"),
    ],
)
def test_cli_usage_errors_are_one_line_exit_2(tmp_path, args, message):
    config = tmp_path / "config.toml"
    config.write_text(
        "[remotes.pacs]\naet = 'X'\nhost = '127.0.0.1'\nport = 1\n"
        f"[stores.local]\naet = 'S'\ndirectory = '{tmp_path}'\n"
    )
    result = run_cli("--no-tui", "--config", str(config), *args, "--dry-run")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_use_modality_tag_on_dcmqrscp_misses_nothing(population, dcmtk_pacs):
    from dataclasses import replace

    result = run(replace(dcmtk_pacs, use_modality_tag=True), **ALL)
    planned = {p.study.study_instance_uid for p in result.plans}
    wanted = {
        s.uid
        for s in population.studies.values()
        if s.expect and s.group in {"CT", "MG", "FL", "DX"} and (TODAY - s.study_date).days <= 7
    }
    assert wanted <= planned
    assert population.studies["mr"].uid not in planned


def test_use_modality_tag_on_a_node_that_needs_modalities_in_study_says_so(orthanc_pacs):
    from dataclasses import replace

    result = run(replace(orthanc_pacs, use_modality_tag=True), ct=True)
    assert result.plans == []
    assert any("set use_modality_tag = false" in n for n in result.notices)
