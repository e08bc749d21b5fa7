"""DICOM TLS contexts for our connections (as client) and for the embedded SCP (as server)."""

from __future__ import annotations

import ssl
from pathlib import Path

from qrtui.config import ConfigError, RemoteNode, StoreNode
from qrtui.config.destinations import Destination


def _file(node: RemoteNode | StoreNode | Destination, key: str) -> str | None:
    value: str | None = getattr(node, key)
    return str(Path(value).expanduser()) if value else None


def _context(node: RemoteNode | StoreNode | Destination, purpose: ssl.Purpose) -> ssl.SSLContext:
    kinds = {RemoteNode: "remote", StoreNode: "store", Destination: "destination"}
    kind = kinds[type(node)]
    try:
        context = ssl.create_default_context(purpose, cafile=_file(node, "tls_ca"))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        cert, key = _file(node, "tls_cert"), _file(node, "tls_key")
        if cert and key:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{kind} {node.name}: TLS files: {reason}") from None
    return context


def client_context(node: RemoteNode | Destination) -> ssl.SSLContext | None:
    """Verifies the node's certificate and host name; None without tls."""
    return _context(node, ssl.Purpose.SERVER_AUTH) if node.tls else None


def server_context(node: StoreNode) -> ssl.SSLContext | None:
    """Our certificate; with tls_ca, senders must present one it signed."""
    if not node.tls:
        return None
    context = _context(node, ssl.Purpose.CLIENT_AUTH)
    context.verify_mode = ssl.CERT_REQUIRED if node.tls_ca else ssl.CERT_NONE
    return context
