"""Step ``deposit``: put the document's files (each in its latest signed version, with the
detached signatures over them) and metadata into the tenant's document store; the step's
one artefact, ``deposit-receipt.json``, holds the metadata deposited and the receipt."""

from __future__ import annotations

import json

from connectors.deposit import DepositFile, DepositTarget
from schemas.envelope import FileRef
from workers.common.versions import current_files
from workers.step import StepContext, StepResultData, step

KIND = "deposit"


@step("deposit", chainable=True)
async def run(ctx: StepContext) -> StepResultData:
    """Deposit once: a receipt already at the store means the deposit was done."""
    env = ctx.task.envelope
    ged: DepositTarget = ctx.connector()
    receipt = await ged.lookup(env.tenant, env.id)
    reused = receipt is not None
    versions = current_files(ctx)
    metadata = deposit_metadata(ctx, versions)
    if receipt is None:
        files = [DepositFile(ref.name, ctx.runtime.store.iter_file(env.tenant, ref), ref.sha256)
                 for ref in versions]
        receipt = await ged.deposit(env.tenant, env.id, files, metadata)
    # one record of the exchange, what was deposited and what the store answered (it
    # names the document: no other document can have stored these bytes)
    await ctx.keep(_json({"deposited": metadata, "receipt": receipt}),
                   name="deposit-receipt.json", kind="partner-reply",
                   media_type="application/json", unique=True)
    return StepResultData(output={"location": receipt["location"],
                                  "deposited_at": receipt["deposited_at"],
                                  "already_deposited": reused})


def deposit_metadata(ctx: StepContext, files: list[FileRef]) -> dict:
    """The metadata document written beside the files (those deposited, and the versions)."""
    env = ctx.task.envelope
    return {
        "document_id": env.id,
        "tenant": env.tenant,
        "flow": env.flow,
        "producer": env.producer,
        "submitted_at": env.created_at.isoformat(),
        "metadata": env.metadata,
        "files": [f.model_dump(mode="json") for f in files],
        "versions": ctx.used_versions,
    }


def _json(value: dict) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).encode()
