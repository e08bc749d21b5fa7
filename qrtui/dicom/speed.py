"""pynetdicom and pydicom made cheaper where a retrieve spends its CPU (profiled with yappi
against Orthanc: UID validation was most of it). Installed on import."""

from __future__ import annotations

import collections
import copy
import functools
import itertools
import os
import struct
import tempfile
import threading
from pathlib import Path
from typing import Any

import pydicom.config
from pydicom import filewriter
from pydicom.datadict import dictionary_keyword, dictionary_VR
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import (
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
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

# Every value read was checked against its VR's rules, UIDs by regular expression: we decode
# whatever a PACS sends anyway, tolerantly.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

# Each association decodes and checks the same few hundred UIDs (Orthanc proposes 126
# presentation contexts for every C-MOVE sub-association). The answer for a value never
# changes, so remember it; invalid values still raise every time.
_cached_set_uid = functools.lru_cache(maxsize=4096)(utils.set_uid)


def _set_uid(value: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    try:
        return _cached_set_uid(value, name, *args, **kwargs)
    except TypeError:  # unhashable: let pynetdicom say what is wrong
        return utils.set_uid(value, name, *args, **kwargs)


for _module in (ae, dimse_primitives, pdu_items, pdu_primitives, presentation):
    _module.set_uid = _set_uid  # type: ignore[attr-defined]


# pynetdicom deep-copies the store's 170 presentation contexts for every association it
# accepts: 200 ms per C-MOVE sub-association, most of a small retrieve. Their UIDs are
# immutable strings; only the list needs copying.
def _copy_context(self: PresentationContext, memo: dict[int, object]) -> PresentationContext:
    twin = copy.copy(self)
    twin._transfer_syntax = list(self._transfer_syntax)
    return twin


PresentationContext.__deepcopy__ = _copy_context  # type: ignore[attr-defined]


# Command sets and C-FIND identifiers are flat datasets of short ASCII values. pydicom's
# writer spends about 0.7 ms on each (pynetdicom encodes every command set twice, once to
# learn its length); these few lines write the same bytes in a tenth of that. Anything else
# (sequences, non-ASCII text, person names, numbers as strings, lists) goes to pydicom.
_SHORT_TEXT = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "ST", "TM", "UI", "LT"})
_INTEGER = {"US": struct.Struct("<H"), "UL": struct.Struct("<I")}
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
        elif vr in _INTEGER and type(value) is int:
            try:
                encoded = _INTEGER[vr].pack(value)
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


def _encode(
    ds: Dataset, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False
) -> bytes | None:
    if is_little_endian and not deflated:
        encoded = encode_flat(ds, is_implicit_vr)
        if encoded is not None:
            return encoded
    return dsutils.encode(ds, is_implicit_vr, is_little_endian, deflated)


for _module in (association, dimse_messages):
    _module.encode = _encode  # type: ignore[attr-defined]


# Turning a received command set into pynetdicom's primitive converted each element through
# pydicom: about 110 us a message, for every C-FIND answer and every C-STORE. Command sets
# hold a few integers, UIDs and AE titles; those are read from their bytes here, the rest
# (error comments, offending elements, anything odd) the way pynetdicom does it.
@functools.lru_cache(maxsize=256)
def _command_entry(tag: int) -> tuple[str, str] | None:
    try:
        return dictionary_keyword(tag), dictionary_VR(tag)
    except KeyError:
        return None


def command_values(command_set: Dataset) -> list[tuple[str, Any]] | None:
    """(keyword, value) of each element in tag order, as pydicom would give them; None
    where one is not a plain integer, UID or AE title."""
    found: list[tuple[str, Any]] = []
    for tag in sorted(command_set.keys()):
        element = command_set.get_item(tag)
        entry = _command_entry(tag)
        if entry is None:
            return None
        keyword, vr = entry
        if not element.is_raw:  # read already, as CommandField is
            if element.VM > 1:
                return None
            found.append((keyword, element.value))
            continue
        raw = element.value
        if not isinstance(raw, bytes) or (element.VR or vr) != vr:
            return None
        if vr in _INTEGER and len(raw) == _INTEGER[vr].size:
            found.append((keyword, _INTEGER[vr].unpack(raw)[0]))
        elif vr in ("UI", "AE") and raw.isascii() and b"\\" not in raw:
            plain = raw.decode("ascii")
            found.append((keyword, UID(plain.rstrip("\0 ")) if vr == "UI" else plain.strip()))
        else:
            return None
    return found


_message_to_primitive = dimse_messages.DIMSEMessage.message_to_primitive


def _quick_message_to_primitive(self: dimse_messages.DIMSEMessage) -> Any:
    found = command_values(self.command_set)
    if found is None:
        return _message_to_primitive(self)
    name = type(self).__name__
    primitive: Any = dimse_messages._MSG_TO_PRIMITVE[name[: name.rfind("_R")]]()
    for keyword, value in found:
        if hasattr(primitive, keyword):
            setattr(primitive, keyword, value)
    dataset_keyword = dimse_messages._DATASET_KEYWORDS.get(name)
    if dataset_keyword is not None:
        setattr(primitive, dataset_keyword, self.data_set)
    primitive._context_id = self.context_id
    primitive._dataset_path = self._data_set_path
    primitive._dataset_file = self._data_set_file
    return primitive


dimse_messages.DIMSEMessage.message_to_primitive = _quick_message_to_primitive  # type: ignore[method-assign]


# A received dataset goes to a temporary file as it arrives (STORE_RECV_CHUNKED_DATASET). By
# default in the system's temporary directory, from where the store had to copy it; an
# association given a directory (INCOMING_ATTRIBUTE) has it written there instead, beside
# the store's files, and the store renames it into place.
INCOMING_ATTRIBUTE = "qrtui_incoming"
_receiving = threading.local()
_decode_msg = dimse_messages.DIMSEMessage.decode_msg


def _decode_msg_for(self: dimse_messages.DIMSEMessage, primitive: Any, assoc: Any = None) -> bool:
    _receiving.directory = getattr(assoc, INCOMING_ATTRIBUTE, None)
    return bool(_decode_msg(self, primitive, assoc))


class _IncomingFile:
    """What pynetdicom uses of a NamedTemporaryFile. A failed write (a full disk) is kept in
    `failed` and not raised: raised, it would abort the association in pynetdicom's reader,
    where the store could not answer "out of resources" and the sender would not know why."""

    _names = itertools.count()

    def __init__(self, directory: str | None) -> None:
        self.failed: OSError | None = None
        for folder in dict.fromkeys((directory, tempfile.gettempdir())):
            try:
                self.name, fd = self._create(Path(folder or tempfile.gettempdir()))
                break
            except OSError as exc:  # the store's area could not take a file: as before
                error = exc
        else:
            raise error
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.file = self  # pynetdicom flushes `.file`
        self.tell = self._file.tell

    def _create(self, folder: Path) -> tuple[str, int]:
        while True:
            name = str(folder / f"recv-{os.getpid()}-{next(self._names)}.dcm")
            try:
                return name, os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # left by an earlier process of the same number
                continue

    def write(self, data: bytes) -> int:
        if self.failed is None:
            try:
                return self._file.write(data) or 0
            except OSError as exc:
                self.failed = exc
        return len(data)

    def flush(self) -> None:
        pass  # unbuffered

    def close(self) -> None:
        self._file.close()


def received_write_error(event: Any) -> OSError | None:
    """Why the file of this C-STORE could not be written whole, if it could not."""
    incoming = getattr(getattr(event, "request", None), "_dataset_file", None)
    return getattr(incoming, "failed", None)


def _incoming_file(**kwargs: Any) -> Any:
    return _IncomingFile(getattr(_receiving, "directory", None))


# Each received object's file starts with a file meta group, which pynetdicom builds and
# writes through pydicom: a third of a millisecond per object. The same bytes, written here.
_FileMeta = collections.namedtuple(
    "_FileMeta", "sop_class sop_instance transfer_syntax uid version"
)


def _create_file_meta(
    *,
    sop_class_uid: Any,
    sop_instance_uid: Any,
    transfer_syntax: Any,
    implementation_uid: Any = PYNETDICOM_IMPLEMENTATION_UID,
    implementation_version: str = PYNETDICOM_IMPLEMENTATION_VERSION,
) -> Any:
    return _FileMeta(
        sop_class_uid, sop_instance_uid, transfer_syntax, implementation_uid, implementation_version
    )


def file_meta_bytes(meta: Any) -> bytes | None:
    """The file meta group of `_create_file_meta`'s values as pydicom writes it, or None."""
    elements = []
    for number, vr, value in (
        (0x0002, "UI", meta.sop_class),
        (0x0003, "UI", meta.sop_instance),
        (0x0010, "UI", meta.transfer_syntax),
        (0x0012, "UI", meta.uid),
        (0x0013, "SH", meta.version),
    ):
        if value is None or value == "":
            continue
        text = str(value)
        if not text.isascii() or "\\" in text or len(text) > 64:
            return None
        encoded = text.encode("ascii")
        if len(encoded) % 2:
            encoded += b"\0" if vr == "UI" else b" "
        elements.append(_EXPLICIT_HEADER.pack(2, number, vr.encode(), len(encoded)) + encoded)
    version = b"\x02\x00\x01\x00OB\x00\x00" + struct.pack("<I", 2) + b"\x00\x01"
    body = version + b"".join(elements)
    return _EXPLICIT_HEADER.pack(2, 0, b"UL", 4) + struct.pack("<I", len(body)) + body


def _write_file_meta_info(fp: Any, file_meta: Any, enforce_standard: bool = True) -> None:
    if isinstance(file_meta, _FileMeta):
        encoded = file_meta_bytes(file_meta)
        if encoded is not None:
            fp.write(encoded)
            return
        file_meta = dsutils.create_file_meta(
            sop_class_uid=file_meta.sop_class,
            sop_instance_uid=file_meta.sop_instance,
            transfer_syntax=file_meta.transfer_syntax,
            implementation_uid=file_meta.uid,
            implementation_version=file_meta.version,
        )
    filewriter.write_file_meta_info(fp, file_meta, enforce_standard)


dimse_messages.create_file_meta = _create_file_meta  # type: ignore[attr-defined]
dimse_messages.write_file_meta_info = _write_file_meta_info  # type: ignore[attr-defined]
dimse_messages.DIMSEMessage.decode_msg = _decode_msg_for  # type: ignore[method-assign]
dimse_messages.NamedTemporaryFile = _incoming_file  # type: ignore[attr-defined,assignment]
