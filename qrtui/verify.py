"""A store's files held against its index (`--verify`), and mended (`--repair`).

"Held" must mean "on disk, whole": a row whose file is gone or cut short would keep a run
from ever fetching that object again. Repairing forgets such rows (the next run fetches
the object again), moves a cut-short file to `.damaged/` rather than deleting it, and
indexes files the index does not know.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qrtui.store import Store, StoredInstance, sync_directory

DAMAGED = ".damaged"


@dataclass
class VerifyReport:
    rows: int = 0
    files: int = 0
    rows_without_files: list[str] = field(default_factory=list)  # paths, relative to the store
    files_without_rows: list[str] = field(default_factory=list)
    size_mismatches: list[str] = field(default_factory=list)  # "path: index N, file M bytes"
    unreadable: list[str] = field(default_factory=list)  # files without rows, not DICOM we read
    repaired: bool = False

    @property
    def clean(self) -> bool:
        """Nothing wrong, or everything mended that could be."""
        if self.repaired:
            return not self.unreadable
        return not (self.rows_without_files or self.files_without_rows or self.size_mismatches)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "files": self.files,
            "rows_without_files": self.rows_without_files,
            "files_without_rows": self.files_without_rows,
            "size_mismatches": self.size_mismatches,
            "unreadable": self.unreadable,
            "repaired": self.repaired,
            "clean": self.clean,
        }

    def lines(self, name: str) -> list[str]:
        out = [f"Store {name}: {self.rows} objects indexed, {self.files} files"]
        for title, items in (
            ("rows without files", self.rows_without_files),
            ("files without rows", self.files_without_rows),
            ("size mismatches", self.size_mismatches),
            ("unreadable files, left alone", self.unreadable),
        ):
            if items:
                out.append(f"  {title}: {len(items)}")
                out += [f"    {item}" for item in items[:20]]
                if len(items) > 20:
                    out.append(f"    ... and {len(items) - 20} more")
        if self.repaired:
            out.append(
                "Repaired: rows without whole files forgotten (the next run fetches them "
                f"again), cut-short files moved to {DAMAGED}/, files without rows indexed."
            )
        elif not self.clean:
            out.append("Run again with --repair to mend the index.")
        else:
            out.append("Every row has its file, whole, and every file its row.")
        return out


def stored_files(directory: Path) -> Iterator[Path]:
    """Object files of the store: not those of its working areas (names starting with '.')."""
    for root, folders, files in os.walk(directory):
        folders[:] = [f for f in folders if not f.startswith(".")]
        for name in files:
            if name.endswith(".dcm"):
                yield Path(root) / name


def verify(store: Store, *, repair: bool = False) -> VerifyReport:
    report = VerifyReport(repaired=repair)
    directory = store.directory
    indexed: set[Path] = set()
    for instance in store.instances():
        report.rows += 1
        indexed.add(instance.path)
        relative = str(instance.path.relative_to(directory))
        try:
            size = instance.path.stat().st_size
        except OSError:
            report.rows_without_files.append(relative)
            if repair:
                store.forget(instance.study_uid, instance.sop_instance_uid)
            continue
        if size != instance.size:
            report.size_mismatches.append(f"{relative}: index {instance.size}, file {size} bytes")
            if repair:
                _set_aside(directory, instance.path)
                store.forget(instance.study_uid, instance.sop_instance_uid)
    for path in stored_files(directory):
        if path in indexed:
            report.files += 1
            continue
        relative = str(path.relative_to(directory))
        found = read_stored(store, path)
        if found is None:
            report.unreadable.append(relative)
            continue
        report.files += 1
        report.files_without_rows.append(relative)
        if repair:
            store.add(path, found)
    return report


def read_stored(store: Store, path: Path) -> StoredInstance | None:
    """The index row a file at its own place in the store would have; None where the file
    is not an object of ours to index (unreadable, or not at the path its UIDs give)."""
    from pydicom import dcmread

    from qrtui.dicom.find import text
    from qrtui.dicom.header import stored_instance
    from qrtui.store import UnsafeUID

    try:
        ds = dcmread(path, stop_before_pixels=True, defer_size="64 KB")
        sop, study, series = (
            text(ds, k) or "" for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
        )
        if store.path_for(study, series, sop) != path:
            return None
        sop_class = text(ds, "SOPClassUID") or ""
        return stored_instance(ds, (sop, study, series), sop_class, path, path.stat().st_size)
    except (UnsafeUID, OSError):
        return None
    except Exception:  # anything pydicom cannot read is left alone, and said
        return None


def _set_aside(directory: Path, path: Path) -> None:
    target = directory / DAMAGED / path.relative_to(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
    sync_directory(target.parent)
    sync_directory(path.parent)
