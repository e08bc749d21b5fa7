"""How the demo PACS misbehaves on demand (qrtui.demo.pacs): each knob off by default.

The project's tests turn them on to meet what real PACS do, and what no real server does on
demand; the C-STORE rewriters below change pynetdicom's messages on the way out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pynetdicom.dimse_primitives import C_GET, C_MOVE, C_STORE


@dataclass
class Faults:
    """How the demo PACS misbehaves. Each field off by default."""

    ignore_modalities_in_study: bool = False  # match every study, as dcmqrscp does
    hide_sop_class: bool = False
    hide_series_description: bool = False
    hide_instance_count: bool = False
    empty_image_level: bool = False  # image-level queries answer nothing
    cap_results: int | None = None  # stop each C-FIND after N matches...
    cap_status: int = 0x0000  # ...with success, 0xA700 (refused) or 0xFE00 / 0xB001
    reject_associations: bool = False
    refuse_retrieves: bool = False  # associations proposing C-GET or C-MOVE are rejected
    abort_after: int | None = None  # abort a C-MOVE/C-GET after K sub-operations
    delay: float = 0.0  # seconds before each response
    move_status: int | None = None  # 0xA801: destination unknown; 0xB000: one failed
    ignore_cancel: bool = False
    fail_once: bool = False  # the last sub-operation of a request fails, the first time only
    garbled_text: bool = False  # unknown character set, UTF-8 bytes, over-long descriptions
    hide_failed_list: bool = False  # 0xB000 without a Failed SOP Instance UID List
    max_associations: int = 16  # more at once are rejected ("local limit exceeded")
    nonsense_counts: bool = False  # Pendings claim 65535 of everything; the final says 0 sent
    hold_after: int | None = None  # each C-MOVE/C-GET waits after K sub-operations for release()
    fail_studies: frozenset[str] = frozenset()  # retrieves of these studies are refused (0xA702)
    refuse_get: bool = False  # C-GET not offered: associations proposing it get C-MOVE only
    get_status: int | None = None  # every C-GET answered with this failure, nothing sent
    ignore_uid_lists: bool = False  # a list of UIDs matches everything: the whole archive
    miscount_series: bool = False  # studies claim one series more than their series answer
    # Never trust a PACS (issue 22): what each knob makes the PACS do wrong.
    withhold: frozenset[str] = frozenset()  # listed, never sent; the counts agree with that
    withhold_once: bool = False  # ...withheld on the first retrieve that selects them only
    foreign_series: dict[str, str] = field(default_factory=dict)  # study -> another's series too
    lowest_key_only: bool = False  # a retrieve matches on its level's own UID alone
    also_send: str | None = None  # every retrieve also sends this study's objects
    ignore_dates: bool = False  # study dates and times match everything
    store_as: str | None = None  # C-STOREs name this SOP class in their command
    misname_instance: bool = False  # C-STORE commands name another SOP instance
    find_status: int | None = None  # every study query fails at once with this status
    cap_times: int | None = None  # cap_results: on the first N study queries, no others
    cap_keys: int | None = None  # cap_results only on queries with at least N keys (bytes)
    unmatched_by_time: frozenset[str] = frozenset()  # studies no StudyTime range matches
    abort_once: bool = False  # abort_after on the first retrieve only


def misname_stores(assoc: Any, sop_class: str | None, misname_instance: bool) -> None:
    """C-STORE commands that disagree with the datasets they carry."""
    if getattr(assoc, "misnamed_stores", False):
        return
    assoc.misnamed_stores = True
    send = assoc.dimse.send_msg

    def send_misnamed(primitive: Any, context_id: int) -> None:
        if isinstance(primitive, C_STORE) and primitive.AffectedSOPInstanceUID:
            if sop_class:
                primitive.AffectedSOPClassUID = sop_class
            if misname_instance:
                uid = str(primitive.AffectedSOPInstanceUID)
                primitive.AffectedSOPInstanceUID = uid[:-1] + ("2" if uid.endswith("1") else "1")
        send(primitive, context_id)

    assoc.dimse.send_msg = send_misnamed


def miscount(assoc: Any) -> None:
    """pynetdicom counts sub-operations itself: rewrite its responses on the way out."""
    send = assoc.dimse.send_msg

    def send_miscounted(primitive: Any, context_id: int) -> None:
        if isinstance(primitive, C_MOVE | C_GET) and primitive.Status is not None:
            pending = primitive.Status in (0xFF00, 0xFF01)
            for kind in ("Remaining", "Completed", "Failed", "Warning"):
                setattr(primitive, f"NumberOf{kind}Suboperations", 65535 if pending else 0)
        send(primitive, context_id)

    assoc.dimse.send_msg = send_miscounted
