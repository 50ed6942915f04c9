"""An i-Parapheur v5 server: the STANDARD API subset the bus uses, with failure injection.

Served: the Keycloak token endpoint (realm ``api``, password and refresh-token grants),
``/api/standard/v1`` tenants, desks, types, sub-types (Spring pages: ``page``, ``size``,
``sort``), folder creation (multipart: PREMIS ``folder`` part + ``documents`` parts,
``autoStart``), folder lists by state, PREMIS summary, ZIP export, START task and
deletion. Errors are Spring's ``ErrorResponse`` JSON (``timestamp``, ``status``, ``error``,
``message``, ``path``); a missing or expired token is a bare 401 with
``WWW-Authenticate: Bearer``. The internal ``/api/v1`` API is not served to API users.
Folders and their workflow: ``sim_state``. Controls under ``/_sim``: counts, failures,
config, acting now, the one-time code an external signer receives and enters.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from connectors.iparapheur import premis as premis_xml
from connectors.iparapheur.sim_state import (
    DESK_ID,
    DESK_NAME,
    SIGNING_ACTIONS,
    SUBTYPE_IDS,
    TENANT_ID,
    TENANT_NAME,
    TYPE_ID,
    TYPE_NAME,
    WORKFLOWS,
    SimDocument,
    SimFolder,
    SimStep,
    now,
)
from connectors.seal.keys import demo_ca
from connectors.seal.local import LocalSeal
from connectors.simulator import FailurePlan, HttpSimulator, SubmissionCounter

STD = "/api/standard/v1"
TOKEN_PATH = "/auth/realms/api/protocol/openid-connect/token"
CLIENT_ID = "ipcore-web"
DESK = f"{STD}/tenant/{{tenant_id}}/desk/{{desk_id}}"
FOLDER = f"{DESK}/folder/{{folder_id}}"
STATES = ("DRAFT", "PENDING", "LATE", "DELEGATED", "FINISHED", "REJECTED", "RETRIEVABLE",
          "DOWNSTREAM")
FOLDER_SORT = {"VALIDATION_START_DATE", "CREATION_DATE", "STILL_SINCE_DATE", "LATE_DATE",
               "END_DATE", "TASK_ID", "FOLDER_ID", "FOLDER_NAME", "TYPE_ID", "TYPE_NAME",
               "SUBTYPE_ID", "SUBTYPE_NAME", "ACTION_TYPE"}
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           409: "Conflict", 503: "Service Unavailable"}


def error(status: int, message: str) -> HTTPException:
    return HTTPException(status_code=status, detail=message)


def spring_page(items: list[Any], page: int, size: int) -> dict[str, Any]:
    """A Spring Data page of ``items`` (page ``page`` of ``size`` elements)."""
    if page < 0 or size < 1:
        raise error(400, "Page index must not be less than zero and page size must not be "
                         "less than one")
    chunk = items[page * size:(page + 1) * size]
    pages = (len(items) + size - 1) // size
    return {"content": chunk, "totalElements": len(items), "totalPages": pages,
            "number": page, "size": size, "numberOfElements": len(chunk),
            "first": page == 0, "last": page + 1 >= pages, "empty": not chunk,
            "pageable": {"pageNumber": page, "pageSize": size, "offset": page * size,
                         "paged": True, "unpaged": False}}


class IparapheurSimulator(HttpSimulator):
    """The app, its folders, its creation counter and its signing keys."""

    title = "i-Parapheur v5 simulator"

    def __init__(self, failures: FailurePlan | None = None, *, step_seconds: float = 0.5,
                 key_dir: Path | None = None, username: str = "demat",
                 password: str = "demat", token_seconds: float = 300.0) -> None:
        super().__init__(failures)
        self.step_seconds = step_seconds
        self.token_seconds = token_seconds
        self.created = SubmissionCounter()
        self.folders: dict[str, SimFolder] = {}
        self.lock = threading.Lock()
        self.key_dir = key_dir or Path(tempfile.mkdtemp(prefix="iparapheur-sim-keys-"))
        self.seal = LocalSeal.from_options(  # simulator-owned demo keys, one per signer
            {"demo_prefix": "", "demo_organization": "i-Parapheur simulator DEMO - not for "
                                                     "production"}, var_dir=self.key_dir)
        self.credentials = (username, password)
        self.tokens: dict[str, float] = {}  # access token -> expiry (monotonic)
        self.refresh_tokens: set[str] = set()
        self.app = self._build()

    def counts(self) -> dict[str, Any]:
        return {"created": self.created.snapshot(), "duplicates": self.created.duplicates()}

    # --- workflow ---------------------------------------------------------------------

    async def advance(self, folder: SimFolder) -> None:
        """Complete every task whose time has come (lazily, on each read)."""
        while (found := folder.due(self.step_seconds)) is not None:
            index, step = found
            reason = folder.rejects_at(index)
            if not reason and step.action in SIGNING_ACTIONS:
                for doc in folder.documents:
                    if doc.main:
                        await self._sign(doc, step.user)
            folder.close(index, step, reason)

    async def _sign(self, doc: SimDocument, signer: str) -> None:
        result = await self.seal.seal(signer, doc.data, doc.media_type)
        if result.detached:
            doc.detached.append((f"{doc.name}.{len(doc.detached) + 1}.p7s", result.data))
        else:
            doc.data = result.data

    def enter_code(self, folder_id: str, code: str) -> bool:
        folder = self.folders.get(folder_id)
        if folder is None:
            raise KeyError(folder_id)
        found = folder.current()
        step = found[1] if found else None
        if step is None or step.otp is None or not secrets.compare_digest(step.otp, code):
            return False
        step.otp, step.started = None, time.monotonic() - 10**9  # done at the next read
        return True

    # --- HTTP -------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = self.new_app()
        _error_responses(app)
        _controls(app, self)
        _auth(app, self)
        _typology(app, self)
        _folders(app, self)
        _refusals(app)
        return app

    async def guard(self, request: Request, tenant_id: str | None = None,
                    desk_id: str | None = None, *, failures: bool = True) -> None:
        """Token, tenant and desk checks of every standard API call."""
        if failures:
            await self.failures.apply()
        auth = request.headers.get("Authorization", "")
        expiry = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if expiry is None or time.monotonic() > expiry:
            raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if tenant_id is not None and tenant_id != TENANT_ID:
            raise error(404, f"Tenant not found: {tenant_id}")
        if desk_id is not None and desk_id != DESK_ID:
            raise error(403, f"Desk {desk_id} is not attached to the current user")

    async def folder(self, folder_id: str) -> SimFolder:
        folder = self.folders.get(folder_id)
        if folder is None:
            raise error(404, f"Folder not found: {folder_id}")
        await self.advance(folder)
        return folder

    async def new_folder(self, form: Any) -> SimFolder:
        """A draft folder from a creation request (the PREMIS part and the documents)."""
        part = form.get("folder")
        if part is None:
            raise error(400, "Required part 'folder' is not present.")
        uploads = [u for u in form.getlist("documents") if hasattr(u, "read")]
        if not uploads:
            raise error(400, "Required part 'documents' is not present.")
        raw = part.encode() if isinstance(part, str) else await part.read()
        try:
            draft = premis_xml.parse(raw)
        except premis_xml.PremisError as exc:
            raise error(400, f"folder: invalid PREMIS: {exc}") from None
        subtype = _typology_check(draft)
        declared = {f.name: f.main for f in draft.files}
        names = [u.filename or "" for u in uploads]
        if sorted(names) != sorted(declared) or not any(declared.values()):
            raise error(400, f"documents {names} do not match the PREMIS file objects "
                             f"{sorted(declared)} (at least one main document)")
        docs = [SimDocument(str(uuid.uuid4()), u.filename or "", u.content_type or
                            "application/octet-stream", await u.read(), declared[u.filename])
                for u in uploads]
        steps = [SimStep(a, d, u) for a, d, u in WORKFLOWS[subtype]]
        return SimFolder(str(uuid.uuid4()), draft.name, subtype, dict(draft.metadata), docs,
                         steps)


def _typology_check(draft: premis_xml.Premis) -> str:
    """The sub-type name of a creation PREMIS (ids or names accepted, as documented)."""
    if not draft.name:
        raise error(400, "folder: the intellectualEntity has no originalName (folder name)")
    if draft.type not in (TYPE_ID, TYPE_NAME):
        raise error(400, f"folder: unknown type {draft.type!r} ({premis_xml.TYPE})")
    by_id = {v: k for k, v in SUBTYPE_IDS.items()}
    subtype = by_id.get(draft.subtype, draft.subtype)
    if subtype not in WORKFLOWS:
        raise error(400, f"folder: unknown subtype {draft.subtype!r} ({premis_xml.SUBTYPE}) "
                         f"of type {TYPE_NAME}")
    return subtype


def _error_responses(app: FastAPI) -> None:
    """Errors in Spring Boot's shape (i-Parapheur's ``ErrorResponse``)."""

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 401:
            return Response(status_code=401, headers=exc.headers)
        return JSONResponse(status_code=exc.status_code, headers=exc.headers, content={
            "timestamp": now(), "status": exc.status_code,
            "error": REASONS.get(exc.status_code, "Error"), "message": str(exc.detail),
            "path": request.url.path})

    @app.exception_handler(RequestValidationError)
    async def bad_params(request: Request, exc: RequestValidationError) -> Response:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=400, content={
            "timestamp": now(), "status": 400, "error": "Bad Request", "message": where,
            "path": request.url.path})


def _controls(app: FastAPI, sim: IparapheurSimulator) -> None:
    @app.post("/_sim/config")
    async def set_config(cfg: dict) -> dict:
        sim.step_seconds = float(cfg.get("step_seconds", sim.step_seconds))
        sim.token_seconds = float(cfg.get("token_seconds", sim.token_seconds))
        return {"step_seconds": sim.step_seconds, "token_seconds": sim.token_seconds}

    @app.get("/_sim/ca")
    async def ca() -> Response:
        return Response(demo_ca(sim.key_dir).cert_pem(), media_type="application/x-pem-file")

    @app.post("/_sim/act/{folder_id}")
    async def act(folder_id: str) -> dict:
        """The current desk acts now (a signer who does not wait for the pace)."""
        folder = await sim.folder(folder_id)
        found = folder.current()
        if found is None or found[1].otp is not None:
            raise error(409, "no task can act now")
        found[1].started = time.monotonic() - 10**9
        await sim.advance(folder)
        return {"state": folder.state}

    @app.get("/_sim/otp/{folder_id}")
    async def read_code(folder_id: str) -> dict:
        """What the external signer receives (by SMS or mail) for the current task."""
        found = (await sim.folder(folder_id)).current()
        return {"code": found[1].otp if found else None}

    @app.post("/_sim/otp/{folder_id}")
    async def enter_code(folder_id: str, body: dict) -> dict:
        """The external signer enters the one-time code and signs."""
        await sim.folder(folder_id)
        if not sim.enter_code(folder_id, str(body.get("code", ""))):
            raise error(403, "wrong or expired one-time code")
        return {"accepted": True}


def _auth(app: FastAPI, sim: IparapheurSimulator) -> None:
    @app.post(TOKEN_PATH)
    async def token(request: Request) -> Response:
        """Keycloak's token endpoint (form-encoded grants, OAuth error JSON)."""
        await sim.failures.apply()
        form = await request.form()
        grant, client = form.get("grant_type"), form.get("client_id")
        if client != CLIENT_ID:
            return _oauth_error(401, "invalid_client", "Invalid client or Invalid client "
                                                       "credentials")
        if grant == "password":
            if (form.get("username"), form.get("password")) != sim.credentials:
                return _oauth_error(401, "invalid_grant", "Invalid user credentials")
        elif grant == "refresh_token":
            if form.get("refresh_token") not in sim.refresh_tokens:
                return _oauth_error(400, "invalid_grant", "Invalid refresh token")
            sim.refresh_tokens.discard(str(form.get("refresh_token")))
        else:
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        sim.tokens[access] = time.monotonic() + sim.token_seconds
        sim.refresh_tokens.add(refresh)
        return JSONResponse({"access_token": access, "token_type": "Bearer",
                             "expires_in": int(sim.token_seconds), "refresh_token": refresh,
                             "refresh_expires_in": 1800, "scope": "profile email"})


def _oauth_error(status: int, code: str, description: str) -> Response:
    return JSONResponse(status_code=status,
                        content={"error": code, "error_description": description})


def _typology(app: FastAPI, sim: IparapheurSimulator) -> None:
    @app.get(f"{STD}/tenant")
    async def tenants(request: Request, page: int = 0, size: int = 10) -> dict:
        await sim.guard(request)
        return spring_page([{"id": TENANT_ID, "name": TENANT_NAME}], page, size)

    @app.get(f"{STD}/tenant/{{tenant_id}}/desk")
    async def desks(tenant_id: str, request: Request, page: int = 0, size: int = 10) -> dict:
        await sim.guard(request, tenant_id)
        return spring_page([{"id": DESK_ID, "name": DESK_NAME, "tenantId": TENANT_ID}],
                           page, size)

    @app.get(f"{STD}/tenant/{{tenant_id}}/types")
    async def types(tenant_id: str, request: Request, page: int = 0, size: int = 10) -> dict:
        await sim.guard(request, tenant_id)
        return spring_page([{"id": TYPE_ID, "name": TYPE_NAME, "description": "Démo"}],
                           page, size)

    @app.get(f"{STD}/tenant/{{tenant_id}}/types/{{type_id}}/subtypes")
    async def subtypes(tenant_id: str, type_id: str, request: Request, page: int = 0,
                       size: int = 10) -> dict:
        await sim.guard(request, tenant_id)
        if type_id != TYPE_ID:
            raise error(404, f"Type not found: {type_id}")
        return spring_page([{"id": SUBTYPE_IDS[n], "name": n} for n in WORKFLOWS], page, size)


def _folders(app: FastAPI, sim: IparapheurSimulator) -> None:
    @app.post(f"{DESK}/folder", status_code=201)
    async def create(tenant_id: str, desk_id: str, request: Request,
                     autoStart: bool = True) -> dict:
        outcome = sim.failures.draw()  # a timeout loses the answer, not the effect
        if outcome == "error":
            raise error(503, "injected failure")
        await sim.guard(request, tenant_id, desk_id, failures=False)
        folder = await sim.new_folder(await request.form())
        with sim.lock:
            sim.folders[folder.id] = folder
        sim.created.add(folder.name)
        if autoStart:
            folder.begin()
        if outcome == "timeout":
            await asyncio.sleep(sim.failures.timeout_seconds)
        return folder.representation()

    @app.get(f"{DESK}/{{state}}")
    async def list_folders(tenant_id: str, desk_id: str, state: str, request: Request,
                           page: int = 0, size: int = 10, sort: str = "",
                           typeId: str = "", subtypeId: str = "") -> dict:
        await sim.guard(request, tenant_id, desk_id)
        if state not in STATES:
            raise error(400, f"Failed to convert value of type 'java.lang.String' to required "
                             f"type 'State'; No enum constant State.{state}")
        for folder in list(sim.folders.values()):
            await sim.advance(folder)
        found = [f for f in sim.folders.values() if _listed(f, state)
                 and typeId in ("", TYPE_ID) and subtypeId in ("", SUBTYPE_IDS[f.subtype])]
        found = _sorted(found, sort)
        return spring_page([f.representation() for f in found], page, size)

    @app.get(f"{FOLDER}/premis")
    async def summary(tenant_id: str, desk_id: str, folder_id: str,
                      request: Request) -> Response:
        await sim.guard(request, tenant_id, desk_id)
        folder = await sim.folder(folder_id)
        return Response(folder.premis().to_xml(), media_type="application/xml")

    @app.get(f"{FOLDER}/zip")
    async def export(tenant_id: str, desk_id: str, folder_id: str,
                     request: Request) -> Response:
        await sim.guard(request, tenant_id, desk_id)
        folder = await sim.folder(folder_id)
        return Response(folder.zip(), media_type="application/octet-stream", headers={
            "Content-Disposition": f'attachment; filename="{folder.name}.zip"'})

    @app.put(f"{FOLDER}/task/{{task_id}}/start")
    async def start(tenant_id: str, desk_id: str, folder_id: str, task_id: str,
                    request: Request) -> Response:
        await sim.guard(request, tenant_id, desk_id)
        folder = await sim.folder(folder_id)
        if task_id != folder.start_task:
            raise error(404, f"Task not found: {task_id}")
        if folder.state != "DRAFT":
            raise error(409, f"Folder {folder_id} is already started")
        params = await request.json()
        folder.begin({str(k): str(v) for k, v in (params.get("metadata") or {}).items()})
        return Response(status_code=200)

    @app.delete(FOLDER, status_code=204)
    async def delete(tenant_id: str, desk_id: str, folder_id: str,
                     request: Request) -> Response:
        await sim.guard(request, tenant_id, desk_id)
        folder = await sim.folder(folder_id)
        if folder.state == "PENDING":
            raise error(403, "Pending folders cannot be deleted here (admin access point)")
        with sim.lock:
            sim.folders.pop(folder_id, None)
        return Response(status_code=204)


def _listed(folder: SimFolder, state: str) -> bool:
    """Whether the bus desk sees ``folder`` in its ``state`` list (the signers' desks
    are other desks: DOWNSTREAM holds what the bus desk started)."""
    if state == "DOWNSTREAM":
        return folder.state != "DRAFT"
    return folder.state == state and state in ("DRAFT", "FINISHED", "REJECTED")


def _sorted(folders: list[SimFolder], sort: str) -> list[SimFolder]:
    """Spring's ``sort=property,(asc|desc)`` restricted to the FolderSortBy values."""
    if not sort:
        return sorted(folders, key=lambda f: f.order)
    prop, _, direction = sort.partition(",")
    if prop not in FOLDER_SORT or direction.lower() not in ("", "asc", "desc"):
        raise error(400, f"sort: {sort!r} is not property,(asc|desc) with property one of "
                         f"{', '.join(sorted(FOLDER_SORT))}")
    keys = {"FOLDER_NAME": lambda f: f.name, "FOLDER_ID": lambda f: f.id}
    return sorted(folders, key=keys.get(prop, lambda f: f.order),
                  reverse=direction.lower() == "desc")


def _refusals(app: FastAPI) -> None:
    """The internal API of the web client (``/api/v1``) is not for API users."""

    @app.api_route("/api/v1/{rest:path}", methods=["GET", "POST", "PUT", "DELETE"])
    async def internal(rest: str, request: Request) -> Response:
        raise error(404, "No static resource " + request.url.path.lstrip("/") + ".")
