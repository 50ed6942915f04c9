"""PES V2 (DGFiP Hélios): PES_Aller validation from a stream, PES_ACQUIT and PES_Retour.

The official schema set (v5.17) is kept in ``schemas/xsd/pes``. A PES Aller file can
weigh 100 MB: it is validated while it is parsed (``iterparse`` with the schema),
from a stream of chunks, and every element is dropped once read, so memory stays
flat; the schema's own message names the element at fault.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path
from xml.sax.saxutils import quoteattr

from lxml import etree
from pydantic import BaseModel, Field

from schemas.metadata import registers
from schemas.safexml import XmlRefused, iterparse_xml, parse_xml
from schemas.text import MultiLine, SingleLine
from schemas.xmlschemas import load_xsd, xsd_errors

XSD = Path(__file__).resolve().parent / "xsd" / "pes" / "PES_V2"
ALLER_XSD = XSD / "Rev0" / "PES_Aller.xsd"
ACQUIT_XSD = XSD / "Rev0" / "PES_V2_Acquit_Autonome_V2.xsd"
RETOUR_XSD = XSD / "RETOUR" / "Rev0" / "PES_Retour.xsd"
ALLER_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/aller"
ACQUIT_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour/v2"
RETOUR_NS = "http://www.minefi.gouv.fr/cp/helios/pes_v2/Rev0/retour"
DOMAINS = ("PES_DepenseAller", "PES_RecetteAller", "PES_PJ", "PES_Marche", "PES_Budget",
           "PES_Facture", "PES_Emprunt", "PES_ActifAller", "PES_RolesAller")


class PesError(ValueError):
    """A PES file is refused; ``line`` and ``element`` say where."""

    def __init__(self, message: str, *, line: int | None = None, element: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.element = element


class PesInfo(BaseModel):
    """What the bus reads from a valid PES Aller file."""

    file_name: str = ""  # Enveloppe/Parametres/NomFic
    file_type: str = ""  # TypFic (PESALR2...)
    collectivity: str = ""  # EnTetePES/IdColl (SIRET)
    code_col: str = ""
    code_bud: str = ""
    label: str = ""  # LibelleColBud
    poste: str = ""  # IdPost (treasury office)
    issued: str = ""  # DteStr
    domains: list[str] = Field(default_factory=list)
    bordereaux: list[dict[str, str]] = Field(default_factory=list)  # Id, IdBord, Exer
    pieces: int = 0
    signatures: int = 0
    size: int = 0


def schema(name: str) -> etree.XMLSchema:
    """The compiled ``aller``, ``acquit`` or ``retour`` schema (compiled once per process)."""
    path = {"aller": ALLER_XSD, "acquit": ACQUIT_XSD, "retour": RETOUR_XSD}[name]
    return load_xsd(path)


class _ChunkReader(io.RawIOBase):
    """A file object over an iterator of byte chunks (no whole-file copy)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._buf = b""
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
            self.size += len(self._buf)
        n = min(len(target), len(self._buf))
        target[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


HEADER_TAGS = ("NomFic", "TypFic", "IdColl", "CodCol", "CodBud", "LibelleColBud", "IdPost",
               "DteStr")
DS_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"


def validate_aller(chunks: Iterable[bytes]) -> PesInfo:
    """Validate a PES Aller read as chunks; return its header and bordereaux.

    Only the elements the bus reads reach Python (``tag`` filter); a piece is freed
    once read. Raises ``PesError`` with the schema's message (``Element 'X': ...``).
    """
    reader = _ChunkReader(chunks)
    info = PesInfo()
    tags = (*HEADER_TAGS, "BlocBordereau", "Bordereau", "Piece", "PJ", DS_SIGNATURE, *DOMAINS)
    events = iterparse_xml(io.BufferedReader(reader, 1 << 20), what="PES Aller",
                           events=("end",), tag=tags, schema=schema("aller"), huge_tree=True,
                           remove_comments=True)
    try:
        for _, el in events:
            _collect(info, el)
            if el.tag in ("Piece", "PJ", "Bordereau"):
                _drop(el)
    except XmlRefused as exc:
        raise PesError(str(exc)) from None
    except etree.XMLSyntaxError as exc:
        place = f"line {exc.lineno}: " if exc.lineno else ""  # streamed: libxml2 gives none
        raise PesError(f"PES Aller is not valid against the DGFiP PES V2 schema: {place}"
                       f"{_message(exc)}", line=exc.lineno or None,
                       element=_element(_message(exc))) from None
    info.size = reader.size
    if not info.domains:
        raise PesError("PES Aller holds no domain (PES_DepenseAller, PES_RecetteAller...)")
    return info


def _drop(el: etree._Element) -> None:
    """Free an element once read, and its read siblings: memory stays flat."""
    el.clear(keep_tail=False)
    parent = el.getparent()
    while parent is not None and (prev := el.getprevious()) is not None and prev.tag == el.tag:
        parent.remove(prev)


def _collect(info: PesInfo, el: etree._Element) -> None:
    tag = el.tag
    if tag in HEADER_TAGS:
        field = {"NomFic": "file_name", "TypFic": "file_type", "IdColl": "collectivity",
                 "CodCol": "code_col", "CodBud": "code_bud", "LibelleColBud": "label",
                 "IdPost": "poste", "DteStr": "issued"}[tag]
        if not getattr(info, field):
            setattr(info, field, el.get("V", ""))
    elif tag == "BlocBordereau":
        parent = el.getparent()
        info.bordereaux.append({"Id": parent.get("Id", "") if parent is not None else "",
                                "IdBord": _v(el, "IdBord"), "Exer": _v(el, "Exer")})
    elif tag == "Piece":
        info.pieces += 1
    elif tag == DS_SIGNATURE:
        info.signatures += 1
    elif tag in DOMAINS and el.getparent() is not None and el.getparent().getparent() is None:
        info.domains.append(tag)


def _v(block: etree._Element | None, name: str) -> str:
    found = block.find(name) if block is not None else None
    return found.get("V", "") if found is not None else ""


def _message(exc: etree.XMLSyntaxError) -> str:
    text = str(exc.msg or exc)
    return text.split(", line ")[0] if ", line " in text else text


def _element(message: str) -> str:
    start = message.find("Element '")
    return message[start + 9:].split("'", 1)[0].rsplit("}", 1)[-1] if start >= 0 else ""


# --- PES_ACQUIT -------------------------------------------------------------------


class AcquitInfo(BaseModel):
    """What a PES_ACQUIT says: accepted (EtatAck 1) or not, per element."""

    file_name: str = ""
    accepted: bool
    elements: list[dict[str, str]] = Field(default_factory=list)


def read_acquit(data: bytes) -> AcquitInfo:
    """Validate a PES_ACQUIT against its schema and read its acknowledgement states."""
    try:
        root = parse_xml(data, what="PES_ACQUIT")
    except XmlRefused as exc:
        raise PesError(str(exc)) from None
    errors = xsd_errors(schema("acquit"), root)
    if errors:
        err = errors[0]
        raise PesError(f"PES_ACQUIT is not valid: line {err.line}: {err.message}",
                       line=err.line, element=_element(err.message))
    elements = [{child.tag: child.get("V", "") for child in e}
                for e in root.iter("ElementACQUIT")]
    name = root.find("Enveloppe/Parametres/NomFic")
    return AcquitInfo(file_name=name.get("V", "") if name is not None else "",
                      accepted=bool(elements) and all(e.get("EtatAck") == "1"
                                                      for e in elements),
                      elements=elements)


def _header(info: PesInfo, today: date, code_tag: str = "CodCol") -> str:
    label = f"<LibelleColBud V={quoteattr(info.label)}/>" if info.label else ""
    return (f"<EnTetePES><DteStr V=\"{today.isoformat()}\"/>"
            f"<IdPost V={quoteattr(info.poste)}/><IdColl V={quoteattr(info.collectivity)}/>"
            f"<{code_tag} V={quoteattr(info.code_col)}/><CodBud V={quoteattr(info.code_bud)}/>"
            f"{label}</EnTetePES>")


def build_acquit(info: PesInfo, *, accepted: bool = True, today: date | None = None) -> bytes:
    """The PES_ACQUIT the treasury returns for ``info`` (one element per bordereau)."""
    today = today or date.today()
    state = "1" if accepted else "0"
    elements = "".join(
        f"<ElementACQUIT><DomaineAck V=\"5\"/><EtatAck V=\"{state}\"/>"
        f"<NumBord V={quoteattr(b['IdBord'] or '0')}/>"
        f"<ExerciceBord V={quoteattr(b['Exer'] or str(today.year))}/></ElementACQUIT>"
        for b in info.bordereaux) or (
        f"<ElementACQUIT><DomaineAck V=\"1\"/><EtatAck V=\"{state}\"/></ElementACQUIT>")
    xml = (f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<n:PES_ACQUIT xmlns:n="{ACQUIT_NS}">'
           f"<Enveloppe><Parametres><Version V=\"2\"/><TypFic V={quoteattr(info.file_type)}/>"
           f"<NomFic V={quoteattr(info.file_name)}/></Parametres><Emetteur>"
           "<Sigle V=\"HELIOS\"/><Adresse V=\"DGFIP\"/></Emetteur></Enveloppe>"
           f"{_header(info, today)}<ACQUIT><EnTeteAcquit><IdVer V=\"2\"/></EnTeteAcquit>"
           f"{elements}</ACQUIT></n:PES_ACQUIT>\n")
    return xml.encode("iso-8859-1", "replace")


def build_retour(info: PesInfo, *, today: date | None = None) -> bytes:
    """A PES_Retour (envelope and header: the treasury's return of the file)."""
    today = today or date.today()
    xml = (f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<n:PES_Retour xmlns:n="{RETOUR_NS}">'
           "<Enveloppe><Parametres><Version V=\"2\"/><TypFic V=\"PESRETOUR\"/>"
           f"<NomFic V={quoteattr('RETOUR_' + (info.file_name or 'PES'))}/></Parametres>"
           f"</Enveloppe>{_header(info, today, 'CodColl')}</n:PES_Retour>\n")
    return xml.encode("iso-8859-1", "replace")


def check_retour(data: bytes) -> str | None:
    """``None`` when ``data`` is a valid PES_Retour, else the schema's first message."""
    try:
        root = parse_xml(data, what="PES_Retour")
    except XmlRefused as exc:
        return str(exc)
    errors = xsd_errors(schema("retour"), root)
    return str(errors[0]) if errors else None


@registers("helios")
class HeliosMetadata(BaseModel):
    """Metadata of a PES Aller (flow ``helios``)."""

    model_config = {"extra": "forbid"}

    title: SingleLine = Field(default="", max_length=500)
    budget: SingleLine = Field(default="", max_length=100)
    sign: bool = True  # seal every bordereau (XAdES) before sending
    archive: bool = True  # False: not sent to the archive (SAE)
    description: MultiLine = Field(default="", max_length=2000)
