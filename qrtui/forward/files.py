"""Delivering to a folder (hard link or copy, renamed into place) or to a command per object."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from qrtui.config.destinations import Destination
from qrtui.store import safe_uid, sync_directory
from qrtui.store.ledger import QUEUED, SENT, Handed, Parcel

PARTIAL = ".qrtui-partial"  # in the destination folder: files not yet renamed into place


def to_folder(destination: Destination, parcel: Parcel) -> Handed:
    """DIR/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm, whole or not at all: a hard link
    where the store and the folder share a filesystem, else a copy, fsynced, then renamed
    into place. A file already there with the stored size counts as delivered."""
    assert destination.directory is not None
    root = destination.directory
    final = root.joinpath(
        safe_uid(parcel.study_uid), safe_uid(parcel.series_uid),
        safe_uid(parcel.sop_instance_uid) + ".dcm",
    )  # fmt: skip
    try:
        if final.is_file() and final.stat().st_size == parcel.size:
            return Handed(parcel, SENT, reason="already in the folder")
        (root / PARTIAL).mkdir(parents=True, exist_ok=True)
        temp = root / PARTIAL / f"{final.name}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        try:
            os.link(parcel.path, temp)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            _copy_durably(parcel.path, temp)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)
        sync_directory(final.parent)
    except OSError as exc:
        return Handed(parcel, QUEUED, reason=f"folder {root}: {exc.strerror or exc}")
    return Handed(parcel, SENT)


def _copy_durably(source: Path, target: Path) -> None:
    with open(source, "rb") as src, open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
        out.flush()
        os.fsync(out.fileno())


def to_command(destination: Destination, parcel: Parcel, sop_class_uid: str) -> Handed:
    """Run the command with a copy of the file as its last argument (the command may delete
    or change its file; the store's stays as it was). No shell; a timeout; exit 0 is sent.
    Its output is not kept: an importer may print patient data."""
    with tempfile.TemporaryDirectory(prefix="qrtui-forward-") as folder:
        copy = Path(folder) / (safe_uid(parcel.sop_instance_uid) + ".dcm")
        try:
            shutil.copyfile(parcel.path, copy)
        except OSError as exc:
            return Handed(parcel, QUEUED, reason=f"cannot copy the stored file: {exc.strerror}")
        environment = {
            **os.environ,
            "QRTUI_STUDY_UID": parcel.study_uid,
            "QRTUI_SOP_CLASS_UID": sop_class_uid,
            "QRTUI_DESTINATION": destination.name,
        }
        try:
            done = subprocess.run(
                [*destination.command, str(copy)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
                timeout=destination.command_timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            reason = f"the command did not finish within {destination.command_timeout:g} s"
            return Handed(parcel, QUEUED, reason=reason)
        except OSError as exc:
            return Handed(parcel, QUEUED, reason=f"cannot run the command: {exc.strerror}")
    if done.returncode == 0:
        return Handed(parcel, SENT, status=0)
    return Handed(parcel, QUEUED, status=done.returncode, reason=f"exit {done.returncode}")
