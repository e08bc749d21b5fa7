"""pynetdicom and pydicom made cheaper where a retrieve spends its CPU (profiled with yappi
against Orthanc: UID validation was most of it). Installed on import."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pydicom.config
from pynetdicom import ae, dimse_primitives, pdu_items, pdu_primitives, presentation, utils
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
