"""Every action of the screen in the command palette (Ctrl+P), by name: the palette lists the
same bindings the footer and the help show."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from qrtui.tui.screens.help import key_name


class ScreenActions(Provider):
    def _actions(self) -> Iterator[tuple[str, str, object]]:
        """(title, help, callback) of every enabled action of the screen and the app."""
        seen: set[str] = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.description or not active.enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            run = partial(self.app.run_action, binding.action, active.node)
            yield binding.description, f"key {key_name(key)}", run

    async def discover(self) -> Hits:
        for title, text, run in self._actions():
            yield DiscoveryHit(title, run, help=text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, text, run in self._actions():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=text)  # type: ignore[arg-type]
