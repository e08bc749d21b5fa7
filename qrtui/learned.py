"""What qrtui learned about each node, kept apart from what the user wrote: a machine-written
`nodes.learned.toml` beside the configuration (tomli-w, atomic, mode 0600). The probe writes
it (`--probe --save`); runs add the caps they meet. Keys the user sets in config.toml win."""

from __future__ import annotations

import contextlib
import json
import tomllib
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from qrtui.config import APP_NAME, Config, RemoteNode, write_atomically

LEARNED_NAME = "nodes.learned.toml"
_HEADER = (
    "# Written by qrtui: what it learned about each node (qrtui --no-tui --probe NODE --save,\n"
    "# and the answer caps runs meet). Edit config.toml instead: its keys always win.\n\n"
)


@dataclass(frozen=True)
class Findings:
    """Facts about a node; None where unknown, never guessed."""

    probed: str | None = None  # when the probe ran
    echo_ms: float | None = None
    modalities_in_study_matched: bool | None = None
    modalities_in_study_returned: bool | None = None
    sop_classes_in_study: bool | None = None
    study_counts_returned: bool | None = None  # NumberOfStudyRelatedSeries/Instances
    station_name_returned: bool | None = None
    series_description_returned: bool | None = None
    sop_class_at_image_level: bool | None = None
    relational_image_query: bool | None = None
    wildcards: bool | None = None
    case_insensitive: bool | None = None
    c_get: bool | None = None
    c_move: bool | None = None
    max_associations: int | None = None
    result_cap: int | None = None
    tls_version: str | None = None
    cap_seen: str | None = None  # when a run last met the cap

    def to_toml(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


_KINDS = {f.name: f.type for f in fields(Findings)}


def _typed(name: str, value: Any) -> bool:
    kind = str(_KINDS[name])
    if "bool" in kind:
        return isinstance(value, bool)
    if "int" in kind:
        return isinstance(value, int) and not isinstance(value, bool)
    if "float" in kind:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, str)


def learned_path(config_path: Path) -> Path:
    return config_path.with_name(LEARNED_NAME)


def _old_caps_path() -> Path:
    """Where runs kept the caps they met before nodes.learned.toml existed."""
    return Path(platformdirs.user_state_dir(APP_NAME)) / "node-caps.json"


def load_learned(config_path: Path) -> dict[str, Findings]:
    """Findings per node name. An unreadable file is only knowledge lost: qrtui then asks
    the long way, as with no file at all."""
    learned: dict[str, Findings] = {}
    with contextlib.suppress(OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = tomllib.loads(learned_path(config_path).read_text(encoding="utf-8"))
        for name, table in data.get("nodes", {}).items():
            if isinstance(table, dict):
                known = {k: v for k, v in table.items() if k in _KINDS and _typed(k, v)}
                learned[name] = Findings(**known)
    with contextlib.suppress(OSError, ValueError, AttributeError):
        old = json.loads(_old_caps_path().read_text(encoding="utf-8"))
        for name, cap in old.items():
            if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
                found = learned.get(name, Findings())
                if found.result_cap is None:
                    learned[name] = replace(found, result_cap=cap)
    return learned


def save_learned(config_path: Path, learned: dict[str, Findings]) -> Path:
    """Write atomically with mode 0600; raises OSError."""
    path = learned_path(config_path)
    text = _HEADER + tomli_w.dumps(
        {"nodes": {name: f.to_toml() for name, f in sorted(learned.items())}}
    )
    write_atomically(path, text)
    with contextlib.suppress(OSError):  # its caps now live here
        _old_caps_path().unlink()
    return path


def merged(old: Findings | None, new: Findings) -> Findings:
    """A new probe's findings over the old: what it could not tell this time stays known."""
    if old is None:
        return new
    return Findings(
        **{f.name: getattr(new, f.name) if getattr(new, f.name) is not None
           else getattr(old, f.name) for f in fields(Findings)}
    )  # fmt: skip


def effective_cap(node: RemoteNode, learned: Findings | None) -> int | None:
    """The node's answer cap: as the user set it, else as learned."""
    if node.result_cap is not None:
        return node.result_cap
    return learned.result_cap if learned else None


def disagreements(node: RemoteNode, found: Findings) -> list[str]:
    """Where a finding contradicts what the user set in config.toml (the user's key wins)."""
    said = node.set_keys
    out = []
    if "use_modality_tag" in said and node.use_modality_tag and found.modalities_in_study_matched:
        out.append("use_modality_tag = true in config.toml, but the node matches ModalitiesInStudy")
    allowed = found.max_associations
    if "max_associations" in said and allowed is not None and allowed < node.max_associations:
        out.append(
            f"max_associations = {node.max_associations} in config.toml, but the node "
            f"allowed {allowed} at once"
        )
    if node.result_cap is not None and found.result_cap not in (None, node.result_cap):
        out.append(
            f"result_cap = {node.result_cap} in config.toml, but the node stopped at "
            f"{found.result_cap}"
        )
    if node.retrieve == "get" and found.c_get is False:
        out.append('retrieve = "get" in config.toml, but the node refused C-GET')
    return out


def learned_summary(config: Config, node: RemoteNode) -> str:
    """One line of what is known of the node, for the nodes screen."""
    found = load_learned(config.path).get(node.name)
    if found is None or found.probed is None:
        cap = f"; answers capped at {found.result_cap}" if found and found.result_cap else ""
        return f"{node.name}: not probed yet (p){cap}"
    facts = [f"probed {found.probed[:10]}"]
    if found.modalities_in_study_matched is not None:
        facts.append(
            "matches ModalitiesInStudy"
            if found.modalities_in_study_matched
            else "ignores ModalitiesInStudy"
        )
    if found.sop_class_at_image_level is not None:
        facts.append(
            "SOP classes at image level"
            if found.sop_class_at_image_level
            else "no SOP classes at image level"
        )
    if found.c_get is not None:
        facts.append("C-GET" if found.c_get else "no C-GET")
    if found.max_associations is not None:
        facts.append(f"{found.max_associations} associations")
    facts.append(f"cap {found.result_cap}" if found.result_cap else "no cap found")
    return f"{node.name}: " + ", ".join(facts)
