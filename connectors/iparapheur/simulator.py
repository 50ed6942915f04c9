"""An i-Parapheur v5 server (the REST subset the bus uses), with failure injection.

Life-cycle of a folder: created (``DRAFT``), started (``PENDING``), each workflow step
done after ``step_seconds`` (visa, signature, seal; an external signature waits for its
one-time code), then ``FINISHED`` or ``REJECTED`` with the signer's reason. Signature
steps really sign the documents with simulator-owned demo keys (one per signer): PAdES
for PDF, XAdES (per bordereau for PES) for XML, detached CMS for other files.

Simulator-only conventions (folder metadata, never sent by production flows):
``sim_reject`` (reason: the folder is rejected at step ``sim_reject_step``, default the
last one), ``sim_step_seconds`` (this folder's pace). Controls under ``/_sim``: counts,
failures, config, the one-time code an external signer receives and enters.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, HTTPException, Request, Response

from connectors.seal import LocalSeal
from connectors.seal.keys import demo_ca
from connectors.simulator import (
    FailurePlan,
    HttpSimulator,
    SubmissionCounter,
)

STD = "/api/standard/v1"
INTERNAL = "/api/v1"
TENANT_ID = "b7a0f6d2-0000-4000-8000-000000000001"
DESK_ID = "d35c0000-0000-4000-8000-000000000001"
TYPE_ID = "DEMAT"
TOKEN_PATH = "/auth/realms/api/protocol/openid-connect/token"

# sub-type -> workflow steps (action, desk / signer name)
WORKFLOWS: dict[str, list[tuple[str, str]]] = {
    "signature": [("SIGNATURE", "Maire de Démo-sur-Rhône")],
    "visa-signature": [("VISA", "Directeur général des services"),
                       ("SIGNATURE", "Maire de Démo-sur-Rhône")],
    "double-signature": [("SIGNATURE", "Autorité territoriale"), ("SIGNATURE", "Agent")],
    "external": [("EXTERNAL_SIGNATURE", "Signataire externe")],
    "seal": [("SEAL", "Cachet de la collectivité")],
}
SIGNING_ACTIONS = {"SIGNATURE", "EXTERNAL_SIGNATURE", "SEAL"}


@dataclass
class SimDocument:
    id: str
    name: str
    media_type: str
    data: bytes
    main: bool
    detached: list[tuple[str, str, bytes]] = field(default_factory=list)  # id, name, CMS

    def representation(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "mediaType": self.media_type,
                "isMainDocument": self.main, "contentLength": len(self.data),
                "detachedSignatures": [{"id": i, "name": n} for i, n, _ in self.detached]}


@dataclass
class SimStep:
    action: str
    desk: str
    state: str = "PENDING"  # PENDING, CURRENT, VALIDATED, REJECTED
    started: float | None = None
    date: str | None = None
    annotation: str | None = None
    otp: str | None = None


@dataclass
class SimFolder:
    id: str
    name: str
    subtype: str
    metadata: dict[str, Any]
    documents: list[SimDocument]
    steps: list[SimStep]
    state: str = "DRAFT"
    created: str = field(default_factory=lambda: _now())
    history: list[dict[str, Any]] = field(default_factory=list)

    def representation(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "state": self.state, "typeId": TYPE_ID,
                "subtypeId": self.subtype, "metadata": self.metadata,
                "creationDate": self.created,
                "stepList": [{"action": s.action, "desk": {"name": s.desk}, "state": s.state,
                              "date": s.date, "publicAnnotation": s.annotation}
                             for s in self.steps],
                "documentList": [d.representation() for d in self.documents]}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class IparapheurSimulator(HttpSimulator):
    """The app, its folders, its creation counter and its signing keys."""

    title = "i-Parapheur v5 simulator"

    def counts(self) -> dict[str, Any]:
        return {"created": self.created.snapshot(), "duplicates": self.created.duplicates()}


    def __init__(self, failures: FailurePlan | None = None, *, step_seconds: float = 0.5,
                 key_dir: Path | None = None, username: str = "demat",
                 password: str = "demat") -> None:
        super().__init__(failures)
        self.step_seconds = step_seconds
        self.created = SubmissionCounter()
        self.folders: dict[str, SimFolder] = {}
        self.lock = threading.Lock()
        self.key_dir = key_dir or Path(tempfile.mkdtemp(prefix="iparapheur-sim-keys-"))
        self.seal = LocalSeal.from_options(  # simulator-owned demo keys, one per signer
            {"demo_prefix": "", "demo_organization": "i-Parapheur simulator DEMO - not for "
                                                     "production"}, var_dir=self.key_dir)
        self.credentials = (username, password)
        self.tokens: set[str] = set()
        self.app = self._build()

    # --- workflow ---------------------------------------------------------------------

    def begin(self, folder: SimFolder) -> None:
        folder.state = "PENDING"
        folder.history.append({"action": "START", "state": "VALIDATED", "date": _now(),
                               "user": "demat-bus", "publicAnnotation": None})
        self._begin(folder, 0)

    def _begin(self, folder: SimFolder, index: int) -> None:
        step = folder.steps[index]
        step.state, step.started = "CURRENT", time.monotonic()
        if step.action == "EXTERNAL_SIGNATURE":
            step.otp = f"{secrets.randbelow(10**6):06d}"  # "sent" to the external signer

    async def advance(self, folder: SimFolder) -> None:
        """Complete every step whose time has come (lazily, on each read)."""
        pace = float(folder.metadata.get("sim_step_seconds", self.step_seconds))
        while folder.state == "PENDING":
            index, step = next((i, s) for i, s in enumerate(folder.steps)
                               if s.state == "CURRENT")
            if step.action == "EXTERNAL_SIGNATURE" and step.otp is not None:
                return  # waits for the one-time code
            if time.monotonic() - (step.started or 0) < pace:
                return
            await self._complete(folder, index, step)

    async def _complete(self, folder: SimFolder, index: int, step: SimStep) -> None:
        reason = folder.metadata.get("sim_reject")
        reject_at = int(folder.metadata.get("sim_reject_step", len(folder.steps) - 1))
        step.date = _now()
        if reason and index == reject_at:
            step.state, step.annotation, folder.state = "REJECTED", str(reason), "REJECTED"
            folder.history.append({"action": step.action, "state": "REJECTED",
                                   "user": step.desk, "date": step.date,
                                   "publicAnnotation": str(reason)})
            return
        if step.action in SIGNING_ACTIONS:
            for doc in folder.documents:
                await self._sign(doc, step.desk)
        step.state = "VALIDATED"
        folder.history.append({"action": step.action, "state": "VALIDATED", "user": step.desk,
                               "date": step.date, "publicAnnotation": None})
        if index + 1 < len(folder.steps):
            self._begin(folder, index + 1)
        else:
            folder.state = "FINISHED"

    async def _sign(self, doc: SimDocument, signer: str) -> None:
        result = await self.seal.seal(signer, doc.data, doc.media_type)
        if result.detached:
            doc.detached.append((uuid.uuid4().hex, f"{doc.name}.{len(doc.detached) + 1}.p7s",
                                 result.data))
        else:
            doc.data = result.data

    def enter_code(self, folder_id: str, code: str) -> bool:
        folder = self.folders.get(folder_id)
        if folder is None:
            raise KeyError(folder_id)
        step = next((s for s in folder.steps if s.state == "CURRENT"), None)
        if step is None or step.otp is None or not secrets.compare_digest(step.otp, code):
            return False
        step.otp, step.started = None, time.monotonic() - 3600  # done at the next read
        return True

    # --- HTTP -------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = self.new_app()
        sim = self

        @app.post("/_sim/config")
        async def set_config(cfg: dict) -> dict:
            sim.step_seconds = float(cfg.get("step_seconds", sim.step_seconds))
            return {"step_seconds": sim.step_seconds}

        @app.get("/_sim/ca")
        async def ca() -> Response:
            return Response(demo_ca(sim.key_dir).cert_pem(), media_type="application/x-pem-file")

        @app.post("/_sim/act/{folder_id}")
        async def act(folder_id: str) -> dict:
            """The current desk acts now (a signer who does not wait for the pace)."""
            folder = sim._folder(folder_id)
            step = next((s for s in folder.steps if s.state == "CURRENT"), None)
            if step is None or step.otp is not None:
                raise HTTPException(status_code=409, detail="no step can act now")
            step.started = time.monotonic() - 10**9
            await sim.advance(folder)
            return {"state": folder.state}

        @app.get("/_sim/otp/{folder_id}")
        async def read_code(folder_id: str) -> dict:
            """What the external signer receives (by SMS or mail) for the current step."""
            folder = sim._folder(folder_id)
            step = next((s for s in folder.steps if s.state == "CURRENT"), None)
            return {"code": step.otp if step else None}

        @app.post("/_sim/otp/{folder_id}")
        async def enter_code(folder_id: str, body: dict) -> dict:
            """The external signer enters the one-time code and signs."""
            sim._folder(folder_id)
            if not sim.enter_code(folder_id, str(body.get("code", ""))):
                raise HTTPException(status_code=403, detail="wrong or expired one-time code")
            return {"accepted": True}

        @app.post(TOKEN_PATH)
        async def token(username: str = Form(""), password: str = Form(""),
                        grant_type: str = Form("password")) -> dict:
            await sim.failures.apply()
            if grant_type != "password" or (username, password) != sim.credentials:
                raise HTTPException(status_code=401, detail="invalid_grant")
            value = secrets.token_urlsafe(24)
            sim.tokens.add(value)
            return {"access_token": value, "token_type": "Bearer", "expires_in": 300}

        @app.get(f"{STD}/tenant")
        async def tenants(request: Request) -> dict:
            await sim._guard(request)
            return {"content": [{"id": TENANT_ID, "name": "Démo"}], "totalElements": 1}

        @app.get(f"{STD}/tenant/{{tenant_id}}/types")
        async def types(tenant_id: str, request: Request) -> dict:
            await sim._guard(request, tenant_id)
            return {"content": [{"id": TYPE_ID, "name": TYPE_ID}], "totalElements": 1}

        @app.get(f"{STD}/tenant/{{tenant_id}}/types/{{type_id}}/subtypes")
        async def subtypes(tenant_id: str, type_id: str, request: Request) -> dict:
            await sim._guard(request, tenant_id)
            return {"content": [{"id": n, "name": n, "steps": [a for a, _ in w]}
                                for n, w in WORKFLOWS.items()], "totalElements": len(WORKFLOWS)}

        @app.post(f"{STD}/tenant/{{tenant_id}}/desk/{{desk_id}}/folder", status_code=201)
        async def create(tenant_id: str, desk_id: str, request: Request,
                         autoStart: bool = True) -> dict:
            outcome = sim.failures.draw()  # a timeout loses the answer, not the effect
            if outcome == "error":
                raise HTTPException(status_code=503, detail="injected failure")
            await sim._guard(request, tenant_id, desk_id, failures=False)
            form = await request.form()
            folder = await sim._new_folder(form)
            for upload in form.getlist("documents"):
                if hasattr(upload, "read"):
                    data = await upload.read()
                    folder.documents.append(SimDocument(
                        uuid.uuid4().hex, upload.filename or "document",
                        upload.content_type or "application/octet-stream", data,
                        main=not folder.documents))
            if not folder.documents:
                raise HTTPException(status_code=400, detail="documents: at least one required")
            with sim.lock:
                sim.folders[folder.id] = folder
            sim.created.add(folder.name)
            if autoStart:
                sim.begin(folder)
            if outcome == "timeout":
                await asyncio.sleep(sim.failures.timeout_seconds)
            return folder.representation()

        @app.get(f"{STD}/tenant/{{tenant_id}}/desk/{{desk_id}}/{{state}}")
        async def list_folders(tenant_id: str, desk_id: str, state: str, request: Request,
                               searchTerm: str = "", page: int = 0,
                               size: int = 10) -> dict:
            await sim._guard(request, tenant_id, desk_id)
            state = state.upper()
            for folder in list(sim.folders.values()):
                await sim.advance(folder)
            found = [f.representation() for f in sim.folders.values()
                     if f.state == state and searchTerm in f.name]
            return {"content": found[page * size:(page + 1) * size],
                    "totalElements": len(found)}

        @app.delete(f"{STD}/tenant/{{tenant_id}}/desk/{{desk_id}}/folder/{{folder_id}}",
                    status_code=204)
        async def delete(tenant_id: str, desk_id: str, folder_id: str,
                         request: Request) -> Response:
            await sim._guard(request, tenant_id, desk_id)
            folder = sim._folder(folder_id)
            await sim.advance(folder)
            if folder.state == "PENDING":
                raise HTTPException(status_code=409, detail="pending folders cannot be deleted")
            with sim.lock:
                sim.folders.pop(folder_id, None)
            return Response(status_code=204)

        @app.get(f"{INTERNAL}/tenant/{{tenant_id}}/folder/{{folder_id}}")
        async def get_folder(tenant_id: str, folder_id: str, request: Request) -> dict:
            await sim._guard(request, tenant_id)
            folder = sim._folder(folder_id)
            await sim.advance(folder)
            return folder.representation()

        @app.get(f"{INTERNAL}/tenant/{{tenant_id}}/folder/{{folder_id}}/history")
        async def history(tenant_id: str, folder_id: str, request: Request) -> list:
            await sim._guard(request, tenant_id)
            folder = sim._folder(folder_id)
            await sim.advance(folder)
            return folder.history

        @app.get(f"{INTERNAL}/tenant/{{tenant_id}}/folder/{{folder_id}}/document/{{doc_id}}")
        async def document(tenant_id: str, folder_id: str, doc_id: str,
                           request: Request) -> Response:
            await sim._guard(request, tenant_id)
            doc = sim._document(folder_id, doc_id)
            return Response(doc.data, media_type=doc.media_type)

        @app.get(f"{INTERNAL}/tenant/{{tenant_id}}/folder/{{folder_id}}/document/{{doc_id}}"
                 f"/detachedSignature/{{sig_id}}")
        async def detached(tenant_id: str, folder_id: str, doc_id: str, sig_id: str,
                           request: Request) -> Response:
            await sim._guard(request, tenant_id)
            doc = sim._document(folder_id, doc_id)
            for ident, _, data in doc.detached:
                if ident == sig_id:
                    return Response(data, media_type="application/pkcs7-signature")
            raise HTTPException(status_code=404, detail=f"no detached signature {sig_id}")

        return app

    async def _guard(self, request: Request, tenant_id: str | None = None,
                     desk_id: str | None = None, *, failures: bool = True) -> None:
        if failures:
            await self.failures.apply()
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise HTTPException(status_code=401, detail="missing or invalid access token")
        if tenant_id is not None and tenant_id != TENANT_ID:
            raise HTTPException(status_code=404, detail=f"no tenant {tenant_id}")
        if desk_id is not None and desk_id != DESK_ID:
            raise HTTPException(status_code=404, detail=f"no desk {desk_id}")

    async def _new_folder(self, form: Any) -> SimFolder:
        raw = form.get("folder")
        if raw is None:
            raise HTTPException(status_code=400, detail="folder: part required")
        text = raw if isinstance(raw, str) else (await raw.read()).decode()
        try:
            params = json.loads(text)
        except ValueError:
            raise HTTPException(status_code=400, detail="folder: not JSON") from None
        subtype = params.get("subtypeId")
        if params.get("typeId") != TYPE_ID or subtype not in WORKFLOWS:
            raise HTTPException(status_code=400,
                                detail=f"typeId/subtypeId: unknown {params.get('typeId')}/"
                                       f"{subtype} (types: {TYPE_ID}; sub-types: "
                                       f"{', '.join(WORKFLOWS)})")
        if not params.get("name"):
            raise HTTPException(status_code=400, detail="name: required")
        steps = [SimStep(a, d) for a, d in WORKFLOWS[subtype]]
        return SimFolder(uuid.uuid4().hex, str(params["name"]), subtype,
                         dict(params.get("metadata") or {}), [], steps)

    def _folder(self, folder_id: str) -> SimFolder:
        folder = self.folders.get(folder_id)
        if folder is None:
            raise HTTPException(status_code=404, detail=f"no folder {folder_id}")
        return folder

    def _document(self, folder_id: str, doc_id: str) -> SimDocument:
        for doc in self._folder(folder_id).documents:
            if doc.id == doc_id:
                return doc
        raise HTTPException(status_code=404, detail=f"no document {doc_id}")

