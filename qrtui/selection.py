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


# ---------------------------------------------------------------- what a study's classes tell


def dose_classes_possible(sop_classes: Iterable[str], group: str) -> bool:
    """Whether a study of these SOP classes (SOPClassesInStudy) may hold what the group's
    rule fetches. Only FL and SR only are judged: a CT "Dose Info" series is known by its
    description, whatever its class, and MG/DX take their images."""
    if group not in ("FL", SR_ONLY):
        return True
    return any(c in RDSR_CLASSES or c in TITLED_SR_CLASSES for c in sop_classes)


def sr_all_rdsr(sop_classes: Iterable[str]) -> bool:
    """Every SR object of the study is an RDSR: its SR series need no image-level query."""
    sr = [c for c in sop_classes if c.startswith(SR_CLASS_PREFIX)]
    return bool(sr) and all(c in RDSR_CLASSES for c in sr)


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
    # SR the PACS gave no class for: any of it may be a (second, continued) RDSR.
    unknown = _probe_picks(sr_series, {SRKind.UNKNOWN}, "SR of unknown type: fetch and inspect")
    if options.emptysr and unknown:
        rdsr += tuple(
            replace(p, why="SR of unknown type, taken as dose (-emptysr)") for p in unknown
        )
        unknown = ()

    def plan(decision: Decision, reason: str, picks: Sequence[Pick] = ()) -> StudyPlan:
        return StudyPlan(study, group, decision, reason, tuple(picks))

    def undecided(reason: str, probe: Sequence[Pick], fallback: Sequence[Pick] = ()) -> StudyPlan:
        return StudyPlan(
            study, group, Decision.UNDECIDED, reason, rdsr, tuple(probe), tuple(fallback)
        )

    if rdsr:
        if unknown:
            return undecided("RDSR, and SR of unknown type to inspect", unknown)
        return plan(Decision.RETRIEVE, "RDSR", rdsr)
    if group in ("MG", "DX"):
        images = [Pick(s, why="images: dose in the header") for s in study.series if not s.is_sr]
        if unknown:
            return undecided(
                "SR type not given by the PACS: inspect before taking images", unknown, images
            )
        if images:
            return plan(Decision.RETRIEVE, "images (no RDSR)", images)
        return plan(Decision.DROP, "no RDSR and no images")
    # Enhanced and Comprehensive SRs count only when titled as a dose report: read them.
    probe = _probe_picks(
        sr_series, {SRKind.UNKNOWN, SRKind.UNCHECKED}, "SR to inspect: type or title unknown"
    )
    if group in ("FL", SR_ONLY):
        if probe:
            return undecided(_probe_reason(probe), probe, esr)
        if esr:
            return plan(Decision.RETRIEVE, "Enhanced SR (no RDSR)", esr)
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
    if probe or page_probe:
        reason = (
            _probe_reason(probe)
            if probe
            else "series descriptions not given by the PACS: inspect for a Dose Info page"
        )
        return undecided(reason, probe + page_probe, fallback)
    if esr:
        return plan(Decision.RETRIEVE, "Enhanced SR (no RDSR)", esr)
    if fallback and fallback[0].why == "Philips Dose Info":
        return plan(Decision.RETRIEVE, "Philips Dose Info", fallback)
    if fallback:
        return plan(Decision.RETRIEVE, "Toshiba option: dose summary and first images", fallback)
    return plan(Decision.DROP, "no RDSR, Enhanced SR or Dose Info series")


def _probe_reason(probe: Sequence[Pick]) -> str:
    unknown = any(_has_unknown(p) for p in probe)
    return "SR type not given by the PACS: inspect" if unknown else "Enhanced SR: read its title"


def _has_unknown(pick: Pick) -> bool:
    instances = pick.series.instances or ()
    wanted = set(pick.sop_instance_uids)
    return not instances or any(
        i.sr_kind is SRKind.UNKNOWN for i in instances if not wanted or i.sop_instance_uid in wanted
    )


def _probe_picks(sr_series: Sequence[Series], kinds: set[SRKind], why: str) -> tuple[Pick, ...]:
    """The SR of these kinds, to fetch and inspect: the whole series where the PACS listed no
    instances or all of them qualify, else only those instances."""
    picks = []
    for series in sr_series:
        if series.known_kind is not None:
            continue
        if not series.instances:
            if SRKind.UNKNOWN in kinds:
                picks.append(Pick(series, why=why))
            continue
        wanted = tuple(i.sop_instance_uid for i in series.instances if i.sr_kind in kinds)
        if not wanted:
            continue
        whole = len(wanted) == len(series.instances)
        picks.append(Pick(series, () if whole else wanted, why=why))
    return tuple(picks)


def _sr_picks(sr_series: Sequence[Series], kind: SRKind) -> tuple[Pick, ...]:
    picks = []
    for series in sr_series:
        if series.known_kind is kind:
            picks.append(Pick(series, why=str(kind)))
            continue
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


# ---------------------------------------------------------------- a user's choice


WHOLE_STUDY = ""  # the series UID of a pick that stands for the whole study


def forced_plan(study: Study, group: str, dropped_because: str) -> StudyPlan:
    """A study the rules dropped, taken in by the user: every series of it, whole (or the
    whole study, where its series were never asked), and why the rule dropped it."""
    why = "forced in by the user"
    picks = tuple(Pick(s, why=why) for s in study.series) or (Pick(Series(WHOLE_STUDY), why=why),)
    reason = f"forced in (the rule dropped it: {dropped_because})"
    return StudyPlan(study, group, Decision.RETRIEVE, reason, picks)


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


@dataclass(frozen=True)
class Known:
    """What the store knows of an instance: held, or fetched and inspected before."""

    sop_class_uid: str
    kind: str | None = None  # an ObjectKind value, where the object was read


def with_known(study: Study, known: Mapping[str, Known]) -> Study:
    """Fill in what the PACS withheld (SOP classes) and what only reading tells (a titled
    SR's title) from what the store learned before."""
    if not known:
        return study

    def fill(instance: Instance) -> Instance:
        learned = known.get(instance.sop_instance_uid)
        if learned is None:
            return instance
        title = instance.dose_title
        if title is None and learned.kind:
            title = learned.kind in (ObjectKind.ESR, ObjectKind.RDSR)
        return replace(
            instance,
            sop_class_uid=instance.sop_class_uid or learned.sop_class_uid,
            dose_title=title,
        )

    def fill_series(series: Series) -> Series:
        if series.instances is None:
            return series
        return replace(series, instances=tuple(fill(i) for i in series.instances))

    return replace(study, series=tuple(fill_series(s) for s in study.series))


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
