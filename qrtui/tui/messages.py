"""Messages from thread workers to the screens; progress merges bursts (can_replace)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

from qrtui.events import DeliveryProgress, FunnelProgress, RetrieveProgress

if TYPE_CHECKING:
    from qrtui import worker
    from qrtui.dose import StudyDose
    from qrtui.worker import EchoResult


@dataclass
class EchoAnswered(Message):
    result: EchoResult


@dataclass
class FunnelUpdate(Message):
    event: FunnelProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FunnelUpdate)


@dataclass
class RetrieveUpdate(Message):
    event: RetrieveProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RetrieveUpdate)


@dataclass
class LogLine(Message):
    text: str


@dataclass
class JobDone(Message):
    phase: str  # "plan" or "retrieve"
    outcome: worker.JobOutcome


@dataclass
class NodeDetail(Message):
    node: str
    text: str


@dataclass
class DeliveryUpdate(Message):
    event: DeliveryProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DeliveryUpdate)


@dataclass
class DosesRead(Message):
    doses: dict[str, StudyDose]


@dataclass
class DeliveriesRead(Message):
    lines: dict[str, list[str]]  # study UID -> one line per destination


@dataclass
class PatientsRead(Message):
    patients: dict[str, tuple[str, str, str]]
