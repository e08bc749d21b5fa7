"""Destinations: where the store delivers its dose objects onward ([destinations.NAME]).

A DICOM Storage SCP (host), a folder that a file-based importer watches (directory), or a
command run once per object with the file's path as its last argument (command)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Destination:
    name: str
    # a DICOM Storage SCP
    aet: str | None = None
    host: str | None = None
    port: int = 104
    tls: bool = False
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    timeout: float = 5.0  # TCP connect and association
    dimse_timeout: float = 60.0  # each C-STORE response
    max_associations: int = 4  # objects sent in parallel
    # a folder: DIR/<StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm, hard-linked where it can
    directory: Path | None = None
    # a command: argv, the file's path appended; no shell; a timeout per object
    command: tuple[str, ...] = ()
    command_timeout: float = 300.0
    set_keys: frozenset[str] = field(default=frozenset(), compare=False, repr=False)

    @property
    def kind(self) -> str:
        if self.host is not None:
            return "dicom"
        return "folder" if self.directory is not None else "command"

    @property
    def address(self) -> str:
        if self.host is not None:
            return f"{self.aet}@{self.host}:{self.port}"
        if self.directory is not None:
            return str(self.directory)
        return " ".join(self.command)
