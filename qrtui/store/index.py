"""The local store: one file per instance under sanitised UIDs, and a SQLite index.

A file is written to `.incoming/`, fsynced and renamed into place before its index row
is committed, so the index never names a partial file. A row whose file has gone (a
crash between rename and directory sync, or a person deleting files) does not count as
held, so the next run fetches the object again."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from qrtui.selection import Known
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
    file_size,
    reason,
    safe_uid,
    sync_directory,
)
from qrtui.store.ledger import Ledger
from qrtui.store.runs import History
from qrtui.store.schema import ADDED_COLUMNS, SCHEMA


class Store:
    """Files and index of an embedded store. Thread-safe: one connection, one lock."""

    def __init__(
        self,
        directory: Path,
        *,
        lock: bool = True,
        wait: float = 0.0,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        self._lock_file: int | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if lock:
                self._take_lock(wait, on_wait)
                for area in (INCOMING, PROBE):  # leftovers of a killed run: never indexed
                    shutil.rmtree(directory / area, ignore_errors=True)
            for area in (INCOMING, PROBE):
                (directory / area).mkdir(exist_ok=True)
            self._db = sqlite3.connect(
                directory / INDEX_NAME, check_same_thread=False, isolation_level=None
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=10000")
            self._set_aside_old_keys()
            self._db.executescript(SCHEMA)
            self._add_columns()
            self._rekey()
        except (OSError, sqlite3.Error) as exc:
            self._release_lock()
            raise StoreError(f"cannot open store {directory}: {reason(exc)}") from None
        self._mutex = threading.Lock()
        # destinations every object indexed from now on is queued for (the ledger)
        self.forward_to: tuple[str, ...] = ()

    def _set_aside_old_keys(self) -> None:
        """Stores made before 2026-12 keyed instances on the SOP Instance UID alone, so two
        objects of one UID in two studies replaced each other's rows. Such tables are renamed,
        to be copied into tables keyed on study and UID (_rekey)."""
        for table in ("instances", "inspected", "dose"):
            info = list(self._db.execute(f"PRAGMA table_info({table})"))
            if [row[1] for row in info if row[5]] != ["sop_instance_uid"]:
                continue
            if table == "instances" and "kind" not in {row[1] for row in info}:
                self._db.execute("ALTER TABLE instances ADD COLUMN kind TEXT")
            self._db.execute(f"ALTER TABLE {table} RENAME TO old_{table}")

    def _add_columns(self) -> None:
        for table, column, declaration in ADDED_COLUMNS:
            if column not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")

    def _rekey(self) -> None:
        """Rows of tables set aside are copied over (again, after a crash: nothing doubles)."""
        for (old,) in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'old_%'"
        ).fetchall():
            table = old.removeprefix("old_")
            columns = ", ".join(row[1] for row in self._db.execute(f"PRAGMA table_info({table})"))
            self._db.execute(
                f"INSERT OR IGNORE INTO {table} ({columns}) SELECT {columns} FROM {old}"
            )
            self._db.execute(f"DROP TABLE {old}")

    def _take_lock(self, wait: float, on_wait: Callable[[str], None] | None) -> None:
        """The store's lock; held by another process, asked for again until `wait` s pass
        (`on_wait` is told once that it waits)."""
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    if on_wait is not None and not told:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                        on_wait(
                            f"store {self.directory} is in use by another qrtui process "
                            f"(pid {holder or 'unknown'}): waiting up to {wait:g} s"
                        )
                        told = True
                    time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
                    continue
                holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                waited = f" (waited {wait:g} s)" if wait else ""
                raise StoreBusy(
                    f"store {self.directory} is in use by another qrtui process "
                    f"(pid {holder}){waited}"
                ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_file = fd

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        self._release_lock()

    @property
    def history(self) -> History:
        return History(self)

    @property
    def doses(self) -> DoseIndex:
        return DoseIndex(self)

    @property
    def ledger(self) -> Ledger:
        return Ledger(self)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ writing

    def path_for(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> Path:
        parts = (safe_uid(study_uid), safe_uid(series_uid), safe_uid(sop_instance_uid) + ".dcm")
        return self.directory.joinpath(*parts)

    @property
    def incoming(self) -> Path:
        """Where files are written before they are renamed into place."""
        return self.directory / INCOMING

    def write_file(self, data: bytes | Path, final: Path) -> int:
        """Write data (bytes, or the file at a path, copied in chunks) durably to final, a
        path inside this store: file fsync, rename, directory fsync. A file already in
        `incoming` is renamed, not copied."""
        self._make_folders(final.parent)
        if isinstance(data, Path) and data.parent == self.incoming:
            with open(data, "rb") as written:
                os.fsync(written.fileno())
                os.fchmod(written.fileno(), FILE_MODE)  # as a file we create would have
                size = os.fstat(written.fileno()).st_size
            os.replace(data, final)
            sync_directory(final.parent)
            return size
        temp = self.directory / INCOMING / f"{final.name}.{threading.get_ident()}.tmp"
        try:
            with open(temp, "xb") as out:
                if isinstance(data, Path):
                    with open(data, "rb") as source:
                        shutil.copyfileobj(source, out, 1 << 20)
                else:
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            os.replace(temp, final)
            sync_directory(final.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return size

    def _make_folders(self, folder: Path) -> None:
        """The folder and its missing parents, each made durable in its own parent: a rename
        into a folder whose entry a power cut loses is lost too."""
        missing = []
        while not folder.is_dir() and folder != self.directory:
            missing.append(folder)
            folder = folder.parent
        for made in reversed(missing):
            made.mkdir(exist_ok=True)
            sync_directory(made.parent)

    def probe_path(self, sop_instance_uid: str) -> Path:
        return self.directory / PROBE / (safe_uid(sop_instance_uid) + ".dcm")

    def unasked_path(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> Path:
        return (
            self.directory
            / UNASKED
            / self.path_for(study_uid, series_uid, sop_instance_uid).relative_to(self.directory)
        )

    def add(self, data: bytes | Path, instance: StoredInstance) -> str | None:
        """Write the file, then index it. Raises OSError or sqlite3.Error; leaves nothing.
        The same instance again (same UID, same size) leaves the file standing: a failed
        second write must not take away a good first copy. Returns another study that holds
        an object of the same SOP Instance UID, when this row is the first of its study."""
        if instance.path.is_file() and instance.path.stat().st_size == instance.size:
            return self._index(instance)
        self.write_file(data, instance.path)
        try:
            return self._index(instance)
        except BaseException:
            with contextlib.suppress(OSError):
                instance.path.unlink()
            raise

    def adopt(self, probe_file: Path, instance: StoredInstance) -> str | None:
        """Move an inspected probe file into the store and index it (as add)."""
        self._make_folders(instance.path.parent)
        os.replace(probe_file, instance.path)
        sync_directory(instance.path.parent)
        return self._index(instance)

    def _index(self, i: StoredInstance) -> str | None:
        """The instance's row and its dose summary, together or not at all."""
        received_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with self._mutex, self._transaction():
            twins = self._db.execute(
                "SELECT study_uid FROM instances WHERE sop_instance_uid = ?",
                (i.sop_instance_uid,),
            ).fetchall()
            self._db.execute(
                "INSERT OR REPLACE INTO instances (sop_instance_uid, sop_class_uid, study_uid, "
                "series_uid, modality, path, size, received_at, sending_aet, kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    i.sop_instance_uid,
                    i.sop_class_uid,
                    i.study_uid,
                    i.series_uid,
                    i.modality,
                    str(i.path.relative_to(self.directory)),
                    i.size,
                    received_at,
                    i.sending_aet,
                    i.kind or None,
                ),
            )
            if i.dose is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO dose VALUES (?, ?, ?)",
                    (i.sop_instance_uid, i.study_uid, i.dose),
                )
            self._db.executemany(  # a row already there (sent, say) stays as it is
                "INSERT OR IGNORE INTO deliveries (destination, study_uid, sop_instance_uid, "
                "state, queued_at) VALUES (?, ?, ?, 'queued', ?)",
                [(d, i.study_uid, i.sop_instance_uid, received_at) for d in self.forward_to],
            )
        others = sorted(study for (study,) in twins)
        return None if not others or i.study_uid in others else others[0]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE .. COMMIT, rolled back on any error (the caller holds the mutex)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already (disk full)
                self._db.execute("ROLLBACK")
            raise

    def forget(self, study_uid: str, sop_instance_uid: str) -> None:
        """An object no longer held (its file gone or damaged): the next run fetches it."""
        with self._mutex, self._transaction():
            for table in ("instances", "dose"):
                self._db.execute(
                    f"DELETE FROM {table} WHERE study_uid = ? AND sop_instance_uid = ?",
                    (study_uid, sop_instance_uid),
                )

    def remember_inspected(
        self, sop_instance_uid: str, sop_class_uid: str, study_uid: str, kind: str
    ) -> None:
        """What a probe taught us, so a later run need not fetch the object again to know."""
        with self._mutex:
            self._db.execute(
                "INSERT OR REPLACE INTO inspected VALUES (?, ?, ?, ?)",
                (sop_instance_uid, sop_class_uid, study_uid, kind),
            )

    # ------------------------------------------------------------ reading

    def held(self, study_uid: str) -> frozenset[str]:
        """SOP instance UIDs of the study whose files are in the store, whole."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT sop_instance_uid, path, size FROM instances WHERE study_uid = ?",
                (study_uid,),
            ).fetchall()
        return frozenset(
            uid for uid, path, size in rows if file_size(self.directory / path) == size
        )

    def known(self, study_uid: str) -> dict[str, Known]:
        """SOP class, and what it turned out to be, of every instance of the study held or
        inspected before. Rows from before kinds were recorded are read once and filled in."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT sop_instance_uid, sop_class_uid, kind, NULL FROM inspected "
                "WHERE study_uid = ? UNION ALL SELECT sop_instance_uid, sop_class_uid, kind, path "
                "FROM instances WHERE study_uid = ?",
                (study_uid, study_uid),
            ).fetchall()
        known = {}
        for uid, sop_class, kind, path in rows:
            if kind is None and path is not None:
                kind = self._backfill_kind(uid, sop_class, self.directory / path, study_uid)
            known[uid] = Known(sop_class, kind)
        return known

    def _backfill_kind(self, uid: str, sop_class: str, path: Path, study: str) -> str | None:
        from qrtui.dicom.header import kind_of_file  # pydicom: only for stores that need it

        kind = kind_of_file(path, sop_class)
        if kind is None:
            return None
        with self._mutex:
            self._db.execute(
                "UPDATE instances SET kind = ? WHERE study_uid = ? AND sop_instance_uid = ?",
                (str(kind), study, uid),
            )
        return str(kind)

    def inspected(self, study_uid: str) -> frozenset[str]:
        """Instances of the study fetched, inspected and found not to be dose objects."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT sop_instance_uid FROM inspected WHERE study_uid = ?", (study_uid,)
            ).fetchall()
        return frozenset(uid for (uid,) in rows)

    def instances(self) -> Iterator[StoredInstance]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT sop_instance_uid, sop_class_uid, study_uid, series_uid, modality, path, "
                "size, sending_aet, kind FROM instances ORDER BY study_uid, series_uid"
            ).fetchall()
        for sop, cls, study, series, modality, path, size, aet, kind in rows:
            yield StoredInstance(
                sop, cls, study, series, modality, self.directory / path, size, aet, kind or ""
            )


def store_summary(directory: Path) -> tuple[int, int] | None:
    """(objects, bytes) an embedded store's index holds; None where it has no index yet.
    Read only: a running job may hold the store."""
    index = directory / INDEX_NAME
    if not index.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True)) as db:
            count, size = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM instances"
            ).fetchone()
    except sqlite3.Error:
        return None
    return int(count), int(size)
