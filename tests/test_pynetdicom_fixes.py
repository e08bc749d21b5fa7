"""Each pynetdicom patch in qrtui.dicom (pynetdicom_fixes, pynetdicom_speed) still meets the
code it was written against: the signature and source of every replaced (or relied-on)
target, taken before patching, are what was recorded. A pynetdicom release that changes one
fails here, naming the target, until the patch is re-checked and the record updated."""

from __future__ import annotations

import hashlib
import inspect
import socket
import threading
from typing import Any

import pydicom
import pynetdicom
import pytest
from pynetdicom import (
    ae,
    association,
    dimse_messages,
    dimse_primitives,
    pdu_items,
    pdu_primitives,
    presentation,
)
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dul import DULServiceProvider
from pynetdicom.presentation import PresentationContext
from pynetdicom.transport import AssociationSocket

import qrtui.dicom  # noqa: F401  (installs the patches)
from qrtui.dicom import patching
from qrtui.dicom import pynetdicom_fixes as fixes
from qrtui.dicom import pynetdicom_reading as reading
from qrtui.dicom import pynetdicom_speed as speed

# target -> (signature, first 16 hex digits of the SHA-256 of its source), as in pynetdicom
# 3.0.4. A change means: read the new code, re-check the patch, then record the new shape.
RECORDED: dict[str, tuple[str, str]] = {
    "pynetdicom.association.Association._handle_no_response": (
        "(self) -> None",
        "6f3d62518395c3a8",
    ),
    "pynetdicom.association.Association._run_reactor": ("(self) -> None", "f28838c5559e462a"),
    "pynetdicom.association.Association._wrap_find_responses": (
        "(self, transfer_syntax: pydicom.uid.UID, query_model: pydicom.uid.UID) -> Iterator[tuple[pydicom.dataset.Dataset, pydicom.dataset.Dataset | None]]",
        "34436b9c80ccb5f3",
    ),
    "pynetdicom.association.Association.send_c_find": (
        "(self, dataset: pydicom.dataset.Dataset, query_model: str | pydicom.uid.UID, msg_id: int = 1, priority: int = 2) -> Iterator[tuple[pydicom.dataset.Dataset, pydicom.dataset.Dataset | None]]",
        "5879d593298e14b6",
    ),
    "pynetdicom.dimse.DIMSEServiceProvider.get_msg": (
        "(self, block: bool = False) -> tuple[None, None] | tuple[int, 'C_ECHO | C_FIND | C_GET | C_MOVE | C_STORE | N_ACTION | N_CREATE | N_DELETE | N_EVENT_REPORT | N_GET | N_SET']",
        "890e3e04283f5aeb",
    ),
    "pynetdicom.dimse.DIMSEServiceProvider.receive_primitive": (
        "(self, primitive: 'P_DATA') -> None",
        "5f99c86b14a15cef",
    ),
    "pynetdicom.dimse_messages.DIMSEMessage.__init__": ("(self) -> None", "b9c44307ebf25f19"),
    "pynetdicom.association.Association.kill": ("(self) -> None", "8f9713666a7f4cff"),
    "pynetdicom.dimse_messages.DIMSEMessage.decode_msg": (
        "(self, primitive: pynetdicom.pdu_primitives.P_DATA, assoc: 'Association | None' = None) -> bool",
        "f51c777e841a76be",
    ),
    "pynetdicom.dimse_messages.DIMSEMessage.message_to_primitive": (
        "(self) -> 'C_CANCEL | DimseServiceType'",
        "f8f43d34e43450ef",
    ),
    "pynetdicom.dimse_messages._DATASET_KEYWORDS": ("dict", "4006056746b641fa"),
    "pynetdicom.dimse_messages._MSG_TO_PRIMITVE": ("dict", "4a9f2cbad6e91d69"),
    "pydicom.dataset.Dataset.__init__": (
        "(self, *args: 'Dataset | MutableMapping[BaseTag, _DatasetValue]', **kwargs: Any) -> None",
        "a82ca621cc775db2",
    ),
    "pydicom.dataset.Dataset.set_original_encoding": (
        "(self, is_implicit_vr: bool | None, is_little_endian: bool | None, character_encoding: str | collections.abc.MutableSequence[str] | None = None) -> None",
        "99f2ab9cc9fc91de",
    ),
    "pydicom.filereader.read_dataset": (
        "(fp: <class 'BinaryIO'>, is_implicit_VR: bool, is_little_endian: bool, bytelength: int | None = None, stop_when: collections.abc.Callable[[pydicom.tag.BaseTag, str | None, int], bool] | None = None, defer_size: str | int | float | None = None, parent_encoding: str | collections.abc.MutableSequence[str] = 'iso8859', specific_tags: list[pydicom.tag.BaseTag | int] | None = None, at_top_level: bool = True) -> pydicom.dataset.Dataset",
        "12a694baec955199",
    ),
    "pynetdicom.dsutils.decode": (
        "(bytestring: _io.BytesIO, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False) -> pydicom.dataset.Dataset",
        "33aaa74edebf3188",
    ),
    "pynetdicom.dsutils.encode": (
        "(ds: pydicom.dataset.Dataset, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False) -> bytes | None",
        "0d29ffd5d358c45a",
    ),
    "pynetdicom.dul.DULServiceProvider._is_transport_event": ("(self) -> bool", "8725ed03bb8fbdef"),
    "pynetdicom.presentation.PresentationContext": ("() -> None", "945149f63930ecec"),
    "pynetdicom.transport.AssociationSocket.recv": (
        "(self, nr_bytes: int) -> bytearray",
        "6bc20a33b1b7cfe7",
    ),
    "pynetdicom.utils.set_uid": (
        "(value: None | str | bytes | pydicom.uid.UID, name: str, allow_empty: bool = True, allow_none: bool = True, validate: bool = True) -> pydicom.uid.UID | None",
        "f917a8035170f792",
    ),
}


def shape(obj: Any) -> tuple[str, str]:
    """Signature and source of a function or class; of a table, its keys and values."""
    if isinstance(obj, dict):
        signature = "dict"
        source = repr(sorted((k, getattr(v, "__qualname__", repr(v))) for k, v in obj.items()))
    else:
        signature, source = str(inspect.signature(obj)), inspect.getsource(obj)
    return signature, hashlib.sha256(source.encode()).hexdigest()[:16]


def test_every_patch_has_a_recorded_shape() -> None:
    assert sorted(patching.SHAPES) == sorted(RECORDED), (
        "pynetdicom_patching.SHAPES and RECORDED name different targets: record the shape of "
        "each target a patch replaces or relies on"
    )


@pytest.mark.parametrize("target", sorted(RECORDED))
def test_a_patched_target_still_has_the_shape_the_patch_expects(target: str) -> None:
    found = shape(patching.SHAPES[target])
    assert found == RECORDED[target], (
        f"pynetdicom {pynetdicom.__version__} changed {target}: re-check the patch in "
        f"qrtui/dicom/pynetdicom_*.py (written against {patching.WRITTEN_AGAINST}), then "
        f"record {target!r}: {found!r}"
    )


def test_the_patches_are_installed() -> None:
    """The replacements are what pynetdicom calls, and the originals are kept apart."""
    for module in (ae, dimse_primitives, pdu_items, pdu_primitives, presentation):
        assert module.set_uid is speed._remembered_set_uid  # type: ignore[attr-defined]
    assert PresentationContext.__deepcopy__ is speed._copy_context  # type: ignore[attr-defined]
    for module in (association, dimse_messages):
        assert module.encode is speed._quick_encode  # type: ignore[attr-defined]
    assert association.decode is reading._quick_decode  # type: ignore[attr-defined]
    assert dimse_messages.decode is reading._quick_decode_command  # type: ignore[attr-defined]
    assert dimse_messages.DIMSEMessage.message_to_primitive is reading._quick_message_to_primitive
    assert dimse_messages.DIMSEMessage.__init__ is reading._quick_message_init
    assert dimse_messages.DIMSEMessage.decode_msg is fixes._decode_msg_for
    assert dimse_messages.NamedTemporaryFile is fixes._incoming_file  # type: ignore[attr-defined]
    assert AssociationSocket.recv is fixes._bounded_recv
    assert DIMSEServiceProvider.receive_primitive is fixes._bounded_receive_primitive
    assert DULServiceProvider._is_transport_event is fixes._transport_event_held_back
    assert DIMSEServiceProvider.get_msg is fixes._get_msg_unless_paused
    assert association.Association.kill is speed._quick_kill
    replacements = {
        speed._remembered_set_uid, speed._quick_encode, speed._quick_kill,
        reading._quick_decode, reading._quick_decode_command,
        reading._quick_message_to_primitive, reading._quick_message_init,
        fixes._decode_msg_for,
        fixes._bounded_recv, fixes._bounded_receive_primitive,
        fixes._transport_event_held_back, fixes._get_msg_unless_paused,
    }  # fmt: skip
    assert not {id(f) for f in replacements} & {id(o) for o in patching.SHAPES.values()}


def test_the_installed_releases_are_the_pinned_ones() -> None:
    assert pynetdicom.__version__.startswith("3.0."), pynetdicom.__version__
    assert pydicom.__version__.startswith("3.0."), pydicom.__version__


def test_a_pdu_is_read_whole_from_pieces_and_what_came_when_the_peer_goes() -> None:
    """The PDU read in as few reads as the socket allows gives what pynetdicom's 4 kB reads
    gave: every byte sent in pieces, and a connection that ends gives what came."""
    ours, theirs = socket.socketpair()
    body = bytes(range(256)) * 1000  # 256,000 bytes
    try:
        sender = threading.Thread(
            target=lambda: [theirs.sendall(body[n : n + 7000]) for n in range(0, len(body), 7000)]
        )
        sender.start()
        assert fixes._recv_whole(ours, len(body)) == body
        sender.join()
        theirs.sendall(body[:1000])
        theirs.close()
        assert fixes._recv_whole(ours, len(body)) == body[:1000]
    finally:
        ours.close()
        theirs.close()
