"""The signed version travels (real bus): for a document signed through i-Parapheur and
for a sealed pay slip, what is deposited, archived and sent to ENSAP is the signed file."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import httpx
import pytest
from lxml import etree

from bus.client import DematClient
from bus.dev.launcher import Services
from bus.runtime import Runtime
from bus.settings import Settings
from schemas.envelope import FileRef
from schemas.messages import DocState, DocumentState
from workers.common.demo import minimal_pdf
from workers.common.demo_signature import PARAPHEUR_TENANT

pytestmark = pytest.mark.stack


def _wait(settings: Settings, tenant: str, flow: str, path: Path, metadata: dict
          ) -> DocumentState:
    async def go() -> DocumentState:
        async with DematClient(settings) as client:
            receipt = await client.submit(flow, [path], tenant=tenant, metadata=metadata)
            await client.wait(receipt.doc_id, 300, 0.5)
            return Runtime(settings).states.load_sync(receipt.doc_id)

    return asyncio.run(go())


def sip_object_digest(settings: Settings, state: DocumentState, step: str = "archive") -> str:
    """The digest the archived SIP's manifest gives the document's first data object
    (``o-<id>-0``: its main file; a batch SIP holds other documents' objects too)."""
    manifest = next(a.file for a in state.artefacts
                    if a.step == step and a.kind == "generated" and a.file.name.endswith(".xml"))
    root = etree.fromstring(Runtime(settings).store.read_file(state.envelope.tenant, manifest))
    node = next(n for n in root.iter("{*}BinaryDataObject")
                if n.get("id") == f"o-{state.doc_id}-0")
    return node.find("{*}MessageDigest").text.strip()


def digests(data: bytes) -> set[str]:
    """The SHA-256 and SHA-512 of ``data`` (a manifest may use either)."""
    return {hashlib.sha256(data).hexdigest(), hashlib.sha512(data).hexdigest()}


def test_a_document_signed_in_iparapheur_is_deposited_and_archived_signed(
        settings: Settings, services: Services, tmp_path: Path) -> None:
    path = tmp_path / "arrete-signe.pdf"
    path.write_bytes(minimal_pdf("Arrete signe"))
    state = _wait(settings, PARAPHEUR_TENANT, "document", path, {
        "title": "Arrêté signé", "category": "arrete", "sign": True,
        "signature_subtype": "visa-signature"})
    assert state.state == DocState.COMPLETED, state.error
    outputs = state.outputs()
    signed = outputs["sign"]["signed_file"]
    assert signed["sha256"] != state.envelope.files[0].sha256
    [used] = [u for u in outputs["deposit"]["file_versions"] if u["original"] == path.name]
    assert (used["sha256"], used["version"], used["by_step"]) == (signed["sha256"], "signed",
                                                                 "sign")
    deposited = httpx.get(f"{outputs['deposit']['location']}/{used['file']}", timeout=10)
    assert hashlib.sha256(deposited.content).hexdigest() == signed["sha256"]
    signed_bytes = Runtime(settings).store.read_file(state.envelope.tenant,
                                                     FileRef.model_validate(signed))
    assert sip_object_digest(settings, state) in digests(signed_bytes)
