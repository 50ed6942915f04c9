"""An S²LOW ACTES simulator: same script paths, parameters, answer formats and refusals
as the platform (``connectors/README.md``), with the prefecture's side played
automatically.

Authentication: HTTP Basic against ``users`` (when given); the TLS client certificate
and the RGS check are not simulated. Each script answers an unauthenticated call as S²LOW
does (``unauthenticated``). API answers are ISO-8859-1 ``OK``/``KO`` text, messages
HTML-escaped; without ``api=1`` the create script redirects as its web form does.
``actes_transac_submit.php`` is refused as deprecated; ``actes_transac_get_tampon.php``
(deprecated in the source, still answering) redirects to the stamped PDF.

Life cycle of an acte: 1 posted -> 2 waiting -> 3 transmitted -> outcome, one step every
``step_delay`` seconds (0: everything at once), computed when a request arrives; with
``en_attente=1`` it stays at 17 until ``actes_transac_post_confirm_api.php`` posts it.

Scenario of an acte, chosen by (first match) ``scenarios[number]``, a ``[sim:NAME]`` marker
in the subject, or ``default_scenario``:

- ``ack``: status 4 with an ARActe (official ID ``DDD-SIREN-YYYYMMDD-NUMBER-NATURE``);
- ``archive``: acknowledged, then archived: 19, 12, 13 (no flux with these statuses);
- ``anomaly``: status -1 with an AnomalieActe; ``envelope``: -1 with an
  AnomalieEnveloppe; ``refused``: status 6; ``error``: -1 with a message;
  ``stuck``: stays transmitted (3);
- ``courrier`` / ``pieces`` / ``observations`` / ``defere``: acknowledged, then the prefecture
  sends a CourrierSimple (status 21) / DemandePieceComplementaire (8) /
  LettreObservations (8) / DefereTA (21) as a new transaction related to the acte.

A cancellation (only from status 4) goes 1 -> 2 -> 3 -> 4 with an ARAnnulation and the
acte ends cancelled (0). An answer to a letter goes 1 -> 2 -> 3, then 11 with its
acknowledgement (except the answer to a simple letter, which has none).

Control endpoints: ``GET /_sim/counts``, ``POST /_sim/failures`` (a FailurePlan as JSON),
``POST /_sim/scenarios`` ({number: scenario}). Failures are drawn per API call: ``error``
answers 503 before any effect, ``timeout`` applies the effect and then hangs. A plan posted
with ``"method": "POST"`` applies to that method only (until a plan without method resets).
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import ValidationError

from connectors.s2low import actes as A
from connectors.s2low.client import ActesStatus, TransactionType
from connectors.s2low.helios_simulator import mount_helios
from connectors.s2low.prefecture import (
    ANSWER_KIND,
    AR_OF_ANSWER,
    DEFAULT_AUTHORITY,
    DUPLICATE,
    PrefectureSide,
    SimTransaction,
    default_classification,
)
from connectors.s2low.sim_answers import (
    classification_of,
    file_id,
    files_of,
    ko,
    mime,
    ok,
    text,
    unauthenticated,
)
from connectors.simulator import FailurePlan, HttpSimulator, SubmissionCounter
from schemas.acte import (
    NUMBER_RE,
    ActeMetadata,
    Classification,
    TenantActesSettings,
    acte_key,
)
from schemas.text import ascii_digits

SUBMIT_DEPRECATED = ("Cette fonctionnalité est déprécié. Vous devez désormais utiliser : "
                     "'/modules/actes/actes_transac_create.php' pour créer un acte.")


class S2lowSimulator(PrefectureSide, HttpSimulator):
    """The FastAPI app, its transactions, failure plan and per-acte submission counter."""

    title = "S²LOW simulator"

    def counts(self) -> dict[str, Any]:
        return {"submissions": self.submissions.snapshot(),
                "duplicates": self.submissions.duplicates()}


    def __init__(self, authority: TenantActesSettings | None = None, *,
                 step_delay: float = 0.0, scenarios: dict[str, str] | None = None,
                 default_scenario: str = "ack", failures: FailurePlan | None = None,
                 users: dict[str, str] | None = None,
                 classification: Classification | None = None,
                 trigramme: str = A.TRIGRAMME,
                 authorities: dict[str, TenantActesSettings] | None = None,
                 archivists: set[str] | None = None) -> None:
        self.authority = authority or DEFAULT_AUTHORITY
        self.authorities = dict(authorities or {})  # login -> authority of that account
        self.step_delay = step_delay
        self.scenarios = dict(scenarios or {})
        self.default_scenario = default_scenario
        super().__init__(failures)
        self.method_failures: dict[str, FailurePlan] = {}  # HTTP method -> its own plan
        self.users = users
        self.archivists = set(archivists or ())  # accounts with the archivist role
        self.classification = classification or default_classification()
        self.trigramme = trigramme
        self.submissions = SubmissionCounter()
        self.transactions: dict[int, SimTransaction] = {}
        self.archives: dict[int, tuple[str, bytes]] = {}  # envelope id -> (name, data)
        self.lock = threading.RLock()
        self._serial = 0
        self.app = self._build()

    # ------------------------------------------------------------ server

    # ------------------------------------------------------------ app

    def _build(self) -> FastAPI:
        app = self.new_app(failure_control=False)
        sim = self

        @app.middleware("http")
        async def failures(request: Request, call_next: Any) -> Response:
            if not request.url.path.startswith("/modules/"):
                return await call_next(request)
            outcome = sim.method_failures.get(request.method, sim.failures).draw()
            if outcome == "error":
                return Response("injected failure", status_code=503)
            if not sim._authenticated(request):
                return unauthenticated(request.url.path)
            response = await call_next(request)
            if outcome == "timeout":  # the effect happened, the answer is lost
                await asyncio.sleep(sim.failures.timeout_seconds)
            return response

        @app.post("/_sim/failures")
        async def set_failures(plan: dict) -> dict:
            method = plan.pop("method", None)
            if method:  # e.g. {"method": "POST", "timeout_rate": 1}: lose every answer to a post
                sim.method_failures[method.upper()] = FailurePlan(**plan)
            else:
                sim.failures, sim.method_failures = FailurePlan(**plan), {}
            return plan

        @app.post("/_sim/scenarios")
        async def set_scenarios(mapping: dict[str, str]) -> dict:
            sim.scenarios.update(mapping)
            return sim.scenarios

        routes: dict[str, tuple[str, Callable[..., Any]]] = {
            "actes_transac_create.php": ("POST", sim._create),
            "actes_transac_submit.php": ("POST", sim._submit),
            "actes_transac_get_status.php": ("GET", sim._status),
            "actes_transac_get_ARActe.php": ("GET", sim._aracte),
            "actes_transac_get_files_list.php": ("GET", sim._files_list),
            "actes_transac_get_tampon.php": ("GET", sim._tampon),
            "actes_download_file.php": ("GET", sim._download),
            "actes_transac_cancel.php": ("POST", sim._cancel),
            "actes_transac_post_confirm_api.php": ("GET", sim._post_confirm),
            "actes_classification_fetch.php": ("GET", sim._classification),
            "actes_transac_get_document.php": ("GET", sim._document),
            "actes_transac_reponse_create.php": ("POST", sim._answer),
            "api/list_actes.php": ("GET", sim._list_actes),
            "api/list_document_prefecture.php": ("GET", sim._list_letters),
        }
        for path, (method, handler) in routes.items():
            app.add_api_route(f"/modules/actes/{path}", _endpoint(sim, handler),
                              methods=[method])

        sim.helios = mount_helios(app, sim)
        return app

    def login_of(self, request: Request) -> str:
        """The account calling (HTTP Basic login; "" with the certificate alone)."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                return base64.b64decode(header[6:]).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                return ""
        return ""

    def _who(self, request: Request) -> TenantActesSettings:
        """The authority of the account calling (S²LOW: one account, one authority)."""
        return self.authorities.get(self.login_of(request), self.authority)

    def _authenticated(self, request: Request) -> bool:
        if not self.users:
            return True
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        login, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return self.users.get(login) == password

    async def _create(self, request: Request) -> Response:
        form = await request.form()
        if str(form.get("api") or request.query_params.get("api") or "") != "1":
            return RedirectResponse("/modules/actes/actes_transac_add.php", status_code=302)
        number = str(form.get("number") or "")
        if not NUMBER_RE.fullmatch(number):
            return ko("Le numéro n'est pas correct")
        try:
            decision = date.fromisoformat(str(form.get("decision_date") or ""))
        except ValueError:
            return ko("La date de décision est invalide")
        if decision > date.today():
            return ko("La date de décision est une date dans le futur")
        pdf = form.get("acte_pdf_file")
        if pdf is None or isinstance(pdf, str):
            return ko("Aucun fichier acte n'a été posté ")
        if not form.get("type_acte"):
            return ko(f"Erreur lors de la réception du fichier {pdf.filename} : "
                       "typologie absente")
        attachments = [f for f in form.getlist("acte_attachments[]") if not isinstance(f, str)]
        types = [str(t) for t in form.getlist("type_pj[]")]
        if len(types) < len(attachments) or not all(types[:len(attachments)]):
            return ko("Erreur lors de la réception du fichier annexe : typologie absente")
        who = self._who(request)
        self.submissions.add(acte_key(who.siren, decision, number))
        if self._find(number, who.siren) is not None:
            return ko(DUPLICATE)
        classif = [str(form.get(f"classif{i}")) for i in range(1, 6) if form.get(f"classif{i}")]
        try:
            meta = ActeMetadata(
                nature=str(form.get("nature_code")), number=number, decision_date=decision,
                subject=str(form.get("subject") or ""), classification=classif,
                classification_date=self.classification.version_date,
                document_papier=str(form.get("document_papier")) in ("1", "on", "true"),
                main_typology=str(form.get("type_acte")),
                annexes=[{"file_name": a.filename or "annexe.pdf", "typology": t}
                         for a, t in zip(attachments, types, strict=False)])
            archive = A.build_acte_archive(
                who, meta, await pdf.read(), [await a.read() for a in attachments],
                serial=self._next_serial(), trigramme=self.trigramme)
        except (ValidationError, A.ActesError) as exc:
            return ko(f"Erreur lors de la génération de l'acte : {exc}")
        tx = self._register_acte(meta, archive.name, archive.data, archive.form_name, who)
        if str(form.get("en_attente") or "") in ("1", "on", "true"):
            tx.set(ActesStatus.WAITING_POST, "En attente d'être postée")
            tx.plan, tx.done = [], 0  # someone with the right to post must confirm it
        return ok(f"{tx.id}\n")

    async def _submit(self, request: Request) -> Response:
        """Deprecated: S²LOW refuses envelopes (``app.envelope_submission_enabled`` off)."""
        return ko(SUBMIT_DEPRECATED)

    async def _status(self, request: Request) -> Response:
        params = request.query_params
        tx = self._tx(params.get("transaction", ""))
        if params.get("unique_id"):
            tx = next((t for t in self.transactions.values()
                       if t.unique_id == params["unique_id"] and t.type == 1), None)
        if tx is None:
            return text("KO\nNuméro de transaction invalide.")
        if tx.authority.siren != self._who(request).siren:  # another authority's
            return text("KO\nAccès refusé")
        status, message, _ = tx.history[-1]
        body = f"OK\n{status}\n".encode() + (tx.flux(status) or b"")
        if status == ActesStatus.ERROR:
            body += message.encode("latin-1", "replace")
        return Response(body, media_type="text/plain; charset=ISO-8859-1")

    async def _aracte(self, request: Request) -> Response:
        tx = self._tx(request.query_params.get("id", ""))
        flux = tx.flux(ActesStatus.ACK_RECEIVED) if tx else None
        if flux is None:  # S²LOW: "Cette transaction n'existe pas" in the web session
            return RedirectResponse("index.php", status_code=302)
        return Response(flux, media_type="application/xml")

    async def _tampon(self, request: Request) -> Response:
        """Deprecated in S²LOW's source but still answering: redirect to the first PDF."""
        tx = self._tx(request.query_params.get("transaction", ""), TransactionType.ACTE)
        if tx is None:
            return text("KO\nNuméro de transaction invalide.")
        if not any(s == ActesStatus.ACK_RECEIVED for s, _, _ in tx.history):
            return text("KO\nPas d'acquittement recu")
        pdf = next(i for i, (n, _) in enumerate(files_of(tx)) if n.lower().endswith("pdf"))
        return RedirectResponse(f"actes_download_file.php?file={file_id(tx, pdf)}&tampon=true",
                                status_code=302)

    async def _files_list(self, request: Request) -> Response:
        tx = self._tx(request.query_params.get("transaction", ""))
        if tx is None:
            return text("KO\nNuméro de transaction invalide.")
        if tx.authority.siren != self._who(request).siren:
            return text("KO\nAccès refusé")
        if all(s in (1, 2, 3) for s, _, _ in tx.history):
            return text("KO\nPas d'acquittement recu")
        rows = [{"id": file_id(tx, i), "name": name, "posted_filename": name,
                 "mimetype": mime(name), "size": len(data), "sign": None}
                for i, (name, data) in enumerate(files_of(tx))]
        return JSONResponse(rows)

    async def _download(self, request: Request) -> Response:
        params = request.query_params
        if ascii_digits(params.get("env", "")):
            name, data = self.archives.get(int(params["env"]), ("", b""))
            return Response(data, media_type="application/x-gzip",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        file_id = params.get("file", "")
        tx = self._tx(int(file_id) // 100) if ascii_digits(file_id) else None
        files = files_of(tx) if tx else []
        if tx is None or not ascii_digits(file_id) or int(file_id) % 100 >= len(files):
            return RedirectResponse("/", status_code=302)  # "Paramètre manquant." / error
        name, data = files[int(file_id) % 100]
        if params.get("tampon") and name.lower().endswith(".pdf"):
            shown = params.get("date_affichage") or ""
            data += (f"\n% Tampon S2LOW: {tx.unique_id} recu en prefecture le "
                     f"{date.today():%d/%m/%Y}{' affiche le ' + shown if shown else ''}\n"
                     ).encode()
        return Response(data, media_type=mime(name))

    async def _post_confirm(self, request: Request) -> Response:
        """Post an acte waiting at 17; answers by redirecting to ``url_return``."""
        params = request.query_params
        tx = self._tx(params.get("id", "")) if params.get("id") else None
        if not params.get("id"):
            error = "Pas d'identifiant de transaction spécifié"
        elif tx is None:
            error = "Erreur d'initialisation de la transaction."
        elif tx.status != ActesStatus.WAITING_POST:
            error = "La transaction n'est pas dans le statut « En attente d'être posté»"
        else:
            error = ""
            tx.set(ActesStatus.POSTED, "La transaction a été postée par l'agent "
                                       "télétransmetteur")
            self._acte_plan(tx)
            tx.done, tx.created = 0, time.monotonic()
        target = (params.get("url_return", "").replace("%%ERROR%%", "1" if error else "0")
                  .replace("%%MESSAGE%%", quote(error)))
        return Response(status_code=302, headers={"location": target})

    async def _cancel(self, request: Request) -> Response:
        form = await request.form()
        acte = self._tx(form.get("id", ""))
        if acte is None:
            return ko("Erreur d'initialisation de la transaction.")
        if acte.type != TransactionType.ACTE:
            return ko("Ce type de transaction ne peut pas être annulé.")
        if any(t.type == TransactionType.ANNULATION and t.related_id == acte.id
               and t.status != ActesStatus.ACK_RECEIVED for t in self.transactions.values()):
            return ko("Une demande d'annulation est déjà en cours pour cette transaction.")
        if acte.status != ActesStatus.ACK_RECEIVED or not acte.unique_id:
            return ko("Impossible d'annuler une transaction qui n'est pas en état "
                       "« Acquittement reçu ».")
        base = acte.unique_id
        form_name = A.message_file_name(base, A.MSG_ANNULATION, 0, "xml")
        archive = A.build_message_archive(acte.authority, form_name,
                                          A.build_annulation(base), [],
                                          serial=self._next_serial(), sent_on=date.today(),
                                          trigramme=self.trigramme)
        tx = self._new_tx(TransactionType.ANNULATION, number=acte.number,
                          decision_date=acte.decision_date, nature=acte.nature,
                          subject=acte.subject, files=A.unpack(archive.data),
                          form_name=form_name, related_id=acte.id,
                          envelope=(archive.name, archive.data), authority=acte.authority)
        tx.unique_id = base

        def acknowledged(t: SimTransaction) -> None:
            t.set(ActesStatus.ACK_RECEIVED, "Annulation acquittée",
                  A.build_ar_annulation(base, date.today()))
            acte.set(ActesStatus.CANCELLED, "Annulé")

        tx.plan = [*self._transmission_steps(), acknowledged]
        return ok(f"{tx.id}\n")

    async def _classification(self, request: Request) -> Response:
        return Response(A.build_retour_classification(self.classification),
                        media_type="application/xml")

    async def _document(self, request: Request) -> Response:
        tx = self._tx(request.query_params.get("id", ""))
        if tx is None:
            return text("KO\nNuméro de transaction invalide.")
        if tx.type == TransactionType.ACTE:
            lines = [f"{t.type}-{t.status}-{t.id}\n" for t in self.transactions.values()
                     if t.related_id == tx.id and t.type in (2, 3, 4, 5)
                     and t.status in (7, 8, 21)]
            return text("".join(lines))
        return RedirectResponse(f"actes_download_file.php?env={tx.envelope_id}",
                                status_code=302)

    async def _answer(self, request: Request) -> Response:
        form = await request.form()
        letter = self._tx(form.get("id", ""))
        if letter is None or letter.type not in (2, 3, 4) or letter.status not in (7, 8, 21):
            return text("KO : Transaction à laquelle répondre invalide")
        if not form.get("type_acte"):
            return text("KO : Erreur lors de la réception du fichier : typologie absente")
        kind = ANSWER_KIND.get((letter.type, str(form.get("type_envoie") or "4")))
        pdf = form.get("acte_pdf_file")
        if kind is None or pdf is None or isinstance(pdf, str):
            return text("KO : Vous devez choisir un type de réponse et joindre un fichier")
        tx = await self._answer_tx(letter, kind, form, await pdf.read())
        if isinstance(tx, str):
            return text(f"KO : {tx}")
        return text(f"OK : id généré : {tx.id}\n")

    async def _answer_tx(self, letter: SimTransaction, kind: str, form: Any, pdf: bytes
                         ) -> SimTransaction | str:
        assert letter.unique_id
        base, code = letter.unique_id, A.REPLY_MESSAGE[kind]
        attachments = [f for f in form.getlist("acte_attachments[]") if not isinstance(f, str)]
        types = [str(t) for t in form.getlist("type_pj[]")]
        docs = [A.ArchiveFile(name=A.message_file_name(base, code, 1, "pdf",
                                                       str(form["type_acte"])), data=pdf)]
        for i, (att, typ) in enumerate(zip(attachments, types, strict=False), start=2):
            docs.append(A.ArchiveFile(name=A.message_file_name(base, code, i, "pdf", typ),
                                      data=await att.read()))
        date_courrier = A.parse_message(letter.files[letter.form_name]).date_courrier
        form_name = A.message_file_name(base, code, 0, "xml")
        try:
            xml = A.build_reponse(kind, base, date_courrier,  # type: ignore[arg-type]
                                  [d.name for d in docs])
            archive = A.build_message_archive(letter.authority, form_name, xml, docs,
                                              serial=self._next_serial(), sent_on=date.today(),
                                              trigramme=self.trigramme)
        except A.ActesError as exc:
            return str(exc)
        tx = self._new_tx(letter.type, number=letter.number, decision_date=date.today(),
                          nature=letter.nature, subject=letter.subject,
                          files=A.unpack(archive.data), form_name=form_name,
                          related_id=letter.id, envelope=(archive.name, archive.data),
                          authority=letter.authority)
        tx.unique_id = base
        tx.plan = self._transmission_steps()
        if letter.type in AR_OF_ANSWER:
            tx.plan.append(lambda t: t.set(
                ActesStatus.LETTER_ANSWER_ACK, "Réponse acquittée par la préfecture",
                A.build_ar_courrier(AR_OF_ANSWER[letter.type], base, date_courrier,
                                    date.today())))
        return tx

    async def _list_actes(self, request: Request) -> Response:
        params = request.query_params
        status = int(params.get("status_id") or 0)
        offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
        rows = [{"id": t.id, "subject": t.subject, "number": t.number,  # as S²LOW selects
                 "date": t.decision_date.isoformat(), "nature_descr": t.nature.name.title(),
                 "classification": classification_of(t), "type": str(t.type)}
                for t in sorted(self.transactions.values(), key=lambda t: -t.id)  # id DESC
                if t.status == status and t.authority.siren == self._who(request).siren]
        return JSONResponse({"status_id": status, "authority_id": 1, "offset": offset,
                             "limit": limit, "transactions": rows[offset:offset + limit]})

    async def _list_letters(self, request: Request) -> Response:
        rows = [{"id": t.id, "type": t.type, "related_transaction_id": t.related_id,
                 "number": t.number,
                 "unique_id": t.unique_id, "last_status_id": t.status}
                for t in self.transactions.values()
                if t.type in (2, 3, 4, 5) and t.status in (7, 8, 21)
                and t.authority.siren == self._who(request).siren]
        return JSONResponse(rows)


def _endpoint(sim: S2lowSimulator, handler: Callable[[Request], Any]) -> Callable[..., Any]:
    async def endpoint(request: Request) -> Response:
        sim._advance()
        return await handler(request)
    return endpoint
