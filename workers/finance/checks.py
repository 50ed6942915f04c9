"""Content checks of the finance flows.

An invoice is one file of a known syntax that validates against its schema; the
metadata, when it says the format or number, must agree with the content.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bus.intake import SubmissionError, check_own_siret
from bus.plugins import REGISTRY
from schemas.envelope import Envelope
from schemas.invoice import InvoiceError, InvoiceFormat, InvoiceInfo, read_invoice
from schemas.pes import PesError, validate_aller
from schemas.text import bad_character

MAX_INVOICE_BYTES = 20 * 1024 * 1024  # larger files are checked by the validate step only


def load_invoice(runtime: Any, env: Envelope) -> tuple[bytes, InvoiceInfo]:
    """Read and validate the envelope's invoice file (``SubmissionError`` naming the fault)."""
    if len(env.files) != 1:
        raise SubmissionError("files", f"an invoice is exactly one file (Factur-X PDF, UBL, "
                              f"CII or PIVOT XML), {len(env.files)} given")
    ref = env.files[0]
    bound = runtime.flows.get(env.flow).limits.max_file_bytes
    if ref.size > bound:  # read whole below: never more than the flow takes
        raise SubmissionError("files[0]", f"file {ref.name!r} has {ref.size} bytes, flow "
                              f"{env.flow!r} takes files of at most {bound} bytes")
    data = b"".join(runtime.store.iter_file(env.tenant, ref))
    declared = env.metadata.get("format")
    try:
        info = read_invoice(data, expected=InvoiceFormat(declared) if declared else None)
    except InvoiceError as exc:
        where = f" (element {exc.where})" if exc.where else ""
        raise SubmissionError("files[0]", f"{ref.name}: {exc}{where}") from None
    for part, text in (("number", info.number), ("supplier", info.supplier_name),
                       ("buyer", info.buyer_name)):
        if bad_character(text):
            raise SubmissionError(f"files[0].{part}", f"{ref.name}: the invoice's {part} "
                                  f"{text!r} holds a control character")
    number = env.metadata.get("invoice_number")
    if number and number != info.number:
        raise SubmissionError("metadata.invoice_number", f"{number!r} but the invoice "
                              f"{ref.name} is number {info.number!r}")
    if not info.number:
        raise SubmissionError("files[0]", f"{ref.name}: the invoice has no number")
    return data, info


# whose identity an invoice must carry: the supplier of what the tenant sends, the
# buyer of what it receives
OWN_PARTY = {"invoice": ("supplier", "supplier_id"), "invoice-in": ("buyer", "buyer_id")}


@REGISTRY.flow_check("invoice", "invoice-in")
async def check_invoice(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    """Intake and validate step: the invoice file is valid, matches its metadata and
    names the tenant as its supplier (sent) or buyer (received)."""
    if at_intake and env.files and env.files[0].size > MAX_INVOICE_BYTES:
        return
    _, info = await asyncio.to_thread(load_invoice, runtime, env)
    party, attr = OWN_PARTY[env.flow]
    check_own_siret(runtime.tenants.get(env.tenant), f"files[0].{party}",
                    getattr(info, attr), f"{party} SIRET of invoice {info.number}")


MAX_PES_AT_INTAKE = 5 * 1024 * 1024  # larger PES files are validated by the validate step


def check_pes(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    """Sync part of ``check_helios``: one PES Aller file, valid against the DGFiP schema."""
    if len(env.files) != 1:
        raise SubmissionError("files", f"a PES Aller is exactly one XML file, "
                              f"{len(env.files)} given")
    ref = env.files[0]
    if at_intake and ref.size > MAX_PES_AT_INTAKE:
        return
    try:
        info = validate_aller(runtime.store.iter_file(env.tenant, ref))
    except PesError as exc:
        where = f" (element {exc.element})" if exc.element else ""
        raise SubmissionError("files[0]", f"{ref.name}: {exc}{where}") from None
    check_own_siret(runtime.tenants.get(env.tenant), "files[0].IdColl", info.collectivity,
                    f"{ref.name}: collectivity (EnTetePES/IdColl)")


@REGISTRY.flow_check("helios")
async def check_helios(runtime: Any, env: Envelope, *, at_intake: bool = True) -> None:
    """Intake (files up to 5 MB) and validate step: the PES Aller is schema-valid,
    streamed from the object store, and its IdColl is a SIRET of the tenant."""
    await asyncio.to_thread(check_pes, runtime, env, at_intake=at_intake)
