"""TLS and file-type helpers of the S²LOW clients (client certificate, CA)."""

from __future__ import annotations

import ssl
from pathlib import Path


def tls_context(cert_file: str | Path | None, key_file: str | Path | None,
                key_password: str | None, ca_file: str | Path | None,
                verify: bool) -> ssl.SSLContext | bool:
    """The TLS setting: the client certificate S²LOW authenticates, the CA to trust."""
    if not cert_file and not ca_file:
        return verify
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file:
        ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None, key_password)
    return ctx


def mime(name: str) -> str:
    """The media type posted for a file, by its extension."""
    return {"pdf": "application/pdf", "xml": "application/xml", "jpg": "image/jpeg",
            "png": "image/png"}.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")
