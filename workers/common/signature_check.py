"""Signature check at intake: files that arrive signed are verified, and the verdict kept.

Called by the ``validate`` step. Every PDF or XML file carrying a signature is checked
and its verdict kept (``connectors.seal.verdict``: intact, signer, signing time, chain
valid at signing time, findings such as ``sha1-digest``, trust when roots are known). A
signature that is not intact or was not valid at its signing time refuses the document
(``StepError`` naming the file) unless the tenant setting ``signature_check`` is
``record``; an intact legacy SHA-1 XML signature is refused as a policy, unless the
tenant setting ``accept_legacy_sha1_signatures`` is true.
Tenant settings ``signature_trust`` (PEM files) add trust roots; a tenant's ``seal``
connector adds its own chain and, with demo material, the demo CA. The tenant setting or
the validate step's option ``signature_check: false`` skips the check (e.g. pay slips that
arrive unsigned: no second read of the file).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography import x509

from connectors.seal.keys import DEMO_DIR, demo_ca
from connectors.seal.verify import looks_signed, verify_embedded
from schemas.envelope import FileRef
from workers.step import StepContext, StepError

CHECKED_TYPES = ("application/pdf", "application/xml", "text/xml")
MAX_BYTES = 64 * 1024 * 1024


def check_enabled(ctx: StepContext) -> bool:
    """False when the tenant or the step turned the check off (e.g. unsigned pay slips)."""
    return ctx.tenant.settings.get("signature_check") is not False and ctx.step.options.get(
        "signature_check") is not False


def wants_content(ctx: StepContext, ref: FileRef) -> bool:
    """Whether the check reads this file (so a caller reading it anyway can pass it on)."""
    return check_enabled(ctx) and ref.media_type in CHECKED_TYPES and ref.size <= MAX_BYTES


async def check_signed_inputs(ctx: StepContext, contents: dict[int, bytes] | None = None
                              ) -> dict[str, Any]:
    """``{"signatures": [...]}`` for the signed files of the document (``{}`` if none);
    ``contents`` holds files already read and verified, by index (no second read)."""
    settings = ctx.tenant.settings
    if not check_enabled(ctx):
        return {}
    found: list[dict[str, Any]] = []
    roots: list[x509.Certificate] | None = None
    for index, ref in enumerate(ctx.task.envelope.files):
        if not wants_content(ctx, ref):
            continue
        data = (contents or {}).get(index)
        if data is None:
            data = await asyncio.to_thread(ctx.runtime.store.read_file, ctx.tenant.siren, ref)
        if not looks_signed(data, ref.media_type):
            continue
        roots = roots if roots is not None else _trust_roots(ctx)
        checks = await verify_embedded(
            data, ref.media_type, trust_roots=roots or None,
            legacy_sha1=bool(settings.get("accept_legacy_sha1_signatures")))
        for n, check in enumerate(checks):
            found.append({"file": ref.name, "index": n} | check.as_dict())
            if not check.ok and settings.get("signature_check") != "record":
                _refuse(index, ref, n, check.error or "invalid signature")
    return {"signatures": found} if found else {}


def _refuse(index: int, ref: FileRef, n: int, why: str) -> None:
    raise StepError(f"file {ref.name!r}: signature {n + 1} does not verify: {why}",
                    field=f"files[{index}]")


def _trust_roots(ctx: StepContext) -> list[x509.Certificate]:
    roots: list[x509.Certificate] = []
    for path in ctx.tenant.settings.get("signature_trust") or []:
        roots += x509.load_pem_x509_certificates(Path(path).read_bytes())
    cfg = ctx.tenant.connectors.get("signature")
    if cfg is not None and cfg.type == "seal":
        roots += ctx.runtime.connector(ctx.tenant.siren, "signature").trust_roots(
            ctx.tenant.siren)
    elif (ctx.runtime.settings.var_dir / DEMO_DIR / "DEMO-CA.pem").exists():
        roots.append(demo_ca(ctx.runtime.settings.var_dir).cert)
    return roots
