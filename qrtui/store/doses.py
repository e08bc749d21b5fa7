"""The dose summary of every object held, read once when it arrived."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qrtui.store.index import Store


class DoseIndex:
    """The dose summary of every object held, read once when it arrived."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._db = store._db
        self._mutex = store._mutex

    def fill_in(self, read: Callable[[Path], str | None]) -> int:
        """Summaries for objects stored before they were kept (read from their files);
        how many were added."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT i.sop_instance_uid, i.study_uid, i.path FROM instances i "
                "LEFT JOIN dose d ON d.study_uid = i.study_uid "
                "AND d.sop_instance_uid = i.sop_instance_uid "
                "WHERE d.sop_instance_uid IS NULL"
            ).fetchall()
        added = []
        for uid, study, path in rows:
            summary = read(self.store.directory / path)
            if summary is not None:
                added.append((uid, study, summary))
        with self._mutex:
            self._db.executemany("INSERT OR REPLACE INTO dose VALUES (?, ?, ?)", added)
        return len(added)

    def summaries(self) -> Iterator[tuple[str, str]]:
        """(study UID, summary JSON) of every held object whose summary is kept."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT d.study_uid, d.summary FROM dose d JOIN instances i "
                "ON i.study_uid = d.study_uid AND i.sop_instance_uid = d.sop_instance_uid "
                "ORDER BY d.study_uid"
            ).fetchall()
        yield from rows

    def of_study(self, study_uid: str) -> list[str]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT summary FROM dose WHERE study_uid = ?", (study_uid,)
            ).fetchall()
        return [summary for (summary,) in rows]
