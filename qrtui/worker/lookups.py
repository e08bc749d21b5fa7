"""Small jobs the faces ask for: echo, history, patient context, study doses."""

from __future__ import annotations

from qrtui.config import Config, RemoteNode, StoreNode
from qrtui.dicom.echo import EchoResult as EchoResult  # re-exported for the faces
from qrtui.dicom.echo import echo_remote, echo_store
from qrtui.dicom.find import FindSession, identifier, text
from qrtui.dose import StudyDose
from qrtui.status import (  # noqa: F401  (re-exported for the faces)
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    usage_problem,
)
from qrtui.store import RunRecord
from qrtui.worker.planning import opened_store


def echo(config: Config, node: RemoteNode | StoreNode) -> EchoResult:
    """C-ECHO a remote or external store; check that an embedded store can serve."""
    if isinstance(node, RemoteNode):
        return echo_remote(config, node)
    return echo_store(config, node)


def history(store_node: StoreNode, limit: int | None = None) -> list[RunRecord]:
    """The runs an embedded store's index recorded, newest first; none for an external one.
    Read without the lock: a running job may hold it."""
    if not store_node.embedded:
        return []
    with opened_store(store_node, for_writing=False) as store:
        return store.history.runs(limit) if store is not None else []


def patient_context(
    config: Config, remote: RemoteNode, study_uids: list[str]
) -> dict[str, tuple[str, str, str]]:
    """Patient name, patient ID and accession number of these studies, for the TUI's
    screen only, when its user asks: never logged, never written."""
    out: dict[str, tuple[str, str, str]] = {}
    with FindSession(config.client.aet, remote) as session:
        for start in range(0, len(study_uids), 50):
            chunk = study_uids[start : start + 50]
            outcome = session.find(
                identifier(
                    "STUDY", StudyInstanceUID="\\".join(chunk), PatientName="", PatientID="",
                    AccessionNumber="",
                )
            )  # fmt: skip
            for match in outcome.matches:
                uid = text(match, "StudyInstanceUID") or ""
                if uid in chunk:
                    out[uid] = (
                        text(match, "PatientName") or "",
                        text(match, "PatientID") or "",
                        text(match, "AccessionNumber") or "",
                    )
    return out


def study_doses(store_node: StoreNode, study_uids: list[str]) -> dict[str, StudyDose]:
    """The dose values the store's index holds of these studies."""
    from qrtui.summary import study_doses as read

    if not store_node.embedded:
        return {}
    with opened_store(store_node, for_writing=False) as store:
        if store is None:
            return {}
        return {s.study_uid: s for s in read(store, studies=study_uids)}
