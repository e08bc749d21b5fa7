"""What an object is, from its own header; a study settled after its probe was read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from qrtui.selection.model import (
    RDSR_CLASSES,
    SR_CLASS_PREFIX,
    TITLED_SR_CLASSES,
    Pick,
    SRKind,
    StudyPlan,
)


class ObjectKind(StrEnum):
    RDSR = "RDSR"
    ESR = "ESR"  # an Enhanced or Comprehensive SR titled as a dose report
    REPORT = "report"
    DOSE_PAGE = "dose page"  # a "Dose Info" secondary capture
    IMAGE = "image"


DOSE_REPORT_TITLE = ("113701", "DCM")  # X-Ray Radiation Dose Report


@dataclass(frozen=True)
class Header:
    """The few header values that tell what an object is."""

    sop_class_uid: str
    title: tuple[str, str] | None = None  # an SR's ConceptNameCodeSequence (value, scheme)
    series_description: str | None = None
    image_type: tuple[str, ...] = ()
    image_comments: str | None = None


def object_kind(header: Header) -> ObjectKind:
    """What an object is, read from its own header: never from what the PACS said of it."""
    sop_class = header.sop_class_uid
    if sop_class in RDSR_CLASSES:
        return ObjectKind.RDSR
    if sop_class in TITLED_SR_CLASSES:
        return ObjectKind.ESR if header.title == DOSE_REPORT_TITLE else ObjectKind.REPORT
    if sop_class.startswith(SR_CLASS_PREFIX):
        return ObjectKind.REPORT
    # Philips writes "Dose Info" in the series description, the image comments and, where
    # a PACS or a person dropped the description, still in the image type.
    texts = (header.series_description or "", header.image_comments or "")
    if "DOSE_INFO" in header.image_type or any("dose info" in t.lower() for t in texts):
        return ObjectKind.DOSE_PAGE
    return ObjectKind.IMAGE


@dataclass(frozen=True)
class Inspected:
    sop_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    kind: ObjectKind

    @property
    def is_dose(self) -> bool:
        return self.kind in (ObjectKind.RDSR, ObjectKind.ESR, ObjectKind.DOSE_PAGE)


@dataclass(frozen=True)
class Verdict:
    keep: frozenset[str]  # probed instances that go into the store
    follow: tuple[Pick, ...]  # what to fetch next
    reason: str


def after_probe(plan: StudyPlan, found: Sequence[Inspected]) -> Verdict:
    """The rules of `decide`, applied to what the probe's objects turned out to be."""

    def uids(kind: ObjectKind) -> frozenset[str]:
        return frozenset(f.sop_instance_uid for f in found if f.kind is kind)

    rdsr = uids(ObjectKind.RDSR)
    if rdsr or plan.picks:
        return Verdict(rdsr, (), "RDSR" + (" found by inspection" if rdsr else ""))
    if plan.group in ("MG", "DX"):
        return Verdict(frozenset(), plan.fallback, "no RDSR: images (dose in the header)")
    esr = uids(ObjectKind.ESR)
    if esr:
        known_esr = tuple(p for p in plan.fallback if p.why == str(SRKind.ESR))
        return Verdict(esr, known_esr, "Enhanced SR found by inspection")
    if plan.group != "CT":
        reason = "Enhanced SR" if plan.fallback else "no RDSR or Enhanced SR found by inspection"
        return Verdict(frozenset(), plan.fallback, reason)
    pages = [f for f in found if f.kind is ObjectKind.DOSE_PAGE]
    if pages:
        return Verdict(
            uids(ObjectKind.DOSE_PAGE), _rest_of_series(plan, pages), "Dose Info page found"
        )
    reason = plan.fallback[0].why if plan.fallback else "no dose object found by inspection"
    return Verdict(frozenset(), plan.fallback, reason)


def _rest_of_series(plan: StudyPlan, pages: Sequence[Inspected]) -> tuple[Pick, ...]:
    """The other instances of each series in which a probed image was a dose page."""
    follow = []
    for pick in plan.probe:
        if pick.whole_series:
            continue
        if not any(p.series_instance_uid == pick.series.series_instance_uid for p in pages):
            continue
        others = tuple(
            i.sop_instance_uid
            for i in pick.series.instances or ()
            if i.sop_instance_uid not in pick.sop_instance_uids
        )
        if others:
            follow.append(Pick(pick.series, others, "rest of the Dose Info series"))
    return tuple(follow)
