"""The checks every key of the file goes through: types, AE titles, ports, timeouts, names."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from qrtui.config.nodes import GROUP_NAMES, ConfigError

Check = Callable[[Any], str | None]


def check_aet(value: str) -> str | None:
    if not value.strip():
        return "AE title is empty"
    if len(value) > 16:
        return f"AE title {value!r} is longer than 16 characters"
    if "\\" in value:
        return f"AE title {value!r} contains a backslash"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"AE title {value!r} contains a control character"
    return None


def check_port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else f"port {value} is outside 1-65535"


def check_timeout(value: float) -> str | None:
    return None if 0 < value <= 3600 else f"timeout {value} must be above 0 and at most 3600 s"


def check_deadline(value: float) -> str | None:
    return None if 1 <= value <= 86400 else f"{value} must be between 1 and 86400 s"


def check_associations(value: int) -> str | None:
    return None if 1 <= value <= 16 else f"{value} must be between 1 and 16"


def check_processes(value: int) -> str | None:
    return None if 1 <= value <= 4 else f"{value} must be between 1 and 4"


def check_cap(value: int) -> str | None:
    return None if 1 <= value <= 1_000_000 else f"{value} must be between 1 and 1000000"


def check_rate(value: float) -> str | None:
    return None if 0 < value <= 1000 else f"{value} must be above 0 and at most 1000"


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """'07:00-19:00' -> its start and end; a window may run past midnight ('22:00-06:00').
    ValueError, worded for the user, when it is not two different HH:MM times."""
    first, dash, last = text.partition("-")
    try:
        if not dash:
            raise ValueError
        start, end = (datetime.strptime(t.strip(), "%H:%M").time() for t in (first, last))
    except ValueError:
        raise ValueError(f'{text!r} is not a window like "07:00-19:00" (HH:MM-HH:MM)') from None
    if start == end:
        raise ValueError(f"{text!r} starts and ends at the same time")
    return start, end


def check_quiet_hours(value: str) -> str | None:
    try:
        parse_quiet_hours(value)
    except ValueError as exc:
        return str(exc)
    return None


def check_aets(value: tuple[str, ...]) -> str | None:
    for aet in value:
        problem = check_aet(aet)
        if problem:
            return problem
    return None


def check_networks(value: tuple[str, ...]) -> str | None:
    for network in value:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            return f"{network!r} is not an IP address or network (such as 10.1.2.0/24)"
    return None


def check_retrieve(value: str) -> str | None:
    if value in ("auto", "move", "get"):
        return None
    return f'retrieve {value!r} must be "auto", "move" or "get"'


def check_nonempty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


_OVERLAP = re.compile(r"^(\d{1,5})([dh])$")


def parse_overlap(text: str) -> timedelta:
    """'1d', '36h', '0d': how far before a checkpoint a --since-last run looks again."""
    match = _OVERLAP.match(text.strip().lower())
    if not match:
        raise ValueError(f"overlap {text!r} is not Nd (days) or Nh (hours), such as 1d or 12h")
    amount, unit = int(match.group(1)), match.group(2)
    overlap = timedelta(days=amount) if unit == "d" else timedelta(hours=amount)
    if overlap > timedelta(days=3650):
        raise ValueError(f"overlap {text!r} is more than ten years")
    return overlap


def check_overlap(value: str) -> str | None:
    try:
        parse_overlap(value)
    except ValueError as exc:
        return str(exc)
    return None


def check_names(value: tuple[str, ...]) -> str | None:
    for name in value:
        problem = name_problem(name)
        if problem:
            return f"{name!r}: {problem}"
    return None


def check_groups(value: tuple[str, ...]) -> str | None:
    for group in value:
        if group.lower() not in GROUP_NAMES:
            return f"unknown group {group!r} (known: {', '.join(GROUP_NAMES)})"
    return None


def check_terms(value: tuple[str, ...]) -> str | None:
    for term in value:
        if "," in term:
            return f"term {term!r} contains a comma: give each term as its own string"
    return None


@dataclass(frozen=True)
class Key:
    kind: type
    required: bool = False
    check: Check | None = None


_NODE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    tuple: "a list of strings",
}


def name_problem(name: str) -> str | None:
    """Why this cannot name a node or profile, or None."""
    if not _NODE_NAME.match(name) or name.isdigit():
        return "names use letters, digits, '_', '.', '-' and are not only digits"
    return None


def typed(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is tuple:
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    return isinstance(value, kind)


def read_table(
    table: Any, keys: Mapping[str, Key], where: str, fail: Callable[[str, str], ConfigError]
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise fail(where, "must be a table")
    out: dict[str, Any] = {}
    for key, value in table.items():
        spec = keys.get(key)
        if spec is None:
            raise fail(f"{where}.{key}", f"unknown key (known: {', '.join(keys)})")
        if not typed(value, spec.kind):
            raise fail(f"{where}.{key}", f"must be {TYPE_NAMES[spec.kind]}, not {value!r}")
        problem = spec.check(value) if spec.check else None
        if problem:
            raise fail(f"{where}.{key}", problem)
        out[key] = float(value) if spec.kind is float else value
        if spec.kind is tuple:
            out[key] = tuple(value)
    for key, spec in keys.items():
        if spec.required and key not in out:
            raise fail(f"{where}.{key}", "is required")
    return out


def check_tls(
    values: dict[str, Any], where: str, fail: Callable[[str, str], ConfigError], *, server: bool
) -> None:
    files = [k for k in ("tls_ca", "tls_cert", "tls_key") if k in values]
    if files and not values.get("tls"):
        raise fail(f"{where}.{files[0]}", "is only used with tls = true")
    if ("tls_cert" in values) != ("tls_key" in values):
        raise fail(f"{where}.tls_cert", "tls_cert and tls_key go together")
    if server and values.get("tls") and "tls_cert" not in values:
        raise fail(f"{where}.tls_cert", "a store that listens with TLS needs tls_cert and tls_key")
