"""TLS and file-type helpers of the S²LOW clients (client certificate, CA)."""

from __future__ import annotations

import re
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


def posted_name(name: str, *, dash: bool = False) -> str:
    """A file name S²LOW reads back intact: it ``utf8_encode``s posted names (reads them as
    ISO-8859-1), so, as Pastell does, every character but ``[A-Za-z0-9._ ]`` (and ``-``
    for HELIOS) becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9._ \-]" if dash else r"[^a-zA-Z0-9._ ]", "_", name)
