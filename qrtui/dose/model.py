"""Units, quantities, events and the summary of one object; reading plain header values."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypedDict

# Units of the study columns, and what the objects' units are worth in them.
_IN = {
    "mGy.cm": {"mGy.cm": 1.0, "Gy.cm": 1e3, "mGy.mm": 0.1, "cGy.cm": 10.0, "dGy.cm": 100.0},
    "mGy": {"mGy": 1.0, "Gy": 1e3, "dGy": 100.0, "cGy": 10.0, "uGy": 1e-3},
    "Gy.m2": {"Gy.m2": 1.0, "dGy.cm2": 1e-5, "cGy.cm2": 1e-6, "mGy.cm2": 1e-7, "uGy.m2": 1e-6,
              "mGy.m2": 1e-3, "uGy.cm2": 1e-10, "Gy.cm2": 1e-4, "dGy.m2": 0.1},
    "Gy": {"Gy": 1.0, "mGy": 1e-3, "dGy": 0.1, "cGy": 0.01, "uGy": 1e-6},
    "s": {"s": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0},
}  # fmt: skip


def _spelling(unit: str) -> str:
    """One spelling for a unit: vendors write mGycm, Gym2, dGy*cm2, uGy.m2 or µGy.m2."""
    out = unit.strip().replace("µ", "u").replace("μ", "u")
    for mark in (".", "*", "·", " ", "^"):
        out = out.replace(mark, "")
    return out.lower()


_FACTORS = {column: {_spelling(u): f for u, f in units.items()} for column, units in _IN.items()}


@dataclass(frozen=True)
class Quantity:
    value: float
    unit: str  # the object's own, as written (UCUM, or a vendor's spelling of it)

    def in_unit(self, unit: str) -> float | None:
        """The value in the column unit `unit`, or None for a unit not known to mean it."""
        factor = _FACTORS.get(unit, {}).get(_spelling(self.unit))
        return None if factor is None else self.value * factor

    def __str__(self) -> str:
        return f"{self.value:g} {self.unit}"


@dataclass(frozen=True)
class Event:
    """One irradiation event (or CT acquisition)."""

    uid: str | None = None
    kind: str | None = None  # CT acquisition type, or irradiation event type
    protocol: str | None = None
    ctdivol: Quantity | None = None
    dlp: Quantity | None = None
    dap: Quantity | None = None
    dose_rp: Quantity | None = None
    agd: Quantity | None = None
    laterality: str | None = None
    scan_length: Quantity | None = None


@dataclass(frozen=True)
class DoseSummary:
    kind: str  # "RDSR", "ESR", "dose page", "image header", or "none"
    group: str  # "CT", "MG", "FL", "DX", or "" when the object does not tell
    modality: str
    manufacturer: str | None = None
    model: str | None = None
    station: str | None = None
    study_uid: str = ""
    study_date: str = ""
    study_description: str = ""
    event_count: int | None = None
    events: tuple[Event, ...] = ()
    dlp_total: Quantity | None = None
    dap_total: Quantity | None = None
    dose_rp_total: Quantity | None = None
    fluoro_time: Quantity | None = None
    acquisition_time: Quantity | None = None
    agd: tuple[tuple[str, Quantity], ...] = ()  # accumulated, per laterality
    exposure_index: float | None = None
    deviation_index: float | None = None
    kvp: Quantity | None = None
    exposure: Quantity | None = None
    notes: tuple[str, ...] = ()  # what could not be read, and why

    @property
    def ctdivol_max(self) -> Quantity | None:
        values = [e.ctdivol for e in self.events if e.ctdivol is not None]
        return max(values, key=lambda q: q.in_unit("mGy") or q.value) if values else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: dict[str, Any]) -> DoseSummary:
        def quantity(value: Any) -> Quantity | None:
            return Quantity(float(value["value"]), str(value["unit"])) if value else None

        events = tuple(
            Event(**{**e, **{k: quantity(e.get(k)) for k in _EVENT_QUANTITIES}})
            for e in data.get("events", ())
        )
        values = {k: quantity(data.get(k)) for k in _SUMMARY_QUANTITIES}
        return DoseSummary(
            **{
                **{k: v for k, v in data.items() if k not in ("events", "agd", "notes")},
                **values,
                "events": events,
                "agd": tuple((str(side), quantity(q)) for side, q in data.get("agd", ())),
                "notes": tuple(data.get("notes", ())),
            }
        )


_EVENT_QUANTITIES = ("ctdivol", "dlp", "dap", "dose_rp", "agd", "scan_length")


_SUMMARY_QUANTITIES = (
    "dlp_total", "dap_total", "dose_rp_total", "fluoro_time", "acquisition_time", "kvp",
    "exposure",
)  # fmt: skip


def _text(ds: Any, keyword: str) -> str | None:
    try:
        if keyword not in ds:
            return None
        value = ds.get(keyword)
    except Exception:
        return None
    if value is None:
        return None
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip() or None


def _number(ds: Any, keyword: str) -> float | None:
    text = _text(ds, keyword)
    try:
        return float(text.split("\\")[0]) if text else None
    except ValueError:
        return None


class _Device(TypedDict):
    manufacturer: str | None
    model: str | None
    station: str | None


class _Study(TypedDict):
    study_uid: str
    study_date: str
    study_description: str


def _device(ds: Any) -> _Device:
    return {
        "manufacturer": _text(ds, "Manufacturer"),
        "model": _text(ds, "ManufacturerModelName"),
        "station": _text(ds, "StationName"),
    }


def _study(ds: Any) -> _Study:
    return {
        "study_uid": _text(ds, "StudyInstanceUID") or "",
        "study_date": _text(ds, "StudyDate") or "",
        "study_description": _text(ds, "StudyDescription") or "",
    }
