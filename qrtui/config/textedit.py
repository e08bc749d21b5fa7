"""Editing the configuration file's text table by table, so a save keeps the user's comments
and layout wherever it can: unchanged tables stay as written, a changed table is replaced
where it stands, a new one is appended, a deleted one removed. Only the standard library and
tomli-w; the result is checked by parsing it back."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import tomli_w

_HEADER = re.compile(r"^\s*\[(?!\[)")
_COMMENT = re.compile(r"^\s*#")

Key = tuple[str, ...]  # a table's path: ("client",) or ("remotes", "pacs")


@dataclass(frozen=True)
class Update:
    text: str
    dropped_comments: int  # comment lines of the old text that the new text lacks


@dataclass
class _Block:
    key: Key | None  # None: the text before the first table
    lines: list[str]


def _blocks(text: str) -> list[_Block]:
    blocks = [_Block(None, [])]
    for line in text.splitlines(keepends=True):
        if _HEADER.match(line):
            key = _header_key(line)
            if key is None:
                raise ValueError(f"cannot read the table header {line.strip()!r}")
            blocks.append(_Block(key, [line]))
        else:
            blocks[-1].lines.append(line)
    return blocks


def _header_key(line: str) -> Key | None:
    try:
        parsed = tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return None
    path: list[str] = []
    node: Any = parsed
    while isinstance(node, dict) and len(node) == 1:
        name, node = next(iter(node.items()))
        path.append(name)
    return tuple(path) if path and node == {} else None


def _tables(data: Mapping[str, Any]) -> dict[Key, dict[str, Any]]:
    """Tables at depth one ([client]) and two ([remotes.pacs]) of a configuration."""
    out: dict[Key, dict[str, Any]] = {}
    for section, value in data.items():
        if not isinstance(value, dict):
            continue
        named = {k: v for k, v in value.items() if isinstance(v, dict)}
        plain = {k: v for k, v in value.items() if not isinstance(v, dict)}
        if plain or not named:
            out[(section,)] = plain
        for name, table in named.items():
            out[(section, name)] = table
    return out


def _dump(key: Key, table: dict[str, Any]) -> list[str]:
    nested: dict[str, Any] = table
    for part in reversed(key):
        nested = {part: nested}
    text = tomli_w.dumps(nested)
    return text.splitlines(keepends=True)


def _comments(lines: list[str]) -> int:
    return sum(1 for line in lines if _COMMENT.match(line) or " #" in line)


def update_text(
    old_text: str | None,
    data: Mapping[str, Any],
    same: Callable[[Key, Mapping[str, Any], Mapping[str, Any]], bool],
) -> Update:
    """The file's new text for `data`. `same(key, a, b)` tells whether two versions of a table
    mean the same (so "~/store" and its expanded path do, and a default left out). Falls back
    to a whole new text where the old one cannot be edited table by table."""
    fresh = tomli_w.dumps(dict(data))
    if not old_text or not old_text.strip():
        return Update(fresh, 0)
    try:
        old = tomllib.loads(old_text)
        blocks = _blocks(old_text)
    except (tomllib.TOMLDecodeError, ValueError):
        return Update(fresh, _comments(old_text.splitlines()))
    old_tables, new_tables = _tables(old), _tables(data)
    written: set[Key] = set()
    dropped = 0
    out: list[str] = []
    for block in blocks:
        key = block.key
        if key is None or key not in old_tables:  # text before the tables, or a parent header
            out += block.lines
            continue
        written.add(key)
        if key not in new_tables:
            body, trailing = _split_trailing(block.lines)
            dropped += _comments(body)
            out += trailing
            continue
        if same(key, old_tables[key], new_tables[key]):
            out += block.lines
            continue
        body, trailing = _split_trailing(block.lines)
        dropped += _comments(body)
        out += _dump(key, new_tables[key]) + trailing
    added = [key for key in new_tables if key not in written]
    for key in added:
        if out and not out[-1].endswith("\n"):
            out[-1] += "\n"
        if out and out[-1].strip():
            out.append("\n")
        out += _dump(key, new_tables[key])
    text = "".join(out)
    try:
        reread = _tables(tomllib.loads(text))
    except tomllib.TOMLDecodeError:
        return Update(fresh, _comments(old_text.splitlines()))
    if reread.keys() != new_tables.keys() or not all(
        same(k, reread[k], new_tables[k]) for k in new_tables
    ):
        return Update(fresh, _comments(old_text.splitlines()))
    return Update(text, dropped)


def _split_trailing(lines: list[str]) -> tuple[list[str], list[str]]:
    """A block's own lines, and the blank and comment lines that end it: those introduce the
    next table, and stay when this one is replaced or removed."""
    cut = len(lines)
    while cut > 1 and (not lines[cut - 1].strip() or _COMMENT.match(lines[cut - 1])):
        cut -= 1
    return lines[:cut], lines[cut:]
