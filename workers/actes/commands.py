"""``demat acte``: operator and producer commands about transmitted actes.

- ``demat acte cancel ID [--reason R]``: cancel an acknowledged acte (Annulation);
- ``demat acte letters ID``: the prefecture letters recorded about an acte;
- ``demat acte reply ID --file answer.pdf [--letter N] [--refuse]``: answer a letter.

A cancellation or an answer is itself a document of flow ``acte-followup`` (journaled,
retried, exported like any other), linked to the acte by ``metadata.acte_document`` and
its correlation id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bus.client import DematClient
from bus.identity import Unauthenticated, cli_submitter
from bus.intake import SubmissionError
from bus.plugins import REGISTRY
from bus.runtime import Runtime
from bus.terminal import shown
from schemas.envelope import utcnow
from workers.actes.acte import answer_metadata, cancellation, known_letters, require_acte

console = Console(stderr=True, soft_wrap=True)
out = Console()


@REGISTRY.command
def add_commands(sub: argparse._SubParsersAction) -> None:
    acte = sub.add_parser("acte", help="actes sent to legality control: cancel, letters, reply")
    cmds = acte.add_subparsers(metavar="ACTION", required=True)

    s = cmds.add_parser("cancel", help="cancel an acknowledged acte (ARAnnulation awaited)")
    s.add_argument("id", help="bus id of the acte document")
    s.add_argument("--reason", default="", help="why (kept in the request PDF)")
    _common(s)
    s.set_defaults(func=cmd_cancel)

    s = cmds.add_parser("letters", help="prefecture letters received about an acte")
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_letters)

    s = cmds.add_parser("reply", help="answer a prefecture letter about an acte")
    s.add_argument("id", help="bus id of the acte document")
    s.add_argument("--file", type=Path, required=True, action="append",
                   help="answer PDF (repeat for annexes)")
    s.add_argument("--letter", type=int, help="S²LOW id of the letter (default: the only one)")
    s.add_argument("--refuse", action="store_true",
                   help="refuse to send the pieces / reject the observations")
    s.add_argument("--typology", default="99_AU")
    _common(s)
    s.set_defaults(func=cmd_reply)


def _common(s: argparse.ArgumentParser) -> None:
    s.add_argument("--wait", action="store_true", help="wait for the prefecture's answer")
    s.add_argument("--timeout", type=float, default=120.0)
    s.add_argument("--json", action="store_true")


def _fail(message: str) -> int:
    console.print(f"[red]error:[/] {shown(message)}")
    return 2


def _acte_state(doc_id: str) -> Any:
    return require_acte(Runtime().states.load_sync(doc_id), doc_id)


def cmd_cancel(args: argparse.Namespace) -> int:
    try:
        state = _acte_state(args.id)
    except LookupError as exc:
        return _fail(str(exc))
    name, content, meta = cancellation(state, args.reason, utcnow())
    with tempfile.TemporaryDirectory() as tmp:
        request = Path(tmp) / name
        request.write_bytes(content)
        return _submit(args, state.envelope.tenant, [request], meta)


def cmd_reply(args: argparse.Namespace) -> int:
    try:
        state = _acte_state(args.id)
    except LookupError as exc:
        return _fail(str(exc))
    meta = answer_metadata(args.id, args.letter, args.refuse, args.typology)
    return _submit(args, state.envelope.tenant, args.file, meta)


def _submit(args: argparse.Namespace, tenant: str, files: list[Path], meta: dict) -> int:
    async def go() -> tuple[str, Any]:
        async with DematClient(producer_name="cli") as client:
            client.submitted_by = cli_submitter(client.runtime)
            receipt = await client.submit("acte-followup", files, tenant=tenant,
                                          metadata=meta, correlation_id=args.id)
            state = await client.wait(receipt.doc_id, args.timeout) if args.wait else None
            return receipt.doc_id, state

    try:
        doc_id, state = asyncio.run(go())
    except SubmissionError as exc:
        return _fail(str(exc))
    except Unauthenticated as exc:
        return _fail(f"DEMAT_TOKEN: {exc}")
    result = {"id": doc_id, "state": state.state.value if state else "submitted"}
    if state is not None and state.error:
        result["error"] = state.error.message
    if args.json:
        out.print_json(json.dumps(result))
    else:
        out.print(shown(f"{doc_id} {result['state']} {result.get('error', '')}".rstrip()))
    return 0 if state is None or state.state.value == "completed" else 1


def cmd_letters(args: argparse.Namespace) -> int:
    try:
        letters = known_letters(_acte_state(args.id))
    except LookupError as exc:
        return _fail(str(exc))
    if args.json:
        out.print_json(json.dumps(letters, ensure_ascii=False))
        return 0
    table = Table("letter id", "kind", "date", "text", "files")
    for x in letters:
        table.add_row(shown(x["id"]), shown(x["kind"]), shown(x.get("date")),
                      shown(x.get("text")), str(len(x.get("files") or [])))
    out.print(table)
    return 0
