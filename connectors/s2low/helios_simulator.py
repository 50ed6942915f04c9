"""The HELIOS routes of the S²LOW simulator (PES Aller to the treasury, acquits, returns).

Mounted on the S²LOW simulator app (``mount_helios``), so they share its
authentication, failure injection and life-cycle pace. A posted PES Aller is
validated against the DGFiP schema as it is read (refused with the schema's
message otherwise), then moves one status per ``step_delay``: posted (1), waiting
transmission (2), transmitted (3), acquit received (4) with a ``PES_ACQUIT`` valid
against its schema; a ``PES_Retour`` then waits in the authority's list. A
``NomFic`` containing ``REFUS`` ends refused (6, negative acquit), ``ERREUR`` in
error (-1). Imports are counted per account and file name (``/_sim/helios/counts``);
a second file with the same name is refused, as Hélios does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request, Response

from connectors.frames import read_chunks
from connectors.simulator import SubmissionCounter
from schemas.pes import PesError, PesInfo, build_acquit, build_retour, validate_aller

PLAN = ((2, "En attente de transmission"), (3, "Transmis"), (4, "Acquittement reçu"))


@dataclass
class HeliosTx:
    id: int
    login: str
    filename: str
    sha1: str
    info: PesInfo
    created: float
    history: list[tuple[int, str]] = field(default_factory=list)
    acquit: bytes | None = None
    done: int = 0
    scenario: str = "ack"
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

    def __init__(self, *, step_delay: float = 0.0) -> None:
        self.step_delay = step_delay
        self.transactions: dict[int, HeliosTx] = {}
        self.retours: dict[int, Retour] = {}
        self.submissions = SubmissionCounter()
        self.lock = threading.RLock()

    def mount(self, app: FastAPI) -> None:
        """Add the HELIOS endpoints to ``app`` (the S²LOW simulator's)."""
        app.add_api_route("/modules/helios/api/helios_importer_fichier.php", self._import,
                          methods=["POST"])
        for path, handler in {
            "api/helios_transac_get_status.php": self._status,
            "helios_download_acquit.php": self._acquit,
            "api/list_pes_aller.php": self._list,
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

        steps = [move(s, m) for s, m in PLAN[:2]]
        if tx.scenario == "error":
            return [*steps, move(-1, "Erreur lors de la transmission au trésor")]
        if tx.scenario == "refused":
            return [*steps, self._refuse]
        return [*steps, self._acknowledge]

    def _acknowledge(self, tx: HeliosTx) -> None:
        tx.acquit = build_acquit(tx.info, accepted=True)
        tx.history.append((4, "Acquittement reçu"))
        with self.lock:
            rid = max(self.retours, default=0) + 1
            name = f"PES_RETOUR_{tx.info.file_name or tx.filename}.xml"
            self.retours[rid] = Retour(rid, tx.login, name, build_retour(tx.info))

    def _refuse(self, tx: HeliosTx) -> None:
        tx.acquit = build_acquit(tx.info, accepted=False)
        tx.history.append((6, "Refusé par le trésor : bordereau rejeté"))

    # ------------------------------------------------------------ endpoints

    async def _import(self, request: Request) -> Response:
        form = await request.form()
        upload = form.get("enveloppe")
        if upload is None or isinstance(upload, str):
            return _import_answer(None, "KO", "Aucun fichier n'a été envoyé")
        name = upload.filename or "pes.xml"
        login = _login(request)
        sha1 = hashlib.sha1()

        def chunks() -> Any:
            upload.file.seek(0)
            for block in read_chunks(upload.file):
                sha1.update(block)
                yield block

        try:
            info = await asyncio.to_thread(validate_aller, chunks())
        except PesError as exc:
            self.submissions.add(f"{login}/{name}")
            return _import_answer(None, "KO", f"Le fichier PES n'est pas valide : {exc}")
        self.submissions.add(f"{login}/{name}")
        with self.lock:
            same = next((t for t in self.transactions.values()
                         if t.login == login and t.filename == name), None)
            if same is not None:
                return _import_answer(None, "KO", f"Le fichier {name} a déjà été transmis "
                                      f"(transaction {same.id})")
            tid = max(self.transactions, default=0) + 1
            marker = (info.file_name or name).upper()
            scenario = "refused" if "REFUS" in marker else "error" if "ERREUR" in marker \
                else "ack"
            tx = HeliosTx(tid, login, name, sha1.hexdigest(), info, time.monotonic(),
                          scenario=scenario)
            tx.history.append((1, "Posté"))
            self.transactions[tid] = tx
        return _import_answer(tid, "OK", "")

    def _tx(self, request: Request, key: str) -> HeliosTx | None:
        self._advance()
        try:
            tx = self.transactions.get(int(request.query_params.get(key, "")))
        except ValueError:
            return None
        return tx if tx is not None and tx.login == _login(request) else None

    async def _status(self, request: Request) -> Response:
        tx = self._tx(request, "transaction")
        if tx is None:
            return _xml("<transaction><resultat>KO</resultat><message>Transaction inconnue"
                        "</message></transaction>")
        status, message = tx.history[-1]
        return _xml(f"<transaction><id>{tx.id}</id><resultat>OK</resultat>"
                    f"<status>{status}</status><message>{escape(message)}</message>"
                    "</transaction>")

    async def _acquit(self, request: Request) -> Response:
        tx = self._tx(request, "id")
        if tx is None or tx.acquit is None:
            return Response("Pas d'acquittement pour cette transaction", media_type="text/plain")
        return Response(tx.acquit, media_type="text/xml")

    async def _list(self, request: Request) -> dict:
        self._advance()
        params = request.query_params
        status = int(params.get("status_id", "1") or 1)
        offset, limit = int(params.get("offset", "0") or 0), int(params.get("limit", "100") or 100)
        login = _login(request)
        with self.lock:
            rows = [{"id": t.id, "filename": t.filename, "sha1": t.sha1,
                     "submission_date": t.submitted, "status_id": t.status}
                    for t in self.transactions.values() if t.login == login
                    and t.status == status]
        return {"status_id": status, "offset": offset, "limit": limit,
                "transactions": rows[offset:offset + limit]}

    async def _retour_list(self, request: Request) -> Response:
        self._advance()
        login = _login(request)
        with self.lock:
            rows = "".join(f"<pes_retour><id>{r.id}</id><nom>{escape(r.name)}</nom>"
                           f"<date>{date.today().isoformat()}</date></pes_retour>"
                           for r in self.retours.values() if r.login == login and not r.read)
        return _xml(f"<liste><resultat>OK</resultat>{rows}</liste>")

    async def _retour(self, request: Request) -> Response:
        retour = self._retour_of(request)
        if retour is None:
            return _xml("<erreur>PES_Retour inconnu</erreur>")
        return Response(retour.data, media_type="text/xml")

    async def _retour_read(self, request: Request) -> Response:
        retour = self._retour_of(request)
        if retour is None:
            return _xml("<change><resultat>KO</resultat><message>PES_Retour inconnu</message>"
                        "</change>")
        retour.read = True
        return _xml(f"<change><id>{retour.id}</id><resultat>OK</resultat><message>"
                    "Statut modifié</message></change>")

    def _retour_of(self, request: Request) -> Retour | None:
        try:
            retour = self.retours.get(int(request.query_params.get("id", "")))
        except ValueError:
            return None
        return retour if retour is not None and retour.login == _login(request) else None

    async def _counts(self) -> dict:
        return {"submissions": self.submissions.snapshot(),
                "duplicates": self.submissions.duplicates(),
                "transactions": {f"{t.login}/{t.filename}": t.status
                                 for t in self.transactions.values()}}


def mount_helios(app: FastAPI, s2low: Any = None) -> HeliosSimulator:
    """Mount the HELIOS routes on an S²LOW simulator app (pace from its ``step_delay``)."""
    sim = HeliosSimulator(step_delay=float(getattr(s2low, "step_delay", 0.0)))
    sim.mount(app)
    return sim


def _login(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            return base64.b64decode(header[6:]).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return ""
    return ""


def _import_answer(tid: int | None, result: str, message: str) -> Response:
    return _xml(f"<import><id>{tid or ''}</id><resultat>{result}</resultat>"
                f"<message>{escape(message)}</message></import>")


def _xml(body: str) -> Response:
    return Response(f'<?xml version="1.0" encoding="ISO-8859-1"?>\n{body}'.encode(
        "iso-8859-1", "replace"), media_type="text/xml; charset=ISO-8859-1")
