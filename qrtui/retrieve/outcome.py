"""What became of a retrieve: per study, and for the run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StudyOutcome:
    """What became of one planned study."""

    study_instance_uid: str
    study_date: str
    stored: int = 0
    discarded: int = 0  # fetched to be read, and not a dose object
    failed: int = 0
    problems: list[str] = field(default_factory=list)  # failures, gaps, the PACS sent nothing
    started: bool = False
    finished: bool = False

    @property
    def complete(self) -> bool:
        return self.finished and not self.failed and not self.problems

    @property
    def state(self) -> str:
        if not self.started:
            return "not reached"
        if not self.finished:
            return "interrupted"
        if self.failed or self.problems:
            return "failed"
        if self.stored:
            return "stored"
        return "inspected and discarded" if self.discarded else "nothing new"

    def reason(self) -> str:
        detail = self.problems[0] if self.problems else ""
        if self.failed and not detail:
            detail = f"{self.failed} sub-operations failed"
        return f"{self.state}: {detail}" if detail else self.state


@dataclass
class RetrieveSummary:
    completed: int = 0
    failed: int = 0
    warning: int = 0
    skipped_already_held: int = 0
    received: int = 0
    bytes: int = 0
    stored: int = 0
    inspected: int = 0
    discarded_after_inspection: int = 0
    requests: int = 0
    by_helpers: int = 0  # of the requests, those a helper process sent (worker/helper.py)
    studies_done: int = 0
    problems: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    sender_notes: list[str] = field(default_factory=list)  # put right by us: no failure
    cancelled: bool = False
    studies: dict[str, StudyOutcome] = field(default_factory=dict)  # by study UID, plan order
    methods: dict[str, int] = field(default_factory=dict)  # requests per C-GET / C-MOVE
    method_note: str = ""  # why auto did not use C-GET

    @property
    def method(self) -> str:
        """Which retrieve was used: C-GET, C-MOVE, or both and why."""
        if not self.methods:
            return "none"
        used = sorted(self.methods, key=lambda m: -self.methods[m])
        text = used[0]
        if len(used) > 1:
            text += f" ({used[1]} for {self.methods[used[1]]} requests)"
        return f"{text}; {self.method_note}" if self.method_note else text

    def missing(self) -> list[StudyOutcome]:
        """Planned studies not brought in whole: what a later run still owes."""
        return [o for o in self.studies.values() if not o.complete]

    @property
    def clean(self) -> bool:
        return not (self.failed or self.problems or self.gaps or self.cancelled)

    def to_json(self) -> dict[str, object]:
        helped = {"requests_by_helpers": self.by_helpers} if self.by_helpers else {}
        return helped | {
            "completed": self.completed,
            "failed": self.failed,
            "warning": self.warning,
            "skipped_already_held": self.skipped_already_held,
            "received": self.received,
            "bytes": self.bytes,
            "stored": self.stored,
            "inspected": self.inspected,
            "discarded_after_inspection": self.discarded_after_inspection,
            "studies_done": self.studies_done,
            "problems": list(self.problems),
            "gaps": list(self.gaps),
            "sender_notes": list(self.sender_notes),
            "cancelled": self.cancelled,
            "method": self.method,
        }
