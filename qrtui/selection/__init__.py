"""Which objects of a study carry dose information: pure rules on plain dataclasses.

The rules are those of docs/selection-rules.md: model.py holds the plain dataclasses, rules.py
decides per study, held.py takes out what the store holds or has inspected, kinds.py says what
an object is from its header and settles a study after its probe. No I/O, no DICOM
networking.
"""

from __future__ import annotations

from qrtui.selection.held import Known, with_known, without_held, without_inspected
from qrtui.selection.kinds import (
    DOSE_REPORT_TITLE,
    Header,
    Inspected,
    ObjectKind,
    Verdict,
    after_probe,
    object_kind,
)
from qrtui.selection.model import (
    COMPREHENSIVE_SR_CLASSES,
    ESR_CLASS,
    GROUP_MODALITIES,
    GROUP_ORDER,
    RDSR_CLASSES,
    SECONDARY_CAPTURE_CLASS,
    SR_CLASS_PREFIX,
    SR_ONLY,
    TITLED_SR_CLASSES,
    WHOLE_STUDY,
    Decision,
    Instance,
    Options,
    Pick,
    Series,
    SRKind,
    Study,
    StudyPlan,
)
from qrtui.selection.rules import (
    decide,
    dose_classes_possible,
    forced_plan,
    is_dose_info,
    parse_terms,
    passes_terms,
    sr_all_rdsr,
    study_group,
)

__all__ = [
    "COMPREHENSIVE_SR_CLASSES",
    "DOSE_REPORT_TITLE",
    "ESR_CLASS",
    "GROUP_MODALITIES",
    "GROUP_ORDER",
    "RDSR_CLASSES",
    "SECONDARY_CAPTURE_CLASS",
    "SR_CLASS_PREFIX",
    "SR_ONLY",
    "TITLED_SR_CLASSES",
    "WHOLE_STUDY",
    "Decision",
    "Header",
    "Inspected",
    "Instance",
    "Known",
    "ObjectKind",
    "Options",
    "Pick",
    "SRKind",
    "Series",
    "Study",
    "StudyPlan",
    "Verdict",
    "after_probe",
    "decide",
    "dose_classes_possible",
    "forced_plan",
    "is_dose_info",
    "object_kind",
    "parse_terms",
    "passes_terms",
    "sr_all_rdsr",
    "study_group",
    "with_known",
    "without_held",
    "without_inspected",
]
