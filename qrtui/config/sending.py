"""Reading [destinations.NAME] and the `forward` lists that name them, one line per mistake."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from qrtui.config.destinations import Destination
from qrtui.config.keys import (
    Key,
    check_aet,
    check_associations,
    check_nonempty,
    check_port,
    check_timeout,
    check_tls,
    read_table,
)
from qrtui.config.nodes import ConfigError

Fail = Callable[[str, str], ConfigError]


def _check_command(value: tuple[str, ...]) -> str | None:
    if not value or not value[0].strip():
        return 'must name a program, such as ["/opt/openrem/bin/openrem_rdsr.py"]'
    return None


def _check_command_timeout(value: float) -> str | None:
    return None if 0 < value <= 86400 else f"{value} must be above 0 and at most 86400 s"


DESTINATION_KEYS = {
    "aet": Key(str, check=check_aet),
    "host": Key(str, check=check_nonempty),
    "port": Key(int, check=check_port),
    "tls": Key(bool),
    "tls_ca": Key(str, check=check_nonempty),
    "tls_cert": Key(str, check=check_nonempty),
    "tls_key": Key(str, check=check_nonempty),
    "timeout": Key(float, check=check_timeout),
    "dimse_timeout": Key(float, check=check_timeout),
    "max_associations": Key(int, check=check_associations),
    "directory": Key(str, check=check_nonempty),
    "command": Key(tuple, check=_check_command),
    "command_timeout": Key(float, check=_check_command_timeout),
}
_DICOM_ONLY = ("aet", "port", "tls", "tls_ca", "tls_cert", "tls_key", "timeout",
               "dimse_timeout", "max_associations")  # fmt: skip


def destination_from(name: str, table: Any, where: str, fail: Fail) -> Destination:
    values = read_table(table, DESTINATION_KEYS, where, fail)
    kinds = [k for k in ("host", "directory", "command") if k in values]
    if len(kinds) != 1:
        told = "needs one of" if not kinds else "takes only one of"
        raise fail(where, f"{told} 'host' (a DICOM node), 'directory' (a folder), 'command'")
    if "host" in values:
        if "aet" not in values:
            raise fail(f"{where}.aet", "is required for a DICOM destination (with host)")
        check_tls(values, where, fail, server=False)
    else:
        for key in _DICOM_ONLY:
            if key in values:
                raise fail(f"{where}.{key}", "is only for a DICOM destination (with host)")
    if "command_timeout" in values and "command" not in values:
        raise fail(f"{where}.command_timeout", "is only for a destination with a command")
    if "directory" in values:
        values["directory"] = Path(values["directory"]).expanduser()
    return Destination(name=name, set_keys=frozenset(values), **values)


def read_destinations(tables: list[tuple[str, Any]], fail: Fail) -> tuple[Destination, ...]:
    return tuple(
        destination_from(name, table, f"destinations.{name}", fail) for name, table in tables
    )


def check_forward(
    values: dict[str, Any], destinations: tuple[Destination, ...], where: str, fail: Fail
) -> None:
    """Every name a `forward` list gives is a destination, named once."""
    names = values.get("forward", ())
    known = {d.name for d in destinations}
    for name in names:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none configured"
            raise fail(f"{where}.forward", f"no destination {name!r} (known: {listed})")
    if len(set(names)) != len(names):
        raise fail(f"{where}.forward", "names a destination twice")
    if names and "host" in values and "directory" not in values:
        raise fail(f"{where}.forward", "only an embedded store (with directory) forwards")
