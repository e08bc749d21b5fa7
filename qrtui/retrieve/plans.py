"""What a plan will receive: SOP classes to offer for C-GET, instances and series to expect,
and what an arrived object is."""

from __future__ import annotations

from collections.abc import Iterable

from qrtui.dicom.storescp import Received
from qrtui.selection import (
    COMPREHENSIVE_SR_CLASSES,
    ESR_CLASS,
    RDSR_CLASSES,
    WHOLE_STUDY,
    Inspected,
    ObjectKind,
    Pick,
    StudyPlan,
)

# SOP classes a series of this modality may hold, for C-GET contexts where the PACS did
# not list the instances.
_CLASSES_BY_MODALITY: dict[str, tuple[str, ...]] = {
    "SR": (*sorted(RDSR_CLASSES), ESR_CLASS, *sorted(COMPREHENSIVE_SR_CLASSES),
           "1.2.840.10008.5.1.4.1.1.88.11"),
    "CT": ("1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.2.1"),
    "MG": ("1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.2.1",
           "1.2.840.10008.5.1.4.1.1.13.1.3"),
    "DX": ("1.2.840.10008.5.1.4.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1.1"),
    "CR": ("1.2.840.10008.5.1.4.1.1.1",),
    "RF": ("1.2.840.10008.5.1.4.1.1.12.2", "1.2.840.10008.5.1.4.1.1.12.2.1"),
    "XA": ("1.2.840.10008.5.1.4.1.1.12.1", "1.2.840.10008.5.1.4.1.1.12.1.1"),
    "PT": ("1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.130"),
    "NM": ("1.2.840.10008.5.1.4.1.1.20",),
}  # fmt: skip
_ALWAYS = ("1.2.840.10008.5.1.4.1.1.7",)  # secondary capture: dose pages, any modality
# a whole study forced in: whatever its modalities hold
_CLASSES_BY_MODALITY[""] = tuple(dict.fromkeys(c for v in _CLASSES_BY_MODALITY.values() for c in v))


def get_sop_classes(plans: Iterable[StudyPlan]) -> list[str]:
    """SOP classes the plans will receive: as listed by the PACS, else by modality."""
    classes: dict[str, None] = dict.fromkeys(_ALWAYS)
    for plan in plans:
        for pick in plan.picks + plan.probe + plan.fallback:
            listed = [i.sop_class_uid for i in pick.series.instances or () if i.sop_class_uid]
            if listed and len(listed) == len(pick.series.instances or ()):
                classes.update(dict.fromkeys(listed))
            else:
                modality = pick.series.modality
                classes.update(dict.fromkeys(_CLASSES_BY_MODALITY.get(modality, ())))
                classes.update(dict.fromkeys(listed))
    return list(classes)


def inspect(received: Received) -> Inspected:
    """What a fetched object is: read from its own header when it arrived."""
    instance = received.instance
    kind = ObjectKind(instance.kind) if instance.kind else ObjectKind.IMAGE
    return Inspected(instance.sop_instance_uid, instance.series_uid, instance.sop_class_uid, kind)


def planned_instances(pick: Pick) -> frozenset[str]:
    """The instances a pick must bring, where the PACS listed them (else empty: unknown)."""
    if pick.sop_instance_uids:
        return frozenset(pick.sop_instance_uids)
    if pick.series.series_instance_uid == WHOLE_STUDY:
        return frozenset()
    return frozenset(i.sop_instance_uid for i in pick.series.instances or ())


def expected_series(plans: Iterable[StudyPlan]) -> dict[str, frozenset[str] | None]:
    """The studies and series a run may receive objects of: what the PACS listed for the
    planned studies (any series of a study fetched whole)."""
    expected: dict[str, frozenset[str] | None] = {}
    for plan in plans:
        picks = plan.picks + plan.probe + plan.fallback
        whole = any(p.series.series_instance_uid == WHOLE_STUDY for p in picks)
        series = {s.series_instance_uid for s in plan.study.series}
        series |= {p.series.series_instance_uid for p in picks}
        expected[plan.study.study_instance_uid] = None if whole else frozenset(series)
    return expected
