"""TLS for the httpx-based sources (Tempo, Loki): a CA of one's own and a client certificate (mTLS),
as the MOP stack requires."""

from __future__ import annotations

import ssl
from pathlib import Path


def client_files_problem(ca_file: Path | None, cert_file: Path | None, key_file: Path | None) -> str | None:
    """Why these TLS files cannot be used, or None."""
    if (cert_file is None) != (key_file is None):
        return "a client certificate needs both cert_file and key_file"
    for path in (ca_file, cert_file, key_file):
        if path is not None and not path.is_file():
            return f"{path} does not exist or is not a file"
    return None


def httpx_verify(
    verify_tls: bool, ca_file: Path | None, cert_file: Path | None, key_file: Path | None
) -> ssl.SSLContext | bool:
    """httpx's `verify`: True/False, or a context with the CA and the client certificate loaded."""
    if not verify_tls or (ca_file is None and cert_file is None):
        return verify_tls
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if cert_file is not None and key_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file))
    return context
