"""Archivists' routes: the journal's verification status (``demat audit verify``, scoped
to the caller's tenants) and a document's proof bundle (``demat audit export``) as a ZIP.

A verification reads every checkpoint and segment of the journal and hashes every stored
file of the tenants it covers: it can outlast a request. One runs at a time per set of
tenants, in a worker thread; a request waits for it at most ``DEMAT_API_AUDIT_WAIT``
seconds (default 20), then answers ``202`` with ``Retry-After``; the finished report is
answered to the callers of the same tenants for ``VERIFY_KEEP`` seconds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.background import BackgroundTask

from bus.api.auth import bus_of, forbidden, permission, visible_state
from bus.api.documents import Who, zip_folder
from bus.audit.bundle import export_bundle
from bus.audit.verify import Report, verify_bus
from bus.runtime import Runtime
from schemas.envelope import utcnow

router = APIRouter(prefix="/v1", tags=["audit"])
VERIFY_WAIT = float(os.environ.get("DEMAT_API_AUDIT_WAIT", "20"))  # seconds
VERIFY_KEEP = 60.0  # seconds a finished report is answered again


@dataclass
class _Run:
    task: asyncio.Future[Report]
    started_at: str = field(default_factory=lambda: utcnow().isoformat())
    finished: float | None = None  # time.monotonic() when done


class Verifications:
    """The running or recent verification of each set of tenants."""

    def __init__(self) -> None:
        self.runs: dict[frozenset[str], _Run] = {}

    def of(self, runtime: Runtime, scope: frozenset[str]) -> _Run:
        run = self.runs.get(scope)
        stale = run is not None and run.finished is not None and (
            time.monotonic() - run.finished > VERIFY_KEEP)
        if run is None or stale:
            run = _Run(asyncio.ensure_future(asyncio.to_thread(verify_bus, runtime, set(scope))))
            run.task.add_done_callback(lambda _, r=run: setattr(r, "finished", time.monotonic()))
            self.runs[scope] = run
        return run


def _verifications(request: Request) -> Verifications:
    state = request.app.state
    if not hasattr(state, "verifications"):
        state.verifications = Verifications()
    return state.verifications


@router.get("/audit/verify", summary="is the journal intact for the caller's tenants?",
            openapi_extra=permission("audit"))
async def verify(request: Request, who: Who, tenant: str | None = None) -> JSONResponse:
    """Checkpoints (signatures, time-stamps, Merkle roots) and segments, then the chains,
    states and stored files of the tenants the caller may audit (or of ``tenant``):
    ``200`` with the report, or ``202`` while it runs (ask again)."""
    runtime = bus_of(request).client.runtime
    scope = who.tenants_with("audit", runtime.tenants)
    if tenant is not None:
        if tenant not in scope:
            raise forbidden("auditing", tenant)
        scope = {tenant}
    if not scope:
        raise HTTPException(403, {"message": "your roles allow auditing no tenant",
                                  "field": "Authorization"})
    run = _verifications(request).of(runtime, frozenset(scope))
    done, _ = await asyncio.wait({run.task}, timeout=VERIFY_WAIT)
    head: dict[str, Any] = {"tenants": sorted(scope), "started_at": run.started_at}
    if not done:
        return JSONResponse(head | {"status": "running"}, status_code=202,
                            headers={"Retry-After": "5"})
    try:
        report = run.task.result()
    except Exception as exc:  # the store or journal could not be read: say so, not 500
        raise HTTPException(503, {"message": f"verification failed to run: {exc}",
                                  "field": None}) from None
    return JSONResponse(head | {"status": "intact" if report.ok else "problems"}
                        | report.as_dict())


@router.get("/documents/{doc_id}/proof", summary="a document's proof bundle as a ZIP",
            openapi_extra=permission("proofs"), response_class=FileResponse)
async def proof(request: Request, who: Who, doc_id: str) -> FileResponse:
    """Its journal events, their Merkle inclusion proofs, the signed and time-stamped
    checkpoint and the commands to verify them offline (``README.md`` inside)."""
    await visible_state(request, who, doc_id, "proofs")
    tmp = Path(tempfile.mkdtemp(prefix="demat-proof-"))
    try:
        zip_path = await asyncio.to_thread(_bundle_zip, bus_of(request).client.runtime,
                                           doc_id, tmp)
    except (KeyError, ValueError) as exc:  # not sealed yet, or the journal does not match
        shutil.rmtree(tmp, True)
        raise HTTPException(409, {"message": str(exc.args[0]), "field": "doc_id"}) from None
    except BaseException:
        shutil.rmtree(tmp, True)
        raise
    return FileResponse(zip_path, media_type="application/zip",
                        filename=f"{doc_id}-proof.zip",
                        background=BackgroundTask(shutil.rmtree, tmp, True))


def _bundle_zip(runtime: Runtime, doc_id: str, tmp: Path) -> Path:
    folder = tmp / "bundle"
    export_bundle(runtime, doc_id, folder)
    return zip_folder(folder, tmp / f"{doc_id}-proof.zip")
