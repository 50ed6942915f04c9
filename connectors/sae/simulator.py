"""An As@lae archive simulator: the REST paths of ``connectors.sae.asalae`` (see
``connectors/README.md``), SEDA 2.1/2.2 replies of the transfer's own version, delays and outcomes.

A transfer arrives whole (``POST /sedaMessages`` with ``seda_message`` and
``attachments``, the attachments at most ``max_attachment_bytes``, 2 MiB as As@lae) or
in chunks (``POST /sedaMessages`` with ``send_chunked_attachments=true`` answers a
``chunk_session_identifier`` and ``chunk_security_identifier``, then one ``POST
/sedaAttachmentsChunkFiles`` per chunk; the transfer exists once the last chunk is in).
It is checked as an archive would: the manifest against its SEDA schema, every
BinaryDataObject against the attachments (present, size, digest, in either digest
spelling). A transfer is visible from its receipt: until a reply is due (while it is
checked, then until the delays below) the message URL answers HTTP 500 ``Transfert en
cours de traitement``; an unknown transfer is a 404. It is acknowledged after ``ack_delay``
seconds and answered after ``atr_delay`` seconds:

- ``000`` accepted, with an archival identifier per ArchiveUnit (``AE_<year>_<n>`` for
  the transfer, ``AE_<year>_<n>_<i>`` below it), repeated in the ATR's package;
- ``200`` the manifest is not valid SEDA; ``201`` a data object is missing or differs;
- ``300`` refused by the archivist: a ``[sim:refuse]`` marker in a title or comment, or
  the ``refuse`` default scenario (``POST /_sim/config``).

Control: ``GET /_sim/counts`` (POSTs per transferring agency/transfer id),
``GET /_sim/transfers``, ``POST /_sim/failures`` (a FailurePlan), ``POST /_sim/config``
(ack_delay, atr_delay, default_scenario). Failures are drawn per API call: ``error``
answers 503 before any effect, ``timeout`` applies the effect and then hangs.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
import tarfile
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from fastapi import FastAPI, Form, Response, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse

from connectors.frames import read_chunks
from connectors.sae import archive_side, seda
from connectors.simulator import (
    FailurePlan,
    HttpSimulator,
    SubmissionCounter,
)

MARKER = "[sim:refuse]"
MAX_ATTACHMENT = 2 * 1024 * 1024  # "asalae ne prend pas les pièces de plus de 2Mo"
NOT_YET = "Transfert en cours de traitement"
COMPRESSIONS = ("TARGZ", "ZIP", "TAR")
REASONS = {
    "300": "Transfert refusé par l'archiviste (simulateur)",
}


@dataclass
class SimTransfer:
    """One transfer as the archive keeps it."""

    key: str
    number: int
    summary: archive_side.TransferSummary | None
    manifest: bytes
    received: float
    reply_code: str  # "" while the transfer is being checked
    reason: str
    ack: bytes | None = None
    atr: bytes | None = None
    unit_ids: dict[str, str] = field(default_factory=dict)


class ChunkSession:
    """One chunked upload: the manifest and the chunks received so far (on disk)."""

    def __init__(self, manifest: bytes, security: str) -> None:
        self.manifest = manifest
        self.security = security
        self.total: int | None = None
        self.file_name = ""
        self.chunks: dict[int, IO[bytes]] = {}

    def problem(self, files: int, file_index: int, total: int, index: int,
                compression: str) -> str | None:
        if files != 1 or file_index != 1:
            return "one attachments file per transfer (number_of_files, file_index)"
        if compression not in COMPRESSIONS:
            return f"compression_algorithm {compression!r} not in {', '.join(COMPRESSIONS)}"
        if self.total not in (None, total) or not 1 <= index <= total:
            return f"chunk_index {index} does not fit number_of_chunks {total}"
        return None

    def add(self, index: int, total: int, data: bytes, file_name: str) -> None:
        self.total, self.file_name = total, file_name
        spool = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)  # noqa: SIM115
        spool.write(data)
        self.chunks.setdefault(index, spool)

    @property
    def complete(self) -> bool:
        return bool(self.total) and len(self.chunks) == self.total

    def assemble(self) -> IO[bytes]:
        whole = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller)
        for index in sorted(self.chunks):
            part = self.chunks[index]
            part.seek(0)
            for data in read_chunks(part):
                whole.write(data)
            part.close()
        whole.seek(0)
        return whole


class SaeSimulator(HttpSimulator):
    """The app, its transfers, failure plan, delays and submission counter."""

    title = "As@lae simulator"

    def counts(self) -> dict[str, Any]:
        return {"transfers": self.posts.snapshot(), "duplicates": self.posts.duplicates()}


    def __init__(self, failures: FailurePlan | None = None, *, ack_delay: float = 0.0,
                 atr_delay: float = 1.0, default_scenario: str = "accept",
                 max_attachment_bytes: int = MAX_ATTACHMENT) -> None:
        super().__init__(failures)
        self.max_attachment_bytes = max_attachment_bytes
        self.sessions: dict[str, ChunkSession] = {}
        self.ack_delay = ack_delay
        self.atr_delay = atr_delay
        self.default_scenario = default_scenario
        self.transfers: dict[str, SimTransfer] = {}
        self.posts = SubmissionCounter()
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self.app = self._build()

    # --- HTTP ---------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = self.new_app()
        sim = self

        @app.get("/_sim/transfers")
        async def transfers() -> list[dict]:
            return [{"key": t.key, "reply_code": t.reply_code, "reason": t.reason,
                     "objects": len(t.summary.objects) if t.summary else 0,
                     "units": len(t.summary.units) if t.summary else 0}
                    for t in sim.transfers.values()]

        @app.post("/_sim/config")
        async def set_config(config: dict) -> dict:
            for name in ("ack_delay", "atr_delay", "default_scenario"):
                if name in config:
                    setattr(sim, name, config[name])
            return config

        @app.get("/ping")
        async def ping() -> Response:
            await sim.failures.apply()
            return JSONResponse("webservices as@lae accessibles")

        @app.get("/versions")
        async def versions() -> dict:
            await sim.failures.apply()
            return {"application": "as@lae", "denomination": "simulateur demat-bus",
                    "version": "V2-sim"}

        @app.post("/sedaMessages")
        async def receive(seda_message: UploadFile, attachments: UploadFile | None = None,
                          send_chunked_attachments: str | None = Form(None)) -> Response:
            outcome = sim.failures.draw()
            if outcome == "error":
                return Response(status_code=503, content="injected failure")
            manifest = await seda_message.read()
            if send_chunked_attachments == "true":
                return JSONResponse(sim.open_session(manifest))
            if attachments is not None and (attachments.size or 0) > sim.max_attachment_bytes:
                return JSONResponse({"error": f"attachments over {sim.max_attachment_bytes} "
                                     "bytes: send them in chunks"}, status_code=400)
            attached = attachments.file if attachments is not None else None
            transfer = await asyncio.to_thread(sim.receive, manifest, attached)
            if transfer is None:
                return JSONResponse({"error": "seda_message is not a SEDA ArchiveTransfer"},
                                    status_code=400)
            if outcome == "timeout":  # the transfer is received, the answer is lost
                await asyncio.sleep(sim.failures.timeout_seconds)
            return JSONResponse("ok")

        @app.post("/sedaAttachmentsChunkFiles")
        async def chunk(chunk_content: UploadFile, session_identifier: str = Form(),
                        security_identifier: str = Form(), file_name: str = Form(),
                        number_of_chunks: int = Form(), chunk_index: int = Form(),
                        compression_algorithm: str = Form(), number_of_files: int = Form(1),
                        file_index: int = Form(1)) -> Response:
            outcome = sim.failures.draw()
            if outcome == "error":
                return Response(status_code=503, content="injected failure")
            session = sim.sessions.get(session_identifier)
            if session is None or session.security != security_identifier:
                return JSONResponse({"error": "unknown chunk session"}, status_code=404)
            problem = session.problem(number_of_files, file_index, number_of_chunks,
                                      chunk_index, compression_algorithm)
            if problem:
                return JSONResponse({"error": problem}, status_code=400)
            session.add(chunk_index, number_of_chunks, await chunk_content.read(), file_name)
            if session.complete:
                await asyncio.to_thread(sim.finish_session, session_identifier)
            if outcome == "timeout":
                await asyncio.sleep(sim.failures.timeout_seconds)
            return JSONResponse("ok")

        @app.get("/sedaMessages/{path:path}")
        async def message(path: str) -> Response:
            await sim.failures.apply()
            parts = dict(p.partition(":")[::2] for p in path.split("/") if ":" in p)
            key = f"{parts.get('originOrganizationIdentification', '')}/" \
                  f"{parts.get('originMessageIdentifier', '')}"
            if key not in sim.transfers:
                return PlainTextResponse("message not found", status_code=404)
            body = sim.reply(key, parts.get("message", ""))
            if body is None:
                return PlainTextResponse(NOT_YET, status_code=500)
            return Response(content=body, media_type="application/xml")

        return app

    # --- archive behaviour ---------------------------------------------------------

    def open_session(self, manifest: bytes) -> dict[str, str]:
        """A chunked upload of ``manifest``'s attachments begins."""
        ident = secrets.token_hex(8)
        self.sessions[ident] = ChunkSession(manifest, secrets.token_hex(16))
        return {"chunk_session_identifier": ident,
                "chunk_security_identifier": self.sessions[ident].security}

    def finish_session(self, ident: str) -> None:
        """Every chunk is in: the attachments are whole, the transfer is received."""
        session = self.sessions.pop(ident)
        with session.assemble() as whole:
            self.receive(session.manifest, whole)

    def receive(self, manifest: bytes, attachments: IO[bytes] | None) -> SimTransfer | None:
        """Record a transfer and decide its outcome; ``None`` if it is not one at all."""
        try:
            root = seda.parse(manifest)
            version = seda.version_of(root)
        except seda.SedaError:
            return None
        ns = seda.namespace(version)
        transfer_id = root.findtext(f"{{{ns}}}MessageIdentifier")
        transferring = root.findtext(f"{{{ns}}}TransferringAgency/{{{ns}}}Identifier")
        if not transfer_id or not transferring:
            return None
        key = f"{transferring.strip()}/{transfer_id.strip()}"
        self.posts.add(key)
        with self._lock:  # received, hence visible ("en cours de traitement") at once
            if key in self.transfers:
                return self.transfers[key]
            transfer = self.transfers[key] = SimTransfer(
                key=key, number=next(self._numbers), summary=None, manifest=manifest,
                received=time.monotonic(), reply_code="", reason="")
        transfer.summary, transfer.reply_code, transfer.reason = \
            self._check(manifest, attachments)
        transfer.received = time.monotonic()
        return transfer

    def _check(self, manifest: bytes, attachments: IO[bytes] | None
               ) -> tuple[archive_side.TransferSummary | None, str, str]:
        try:
            summary = archive_side.read_transfer(manifest)
        except seda.SedaError as exc:
            return None, "200", f"bordereau non conforme: {exc}"
        problem = _check_objects(summary, attachments)
        if problem:
            return summary, "201", problem
        refused = self.default_scenario == "refuse" or MARKER in summary.comment or any(
            MARKER in title for _, title in summary.units)
        if refused:
            return summary, "300", REASONS["300"]
        return summary, seda.ACCEPTED, "Transfert accepté"

    def reply(self, key: str, message: str) -> bytes | None:
        """The ACK or ATR of a transfer once due, else ``None``."""
        transfer = self.transfers.get(key)
        if transfer is None or not transfer.reply_code:  # unknown, or still being checked
            return None
        age = time.monotonic() - transfer.received
        version = transfer.summary.version if transfer.summary else \
            seda.version_of(seda.parse(transfer.manifest))
        transferring, transfer_id = key.split("/", 1)
        if message == "Acknowledgement" and age >= self.ack_delay:
            if transfer.ack is None:
                archive = transfer.summary.archival_agency if transfer.summary else "SAE"
                transfer.ack = archive_side.build_acknowledgement(
                    version, message_id=f"ACK_{transfer.number}",
                    received_id=transfer_id, sender=archive, receiver=transferring,
                    comment="Votre transfert d'archive a été pris en compte (simulateur)")
            return transfer.ack
        if message == "ArchiveTransferReply" and age >= max(self.atr_delay, self.ack_delay):
            if transfer.atr is None:
                transfer.unit_ids = self._unit_ids(transfer)
                comment = transfer.reason if transfer.reply_code == seda.ACCEPTED else \
                    f"{transfer.reason} (Archive refusée - code de retour : " \
                    f"{transfer.reply_code})"
                transfer.atr = archive_side.build_transfer_reply(
                    transfer.manifest, message_id=f"ATR_{transfer.number}",
                    reply_code=transfer.reply_code, comment=comment,
                    unit_ids=transfer.unit_ids)
            return transfer.atr
        return None

    @staticmethod
    def _unit_ids(transfer: SimTransfer) -> dict[str, str]:
        if transfer.reply_code != seda.ACCEPTED or transfer.summary is None:
            return {}
        base = f"AE_{datetime.now(UTC).year}_{transfer.number}"
        units = transfer.summary.units
        ids = {units[0][0]: base} if units else {}
        ids.update({uid: f"{base}_{i:04d}" for i, (uid, _) in enumerate(units[1:], start=1)})
        return ids



def _check_objects(summary: archive_side.TransferSummary, attachments: IO[bytes] | None
                   ) -> str | None:
    """Compare the manifest's data objects with the received archive; a problem or None."""
    if not summary.objects:
        return None
    if attachments is None:
        return "aucune pièce jointe: les objets-données sont absents"
    attachments.seek(0)
    try:
        members = _members(attachments)
    except (zipfile.BadZipFile, tarfile.TarError) as exc:
        return f"pièces jointes illisibles: {exc}"
    for obj in summary.objects:
        found = members.get(obj.uri)
        if found is None:
            return f"objet-données {obj.id} absent de l'archive ({obj.uri})"
        size, digests = found
        if size != obj.size or digests.get(obj.algorithm) != obj.digest:
            return f"objet-données {obj.id}: taille ou empreinte différente ({obj.uri})"
    return None


def _members(fh: IO[bytes]) -> dict[str, tuple[int, dict[str, str]]]:
    """Size and digests of every file of a ZIP or tar archive, streamed."""
    out: dict[str, tuple[int, dict[str, str]]] = {}
    if zipfile.is_zipfile(fh):
        fh.seek(0)
        with zipfile.ZipFile(fh) as zf:
            for info in zf.infolist():
                with zf.open(info) as member:
                    out[info.filename] = _digest(member)
        return out
    fh.seek(0)
    with tarfile.open(fileobj=fh, mode="r:*") as tf:
        for info in tf:
            member = tf.extractfile(info) if info.isfile() else None
            if member is not None:
                out[info.name] = _digest(member)
    return out


def _digest(fh: IO[bytes]) -> tuple[int, dict[str, str]]:
    hashes = {name: hashlib.new(name) for name in ("sha256", "sha512")}
    size = 0
    for chunk in read_chunks(fh):
        size += len(chunk)
        for h in hashes.values():
            h.update(chunk)
    return size, {name: h.hexdigest() for name, h in hashes.items()}


def simulator_app(plan: FailurePlan, **config: Any) -> FastAPI:
    """The app served by ``demat simulators`` (short delays: the demo ends in seconds)."""
    return SaeSimulator(plan, **({"ack_delay": 0.0, "atr_delay": 0.5} | config)).app
