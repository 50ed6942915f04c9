"""The file to send on after a ``sign`` step: the signed PDF if one was kept, else the
original main file (so delivery steps work with or without a signature step)."""

from __future__ import annotations

import asyncio
from typing import Any

from schemas.envelope import FileRef, FileRole
from workers.step import StepContext, StepError


async def signed_or_main(ctx: StepContext) -> FileRef:
    """The latest embedded-signature (PAdES) file an earlier step kept, else the main file."""
    for output in reversed(list(ctx.task.outputs.values())):
        ref = await _signed_ref(ctx, output)
        if ref is not None:
            return ref
    mains = [f for f in ctx.task.envelope.files if f.role == FileRole.MAIN]
    if not mains:
        raise StepError("the document has no main file", field="files")
    return mains[0]


async def _signed_ref(ctx: StepContext, output: dict[str, Any]) -> FileRef | None:
    signed = output.get("signed_file")
    if isinstance(signed, dict) and {"sha256", "size", "name"} <= set(signed):
        return FileRef.model_validate(signed | {"role": FileRole.MAIN})
    for sig in output.get("signatures") or []:
        if sig.get("detached"):
            continue
        art = sig.get("artefact")
        if isinstance(art, dict) and {"sha256", "size", "name"} <= set(art):
            return FileRef.model_validate(art | {"role": FileRole.MAIN})
        sha = sig.get("artefact_sha256")
        if isinstance(art, str) and sha:
            size = await asyncio.to_thread(ctx.runtime.store.stat_file, ctx.tenant.siren, sha)
            if size:
                return FileRef(sha256=sha, size=size, media_type="application/pdf", name=art)
    return None
