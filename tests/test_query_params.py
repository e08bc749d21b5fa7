from __future__ import annotations

from datetime import date

import pytest

from qrtui.query import QueryError, build_query, parse_date
from qrtui.windows import around_second, common_second, split_range

TODAY = date(2026, 11, 28)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01", date(2026, 11, 1)),
        ("today", TODAY),
        ("Yesterday", date(2026, 11, 27)),
        ("0d", TODAY),
        ("7d", date(2026, 11, 21)),
    ],
)
def test_dates(text, expected):
    assert parse_date(text, TODAY) == expected


@pytest.mark.parametrize("text", ["01/11/2026", "7", "-3d", "tomorrow"])
def test_bad_dates(text):
    with pytest.raises(QueryError, match="is not yyyy-mm-dd, today, yesterday or Nd"):
        parse_date(text, TODAY)


@pytest.mark.parametrize(
    ("text", "says"),
    [("2026-13-01", "month 13 is not 1-12"), ("2026-02-30", "2026-02 has no day 30")],
)
def test_a_date_of_the_right_form_says_which_part_is_wrong(text, says):
    """Issue 27, item 5: not "is not yyyy-mm-dd" for a date that is."""
    with pytest.raises(QueryError, match=says):
        parse_date(text, TODAY)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "choose at least one modality"),
        ({"ct": True, "sr": True}, "cannot be combined with a modality"),
        ({"ct": True, "single_date": "today", "date_from": "1d"}, "-sd .* cannot be combined"),
        ({"ct": True, "time_from": "0800"}, "-tf/-tt need -sd"),
        ({"ct": True, "date_from": "today", "date_until": "3d"}, "from date .* is after until"),
        ({"ct": True, "single_date": "today", "time_from": "2500"}, "-tf '2500' is not a time"),
        (
            {"ct": True, "single_date": "today", "time_from": "1200", "time_until": "0800"},
            "is after time until",
        ),
    ],
)
def test_bad_combinations(kwargs, message):
    with pytest.raises(QueryError, match=message):
        build_query(today=TODAY, **kwargs)


def test_keys_sent_to_the_pacs():
    q = build_query(
        today=TODAY, ct=True, mg=True, date_from="2d", date_until="today", desc_exclude="A, b "
    )
    assert q.groups == ("MG", "CT") and q.study_date_key() == "20261126-20261128"
    assert q.study_time_key() == "" and q.desc_exclude == ("a", "b") and q.ignore_held
    single = build_query(
        today=TODAY, sr=True, single_date="yesterday", time_from="0800", time_until="1230", dup=True
    )
    assert single.groups == ("SR",) and single.study_date_key() == "20261127"
    # to the end of 12:30:59, fractions included
    assert single.study_time_key() == "080000-123059.999999" and not single.ignore_held
    assert build_query(today=TODAY, dx=True).study_date_key() == ""
    assert build_query(today=TODAY, dx=True, date_until="1d").study_date_key() == "-20261127"


@pytest.mark.parametrize(
    ("date_key", "time_key", "halves"),
    [
        ("20261101-20261130", "", [("20261101-20261115", ""), ("20261116-20261130", "")]),
        ("20261127-20261128", "", [("20261127", ""), ("20261128", "")]),
        ("20261125-", "", [("20261125-20261126", ""), ("20261127-20261128", "")]),
        (
            "20261127",
            "",
            [("20261127", "000000-115959.999999"), ("20261127", "120000-235959.999999")],
        ),
        (
            "20261127",
            "080000-100059.999999",
            [("20261127", "080000-090029.999999"), ("20261127", "090030-100059.999999")],
        ),
        (
            "20261127",
            "080000-080001.999999",
            [("20261127", "080000-080000.999999"), ("20261127", "080001-080001.999999")],
        ),
        ("20261127", "080000-080000.999999", None),  # one second: no smaller
        ("", "", None),  # any date: no halves of an open range
        ("-20261127", "", None),
    ],
)
def test_truncated_study_queries_split_into_halves(date_key, time_key, halves):
    assert split_range(date_key, time_key, date(2026, 11, 28)) == halves


@pytest.mark.parametrize("time", ["115959.5", "115959.999999", "120000", "235959.9", "000000"])
def test_the_halves_of_a_day_leave_no_time_out_at_any_precision(time):
    """PACS compare StudyTime as text: each time falls in exactly one window, whatever the
    depth of the split."""

    def holds(window: str) -> bool:
        first, _, last = window.partition("-")
        return first <= time <= last

    window, depth = "000000-235959.999999", 0
    while (halves := split_range("20261127", window, date(2026, 11, 28))) is not None:
        hits = [half for _, half in halves if holds(half)]
        assert len(hits) == 1, (depth, halves)
        window, depth = hits[0], depth + 1
    assert depth >= 16 and holds(window)


@pytest.mark.parametrize(
    ("date_key", "time_key", "day", "cut"),
    [
        (  # one day: the times before and after the second, then the second
            "20261127",
            "",
            "20261127",
            (
                [("20261127", "000000-101459.999999"), ("20261127", "101501-235959.999999")],
                ("20261127", "101500-101500.999999"),
            ),
        ),
        (  # a range: the days before and after, then that day around the second
            "20261125-",
            "",
            "20261126",
            (
                [
                    ("20261125", ""),
                    ("20261127-20261128", ""),
                    ("20261126", "000000-101459.999999"),
                    ("20261126", "101501-235959.999999"),
                ],
                ("20261126", "101500-101500.999999"),
            ),
        ),
        (  # the second at the window's start: nothing before it
            "20261127",
            "101500-103059.999999",
            "20261127",
            ([("20261127", "101501-103059.999999")], ("20261127", "101500-101500.999999")),
        ),
        ("20261127", "101500-101500.999999", "20261127", None),  # already that second
        ("20261127", "", "20261128", None),  # outside the window: not trusted to cut
        ("20261127", "120000-235959.999999", "20261127", None),
        ("-20261127", "", "20261127", None),  # an open start: no cut
    ],
)
def test_a_window_is_cut_around_the_one_second_holding_every_answer(date_key, time_key, day, cut):
    assert around_second(date_key, time_key, day, 10 * 3600 + 15 * 60, date(2026, 11, 28)) == cut


@pytest.mark.parametrize("time", ["101459.999999", "101500", "101500.5", "101501", "235959.9"])
def test_a_window_cut_around_a_second_leaves_no_time_out(time):
    pieces, second = around_second("20261127", "", "20261127", 36900, date(2026, 11, 28))
    windows = [t for _, t in pieces] + [second[1]]
    assert sum(a <= time <= b for a, _, b in (w.partition("-") for w in windows)) == 1


def test_one_second_is_common_only_to_answers_that_all_share_it():
    assert common_second(["20261127"] * 2, ["101500", "101500.75"]) == ("20261127", 36900)
    assert common_second(["20261127"] * 2, ["101500", "101501"]) is None
    assert common_second(["20261127", "20261126"], ["101500", "101500"]) is None
    assert common_second(["20261127"], [""]) is None  # not told: halving as before
    assert common_second([], []) is None
