"""A small Query/Retrieve SCP (pynetdicom) serving the demo studies, with fault knobs.

It matches as a PACS does: date and time ranges, ModalitiesInStudy, UID lists, wildcards,
universal matching; it returns the keys asked for. The knobs make it misbehave on demand,
as real PACS do: the project's tests use them.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from qrtui import clock
from qrtui.demo.faults import Faults, miscount, misname_stores
from qrtui.demo.records import (
    LEVEL_KEYS,
    RANGE_KEYS,
    UID_KEYS,
    in_range,
    query_records,
    values,
)
from qrtui.demo.studies import DemoStudy, demo_studies
from qrtui.dicom.assoc import tune_socket
from qrtui.dicom.storescp import SERVER_POLL_SECONDS

_STATUS_OUT_OF_RESOURCES = 0xA700


class DemoPacs:
    def __init__(
        self, today: date | None = None, aet: str = "DEMO_PACS", faults: Faults | None = None
    ) -> None:
        self.aet = aet
        self.faults = faults or Faults()
        self.studies: list[DemoStudy] = demo_studies(today or clock.today())
        self.objects = [o for s in self.studies for o in s.objects]
        self.destinations: dict[str, tuple[str, int]] = {}
        self.port = 0
        self._server: Any = None
        self._ae: Any = None
        self._failed: set[str] = set()
        self._withheld: set[str] = set()
        self.study_queries = 0  # study-level C-FINDs answered
        self.associations = 0  # associations asked for, accepted or not
        self.identifiers: list[frozenset[str]] = []  # keywords of every C-FIND identifier
        # when (qrtui.clock), what, study UID, study date asked; and every object sent
        self.requests: list[tuple[datetime, str, str, str]] = []
        self.sent: list[str] = []
        self._aborted = False
        self._pause = threading.Event()  # never set: waiting on it is the delay
        self.holding = threading.Event()  # set while a retrieve waits at hold_after
        self._released = threading.Event()

    def add_study(self, study: DemoStudy) -> None:
        """One more study, before start()."""
        self.studies.append(study)
        self.objects += study.objects

    # ------------------------------------------------------------ running

    def start(self, port: int = 0) -> DemoPacs:
        ae = AE(ae_title=self.aet)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        ae.maximum_associations = 16
        models = [
            Verification,
            StudyRootQueryRetrieveInformationModelFind,
            StudyRootQueryRetrieveInformationModelMove,
        ]
        if not self.faults.refuse_get:
            models.append(StudyRootQueryRetrieveInformationModelGet)
        for model in models:
            ae.add_supported_context(model)
        for sop_class in sorted({str(o.SOPClassUID) for o in self.objects}):
            ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
            # C-GET: we send C-STOREs on the requestor's association, in the SCU role
            ae.add_supported_context(
                sop_class,
                [ExplicitVRLittleEndian, ImplicitVRLittleEndian],
                scu_role=True,
                scp_role=True,
            )
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, tune_socket),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
            (evt.EVT_REQUESTED, self._on_requested),
        ]
        self._ae = ae
        server = ae.make_server(("127.0.0.1", port), evt_handlers=handlers)
        ae._servers.append(server)  # as start_server() does: shutdown() takes it out
        threading.Thread(  # pynetdicom's own would look at its stop flag only every 0.5 s
            target=server.serve_forever,
            kwargs={"poll_interval": SERVER_POLL_SECONDS},
            name="demo PACS",
            daemon=True,
        ).start()
        self._server = server
        self.port = int(server.server_address[1])
        return self

    def release(self) -> None:
        """Let retrieves held at hold_after go on (and every later one pass)."""
        self._released.set()

    def stop(self) -> None:
        self.release()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()

    def __enter__(self) -> DemoPacs:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_requested(self, event: Any) -> None:
        self.associations += 1
        # Read when the request is checked, just after this event: "calling AE title not
        # recognised" for everyone.
        retrieves = (
            StudyRootQueryRetrieveInformationModelGet,
            StudyRootQueryRetrieveInformationModelMove,
        )
        retrieving = self.faults.refuse_retrieves and any(
            c.abstract_syntax in retrieves for c in event.assoc.requestor.requested_contexts
        )
        reject = self.faults.reject_associations or retrieving
        self._ae.require_calling_aet = ["NOBODY_AT_ALL"] if reject else []
        self._ae.maximum_associations = self.faults.max_associations

    def _wait(self) -> None:
        if self.faults.delay:
            self._pause.wait(self.faults.delay)

    # ------------------------------------------------------------ C-FIND

    def records(self, level: str) -> list[dict[str, Any]]:
        return query_records(self.objects, level, self.faults.miscount_series)

    def _hidden(self) -> set[str]:
        f = self.faults
        hidden = set()
        if f.hide_sop_class:
            hidden.add("SOPClassUID")
        if f.hide_series_description:
            hidden.add("SeriesDescription")
        if f.hide_instance_count:
            hidden.add("NumberOfSeriesRelatedInstances")
        return hidden

    def matches(self, identifier: Dataset) -> list[dict[str, Any]]:
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        if level not in LEVEL_KEYS:
            return []
        if level == "IMAGE" and self.faults.empty_image_level:
            return []
        return [r for r in self.records(level) if self._match(r, identifier, level)]

    def _match(self, record: dict[str, Any], identifier: Dataset, level: str) -> bool:
        for element in identifier:
            keyword = element.keyword
            if keyword in ("QueryRetrieveLevel", "SpecificCharacterSet") or not keyword:
                continue
            value = element.value
            if value in (None, "", []):
                continue  # universal matching
            if keyword == "Modality" and level == "STUDY":
                keyword = "ModalitiesInStudy"  # a PACS that matches Modality at study level
            if keyword not in record:
                continue  # keys we do not support are ignored, as the standard allows
            if keyword == "ModalitiesInStudy":
                if self.faults.ignore_modalities_in_study:
                    continue
                asked = values(value)
                if not set(asked) & set(record[keyword]):
                    return False
            elif keyword in UID_KEYS:
                asked = values(value)
                if len(asked) > 1 and self.faults.ignore_uid_lists:
                    continue
                if str(record[keyword]) not in asked:
                    return False
            elif keyword in RANGE_KEYS:
                if self.faults.ignore_dates:
                    continue
                if keyword == "StudyTime" and record["StudyInstanceUID"] in (
                    self.faults.unmatched_by_time
                ):
                    return False
                if not in_range(str(record[keyword]), str(value)):
                    return False
            elif not fnmatch.fnmatchcase(str(record[keyword]), str(value)):
                return False
        return True

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        identifier = event.identifier
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        hidden = self._hidden()
        cap = self.faults.cap_results
        self.identifiers.append(frozenset(e.keyword for e in identifier if e.keyword))
        self._asked("C-FIND", identifier)
        if self.faults.cap_keys is not None and len(identifier) < self.faults.cap_keys:
            cap = None
        if level == "STUDY":
            self.study_queries += 1
            if self.faults.find_status is not None:
                yield self.faults.find_status, None
                return
            if self.faults.cap_times is not None and self.study_queries > self.faults.cap_times:
                cap = None
        elif self.faults.cap_times is not None:
            cap = None
        for index, record in enumerate(self._answered(identifier, level)):
            if event.is_cancelled and not self.faults.ignore_cancel:
                yield 0xFE00, None
                return
            if cap is not None and index >= cap:
                if self.faults.cap_status:
                    yield self.faults.cap_status, None
                return
            self._wait()
            answer = Dataset()
            answer.QueryRetrieveLevel = level
            for element in identifier:
                keyword = element.keyword
                if keyword in record and keyword not in hidden:
                    setattr(answer, keyword, record[keyword])
            if self.faults.garbled_text:
                answer.SpecificCharacterSet = "ISO_IR 999"
                if "StudyDescription" in answer:
                    text = f"{record['StudyDescription']} \u2013 Überweisung " * 8
                    answer.add_new("StudyDescription", "LO", text.encode("utf-8"))
            yield 0xFF00, answer

    def _answered(self, identifier: Dataset, level: str) -> list[dict[str, Any]]:
        records = self.matches(identifier)
        asked = values(identifier.get("StudyInstanceUID", ""))
        other = self.faults.foreign_series.get(asked[0]) if len(asked) == 1 else None
        if level == "SERIES" and other:
            records += [r for r in self.records(level) if r["StudyInstanceUID"] == other]
        return records

    # ------------------------------------------------------------ C-MOVE and C-GET

    def selected(self, identifier: Dataset) -> list[Dataset]:
        level = str(identifier.get("QueryRetrieveLevel", "")).upper()
        if level not in LEVEL_KEYS:
            return []
        keys = LEVEL_KEYS[level][-1:] if self.faults.lowest_key_only else LEVEL_KEYS[level]
        wanted = {key: values(identifier.get(key, "")) for key in keys}
        return [
            o
            for o in self.objects
            if all(not uids or str(o.get(key)) in uids for key, uids in wanted.items())
        ]

    def _asked(self, what: str, identifier: Dataset) -> None:
        study, day = (str(identifier.get(k, "")) for k in ("StudyInstanceUID", "StudyDate"))
        self.requests.append((clock.now(), what, study, day))

    def _on_move(self, event: Any) -> Iterator[Any]:
        self._asked("C-MOVE", event.identifier)
        destination = str(event.move_destination).strip()
        address = self.destinations.get(destination)
        if address is None or self.faults.move_status == 0xA801:
            yield None, None  # pynetdicom answers 0xA801: move destination unknown
            return
        host, port = address
        handlers: list[Any] = [(evt.EVT_CONN_OPEN, tune_socket)]
        if self.faults.store_as or self.faults.misname_instance:
            handlers.append((evt.EVT_ESTABLISHED, self._misname))
        yield host, port, {"evt_handlers": handlers}
        yield from self._sub_operations(event)

    def _on_get(self, event: Any) -> Iterator[Any]:
        self._asked("C-GET", event.identifier)
        if self.faults.get_status is not None:
            yield 1  # with none, pynetdicom would answer success at once
            yield self.faults.get_status, None
            return
        yield from self._sub_operations(event)

    def _sub_operations(self, event: Any) -> Iterator[Any]:
        if self.faults.nonsense_counts:
            miscount(event.assoc)
        if self.faults.store_as or self.faults.misname_instance:
            self._misname(event)
        objects = self._to_send(self.selected(event.identifier))
        if any(o.StudyInstanceUID in self.faults.fail_studies for o in objects):
            yield len(objects)
            yield 0xA702, None  # refused: out of resources, cannot perform sub-operations
            return
        failing = objects[-1] if objects and self.faults.move_status == 0xB000 else None
        if objects and self.faults.fail_once and objects[-1].SOPInstanceUID not in self._failed:
            failing = objects[-1]
            self._failed.add(failing.SOPInstanceUID)
        yield len(objects)
        for index, ds in enumerate(objects):
            if event.is_cancelled and not self.faults.ignore_cancel:
                yield 0xFE00, None
                return
            if (
                self.faults.abort_after is not None
                and index >= self.faults.abort_after
                and not (self.faults.abort_once and self._aborted)
            ):
                self._aborted = True
                event.assoc.abort()
                return
            hold = self.faults.hold_after
            if hold is not None and index >= hold and not self._released.is_set():
                self.holding.set()
                self._released.wait()
            if not event.assoc.is_established:
                return
            self._wait()
            if ds is failing:
                failed = Dataset()
                failed.FailedSOPInstanceUIDList = (
                    [] if self.faults.hide_failed_list else [ds.SOPInstanceUID]
                )
                yield 0xB000, failed
                return
            self.sent.append(ds.SOPInstanceUID)
            yield 0xFF00, ds

    def _misname(self, event: Any) -> None:
        misname_stores(event.assoc, self.faults.store_as, self.faults.misname_instance)

    def _to_send(self, objects: list[Dataset]) -> list[Dataset]:
        withheld = self.faults.withhold - self._withheld
        if self.faults.withhold_once:
            self._withheld |= {o.SOPInstanceUID for o in objects} & withheld
        objects = [o for o in objects if o.SOPInstanceUID not in withheld]
        if self.faults.also_send:
            objects += [o for o in self.objects if o.StudyInstanceUID == self.faults.also_send]
        return objects
