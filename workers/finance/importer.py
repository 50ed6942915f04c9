"""Import of received invoices: Chorus Pro -> ``invoice-in`` documents, per tenant.

For every tenant with a ``chorus`` connector that uses the ``invoice-in`` flow, the
invoices waiting for it on Chorus Pro (``rechercher/recipiendaire``, status
``MISE_A_DISPOSITION`` by default) are downloaded and submitted, each under the
idempotency key ``chorus-in:<idFacture>``: importing twice never makes two
documents. ``demat invoices import`` runs it once, or every N seconds (``--watch``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from bus.client import DematClient, FileInput
from bus.plugins import REGISTRY
from bus.settings import Settings, get_settings
from connectors.chorus.client import ChorusClient
from connectors.registry import build_connector

FLOW = "invoice-in"
ROLE = "chorus"
PRODUCER = "chorus-import"


def import_tenants(client: DematClient, only: str | None = None) -> list[str]:
    """SIRENs of the tenants the import serves (``only`` narrows to one)."""
    found = [t.siren for t in client.runtime.tenants
             if ROLE in t.connectors and t.uses(FLOW) and (only is None or t.siren == only)]
    if only is not None and not found:
        raise KeyError(f"tenant {only} has no {ROLE!r} connector or does not use {FLOW!r}")
    return found


async def import_received(client: DematClient, tenant: str) -> list[dict[str, Any]]:
    """Submit the invoices waiting for ``tenant``; one row per invoice seen."""
    tenant_cfg = client.runtime.tenants.get(tenant)
    options = tenant_cfg.connectors[ROLE].options
    chorus: ChorusClient = build_connector(tenant_cfg.connectors[ROLE].type, options,
                                           client.runtime.settings.var_dir)
    try:
        return await _import_with(client, chorus, tenant, options)
    finally:
        await chorus.aclose()


async def _import_with(client: DematClient, chorus: ChorusClient, tenant: str,
                       options: dict[str, Any]) -> list[dict[str, Any]]:
    waiting = await chorus.search_received(status=options.get("import_status",
                                                              "MISE_A_DISPOSITION"))
    rows = []
    for summary in waiting:
        key = f"chorus-in:{summary.invoice_id}"
        name, data = await chorus.download(summary.invoice_id, number=summary.number)
        metadata = {"chorus_invoice_id": summary.invoice_id, "invoice_number": summary.number,
                    "supplier": summary.supplier_name or summary.supplier_id,
                    "deposited_at": summary.deposited_at}
        if options.get("status_after_delivery"):
            metadata["status_after_delivery"] = options["status_after_delivery"]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(name).name
            path.write_bytes(data)
            receipt = await client.submit(FLOW, [FileInput(path)], tenant=tenant,
                                          metadata=metadata, key=key)
        rows.append({"tenant": tenant, "chorus_invoice_id": summary.invoice_id,
                     "number": summary.number, "doc_id": receipt.doc_id,
                     "duplicate": receipt.duplicate})
    return rows


async def run_import(settings: Settings, tenant: str | None = None) -> list[dict[str, Any]]:
    """One import round over the tenants served."""
    async with DematClient(settings, producer_name=PRODUCER) as client:
        rows: list[dict[str, Any]] = []
        for siren in import_tenants(client, tenant):
            rows += await import_received(client, siren)
        return rows


def cmd_import(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    settings = get_settings()
    while True:
        try:
            rows = asyncio.run(run_import(settings, args.tenant))
        except KeyError as exc:
            console.print(f"[red]error:[/] {exc.args[0]}")
            return 2
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
        else:
            new = sum(not r["duplicate"] for r in rows)
            console.print(f"{len(rows)} received invoice(s) seen, {new} submitted")
        if not args.watch:
            return 0
        time.sleep(args.watch)


@REGISTRY.command
def add_commands(sub: argparse._SubParsersAction) -> None:
    """``demat invoices import``."""
    invoices = sub.add_parser("invoices", help="invoices: import received ones from Chorus Pro")
    cmds = invoices.add_subparsers(metavar="ACTION", required=True)
    s = cmds.add_parser("import", help="submit the invoices waiting on Chorus Pro as "
                        f"{FLOW!r} documents")
    s.add_argument("--tenant", help="only this tenant (SIREN)")
    s.add_argument("--watch", type=float, default=0.0, metavar="SECONDS",
                   help="repeat every SECONDS (a scheduled import)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_import)
