"""ACTES v1.1 basics: namespaces, message codes, the schema, file naming and the
XML element helpers every message uses."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

from lxml import etree

import schemas
from schemas.acte import (
    ACTES_NS,
    NATURE_CODES,
    ActeMetadata,
    ActeNature,
    TenantActesSettings,
)
from schemas.safexml import XmlRefused, parse_xml
from schemas.xmlschemas import load_xsd, xsd_errors

NS = ACTES_NS
INSEE_NS = "http://xml.insee.fr/schema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {"actes": NS, "insee": INSEE_NS, "xsi": XSI_NS}
SCHEMA_PATH = Path(schemas.__file__).resolve().parent / "xsd" / "actes" / "actesv1_1.xsd"
TRIGRAMME = "SLO"
QUADRIGRAMME = "EACT"
ID_ACTE_RE = re.compile(r"[09][0-9][0-9AB]-[0-9]{9}-[0-9]{8}-[a-zA-Z0-9_]{1,15}-[A-Z]{2}")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)

# message codes (M-T) of the file names
MSG_TRANSMISSION, MSG_ARACTE, MSG_ANOMALIE = "1-1", "1-2", "1-3"
MSG_ANNULATION, MSG_ARANNULATION, MSG_DEMANDE_CLASSIF = "6-1", "6-2", "7-1"


class ActesError(ValueError):
    """An ACTES message or archive is malformed or invalid against the schema."""


# ---------------------------------------------------------------- schema


def actes_schema() -> etree.XMLSchema:
    """The official ACTES v1.1 schema, from the package's own copy."""
    return load_xsd(SCHEMA_PATH)


def schema_errors(xml: bytes) -> list[str]:
    """Schema violations of ``xml`` (empty when valid)."""
    try:
        doc = parse_xml(xml, what="ACTES message", remove_blank_text=True)
    except XmlRefused as exc:
        return [str(exc)]
    return [str(e) for e in xsd_errors(actes_schema(), doc)]


def assert_valid(xml: bytes, what: str = "message") -> bytes:
    """Return ``xml`` or raise ``ActesError`` naming the first violation."""
    errors = schema_errors(xml)
    if errors:
        raise ActesError(f"{what} is not valid ACTES v1.1: {errors[0]}")
    return xml


# ---------------------------------------------------------------- naming


def official_id(departement: str, siren: str, decision_date: date, number: str,
                nature: ActeNature | int) -> str:
    """The ID the prefecture gives an acte: ``DDD-SIREN-YYYYMMDD-NUMBER-NATURE``."""
    return (f"{departement}-{siren}-{decision_date:%Y%m%d}-{number}-"
            f"{NATURE_CODES[ActeNature(nature)]}")


def acte_base(settings: TenantActesSettings, meta: ActeMetadata) -> str:
    """Stem shared by every file of an acte's messages (equal to its official ID)."""
    return official_id(settings.departement, settings.siren, meta.decision_date, meta.number,
                       meta.nature)


def message_file_name(base: str, message: str, serial: int, ext: str,
                      typology: str | None = None) -> str:
    """``[TYPO-]BASE-M-T_N.ext``."""
    prefix = f"{typology}-" if typology else ""
    return f"{prefix}{base}-{message}_{serial}.{ext.lstrip('.')}"


def envelope_file_name(siren: str, day: date, serial: int, quadrigramme: str = QUADRIGRAMME
                       ) -> str:
    return f"{quadrigramme}--{siren}--{day:%Y%m%d}-{serial}.xml"


def archive_file_name(envelope_name: str, trigramme: str = TRIGRAMME) -> str:
    return f"{trigramme}-{envelope_name.removesuffix('.xml')}.tar.gz"


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def _el(parent: etree._Element | None, name: str, text: str | None = None,
        **attrs: Any) -> etree._Element:
    """A child ``actes:name`` with ``actes:``-qualified attributes (as the schema wants)."""
    attributes = {(_q(k) if ":" not in k and not k.startswith("{") else k): str(v)
                  for k, v in attrs.items()}
    el = (etree.Element(_q(name), attributes, nsmap=NSMAP) if parent is None
          else etree.SubElement(parent, _q(name), attributes))
    if text is not None:
        el.text = text
    return el


def _root(name: str, **attrs: Any) -> etree._Element:
    root = _el(None, name, **attrs)
    root.set(f"{{{XSI_NS}}}schemaLocation", f"{NS} actesv1_1.xsd")
    return root


def _serialize(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="ISO-8859-1", pretty_print=True)


def _file(parent: etree._Element, name: str, file_name: str, signature: str | None = None
          ) -> None:
    el = _el(parent, name)
    _el(el, "NomFichier", file_name)
    if signature:
        _el(el, "Signature", signature)
