"""Exit statuses, and the checks that need no network: light enough for the TUI to show its
first frame before pynetdicom has loaded."""

from __future__ import annotations

from qrtui.config import RemoteNode, StoreNode

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_UNDELIVERED = 4  # fetched, but dose objects wait for a destination (or it refused them)
EXIT_BUSY = 5  # another qrtui holds the store: this run did nothing; the next catches up


def usage_problem(remote: RemoteNode, store_node: StoreNode) -> str:
    """Why this remote cannot retrieve into this store, or ''."""
    if remote.retrieve == "get" and not store_node.embedded:
        return (
            f"remote {remote.name} retrieves with C-GET, which needs an embedded store "
            f"(one with a directory); store {store_node.name} is external"
        )
    return ""
