"""The ledger: each dose object's delivery to each destination, queued when it was indexed.

A row is sent only on the destination's success (a warning counts, and is kept); refused
when the destination said it never will take it; else it stays queued with the last reason,
to be tried again. Nothing sent is sent again unless asked (resend)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qrtui.store.index import Store

QUEUED, SENT, REFUSED = "queued", "sent", "refused"


@dataclass(frozen=True)
class Parcel:
    """One object waiting for one destination."""

    destination: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    path: Path
    size: int
    row: int = 0  # its place in the queue


@dataclass(frozen=True)
class Delivery:
    """A ledger row, as the chain of custody and the TUI show it."""

    destination: str
    study_uid: str
    sop_instance_uid: str
    state: str
    attempts: int
    status: int | None
    reason: str
    queued_at: str
    sent_at: str | None


@dataclass(frozen=True)
class Handed:
    """What one attempt came to."""

    parcel: Parcel
    state: str  # SENT, REFUSED or QUEUED (try again)
    status: int | None = None
    reason: str = ""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class Ledger:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store._db
        self._mutex = store._mutex

    def pending(self, destination: str, after: int = 0, limit: int = 500) -> list[Parcel]:
        """Queued objects for the destination whose index row stands, in queue order, from
        after the row `after` (a pass pages through the queue in bounded memory)."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT i.study_uid, i.series_uid, i.sop_instance_uid, i.sop_class_uid, "
                "i.path, i.size, d.rowid FROM deliveries d JOIN instances i "
                "ON i.study_uid = d.study_uid AND i.sop_instance_uid = d.sop_instance_uid "
                "WHERE d.state = 'queued' AND d.destination = ? AND d.rowid > ? "
                "ORDER BY d.rowid LIMIT ?",
                (destination, after, limit),
            ).fetchall()
        return [
            Parcel(destination, study, series, sop, cls, self._store.directory / path, size, row)
            for study, series, sop, cls, path, size, row in rows
        ]

    def hold_all(self, destination: str, reason: str) -> None:
        """The destination could not be reached: every queued row says why."""
        with self._mutex:
            self._db.execute(
                "UPDATE deliveries SET reason = ? WHERE destination = ? AND state = 'queued'",
                (reason, destination),
            )

    def destinations_waiting(self) -> list[str]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT DISTINCT destination FROM deliveries WHERE state = 'queued' "
                "ORDER BY destination"
            ).fetchall()
        return [name for (name,) in rows]

    def settle(self, results: Iterable[Handed]) -> None:
        """Record what attempts came to, in one transaction."""
        now = _now()
        rows = [
            (
                h.state, h.status, h.reason, now if h.state == SENT else None,
                h.parcel.destination, h.parcel.study_uid, h.parcel.sop_instance_uid,
            )
            for h in results
        ]  # fmt: skip
        with self._mutex, self._store._transaction():
            self._db.executemany(
                "UPDATE deliveries SET state = ?, status = ?, reason = ?, "
                "sent_at = COALESCE(?, sent_at), attempts = attempts + 1 "
                "WHERE destination = ? AND study_uid = ? AND sop_instance_uid = ?",
                rows,
            )

    def counts(self) -> dict[str, dict[str, int]]:
        """Per destination, how many rows are queued, sent and refused."""
        out: dict[str, dict[str, int]] = {}
        with self._mutex:
            for destination, state, count in self._db.execute(
                "SELECT destination, state, COUNT(*) FROM deliveries GROUP BY destination, state"
            ):
                out.setdefault(destination, {QUEUED: 0, SENT: 0, REFUSED: 0})[state] = count
        return out

    def reasons(self, destination: str, state: str) -> dict[str, int]:
        """Why rows stay queued or were refused: each reason, with how many rows."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT reason, COUNT(*) FROM deliveries WHERE destination = ? AND state = ? "
                "GROUP BY reason ORDER BY COUNT(*) DESC",
                (destination, state),
            ).fetchall()
        return {reason or "not tried yet": count for reason, count in rows}

    def of_study(self, study_uid: str) -> list[Delivery]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT destination, study_uid, sop_instance_uid, state, attempts, status, "
                "reason, queued_at, sent_at FROM deliveries WHERE study_uid = ? "
                "ORDER BY destination, sop_instance_uid",
                (study_uid,),
            ).fetchall()
        return [Delivery(*row) for row in rows]

    def by_study(self) -> dict[str, dict[str, dict[str, int]]]:
        """Study UID -> destination -> state -> count, for summaries and the TUI."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        with self._mutex:
            for study, destination, state, count in self._db.execute(
                "SELECT study_uid, destination, state, COUNT(*) FROM deliveries "
                "GROUP BY study_uid, destination, state"
            ):
                out.setdefault(study, {}).setdefault(destination, {})[state] = count
        return out

    def resend(self, destinations: Iterable[str], study_uids: Iterable[str]) -> int:
        """Queue every object held of these studies for these destinations again, sent or
        not (rows are made where there were none); how many rows were queued."""
        now = _now()
        with self._mutex, self._store._transaction():
            before = self._db.total_changes
            for destination in destinations:
                for study in study_uids:
                    self._db.execute(
                        "INSERT INTO deliveries (destination, study_uid, sop_instance_uid, "
                        "state, queued_at) SELECT ?, study_uid, sop_instance_uid, 'queued', ? "
                        "FROM instances WHERE study_uid = ? "
                        "ON CONFLICT (destination, study_uid, sop_instance_uid) DO UPDATE SET "
                        "state = 'queued', reason = '', status = NULL, "
                        "queued_at = excluded.queued_at",
                        (destination, now, study),
                    )
            return self._db.total_changes - before

    def arrivals(self, study_uid: str) -> list[tuple[str, str, str, str, int, str, str]]:
        """What arrived of the study, for its chain of custody: (SOP instance, SOP class,
        series, kind, size, when, sending AE title)."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT sop_instance_uid, sop_class_uid, series_uid, COALESCE(kind, ''), size, "
                "received_at, sending_aet FROM instances WHERE study_uid = ? "
                "ORDER BY received_at, sop_instance_uid",
                (study_uid,),
            ).fetchall()
        return [tuple(row) for row in rows]
