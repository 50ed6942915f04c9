"""One SIP's exchange with the archive: package, keep the manifest, send once, then
collect the Acknowledgement and the ArchiveTransferReply. Used by the archive step
(one document) and by the batcher (one batch).

Replies are read tolerantly and never dropped: every message the archive sends is
stored before it is read; one that fails its SEDA schema is still read (As@lae's
``000`` or Vitam's ``OK``/``WARNING``/``KO``) and its schema message is kept in
``Replies.problems``; one that cannot be read at all is an ``UnreadableReply`` that
names the stored copy."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.objectstore import ObjectStore
from connectors.errors import PermanentError
from connectors.sae import seda
from connectors.sae.asalae import AsalaeClient, TransferLookup
from connectors.sae.sip import SipFile, write_sip
from schemas.envelope import FileRef, FileRole


def transfer_record_key(tenant: str, transfer_id: str) -> str:
    """Where the bus keeps what it sent under ``transfer_id`` (its manifest)."""
    return f"archive/transfers/{tenant}/{transfer_id}.json"


@dataclass
class Replies:
    """What the archive answered so far (references to the stored messages)."""

    ack: FileRef | None = None
    atr: FileRef | None = None
    reply: seda.TransferReply | None = None
    problems: list[str] = field(default_factory=list)  # schema messages of kept replies


class UnreadableReply(PermanentError):
    """The archive sent a reply that cannot be read; ``kept`` is its stored copy."""

    def __init__(self, message: str, kept: FileRef) -> None:
        super().__init__(message, partner="sae")
        self.kept = kept


async def send_sip(store: ObjectStore, sae: AsalaeClient, tenant: str, transferring: str,
                   transfer_id: str, files: list[SipFile],
                   make_manifest: Callable[[list[seda.DataObject]], bytes], *,
                   algorithm: str, tmp_dir: Path | None = None
                   ) -> tuple[FileRef, TransferLookup]:
    """Build the SIP on disk, keep its manifest, and send it unless the archive has it."""
    with tempfile.TemporaryDirectory(prefix="sip-", dir=tmp_dir) as folder:
        path = Path(folder) / f"{transfer_id}.{sae.sip_format}"
        package = await asyncio.to_thread(write_sip, path, files, make_manifest,
                                          fmt=sae.sip_format, algorithm=algorithm)
        manifest = await asyncio.to_thread(
            store.put_bytes, tenant, package.manifest, name=f"{transfer_id}-manifest.xml",
            role=FileRole.ANNEX, media_type="application/xml")
        await asyncio.to_thread(store.put_json, transfer_record_key(tenant, transfer_id), {
            "transfer_id": transfer_id, "manifest": manifest.model_dump(mode="json"),
            "sip_bytes": package.size, "objects": len(package.objects),
            "format": package.format})
        found = await sae.send(transferring, transfer_id, package)
    return manifest, found


def sent_manifest(store: ObjectStore, tenant: str, transfer_id: str) -> FileRef | None:
    """The manifest kept when ``transfer_id`` was sent (``None`` if unknown here)."""
    record = store.get_json(transfer_record_key(tenant, transfer_id))
    return FileRef.model_validate(record["manifest"]) if record else None


async def fetch_replies(store: ObjectStore, sae: AsalaeClient, tenant: str, transferring: str,
                        transfer_id: str, *, have_ack: FileRef | None,
                        found: TransferLookup | None = None) -> Replies:
    """Fetch (or take from ``found``) the ACK then the ATR; keep and parse them."""
    out = Replies(ack=have_ack)
    if out.ack is None:
        ack = found.ack if found and found.ack else \
            await sae.acknowledgement(transferring, transfer_id)
        if ack is not None:
            out.ack = await _store(store, tenant, ack, f"{transfer_id}-ack.xml")
            parsed = _read(seda.parse_acknowledgement, ack, "Acknowledgement", transfer_id,
                           out.ack)
            _note(out, "Acknowledgement", parsed.schema_error)
    atr = found.atr if found and found.atr else \
        await sae.transfer_reply(transferring, transfer_id)
    if atr is not None:
        out.atr = await _store(store, tenant, atr, f"{transfer_id}-atr.xml")
        out.reply = _read(seda.parse_transfer_reply, atr, "ArchiveTransferReply", transfer_id,
                          out.atr)
        _note(out, "ArchiveTransferReply", out.reply.schema_error)
    return out


async def _store(store: ObjectStore, tenant: str, data: bytes, name: str) -> FileRef:
    return await asyncio.to_thread(store.put_bytes, tenant, data, name=name,
                                   role=FileRole.ANNEX, media_type="application/xml")


def _note(out: Replies, what: str, problem: str | None) -> None:
    if problem:
        out.problems.append(f"{what} kept although its schema refuses it: {problem}")


def _read(parser: Callable[[bytes], Any], data: bytes, what: str, transfer_id: str,
          kept: FileRef) -> Any:
    try:
        return parser(data)
    except seda.SedaError as exc:
        raise UnreadableReply(f"archive sent an unreadable {what} for transfer "
                              f"{transfer_id} (kept as object {kept.sha256}): {exc}",
                              kept) from None


def refusal_message(transfer_id: str, reply: seda.TransferReply) -> str:
    """Operator-readable words for a refused transfer, with the reply code."""
    return (f"archive refused transfer {transfer_id}: ReplyCode {reply.reply_code}"
            f"{': ' + reply.comment if reply.comment else ''}")
