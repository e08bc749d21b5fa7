"""The private pieces of pynetdicom (and pydicom) that qrtui replaces to read what it
receives with less CPU: command sets, C-FIND answers and C-GET identifiers, and the
messages that carry them. Installed on import, by the package `qrtui.dicom`, with
pynetdicom_fixes.py and pynetdicom_speed.py (what is sent).

Each patch carries one comment: what it saves, the figure that kept it (the bench is
`bench/run.py`, its history in bench/README.md) and the release it was written against.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from pydicom import config as pydicom_config
from pydicom import filereader
from pydicom.charset import convert_encodings, default_encoding
from pydicom.datadict import dictionary_keyword, dictionary_VR
from pydicom.dataelem import (
    DataElement,
    RawDataElement,
    convert_raw_data_element,
    empty_value_for_VR,
)
from pydicom.dataset import Dataset
from pydicom.filereader import ENCODED_VR
from pydicom.tag import BaseTag
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32
from pynetdicom import association, dimse_messages, dimse_primitives, dsutils

from qrtui.dicom.patching import install, original
from qrtui.dicom.pynetdicom_speed import INTEGER_VRS


# Saves: turning a received command set into pynetdicom's primitive converted each element
# through pydicom, about 110 us a message, for every C-FIND answer and every C-STORE of a
# C-GET. Command sets hold a few integers, UIDs and AE titles; those are read from their
# bytes here, the rest (error comments, offending elements, anything odd) goes to pynetdicom.
# Figure: second round, the whole job in-process 2.69 -> 2.64 s; issue 24, +0.12 s without
# it (median of 12 paired runs, near the noise). Written against 3.0.4 (relies on
# _MSG_TO_PRIMITVE, _DATASET_KEYWORDS and the primitive's _context_id, _dataset_path and
# _dataset_file).
@functools.lru_cache(maxsize=256)
def _command_entry(tag: int) -> tuple[str, str] | None:
    try:
        return dictionary_keyword(tag), dictionary_VR(tag)
    except KeyError:
        return None


def _raw_value(vr: str, element: Any) -> tuple[bool, Any]:
    """(True, value) of a raw command element that is a plain integer, UID or AE title, as
    pydicom would give it; (False, None) otherwise."""
    raw = element.value
    if not isinstance(raw, bytes) or (element.VR or vr) != vr:
        return False, None
    if vr in INTEGER_VRS and len(raw) == INTEGER_VRS[vr].size:
        return True, INTEGER_VRS[vr].unpack(raw)[0]
    if vr in ("UI", "AE") and raw.isascii() and b"\\" not in raw:
        plain = raw.decode("ascii")
        return True, UID(plain.rstrip("\0 ")) if vr == "UI" else plain.strip()
    return False, None


def command_values(command_set: Dataset) -> list[tuple[str, Any]] | None:
    """(keyword, value) of each element in tag order, as pydicom would give them; None
    where one is not a plain integer, UID or AE title."""
    if type(command_set) is ReceivedCommand:
        known = command_set.values_as_read()
        if known is not None:
            return known
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
        plain, value = _raw_value(vr, element)
        if not plain:
            return None
        found.append((keyword, value))
    return found


_message_to_primitive = original(dimse_messages.DIMSEMessage, "message_to_primitive")
_MSG_TO_PRIMITIVE = original(dimse_messages, "_MSG_TO_PRIMITVE")
_DATASET_KEYWORDS = original(dimse_messages, "_DATASET_KEYWORDS")


def _quick_message_to_primitive(self: dimse_messages.DIMSEMessage) -> Any:
    found = command_values(self.command_set)
    if found is None:
        return _message_to_primitive(self)
    name = type(self).__name__
    primitive: Any = _MSG_TO_PRIMITIVE[name[: name.rfind("_R")]]()
    for keyword, value in found:
        if hasattr(primitive, keyword):
            setattr(primitive, keyword, value)
    dataset_keyword = _DATASET_KEYWORDS.get(name)
    if dataset_keyword is not None:
        setattr(primitive, dataset_keyword, self.data_set)
    primitive._context_id = self.context_id
    primitive._dataset_path = self._data_set_path
    primitive._dataset_file = self._data_set_file
    return primitive


install(dimse_messages.DIMSEMessage, "message_to_primitive", _quick_message_to_primitive)


# Saves: every received command set and C-FIND/C-GET identifier was read by pydicom's
# general reader, about 55 us for a command set and 85 us for a study answer, most of it
# per element. A flat little-endian dataset of defined lengths is cut into the same raw
# elements here; anything else (a sequence of undefined length, an unknown VR, bytes left
# over, big endian, deflate, data that looks encoded in the other VR) goes to pynetdicom's
# decode, and so to pydicom. Figure: issue 26, sixth round (bench/README.md). Written
# against 3.0.4 and pydicom 3.0.2 (read_dataset's elements and original encoding).
_decode = original(dsutils, "decode")
original(filereader, "read_dataset")  # what it makes of raw elements is done again here
_ELEMENT_IMPLICIT = struct.Struct("<HHI")
_ELEMENT_EXPLICIT = struct.Struct("<HH2sH")
_LENGTH_32 = struct.Struct("<I")


def raw_elements(
    data: bytes, implicit_vr: bool
) -> dict[BaseTag, RawDataElement | DataElement] | None:
    """The elements pydicom's reader would give for `data`, little endian; None where this
    is not the plain case."""
    end = len(data)
    if end >= 6 and (0x40 < data[4] < 0x5B and 0x40 < data[5] < 0x5B) == implicit_vr:
        return None  # pydicom would look again at which VR encoding this is
    elements: dict[BaseTag, RawDataElement | DataElement] = {}
    offset = 0
    while offset < end:
        if end - offset < 8:
            return None
        vr: str | None = None
        if implicit_vr:
            group, number, length = _ELEMENT_IMPLICIT.unpack_from(data, offset)
            offset += 8
        else:
            group, number, encoded_vr, length = _ELEMENT_EXPLICIT.unpack_from(data, offset)
            offset += 8
            if encoded_vr not in ENCODED_VR:
                return None
            vr = encoded_vr.decode("ascii")
            if vr in EXPLICIT_VR_LENGTH_32:
                if end - offset < 4:
                    return None
                length = _LENGTH_32.unpack_from(data, offset)[0]
                offset += 4
        if group == 0xFFFE or length > end - offset:  # items, undefined length, short
            return None
        tag = BaseTag(group << 16 | number)
        value: bytes | None = data[offset : offset + length]
        if not length:
            value = empty_value_for_VR(vr, raw=True)  # type: ignore[assignment]  # b"" or None
        elements[tag] = RawDataElement(tag, vr, length, value, offset, implicit_vr, True)
        offset += length
    return elements


_CHARSET = BaseTag(0x00080005)


@functools.lru_cache(maxsize=64)
def _encodings(value: bytes | None, vr: str | None, implicit_vr: bool) -> tuple[str, ...]:
    """What read_dataset makes of a Specific Character Set; a dataset gets its own list."""
    length = len(value or b"")
    charset = RawDataElement(_CHARSET, vr, length, value, 0, implicit_vr, True)
    return tuple(convert_encodings(convert_raw_data_element(charset).value))


# Saves: each received dataset (a command set, an identifier) was made by Dataset(), whose
# thirteen attributes each pass through pydicom's __setattr__ (a keyword look-up), and then
# given its encoding the same way: about 18 us, twice for every C-FIND answer. They are set
# here directly, as Dataset.__init__ and set_original_encoding set them. Figure: issue 26,
# seventh round (bench/README.md). Written against pydicom 3.0.2 (the shape of both is
# recorded; tests/test_wire.py compares what they make).
original(Dataset, "__init__")
original(Dataset, "set_original_encoding")


def made_dataset(
    kind: type[Dataset], elements: dict[BaseTag, Any], as_read: tuple[bool, Any] | None = None
) -> Dataset:
    """kind(elements); with `as_read` (implicit VR, character encoding), read so, in little
    endian."""
    if pydicom_config._use_future:  # pydicom's next release's attributes: made its way
        ds = kind(elements)
        if as_read is not None:
            ds.set_original_encoding(as_read[0], True, as_read[1])
        return ds
    implicit, little, encoding = (as_read[0], True, as_read[1]) if as_read else (None, None, "")
    ds = kind.__new__(kind)
    ds.__dict__.update(
        _parent_encoding=default_encoding, _dict=elements, is_decompressed=False,
        _read_little=little, _read_implicit=implicit, _read_charset=encoding,
        _is_little_endian=None, _is_implicit_VR=None, is_undefined_length_sequence_item=False,
        _private_blocks={}, _pixel_array=None, _pixel_array_opts={"use_pdh": False},
        _pixel_id={},
    )  # fmt: skip
    return ds


# Saves: pynetdicom makes a DIMSEMessage for every message it receives, and its empty
# command set by Dataset(), about 14 us: for every C-FIND answer and every C-STORE of a
# C-GET. It is made as above. Figure: issue 26, seventh round (bench/README.md). Written
# against 3.0.4 (tests/test_wire.py compares what both make).
_message_init = original(dimse_messages.DIMSEMessage, "__init__")


def _quick_message_init(self: dimse_messages.DIMSEMessage) -> None:
    if type(self) is not dimse_messages.DIMSEMessage:  # a message to send: its fields too
        _message_init(self)
        return
    self.__dict__.update(
        context_id=None, encoded_command_set=BytesIO(), data_set=BytesIO(),
        command_set=made_dataset(Dataset, {}), _data_set_path=None, _data_set_file=None,
    )  # fmt: skip


install(dimse_messages.DIMSEMessage, "__init__", _quick_message_init)


def _quick_decode(
    bytestring: Any,
    is_implicit_vr: bool,
    is_little_endian: bool,
    deflated: bool = False,
    kind: type[Dataset] = Dataset,
) -> Dataset:
    if is_little_endian and not deflated and type(bytestring) is BytesIO:
        elements = raw_elements(bytestring.getvalue(), is_implicit_vr)
        if elements is not None:
            charset = elements.get(_CHARSET)
            encoding = (
                default_encoding
                if charset is None
                else list(_encodings(charset.value, charset.VR, is_implicit_vr))
            )
            return made_dataset(kind, elements, (is_implicit_vr, encoding))
    return _decode(bytestring, is_implicit_vr, is_little_endian, deflated)  # type: ignore[no-any-return]


install(association, "decode", _quick_decode)


# Saves: pynetdicom reads a received command set's CommandField and CommandDataSetType
# through pydicom's conversion of raw elements, about 20 us each, and message_to_primitive
# read it all again (command_values, about 30 us): for every C-FIND answer and every
# C-STORE of a C-GET. Its plain values are now read once, as it is decoded. Figure: issue
# 26, seventh round (bench/README.md). Written against 3.0.4 (dimse_messages' decode reads
# command sets only).
class ReceivedCommand(Dataset):
    """A received command set whose plain values were read as it was decoded. A value is
    taken from there only while its element is the one decoded (not changed, not read by
    pydicom since); anything else is looked up as in any Dataset."""

    def read_values(self) -> None:
        as_read: dict[BaseTag, Any] = dict(self._dict)
        by_keyword: dict[str, tuple[BaseTag, Any, Any]] = {}
        values: list[tuple[str, Any]] | None = []
        for tag in sorted(as_read):
            entry = _command_entry(tag)
            plain, value = _raw_value(entry[1], as_read[tag]) if entry else (False, None)
            if entry is None or not plain:
                values = None
                continue
            by_keyword[entry[0]] = (tag, as_read[tag], value)
            if values is not None:
                values.append((entry[0], value))
        self.__dict__.update(_as_read=as_read, _by_keyword=by_keyword, _values=values)

    def _unchanged(self, tag: BaseTag, element: Any) -> bool:
        return self._dict.get(tag) is element

    def __getattr__(self, name: str) -> Any:
        entry = self.__dict__.get("_by_keyword", {}).get(name)
        if entry is not None and self._unchanged(entry[0], entry[1]):
            return entry[2]
        return super().__getattr__(name)

    def values_as_read(self) -> list[tuple[str, Any]] | None:
        """command_values() of it, where every element is the one decoded."""
        as_read = self.__dict__.get("_as_read")
        if as_read is None or len(as_read) != len(self._dict):
            return None
        if not all(self._unchanged(tag, element) for tag, element in as_read.items()):
            return None
        return self.__dict__.get("_values")


def _quick_decode_command(
    bytestring: Any, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False
) -> Dataset:
    found = _quick_decode(bytestring, is_implicit_vr, is_little_endian, deflated, ReceivedCommand)
    if type(found) is ReceivedCommand:
        found.read_values()
    return found


install(dimse_messages, "decode", _quick_decode_command)


# Saves: send_c_find's responses came through a wrapper that builds a status Dataset for
# each answer and formats two log lines, about 50 us of the 430 us of CPU an answer costs
# (the funnel reads about 800 answers on the bench's same-second population). The request
# is still sent by send_c_find; its wrapper is left unstarted, and the responses are read
# here, the same way: the association's lock held to decode, its reactor let go at the end.
# Figure: issue 26, seventh round (bench/README.md). Written against 3.0.4 (relies on
# dimse.get_msg, _get_valid_context, _handle_no_response and _reactor_checkpoint).
original(association.Association, "_wrap_find_responses")
original(association.Association, "send_c_find")
original(association.Association, "_handle_no_response")
_PENDING = frozenset({0xFF00, 0xFF01})
FindResponse = tuple[int | None, Dataset | bytes | None]  # (status, None: lost; identifier)


def find_syntax(assoc: association.Association, model: UID) -> UID:
    """The transfer syntax of the association's C-FIND answers."""
    return assoc._get_valid_context(model, "", "scu").transfer_syntax[0]


def decode_answer(data: BytesIO, syntax: UID) -> Dataset | None:
    """A C-FIND identifier as pynetdicom would decode it; None where it cannot be."""
    try:
        return _quick_decode(
            data, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated
        )
    except Exception:
        return None


def find_responses(
    assoc: association.Association, identifier: Dataset, model: UID, raw: bool = False
) -> Iterator[FindResponse]:
    """(status, identifier) of each C-FIND response: the identifier of a Pending answer
    (None where it cannot be decoded; its bytes with `raw`), None for the final one; a
    status of None where the association timed out, was lost or answered with something
    else (it is then aborted)."""
    syntax = find_syntax(assoc, model)
    assoc.send_c_find(identifier, model)  # sends the request; its reader is not used
    try:
        while True:
            _, rsp = assoc.dimse.get_msg(block=True)
            if rsp is None:
                assoc._handle_no_response()
                yield None, None
                return
            if not isinstance(rsp, dimse_primitives.C_FIND) or not rsp.is_valid_response:
                assoc.abort()
                yield None, None
                return
            status = rsp.Status
            if status not in _PENDING:
                yield status, None
                return
            data = rsp.Identifier
            if data is None:
                yield status, None
                continue
            if raw:
                yield status, data.getvalue()
                continue
            with assoc.lock:
                found = decode_answer(data, syntax)
            yield status, found
    finally:
        assoc._reactor_checkpoint.set()
