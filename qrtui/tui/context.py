"""What every screen may ask of the app, without importing it: the app imports the screens."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Protocol, cast

from textual.screen import Screen
from textual.widgets import Input

from qrtui.config import Config


class AppContext(Protocol):
    config: Config
    today: Callable[[], date]
    cursor_blink: bool
    echo_on_start: bool
    demo: bool


def app_of(screen: Screen[Any]) -> AppContext:
    return cast(AppContext, screen.app)


def stop_blinking(screen: Screen[Any]) -> None:
    """Tests turn the cursor blink off, for screens that stay still."""
    if not app_of(screen).cursor_blink:
        for field in screen.query(Input):
            field.cursor_blink = False
