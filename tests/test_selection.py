"""The selection rules of selection-rules.md, one test per rule and edge, no network."""

from __future__ import annotations

import pytest

from qrtui.selection import (
    ESR_CLASS,
    SECONDARY_CAPTURE_CLASS,
    Decision,
    Header,
    Inspected,
    Instance,
    Known,
    ObjectKind,
    Options,
    Series,
    Study,
    after_probe,
    decide,
    object_kind,
    parse_terms,
    passes_terms,
    study_group,
    with_known,
    without_held,
    without_inspected,
)

RDSR = "1.2.840.10008.5.1.4.1.1.88.67"
RADIOPHARMA = "1.2.840.10008.5.1.4.1.1.88.68"
BASIC_TEXT = "1.2.840.10008.5.1.4.1.1.88.11"
COMPREHENSIVE = "1.2.840.10008.5.1.4.1.1.88.33"
CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
_uid = iter(range(1, 10_000))


def sr(
    *classes: str | None, description: str | None = "", dose_title: bool | None = None
) -> Series:
    n = next(_uid)
    return Series(
        f"1.{n}",
        "SR",
        description,
        instances=tuple(
            Instance(f"1.{n}.{i}", c, i + 1, dose_title) for i, c in enumerate(classes)
        ),
    )


def dose_esr() -> Series:
    """An Enhanced SR whose title was read before: an X-Ray Radiation Dose Report."""
    return sr(ESR_CLASS, dose_title=True)


def sr_unknown() -> Series:
    """An SR series whose image-level query gave no SOP class (dcmqrscp)."""
    return sr(None)


def images(
    modality: str, count: int = 2, description: str | None = "", sop: str | None = None
) -> Series:
    n = next(_uid)
    instances = tuple(Instance(f"2.{n}.{i}", sop, i + 1) for i in range(count)) if sop else None
    return Series(f"2.{n}", modality, description, instance_count=count, instances=instances)


def study(*series: Series, modalities: tuple[str, ...] = ()) -> Study:
    mods = modalities or tuple(dict.fromkeys(s.modality for s in series))
    return Study(f"9.{next(_uid)}", "20261127", modalities=mods, series=series)


def fetched(plan) -> set[str]:
    return {p.series.series_instance_uid for p in plan.picks}


# ---------------------------------------------------------------- groups and terms


@pytest.mark.parametrize(
    ("modalities", "groups", "expected"),
    [
        (("CT", "SR"), ("CT",), "CT"),
        (("PT", "CT"), ("CT",), "CT"),  # PET-CT
        (("NM", "CT"), ("CT",), "CT"),
        (("NM",), ("CT",), "CT"),
        (("MG", "SR"), ("MG",), "MG"),
        (("CR",), ("DX",), "DX"),
        (("DX", "SR"), ("DX",), "DX"),
        (("RF",), ("FL",), "FL"),
        (("XA", "SR"), ("FL",), "FL"),
        (("MR",), ("CT", "MG", "FL", "DX"), None),
        (("SR",), ("CT",), None),
        (("SR",), ("SR",), "SR"),
        (("CT", "SR"), ("SR",), None),  # SR only means only SR
        (("CT", "MG"), ("CT", "MG"), "MG"),  # the more specific group judges
        (("CT", "MG"), ("CT",), "CT"),
    ],
)
def test_study_group(modalities, groups, expected):
    assert study_group(modalities, groups) == expected


def test_terms_are_trimmed_case_insensitive_substrings():
    assert parse_terms(" Head , NECK,, ") == ("head", "neck")
    assert passes_terms("CT HEAD WO", include=(), exclude=())
    assert not passes_terms("CT Head", include=(), exclude=("head",))
    assert passes_terms("CT Head", include=("head", "chest"), exclude=())
    assert not passes_terms("CT Abdomen", include=("head",), exclude=())
    assert not passes_terms(None, include=("head",), exclude=())
    assert not passes_terms("CT head research", include=("head",), exclude=("research",))


# ---------------------------------------------------------------- MG and DX/CR


@pytest.mark.parametrize(("modality", "group"), [("MG", "MG"), ("DX", "DX"), ("CR", "DX")])
def test_projection_rdsr_present_keeps_only_the_rdsr(modality, group):
    dose = sr(RDSR)
    plan = decide(study(images(modality), dose, sr(BASIC_TEXT)), group)
    assert plan.decision is Decision.RETRIEVE and fetched(plan) == {dose.series_instance_uid}


@pytest.mark.parametrize(("modality", "group"), [("MG", "MG"), ("DX", "DX"), ("CR", "DX")])
def test_projection_without_rdsr_keeps_images_and_drops_sr(modality, group):
    imgs = images(modality)
    plan = decide(study(imgs, sr(BASIC_TEXT)), group)
    assert plan.decision is Decision.RETRIEVE and fetched(plan) == {imgs.series_instance_uid}


def test_projection_esr_does_not_replace_images():
    imgs = images("MG")
    plan = decide(study(imgs, sr(ESR_CLASS)), "MG")
    assert fetched(plan) == {imgs.series_instance_uid}


def test_projection_with_unknown_sr_inspects_before_taking_images():
    imgs, unknown = images("MG"), sr_unknown()
    plan = decide(study(imgs, unknown), "MG")
    assert plan.decision is Decision.UNDECIDED
    assert [p.series for p in plan.probe] == [unknown]
    assert [p.series for p in plan.fallback] == [imgs]
    assert plan.picks == ()


def test_sr_series_with_empty_image_answer_is_unknown():
    empty = Series("3.1", "SR", "", instances=())
    plan = decide(study(images("DX"), empty), "DX")
    assert plan.decision is Decision.UNDECIDED and plan.probe[0].series is empty


# ---------------------------------------------------------------- FL


def test_fl_rdsr_wins_over_esr():
    rdsr, esr = sr(RDSR), sr(ESR_CLASS)
    plan = decide(study(images("RF"), rdsr, esr), "FL")
    assert fetched(plan) == {rdsr.series_instance_uid}


def test_fl_esr_when_no_rdsr():
    esr = dose_esr()
    plan = decide(study(images("XA"), esr), "FL")
    assert plan.decision is Decision.RETRIEVE and fetched(plan) == {esr.series_instance_uid}


@pytest.mark.parametrize("group", ["FL", "CT", "SR"])
def test_an_enhanced_sr_whose_title_is_unread_is_inspected_not_taken(group):
    """ESR_non-dose.dcm is an Enhanced SR titled Diagnostic Imaging Report: the class alone
    does not make a dose object."""
    esr = sr(ESR_CLASS)
    modality = {"FL": "XA", "CT": "CT", "SR": None}[group]
    series = (images(modality, description="Axial"), esr) if modality else (esr,)
    plan = decide(study(*series), group)
    assert plan.decision is Decision.UNDECIDED and plan.picks == ()
    assert [p.series for p in plan.probe] == [esr] and "title" in plan.reason
    verdict = after_probe(plan, [found(esr, ObjectKind.REPORT)])
    assert verdict.keep == set() and verdict.follow == ()
    kept = after_probe(plan, [found(esr, ObjectKind.ESR)])
    assert kept.keep == {esr.instances[0].sop_instance_uid}


def test_a_non_dose_enhanced_sr_inspected_before_is_a_report():
    esr = sr(ESR_CLASS)
    s = study(images("CT", description="Axial"), esr)
    uid = esr.instances[0].sop_instance_uid
    plan = decide(with_known(s, {uid: Known(ESR_CLASS, "report")}), "CT")
    assert plan.decision is Decision.DROP and "no RDSR, Enhanced SR" in plan.reason
    plan = decide(with_known(s, {uid: Known(ESR_CLASS, "ESR")}), "CT")
    assert plan.decision is Decision.RETRIEVE and fetched(plan) == {esr.series_instance_uid}


def test_an_unchecked_enhanced_sr_is_not_probed_where_images_carry_the_dose():
    imgs = images("MG")
    plan = decide(study(imgs, sr(ESR_CLASS)), "MG")
    assert plan.decision is Decision.RETRIEVE and fetched(plan) == {imgs.series_instance_uid}


def test_fl_neither_drops_the_study():
    plan = decide(study(images("RF"), sr(BASIC_TEXT)), "FL")
    assert plan.decision is Decision.DROP and "no RDSR or Enhanced SR" in plan.reason


def test_fl_unknown_sr_is_inspected_not_guessed():
    unknown = sr_unknown()
    plan = decide(study(images("XA"), unknown), "FL")
    assert plan.decision is Decision.UNDECIDED and plan.probe[0].series is unknown


# ---------------------------------------------------------------- CT


def test_ct_rdsr_wins_and_reports_are_dropped():
    rdsr = sr(RDSR)
    plan = decide(study(images("CT"), sr(ESR_CLASS), rdsr, sr(COMPREHENSIVE)), "CT")
    assert fetched(plan) == {rdsr.series_instance_uid}


def test_ct_continued_rdsrs_are_all_kept():
    first, second = sr(RDSR), sr(RDSR)
    plan = decide(study(images("CT"), first, second), "CT")
    assert fetched(plan) == {first.series_instance_uid, second.series_instance_uid}


def test_ct_radiopharmaceutical_rdsr_counts_as_rdsr():
    rrdsr = sr(RADIOPHARMA)
    plan = decide(study(images("PT"), images("CT"), rrdsr), "CT")
    assert fetched(plan) == {rrdsr.series_instance_uid}


def test_ct_esr_when_no_rdsr():
    esr = dose_esr()
    plan = decide(study(images("CT"), esr), "CT")
    assert fetched(plan) == {esr.series_instance_uid} and "Enhanced SR" in plan.reason


def test_ct_philips_dose_info_only():
    page = images("CT", 1, description="Dose Info")
    plan = decide(study(images("CT", description="Chest 1.0"), page), "CT")
    assert plan.decision is Decision.RETRIEVE and fetched(plan) == {page.series_instance_uid}


def test_ct_nothing_drops_the_study():
    plan = decide(study(images("CT", description="Head"), sr(BASIC_TEXT)), "CT")
    assert plan.decision is Decision.DROP


def test_ct_toshiba_takes_sc_whole_and_first_images():
    sc = images("CT", 1, sop=SECONDARY_CAPTURE_CLASS, description="Dose summary")
    axial = images("CT", 3, sop=CT_IMAGE, description="Axial")
    plan = decide(study(axial, sc), "CT", Options(toshiba=True))
    by_series = {p.series.series_instance_uid: p for p in plan.picks}
    assert by_series[sc.series_instance_uid].whole_series
    assert by_series[axial.series_instance_uid].sop_instance_uids == (
        f"{axial.series_instance_uid}.0",
    )
    assert decide(study(axial, sc), "CT").decision is Decision.DROP


def test_ct_toshiba_first_image_is_lowest_instance_number():
    series = Series(
        "5.1",
        "CT",
        "Axial",
        instances=(
            Instance("5.1.9", CT_IMAGE, 9),
            Instance("5.1.2", CT_IMAGE, 2),
            Instance("5.1.5", CT_IMAGE, None),
        ),
    )
    plan = decide(study(series), "CT", Options(toshiba=True))
    assert plan.picks[0].sop_instance_uids == ("5.1.2",)


def test_ct_without_series_descriptions_probes_one_image_per_series():
    blind = Series(
        "6.1", "CT", None, instances=(Instance("6.1.1", None, 1), Instance("6.1.2", None, 2))
    )
    plan = decide(study(blind), "CT")
    assert plan.decision is Decision.UNDECIDED
    assert [p.sop_instance_uids for p in plan.probe] == [("6.1.1",)]


def test_ct_unknown_sr_is_inspected_with_esr_as_fallback():
    unknown, esr = sr_unknown(), dose_esr()
    plan = decide(study(images("CT", description="Head"), unknown, esr), "CT")
    assert plan.decision is Decision.UNDECIDED
    assert [p.series for p in plan.probe] == [unknown]
    assert [p.series for p in plan.fallback] == [esr]


def test_emptysr_takes_unknown_sr_as_dose_without_inspecting():
    unknown = sr_unknown()
    plan = decide(study(images("CT"), unknown), "CT", Options(emptysr=True))
    assert plan.decision is Decision.RETRIEVE and fetched(plan) == {unknown.series_instance_uid}


def test_series_mixing_rdsr_and_report_fetches_only_the_rdsr_instance():
    mixed = sr(BASIC_TEXT, RDSR)
    plan = decide(study(images("CT"), mixed), "CT")
    assert plan.picks[0].sop_instance_uids == (f"{mixed.series_instance_uid}.1",)


# ---------------------------------------------------------------- SR only


def test_sr_only_rdsr_then_esr_else_drop():
    rdsr, esr = sr(RDSR), dose_esr()
    assert fetched(decide(study(rdsr, esr), "SR")) == {rdsr.series_instance_uid}
    assert fetched(decide(study(esr), "SR")) == {esr.series_instance_uid}
    assert decide(study(sr(BASIC_TEXT)), "SR").decision is Decision.DROP


# ---------------------------------------------------------------- already held


def test_already_held_drops_what_the_store_has():
    rdsr = sr(RDSR)
    plan = decide(study(images("CT"), rdsr), "CT")
    pruned = without_held(plan, frozenset({f"{rdsr.series_instance_uid}.0"}))
    assert pruned.decision is Decision.DROP and pruned.reason == "already held"


def test_second_rdsr_in_a_known_study_is_fetched_alone():
    first, late = sr(RDSR), sr(RDSR)
    plan = decide(study(images("CT"), first, late), "CT")
    pruned = without_held(plan, frozenset({f"{first.series_instance_uid}.0"}))
    assert pruned.decision is Decision.RETRIEVE
    assert fetched(pruned) == {late.series_instance_uid}


def test_partly_held_series_is_fetched_at_instance_level():
    series = sr(RDSR, RDSR)
    plan = decide(study(images("DX"), series), "DX")
    pruned = without_held(plan, frozenset({f"{series.series_instance_uid}.0"}))
    assert pruned.picks[0].sop_instance_uids == (f"{series.series_instance_uid}.1",)


def test_series_without_instance_list_is_kept_whole():
    imgs = images("MG")  # no image-level answer
    plan = decide(study(imgs), "MG")
    assert without_held(plan, frozenset({"anything"})).picks == plan.picks


# ---------------------------------------------------------------- after inspection


def found(series: Series, kind: ObjectKind, index: int = 0) -> Inspected:
    instance = (series.instances or ())[index]
    return Inspected(instance.sop_instance_uid, series.series_instance_uid, "x", kind)


@pytest.mark.parametrize("group", ["MG", "DX"])
def test_probe_finding_an_rdsr_keeps_it_and_skips_the_images(group):
    modality = "MG" if group == "MG" else "DX"
    unknown, imgs = sr(None, None), images(modality)
    plan = decide(study(imgs, unknown), group)
    assert plan.decision is Decision.UNDECIDED
    verdict = after_probe(
        plan, [found(unknown, ObjectKind.RDSR), found(unknown, ObjectKind.REPORT, 1)]
    )
    assert verdict.keep == {unknown.instances[0].sop_instance_uid} and verdict.follow == ()


def test_probe_finding_only_reports_falls_back_to_mg_images():
    unknown, imgs = sr_unknown(), images("MG")
    plan = decide(study(imgs, unknown), "MG")
    verdict = after_probe(plan, [found(unknown, ObjectKind.REPORT)])
    assert verdict.keep == set() and fetched_series(verdict.follow) == {imgs.series_instance_uid}


def fetched_series(picks) -> set[str]:
    return {p.series.series_instance_uid for p in picks}


def test_probe_rdsr_wins_over_esr_and_esr_over_a_dose_page():
    unknown = sr(None, None)
    plan = decide(study(images("CT"), unknown), "CT")
    both = [found(unknown, ObjectKind.ESR), found(unknown, ObjectKind.RDSR, 1)]
    assert after_probe(plan, both).keep == {unknown.instances[1].sop_instance_uid}
    esr_only = after_probe(plan, [found(unknown, ObjectKind.ESR)])
    assert esr_only.keep == {unknown.instances[0].sop_instance_uid} and esr_only.follow == ()


def test_ct_page_probe_finds_a_dose_info_page_and_fetches_the_rest_of_its_series():
    page_series = images("CT", count=2, description=None, sop=SECONDARY_CAPTURE_CLASS)
    plain = images("CT", count=3, description=None, sop=CT_IMAGE)
    plan = decide(study(plain, page_series), "CT")
    assert plan.decision is Decision.UNDECIDED and len(plan.probe) == 2
    verdict = after_probe(
        plan, [found(page_series, ObjectKind.DOSE_PAGE), found(plain, ObjectKind.IMAGE)]
    )
    assert verdict.keep == {page_series.instances[0].sop_instance_uid}
    assert [p.sop_instance_uids for p in verdict.follow] == [
        (page_series.instances[1].sop_instance_uid,)
    ]
    nothing = after_probe(plan, [found(plain, ObjectKind.IMAGE)])
    assert nothing.keep == set() and nothing.follow == ()


def test_fluoro_probe_with_nothing_found_drops_the_study():
    unknown = sr_unknown()
    plan = decide(study(images("RF"), unknown), "FL")
    verdict = after_probe(plan, [found(unknown, ObjectKind.REPORT)])
    assert verdict.keep == set() and verdict.follow == ()


def test_classes_learned_before_settle_a_study_without_fetching():
    unknown, imgs = sr(None, None), images("MG")
    s = study(imgs, unknown)
    report_uid, rdsr_uid = (i.sop_instance_uid for i in unknown.instances)
    known = {rdsr_uid: Known(RDSR, "RDSR"), report_uid: Known(BASIC_TEXT, "report")}
    plan = decide(with_known(s, known), "MG")
    assert plan.decision is Decision.RETRIEVE
    assert [p.sop_instance_uids for p in plan.picks] == [(rdsr_uid,)]


@pytest.mark.parametrize("group", ["CT", "MG", "DX", "FL", "SR"])
def test_an_unknown_sr_beside_a_known_rdsr_is_still_inspected(group):
    """dcmqrscp gives no SOP classes: the RDSR held from the first run is known by the store,
    the second RDSR that arrived later in a new series is not. It must not be missed."""
    first, late = sr(None), sr(None)
    modality = {"CT": "CT", "MG": "MG", "DX": "DX", "FL": "RF", "SR": None}[group]
    series = (images(modality), first, late) if modality else (first, late)
    held_uid = first.instances[0].sop_instance_uid
    s = with_known(study(*series), {held_uid: Known(RDSR, "RDSR")})
    plan = decide(s, group)
    assert plan.decision is Decision.UNDECIDED
    assert [p.series.series_instance_uid for p in plan.probe] == [late.series_instance_uid]
    pruned = without_held(plan, frozenset({held_uid}))
    assert pruned.picks == () and [p.series for p in pruned.probe] == [late]
    verdict = after_probe(pruned, [found(late, ObjectKind.RDSR)])
    assert verdict.keep == {late.instances[0].sop_instance_uid} and verdict.follow == ()


def test_a_new_instance_in_a_known_sr_series_is_probed_alone():
    series = sr(None, None)
    held_uid, new_uid = (i.sop_instance_uid for i in series.instances)
    s = with_known(study(images("CT"), series), {held_uid: Known(RDSR, "RDSR")})
    plan = without_held(decide(s, "CT"), frozenset({held_uid}))
    assert plan.decision is Decision.UNDECIDED and plan.picks == ()
    assert [p.sop_instance_uids for p in plan.probe] == [(new_uid,)]


def test_empty_values_from_the_pacs_mean_not_told():
    blank = Series("7.1", "", None, instances=(Instance("7.1.1", RDSR, None),))
    assert blank.is_sr, "a series without modality whose instances are SR is SR"
    assert not Series("7.2", "", None, instances=(Instance("7.2.1", CT_IMAGE),)).is_sr
    plan = decide(study(images("CT"), blank, modalities=("CT",)), "CT")
    assert plan.decision is Decision.RETRIEVE and fetched(plan) == {"7.1"}


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (Header(RDSR), ObjectKind.RDSR),
        (Header(ESR_CLASS, ("113701", "DCM")), ObjectKind.ESR),
        (Header(ESR_CLASS, ("18748-4", "LN")), ObjectKind.REPORT),
        (Header(COMPREHENSIVE, ("113701", "DCM")), ObjectKind.ESR),
        (Header(BASIC_TEXT, ("113701", "DCM")), ObjectKind.REPORT),
        (Header(SECONDARY_CAPTURE_CLASS, series_description="Dose Info"), ObjectKind.DOSE_PAGE),
        (Header(SECONDARY_CAPTURE_CLASS, image_type=("DERIVED", "SECONDARY", "DOSE_INFO")),
         ObjectKind.DOSE_PAGE),
        (Header(SECONDARY_CAPTURE_CLASS, image_comments="Dose Info"), ObjectKind.DOSE_PAGE),
        (Header(SECONDARY_CAPTURE_CLASS), ObjectKind.IMAGE),
        (Header(CT_IMAGE, series_description="Chest"), ObjectKind.IMAGE),
    ],
)  # fmt: skip
def test_what_an_object_is_comes_from_its_own_header(header, kind):
    assert object_kind(header) is kind


def test_probes_inspected_before_are_not_fetched_again():
    plain = images("CT", count=1, description=None, sop=CT_IMAGE)
    plan = decide(study(plain), "CT")
    uid = plain.instances[0].sop_instance_uid
    assert plan.decision is Decision.UNDECIDED
    dropped = without_inspected(plan, frozenset({uid}), holds_some=False)
    assert dropped.decision is Decision.DROP and "inspected before" in dropped.reason
    held = without_inspected(plan, frozenset({uid}), holds_some=True)
    assert held.decision is Decision.DROP and held.reason == "already held"
    assert without_inspected(plan, frozenset({"other"}), holds_some=False) == plan
