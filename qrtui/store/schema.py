"""The index's tables. deliveries is the ledger: one row per dose object and destination,
queued in the transaction that indexes the object (state queued, sent or refused).
run_studies keeps what each run's plan said of each study, for a study's chain of custody.
Instances are keyed on study and SOP Instance UID: one UID may stand
in two studies (qrtui.store.index rekeys stores made before)."""

from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    modality TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    sending_aet TEXT NOT NULL,
    kind TEXT,
    PRIMARY KEY (study_uid, sop_instance_uid)
);
CREATE INDEX IF NOT EXISTS instances_sop ON instances (sop_instance_uid);
CREATE TABLE IF NOT EXISTS inspected (
    sop_instance_uid TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (study_uid, sop_instance_uid)
);
CREATE TABLE IF NOT EXISTS dose (
    sop_instance_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (study_uid, sop_instance_uid)
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    face TEXT NOT NULL,
    remote TEXT NOT NULL,
    store TEXT NOT NULL,
    profile TEXT,
    query_key TEXT,
    window_from TEXT,
    window_until TEXT,
    query TEXT NOT NULL,
    counts TEXT NOT NULL,
    retrieve TEXT,
    studies_planned INTEGER NOT NULL,
    exit_status INTEGER NOT NULL,
    message TEXT NOT NULL,
    notices TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_missing (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    study_uid TEXT NOT NULL,
    study_date TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_missing_run ON run_missing (run_id);
CREATE TABLE IF NOT EXISTS checkpoints (
    query_key TEXT PRIMARY KEY,
    until TEXT NOT NULL,
    run_id INTEGER NOT NULL REFERENCES runs (id)
);
CREATE TABLE IF NOT EXISTS owed (
    query_key TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    study_date TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (query_key, study_uid)
);
CREATE TABLE IF NOT EXISTS deliveries (
    destination TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    sop_instance_uid TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    reason TEXT NOT NULL DEFAULT '',
    queued_at TEXT NOT NULL,
    sent_at TEXT,
    PRIMARY KEY (destination, study_uid, sop_instance_uid)
);
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries (state, destination);
CREATE TABLE IF NOT EXISTS run_studies (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    study_uid TEXT NOT NULL,
    entry TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_studies_study ON run_studies (study_uid);
CREATE TABLE IF NOT EXISTS days_done (
    resume_key TEXT NOT NULL,
    day TEXT NOT NULL,
    finished TEXT NOT NULL,
    PRIMARY KEY (resume_key, day)
);
"""

# Columns added after stores were first made: (table, column, its declaration).
ADDED_COLUMNS = (("runs", "delivery", "TEXT"),)
