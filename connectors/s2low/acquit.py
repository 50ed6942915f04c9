"""Reading a ``PES_ACQUIT`` as the treasury emits it, not only as its schema says.

Hélios emits refusals that break the published XSD (a ``CodCol`` of ``000``, an
unknown ``TypFic``, a missing ``CodCol``: S²LOW's own test fixtures
``test/PHPUnit/helios/fixtures/pes_acquit_not_valid*.xml`` are such files). The
acknowledgement states (``EtatAck``) and error lines (``Erreur/NumAnoAck``,
``Erreur/LibelleAnoAck``) are read from the tree whatever the schema says; the
schema's first message is returned beside them (``schema_error``) so the caller
keeps and journals it instead of dropping the reply.
"""

from __future__ import annotations

from lxml import etree
from pydantic import BaseModel, Field

from schemas.pes import schema
from schemas.xmlschemas import xsd_errors

_PARSER = etree.XMLParser(no_network=True, resolve_entities=False)


class AcquitUnreadable(ValueError):
    """The reply is not a PES_ACQUIT at all (not XML, or another root)."""


class AckElement(BaseModel):
    """One ``ElementACQUIT``: its domain, state and the treasury's error lines."""

    domain: str = ""
    state: str = ""
    fields: dict[str, str] = Field(default_factory=dict)
    errors: list[tuple[str, str]] = Field(default_factory=list)  # (NumAnoAck, LibelleAnoAck)


class AcquitReading(BaseModel):
    """What the acquit says; ``schema_error`` is set when it breaks the published XSD."""

    file_name: str = ""
    elements: list[AckElement] = Field(default_factory=list)
    schema_error: str | None = None

    @property
    def accepted(self) -> bool:
        """Every element acknowledged (``EtatAck`` 1)."""
        return bool(self.elements) and all(e.state == "1" for e in self.elements)

    @property
    def reason(self) -> str:
        """The treasury's error codes and texts, or the refused states."""
        lines = [f"{code}: {text}".strip(": ") for e in self.elements for code, text in e.errors]
        if not lines:
            lines = [f"EtatAck {e.state} (domain {e.domain})" for e in self.elements
                     if e.state != "1"]
        return "; ".join(lines) or "no acknowledgement element"


def read_acquit(data: bytes) -> AcquitReading:
    """Read states and errors of a PES_ACQUIT; ``AcquitUnreadable`` if it is not one."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise AcquitUnreadable(f"PES_ACQUIT is not well-formed: {exc}") from None
    if etree.QName(root).localname != "PES_ACQUIT":
        raise AcquitUnreadable(f"expected PES_ACQUIT, got <{etree.QName(root).localname}>")
    errors = xsd_errors(schema("acquit"), root)
    name = root.find("Enveloppe/Parametres/NomFic")
    return AcquitReading(
        file_name=name.get("V", "") if name is not None else "",
        elements=[_element(e) for e in root.iter("ElementACQUIT")],
        schema_error=(f"PES_ACQUIT is not valid against its schema: line {errors[0].line}: "
                      f"{errors[0].message}") if errors else None)


def _element(el: etree._Element) -> AckElement:
    fields = {child.tag: child.get("V", "") for child in el if child.tag != "Erreur"}
    errors = [(_v(err, "NumAnoAck"), _v(err, "LibelleAnoAck").strip())
              for err in el.iter("Erreur")]
    return AckElement(domain=fields.get("DomaineAck", ""), state=fields.get("EtatAck", ""),
                      fields=fields, errors=errors)


def _v(el: etree._Element, tag: str) -> str:
    found = el.find(tag)
    return found.get("V", "") if found is not None else ""
