"""S²LOW ACTES API client (the legality-control transmission platform).

S²LOW answers API calls (``api=1``) in ISO-8859-1 text: ``OK`` or ``KO`` on the first
line, then the result. ``actes_transac_get_status.php`` answers ``OK\\nSTATUS\\n`` followed by
the reply XML stored with that status (ARActe, AnomalieActe, ARAnnulation, a letter...)
and, for status -1, the error message.

Exactly-once: S²LOW refuses a second acte with the same internal number for an authority,
and ``find_transaction`` looks an acte up before (re)sending it; ``submit_acte`` combines
both so a retried step never transmits twice.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from datetime import date
from enum import IntEnum
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from connectors.errors import BusinessRefusal, PermanentError
from connectors.http import call, raise_for_status, resolve_url
from connectors.s2low.actes import (
    PREFECTURE_LETTERS,
    ActesArchive,
    ActesError,
    AnomalieActe,
    ARActe,
    parse_message,
    unpack,
)
from schemas.acte import ActeMetadata, Classification

PARTNER = "s2low"
ACTES = "/modules/actes"


class ActesStatus(IntEnum):
    """Status of an S²LOW ACTES transaction."""

    ERROR = -1
    CANCELLED = 0
    POSTED = 1
    WAITING_TRANSMISSION = 2
    TRANSMITTED = 3
    ACK_RECEIVED = 4
    VALIDATED = 5
    REFUSED = 6
    LETTER_RECEIVED = 7          # prefecture message received
    LETTER_AR_SENT = 8           # prefecture message received, acknowledgement sent
    LETTER_ANSWER_ACK = 11       # our answer to a letter was acknowledged
    SENT_TO_SAE = 12
    WAITING_POST = 17
    WAITING_SIGNATURE = 18
    WAITING_SAE = 19
    SAE_ERROR = 20
    LETTER_NO_AR = 21            # prefecture message received, no acknowledgement expected

    @classmethod
    def of(cls, value: int) -> ActesStatus | int:
        try:
            return cls(value)
        except ValueError:
            return value


class TransactionType(IntEnum):
    """S²LOW transaction types (same numbering as the ACTES message families)."""

    ACTE = 1
    COURRIER_SIMPLE = 2
    DEMANDE_PIECES = 3
    LETTRE_OBSERVATIONS = 4
    DEFERE_TA = 5
    ANNULATION = 6
    CLASSIFICATION = 7


class DuplicateActeError(PermanentError):
    """S²LOW already holds an acte with this internal number for the authority."""


class TransactionStatus(BaseModel):
    """Answer of ``get_status``: the status, its message and the parsed reply, if any."""

    transaction_id: int
    status: int
    message: str = ""
    flux: bytes | None = None
    reply: Any = None

    @property
    def code(self) -> ActesStatus | int:
        return ActesStatus.of(self.status)

    def raise_for_refusal(self) -> None:
        """``BusinessRefusal`` when the prefecture rejected the acte (anomaly, refusal)."""
        if isinstance(self.reply, AnomalieActe):
            raise BusinessRefusal(f"S²LOW transaction {self.transaction_id}: "
                                  f"{self.reply.reason}", partner=PARTNER)
        if self.status in (ActesStatus.ERROR, ActesStatus.REFUSED):
            raise BusinessRefusal(f"S²LOW transaction {self.transaction_id} "
                                  f"{ActesStatus(self.status).name.lower()}: {self.message}",
                                  partner=PARTNER)


class TransactionRef(BaseModel):
    """A transaction found on the platform."""

    id: int
    number: str
    decision_date: date | None = None
    unique_id: str | None = None
    status: int | None = None


class PrefectureDocumentRef(BaseModel):
    """A prefecture message attached to an acte (``type-status-id`` line)."""

    id: int
    type: int
    status: int


class PrefectureDocument(BaseModel):
    """A prefecture letter: the parsed message and the files of its archive."""

    transaction_id: int
    message: Any
    files: dict[str, bytes]


class SubmitResult(BaseModel):
    transaction_id: int
    created: bool


class S2lowClient:
    """Async client of the S²LOW ACTES API (TLS client certificate and/or login)."""

    def __init__(self, base_url: str, *, cert_file: str | Path | None = None,
                 key_file: str | Path | None = None, key_password: str | None = None,
                 login: str | None = None, password: str | None = None,
                 ca_file: str | Path | None = None, verify: bool = True,
                 timeout: float = 30.0,
                 search_statuses: Sequence[int] = (1, 2, 3, 4, 5, 6, -1, 0, 17, 18, 12, 19, 20),
                 ) -> None:
        auth = httpx.BasicAuth(login, password or "") if login else None
        self.base_url = base_url.rstrip("/")
        self.search_statuses = tuple(search_statuses)
        self.http = httpx.AsyncClient(
            base_url=self.base_url, auth=auth, timeout=timeout, follow_redirects=True,
            verify=_tls_context(cert_file, key_file, key_password, ca_file, verify))

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> S2lowClient:
        keys = ("cert_file", "key_file", "key_password", "login", "password", "ca_file")
        return cls(resolve_url(options["url"], var_dir), timeout=float(options.get("timeout", 30)),
                   verify=bool(options.get("verify", True)),
                   **{k: options[k] for k in keys if options.get(k)})

    # ------------------------------------------------------------ plumbing

    async def _get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        async def get() -> httpx.Response:
            return raise_for_status(await self.http.get(f"{ACTES}/{path}", params=params),
                                    PARTNER)
        return await call(PARTNER, get)

    async def _post(self, path: str, data: dict[str, Any], files: list[Any] | None = None,
                    params: dict[str, Any] | None = None) -> httpx.Response:
        async def post() -> httpx.Response:
            resp = await self.http.post(f"{ACTES}/{path}", data=data, files=files or None,
                                        params=params)
            return raise_for_status(resp, PARTNER)
        return await call(PARTNER, post, attempts=1)  # not idempotent: never re-post blindly

    # ------------------------------------------------------------ acte

    async def create_acte_transaction(self, meta: ActeMetadata, pdf: bytes,
                                      annexes: Sequence[bytes] = (), *,
                                      pdf_name: str = "acte.pdf") -> int:
        """Post an acte (``actes_transac_create.php``); return the transaction id."""
        if len(annexes) != len(meta.annexes):
            raise PermanentError(f"annexes: {len(meta.annexes)} described, {len(annexes)} given",
                                 partner=PARTNER)
        data: dict[str, Any] = {
            "api": "1", "nature_code": str(int(meta.nature)), "number": meta.number,
            "subject": meta.subject, "decision_date": meta.decision_date.isoformat(),
            "document_papier": "1" if meta.document_papier else "0",
            "type_acte": meta.main_typology, "type_pj[]": [a.typology for a in meta.annexes]}
        for i, level in enumerate(meta.classification_levels, start=1):
            data[f"classif{i}"] = str(level)
        files = [("acte_pdf_file", (pdf_name, pdf, "application/pdf"))]
        files += [("acte_attachments[]", (a.file_name, content, _mime(a.file_name)))
                  for a, content in zip(meta.annexes, annexes, strict=True)]
        lines = _api_lines(await self._post("actes_transac_create.php", data, files),
                           "create acte")
        return _int(lines, "create acte")

    async def submit_archive(self, name: str, data: bytes) -> list[int]:
        """Post a ready-made envelope archive (``actes_transac_submit.php``)."""
        files = [("enveloppe", (name, data, "application/x-gzip"))]
        lines = _api_lines(await self._post("actes_transac_submit.php", {"api": "1"}, files),
                           "submit archive")
        return [int(x) for x in lines[1:1 + int(lines[0])]]

    async def find_transaction(self, number: str, decision_date: date | None = None, *,
                               kind: int = TransactionType.ACTE,
                               statuses: Sequence[int] | None = None) -> TransactionRef | None:
        """The authority's transaction for this acte number (and date), if already posted."""
        found = await self.list_transactions(number, decision_date, kind=kind,
                                             statuses=statuses, first=True)
        return found[0] if found else None

    async def list_transactions(self, number: str, decision_date: date | None = None, *,
                                kind: int = TransactionType.ACTE,
                                statuses: Sequence[int] | None = None, first: bool = False
                                ) -> list[TransactionRef]:
        """Transactions of type ``kind`` about acte ``number`` (``api/list_actes.php``)."""
        found = []
        for status in statuses or self.search_statuses:
            offset, limit = 0, 100
            while True:
                resp = await self._get("api/list_actes.php",
                                       {"status_id": status, "offset": offset, "limit": limit})
                rows = _json(resp).get("transactions") or []
                for row in rows:
                    ref = _match(row, number, decision_date, status, kind)
                    if ref:
                        found.append(ref)
                        if first:
                            return found
                if len(rows) < limit:
                    break
                offset += limit
        return found

    async def submit_acte(self, meta: ActeMetadata, pdf: bytes, annexes: Sequence[bytes] = (),
                          *, pdf_name: str = "acte.pdf") -> SubmitResult:
        """Transmit once: reuse the transaction S²LOW already holds for this acte, if any."""
        found = await self.find_transaction(meta.number, meta.decision_date)
        if found:
            return SubmitResult(transaction_id=found.id, created=False)
        try:
            tid = await self.create_acte_transaction(meta, pdf, annexes, pdf_name=pdf_name)
        except DuplicateActeError:
            found = await self.find_transaction(meta.number, meta.decision_date)
            if not found:
                raise
            return SubmitResult(transaction_id=found.id, created=False)
        return SubmitResult(transaction_id=tid, created=True)

    async def submit_acte_archive(self, archive: ActesArchive, number: str,
                                  decision_date: date) -> SubmitResult:
        """Transmit a ready-made archive once: reuse the transaction S²LOW already holds."""
        found = await self.find_transaction(number, decision_date)
        if found:
            return SubmitResult(transaction_id=found.id, created=False)
        try:
            (tid,) = await self.submit_archive(archive.name, archive.data)
        except DuplicateActeError:
            found = await self.find_transaction(number, decision_date)
            if not found:
                raise
            return SubmitResult(transaction_id=found.id, created=False)
        return SubmitResult(transaction_id=tid, created=True)

    async def get_status(self, transaction_id: int) -> TransactionStatus:
        """Status code, message and parsed reply XML of a transaction."""
        resp = await self._get("actes_transac_get_status.php", {"transaction": transaction_id})
        body = resp.content
        head, _, rest = body.partition(b"\n")
        if head.strip() != b"OK":
            _ko(rest, f"status of {transaction_id}")
        status_line, _, rest = rest.partition(b"\n")
        flux, message = _split_flux(rest)
        return TransactionStatus(transaction_id=transaction_id, status=int(status_line),
                                 message=message, flux=flux,
                                 reply=_parse_or_none(flux) if flux else None)

    async def get_aractes(self, transaction_id: int) -> ARActe:
        """The ARActe of an acknowledged acte (``actes_transac_get_ARActe.php``)."""
        resp = await self._get("actes_transac_get_ARActe.php", {"id": transaction_id})
        reply = _parse(resp.content, f"ARActe of {transaction_id}")
        if not isinstance(reply, ARActe):
            raise PermanentError(f"S²LOW: expected ARActe, got {reply.kind}", partner=PARTNER)
        return reply

    async def get_tampon(self, transaction_id: int) -> bytes:
        """The acte's PDF stamped with its reception by the prefecture."""
        resp = await self._get("actes_transac_get_tampon.php", {"transaction": transaction_id})
        if resp.content.startswith(b"KO"):
            _ko(resp.content.partition(b"\n")[2], f"tampon of {transaction_id}")
        return resp.content

    async def cancel(self, transaction_id: int) -> int:
        """Ask the prefecture to cancel an acknowledged acte; return the cancel transaction."""
        lines = _api_lines(await self._post("actes_transac_cancel.php",
                                            {"api": "1", "id": str(transaction_id)}),
                           f"cancel {transaction_id}")
        return _int(lines, f"cancel {transaction_id}")

    async def get_classification(self) -> Classification:
        """The authority's current classification (``actes_classification_fetch.php``)."""
        resp = await self._get("actes_classification_fetch.php", {"api": "1"})
        if resp.content.startswith(b"KO"):
            _ko(resp.content.partition(b"\n")[2], "classification")
        try:
            return Classification.from_xml(resp.content)
        except (ValueError, SyntaxError) as exc:
            raise PermanentError(f"S²LOW: bad classification: {exc}", partner=PARTNER) from exc

    # ------------------------------------------------------------ prefecture letters

    async def list_prefecture_documents(self, transaction_id: int) -> list[PrefectureDocumentRef]:
        """Prefecture messages about an acte (``actes_transac_get_document.php``)."""
        resp = await self._get("actes_transac_get_document.php", {"id": transaction_id})
        text = resp.content.decode("latin-1")
        if text.startswith("KO"):
            _ko(resp.content.partition(b"\n")[2], f"documents of {transaction_id}")
        refs = []
        for line in text.splitlines():
            m = re.fullmatch(r"(\d+)-(-?\d+)-(\d+)", line.strip())
            if m:
                refs.append(PrefectureDocumentRef(type=int(m[1]), status=int(m[2]),
                                                  id=int(m[3])))
        return refs

    async def get_prefecture_document(self, document_id: int) -> PrefectureDocument:
        """Download a prefecture message's archive and parse its letter."""
        resp = await self._get("actes_transac_get_document.php", {"id": document_id})
        try:
            files = unpack(resp.content)
        except ActesError as exc:
            raise PermanentError(f"S²LOW: document {document_id}: {exc}", partner=PARTNER
                                 ) from exc
        for name, data in files.items():
            if name.endswith(".xml") and not name.startswith("EACT"):
                message = _parse(data, name)
                if message.kind in PREFECTURE_LETTERS:
                    return PrefectureDocument(transaction_id=document_id, message=message,
                                              files=files)
        raise PermanentError(f"S²LOW: no prefecture letter in document {document_id}",
                             partner=PARTNER)

    async def reply_to_prefecture(self, document_id: int, pdf: bytes, *, refuse: bool = False,
                                  annexes: Sequence[tuple[str, bytes, str]] = (),
                                  typology: str = "99_AU", pdf_name: str = "reponse.pdf") -> int:
        """Answer a letter (send or refuse documents, answer or reject observations);
        ``annexes`` are (file name, content, typology). Returns the answer's transaction."""
        data: dict[str, Any] = {"id": str(document_id), "type_envoie": "3" if refuse else "4",
                                "type_acte": typology, "type_pj[]": [t for _, _, t in annexes]}
        files = [("acte_pdf_file", (pdf_name, pdf, "application/pdf"))]
        files += [("acte_attachments[]", (n, c, _mime(n))) for n, c, _ in annexes]
        resp = await self._post("actes_transac_reponse_create.php", data, files,
                                params={"api": "1"})
        text = resp.content.decode("latin-1").strip()
        m = re.match(r"OK\s*:\s*id g\S+ : (\d+)", text)
        if not m:
            _ko(text.encode("latin-1").split(b":", 1)[-1], f"answer to {document_id}")
        return int(m[1])

    async def aclose(self) -> None:
        await self.http.aclose()


# ---------------------------------------------------------------- helpers


def _tls_context(cert_file: str | Path | None, key_file: str | Path | None,
                 key_password: str | None, ca_file: str | Path | None,
                 verify: bool) -> ssl.SSLContext | bool:
    if not cert_file and not ca_file:
        return verify
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file:
        ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None, key_password)
    return ctx


def _mime(name: str) -> str:
    return {"pdf": "application/pdf", "xml": "application/xml", "jpg": "image/jpeg",
            "png": "image/png"}.get(name.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def _ko(rest: bytes, what: str) -> None:
    message = rest.decode("latin-1").strip() or "unknown error"
    duplicate = "même numéro interne" in message or "entre en conflit" in message
    error = DuplicateActeError if duplicate else PermanentError
    raise error(f"S²LOW refused {what}: {message}", partner=PARTNER)


def _api_lines(resp: httpx.Response, what: str) -> list[str]:
    head, _, rest = resp.content.partition(b"\n")
    if head.strip() != b"OK":
        _ko(rest if head.strip() == b"KO" else resp.content, what)
    return [x for x in rest.decode("latin-1").splitlines() if x.strip()]


def _int(lines: list[str], what: str) -> int:
    try:
        return int(lines[0])
    except (IndexError, ValueError):
        raise PermanentError(f"S²LOW: unexpected answer to {what}: {lines!r}",
                             partner=PARTNER) from None


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        return resp.json()
    except ValueError as exc:
        raise PermanentError(f"S²LOW: expected JSON, got {resp.text[:200]!r}", partner=PARTNER
                             ) from exc


def _match(row: dict[str, Any], number: str, decision_date: date | None, status: int,
           kind: int = TransactionType.ACTE) -> TransactionRef | None:
    if str(row.get("number")) != number or int(row.get("type") or 1) != kind:
        return None
    raw = str(row.get("decision_date") or "")[:10]
    day = date.fromisoformat(raw) if raw else None
    if decision_date and day and day != decision_date:
        return None
    return TransactionRef(id=int(row["id"]), number=number, decision_date=day,
                          unique_id=row.get("unique_id") or None, status=status)


def _split_flux(rest: bytes) -> tuple[bytes | None, str]:
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


def _parse(xml: bytes, what: str) -> Any:
    try:
        return parse_message(xml)
    except ActesError as exc:
        raise PermanentError(f"S²LOW: {what}: {exc}", partner=PARTNER) from exc


def _parse_or_none(xml: bytes) -> Any:
    try:
        return parse_message(xml)
    except ActesError:
        return None
