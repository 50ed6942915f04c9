"""Step ``publish``: put the stamped acte and its metadata on the tenant's publication
target (connector role ``publication``: a folder served to the public, or any deposit
target), once; the publication date is recorded in the output."""

from __future__ import annotations

import json
from typing import Any

from connectors.deposit import DepositFile, DepositTarget
from schemas.envelope import FileRef
from workers.common.versions import current_main
from workers.step import StepContext, StepResultData, step

KIND = "publish"


@step("publish")
async def run(ctx: StepContext) -> StepResultData:
    """Publish once: a receipt already at the target means it was published."""
    env = ctx.task.envelope
    target: DepositTarget = ctx.connector()
    receipt = await target.lookup(env.tenant, env.id)
    reused = receipt is not None
    document = published_file(ctx)
    metadata = publication_metadata(ctx, document)
    if receipt is None:
        chunks = ctx.runtime.store.iter_file(env.tenant, document)
        receipt = await target.deposit(env.tenant, env.id, [
            DepositFile(document.name, chunks, document.sha256)], metadata)
    await ctx.keep(_json(metadata), name="publication-metadata.json", kind="generated",
                   media_type="application/json")
    await ctx.keep(_json(receipt), name="publication-receipt.json", kind="receipt",
                   media_type="application/json")
    return StepResultData(output={"published_at": receipt["deposited_at"],
                                  "publication": receipt["location"],
                                  "published_file": document.name,
                                  "already_published": reused})


def published_file(ctx: StepContext) -> FileRef:
    """The stamped PDF of the acknowledgement when there is one, else the main document
    in its latest signed version."""
    for output in ctx.task.outputs.values():
        if output.get("stamped_pdf"):
            return FileRef.model_validate(output["stamped_pdf"])
    return current_main(ctx)


def publication_metadata(ctx: StepContext, document: FileRef) -> dict[str, Any]:
    env = ctx.task.envelope
    meta = env.metadata
    ack = next((o for o in ctx.task.outputs.values() if o.get("official_id")), {})
    return {"document_id": env.id, "tenant": env.tenant, "flow": env.flow,
            "official_id": ack.get("official_id"),
            "received_by_prefecture": ack.get("received_at"),
            "subject": meta.get("subject") or meta.get("title"),
            "nature": meta.get("nature"), "number": meta.get("number"),
            "decision_date": meta.get("decision_date"),
            "classification": meta.get("classification"),
            "file": document.name, "sha256": document.sha256}


def _json(value: dict) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).encode()
