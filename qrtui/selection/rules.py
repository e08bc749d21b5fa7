"""The rules per study (docs/selection-rules.md): groups, terms, and what to fetch."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from qrtui.selection.model import (
    GROUP_MODALITIES,
    GROUP_ORDER,
    RDSR_CLASSES,
    SECONDARY_CAPTURE_CLASS,
    SR_CLASS_PREFIX,
    SR_ONLY,
    TITLED_SR_CLASSES,
    WHOLE_STUDY,
    Decision,
    Options,
    Pick,
    Series,
    SRKind,
    Study,
    StudyPlan,
)


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


def is_dose_info(series: Series) -> bool:
    return "dose info" in (series.description or "").lower()


def decide(study: Study, group: str, options: Options | None = None) -> StudyPlan:
    options = options or Options()
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


def forced_plan(study: Study, group: str, dropped_because: str) -> StudyPlan:
    """A study the rules dropped, taken in by the user: every series of it, whole (or the
    whole study, where its series were never asked), and why the rule dropped it."""
    why = "forced in by the user"
    picks = tuple(Pick(s, why=why) for s in study.series) or (Pick(Series(WHOLE_STUDY), why=why),)
    reason = f"forced in (the rule dropped it: {dropped_because})"
    return StudyPlan(study, group, Decision.RETRIEVE, reason, picks)
