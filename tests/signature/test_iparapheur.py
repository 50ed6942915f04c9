"""i-Parapheur: the ``sign`` worker and client against the real simulator (HTTP on loopback)."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from bus.tenants import ConnectorConfig, Tenant, TenantRegistry
from connectors.errors import ConnectorError
from connectors.iparapheur import premis
from connectors.iparapheur.sim_state import DESK_ID, TENANT_ID
from connectors.iparapheur.simulator import IparapheurSimulator
from connectors.registry import build_connector
from connectors.seal.verify import verify_cms_detached, verify_pdf
from connectors.simulator import SimulatorServer
from schemas.envelope import Envelope, FileRef, FileRole
from schemas.flow import StepDefinition
from schemas.messages import StepTask
from workers.common import sign, versions
from workers.common.demo import minimal_pdf
from workers.step import StepContext, StepRejected, Waiting

SIREN = "214502494"


@dataclass
class MemStore:
    """The two object-store calls the worker makes, in memory."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def put_bytes(self, tenant: str, data: bytes, *, name: str, role: FileRole,
                  media_type: str | None = None, **_: Any) -> FileRef:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return FileRef(sha256=digest, size=len(data), name=name, role=role,
                       media_type=media_type or "application/octet-stream")

    def read_file(self, tenant: str, ref: FileRef) -> bytes:
        return self.blobs[ref.sha256]


@dataclass
class FakeRuntime:
    tenants: TenantRegistry
    store: MemStore
    settings: Any
    flows: Any = None

    def __post_init__(self) -> None:
        from bus.flows import FlowRegistry

        self.flows = FlowRegistry.load()
        self.connectors: dict[tuple[str, str], Any] = {}

    def connector(self, tenant: str, role: str) -> Any:
        """As ``Runtime.connector``: built once from the tenant's configuration."""
        if (tenant, role) not in self.connectors:
            cfg = self.tenants.get(tenant).connectors[role]
            self.connectors[tenant, role] = build_connector(cfg.type, cfg.options,
                                                            self.settings.var_dir)
        return self.connectors[tenant, role]


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[IparapheurSimulator, SimulatorServer]]:
    simulator = IparapheurSimulator(step_seconds=0.2)
    server = simulator.serve()
    yield simulator, server
    server.stop()


def _runtime(url: str, tmp_path: Path, **options: Any) -> FakeRuntime:
    opts = {"url": url, "tenant_id": TENANT_ID, "desk_id": DESK_ID, "username": "demat",
            "password": "demat", "timeout": 2, "poll_seconds": 0.1} | options
    tenant = Tenant(siren=SIREN, name="B", connectors={
        "signature": ConnectorConfig(type="iparapheur", options=opts)})

    class S:
        var_dir = tmp_path

    return FakeRuntime(TenantRegistry([tenant]), MemStore(), S())


def _context(runtime: FakeRuntime, files: dict[str, tuple[bytes, str]], *,
             meta: dict | None = None, env: Envelope | None = None,
             progress: dict | None = None) -> StepContext:
    if env is None:
        refs = [runtime.store.put_bytes(SIREN, data, name=n, role=FileRole.MAIN, media_type=m)
                for n, (data, m) in files.items()]
        env = Envelope(tenant=SIREN, flow="document", metadata={"title": "t", **(meta or {})},
                       files=refs)
    task = StepTask(doc_id=env.id, step="sign", kind="sign", envelope=env,
                    progress=progress or {})
    step = StepDefinition(name="sign", kind="sign", connector="signature")
    return StepContext(runtime, task, runtime.tenants.get(SIREN), step)  # type: ignore[arg-type]


def _until_done(runtime: FakeRuntime, ctx: StepContext, timeout: float = 30,
                seen: list[StepContext] | None = None
                ) -> tuple[Any, StepContext, list[Waiting]]:
    """Run the step like the router would: re-issue it with the saved progress (every
    context tried is appended to ``seen``)."""
    waits: list[Waiting] = []
    deadline = time.monotonic() + timeout
    while True:
        if seen is not None:
            seen.append(ctx)
        try:
            result = asyncio.run(sign.run(ctx))
        except ConnectorError as exc:  # transient: the router retries the task
            assert exc.retryable, exc
            result = None
        if isinstance(result, Waiting) or result is None:
            if result is not None:
                waits.append(result)
            assert time.monotonic() < deadline, "still waiting"
            time.sleep(0.1)
            ctx = _context(runtime, {}, env=ctx.task.envelope,
                           progress=result.progress if result else ctx.task.progress)
            continue
        return result, ctx, waits


def _sim_ca(server: SimulatorServer) -> x509.Certificate:
    return x509.load_pem_x509_certificate(httpx.get(f"{server.base_url}/_sim/ca").content)


def test_signed_folder_is_created_once_polled_and_verified(sim, tmp_path: Path) -> None:
    _simulator, server = sim
    runtime = _runtime(server.base_url, tmp_path, subtype="visa-signature")
    ctx = _context(runtime, {"arrete.pdf": (minimal_pdf("Arrete 12"), "application/pdf")})
    first = asyncio.run(sign.run(ctx))
    assert isinstance(first, Waiting) and first.progress["created"]
    redelivered = asyncio.run(sign.run(_context(runtime, {}, env=ctx.task.envelope)))
    assert isinstance(redelivered, Waiting) and not redelivered.progress["created"]
    assert redelivered.progress["folder_id"] == first.progress["folder_id"]
    result, done, _waits = _until_done(runtime, _context(runtime, {}, env=ctx.task.envelope,
                                                        progress=first.progress))
    out = result.output
    assert [s["action"] for s in out["signers"]] == ["VISA", "SIGNATURE"]
    assert out["signer"] == "Jeanne Martin" and out["signed_at"]
    assert [s["desk"] for s in out["signers"]] == ["Directeur général des services",
                                                   "Maire de Démo-sur-Rhône"]
    [signed] = [a for a in done.artefacts if a.kind == "signed"]
    assert signed.file.name == "arrete-signed.pdf"
    pdf = runtime.store.blobs[signed.file.sha256]
    [check] = asyncio.run(verify_pdf(pdf, trust_roots=[_sim_ca(server)]))
    assert check.intact and check.trusted and "Jeanne Martin" in check.signer
    replies = {a.file.name: runtime.store.blobs[a.file.sha256] for a in done.artefacts
               if a.kind == "partner-reply"}
    history = premis.parse(replies["iparapheur-premis.xml"])  # the journaled history
    assert [e.action for e in history.performed()] == ["START", "VISA", "SIGNATURE"]
    assert history.state == "FINISHED"
    assert replies[f"{sign.folder_name(ctx.task.envelope.id)}_bordereau.pdf"][:5] == b"%PDF-"
    assert out["signatures"][0]["signature_sha256"] and out["signatures"][0]["signer"]
    assert out["signed_file"]["sha256"] == signed.file.sha256
    later = _context(runtime, {}, env=ctx.task.envelope)
    later.task.outputs["sign"] = out  # what a transmit / deposit step receives
    original = ctx.task.envelope.files[0]
    assert versions.current_version(later, original).sha256 == signed.file.sha256
    assert versions.archived_files(later)[-1].sha256 == out["signature_history"]["sha256"]
    unsigned = _context(runtime, {}, env=ctx.task.envelope)
    assert versions.current_version(unsigned, original) == original
    counts = httpx.get(f"{server.base_url}/_sim/counts").json()
    assert counts["created"][sign.folder_name(ctx.task.envelope.id)] == 1


def test_rejection_is_a_business_outcome_and_the_folder_is_deleted(sim, tmp_path: Path) -> None:
    simulator, server = sim
    runtime = _runtime(server.base_url, tmp_path, subtype="signature")
    ctx = _context(runtime, {"deliberation.pdf": (minimal_pdf("Delib"), "application/pdf")},
                   meta={"parapheur_metadata": {"sim_reject": "Montant erroné, à revoir"}})
    with pytest.raises(StepRejected, match=r"rejected by Jeanne Martin \(Maire de Démo-sur-"
                                           r"Rhône\): Montant erroné"):
        _until_done(runtime, ctx, seen=(tried := []))
    kept = [runtime.store.blobs[a.file.sha256] for a in tried[-1].artefacts
            if a.kind == "partner-reply"]
    history = premis.parse(kept[-1])  # the refusal is journaled with its history
    assert history.state == "REJECTED" and history.refusal().note == "Montant erroné, à revoir"
    assert not any(f.name == sign.folder_name(ctx.task.envelope.id)
                   for f in simulator.folders.values())


def test_double_signature_authority_then_agent(sim, tmp_path: Path) -> None:
    _simulator, server = sim
    runtime = _runtime(server.base_url, tmp_path)
    ctx = _context(runtime, {"contrat.pdf": (minimal_pdf("Contrat"), "application/pdf"),
                             "annexe.txt": (b"conditions\n", "text/plain")},
                   meta={"signature_subtype": "double-signature"})
    result, done, _ = _until_done(runtime, ctx)
    assert [s["signer"] for s in result.output["signers"]] == ["Claire Petit", "Luc Bernard"]
    by_name = {a.file.name: runtime.store.blobs[a.file.sha256] for a in done.artefacts}
    checks = asyncio.run(verify_pdf(by_name["contrat-signed.pdf"]))
    assert [c.intact for c in checks] == [True, True]
    assert ["Claire Petit" in checks[0].signer, "Luc Bernard" in checks[1].signer] == [True,
                                                                                        True]
    cms = [n for n in by_name if n.endswith(".p7s")]
    assert len(cms) == 2  # one detached signature per signer
    assert all(asyncio.run(verify_cms_detached(b"conditions\n", by_name[n])).intact for n in cms)


def test_external_signer_signs_with_a_one_time_code(sim, tmp_path: Path) -> None:
    _simulator, server = sim
    runtime = _runtime(server.base_url, tmp_path, subtype="external")
    ctx = _context(runtime, {"convention.pdf": (minimal_pdf("Convention"), "application/pdf")})
    first = asyncio.run(sign.run(ctx))
    folder_id = first.progress["folder_id"]
    time.sleep(0.3)
    again = asyncio.run(sign.run(_context(runtime, {}, env=ctx.task.envelope,
                                          progress=first.progress)))
    assert isinstance(again, Waiting) and "EXTERNAL_SIGNATURE" in again.note
    wrong = httpx.post(f"{server.base_url}/_sim/otp/{folder_id}", json={"code": "x"})
    assert wrong.status_code == 403
    code = httpx.get(f"{server.base_url}/_sim/otp/{folder_id}").json()["code"]
    assert httpx.post(f"{server.base_url}/_sim/otp/{folder_id}", json={"code": code}).is_success
    result, _, _ = _until_done(runtime, _context(runtime, {}, env=ctx.task.envelope,
                                                 progress=first.progress))
    assert result.output["signer"] == "Signataire externe"


def test_long_wait_under_partner_failures_polls_and_creates_once(sim, tmp_path: Path) -> None:
    _simulator, server = sim
    runtime = _runtime(server.base_url, tmp_path, subtype="signature")
    httpx.post(f"{server.base_url}/_sim/failures", json={"error_rate": 0.3, "seed": 7})
    try:
        ctx = _context(runtime, {"pes.xml": (b"<?xml version='1.0'?><r><a>1</a></r>",
                                             "application/xml")},
                       meta={"parapheur_metadata": {"sim_step_seconds": 86400}})  # a day
        progress: dict = {}
        waits = []
        while len(waits) < 4:  # every poll is a separate task; none blocks
            try:
                result = asyncio.run(sign.run(_context(runtime, {}, env=ctx.task.envelope,
                                                       progress=progress)))
            except ConnectorError as exc:
                assert exc.retryable, exc
                continue
            assert isinstance(result, Waiting), result
            waits.append(result)
            progress = result.progress
        assert all("awaiting SIGNATURE" in w.note for w in waits)
        assert httpx.post(f"{server.base_url}/_sim/act/{progress['folder_id']}").is_success
        result, _, _ = _until_done(runtime, _context(runtime, {}, env=ctx.task.envelope,
                                                     progress=progress))
    finally:
        httpx.post(f"{server.base_url}/_sim/failures", json={})
    assert result.output["signatures"][0]["format"] == "xades"
    counts = httpx.get(f"{server.base_url}/_sim/counts").json()
    assert counts["created"][sign.folder_name(ctx.task.envelope.id)] == 1


def test_simulator_refuses_bad_credentials_and_unknown_subtypes(sim, tmp_path: Path) -> None:
    _simulator, server = sim
    runtime = _runtime(server.base_url, tmp_path, password="nope")
    ctx = _context(runtime, {"a.pdf": (minimal_pdf("a"), "application/pdf")})
    with pytest.raises(ConnectorError, match="authentication refused"):
        asyncio.run(sign.run(ctx))
    runtime = _runtime(server.base_url, tmp_path, subtype="teleport")
    with pytest.raises(ConnectorError, match="no sub-type of type 'DEMAT' 'teleport'"):
        asyncio.run(sign.run(_context(runtime, {"a.pdf": (minimal_pdf("a"),
                                                          "application/pdf")})))


def test_a_draft_left_by_an_earlier_try_is_found_and_started(sim, tmp_path: Path) -> None:
    simulator, server = sim
    runtime = _runtime(server.base_url, tmp_path)
    ctx = _context(runtime, {"avenant.pdf": (minimal_pdf("Avenant"), "application/pdf")})
    name = sign.folder_name(ctx.task.envelope.id)
    token = httpx.post(f"{server.base_url}/auth/realms/api/protocol/openid-connect/token",
                       data={"grant_type": "password", "client_id": "ipcore-web",
                             "username": "demat", "password": "demat"}).json()["access_token"]
    part = premis.draft(name, "DEMAT", "signature", [("avenant.pdf", True)])
    resp = httpx.post(f"{server.base_url}/api/standard/v1/tenant/{TENANT_ID}/desk/{DESK_ID}"
                      "/folder", params={"autoStart": "false"},
                      headers={"Authorization": f"Bearer {token}"},
                      files=[("folder", ("folder.xml", part, "application/xml")),
                             ("documents", ("avenant.pdf", minimal_pdf("Avenant"),
                                            "application/pdf"))])
    assert resp.status_code == 201
    seen = asyncio.run(sign.run(ctx))  # a draft may be a folder still initialising
    assert isinstance(seen, Waiting) and seen.note.endswith("draft, to start at the next poll")
    first = asyncio.run(sign.run(_context(runtime, {}, env=ctx.task.envelope,
                                          progress=seen.progress)))
    assert isinstance(first, Waiting) and first.note.endswith("started")
    assert not first.progress["created"] and first.progress["folder_id"] == resp.json()["id"]
    result, _, _ = _until_done(runtime, _context(runtime, {}, env=ctx.task.envelope,
                                                 progress=first.progress))
    assert result.output["signer"] == "Jeanne Martin"
    assert simulator.created.count(name) == 1
