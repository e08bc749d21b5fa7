"""What arrived, held against the plan: listed instances and counted series asked for once
more, objects the store refused or set aside said once. A part of Retriever (retriever.py),
kept apart so that each can be read alone."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from pydicom.dataset import Dataset

from qrtui.config import StoreNode
from qrtui.dicom.retrieve import (
    STATUS_MOVE_DESTINATION_UNKNOWN,
    RetrieveOutcome,
    instance_identifier,
    series_identifier,
)
from qrtui.dicom.storescp import Received, Receiver
from qrtui.retrieve.outcome import RetrieveSummary, StudyOutcome
from qrtui.retrieve.plans import planned_instances
from qrtui.selection import WHOLE_STUDY, Pick, StudyPlan
from qrtui.store import UNASKED

NOTES_LOGGED = 10  # a PACS that mislabels every object must not flood the log


class ArrivalChecks:
    """Needs of the retriever it is part of."""

    receiver: Receiver | None
    store_node: StoreNode
    summary: RetrieveSummary
    _lock: threading.RLock

    @property
    def _outcome(self) -> StudyOutcome:
        raise NotImplementedError

    @property
    def _use_get(self) -> bool:
        raise NotImplementedError

    def _log(self, line: str) -> None:
        raise NotImplementedError

    def _problem(self, where: list[str], line: str) -> None:
        raise NotImplementedError

    def _request(
        self, ident: Dataset, what: str, series_uid: str, use_get: bool
    ) -> tuple[RetrieveOutcome, list[Received]]:
        raise NotImplementedError

    def _account(self, what: str, outcome: RetrieveOutcome, arrived: list[Received]) -> None:
        raise NotImplementedError

    def _report_receiver(self) -> None:
        """What the store refused, set aside or put right, said once for the run."""
        receiver = self.receiver
        if receiver is None:
            return
        receiver.expected = None
        with self._lock:
            s = self.summary
            if receiver.refusals:
                reasons = tally(receiver.refusals)
                s.problems.append(
                    f"store {self.store_node.name} refused {len(receiver.refusals)} objects "
                    f"the PACS sent: {reasons}"
                )
                self._log(s.problems[-1])
            if receiver.unasked:
                s.problems.append(
                    f"{len(receiver.unasked)} objects arrived for studies or series this run did "
                    f"not ask for; set aside in {UNASKED}/, not indexed: "
                    + "; ".join(receiver.unasked[:3])
                    + ("; ..." if len(receiver.unasked) > 3 else "")
                )
                self._log(s.problems[-1])
            s.sender_notes.extend(dict.fromkeys(receiver.sender_notes))
            for note in s.sender_notes[:NOTES_LOGGED]:
                self._log(f"sender: {note}")
            if len(s.sender_notes) > NOTES_LOGGED:
                self._log(f"sender: {len(s.sender_notes) - NOTES_LOGGED} more (see the JSON)")
        errors = receiver.write_errors
        if errors:
            reasons = ", ".join(sorted(set(errors)))
            self.summary.problems.append(
                f"store {self.store_node.name}: {len(errors)} objects could not be written "
                f"({reasons}); the sender was answered 0xA700, nothing partial was kept"
            )
            self._log(self.summary.problems[-1])

    def _against_the_plan(
        self, plan: StudyPlan, pick: Pick, what: str, arrived: list[Received]
    ) -> list[Received]:
        """What the PACS listed and did not send, whatever its counts said: asked for once
        more, by instance; still missing, a gap of the study (owed, exit 1). Returns what
        arrived on the second ask."""
        planned = planned_instances(pick)
        if self.receiver is None:
            return []
        if not planned:
            return self._against_the_count(plan, pick, what, arrived)
        missing = sorted(planned - {r.instance.sop_instance_uid for r in arrived})
        if not missing:
            return []
        self._log(
            f"{what}: {len(missing)} of the {len(planned)} objects the PACS listed did not "
            "arrive; asking for them by instance"
        )
        study_uid, series_uid = plan.study.study_instance_uid, pick.series.series_instance_uid
        again: list[Received] = []
        for uid in missing:
            ident = instance_identifier(study_uid, series_uid, uid)
            outcome, now = self._request(ident, what, series_uid, self._use_get)
            self._account(what, outcome, now)
            again += now
        still = set(missing) - {r.instance.sop_instance_uid for r in again}
        if still:
            with self._lock:
                self._problem(
                    self.summary.gaps,
                    f"{what}: study {study_uid}: {len(still)} of the {len(planned)} objects the "
                    "PACS listed did not arrive, asked twice",
                )
        return again

    def _against_the_count(
        self, plan: StudyPlan, pick: Pick, what: str, arrived: list[Received]
    ) -> list[Received]:
        """A whole series whose instances the PACS did not list, but counted
        (NumberOfSeriesRelatedInstances): fewer objects than that is asked for once more."""
        series, counted = pick.series, pick.series.instance_count
        if series.instances is not None or not counted or series.series_instance_uid == WHOLE_STUDY:
            return []
        got = {r.instance.sop_instance_uid for r in arrived}
        if len(got) >= counted:
            return []
        self._log(
            f"{what}: the PACS counted {counted} objects in the series, {len(got)} arrived; "
            "asking for the series once more"
        )
        study_uid = plan.study.study_instance_uid
        ident = series_identifier(study_uid, series.series_instance_uid)
        outcome, now = self._request(ident, what, series.series_instance_uid, self._use_get)
        self._account(what, outcome, now)
        got |= {r.instance.sop_instance_uid for r in now}
        if len(got) < counted:
            with self._lock:
                self._problem(
                    self.summary.gaps,
                    f"{what}: study {study_uid}: {counted - len(got)} of the {counted} objects "
                    "the PACS counted in the series did not arrive, asked twice",
                )
        return now

    def _worth_retrying(self, outcome: RetrieveOutcome, arrived: list[Received]) -> bool:
        """Some sub-operations failed, or fewer objects came than reported: a second ask
        fetches what is missing (what arrived is simply stored again)."""
        if outcome.cancelled or outcome.status == STATUS_MOVE_DESTINATION_UNKNOWN:
            return False
        return bool(self._shortfall(outcome, arrived))

    def _shortfall(self, outcome: RetrieveOutcome, arrived: list[Received]) -> str:
        failed = failed_count(outcome)
        return f"{failed} sub-operations failed" if failed else self._gap(outcome, arrived)

    def _gap(self, outcome: RetrieveOutcome, arrived: list[Received]) -> str:
        """Fewer objects arrived than the PACS reported sent (only a receiver can tell)."""
        expected = (outcome.counts.completed or 0) + (outcome.counts.warning or 0)
        if self.receiver is not None and expected > len(arrived):
            return f"PACS reported {expected} completed, {len(arrived)} received"
        return ""


def tally(reasons: Sequence[str]) -> str:
    counted: dict[str, int] = {}
    for reason in reasons:
        counted[reason] = counted.get(reason, 0) + 1
    return "; ".join(f"{n} x {reason}" if n > 1 else reason for reason, n in counted.items())


def destination_advice(node: StoreNode, remote: str) -> str:
    """What to do where a PACS does not know our store as a move destination."""
    if node.embedded:
        where = node.bind if node.bind not in ("0.0.0.0", "::", "") else "this machine's address"
    else:
        where = node.host or "?"
    return (
        f"register AE title {node.aet}, host {where}, port {node.port} on the PACS "
        f'(or set retrieve = "get" on remote {remote})'
    )


def failed_count(outcome: RetrieveOutcome) -> int:
    """Failed sub-operations, by the count or by the list of UIDs, whichever says more."""
    return max(outcome.counts.failed or 0, len(outcome.failed_uids))
