"""The local store: one file per instance under sanitised UIDs, and a SQLite index.

files: paths from UIDs and durable writes; schema: the index's tables; index: the store
itself (Store); runs: the run history, checkpoints and owed studies; doses: the dose
summaries. Keeping layer: it imports nothing above selection (the pure rules).
"""

from __future__ import annotations

from qrtui.store.doses import DoseIndex
from qrtui.store.files import (
    FILE_MODE,
    INCOMING,
    INDEX_NAME,
    LOCK_NAME,
    PROBE,
    UNASKED,
    StoreBusy,
    StoredInstance,
    StoreError,
    UnsafeUID,
    safe_uid,
    sync_directory,
)
from qrtui.store.index import Store, store_summary
from qrtui.store.runs import History, Missing, RunRecord

__all__ = [
    "FILE_MODE", "INCOMING", "INDEX_NAME", "LOCK_NAME", "PROBE", "UNASKED", "DoseIndex",
    "History", "Missing", "RunRecord", "Store", "StoreBusy", "StoreError", "StoredInstance",
    "UnsafeUID", "safe_uid", "store_summary", "sync_directory",
]  # fmt: skip
