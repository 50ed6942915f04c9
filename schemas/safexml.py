"""The one way producer XML is parsed: no DTD, no entity, no network, bounded size and depth.

Every XML a producer sends (PES, UBL/CII/PIVOT invoices, ACTES, pay slips...) goes through
``parse_xml`` (whole documents) or ``iterparse_xml`` (streamed ones). A document that
declares a DTD or an entity is refused as such (``XmlRefused``), before any schema runs:
an XXE or a billion-laughs file is never reported as "not valid against the schema".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from lxml import etree

MAX_XML_BYTES = 64 * 1024 * 1024  # whole-document parses; larger files are streamed
MAX_XML_DEPTH = 100  # no producer format nests deeper (libxml2's own bound is 256)
DTD_REFUSED = "the file declares a DTD/entity, refused"


class XmlRefused(ValueError):
    """Producer XML refused before its content is read: DTD/entity, size, depth, syntax."""


def safe_parser(**options: Any) -> etree.XMLParser:
    """A parser that never reaches the network, loads no DTD nor expands entities."""
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False,
                           dtd_validation=False, **options)


def parse_xml(data: bytes, *, what: str = "XML", max_bytes: int = MAX_XML_BYTES,
              max_depth: int = MAX_XML_DEPTH, remove_blank_text: bool = False,
              huge_tree: bool = False) -> etree._Element:
    """The root of ``data``; ``XmlRefused`` naming ``what`` for a DTD/entity, a file over
    ``max_bytes``, elements nested deeper than ``max_depth`` or malformed XML.
    ``huge_tree``: text nodes over 10 MB allowed (PES attachments), depth still bounded."""
    if len(data) > max_bytes:
        raise XmlRefused(f"{what}: {len(data)} bytes, more than the {max_bytes} bytes "
                         "allowed for this XML")
    parser = safe_parser(huge_tree=huge_tree, remove_blank_text=remove_blank_text)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise XmlRefused(f"{what}: not well-formed XML: {_syntax(exc)}") from None
    refuse_dtd(root.getroottree(), what)
    if root.getroottree().xpath(f"boolean(/{'*/' * max_depth}*)"):  # evaluated by libxml2
        raise XmlRefused(f"{what}: elements nested deeper than {max_depth} levels")
    return root


def iterparse_xml(source: IO[bytes], *, what: str = "XML", **options: Any
                  ) -> Iterator[tuple[str, etree._Element]]:
    """``lxml.etree.iterparse`` over ``source`` with the safe options; the DTD check runs
    at the first event (the prolog is read by then). Syntax and schema errors are
    ``lxml`` errors, left to the caller, who knows the format's words for them."""
    options.update(no_network=True, resolve_entities=False, load_dtd=False)
    events = etree.iterparse(source, **options)
    checked = False
    for item in events:
        if not checked:
            refuse_dtd(item[1].getroottree(), what)
            checked = True
        yield item
    if not checked and events.root is not None:
        refuse_dtd(events.root.getroottree(), what)


def refuse_dtd(tree: etree._ElementTree, what: str = "XML") -> None:
    """``XmlRefused`` when ``tree``'s document declares a DTD (internal or external)."""
    info = tree.docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise XmlRefused(f"{what}: {DTD_REFUSED}")


def _syntax(exc: etree.XMLSyntaxError) -> str:
    text = str(exc.msg or exc)
    if "Excessive depth" in text:
        return "elements nested too deep"
    return text
