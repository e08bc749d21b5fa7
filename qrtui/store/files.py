"""Where and how the store writes: safe paths from UIDs, its areas, durable writes."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

INDEX_NAME = ".qrtui-index.sqlite"
LOCK_NAME = ".qrtui.lock"
INCOMING = ".incoming"
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
PROBE = ".probe"
UNASKED = ".unasked"  # objects a PACS sent for studies or series nobody asked for: kept aside

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


class UnsafeUID(ValueError):
    """A UID that must not become part of a path."""


class StoreBusy(Exception):
    """Another qrtui process holds the store."""


class StoreError(Exception):
    """The store cannot be opened or written; worded for the user."""


def safe_uid(uid: object) -> str:
    """The UID if it is digits and dots of legal length; anything else is refused."""
    if not isinstance(uid, str):
        raise UnsafeUID("not text")
    value = uid.rstrip("\0 ")
    if not value or len(value) > 64 or not _UID.fullmatch(value):
        raise UnsafeUID(f"{len(value)} characters, not digits and dots")
    return value


@dataclass(frozen=True)
class StoredInstance:
    sop_instance_uid: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    modality: str
    path: Path
    size: int
    sending_aet: str
    kind: str = ""  # an ObjectKind value, read from the object's header when it arrived
    dose: str | None = None  # its dose summary (qrtui.dose) as JSON, for dose objects


def file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def sync_directory(folder: Path) -> None:
    """Make the folder's entries (a rename, a new file) survive a power cut."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)
