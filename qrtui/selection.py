"""Which objects of a study carry dose information: pure rules on plain dataclasses.

The rules are those of docs/selection-rules.md. Where a PACS withholds what a rule
needs (SOP classes, series descriptions), a study is left *undecided* with a probe:
small objects to fetch and inspect before deciding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
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
    ESR = "ESR"
    REPORT = "report"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Instance:
    sop_instance_uid: str
    sop_class_uid: str | None = None
    instance_number: int | None = None

    @property
    def sr_kind(self) -> SRKind:
        if not self.sop_class_uid:
            return SRKind.UNKNOWN
        if self.sop_class_uid in RDSR_CLASSES:
            return SRKind.RDSR
        if self.sop_class_uid == ESR_CLASS:
            return SRKind.ESR
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

    @property
    def is_sr(self) -> bool:
        return self.modality == "SR"

    def instances_of(self, kind: SRKind) -> tuple[Instance, ...]:
        return tuple(i for i in self.instances or () if i.sr_kind is kind)

    @property
    def sr_type_known(self) -> bool:
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


# ---------------------------------------------------------------- grouping and filters


def study_group(modalities: Iterable[str], groups: Sequence[str]) -> str | None:
    """The ticked group a study belongs to, or None. `groups` may be ("SR",) for SR only."""
    present = {m.upper() for m in modalities}
    if SR_ONLY in groups:
        return SR_ONLY if present == {"SR"} else None
    for group in GROUP_ORDER:
        if group in groups and present.intersection(GROUP_MODALITIES[group]):
            return group
    return None


def parse_terms(text: str | None) -> tuple[str, ...]:
    return tuple(t.strip().lower() for t in (text or "").split(",") if t.strip())


def passes_terms(value: str | None, include: Sequence[str], exclude: Sequence[str]) -> bool:
    """Case-insensitive substring match; include needs one term present, exclude none."""
    text = (value or "").lower()
    if include and not any(term in text for term in include):
        return False
    return not any(term in text for term in exclude)


# ---------------------------------------------------------------- per-study rules


def is_dose_info(series: Series) -> bool:
    return "dose info" in (series.description or "").lower()


def decide(study: Study, group: str, options: Options = Options()) -> StudyPlan:
    sr_series = [s for s in study.series if s.is_sr]
    rdsr = _sr_picks(sr_series, SRKind.RDSR)
    esr = _sr_picks(sr_series, SRKind.ESR)
    unknown_sr = [s for s in sr_series if not s.sr_type_known]
    if options.emptysr and unknown_sr:
        rdsr += tuple(
            Pick(s, why="SR of unknown type, taken as dose (-emptysr)") for s in unknown_sr
        )
        unknown_sr = []

    def plan(decision: Decision, reason: str, picks: Sequence[Pick] = ()) -> StudyPlan:
        return StudyPlan(study, group, decision, reason, tuple(picks))

    def undecided(reason: str, fallback: Sequence[Pick] = ()) -> StudyPlan:
        probe = tuple(Pick(s, why="SR of unknown type: fetch and inspect") for s in unknown_sr)
        return StudyPlan(study, group, Decision.UNDECIDED, reason, rdsr, probe, tuple(fallback))

    if rdsr:
        return plan(Decision.RETRIEVE, "RDSR", rdsr)
    if group in ("MG", "DX"):
        images = [Pick(s, why="images: dose in the header") for s in study.series if not s.is_sr]
        if unknown_sr:
            return undecided("SR type not given by the PACS: inspect before taking images", images)
        if images:
            return plan(Decision.RETRIEVE, "images (no RDSR)", images)
        return plan(Decision.DROP, "no RDSR and no images")
    if esr and not unknown_sr:
        return plan(Decision.RETRIEVE, "Enhanced SR (no RDSR)", esr)
    if group in ("FL", SR_ONLY):
        if unknown_sr:
            return undecided("SR type not given by the PACS: inspect", esr)
        return plan(Decision.DROP, "no RDSR or Enhanced SR")
    # CT, PET-CT, NM
    fallback = list(esr) or _ct_fallback(study, options)
    descriptions_missing = any(s.description is None for s in study.series if not s.is_sr)
    page_probe: tuple[Pick, ...] = ()
    if descriptions_missing and not fallback:
        page_probe = tuple(
            _first_image(s, "no series description: inspect one image for a Dose Info page")
            for s in study.series
            if not s.is_sr
        )
    if unknown_sr or page_probe:
        sr_probe = tuple(Pick(s, why="SR of unknown type: fetch and inspect") for s in unknown_sr)
        reason = (
            "SR type not given by the PACS: inspect"
            if unknown_sr
            else "series descriptions not given by the PACS: inspect for a Dose Info page"
        )
        probe = sr_probe + page_probe
        return StudyPlan(study, group, Decision.UNDECIDED, reason, (), probe, tuple(fallback))
    if fallback and fallback[0].why == "Philips Dose Info":
        return plan(Decision.RETRIEVE, "Philips Dose Info", fallback)
    if fallback:
        return plan(Decision.RETRIEVE, "Toshiba option: dose summary and first images", fallback)
    return plan(Decision.DROP, "no RDSR, Enhanced SR or Dose Info series")


def _sr_picks(sr_series: Sequence[Series], kind: SRKind) -> tuple[Pick, ...]:
    picks = []
    for series in sr_series:
        wanted = series.instances_of(kind)
        if not wanted:
            continue
        if len(wanted) == len(series.instances or ()):
            picks.append(Pick(series, why=str(kind)))
        else:  # a series mixing dose objects with reports: fetch only the dose objects
            uids = tuple(i.sop_instance_uid for i in wanted)
            picks.append(Pick(series, uids, why=str(kind)))
    return tuple(picks)


def _ct_fallback(study: Study, options: Options) -> list[Pick]:
    dose_info = [s for s in study.series if not s.is_sr and is_dose_info(s)]
    if dose_info:
        return [Pick(s, why="Philips Dose Info") for s in dose_info]
    if not options.toshiba:
        return []
    picks = []
    for series in study.series:
        if series.is_sr:
            continue
        if _is_secondary_capture(series):
            picks.append(Pick(series, why="Toshiba dose summary (secondary capture)"))
        else:
            picks.append(_first_image(series, "Toshiba: first image of the series"))
    return picks


def _is_secondary_capture(series: Series) -> bool:
    return series.modality in ("SC", "OT") or any(
        i.sop_class_uid == SECONDARY_CAPTURE_CLASS for i in series.instances or ()
    )


def _first_image(series: Series, why: str) -> Pick:
    instances = series.instances or ()
    if not instances:
        return Pick(series, why=why)
    first = min(instances, key=lambda i: (i.instance_number is None, i.instance_number or 0))
    return Pick(series, (first.sop_instance_uid,), why=why)


# ---------------------------------------------------------------- already held


def without_held(plan: StudyPlan, held: frozenset[str]) -> StudyPlan:
    """Drop instances the store already holds. Needs instance lists (image-level answers);
    a series without them is kept whole, since what is new in it cannot be told."""
    if not held or plan.decision is Decision.DROP:
        return plan

    def prune(picks: tuple[Pick, ...]) -> tuple[Pick, ...]:
        kept = []
        for pick in picks:
            instances = pick.series.instances
            if instances is None:
                kept.append(pick)
                continue
            wanted = pick.sop_instance_uids or tuple(i.sop_instance_uid for i in instances)
            new = tuple(uid for uid in wanted if uid not in held)
            if not new:
                continue
            whole = pick.whole_series and len(new) == len(instances)
            kept.append(Pick(pick.series, () if whole else new, pick.why))
        return tuple(kept)

    picks, probe, fallback = prune(plan.picks), prune(plan.probe), prune(plan.fallback)
    if plan.decision is Decision.RETRIEVE and not picks:
        return StudyPlan(plan.study, plan.group, Decision.DROP, "already held")
    return StudyPlan(plan.study, plan.group, plan.decision, plan.reason, picks, probe, fallback)


def with_known_classes(study: Study, classes: Mapping[str, str]) -> Study:
    """Fill SOP classes the PACS withheld from what the store learned before."""
    if not classes:
        return study

    def fill(series: Series) -> Series:
        if series.instances is None:
            return series
        instances = tuple(
            replace(i, sop_class_uid=classes[i.sop_instance_uid])
            if not i.sop_class_uid and i.sop_instance_uid in classes
            else i
            for i in series.instances
        )
        return replace(series, instances=instances)

    return replace(study, series=tuple(fill(s) for s in study.series))


def without_inspected(plan: StudyPlan, inspected: frozenset[str], holds_some: bool) -> StudyPlan:
    """Drop probes of objects inspected on an earlier run and found not to be dose objects
    (dose objects found then are in the store)."""
    if plan.decision is not Decision.UNDECIDED or not inspected:
        return plan

    def known(pick: Pick) -> bool:
        listed = pick.sop_instance_uids or tuple(
            i.sop_instance_uid for i in pick.series.instances or ()
        )
        return bool(listed) and all(uid in inspected for uid in listed)

    probe = tuple(p for p in plan.probe if not known(p))
    if probe or plan.picks:
        return replace(plan, probe=probe)
    if holds_some:
        return StudyPlan(plan.study, plan.group, Decision.DROP, "already held")
    if plan.fallback:
        return StudyPlan(
            plan.study, plan.group, Decision.RETRIEVE, plan.fallback[0].why, plan.fallback
        )
    return StudyPlan(plan.study, plan.group, Decision.DROP, "inspected before: no dose object")


# ---------------------------------------------------------------- after inspection


class ObjectKind(StrEnum):
    RDSR = "RDSR"
    ESR = "ESR"  # an Enhanced or Comprehensive SR titled as a dose report
    REPORT = "report"
    DOSE_PAGE = "dose page"  # a "Dose Info" secondary capture
    IMAGE = "image"


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
