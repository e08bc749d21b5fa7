"""The private pieces of pynetdicom that qrtui replaces to save CPU in what it sends (and in
making associations); pynetdicom_reading.py has what it reads. Installed on import, by the
package `qrtui.dicom`, with pynetdicom_fixes.py.

Each patch carries one comment: what it saves, the figure that kept it (the bench is
`bench/run.py`, its history in bench/README.md) and the release it was written against.

Removed in issue 24: the file meta group of each received object written by hand
(create_file_meta, write_file_meta_info). It saved CPU, not wall time (bench/README.md).
"""

from __future__ import annotations

import copy
import functools
import struct
import time
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import (
    ae,
    association,
    dimse_messages,
    dimse_primitives,
    dsutils,
    pdu_items,
    pdu_primitives,
    presentation,
    utils,
)
from pynetdicom.presentation import PresentationContext

from qrtui.dicom.patching import install, original

# Reading validation is off (qrtui/dicom/__init__.py), set before pynetdicom is imported.


# Saves: each association decodes and checks the same few hundred UIDs (Orthanc proposes
# 126 presentation contexts for every C-MOVE sub-association); the answer for a value never
# changes, so it is remembered; invalid values still raise every time. Figure: first round,
# with reading validation off, 21 s -> 16-17 s; issue 24 (bench/run.py --only tuned, paired
# medians, noise about 0.15 s), the whole job +0.12 s without it. Written against 3.0.4.
_set_uid = original(utils, "set_uid")
_cached_set_uid = functools.lru_cache(maxsize=4096)(_set_uid)


def _remembered_set_uid(value: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return _cached_set_uid(value, name, *args, **kwargs)
    except TypeError:  # unhashable: let pynetdicom say what is wrong
        return _set_uid(value, name, *args, **kwargs)


for _module in (ae, dimse_primitives, pdu_items, pdu_primitives, presentation):
    install(_module, "set_uid", _remembered_set_uid)


# Saves: pynetdicom deep-copies every presentation context of each association (the store's
# 170 for every C-MOVE sub-association it accepts, ours for every association we open).
# Their UIDs are immutable strings; only the list needs copying. Figure: first round, a
# serial C-MOVE 330 ms -> 62 ms, 56 s -> 21 s of a retrieve; issue 24, retrieve = 'move'
# 5.0 s with, 11.0 s without (retrieve = 'auto', all C-GET: no difference). Written against
# 3.0.4 (PresentationContext has no __deepcopy__ of its own; the shape test holds its class).
original(presentation, "PresentationContext")


def _copy_context(self: PresentationContext, memo: dict[int, object]) -> PresentationContext:
    twin = copy.copy(self)
    twin._transfer_syntax = list(self._transfer_syntax)
    return twin


install(PresentationContext, "__deepcopy__", _copy_context)


# Saves: command sets and C-FIND identifiers are flat datasets of short ASCII values, which
# pydicom's writer took about 0.7 ms each to write (pynetdicom encodes every command set
# twice, once to learn its length); these lines write the same bytes in a tenth of that.
# Anything else (sequences, non-ASCII text, person names, numbers as strings, lists) goes to
# pynetdicom's encode. Figure: second round, the funnel in-process 0.71 -> 0.57 s, the dry
# run 0.95 -> 0.81 s (with find.text); issue 24, the whole job +0.31 s without it, the dry
# run +0.06 s. Written against 3.0.4.
_SHORT_TEXT = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "ST", "TM", "UI", "LT"})
INTEGER_VRS = {"US": struct.Struct("<H"), "UL": struct.Struct("<I")}
_IMPLICIT_HEADER = struct.Struct("<HHI")
_EXPLICIT_HEADER = struct.Struct("<HH2sH")
# Explicit VR: these have two reserved bytes and a 4-byte length (PS3.5 7.1.2), even empty
_EXPLICIT_LONG_HEADER = struct.Struct("<HH2s2xI")
_LONG_LENGTH = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
_SHORT_LENGTH = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN", "SH", "SL",
     "SS", "ST", "TM", "UI", "UL", "US"}
)  # fmt: skip


def encode_flat(ds: Dataset, implicit_vr: bool) -> bytes | None:
    """The dataset in little endian, exactly as pydicom writes it, or None where this is
    not the simple case."""
    parts: list[bytes] = []
    for tag in sorted(ds.keys()):
        element = ds.get_item(tag)
        if element.is_raw:
            return None
        group, number = tag >> 16, tag & 0xFFFF
        if number == 0 and group > 6:  # retired group lengths: pydicom leaves them out
            continue
        vr, value = element.VR, element.value
        if value is None or value == "":
            encoded = b""
        elif vr in _SHORT_TEXT and type(value) in (str, UID) and value.isascii():
            encoded = value.encode("ascii")
            if len(encoded) % 2:
                encoded += b"\0" if vr == "UI" else b" "
        elif vr in INTEGER_VRS and type(value) is int:
            try:
                encoded = INTEGER_VRS[vr].pack(value)
            except struct.error:
                return None
        else:
            return None
        if vr not in _SHORT_LENGTH and vr not in _LONG_LENGTH:
            return None  # ambiguous ("US or SS") or unknown: pydicom resolves it
        if implicit_vr:
            parts.append(_IMPLICIT_HEADER.pack(group, number, len(encoded)))
        elif vr in _LONG_LENGTH:
            parts.append(_EXPLICIT_LONG_HEADER.pack(group, number, vr.encode(), len(encoded)))
        elif len(encoded) <= 0xFFFF:
            parts.append(_EXPLICIT_HEADER.pack(group, number, vr.encode(), len(encoded)))
        else:
            return None
        parts.append(encoded)
    return b"".join(parts)


_encode = original(dsutils, "encode")


def _quick_encode(
    ds: Dataset, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False
) -> bytes | None:
    if is_little_endian and not deflated:
        encoded = encode_flat(ds, is_implicit_vr)
        if encoded is not None:
            return encoded
    return _encode(ds, is_implicit_vr, is_little_endian, deflated)  # type: ignore[no-any-return]


for _module in (association, dimse_messages):
    install(_module, "encode", _quick_encode)


# Saves: an association's end (release or abort) waited for its DUL thread to go idle in
# 10 ms sleeps, and the DUL is rarely idle at the first look: about 10 ms of every close,
# and a run closes its pools at every window. The same wait, in 0.5 ms steps. Figure:
# issue 26, seventh round (bench/README.md). Written against 3.0.4.
KILL_POLL_SECONDS = 0.0005
original(association.Association, "kill")


def _quick_kill(self: association.Association) -> None:
    self._reactor_checkpoint.set()  # the reactor must run to be ended
    self._kill = True
    self.is_established = False
    self._is_paused = True
    while self.dul.is_alive() and not self.dul.stop_dul():
        time.sleep(KILL_POLL_SECONDS)


install(association.Association, "kill", _quick_kill)
