"""Executing a plan (retriever.py), checking what arrived against it (checks.py), and what
became of it (outcome.py); plans.py says what a plan will receive. A part: it may import
transport (qrtui.dicom), keeping (qrtui.store) and meaning, never the worker or a face."""

from __future__ import annotations

from qrtui.retrieve.outcome import RetrieveSummary, StudyOutcome
from qrtui.retrieve.plans import expected_series, get_sop_classes, inspect, planned_instances
from qrtui.retrieve.retriever import STOP_AFTER_FAILURES, Retriever, RetrieveStopped

__all__ = [
    "STOP_AFTER_FAILURES", "RetrieveStopped", "RetrieveSummary", "Retriever", "StudyOutcome",
    "expected_series", "get_sop_classes", "inspect", "planned_instances",
]  # fmt: skip
