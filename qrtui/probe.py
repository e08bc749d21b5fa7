"""Know each PACS: a short series of harmless questions to a live node, each bounded by its
timeouts, whose answers say what the node matches, returns, accepts and caps. It retrieves
nothing, except one SR series into a throwaway store when asked to test C-MOVE."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelGet,
    XRayRadiationDoseSRStorage,
)

from qrtui import clock
from qrtui.config import Config, RemoteNode, StoreNode
from qrtui.dicom.assoc import AssociationFailed, associate, make_ae, release
from qrtui.dicom.echo import echo_remote
from qrtui.dicom.find import FindOutcome, FindSession, identifier, text, values
from qrtui.dicom.retrieve import RetrieveSession, series_identifier, study_identifier
from qrtui.dicom.session import SessionFailed, node_peer
from qrtui.dicom.storescp import Receiver, StorageSCP
from qrtui.learned import Findings, disagreements
from qrtui.store import Store
from qrtui.windows import split_range, window_text

# A modality no study has: a node that matches ModalitiesInStudy answers it with nothing.
NO_SUCH_MODALITY = "ZZ"
SERIES_LOOKED_AT = 3  # studies whose series are asked for
CAP_DEPTH = 24  # halvings of a window, dates then times, looking for a cap


@dataclass
class ProbeReport:
    node: str
    aet: str
    address: str
    window: str
    findings: Findings = field(default_factory=Findings)
    studies_seen: int = 0
    notes: list[str] = field(default_factory=list)
    reachable: bool = True
    queries_failed: bool = False
    max_queries_per_second: float | None = None  # config.toml's, obeyed by the probe too
    quiet_hours: str | None = None

    def to_json(self) -> dict[str, Any]:
        found = {f.name: getattr(self.findings, f.name) for f in fields(Findings)}
        found.pop("cap_seen")
        return {
            "node": self.node,
            "aet": self.aet,
            "address": self.address,
            "window": self.window,
            "studies_seen": self.studies_seen,
            **found,
            "max_queries_per_second": self.max_queries_per_second,
            "quiet_hours": self.quiet_hours,
            "notes": list(self.notes),
        }


def probe(
    config: Config,
    node: RemoteNode,
    *,
    date_from: date,
    date_until: date,
    store: StoreNode | None = None,
    move_test: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> ProbeReport:
    """Every question in turn; what cannot be told stays None, with a note why."""
    date_key = f"{date_from:%Y%m%d}-{date_until:%Y%m%d}"
    report = ProbeReport(node.name, node.aet, node.address, window_text(date_key, ""))
    report.max_queries_per_second, report.quiet_hours = (
        node.max_queries_per_second,
        node.quiet_hours,
    )
    probe = _Prober(config, node, report, say)
    probe.echo()
    if not report.reachable:
        return report
    probe.run(date_key, date_until, store if move_test else None)
    report.notes += [f"config.toml: {line}" for line in disagreements(node, report.findings)]
    return report


class _Prober:
    def __init__(
        self, config: Config, node: RemoteNode, report: ProbeReport, say: Callable[[str], None]
    ) -> None:
        self.config, self.node, self.report, self.say = config, node, report, say
        self.found: dict[str, Any] = {"probed": clock.now().isoformat("T", "seconds")}

    def note(self, line: str) -> None:
        self.report.notes.append(line)

    def echo(self) -> None:
        self.say("C-ECHO")
        result = echo_remote(self.config, self.node)
        if not result.usable:
            self.report.reachable = False
            self.note(
                f"{result.outcome}: {result.detail}" if result.detail else str(result.outcome)
            )
        else:
            self.found["echo_ms"] = round(result.rtt_ms or 0.0, 1)
        self.report.findings = Findings(**self.found)

    def run(self, date_key: str, today: date, store: StoreNode | None) -> None:
        try:
            with FindSession(self.config.client.aet, self.node) as session:
                self.session = session
                studies = self.studies(date_key)
                if studies:
                    self.modalities_matched(date_key)
                    self.cap(date_key, studies, today)
                    series = self.series(studies)
                    self.images(studies, series)
                    self.wildcards(date_key, studies)
                else:
                    self.note(
                        f"no study in {self.report.window}: most questions need one "
                        "(widen the window with -f)"
                    )
                self.tls_version()
                self.associations(session)
        except (AssociationFailed, SessionFailed) as exc:
            self.report.queries_failed = True
            self.note(
                f"queries stopped: {exc}; does {self.node.name} know our AE title "
                f"{self.config.client.aet}?"
            )
        self.c_get()
        if store is not None:
            self.c_move(store)
        self.report.findings = Findings(**self.found)

    # ------------------------------------------------------------ questions

    def find(self, level: str, **keys: Any) -> FindOutcome:
        return self.session.find(identifier(level, **keys))

    def studies(self, date_key: str) -> list[Dataset]:
        self.say("study query")
        outcome = self.find(
            "STUDY", StudyInstanceUID="", StudyDate=date_key, StudyDescription="",
            ModalitiesInStudy="", SOPClassesInStudy="", NumberOfStudyRelatedSeries="",
            NumberOfStudyRelatedInstances="", StationName="",
        )  # fmt: skip
        self.whole = outcome
        matches = outcome.matches
        self.report.studies_seen = len(matches)
        if matches:
            self.found["modalities_in_study_returned"] = _returned(matches, "ModalitiesInStudy")
            self.found["sop_classes_in_study"] = _returned(matches, "SOPClassesInStudy")
            self.found["study_counts_returned"] = _returned(
                matches, "NumberOfStudyRelatedSeries"
            ) or _returned(matches, "NumberOfStudyRelatedInstances")
            self.station_at_study_level = _returned(matches, "StationName")
        return matches

    def modalities_matched(self, date_key: str) -> None:
        self.say("ModalitiesInStudy matching")
        outcome = self.find(
            "STUDY", StudyInstanceUID="", StudyDate=date_key, ModalitiesInStudy=NO_SUCH_MODALITY
        )
        if outcome.complete:
            self.found["modalities_in_study_matched"] = not outcome.matches
        else:
            self.note(f"ModalitiesInStudy matching: {outcome.problem()}")

    def cap(self, date_key: str, studies: list[Dataset], today: date) -> None:
        """A status that is not success shows a cap; so do halves that hold studies the whole
        answer lacked. While every study falls in one half, that half is halved again."""
        whole = self.whole
        if not whole.complete:
            self.found["result_cap"] = len(studies)
            self.note(
                f"the study query stopped at {len(studies)} matches with "
                f"{whole.problem().removeprefix('C-FIND ended with ')}"
            )
            return
        self.say("answer cap")
        whole_uids = {text(m, "StudyInstanceUID") or "" for m in studies}
        window = (date_key, "")
        for _ in range(CAP_DEPTH):
            halves = split_range(*window, today)
            if halves is None:
                return
            parts = []
            for day_key, time_key in halves:
                part = self.find(
                    "STUDY", StudyInstanceUID="", StudyDate=day_key, StudyTime=time_key
                )
                parts.append({text(m, "StudyInstanceUID") or "" for m in part.matches})
            beyond = set().union(*parts) - whole_uids
            if beyond:
                self.found["result_cap"] = len(studies)
                self.note(
                    f"the study query stopped at {len(studies)} matches without saying so: "
                    f"halves of it found {len(beyond)} more"
                )
                return
            holding_all = [
                half for half, uids in zip(halves, parts, strict=True) if uids == whole_uids
            ]
            if not holding_all:
                return  # the halves split the answer between them: it was whole
            window = holding_all[0]

    def series(self, studies: list[Dataset]) -> list[tuple[str, Dataset]]:
        """(study UID, series answer) of a few studies, those holding SR first."""
        self.say("series queries")
        ordered = sorted(studies, key=lambda m: "SR" not in values(m, "ModalitiesInStudy"))
        found: list[tuple[str, Dataset]] = []
        for study in ordered[:SERIES_LOOKED_AT]:
            uid = text(study, "StudyInstanceUID") or ""
            outcome = self.find(
                "SERIES", StudyInstanceUID=uid, SeriesInstanceUID="", Modality="",
                SeriesDescription="", StationName="", NumberOfSeriesRelatedInstances="",
            )  # fmt: skip
            found += [(uid, m) for m in outcome.matches]
        if found:
            answers = [m for _, m in found]
            self.found["series_description_returned"] = _returned(answers, "SeriesDescription")
            self.found["station_name_returned"] = self.station_at_study_level or _returned(
                answers, "StationName"
            )
        return found

    def images(self, studies: list[Dataset], series: list[tuple[str, Dataset]]) -> None:
        if not series:
            return
        self.say("image queries")
        sr = [(s, m) for s, m in series if (text(m, "Modality") or "").upper() == "SR"]
        study_uid, chosen = (sr or series)[0]
        series_uid = text(chosen, "SeriesInstanceUID") or ""
        outcome = self.find(
            "IMAGE", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid,
            SOPInstanceUID="", SOPClassUID="", InstanceNumber="",
        )  # fmt: skip
        if outcome.matches:
            self.found["sop_class_at_image_level"] = _returned(outcome.matches, "SOPClassUID")
        else:
            self.note("an image-level query of a listed series answered nothing")
        # Relational: the image level asked with only the study's UID above it.
        relational = self.find(
            "IMAGE", StudyInstanceUID=study_uid, SeriesInstanceUID="", SOPInstanceUID=""
        )
        self.found["relational_image_query"] = relational.complete and any(
            text(m, "SOPInstanceUID") for m in relational.matches
        )
        self.sr_series = [(s, text(m, "SeriesInstanceUID") or "") for s, m in sr]

    def wildcards(self, date_key: str, studies: list[Dataset]) -> None:
        described = [m for m in studies if len(text(m, "StudyDescription") or "") >= 3]
        if not described:
            self.note("no study description to try wildcards on")
            return
        self.say("wildcard matching")
        study = described[0]
        uid, description = text(study, "StudyInstanceUID"), text(study, "StudyDescription") or ""

        def finds(pattern: str) -> bool:
            outcome = self.find(
                "STUDY", StudyInstanceUID="", StudyDate=date_key, StudyDescription=pattern
            )
            return any(text(m, "StudyInstanceUID") == uid for m in outcome.matches)

        self.found["wildcards"] = finds(description[:3] + "*")
        flipped = description[:3].swapcase()
        if self.found["wildcards"] and flipped != description[:3]:
            self.found["case_insensitive"] = finds(flipped + "*")

    def tls_version(self) -> None:
        if not self.node.tls:
            return
        with contextlib.suppress(Exception):
            sock: Any = self.session._open().dul.socket
            self.found["tls_version"] = sock.socket.version()

    def c_get(self) -> None:
        self.say("C-GET")
        peer = node_peer(self.node)
        ae = make_ae(self.config.client.aet, peer)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
        ae.add_requested_context(XRayRadiationDoseSRStorage)
        try:
            assoc = associate(ae, peer)
        except AssociationFailed as exc:
            self.note(f"C-GET: {exc.outcome}: {exc.detail}")
            return
        try:
            get = str(StudyRootQueryRetrieveInformationModelGet)
            accepted = any(c.abstract_syntax == get for c in assoc.accepted_contexts)
            self.found["c_get"] = accepted and self._c_get_answered(assoc)
        finally:
            if assoc.is_established:
                release(assoc)

    def _c_get_answered(self, assoc: Any) -> bool:
        """A node may take the C-GET model and still refuse the command (Orthanc's AllowGet
        false aborts the association): a C-GET of a study no one has tells."""
        nobody = study_identifier(NO_SUCH_STUDY)
        try:
            for status, _ in assoc.send_c_get(nobody, StudyRootQueryRetrieveInformationModelGet):
                code = getattr(status, "Status", None)
                if code is None or code in REFUSED_STATUSES:
                    return False
        except Exception:
            return False
        return bool(assoc.is_established)

    def associations(self, open_already: FindSession) -> None:
        """How many associations the node takes at once, up to max_associations: ours for
        the queries, and more until one is refused (asked again after a transient refusal,
        which may count one of ours still closing)."""
        self.say("associations at once")
        wanted = self.node.max_associations
        sessions: list[FindSession] = []
        try:
            while 1 + len(sessions) < wanted:
                session = FindSession(self.config.client.aet, self.node)
                try:
                    session.__enter__()
                except AssociationFailed:
                    break
                sessions.append(session)
        finally:
            for session in sessions:
                session.close()
        count = 1 + len(sessions)
        self.found["max_associations"] = count
        if count < wanted:
            self.note(f"the node took {count} associations at once, not {wanted}")

    def c_move(self, store: StoreNode) -> None:
        """One SR series moved to the store's AE title, received by a throwaway store."""
        sr = getattr(self, "sr_series", [])
        if not sr:
            self.note("C-MOVE not tried: no SR series in the window")
            return
        self.say("C-MOVE of one SR series")
        study_uid, series_uid = sr[0]
        scratch = Path(tempfile.mkdtemp(prefix="qrtui-probe-"))
        try:
            with contextlib.ExitStack() as stack:
                receiver = None
                if store.embedded:
                    throwaway = stack.enter_context(Store(scratch / "store"))
                    receiver = Receiver(throwaway)
                    stack.enter_context(StorageSCP(replace(store, directory=scratch), receiver))
                mover = replace(self.node, retrieve="move")
                session = stack.enter_context(
                    RetrieveSession(self.config.client.aet, mover, destination=store.aet)
                )
                started = time.monotonic()
                outcome = session.retrieve(series_identifier(study_uid, series_uid))
                took = time.monotonic() - started
            arrived = len(receiver.received) if receiver else None
            moved = outcome.success and (arrived is None or arrived > 0)
            self.found["c_move"] = moved
            detail = "success" if outcome.success else outcome.problem()
            where = f", {arrived} received" if arrived is not None else " (external store)"
            self.note(f"C-MOVE to {store.aet}: {detail}{where} in {took:.1f} s")
        except (AssociationFailed, SessionFailed, OSError) as exc:
            self.note(f"C-MOVE to {store.aet}: {exc}")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def _or(value: object, missing: str) -> str:
    return missing if value is None else str(value)


def _returned(matches: list[Dataset], keyword: str) -> bool:
    return any(text(m, keyword) for m in matches)


# A UID of our own root that names no study: its C-GET finds nothing wherever C-GET works.
NO_SUCH_STUDY = "1.2.826.0.1.3680043.8.498.1"
REFUSED_STATUSES = frozenset({0x0122, 0x0124})  # SOP class not supported; not authorised


def default_window(today: date) -> tuple[date, date]:
    return today - timedelta(days=7), today


def politeness(report: ProbeReport) -> str:
    rate, quiet = report.max_queries_per_second, report.quiet_hours
    limit = f"at most {rate:g} requests a second" if rate else "requests not limited"
    return f"{limit}; " + (
        f"quiet hours {quiet} (runs wait them out)" if quiet else "no quiet hours"
    )


def report_lines(report: ProbeReport) -> list[str]:
    """The report for people."""
    f = report.findings

    def yes(value: bool | None, true: str = "yes", false: str = "no") -> str:
        return "unknown" if value is None else (true if value else false)

    head = f"Probe of {report.node} ({report.aet} @ {report.address})"
    if not report.reachable:
        return [f"{head}: not reachable", *(f"  {n}" for n in report.notes)]
    lines = [
        f"{head}, studies of {report.window} ({report.studies_seen} found):",
        f"  C-ECHO: {f.echo_ms:.0f} ms, association included"
        if f.echo_ms is not None
        else "  C-ECHO: unknown",
        f"  ModalitiesInStudy: {yes(f.modalities_in_study_matched, 'matched', 'ignored')}, "
        f"{yes(f.modalities_in_study_returned, 'returned', 'not returned')}",
        f"  SOPClassesInStudy returned: {yes(f.sop_classes_in_study)}",
        f"  study counts returned: {yes(f.study_counts_returned)}",
        f"  StationName returned: {yes(f.station_name_returned)}",
        f"  SeriesDescription returned: {yes(f.series_description_returned)}",
        f"  SOPClassUID at image level: {yes(f.sop_class_at_image_level)}",
        f"  image level with the study's UID only (relational): {yes(f.relational_image_query)}",
        f"  wildcards in text keys: {yes(f.wildcards)}"
        + (
            ""
            if f.case_insensitive is None
            else f", case-{'in' if f.case_insensitive else ''}sensitive"
        ),
        f"  C-GET: {yes(f.c_get, 'accepted', 'refused')}",
        f"  C-MOVE to the store: {yes(f.c_move, 'works', 'fails')}"
        + (" (not tried: --move-test)" if f.c_move is None else ""),
        f"  associations at once: {_or(f.max_associations, 'unknown')}",
        f"  study answers capped at: {_or(f.result_cap, 'no cap found')}",
        f"  politeness (config.toml): {politeness(report)}",
    ]
    if f.tls_version:
        lines.append(f"  TLS: {f.tls_version}")
    lines += [f"  note: {n}" for n in report.notes]
    return lines
