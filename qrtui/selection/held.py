"""What the store holds, or inspected before, taken out of a plan; what it knows filled in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from qrtui.selection.kinds import ObjectKind
from qrtui.selection.model import Decision, Instance, Pick, Series, Study, StudyPlan


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
