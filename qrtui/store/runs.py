"""Runs, checkpoints and studies still owed, in the store's index: they travel with it."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qrtui.store.index import Store


@dataclass(frozen=True)
class Missing:
    """A study a run planned and did not bring in whole."""

    study_uid: str
    study_date: str
    reason: str
    description: str = ""  # as the run's plan listed the study (for people, not the JSON)
    group: str = ""


@dataclass(frozen=True)
class RunRecord:
    """One run as the history keeps it: no patient data."""

    started: str
    finished: str
    face: str  # "scripted", "tui" or "demo"
    remote: str
    store: str
    profile: str | None
    query_key: str | None  # the checkpoint key of a --since-last run
    window_from: str | None
    window_until: str | None
    query: dict[str, Any]
    counts: dict[str, int]
    retrieve: dict[str, Any] | None
    studies_planned: int
    exit_status: int
    message: str
    notices: tuple[str, ...] = ()
    missing: tuple[Missing, ...] = ()
    id: int | None = None
    delivery: dict[str, Any] | None = None  # per destination: sent, queued, refused

    @property
    def cancelled_by(self) -> str:
        """Who stopped a cancelled run ('' for one that ran to its end): a cancel is not a
        failure, though its exit status is 1 (the next run fetches the rest)."""
        if not (self.retrieve or {}).get("cancelled"):
            return ""
        if self.face == "tui":
            return "cancelled by the user (c or quit in the TUI)"
        return "interrupted (Ctrl-C or SIGTERM)"

    def delivery_lines(self) -> list[str]:
        """The run's delivery: one line per destination."""
        lines = []
        for name, part in (self.delivery or {}).items():
            told = [f"{state} {part.get(state, 0)}" for state in ("sent", "queued", "refused")]
            why = part.get("stopped") or next(iter(part.get("reasons") or {}), "")
            lines.append(f"-> {name}: {', '.join(told)}" + (f" ({why})" if why else ""))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started": self.started,
            "finished": self.finished,
            "face": self.face,
            "remote": self.remote,
            "store": self.store,
            "profile": self.profile,
            "window": {"from": self.window_from, "until": self.window_until},
            "query": self.query,
            "counts": self.counts,
            "exit_status": self.exit_status,
            "message": self.message,
            "notices": list(self.notices),
            "studies_planned": self.studies_planned,
            "retrieve": self.retrieve,
            "forward": self.delivery,
            "missing": [
                {"study_instance_uid": m.study_uid, "study_date": m.study_date, "reason": m.reason}
                for m in self.missing
            ],
        }


class History:
    """Runs, checkpoints and studies still owed, in the store's index: they travel with it."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._db = store._db
        self._mutex = store._mutex

    def record(
        self,
        run: RunRecord,
        *,
        checkpoint: str | None = None,
        owed: tuple[Missing, ...] | None = None,
        settled: frozenset[str] = frozenset(),
        studies: Iterable[tuple[str, str]] = (),
    ) -> int:
        """The run, and with a query key its checkpoint (when given) and its owed studies
        (replaced by `owed` where given, less the `settled` ones), and what its plan said of
        each study (`studies`: UID, JSON), in one transaction."""
        with self._mutex, self._store._transaction():
            cursor = self._db.execute(
                "INSERT INTO runs (started, finished, face, remote, store, profile, "
                "query_key, window_from, window_until, query, counts, retrieve, "
                "studies_planned, exit_status, message, notices) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.started, run.finished, run.face, run.remote, run.store,
                    run.profile, run.query_key, run.window_from, run.window_until,
                    json.dumps(run.query), json.dumps(run.counts),
                    None if run.retrieve is None else json.dumps(run.retrieve),
                    run.studies_planned, run.exit_status, run.message,
                    json.dumps(list(run.notices)),
                ),
            )  # fmt: skip
            run_id = int(cursor.lastrowid or 0)
            self._db.executemany(
                "INSERT INTO run_missing VALUES (?, ?, ?, ?)",
                [(run_id, m.study_uid, m.study_date, m.reason) for m in run.missing],
            )
            self._db.executemany(
                "INSERT INTO run_studies VALUES (?, ?, ?)",
                ((run_id, uid, entry) for uid, entry in studies),
            )
            key = run.query_key
            if key is not None and checkpoint is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?)",
                    (key, checkpoint, run_id),
                )
            if key is not None:
                self._db.executemany(
                    "DELETE FROM owed WHERE query_key = ? AND study_uid = ?",
                    [(key, uid) for uid in settled],
                )
            if key is not None and owed is not None:
                self._db.executemany(
                    "INSERT OR REPLACE INTO owed VALUES (?, ?, ?, ?)",
                    [(key, m.study_uid, m.study_date, m.reason) for m in owed],
                )
        return run_id

    def set_delivery(
        self, run_id: int, delivery: dict[str, Any], status: int, message: str
    ) -> None:
        """What the run's delivery pass came to, and the run's exit status after it."""
        with self._mutex:
            self._db.execute(
                "UPDATE runs SET delivery = ?, exit_status = ?, message = ? WHERE id = ?",
                (json.dumps(delivery), status, message, run_id),
            )

    def plans_of(self, study_uid: str) -> list[tuple[int, str, dict[str, Any]]]:
        """(run id, its start, what its plan said) for every run that listed the study."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT s.run_id, r.started, s.entry FROM run_studies s JOIN runs r "
                "ON r.id = s.run_id WHERE s.study_uid = ? ORDER BY s.run_id",
                (study_uid,),
            ).fetchall()
        return [(run_id, started, json.loads(entry)) for run_id, started, entry in rows]

    def mark_days_done(self, resume_key: str, days: list[str], finished: str) -> None:
        """The days of a window of a run in windows, planned and brought in whole: their
        objects' rows were each committed as they arrived, before this, so a day marked done
        is never short."""
        with self._mutex, self._store._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO days_done VALUES (?, ?, ?)",
                [(resume_key, day, finished) for day in days],
            )

    def forget_days(self, resume_key: str) -> None:
        with self._mutex:
            self._db.execute("DELETE FROM days_done WHERE resume_key = ?", (resume_key,))

    def days_done(self, resume_key: str) -> frozenset[str]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT day FROM days_done WHERE resume_key = ?", (resume_key,)
            ).fetchall()
        return frozenset(str(day) for (day,) in rows)

    def checkpoint(self, key: str) -> str | None:
        with self._mutex:
            row = self._db.execute(
                "SELECT until FROM checkpoints WHERE query_key = ?", (key,)
            ).fetchone()
        return None if row is None else str(row[0])

    def owed(self, key: str) -> tuple[Missing, ...]:
        with self._mutex:
            rows = self._db.execute(
                "SELECT study_uid, study_date, reason FROM owed WHERE query_key = ? "
                "ORDER BY study_date, study_uid",
                (key,),
            ).fetchall()
        return tuple(Missing(*row) for row in rows)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Newest first."""
        with self._mutex:
            rows = self._db.execute(
                "SELECT id, started, finished, face, remote, store, profile, query_key, "
                "window_from, window_until, query, counts, retrieve, studies_planned, "
                "exit_status, message, notices, delivery FROM runs ORDER BY id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
            missing: dict[int, list[Missing]] = {}
            for run_id, uid, day, reason, entry in self._db.execute(
                "SELECT m.run_id, m.study_uid, m.study_date, m.reason, s.entry FROM run_missing m "
                "LEFT JOIN run_studies s ON s.run_id = m.run_id AND s.study_uid = m.study_uid "
                "WHERE m.run_id >= ? ORDER BY m.study_date, m.study_uid",
                (rows[-1][0] if rows else 0,),
            ):
                told = json.loads(entry) if entry else {}
                missing.setdefault(run_id, []).append(Missing(
                    uid, day, reason, str(told.get("description") or ""),
                    str(told.get("group") or ""),
                ))  # fmt: skip
        out = []
        for row in rows:
            (run_id, started, finished, face, remote, store, profile, key, w_from, w_until,
             query, counts, retrieve, planned, status, message, notices,
             delivery) = row  # fmt: skip
            record = RunRecord(
                started, finished, face, remote, store, profile, key, w_from, w_until,
                json.loads(query), json.loads(counts),
                None if retrieve is None else json.loads(retrieve), planned, status,
                message, tuple(json.loads(notices)), tuple(missing.get(run_id, ())), run_id,
                None if delivery is None else json.loads(delivery),
            )  # fmt: skip
            out.append(record)
        return out
