"""Executing a plan: fetch the picks, probe and inspect undecided studies, check what arrived
(checks.py). Progress goes out as events (qrtui.events), like the funnel's."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pydicom.dataset import Dataset

from qrtui.config import StoreNode
from qrtui.dicom.pool import SessionPool
from qrtui.dicom.retrieve import (
    STATUS_MOVE_DESTINATION_UNKNOWN,
    RetrieveOutcome,
    RetrieveSession,
    SubOps,
    instance_identifier,
    series_identifier,
    study_identifier,
)
from qrtui.dicom.session import Cancelled, SessionFailed
from qrtui.dicom.storescp import Received, Receiver
from qrtui.events import Emit, Notice, Paused, RetrieveProgress
from qrtui.politeness import wait_out_quiet_hours
from qrtui.retrieve.checks import ArrivalChecks, destination_advice, failed_count, tally
from qrtui.retrieve.inflight import InFlight
from qrtui.retrieve.outcome import RetrieveSummary, StudyOutcome
from qrtui.retrieve.plans import expected_series, inspect
from qrtui.selection import WHOLE_STUDY, Decision, Inspected, Pick, StudyPlan, after_probe
from qrtui.store import Store

STOP_AFTER_FAILURES = 3


class RetrieveStopped(Exception):
    """Every request fails the same way (say, an unknown move destination): retrying
    cannot help."""


@dataclass(frozen=True)
class _Method:
    get: bool  # requests use C-GET (else C-MOVE) unless one is asked again
    confirmed: bool  # no longer on trial


class Retriever(ArrivalChecks):
    """Runs the plans through a RetrieveSession, or a pool of them: studies in parallel, each
    study's requests in order. An embedded store (receiver and store) lets it inspect probes
    and check arrivals; an external store is only a destination."""

    def __init__(
        self,
        session: RetrieveSession,
        store_node: StoreNode,
        *,
        receiver: Receiver | None = None,
        store: Store | None = None,
        emit: Emit = lambda event: None,
        pool: SessionPool[RetrieveSession] | None = None,
    ) -> None:
        self.session = session
        self.pool = pool
        self.store_node = store_node
        self.receiver = receiver
        self.store = store
        self.emit = emit
        self.summary = RetrieveSummary()
        self._lock = threading.RLock()  # the summary, the counters, and the order of events
        self._here = threading.local()  # the session and study of this worker thread
        self._quiet = threading.Lock()
        self._studies_total = 0
        self._told_external = False
        self._failures_in_a_row = 0
        self._stored_once: set[tuple[str, str]] = set()  # (study, object) counted as stored
        self._flying = InFlight()  # each thread's request, until the summary takes it in
        self._anything_worked = False
        # C-GET or C-MOVE: as configured; "auto" tries C-GET first where the node took it
        self.auto = session.offers_get and session.offers_move
        self.method = _Method(get=session.use_get and session.get_accepted, confirmed=not self.auto)
        if self.auto and not session.get_accepted:
            self.method = _Method(get=False, confirmed=True)
            self.summary.method_note = "the node did not take C-GET"

    # ------------------------------------------------------------ plumbing

    @property
    def _study_label(self) -> str:
        return getattr(self._here, "label", "")

    @property
    def _use_get(self) -> bool:
        return self.method.get

    def _session(self) -> RetrieveSession:
        return getattr(self._here, "session", self.session)

    @property
    def _outcome(self) -> StudyOutcome:
        """The study this worker thread retrieves."""
        outcome: StudyOutcome = self._here.outcome
        return outcome

    def _log(self, line: str) -> None:
        with self._lock:
            self.emit(Notice(line))

    def _paused(self, line: str) -> None:
        with self._lock:
            self.emit(Paused(line))

    def _progress(
        self, current: str, inflight: SubOps | None = None, arrived: Sequence[Received] = ()
    ) -> None:
        """Totals so far, plus what every request in flight reported and delivered (this
        thread's now `inflight` and `arrived`)."""
        s = self.summary
        with self._lock:
            if inflight is not None:
                self._flying.update(inflight, arrived)
            completed, failed, warning, received, size = self._flying.totals()
            self.emit(
                RetrieveProgress(
                    studies_done=s.studies_done,
                    studies_total=self._studies_total,
                    current=current,
                    remaining=inflight.remaining if inflight else None,
                    completed=s.completed + completed,
                    failed=s.failed + failed,
                    warning=s.warning + warning,
                    received=s.received + received,
                    bytes=s.bytes + size,
                )
            )

    # ------------------------------------------------------------ running

    def run(self, plans: Sequence[StudyPlan]) -> RetrieveSummary:
        self._studies_total = len(plans)
        self.summary.studies = {
            p.study.study_instance_uid: StudyOutcome(p.study.study_instance_uid, p.study.study_date)
            for p in plans
        }
        self._progress("starting")
        if self.receiver is not None:
            self.receiver.expected = expected_series(plans)
        try:
            # One study at a time until a request works: a node that refuses them all (an
            # unknown move destination) is asked once, not once per association.
            first = 0
            while first < len(plans) and (self.pool is None or not self._anything_worked):
                self._one_study(self.session, plans[first])
                first += 1
            if self.pool is not None:
                for _ in self.pool.map(self._one_study, plans[first:]):
                    pass
        except Cancelled:
            self.summary.cancelled = True
            self._log("retrieve cancelled")
        finally:
            self._report_receiver()
        return self.summary

    def _one_study(self, session: RetrieveSession, plan: StudyPlan) -> None:
        with self._quiet:  # between studies, never inside one; one thread says so
            wait_out_quiet_hours(session.node, self._paused, session.cancel)
        study = plan.study
        self._here.session = session
        self._here.label = f"{study.study_date or '-'} {plan.group} {study.description!r}"
        outcome = self.summary.studies[study.study_instance_uid]
        self._here.outcome = outcome
        outcome.started = True
        self._study(plan)
        with self._lock:
            outcome.finished = True
            self.summary.studies_done += 1
            self._progress(self._study_label)

    def _study(self, plan: StudyPlan) -> None:
        for pick in plan.picks:
            self._fetch(plan, pick)
        if plan.decision is not Decision.UNDECIDED:
            return
        if self.receiver is None or self.store is None:
            if not self._told_external:
                self._told_external = True
                self._log(
                    f"store {self.store_node.name} is external: objects cannot be inspected, "
                    "so undecided studies get their probe and fallback series sent"
                )
            for pick in plan.probe + plan.fallback:
                self._fetch(plan, pick)
            return
        arrived = []
        for pick in plan.probe:
            arrived += self._fetch(plan, pick, probe=True)
        by_uid = {r.instance.sop_instance_uid: r for r in arrived}
        found = [inspect(r) for r in by_uid.values()]
        verdict = after_probe(plan, found)
        self._settle(self.store, by_uid, found, verdict.keep)
        self._log(f"{self._study_label}: {verdict.reason}")
        for pick in verdict.follow:
            self._fetch(plan, pick)

    def _settle(
        self,
        store: Store,
        by_uid: dict[str, Received],
        found: Sequence[Inspected],
        keep: frozenset[str],
    ) -> None:
        """Kept probe objects move into the store; the rest are deleted, remembering what
        they were so a later run need not fetch them to know."""
        with self._lock:
            for item in found:
                instance = by_uid[item.sop_instance_uid].instance
                self.summary.inspected += 1
                if item.sop_instance_uid in keep:
                    final = store.path_for(
                        instance.study_uid, instance.series_uid, item.sop_instance_uid
                    )
                    store.adopt(instance.path, replace(instance, path=final))
                    self.summary.stored += 1
                    self._outcome.stored += 1
                    continue
                with contextlib.suppress(OSError):
                    instance.path.unlink()
                store.remember_inspected(
                    item.sop_instance_uid, item.sop_class_uid, instance.study_uid, str(item.kind)
                )
                self.summary.discarded_after_inspection += 1
                self._outcome.discarded += 1

    def _fetch(self, plan: StudyPlan, pick: Pick, probe: bool = False) -> list[Received]:
        series = pick.series
        study_uid = plan.study.study_instance_uid
        if series.series_instance_uid == WHOLE_STUDY:
            identifiers = [study_identifier(study_uid)]
        elif pick.whole_series:
            identifiers = [series_identifier(study_uid, series.series_instance_uid)]
        else:
            identifiers = [
                instance_identifier(study_uid, series.series_instance_uid, uid)
                for uid in pick.sop_instance_uids
            ]
        what = f"{self._study_label} series {series.number or '?'} ({pick.why})"
        arrived: list[Received] = []
        receiver = self.receiver
        if probe and receiver is not None:
            receiver.probe_series.add(series.series_instance_uid)
        reported = len(self._outcome.problems)
        try:
            for ident in identifiers:
                used_get = False
                for attempt in (1, 2):
                    # auto: a request short under C-GET is asked once more with C-MOVE
                    use_get = self.method.get and not (attempt == 2 and used_get and self.auto)
                    outcome, now = self._request(ident, what, series.series_instance_uid, use_get)
                    arrived += now
                    switched = use_get and self._judge_get(outcome, now)
                    if attempt == 1 and (switched or self._worth_retrying(outcome, now)):
                        with self._lock:
                            self.summary.completed += outcome.counts.completed or 0
                            self._flying.counts_taken()
                        why = self._shortfall(outcome, now) or outcome.problem()
                        again = " with C-MOVE" if use_get and self.auto else ""
                        self._log(f"{what}: {why}; asking once more{again}")
                        used_get = use_get
                        continue
                    self._account(what, outcome, now)
                    break
            if len(self._outcome.problems) == reported:  # else said, and the study owed
                arrived += self._against_the_plan(plan, pick, what, arrived)
        finally:
            with self._lock:
                self._flying.done()
            if probe and receiver is not None:
                receiver.probe_series.discard(series.series_instance_uid)
        return arrived

    def _judge_get(self, outcome: RetrieveOutcome, arrived: list[Received]) -> bool:
        """The first C-GET of an auto run: where it worked, C-GET from now on; where it did
        not, C-MOVE (True: the request is to be asked again)."""
        if not self.auto or self.method.confirmed or outcome.cancelled:
            return False
        worked = (outcome.success or outcome.status & 0xF000 == 0xB000) and not failed_count(
            outcome
        )
        if worked and arrived:
            self.method = replace(self.method, confirmed=True)
            return False
        self._give_up_get(outcome.problem() or self._gap(outcome, arrived) or "nothing arrived")
        return True

    def _give_up_get(self, why: str) -> None:
        """auto: C-GET did not work on its first request; C-MOVE from now on."""
        self.method = replace(self.method, get=False, confirmed=True)
        self.summary.method_note = f"C-GET did not work ({why})"
        self._log(f"{self.summary.method_note}: C-MOVE from now on")

    def _request(
        self, ident: Dataset, what: str, series_uid: str, use_get: bool
    ) -> tuple[RetrieveOutcome, list[Received]]:
        """One C-MOVE/C-GET, and what arrived for the series meanwhile."""
        receiver = self.receiver
        mark = receiver.mark() if receiver else 0
        self._here.refusals_mark = len(receiver.refusals) if receiver else 0
        self._progress(what)
        with self._lock:
            self.summary.requests += 1
            name = "C-GET" if use_get else "C-MOVE"
            self.summary.methods[name] = self.summary.methods.get(name, 0) + 1

        def mine(received: Sequence[Received]) -> list[Received]:
            return [
                r
                for r in received
                if r.instance.series_uid == series_uid or series_uid == WHOLE_STUDY
            ]

        def pending(counts: SubOps) -> None:
            self._progress(what, counts, mine(receiver.since(mark)) if receiver else ())

        now: list[Received] = []
        try:
            try:
                return self._session().retrieve(ident, pending, use_get), now
            except SessionFailed as exc:
                if not (use_get and self.auto and not self.method.confirmed):
                    raise
                self._give_up_get(f"the association was dropped: {exc}")
                with self._lock:
                    self.summary.methods["C-MOVE"] = self.summary.methods.get("C-MOVE", 0) + 1
                return self._session().retrieve(ident, pending, False), now
        finally:
            now += mine(receiver.since(mark)) if receiver else []
            with self._lock:
                self._count_arrivals(now)
                self._flying.arrivals_taken()

    def _count_arrivals(self, arrived: Sequence[Received]) -> None:
        """Every object received counts; stored, only the first time (a request asked
        again, on a re-opened association, may bring the same objects again)."""
        s = self.summary
        s.received += len(arrived)
        s.bytes += sum(r.instance.size for r in arrived)
        new = {
            (r.instance.study_uid, r.instance.sop_instance_uid) for r in arrived if not r.probe
        } - self._stored_once
        self._stored_once |= new
        s.stored += len(new)
        self._outcome.stored += len(new)

    def _account(self, what: str, outcome: RetrieveOutcome, arrived: list[Received]) -> None:
        with self._lock:
            s = self.summary
            counts: SubOps = outcome.counts
            reported = counts.completed
            # What the embedded store received outweighs a count that says less.
            s.completed += max(reported or 0, len(arrived) - (counts.warning or 0))
            s.warning += counts.warning or 0
            failed = failed_count(outcome)
            s.failed += failed
            self._flying.counts_taken()
            self._outcome.failed += failed
            if outcome.cancelled:
                raise Cancelled
            if outcome.status == STATUS_MOVE_DESTINATION_UNKNOWN:
                name = self.session.node.name
                raise RetrieveStopped(
                    f"{name} does not know the move destination {self.store_node.aet}: "
                    + destination_advice(self.store_node, name)
                )
            if not outcome.success:
                self._problem(s.problems, f"{what}: {outcome.problem()}{self._refused_now()}")
            self._stop_if_nothing_works(outcome, arrived)
            if self.receiver is not None:
                gap = self._gap(outcome, arrived)
                if gap:
                    self._problem(s.gaps, f"{what}: {gap}")
                elif outcome.success and reported is not None and not arrived and not failed:
                    self._problem(s.problems, f"{what}: the PACS found nothing to send")
            self._progress(what)

    def _refused_now(self) -> str:
        """What the store itself refused during this thread's last request, if anything."""
        if self.receiver is None:
            return ""
        refused = self.receiver.refusals[getattr(self._here, "refusals_mark", 0) :]
        return (
            f"; {self.store_node.name} refused {len(refused)}: {tally(refused)}" if refused else ""
        )

    def _problem(self, where: list[str], line: str) -> None:
        where.append(line)
        self._outcome.problems.append(line)
        self._log(line)

    def _stop_if_nothing_works(self, outcome: RetrieveOutcome, arrived: list[Received]) -> None:
        worked = (
            bool(arrived) or bool(outcome.counts.completed) or outcome.status & 0xF000 == 0xB000
        )
        if worked or outcome.success:
            self._anything_worked = self._anything_worked or worked
            self._failures_in_a_row = 0
            return
        self._failures_in_a_row += 1
        if self._anything_worked or self._failures_in_a_row < STOP_AFTER_FAILURES:
            return
        advice = ""
        if not self.method.get:
            advice = (
                f"; if the PACS does not know the move destination {self.store_node.aet}, "
                + destination_advice(self.store_node, self.session.node.name)
            )
        raise RetrieveStopped(
            f"the first {self._failures_in_a_row} requests to {self.session.node.name} all "
            f"failed ({outcome.problem()}{self._refused_now()}): stopping{advice}"
        )
