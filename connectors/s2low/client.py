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

import html
import re
from collections.abc import Sequence
from datetime import date
from enum import IntEnum
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import BaseModel

from connectors.errors import BusinessRefusal, PermanentError
from connectors.http import call, raise_for_status, resolve_url
from connectors.s2low.actes import (
    PREFECTURE_LETTERS,
    ActesError,
    AnomalieActe,
    AnomalieEnveloppe,
    ARActe,
    parse_message,
    unpack,
)
from connectors.s2low.replies import RawReply, read_reply, reply_reason, split_flux
from connectors.s2low.transport import mime as _mime
from connectors.s2low.transport import posted_name
from connectors.s2low.transport import tls_context as _tls_context
from schemas.acte import ActeMetadata, Classification

PARTNER = "s2low"
ACTES = "/modules/actes"
RETURN_URL = "https://demat-bus.invalid/posted?error=%%ERROR%%&message=%%MESSAGE%%"


class ActesStatus(IntEnum):
    """Every status S²LOW defines for an ACTES transaction (``src/Enum/ActesStatus.php``)."""

    ERROR = -1                   # ERREUR (the reply XML, if any, says why)
    CANCELLED = 0                # ANNULE
    POSTED = 1                   # POSTE
    WAITING_TRANSMISSION = 2     # EN_ATTENTE_TRANSMISSION
    TRANSMITTED = 3              # TRANSMIS
    ACK_RECEIVED = 4             # ACQUITTEMENT_RECU
    VALIDATED = 5                # VALIDE
    REFUSED = 6                  # REFUSE
    LETTER_RECEIVED = 7          # DOCUMENT_RECU: prefecture message received
    LETTER_AR_SENT = 8           # ACQUITTEMENT_ENVOYE: received, acknowledgement sent
    DOCUMENT_SENT = 9            # DOCUMENT_ENVOYE
    SEND_REFUSED = 10            # REFUS_ENVOI
    LETTER_ANSWER_ACK = 11       # ACQUITTEMENT_DOC_RECU: our answer acknowledged
    SENT_TO_SAE = 12             # ENVOYE_SAE
    SAE_ARCHIVED = 13            # ARCHIVE_SAE
    SAE_ARCHIVE_ERROR = 14       # ERREUR_ARCHIVAGE
    SAE_RECEIVED = 15            # RECU_SAE
    DESTROYED = 16               # DETRUITE
    WAITING_POST = 17            # EN_ATTENTE_POST: created, waiting to be posted
    WAITING_SIGNATURE = 18       # EN_ATTENTE_SIGNATURE
    WAITING_SAE = 19             # EN_ATTENTE_TRANSMISSION_SAE
    SAE_ERROR = 20               # ERREUR_ENVOI_SAE
    LETTER_NO_AR = 21            # DOCUMENT_RECU_SANS_AR: no acknowledgement expected
    SAE_IMPOSSIBLE = 22          # IMPOSSIBLE_ENVOYER_SAE
    IN_PROGRESS = 999            # EN_COURS

    @classmethod
    def of(cls, value: int) -> ActesStatus | int:
        try:
            return cls(value)
        except ValueError:
            return value


# reached only after the acknowledgement (archiving): the acte was acknowledged
ARCHIVING = frozenset({ActesStatus.VALIDATED, ActesStatus.SENT_TO_SAE, ActesStatus.SAE_ARCHIVED,
                       ActesStatus.SAE_ARCHIVE_ERROR, ActesStatus.SAE_RECEIVED,
                       ActesStatus.DESTROYED, ActesStatus.WAITING_SAE, ActesStatus.SAE_ERROR,
                       ActesStatus.SAE_IMPOSSIBLE})


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
        if isinstance(self.reply, AnomalieActe | AnomalieEnveloppe | RawReply):
            raise BusinessRefusal(f"S²LOW transaction {self.transaction_id}: "
                                  f"{reply_reason(self.reply)}", partner=PARTNER)
        if self.status in (ActesStatus.ERROR, ActesStatus.REFUSED):
            raise BusinessRefusal(f"S²LOW transaction {self.transaction_id} "
                                  f"{ActesStatus(self.status).name.lower()}: {self.message}",
                                  partner=PARTNER)


class StampedFile(BaseModel):
    """A file of a transaction (``actes_transac_get_files_list.php`` row)."""

    id: int
    name: str = ""
    posted_filename: str = ""
    mimetype: str = ""
    size: int | None = None


class TransactionRef(BaseModel):
    """A transaction found on the platform."""

    id: int
    number: str
    decision_date: date | None = None
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

    async def _get(self, path: str, params: dict[str, Any], *,
                   redirects: bool = True) -> httpx.Response:
        async def get() -> httpx.Response:
            return raise_for_status(await self.http.get(
                f"{ACTES}/{path}", params=params, follow_redirects=redirects), PARTNER)
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
                                      pdf_name: str = "acte.pdf", en_attente: bool = False
                                      ) -> int:
        """Post an acte (``actes_transac_create.php``, fields as the script reads them);
        return the transaction id. ``en_attente``: S²LOW keeps it at status 17."""
        if len(annexes) != len(meta.annexes):
            raise PermanentError(f"annexes: {len(meta.annexes)} described, {len(annexes)} given",
                                 partner=PARTNER)
        try:  # S²LOW reads the subject in ISO-8859-1, as Pastell sends it
            subject = meta.subject.encode("iso-8859-1")
        except UnicodeEncodeError as exc:
            raise PermanentError(f"subject: {meta.subject[exc.start:exc.end]!r} cannot be sent "
                                 "to S²LOW (ISO-8859-1 only)", partner=PARTNER) from None
        data: dict[str, Any] = {
            "api": "1", "nature_code": str(int(meta.nature)), "number": meta.number,
            "subject": subject, "decision_date": meta.decision_date.isoformat(),
            "en_attente": "1" if en_attente else "0",
            "document_papier": "1" if meta.document_papier else "0",
            "type_acte": meta.main_typology, "type_pj[]": [a.typology for a in meta.annexes]}
        for i, level in enumerate(meta.classification_levels, start=1):
            data[f"classif{i}"] = str(level)
        files = [("acte_pdf_file", (posted_name(pdf_name), pdf, "application/pdf"))]
        files += [("acte_attachments[]", (posted_name(a.file_name), content,
                                          _mime(a.file_name)))
                  for a, content in zip(meta.annexes, annexes, strict=True)]
        lines = _api_lines(await self._post("actes_transac_create.php", data, files),
                           "create acte")
        return _int(lines, "create acte")

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
        """Transactions of type ``kind`` about acte ``number`` (``api/list_actes.php``: rows
        of id, subject, number, date, nature_descr, classification, type)."""
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
                          *, pdf_name: str = "acte.pdf", en_attente: bool = False
                          ) -> SubmitResult:
        """Transmit once: reuse the transaction S²LOW already holds for this acte, if any."""
        found = await self.find_transaction(meta.number, meta.decision_date)
        if found:
            return SubmitResult(transaction_id=found.id, created=False)
        try:
            tid = await self.create_acte_transaction(meta, pdf, annexes, pdf_name=pdf_name,
                                                     en_attente=en_attente)
        except DuplicateActeError:
            found = await self.find_transaction(meta.number, meta.decision_date)
            if not found:
                raise
            return SubmitResult(transaction_id=found.id, created=False)
        return SubmitResult(transaction_id=tid, created=True)

    async def get_status(self, transaction_id: int) -> TransactionStatus:
        """Status code, message and reply XML of a transaction (read tolerantly)."""
        resp = await self._get("actes_transac_get_status.php", {"transaction": transaction_id})
        body = resp.content
        head, _, rest = body.partition(b"\n")
        if head.strip() != b"OK":
            _ko(rest, f"status of {transaction_id}")
        status_line, _, rest = rest.partition(b"\n")
        flux, message = split_flux(rest)
        return TransactionStatus(transaction_id=transaction_id, status=int(status_line),
                                 message=message, flux=flux,
                                 reply=read_reply(flux) if flux else None)

    async def get_aractes(self, transaction_id: int) -> tuple[ARActe, bytes]:
        """The ARActe kept with status 4, whatever the status now
        (``actes_transac_get_ARActe.php``, which redirects when there is none)."""
        resp = await self._get("actes_transac_get_ARActe.php", {"id": transaction_id},
                               redirects=False)
        if resp.is_redirect or not resp.content.strip():
            raise PermanentError(f"S²LOW: no ARActe for {transaction_id}", partner=PARTNER)
        reply = _parse(resp.content, f"ARActe of {transaction_id}")
        if not isinstance(reply, ARActe):
            raise PermanentError(f"S²LOW: expected ARActe, got {reply.kind}", partner=PARTNER)
        return reply, resp.content

    async def list_files(self, transaction_id: int) -> list[StampedFile]:
        """The files of a transaction (``actes_transac_get_files_list.php``, JSON; the first
        row is the ``Acte`` form, then the acte's document and its annexes)."""
        resp = await self._get("actes_transac_get_files_list.php",
                               {"transaction": transaction_id})
        if resp.content.startswith(b"KO"):
            _ko(resp.content.partition(b"\n")[2], f"files of {transaction_id}")
        rows = _json_list(resp)
        return [StampedFile.model_validate(row) for row in rows]

    async def get_stamped(self, transaction_id: int, *, date_affichage: date | None = None
                          ) -> bytes:
        """The acte's PDF stamped by S²LOW (``actes_download_file.php?file=ID&tampon=true``
        on the document of ``list_files``)."""
        files = await self.list_files(transaction_id)
        if len(files) < 2 or files[1].mimetype != "application/pdf":
            raise PermanentError(f"S²LOW: transaction {transaction_id} has no PDF document to "
                                 "stamp", partner=PARTNER)
        params: dict[str, Any] = {"file": files[1].id, "tampon": "true"}
        if date_affichage:
            params["date_affichage"] = date_affichage.isoformat()
        resp = await self._get("actes_download_file.php", params, redirects=False)
        if resp.is_redirect:
            raise PermanentError(f"S²LOW refused the stamped file of {transaction_id}: "
                                 f"redirected to {resp.headers.get('location', '?')}",
                                 partner=PARTNER)
        return resp.content

    async def confirm_post(self, transaction_id: int) -> None:
        """Post an acte waiting at 17 (``actes_transac_post_confirm_api.php``, which answers
        by redirecting to ``url_return`` with ``%%ERROR%%`` and ``%%MESSAGE%%`` filled)."""
        resp = await self._get("actes_transac_post_confirm_api.php",
                               {"id": transaction_id, "url_return": RETURN_URL},
                               redirects=False)
        location = resp.headers.get("location", "").strip()
        query = parse_qs(urlsplit(location).query)
        if not resp.is_redirect or query.get("error") != ["0"]:
            reason = (query.get("message") or [location or resp.text[:200]])[0]
            raise PermanentError(f"S²LOW refused to post {transaction_id}: {reason}",
                                 partner=PARTNER)

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
            m = re.fullmatch(r"([0-9]+)-(-?[0-9]+)-([0-9]+)", line.strip())
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
        m = re.match(r"OK\s*:\s*id g\S+ : ([0-9]+)", text)
        if not m:
            _ko(text.encode("latin-1").split(b":", 1)[-1], f"answer to {document_id}")
        return int(m[1])

    async def aclose(self) -> None:
        await self.http.aclose()


# ---------------------------------------------------------------- helpers


def _ko(rest: bytes, what: str) -> None:
    """S²LOW's ``KO`` answer: ISO-8859-1, HTML-escaped (``get_hecho``)."""
    message = html.unescape(rest.decode("latin-1")).strip() or "unknown error"
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
    """A ``list_actes.php`` row (``date`` is ``date(decision_date)``) for this acte."""
    if str(row.get("number")) != number or int(row.get("type") or 1) != kind:
        return None
    raw = str(row.get("date") or "")[:10]
    day = date.fromisoformat(raw) if raw else None
    if decision_date and day and day != decision_date:
        return None
    return TransactionRef(id=int(row["id"]), number=number, decision_date=day, status=status)


def _json_list(resp: httpx.Response) -> list[dict[str, Any]]:
    try:
        rows = resp.json()
    except ValueError as exc:
        raise PermanentError(f"S²LOW: expected JSON, got {resp.text[:200]!r}", partner=PARTNER
                             ) from exc
    if not isinstance(rows, list):
        raise PermanentError(f"S²LOW: expected a JSON list, got {resp.text[:200]!r}",
                             partner=PARTNER)
    return rows


def _parse(xml: bytes, what: str) -> Any:
    try:
        return parse_message(xml)
    except ActesError as exc:
        raise PermanentError(f"S²LOW: {what}: {exc}", partner=PARTNER) from exc
