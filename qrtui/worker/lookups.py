"""Small jobs the faces ask for: echo, history, patient context, study doses, deliveries."""

from __future__ import annotations

from datetime import date

from qrtui.config import Config, Destination, RemoteNode, StoreNode
from qrtui.dicom.echo import EchoResult as EchoResult  # re-exported for the faces
from qrtui.dicom.echo import echo_destination, echo_remote, echo_store
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
from qrtui.store.ledger import QUEUED, REFUSED, SENT, Delivery
from qrtui.worker.planning import opened_store


def echo(config: Config, node: RemoteNode | StoreNode | Destination) -> EchoResult:
    """C-ECHO a remote, an external store or a DICOM destination; check that an embedded
    store can serve, a folder be written, a command be run."""
    if isinstance(node, RemoteNode):
        return echo_remote(config, node)
    if isinstance(node, Destination):
        return echo_destination(config, node)
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


def deliveries(store_node: StoreNode, study_uids: list[str]) -> dict[str, list[str]]:
    """Study UID -> one line per destination saying what became of its objects there
    ("-> openrem: sent 2", "-> openrem: queued 1 (connection refused ...)")."""
    if not store_node.embedded:
        return {}
    with opened_store(store_node, for_writing=False) as store:
        if store is None:
            return {}
        out: dict[str, list[str]] = {}
        for uid in study_uids:
            by_destination: dict[str, list[Delivery]] = {}
            for row in store.ledger.of_study(uid):
                by_destination.setdefault(row.destination, []).append(row)
            out[uid] = [delivery_line(name, rows) for name, rows in by_destination.items()]
        return out


def queue_sizes(store_node: StoreNode) -> dict[str, int]:
    """Destination -> objects the store holds queued for it."""
    if not store_node.embedded:
        return {}
    with opened_store(store_node, for_writing=False) as store:
        if store is None:
            return {}
        return {name: c.get(QUEUED, 0) for name, c in store.ledger.counts().items()}


def delivery_line(destination: str, rows: list[Delivery]) -> str:
    states: dict[str, int] = {}
    for row in rows:
        states[row.state] = states.get(row.state, 0) + 1
    told = ", ".join(f"{state} {states[state]}" for state in (SENT, QUEUED, REFUSED)
                     if state in states)  # fmt: skip
    why = next((r.reason for r in rows if r.state != SENT and r.reason), "")
    return f"-> {destination}: {told}" + (f" ({why})" if why else "")


def dose_table(
    store_node: StoreNode, date_from: date | None = None, date_until: date | None = None
) -> list[dict[str, str]]:
    """The rows `qrtui summary` prints, for the TUI's Summary screen (read without the lock)."""
    from qrtui import summary

    if not store_node.embedded:
        return []
    with opened_store(store_node, for_writing=False) as store:
        if store is None:
            return []
        return summary.rows(summary.study_doses(store, date_from, date_until))
