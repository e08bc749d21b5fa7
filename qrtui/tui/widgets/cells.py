"""Table cells and short texts the screens share."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import DataTable

if TYPE_CHECKING:
    from qrtui.worker import EchoResult


def echo_text(result: EchoResult) -> str:
    text = str(result.outcome)
    if result.rtt_ms is not None:
        text += f" {result.rtt_ms:.0f} ms"
    if result.detail and not result.usable:
        text += f": {result.detail}"
    return text


def fixed_columns(table: DataTable[Any], headers: tuple[str, ...], rows: list[Any]) -> None:
    """Columns as wide as their widest cell, set before the rows arrive: Textual's automatic
    widths may leave a row drawn at the header's width in its render cache."""
    table.clear(columns=True)
    for index, header in enumerate(headers):
        width = max([len(header), *(len(str(row[index])) for row in rows)])
        table.add_column(header, width=width)


def date_text(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 else value or "-"
