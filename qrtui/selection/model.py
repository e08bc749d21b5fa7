"""The plain dataclasses the rules work on: studies, series, instances, picks, plans."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

RDSR_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.88.67",  # X-Ray Radiation Dose SR
        "1.2.840.10008.5.1.4.1.1.88.68",  # Radiopharmaceutical Radiation Dose SR
        "1.2.840.10008.5.1.4.1.1.88.73",  # Patient Radiation Dose SR
        "1.2.840.10008.5.1.4.1.1.88.76",  # Enhanced X-Ray Radiation Dose SR
    }
)


ESR_CLASS = "1.2.840.10008.5.1.4.1.1.88.22"


COMPREHENSIVE_SR_CLASSES = frozenset(
    {"1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.34"}  # Comprehensive, 3D
)


# SR classes that hold a dose report or any other report: only the document title tells.
TITLED_SR_CLASSES = frozenset({ESR_CLASS, *COMPREHENSIVE_SR_CLASSES})


SR_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."


SECONDARY_CAPTURE_CLASS = "1.2.840.10008.5.1.4.1.1.7"


# Ticked box -> study modalities that belong to it.
GROUP_MODALITIES: dict[str, tuple[str, ...]] = {
    "MG": ("MG",),
    "DX": ("DX", "CR"),
    "FL": ("RF", "XA"),
    "CT": ("CT", "PT", "NM"),
}


# A study holding several groups' modalities is judged by the first that matches.
GROUP_ORDER = ("MG", "DX", "FL", "CT")


SR_ONLY = "SR"


class SRKind(StrEnum):
    RDSR = "RDSR"
    ESR = "ESR"  # an Enhanced or Comprehensive SR titled X-Ray Radiation Dose Report
    UNCHECKED = "unchecked"  # an Enhanced or Comprehensive SR whose title was not read yet
    REPORT = "report"
    UNKNOWN = "unknown"  # the PACS gave no SOP class


@dataclass(frozen=True)
class Instance:
    sop_instance_uid: str
    sop_class_uid: str | None = None
    instance_number: int | None = None
    dose_title: bool | None = None  # a titled SR's title, once read: is it a dose report?

    @property
    def sr_kind(self) -> SRKind:
        if not self.sop_class_uid:
            return SRKind.UNKNOWN
        if self.sop_class_uid in RDSR_CLASSES:
            return SRKind.RDSR
        if self.sop_class_uid in TITLED_SR_CLASSES:
            if self.dose_title is None:
                return SRKind.UNCHECKED
            return SRKind.ESR if self.dose_title else SRKind.REPORT
        return SRKind.REPORT


@dataclass(frozen=True)
class Series:
    series_instance_uid: str
    modality: str = ""
    description: str | None = None  # None: the PACS did not say
    number: int | None = None
    instance_count: int | None = None
    station_name: str | None = None
    instances: tuple[Instance, ...] | None = None  # None: no image-level answer
    # what every instance is, where the study's SOP classes told without an image-level query
    known_kind: SRKind | None = None

    @property
    def is_sr(self) -> bool:
        """SR by its modality; where the PACS did not say, by the instances' SOP classes."""
        if self.modality:
            return self.modality == "SR"
        classes = [i.sop_class_uid for i in self.instances or ()]
        return bool(classes) and all(c and c.startswith(SR_CLASS_PREFIX) for c in classes)

    def instances_of(self, kind: SRKind) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances or () if i.sr_kind is kind)

    @property
    def sr_type_known(self) -> bool:
        """Every instance listed with a SOP class (a titled SR's title may still be unread)."""
        if self.known_kind is not None:
            return True
        return bool(self.instances) and all(i.sop_class_uid for i in self.instances or ())


@dataclass(frozen=True)
class Study:
    study_instance_uid: str
    study_date: str = ""
    study_time: str = ""
    description: str = ""
    modalities: tuple[str, ...] = ()  # ModalitiesInStudy, or learned from the series
    station_name: str | None = None
    series: tuple[Series, ...] = ()
    sop_classes: tuple[str, ...] | None = None  # SOPClassesInStudy, where the PACS gave it
    series_count: int | None = None  # NumberOfStudyRelatedSeries, where the PACS gave it


@dataclass(frozen=True)
class Pick:
    """A series to fetch, whole (no UIDs) or only the listed instances."""

    series: Series
    sop_instance_uids: tuple[str, ...] = ()
    why: str = ""

    @property
    def whole_series(self) -> bool:
        return not self.sop_instance_uids


class Decision(StrEnum):
    RETRIEVE = "retrieve"
    UNDECIDED = "undecided"
    DROP = "drop"


@dataclass(frozen=True)
class StudyPlan:
    """What to do with one study. An undecided study fetches `probe`, inspects it, keeps
    the dose objects found, and falls back to `fallback` when none is found."""

    study: Study
    group: str
    decision: Decision
    reason: str
    picks: tuple[Pick, ...] = ()
    probe: tuple[Pick, ...] = ()
    fallback: tuple[Pick, ...] = ()


@dataclass(frozen=True)
class Options:
    toshiba: bool = False
    emptysr: bool = False  # the old guess: unknown SR series taken as dose objects


WHOLE_STUDY = ""  # the series UID of a pick that stands for the whole study
