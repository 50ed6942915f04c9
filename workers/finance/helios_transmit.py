"""Step ``helios-transmit``: send the (signed) PES Aller to the treasury through S²LOW.

The file sent is the PES in its latest signed version (XAdES, ``workers.common.versions``),
else the submitted file. It is spooled from the object store to a temporary
file (never whole in memory) while its SHA-1 is computed, then posted once: a
redelivered task reuses the transaction id its earlier run kept from the import
answer, and S²LOW's duplicate answer (``doublon``: it holds this SHA-1) is read as
"already sent", its transaction recovered (``HeliosClient.submit_pes``).
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

from connectors.s2low.helios import HeliosClient
from schemas.envelope import FileRef
from workers.common.versions import current_version
from workers.step import StepContext, StepResultData, step

KIND = "helios-transmit"


def pes_file(ctx: StepContext) -> tuple[FileRef, bool]:
    """The file to send (the signed PES if a step signed it) and whether it is signed."""
    original = ctx.task.envelope.files[0]
    ref = current_version(ctx, original)
    return ref, ref.sha256 != original.sha256


def _spool(ctx: StepContext, ref: FileRef, path: Path) -> str:
    sha1 = hashlib.sha1()
    with path.open("wb") as fh:
        for chunk in ctx.runtime.store.iter_file(ctx.tenant.siren, ref):
            sha1.update(chunk)
            fh.write(chunk)
    return sha1.hexdigest()


@step("helios-transmit")
async def run(ctx: StepContext) -> StepResultData:
    helios = HeliosClient(ctx.connector())
    ref, signed = pes_file(ctx)
    name = Path(ctx.task.envelope.files[0].name).name
    with tempfile.TemporaryDirectory(prefix="demat-pes-") as tmp:
        path = Path(tmp) / name
        sha1 = await asyncio.to_thread(_spool, ctx, ref, path)
        known = (ctx.task.outputs.get(ctx.step.name) or {}).get("transaction_id")
        sent = await helios.submit_pes(name, path, sha1, known_id=known)
    return StepResultData(output={"transaction_id": sent.transaction_id, "created": sent.created,
                                  "duplicate": sent.duplicate,
                                  "file": name, "signed": signed, "sha1": sha1,
                                  "sha256": ref.sha256})
