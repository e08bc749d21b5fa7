"""What a destination's answer means for the ledger, and what a delivery pass came to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qrtui.store.ledger import QUEUED, REFUSED, SENT

# Statuses after which the same object will never be taken (PS3.4 B.2.3, C.4.2.1.5).
_NEVER = {0x0122: "SOP class not supported", 0x0124: "not authorized"}
_WORDS = {0xA7: "out of resources", 0xA9: "data set does not match the SOP class",
          0xC0: "cannot understand"}  # fmt: skip


def judge(status: int | None, comment: str = "", never: bool = False) -> tuple[str, str]:
    """(ledger state, reason) for a C-STORE answer; status None: no answer, `comment` why."""
    if status is None:
        return (REFUSED if never else QUEUED), comment
    said = f": {comment}" if comment else ""
    if status == 0x0000:
        return SENT, ""
    if 0xB000 <= status <= 0xBFFF:
        return SENT, f"warning 0x{status:04X}{said}"
    if status in _NEVER:
        return REFUSED, f"refused 0x{status:04X} ({_NEVER[status]}){said}"
    words = _WORDS.get(status >> 8)
    reason = f"refused 0x{status:04X}" + (f" ({words})" if words else "") + said
    if status >> 8 == 0xA9:  # the object itself is wrong for its class: as good as never
        return REFUSED, reason
    return QUEUED, reason  # out of resources, cannot understand, processing failure: again


@dataclass
class DestinationReport:
    """One destination after a pass: this pass's counts, and what the ledger still holds."""

    name: str
    sent: int = 0
    refused: int = 0  # refused in this pass
    queued: int = 0  # still queued after the pass, earlier runs' objects included
    warnings: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # why objects are queued or refused
    stopped: str = ""  # why the pass ended before everything was tried
    configured: bool = True  # False: rows for a destination taken out of the configuration

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "queued": self.queued,
            "refused": self.refused,
            "warnings": self.warnings,
            "reasons": dict(self.reasons),
            "stopped": self.stopped or None,
        }

    def line(self) -> str:
        parts = [f"sent {self.sent}"]
        if self.queued:
            parts.append(f"queued {self.queued}")
        if self.refused:
            parts.append(f"refused {self.refused}")
        why = self.stopped or next(iter(self.reasons), "")
        return f"-> {self.name}: " + ", ".join(parts) + (f" ({why})" if why else "")


@dataclass
class DeliveryReport:
    destinations: list[DestinationReport] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(d.sent for d in self.destinations)

    @property
    def queued(self) -> int:
        return sum(d.queued for d in self.destinations)

    @property
    def refused(self) -> int:
        return sum(d.refused for d in self.destinations)

    @property
    def undelivered(self) -> bool:
        """Objects wait for a configured destination, or were refused in this pass: not a
        clean night. Rows of a destination taken out of the configuration wait for nobody."""
        return any((d.queued or d.refused) and d.configured for d in self.destinations)

    def to_json(self) -> dict[str, Any]:
        return {d.name: d.to_json() for d in self.destinations}

    def message(self) -> str:
        waiting = [d for d in self.destinations if (d.queued or d.refused) and d.configured]
        if not waiting:
            return ""
        return "not delivered: " + "; ".join(d.line().removeprefix("-> ") for d in waiting)
