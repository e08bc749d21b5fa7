"""The funnel's counters, in the order it passes them, and its budgets."""

from __future__ import annotations

# Studies owed by earlier runs are asked by UID this many at a time.
OWED_PER_QUERY = 50
# Study queries a run may spend on splitting cut-short answers: per day of the window, and at
# least. A PACS that fails every query must not be asked tens of thousands of times.
SPLIT_QUERIES_PER_DAY = 50
SPLIT_QUERIES_AT_LEAST = 200
SERIES_PER_QUERY = 40  # studies whose series one query asks for (below 2: one each)

# Stage counters, in the order the funnel passes them.
STUDY_RESPONSES = "study responses"
DUPLICATES = "duplicate responses merged"
NOT_ASKED = "removed: modality not asked"
BY_DESCRIPTION = "removed: study description"
BY_STATION = "removed: station name"
SERIES_QUERIES = "series queries"
IMAGE_QUERIES = "image queries"
NO_DOSE = "removed: no dose object"
HELD = "removed: already held"
INSTANCES_HELD = "instances skipped: already held"
UNDECODABLE = "undecodable responses skipped"
INCOMPLETE = "queries possibly incomplete"
SPLIT = "study queries split (truncated answers)"
# every study query beyond the one per modality: split windows, fewer keys, by UID
ASKED_AGAIN = "study queries asked again"
NO_DOSE_CLASS = "removed: no dose object class (SOPClassesInStudy)"
EXCLUDED = "removed: excluded by the user"
OWED = "owed studies asked again"
OUTSIDE_WINDOW = "removed: answers outside the asked dates or times"
FOREIGN = "answers for another study or series dropped"
TO_RETRIEVE = "studies to retrieve"
UNDECIDED = "studies undecided (inspect first)"
