"""Reading what ``actes_transac_get_status.php`` returns after its status line: the
reply XML kept with that status (read tolerantly), and the message that may follow."""

from __future__ import annotations

import re
from typing import Any

from lxml import etree
from pydantic import BaseModel

from connectors.s2low.actes import ActesError, AnomalieActe, parse_message


class RawReply(BaseModel):
    """A reply read without its schema (``schema_error`` says what it breaks)."""

    kind: str
    nature: str = ""
    detail: str = ""
    schema_error: str = ""


def reply_reason(reply: Any) -> str:
    """The prefecture's reason in an anomaly (acte or envelope), however it was read."""
    if isinstance(reply, AnomalieActe):
        return reply.reason
    label = "envelope anomaly" if reply.kind == "AnomalieEnveloppe" else reply.kind
    return f"{label} {reply.nature}: {reply.detail}".rstrip(": ")


def split_flux(rest: bytes) -> tuple[bytes | None, str]:
    """Separate the reply XML from the message that may follow it."""
    text = rest.lstrip()
    if not text.startswith(b"<"):
        return None, rest.decode("latin-1").strip()
    m = re.search(rb"<([A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)[\s>/]", re.sub(
        rb"^<\?xml[^>]*\?>\s*", b"", text))
    if not m:
        return text, ""
    qname = (m[1] or b"") + m[2]
    end = re.search(rb"</" + re.escape(qname) + rb"\s*>", text)
    if end is None:  # self-closing root
        start = text.find(b"<" + qname)
        end = re.compile(rb"/>").search(text, start)
    cut = end.end() if end else len(text)
    return text[:cut], text[cut:].decode("latin-1").strip()



def read_reply(xml: bytes) -> Any:
    """A reply XML read tolerantly: by its schema; else by its structure; else its
    ``Nature``/``Detail`` only (``RawReply``, with the schema's message)."""
    try:
        return parse_message(xml)
    except ActesError as exc:
        schema_error = str(exc)
    try:
        return parse_message(xml, validate=False)
    except ActesError:
        pass
    try:
        root = etree.fromstring(xml, etree.XMLParser(no_network=True, resolve_entities=False))
    except etree.XMLSyntaxError:
        return RawReply(kind="unreadable", detail=xml[:200].decode("latin-1"),
                        schema_error=schema_error)
    local = {etree.QName(el).localname: (el.text or "").strip() for el in root.iter()
             if isinstance(el.tag, str)}
    return RawReply(kind=etree.QName(root).localname, nature=local.get("Nature", ""),
                    detail=local.get("Detail", ""), schema_error=schema_error)
