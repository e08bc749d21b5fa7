"""An SR's content tree read straight from its bytes, for the walk in sr.py.

pydicom makes a Dataset of every content item and converts each element it is asked for,
about 1.3 ms for a small CT RDSR; most of the receive path's CPU after pynetdicom's own
(issue 26). Here the three sequences the walk starts from are cut into items and elements
once, and a value is decoded only when asked. A value that is not plain ASCII, or holds a
backslash, is decoded by pydicom itself, so it reads the same. A sequence pydicom has read
already is used as it is; anything else (big endian, a broken length) is left to pydicom.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag
from pydicom.values import convert_value

_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
# Explicit VR: these have two reserved bytes and a 4-byte length (PS3.5 7.1.2)
_LONG_VRS = {
    b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"
}  # fmt: skip
_HEAD = struct.Struct("<HHL")
_SHORT = struct.Struct("<H")
_LONG = struct.Struct("<L")

# What sr.py asks of content items: keyword -> (tag, VR)
_ELEMENTS = {
    "ContentSequence": (0x0040A730, "SQ"),
    "ConceptNameCodeSequence": (0x0040A043, "SQ"),
    "ConceptCodeSequence": (0x0040A168, "SQ"),
    "ContentTemplateSequence": (0x0040A504, "SQ"),
    "MeasuredValueSequence": (0x0040A300, "SQ"),
    "MeasurementUnitsCodeSequence": (0x004008EA, "SQ"),
    "CodeValue": (0x00080100, "SH"),
    "CodeMeaning": (0x00080104, "LO"),
    "NumericValue": (0x0040A30A, "DS"),
    "TextValue": (0x0040A160, "UT"),
    "UID": (0x0040A124, "UI"),
    "TemplateIdentifier": (0x0040DB00, "CS"),
}
_SEQUENCE_TAGS = {tag for tag, vr in _ELEMENTS.values() if vr == "SQ"}
_TOP = ("ConceptNameCodeSequence", "ContentSequence", "ContentTemplateSequence")


class NotPlain(Exception):
    """Bytes this reader does not take on: pydicom reads them."""


class Item:
    """One content item (or the dataset's top): attribute access by keyword, as pydicom's,
    for the elements sr.py reads; a missing one raises AttributeError."""

    __slots__ = ("_elements", "_encodings", "_implicit")

    def __init__(self, elements: dict[int, Any], encodings: Any, implicit: bool) -> None:
        self._elements = elements
        self._encodings = encodings
        self._implicit = implicit

    def __getattr__(self, keyword: str) -> Any:
        try:
            tag, vr = _ELEMENTS[keyword]
            value = self._elements[tag]
        except KeyError:
            raise AttributeError(keyword) from None
        if not isinstance(value, bytes):  # a sequence: our items, or pydicom's
            return value
        if value.isascii() and b"\\" not in value:  # pydicom's own reading, done quicker
            return value.decode("ascii").rstrip("\0 ")
        raw = RawDataElement(Tag(tag), vr, len(value), value, 0, self._implicit, True)
        return convert_value(vr, raw, self._encodings)


def content_tree(ds: Any) -> Any:
    """`ds` for the SR walk: its content sequences cut from their bytes, or `ds` itself
    where they are not to be had that way."""
    elements: dict[int, Any] = {}
    implicit = False
    try:
        encodings = getattr(ds, "_character_set", None)
        for keyword in _TOP:
            tag = _ELEMENTS[keyword][0]
            if tag not in ds:
                continue
            raw = ds.get_item(tag, keep_deferred=True)
            if not isinstance(raw, RawDataElement):  # read already: pydicom's items serve
                elements[tag] = raw.value
                continue
            if not raw.is_little_endian:
                return ds
            value = raw.value if raw.value is not None else _deferred(ds, raw)
            implicit = raw.is_implicit_VR
            elements[tag] = _sequence(value, 0, len(value), implicit, encodings)[0]
    except Exception:  # NotPlain, or a dataset that will not be read: pydicom says why
        return ds
    return Item(elements, encodings, implicit)


def _deferred(ds: Any, raw: RawDataElement) -> bytes:
    """A value pydicom left in its file (dcmread's defer_size)."""
    if raw.length == _UNDEFINED or not isinstance(ds.filename, str):
        raise NotPlain("a deferred value of unknown length, or no file")
    with open(ds.filename, "rb") as source:
        source.seek(raw.value_tell)
        value = source.read(raw.length)
    if len(value) != raw.length:
        raise NotPlain("the file is shorter than the value")
    return value


def _sequence(
    data: bytes, pos: int, end: int, implicit: bool, encodings: Any = None
) -> tuple[list[Item], int]:
    """The items from pos, to end or to a sequence delimiter (then just past it); their
    text is in the dataset's character sets, `encodings`."""
    items: list[Item] = []
    while pos + 8 <= end:
        group, element, length = _HEAD.unpack_from(data, pos)
        tag = group << 16 | element
        pos += 8
        if tag == _SEQUENCE_END:
            return items, pos
        if tag != _ITEM:
            raise NotPlain(f"{tag:08X} in a sequence")
        if length == _UNDEFINED:
            elements, pos = _dataset(data, pos, end, implicit, encodings, delimited=True)
        else:
            if pos + length > end:
                raise NotPlain("an item longer than its sequence")
            elements, _ = _dataset(data, pos, pos + length, implicit, encodings, delimited=False)
            pos += length
        items.append(Item(elements, encodings, implicit))
    if pos != end:
        raise NotPlain("a sequence cut short")
    return items, pos


def _dataset(
    data: bytes, pos: int, end: int, implicit: bool, encodings: Any, delimited: bool
) -> tuple[dict[int, Any], int]:
    """One item's elements: sequences as lists of items, other values as their bytes."""
    elements: dict[int, Any] = {}
    while pos + 8 <= end:
        group, element, length = _HEAD.unpack_from(data, pos)
        tag = group << 16 | element
        if tag == _ITEM_END:
            return elements, pos + 8
        if implicit:
            pos += 8
            sequence = length == _UNDEFINED or tag in _SEQUENCE_TAGS
        else:
            vr = data[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                length = _LONG.unpack_from(data, pos + 8)[0]
                pos += 12
            else:
                length = _SHORT.unpack_from(data, pos + 6)[0]
                pos += 8
            sequence = vr == b"SQ"
        value: list[Item] | bytes
        if sequence:
            if length == _UNDEFINED:
                value, pos = _sequence(data, pos, end, implicit, encodings)
            elif pos + length > end:
                raise NotPlain("a sequence longer than its item")
            else:
                value, _ = _sequence(data, pos, pos + length, implicit, encodings)
                pos += length
        elif length == _UNDEFINED or pos + length > end:
            raise NotPlain(f"{tag:08X}: a length past the item")
        else:
            value = data[pos : pos + length]
            pos += length
        elements[tag] = value
    if delimited or pos != end:
        raise NotPlain("an item cut short")
    return elements, pos
