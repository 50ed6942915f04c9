"""The HELIOS routes of the S²LOW simulator (PES Aller to the treasury, acquits, returns).

Mounted on the S²LOW simulator app (``mount_helios``): same authentication, failure
injection and pace. Answers as ``connectors/README.md`` records them:

- the import refuses a file whose SHA-1 any transaction already holds
  (``doublon détecté. Ce fichier a déjà été posté.``, no id), an empty file and a
  missing ``enveloppe``; S²LOW then analyses the file as its
  ``HeliosEnvoiControler::validateOneTransaction`` does (ISO-8859-1, XML, not empty,
  ``NomFic``, ``CodCol`` length, ``NomFic``+``CodCol`` unicity, ``IdColl`` length; no
  XSD validation): a failure ends in error (-1) with S²LOW's message;
- a file S²LOW accepts moves one status per ``step_delay``: 2 (queued), 3
  (transmitted), then the treasury's answer: a file breaking the PES schema, or whose
  ``NomFic`` holds ``REFUS``, is refused (6) with a negative ``PES_ACQUIT`` that breaks
  the XSD as Hélios's do (``CodCol`` 000, error code and text); ``ERREUR``: -1;
  ``INFO``: 8 (information available, acquit); ``ARCHIV``: 4, then 9 and 10
  (archiving); otherwise 4, and a ``PES_Retour`` waits in the authority's list;
- ``list_pes_aller.php`` answers only archivist accounts (``archivists``), ids only.

``/_sim/helios/counts``: transactions created per account and file name
(``submissions``), and every post received (``posts``).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from lxml import etree

from connectors.simulator import SubmissionCounter
from schemas.pes import ACQUIT_NS, PesError, PesInfo, build_acquit, build_retour, validate_aller
from schemas.text import ascii_digits

DUPLICATE = "doublon détecté. Ce fichier a déjà été posté."
NO_FILE = "Aucune enveloppe trouvée : la taille de l'enveloppe dépasse probablement la " \
          "taille maximum"
EMPTY = "Le fichier présenté est vide (0 octet)"
NOT_ARCHIVIST = "L'utilisateur n'est pas archiviste"
REFUSAL = "Bordereau rejeté par le comptable : pièce justificative absente"


@dataclass
class HeliosTx:
    id: int
    login: str
    filename: str
    sha1: str
    data: bytes
    info: PesInfo | None
    created: float
    history: list[tuple[int, str]] = field(default_factory=list)
    acquit: bytes | None = None
    done: int = 0
    scenario: str = "ack"
    error: str = ""
    submitted: str = field(default_factory=lambda: date.today().isoformat())

    @property
    def status(self) -> int:
        return self.history[-1][0]


@dataclass
class Retour:
    id: int
    login: str
    name: str
    data: bytes
    read: bool = False


class HeliosSimulator:
    """State of the HELIOS half of the simulated S²LOW."""

    def __init__(self, *, step_delay: float = 0.0, archivists: set[str] | None = None,
                 login_of: Any = None) -> None:
        self.step_delay = step_delay
        self.archivists = set(archivists or ())
        self.login_of = login_of or (lambda request: "")
        self.transactions: dict[int, HeliosTx] = {}
        self.retours: dict[int, Retour] = {}
        self.submissions = SubmissionCounter()
        self.posts = SubmissionCounter()
        self.lock = threading.RLock()

    def mount(self, app: FastAPI) -> None:
        """Add the HELIOS endpoints to ``app`` (the S²LOW simulator's)."""
        app.add_api_route("/modules/helios/api/helios_importer_fichier.php", self._import,
                          methods=["POST"])
        app.add_api_route("/modules/helios/api/list_pes_aller.php", self._list,
                          methods=["GET"])
        for path, handler in {
            "api/helios_transac_get_status.php": self._status,
            "helios_download_acquit.php": self._acquit,
            "helios_download_file.php": self._file,
            "api/helios_get_list.php": self._retour_list,
            "api/helios_get_retour.php": self._retour,
            "api/helios_change_status.php": self._retour_read,
        }.items():
            app.add_api_route(f"/modules/helios/{path}", handler, methods=["GET", "POST"])
        app.add_api_route("/_sim/helios/counts", self._counts, methods=["GET"])

    # ------------------------------------------------------------ life cycle

    def _advance(self) -> None:
        now = time.monotonic()
        with self.lock:
            for tx in self.transactions.values():
                plan = self._plan(tx)
                steps = len(plan) if self.step_delay <= 0 else int((now - tx.created)
                                                                   / self.step_delay)
                while tx.done < min(steps, len(plan)):
                    plan[tx.done](tx)
                    tx.done += 1

    def _plan(self, tx: HeliosTx) -> list[Any]:
        def move(status: int, message: str) -> Any:
            return lambda t: t.history.append((status, message))

        if tx.scenario == "invalid":  # S²LOW's own analysis refused it
            return [move(-1, f"Transaction {tx.id} : {tx.error}")]
        steps = [move(2, f"Transaction {tx.id} dans la file d'attente"),
                 move(3, f"Transaction {tx.id} transmise au serveur.")]
        if tx.scenario == "error":
            return [*steps, move(-1, "Erreur lors de la transmission au trésor")]
        if tx.scenario == "refused":
            return [*steps, self._refuse]
        if tx.scenario == "info":
            return [*steps, lambda t: self._acknowledge(t, 8, "Information disponible")]
        ack = [*steps, lambda t: self._acknowledge(t, 4, "Acquittement reçu")]
        if tx.scenario == "archive":
            return [*ack, move(9, "Envoyé au SAE"), move(10, "Accepté par le SAE")]
        return ack

    def _acknowledge(self, tx: HeliosTx, status: int, message: str) -> None:
        assert tx.info is not None
        tx.acquit = build_acquit(tx.info, accepted=True)
        tx.history.append((status, message))
        with self.lock:
            rid = max(self.retours, default=0) + 1
            name = f"PES_RETOUR_{tx.info.file_name or tx.filename}.xml"
            self.retours[rid] = Retour(rid, tx.login, name, build_retour(tx.info))

    def _refuse(self, tx: HeliosTx) -> None:
        assert tx.info is not None
        tx.acquit = treasury_refusal(tx.info, tx.error or REFUSAL)
        tx.history.append((6, "Refusé par le comptable"))

    # ------------------------------------------------------------ endpoints

    async def _import(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("enveloppe")
        login = self.login_of(request)
        if upload is None or isinstance(upload, str):
            return _import_answer(None, "KO", NO_FILE)
        name = upload.filename or ""
        data = await upload.read()
        self.posts.add(f"{login}/{name}")
        if not data:
            return _import_answer(None, "KO", EMPTY)
        sha1 = hashlib.sha1(data).hexdigest()
        with self.lock:  # S²LOW: "select count(id) FROM helios_transactions WHERE sha1=?"
            if any(t.sha1 == sha1 for t in self.transactions.values()):
                return _import_answer(None, "KO", DUPLICATE)
            tid = max(self.transactions, default=0) + 1
            tx = HeliosTx(tid, login, name, sha1, data, None, time.monotonic())
            tx.history.append((1, "Fichier bien reçu par la plate-forme S2low"))
            self.transactions[tid] = tx
            self.submissions.add(f"{login}/{name}")
            tx.info, error = analyse(data, self._nom_fic_taken)
            if error:
                tx.scenario, tx.error = "invalid", error
        if not error:
            await asyncio.to_thread(self._treasury_outcome, tx, name)
        return _import_answer(tid, "OK", "Téléchargement du fichier réussi.")

    def _nom_fic_taken(self, nom_fic: str, cod_col: str) -> bool:
        """``HeliosTransactionsSQL::nomFicExists``: any earlier accepted file."""
        return any(t.info is not None and t.scenario != "invalid"
                   and (t.info.file_name, t.info.code_col) == (nom_fic, cod_col)
                   for t in self.transactions.values())

    def _treasury_outcome(self, tx: HeliosTx, name: str) -> None:
        """What Hélios will answer: its schema is the treasury's, then the markers."""
        try:
            tx.info = validate_aller([tx.data])
        except PesError as exc:  # Hélios refuses it, as S²LOW's fixtures show
            tx.scenario = "refused"
            tx.error = f"Erreur de validation XSD en boite 1 [{exc}]"
            return
        marker = (tx.info.file_name or name).upper()
        tx.scenario = next((s for m, s in (("REFUS", "refused"), ("ERREUR", "error"),
                                           ("INFO", "info"), ("ARCHIV", "archive"))
                            if m in marker), "ack")

    def _tx(self, request: Request, key: str) -> HeliosTx | str:
        self._advance()
        raw = request.query_params.get(key, "")
        if not raw:
            return "Pas de numéro de transaction."
        try:
            tx = self.transactions.get(int(raw))
        except ValueError:
            return "Numéro de transaction invalide"
        if tx is None:
            return "Numéro de transaction invalide"
        return tx if tx.login == self.login_of(request) else "Accès refusé"

    async def _status(self, request: Request) -> Response:
        tx = self._tx(request, "transaction")
        raw = request.query_params.get("transaction", "")
        if isinstance(tx, str):
            return _transaction(raw if ascii_digits(raw) else "0", "KO", tx, "")
        status, message = tx.history[-1]
        return _transaction(str(tx.id), "OK", message, str(status))

    async def _acquit(self, request: Request) -> Response:
        tx = self._tx(request, "id")
        if isinstance(tx, str) or tx.acquit is None:
            return RedirectResponse("/modules/helios/index.php", status_code=302)
        return Response(tx.acquit, media_type="text/xml",
                        headers={"Content-Disposition": f'attachment; filename="ACQUIT_{tx.id}'
                                                        '.xml"'})

    async def _file(self, request: Request) -> Response:
        tx = self._tx(request, "id")
        if isinstance(tx, str):
            return RedirectResponse("/modules/helios/index.php", status_code=302)
        return Response(tx.data, media_type="text/xml")

    async def _list(self, request: Request) -> Response:
        self._advance()
        login = self.login_of(request)
        if login not in self.archivists:
            return JSONResponse({"error": NOT_ARCHIVIST}, status_code=400)
        params = request.query_params
        status = _int(params.get("status_id"), 0)
        offset, limit = _int(params.get("offset"), 0), _int(params.get("limit"), 100)
        since = params.get("min_date") or ""
        with self.lock:
            rows = [{"id": t.id} for t in sorted(self.transactions.values(), key=lambda t: t.id)
                    if t.login == login and t.status == status and t.submitted >= since]
        return JSONResponse({"status_id": status, "authority_id": 1, "offset": offset,
                             "limit": limit, "transactions": rows[offset:offset + limit]})

    async def _retour_list(self, request: Request) -> Response:
        self._advance()
        login = self.login_of(request)
        with self.lock:
            rows = "".join(f"<pes_retour><id>{r.id}</id><nom>{escape(r.name)}</nom>"
                           f"<date>{date.today().isoformat()}</date></pes_retour>"
                           for r in self.retours.values() if r.login == login and not r.read)
        # S²LOW leaves <resultat> empty when the list succeeds
        return _xml(f"<liste><idColl>1</idColl><resultat/><message>liste réussi</message>"
                    f"<dateDemande>{time.strftime('%Y-%m-%d %I:%M:%S')}</dateDemande>{rows}"
                    "</liste>", "utf-8")

    async def _retour(self, request: Request) -> Response:
        retour = self._retour_of(request)
        if retour is None:
            rid = escape(request.query_params.get("id", ""))
            return _xml(f"<get_retour>\n  <id>{rid}</id>\n  <resultat>KO</resultat>\n"
                        "  <message>retour id n'est pas correcte</message>\n</get_retour>")
        return Response(retour.data, media_type="text/xml")

    async def _retour_read(self, request: Request) -> Response:
        retour = self._retour_of(request)
        rid = escape(request.query_params.get("id", ""))
        if retour is None:
            return _xml(f"<transaction>\n  <idRetour>{rid}</idRetour>\n  <resultat>KO"
                        "</resultat>\n  <message>Changement de status est echoué.</message>\n"
                        "</transaction>")
        retour.read = True
        return _xml(f"<transaction>\n  <idRetour>{rid}</idRetour>\n  <resultat>OK</resultat>"
                    "\n  <message>reussi de changer status</message>\n</transaction>")

    def _retour_of(self, request: Request) -> Retour | None:
        try:
            retour = self.retours.get(int(request.query_params.get("id", "")))
        except ValueError:
            return None
        return retour if retour is not None and retour.login == self.login_of(request) else None

    async def _counts(self) -> dict:
        return {"submissions": self.submissions.snapshot(), "posts": self.posts.snapshot(),
                "duplicates": self.submissions.duplicates(),
                "transactions": {f"{t.login}/{t.filename}": t.status
                                 for t in self.transactions.values()}}


def mount_helios(app: FastAPI, s2low: Any = None) -> HeliosSimulator:
    """Mount the HELIOS routes on an S²LOW simulator app (its pace, accounts)."""
    sim = HeliosSimulator(step_delay=float(getattr(s2low, "step_delay", 0.0)),
                          archivists=getattr(s2low, "archivists", None),
                          login_of=getattr(s2low, "login_of", None))
    sim.mount(app)
    return sim


def treasury_refusal(info: PesInfo, reason: str) -> bytes:
    """A negative PES_ACQUIT as Hélios emits them: ``CodCol`` 000 (breaks the XSD
    pattern), one element in error with its code and text."""
    xml = (f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<n:PES_ACQUIT xmlns:n="{ACQUIT_NS}">'
           f"<Enveloppe><Parametres><Version V=\"2\"/><TypFic V={quoteattr(info.file_type)}/>"
           f"<NomFic V={quoteattr(info.file_name)}/></Parametres><Emetteur><Sigle V=\"HELIOS\"/>"
           "<Adresse V=\"DGFIP\"/></Emetteur></Enveloppe><EnTetePES>"
           f"<DteStr V=\"{date.today().isoformat()}\"/><IdPost V={quoteattr(info.poste)}/>"
           f"<IdColl V={quoteattr(info.collectivity)}/><CodCol V=\"000\"/>"
           f"<CodBud V={quoteattr(info.code_bud)}/></EnTetePES><ACQUIT><EnTeteAcquit>"
           "<IdVer V=\"2\"/></EnTeteAcquit><ElementACQUIT><DomaineAck V=\"0\"/>"
           "<EtatAck V=\"0\"/><Erreur><NumAnoAck V=\"ERREUR_AUTRE\"/>"
           f"<LibelleAnoAck V={quoteattr(reason)}/></Erreur></ElementACQUIT></ACQUIT>"
           "</n:PES_ACQUIT>\n")
    return xml.encode("iso-8859-1", "replace")


def analyse(data: bytes, nom_fic_taken: Any) -> tuple[PesInfo, str]:
    """S²LOW's checks of a posted PES Aller (no XSD): its header and the first refusal."""
    info = PesInfo()
    if "ISO-8859-1" not in data[:50].decode("latin-1").upper():
        return info, "ce fichier n'est pas encodé en ISO-8859-1"
    try:
        root = etree.fromstring(data, etree.XMLParser(no_network=True, resolve_entities=False,
                                                      huge_tree=True))
    except etree.XMLSyntaxError:
        return info, "ce fichier n'est pas en XML"
    if not [c for c in root if c.tag not in ("Enveloppe", "EnTetePES")]:
        return info, "ce fichier ne contient ni bordereau, ni PJ, ni marché"

    def v(path: str) -> str:
        found = root.find(path)
        return found.get("V", "") if found is not None else ""

    info = PesInfo(file_name=v("Enveloppe/Parametres/NomFic"),
                   file_type=v("Enveloppe/Parametres/TypFic"), collectivity=v("EnTetePES/IdColl"),
                   code_col=v("EnTetePES/CodCol"), code_bud=v("EnTetePES/CodBud"),
                   poste=v("EnTetePES/IdPost"))
    if not info.file_name:
        return info, "La balise Enveloppe/Parametre/NomFic n'est pas présente ou est vide"
    if len(info.code_col) > 3:
        return info, "Le CodCol est trop long"
    if nom_fic_taken(info.file_name, info.code_col):
        return info, "ce fichier existe déjà sur la plateforme"
    if len(info.collectivity) > 14:
        return info, "La balise IdCol est trop longue"
    return info, ""


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw or default)
    except ValueError:
        return default


def _import_answer(tid: int | None, result: str, message: str) -> Response:
    """``<import>`` as ``HeliosController::importAPIAction`` writes it (DOM, UTF-8)."""
    return _xml(f"<import>\n  <id>{tid or ''}</id>\n  <resultat>{result}</resultat>\n"
                f"  <message>{escape(message)}</message>\n</import>", "utf-8")


def _transaction(tid: str, result: str, message: str, status: str) -> Response:
    """``HeliosAPIResponse``: declared ISO-8859-1, its text written in UTF-8 (quirk)."""
    body = (f'<?xml version="1.0" encoding="ISO-8859-1"?>\n<transaction >\n        '
            f"<id>{tid}</id><resultat>{result}</resultat><message>{escape(message)}</message>"
            f"<status>{status}</status></transaction>")
    return Response(body.encode("utf-8"), media_type="text/xml")


def _xml(body: str, encoding: str = "iso-8859-1") -> Response:
    head = f'<?xml version="1.0" encoding="{encoding.upper()}"?>\n'
    return Response((head + body + "\n").encode(encoding, "replace"), media_type="text/xml")
