"""The archive's side of SEDA messages (what the simulator does): read back an
ArchiveTransfer, write the Acknowledgement and ArchiveTransferReply."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from connectors.sae.seda import (
    ACCEPTED,
    DIGEST_ALGORITHMS,
    DIGEST_CODE_NAMES,
    Agency,
    DataObject,
    _text,
    _Writer,
    namespace,
    parse,
    validate,
    version_of,
)


@dataclass
class TransferSummary:
    """What an archive needs to read back from an ArchiveTransfer."""

    version: str
    message_id: str
    archival_agency: str
    transferring_agency: str
    objects: list[DataObject]
    units: list[tuple[str, str]]  # (unit id, title), depth first
    comment: str = ""


def read_transfer(data: bytes) -> TransferSummary:
    """Validate and summarise an ArchiveTransfer."""
    root = parse(data)
    version = validate(root, "ArchiveTransfer")
    ns = namespace(version)
    algorithms = {uri: name for name, uri in DIGEST_ALGORITHMS.items()} | \
        {code: name for name, code in DIGEST_CODE_NAMES.items()}
    objects = []
    for node in root.iter(f"{{{ns}}}BinaryDataObject"):
        digest = node.find(f"{{{ns}}}MessageDigest")
        objects.append(DataObject(
            id=node.get("id", ""), uri=_text(node, "s:Uri", ns) or "",
            filename=_text(node, "s:FileInfo/s:Filename", ns) or "",
            size=int(_text(node, "s:Size", ns) or -1),
            digest=(digest.text or "").strip() if digest is not None else "",
            algorithm=algorithms.get(digest.get("algorithm", "") if digest is not None else "",
                                     "unknown"),
            mime_type=_text(node, "s:FormatIdentification/s:MimeType", ns) or ""))
    units = [(u.get("id", ""), _text(u, "s:Content/s:Title", ns) or "")
             for u in root.iter(f"{{{ns}}}ArchiveUnit")]
    return TransferSummary(
        version=version, message_id=_text(root, "s:MessageIdentifier", ns) or "",
        archival_agency=_text(root, "s:ArchivalAgency/s:Identifier", ns) or "",
        transferring_agency=_text(root, "s:TransferringAgency/s:Identifier", ns) or "",
        objects=objects, units=units, comment=_text(root, "s:Comment", ns) or "")


# --- replies (what an archive writes; used by the simulator) -------------------------


def build_acknowledgement(version: str, *, message_id: str, received_id: str,
                          sender: str, receiver: str, comment: str = "") -> bytes:
    """An Acknowledgement of transfer ``received_id`` from ``sender`` (the archive)."""
    w = _Writer(version)
    root = w.el(None, "Acknowledgement")
    if comment:
        w.el(root, "Comment", comment)
    w.el(root, "Date", datetime.now(UTC).isoformat(timespec="seconds"))
    w.el(root, "MessageIdentifier", message_id)
    w.el(root, "MessageReceivedIdentifier", received_id)
    w.agency(root, "Sender", Agency(sender))
    w.agency(root, "Receiver", Agency(receiver))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def build_transfer_reply(transfer: bytes, *, message_id: str, reply_code: str,
                         comment: str = "", unit_ids: dict[str, str] | None = None) -> bytes:
    """The ArchiveTransferReply to ``transfer``; when accepted it repeats the package with
    the archival identifier of every unit (``unit_ids``: unit id -> identifier)."""
    original = parse(transfer)
    version = version_of(original)
    ns = namespace(version)
    w = _Writer(version)
    root = w.el(None, "ArchiveTransferReply")
    if comment:
        w.el(root, "Comment", comment)
    w.el(root, "Date", datetime.now(UTC).isoformat(timespec="seconds"))
    w.el(root, "MessageIdentifier", message_id)
    w.el(root, "CodeListVersions")
    if reply_code == ACCEPTED:
        package = original.find(f"{{{ns}}}DataObjectPackage")
        if package is not None:
            for unit in package.iter(f"{{{ns}}}ArchiveUnit"):
                ident = (unit_ids or {}).get(unit.get("id", ""))
                if ident:
                    _insert_archival_id(unit.find(f"{{{ns}}}Content"), ns, ident)
            root.append(package)
    w.el(root, "ReplyCode", reply_code)
    w.el(root, "MessageRequestIdentifier", _text(original, "s:MessageIdentifier", ns) or "")
    w.el(root, "GrantDate", datetime.now(UTC).isoformat(timespec="seconds"))
    w.agency(root, "ArchivalAgency",
             Agency(_text(original, "s:ArchivalAgency/s:Identifier", ns) or ""))
    w.agency(root, "TransferringAgency",
             Agency(_text(original, "s:TransferringAgency/s:Identifier", ns) or ""))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _insert_archival_id(content: etree._Element | None, ns: str, ident: str) -> None:
    """Put ArchivalAgencyArchiveUnitIdentifier at its place in a unit's Content."""
    if content is None:
        return
    before = {f"{{{ns}}}{t}" for t in ("DescriptionLevel", "Title", "FilePlanPosition",
                                        "SystemId", "OriginatingSystemId")}
    position = 0
    for i, child in enumerate(content):
        if child.tag in before:
            position = i + 1
    node = etree.Element(f"{{{ns}}}ArchivalAgencyArchiveUnitIdentifier")
    node.text = ident
    content.insert(position, node)
