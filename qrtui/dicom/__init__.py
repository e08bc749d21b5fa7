"""DICOM networking: associations, echo, find, C-GET/C-MOVE, the storage SCP, and the patches
of pynetdicom (pynetdicom_fixes.py, pynetdicom_speed.py, pynetdicom_reading.py). Blocking
code; callers run it in threads. Transport: it may import keeping (qrtui.store,
qrtui.config) and read headers with qrtui.dose and qrtui.selection, never a part, the worker
or a face."""

import pydicom.config

# Saves: pydicom checked every value read against its VR's rules, UIDs by regular
# expression; we decode whatever a PACS sends anyway, tolerantly. A public setting, not a
# patch. Figure: first round, with the set_uid cache, 21 s -> 16-17 s of a retrieve. Set
# before pynetdicom is imported, which makes some 3,000 UIDs as it loads: issue 26, sixth
# round, 15-20 ms of every start.
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE

from pynetdicom import _config as _pynetdicom_config  # noqa: E402

# Patch pynetdicom on import: every patch, and why, is in these three modules.
from qrtui.dicom import pynetdicom_reading as _pynetdicom_reading  # noqa: E402, F401
from qrtui.dicom import pynetdicom_speed as _pynetdicom_speed  # noqa: E402, F401
from qrtui.dicom.pynetdicom_fixes import (  # noqa: E402
    MAX_MESSAGE_BYTES,
    MAX_PDU_BACKLOG,
    MAX_PDU_BYTES,
)

__all__ = ["MAX_MESSAGE_BYTES", "MAX_PDU_BACKLOG", "MAX_PDU_BYTES"]

# pynetdicom logs whole identifiers (patient names and IDs) unless told not to.
_pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False
_pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
_pynetdicom_config.LOG_HANDLER_LEVEL = "none"
# Received datasets go to a temporary file as they arrive, not into memory: a breast
# tomosynthesis object of some hundred MB must not need that much RAM.
_pynetdicom_config.STORE_RECV_CHUNKED_DATASET = True
