"""SEDA 2.1 / 2.2 messages: ArchiveTransfer (built here), Acknowledgement and
ArchiveTransferReply (read here, tolerantly: As@lae and Vitam replies do not always
pass their schema; written by ``archive_side`` for the simulator), with local
validation against the official schemas shipped in ``schemas/xsd/seda-2.x/``.

The two versions share their structure for what the bus writes; only the
namespace differs (2.2 adds optional elements the bus does not use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from lxml import etree

import schemas
from schemas.xmlschemas import load_xsd, xsd_errors

SEDA_VERSIONS = ("2.1", "2.2")
XSD_DIR = Path(schemas.__file__).resolve().parent / "xsd"
# MessageDigest/@algorithm: As@lae takes the XML-Enc URIs (Pastell's As@lae SEDA
# generators), Vitam the DigestAlgorithmCodeList names ("SHA-512"); both are read.
DIGEST_ALGORITHMS = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}
DIGEST_CODE_NAMES = {"sha256": "SHA-256", "sha512": "SHA-512"}
DIGEST_SPELLINGS = ("xmlenc", "codelist")
ACCEPTED = "000"
LEVELS = ("Fonds", "Subfonds", "Class", "Collection", "Series", "Subseries", "RecordGrp",
          "SubGrp", "File", "Item", "OtherLevel")
FINAL_ACTIONS = ("Keep", "Destroy")


class SedaError(ValueError):
    """A SEDA message is malformed, of an unknown version or not valid against its schema."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line


def namespace(version: str) -> str:
    """The XML namespace of SEDA ``version`` (``2.1`` or ``2.2``)."""
    if version not in SEDA_VERSIONS:
        raise SedaError(f"unknown SEDA version {version!r} (known: {', '.join(SEDA_VERSIONS)})")
    return f"fr:gouv:culture:archivesdefrance:seda:v{version}"


def version_of(root: etree._Element) -> str:
    """The SEDA version of a parsed message, from its root namespace."""
    ns = etree.QName(root).namespace or ""
    for version in SEDA_VERSIONS:
        if ns == namespace(version):
            return version
    raise SedaError(f"root element {etree.QName(root).localname} is not in a SEDA 2.x "
                    f"namespace ({ns or 'no namespace'})")


def schema(version: str) -> etree.XMLSchema:
    """The official SEDA ``version`` schema (loaded once, offline)."""
    namespace(version)
    folder = XSD_DIR / f"seda-{version}"
    return load_xsd(folder / f"seda-{version}-main.xsd", folder)


def parse(data: bytes) -> etree._Element:
    """Parse XML safely (no network, no entities); ``SedaError`` if not well-formed."""
    try:
        return etree.fromstring(data, etree.XMLParser(no_network=True, resolve_entities=False,
                                                      huge_tree=True))
    except etree.XMLSyntaxError as exc:
        raise SedaError(f"not well-formed XML: {exc}") from None


def validate(data: bytes | etree._Element, expected_root: str | None = None) -> str:
    """Validate a SEDA message against the schema of its version; return the version."""
    root = parse(data) if isinstance(data, bytes) else data
    version = version_of(root)
    name = etree.QName(root).localname
    if expected_root is not None and name != expected_root:
        raise SedaError(f"expected a {expected_root}, got a {name}")
    errors = xsd_errors(schema(version), root.getroottree())
    if errors:
        err = errors[0]
        raise SedaError(f"{name} is not valid SEDA {version}: {err.message}", line=err.line)
    return version


# --- building an ArchiveTransfer ----------------------------------------------------


@dataclass
class Agency:
    """An organisation named by its identifier (and optionally its name)."""

    identifier: str
    name: str = ""


@dataclass
class Rule:
    """An access or appraisal rule: rule identifier (or duration), start, final action."""

    rule: str
    start_date: date | None = None
    final_action: str | None = None  # appraisal rules only: Keep or Destroy


@dataclass
class DataObject:
    """One file of the SIP (a BinaryDataObject)."""

    id: str
    uri: str
    filename: str
    size: int
    digest: str
    algorithm: str = "sha256"
    mime_type: str = "application/octet-stream"


@dataclass
class Keyword:
    content: str
    type: str | None = None  # SEDA KeywordType: subject, corpname, geogname, ...


@dataclass
class Unit:
    """An ArchiveUnit: description, rules, its data objects and sub-units."""

    id: str
    title: str
    level: str = "Item"
    description: str = ""
    keywords: list[Keyword] = field(default_factory=list)
    document_type: str | None = None
    originating_agency: Agency | None = None
    start_date: date | None = None
    end_date: date | None = None
    access_rule: Rule | None = None
    appraisal_rule: Rule | None = None
    objects: list[str] = field(default_factory=list)
    children: list[Unit] = field(default_factory=list)
    system_id: str | None = None  # the bus's identifier of the document


@dataclass
class Transfer:
    """Everything an ArchiveTransfer says."""

    version: str
    message_id: str
    archival_agency: Agency
    transferring_agency: Agency
    units: list[Unit]
    objects: list[DataObject]
    comment: str = ""
    archival_agreement: str | None = None
    archival_profile: str | None = None
    service_level: str | None = None
    originating_agency: Agency | None = None
    access_rule: Rule | None = None
    appraisal_rule: Rule | None = None
    date: datetime = field(default_factory=lambda: datetime.now(UTC))
    digest_spelling: str = "xmlenc"  # or "codelist" (Vitam): see DIGEST_ALGORITHMS


class _Writer:
    """Element factory bound to one SEDA namespace."""

    def __init__(self, version: str) -> None:
        self.ns = namespace(version)

    def el(self, parent: etree._Element | None, tag: str, text: str | None = None,
           **attrs: str) -> etree._Element:
        qname = f"{{{self.ns}}}{tag}"
        node = (etree.Element(qname, nsmap={None: self.ns}) if parent is None
                else etree.SubElement(parent, qname))
        for key, value in attrs.items():
            node.set(key, value)
        if text is not None:
            node.text = text
        return node

    def agency(self, parent: etree._Element, tag: str, agency: Agency) -> None:
        node = self.el(parent, tag)
        self.el(node, "Identifier", agency.identifier)

    def rules(self, parent: etree._Element, appraisal: Rule | None, access: Rule | None) -> None:
        if appraisal is not None:
            node = self.el(parent, "AppraisalRule")
            self.el(node, "Rule", appraisal.rule)
            if appraisal.start_date:
                self.el(node, "StartDate", appraisal.start_date.isoformat())
            self.el(node, "FinalAction", appraisal.final_action or "Keep")
        if access is not None:
            node = self.el(parent, "AccessRule")
            self.el(node, "Rule", access.rule)
            if access.start_date:
                self.el(node, "StartDate", access.start_date.isoformat())


def build_archive_transfer(transfer: Transfer) -> bytes:
    """The ArchiveTransfer XML (UTF-8) of ``transfer``; validate it with ``validate``."""
    w = _Writer(transfer.version)
    root = w.el(None, "ArchiveTransfer")
    if transfer.comment:
        w.el(root, "Comment", transfer.comment)
    w.el(root, "Date", transfer.date.isoformat(timespec="seconds"))
    w.el(root, "MessageIdentifier", transfer.message_id)
    if transfer.archival_agreement:
        w.el(root, "ArchivalAgreement", transfer.archival_agreement)
    codes = w.el(root, "CodeListVersions")
    for tag in ("ReplyCodeListVersion", "MessageDigestAlgorithmCodeListVersion",
                "MimeTypeCodeListVersion", "FileFormatCodeListVersion"):
        w.el(codes, tag, "CodeListVersion0")
    package = w.el(root, "DataObjectPackage")
    if transfer.digest_spelling not in DIGEST_SPELLINGS:
        raise SedaError(f"digest spelling {transfer.digest_spelling!r} is not one of "
                        f"{', '.join(DIGEST_SPELLINGS)}")
    names = DIGEST_ALGORITHMS if transfer.digest_spelling == "xmlenc" else DIGEST_CODE_NAMES
    for obj in transfer.objects:
        _data_object(w, package, obj, names)
    descriptive = w.el(package, "DescriptiveMetadata")
    for unit in transfer.units:
        _unit(w, descriptive, unit)
    management = w.el(package, "ManagementMetadata")
    if transfer.archival_profile:
        w.el(management, "ArchivalProfile", transfer.archival_profile)
    if transfer.service_level:
        w.el(management, "ServiceLevel", transfer.service_level)
    if transfer.originating_agency:
        w.el(management, "OriginatingAgencyIdentifier", transfer.originating_agency.identifier)
    w.rules(management, transfer.appraisal_rule, transfer.access_rule)
    w.agency(root, "ArchivalAgency", transfer.archival_agency)
    w.agency(root, "TransferringAgency", transfer.transferring_agency)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _data_object(w: _Writer, parent: etree._Element, obj: DataObject,
                 names: dict[str, str]) -> None:
    if obj.algorithm not in DIGEST_ALGORITHMS:
        raise SedaError(f"data object {obj.filename!r}: unknown digest algorithm "
                        f"{obj.algorithm!r} (known: {', '.join(DIGEST_ALGORITHMS)})")
    node = w.el(parent, "BinaryDataObject", id=obj.id)
    w.el(node, "Uri", obj.uri)
    w.el(node, "MessageDigest", obj.digest, algorithm=names[obj.algorithm])
    w.el(node, "Size", str(obj.size))
    fmt = w.el(node, "FormatIdentification")
    w.el(fmt, "MimeType", obj.mime_type)
    info = w.el(node, "FileInfo")
    w.el(info, "Filename", obj.filename)


def _unit(w: _Writer, parent: etree._Element, unit: Unit) -> None:
    if unit.level not in LEVELS:
        raise SedaError(f"archive unit {unit.title!r}: description level {unit.level!r} is "
                        f"not a SEDA level ({', '.join(LEVELS)})")
    node = w.el(parent, "ArchiveUnit", id=unit.id)
    if unit.access_rule or unit.appraisal_rule:
        w.rules(w.el(node, "Management"), unit.appraisal_rule, unit.access_rule)
    content = w.el(node, "Content")
    w.el(content, "DescriptionLevel", unit.level)
    w.el(content, "Title", unit.title)
    if unit.system_id:
        w.el(content, "OriginatingSystemId", unit.system_id)
    if unit.description:
        w.el(content, "Description", unit.description)
    if unit.document_type:
        w.el(content, "DocumentType", unit.document_type)
    w.el(content, "Language", "fr")
    w.el(content, "DescriptionLanguage", "fr")
    for kw in unit.keywords:
        knode = w.el(content, "Keyword")
        w.el(knode, "KeywordContent", kw.content)
        if kw.type:
            w.el(knode, "KeywordType", kw.type)
    if unit.originating_agency:
        w.agency(content, "OriginatingAgency", unit.originating_agency)
    if unit.start_date:
        w.el(content, "StartDate", unit.start_date.isoformat())
    if unit.end_date:
        w.el(content, "EndDate", unit.end_date.isoformat())
    for child in unit.children:
        _unit(w, node, child)
    for ref in unit.objects:
        w.el(w.el(node, "DataObjectReference"), "DataObjectReferenceId", ref)


# --- reading messages ---------------------------------------------------------------


def _text(node: etree._Element, path: str, ns: str) -> str | None:
    found = node.find(path.replace("s:", f"{{{ns}}}"))
    return found.text.strip() if found is not None and found.text else None


ACCEPTED_CODES = {ACCEPTED: "As@lae", "OK": "Vitam", "WARNING": "Vitam"}


def _reading(data: bytes, expected: str) -> tuple[etree._Element, str, str, str | None]:
    """Parse a reply tolerantly: (root, version, namespace, schema error or None).

    Only what cannot be read at all (not XML, not SEDA 2.x, another message) raises
    ``SedaError``; a reply that fails its schema is still read, with the schema's words.
    """
    root = parse(data)
    version = version_of(root)
    name = etree.QName(root).localname
    if name != expected:
        raise SedaError(f"expected a {expected}, got a {name}")
    try:
        validate(root, expected)
        problem = None
    except SedaError as exc:
        problem = str(exc)
    return root, version, namespace(version), problem


@dataclass
class Acknowledgement:
    """An Acknowledgement: the archive received the transfer."""

    version: str
    message_id: str
    received_id: str
    date: str
    comment: str = ""
    schema_error: str | None = None  # the reply was read although its schema refuses it


def parse_acknowledgement(data: bytes) -> Acknowledgement:
    """Read an Acknowledgement (``SedaError`` only if it cannot be read as one)."""
    root, version, ns, problem = _reading(data, "Acknowledgement")
    received = _text(root, "s:MessageReceivedIdentifier", ns)
    if not received:
        raise SedaError("Acknowledgement has no MessageReceivedIdentifier"
                        + (f" ({problem})" if problem else ""))
    return Acknowledgement(
        version=version, message_id=_text(root, "s:MessageIdentifier", ns) or "",
        received_id=received, date=_text(root, "s:Date", ns) or "",
        comment=_text(root, "s:Comment", ns) or "", schema_error=problem)


@dataclass
class TransferReply:
    """An ArchiveTransferReply: accepted (As@lae ``000``, Vitam ``OK`` or ``WARNING``)
    with the archival identifiers, or refused (any other ReplyCode)."""

    version: str
    message_id: str
    request_id: str
    reply_code: str
    date: str
    comment: str = ""
    archival_id: str | None = None  # identifier the archive gave the (first) root unit
    unit_ids: dict[str, str] = field(default_factory=dict)  # unit id -> archival identifier
    grant_date: str = ""
    schema_error: str | None = None  # the reply was read although its schema refuses it

    @property
    def accepted(self) -> bool:
        return self.reply_code in ACCEPTED_CODES

    @property
    def warning(self) -> bool:
        """Vitam accepted the transfer with warnings."""
        return self.reply_code == "WARNING"


def _unit_ids(root: etree._Element, ns: str) -> tuple[dict[str, str], list[str]]:
    """Archival identifier of every unit (As@lae: ArchivalAgencyArchiveUnitIdentifier;
    Vitam: SystemId) and those of the root units, in order."""
    unit_ids: dict[str, str] = {}
    roots: list[str] = []
    descriptive = root.find(f"{{{ns}}}DataObjectPackage/{{{ns}}}DescriptiveMetadata")
    if descriptive is None:
        return unit_ids, roots
    for unit in descriptive.iter(f"{{{ns}}}ArchiveUnit"):
        ident = _text(unit, "s:Content/s:ArchivalAgencyArchiveUnitIdentifier", ns) or \
            _text(unit, "s:Content/s:SystemId", ns)
        if ident:
            unit_ids[unit.get("id", "")] = ident
            if unit.getparent() is descriptive:
                roots.append(ident)
    return unit_ids, roots


def _reply_comment(root: etree._Element, ns: str) -> str:
    """The Comment, else (Vitam) the last operation event's OutcomeDetailMessage."""
    comment = _text(root, "s:Comment", ns)
    if comment:
        return comment
    events = root.findall(f"{{{ns}}}Operation/{{{ns}}}Event")
    detail = _text(events[-1], "s:OutcomeDetailMessage", ns) if events else None
    return " ".join(detail.split()) if detail else ""


def parse_transfer_reply(data: bytes) -> TransferReply:
    """Read an ArchiveTransferReply (``SedaError`` only if it has no ReplyCode to read)."""
    root, version, ns, problem = _reading(data, "ArchiveTransferReply")
    code = _text(root, "s:ReplyCode", ns)
    if not code:
        raise SedaError("ArchiveTransferReply has no ReplyCode"
                        + (f" ({problem})" if problem else ""))
    unit_ids, roots = _unit_ids(root, ns)
    return TransferReply(
        version=version, message_id=_text(root, "s:MessageIdentifier", ns) or "",
        request_id=_text(root, "s:MessageRequestIdentifier", ns) or "",
        reply_code=code, date=_text(root, "s:Date", ns) or "",
        comment=_reply_comment(root, ns), archival_id=roots[0] if roots else None,
        unit_ids=unit_ids, grant_date=_text(root, "s:GrantDate", ns) or "",
        schema_error=problem)
