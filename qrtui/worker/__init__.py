"""A query-retrieve job for either face: plan, then retrieve, as a stream of progress events.

Blocking (pynetdicom): the TUI runs these in thread workers, the scripted mode directly.
Every way a job can stop becomes an exit status and one line for the user. job.py runs the
whole job (streaming.py: a long range window by window, resumable); planning.py the funnel,
retrieving.py the retrieve, recording.py the history;
lookups.py the small jobs the faces ask for. It may import every part and layer below it,
never a face.
"""

from __future__ import annotations

from qrtui.dicom.echo import EchoResult
from qrtui.status import EXIT_OK, EXIT_PARTIAL, EXIT_UNREACHABLE, EXIT_USAGE, usage_problem
from qrtui.worker.job import run
from qrtui.worker.lookups import (
    deliveries,
    dose_table,
    echo,
    history,
    patient_context,
    queue_sizes,
    study_doses,
)
from qrtui.worker.outcome import (
    JobOutcome,
    RunContext,
    SinceLast,
    incomplete_message,
    query_key,
    unclean_message,
)
from qrtui.worker.planning import knowledge, learn_cap, opened_store, plan, store_problem
from qrtui.worker.recording import record, record_alone, since_last_window
from qrtui.worker.retrieving import retrieve, retrieve_method

__all__ = [
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "EchoResult",
    "JobOutcome",
    "RunContext",
    "SinceLast",
    "deliveries",
    "dose_table",
    "echo",
    "history",
    "incomplete_message",
    "knowledge",
    "learn_cap",
    "opened_store",
    "patient_context",
    "plan",
    "query_key",
    "queue_sizes",
    "record",
    "record_alone",
    "retrieve",
    "retrieve_method",
    "run",
    "since_last_window",
    "store_problem",
    "study_doses",
    "unclean_message",
    "usage_problem",
]
