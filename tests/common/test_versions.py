"""Which version of a file later steps use: the latest signed one, recorded per step."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from bus.steps import StepCall, StepResultData
from schemas.envelope import Envelope, FileRef, FileRole
from schemas.messages import StepTask
from workers.common import versions
from workers.step import StepContext, step

PDF = FileRef(sha256="a" * 64, size=10, media_type="application/pdf", name="acte.pdf")
ANNEX = FileRef(sha256="b" * 64, size=5, media_type="application/pdf", name="annexe.pdf",
                role=FileRole.ANNEX)
SEALED = {"sha256": "c" * 64, "size": 12, "media_type": "application/pdf",
          "name": "acte-sealed.pdf", "role": "annex"}
SIGNED = {"sha256": "d" * 64, "size": 14, "media_type": "application/pdf",
          "name": "acte-signed.pdf", "role": "annex"}
P7S = {"sha256": "e" * 64, "size": 3, "media_type": "application/pkcs7-signature",
       "name": "annexe.pdf.p7s", "role": "annex"}
HISTORY = {"sha256": "f" * 64, "size": 3, "media_type": "application/zip",
           "name": "history.zip", "role": "annex"}


def _task(outputs: dict[str, dict[str, Any]]) -> StepTask:
    env = Envelope(tenant="214502494", flow="document", files=[PDF, ANNEX])
    return StepTask(doc_id=env.id, step="deposit", kind="deposit", envelope=env,
                    outputs=outputs)


def _ctx(outputs: dict[str, dict[str, Any]]) -> StepContext:
    return StepContext(SimpleNamespace(), _task(outputs), SimpleNamespace(),
                       SimpleNamespace(name="deposit"))


def test_without_a_signing_step_the_submitted_files_travel() -> None:
    ctx = _ctx({"validate": {"files": 2}})
    assert versions.current_main(ctx) == PDF
    assert ctx.used_versions[0]["version"] == "original"
    assert ctx.used_versions[0]["by_step"] is None


def test_the_latest_embedded_signature_wins_and_is_recorded() -> None:
    ctx = _ctx({
        "seal": {"signed_file": SEALED, "signatures": [{"file": "acte.pdf", "artefact": SEALED}]},
        "sign": {"signed_file": SIGNED, "signatures": [{"file": "acte.pdf", "artefact": SIGNED},
                                                       {"file": "annexe.pdf", "artefact": P7S,
                                                        "detached": True}],
                 "signature_history": HISTORY}})
    main = versions.current_main(ctx)
    assert (main.sha256, main.role) == (SIGNED["sha256"], FileRole.MAIN)
    assert ctx.used_versions == [{
        "file": "acte-signed.pdf", "sha256": SIGNED["sha256"], "version": "signed",
        "by_step": "sign", "original": "acte.pdf", "original_sha256": PDF.sha256,
        "detached_signatures": []}]
    files = versions.current_files(ctx)
    assert [f.sha256 for f in files] == [SIGNED["sha256"], ANNEX.sha256, P7S["sha256"]]
    assert files[2].role == FileRole.SIGNATURE
    archived = versions.archived_files(ctx)
    assert [f.sha256 for f in archived][-1] == HISTORY["sha256"]
    assert len({f.sha256 for f in archived}) == len(archived) == 4


def test_a_signed_file_without_per_file_entries_replaces_the_main_file() -> None:
    ctx = _ctx({"sign": {"signed_file": SIGNED}})
    assert versions.current_version(ctx, PDF).sha256 == SIGNED["sha256"]
    assert versions.current_version(ctx, ANNEX) == ANNEX


def test_a_new_embedded_version_drops_detached_signatures_of_the_old_one() -> None:
    detached = {"file": "acte.pdf", "artefact": P7S, "detached": True}
    ctx = _ctx({"cosign": {"signatures": [detached]},
                "seal": {"signatures": [{"file": "acte.pdf", "artefact": SEALED}]}})
    [main, annex] = versions.file_versions(ctx.task)
    assert main.current.sha256 == SEALED["sha256"] and main.detached == ()
    assert annex.current == ANNEX


def test_the_step_decorator_puts_the_versions_used_in_the_output() -> None:
    @step("test-versions-used")
    async def run(ctx: StepContext) -> StepResultData:
        versions.current_files(ctx)
        return StepResultData(output={"sent": True})

    from bus.plugins import REGISTRY

    handler = REGISTRY.steps["test-versions-used"]
    task = _task({"sign": {"signed_file": SIGNED}})
    result = asyncio.run(handler(StepCall(SimpleNamespace(), task, SimpleNamespace(),
                                          SimpleNamespace(name="deposit"))))
    assert result.output["sent"] is True
    assert [u["sha256"] for u in result.output["file_versions"]] == [SIGNED["sha256"],
                                                                    ANNEX.sha256]
