"""``demat inspect FILE... [--json]``: what a standard or partner file is, for archivists.

Per file: its kind (ACTES message, PES, SEDA message, invoice, ENSAP envelope, signed
PDF/XML, CMS signature, time-stamp token, plain PDF, unknown), its schema verdict, its
signature verdict (intact, signer, signing time, valid at signing time, findings; trust
only against ``--trust`` roots, else unknown) and its key fields. Exit code 0 whatever
the files are worth (the verdicts are in the report); 2 for a usage error (no file, a
path that is not a file, an unreadable ``--trust`` file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from rich.table import Table

from bus.audit.inspect import Report, inspect_path
from bus.cli.console import fail, out, shown


def add_commands(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("inspect", help="identify standard and partner files: kind, schema "
                       "validity, signature verdict, key fields")
    s.add_argument("files", nargs="+", type=Path, metavar="FILE")
    s.add_argument("--json", action="store_true", help="one JSON array of reports")
    s.add_argument("--trust", action="append", default=[], type=Path, metavar="PEM",
                   help="trust roots (PEM certificates) to judge the signers' chains by")
    s.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        return fail(f"not a file: {', '.join(missing)}")
    try:
        roots = [cert for pem in args.trust
                 for cert in x509.load_pem_x509_certificates(pem.read_bytes())]
    except (OSError, ValueError) as exc:
        return fail(f"--trust: cannot read the certificates: {exc}")
    reports = [inspect_path(p, trust_roots=roots or None) for p in args.files]
    if args.json:
        out.print_json(json.dumps([r.as_dict() for r in reports], ensure_ascii=False,
                                  default=str))
        return 0
    for report in reports:
        show(report)
    return 0


def show(report: Report) -> None:
    """One table per file: kind, validity, signature, key fields."""
    data = report.as_dict()
    table = Table(show_header=False, title=f"[bold]{shown(report.file)}[/]", title_justify="left")
    table.add_column(style="cyan")
    table.add_column(overflow="fold")
    table.add_row("kind", f"{shown(report.kind)}  [dim]{shown(report.standard)}[/]")
    table.add_row("valid", _verdict(report.valid, "no schema"))
    for message in report.messages:
        table.add_row("", f"[yellow]{shown(message)}[/]")
    sig = data["signature"]
    if sig["present"]:
        table.add_row("signature", f"intact {_verdict(sig['intact'])}, valid at signing "
                      f"time {_verdict(sig['valid_at_signing_time'])}, trusted "
                      f"{_verdict(sig['trusted'], 'unknown')}")
        table.add_row("signer", shown(sig["signer"]))
        table.add_row("signed at", shown(sig["signed_at"]))
        if sig["findings"]:
            table.add_row("findings", shown(", ".join(sig["findings"])))
        for detail in sig["details"] if len(sig["details"]) > 1 else ():
            table.add_row(f"  {detail['format']}", f"{shown(detail['reference'])} intact "
                          f"{_verdict(detail['intact'])} at {detail['signed_at']}")
        for detail in sig["details"]:
            if detail["error"]:
                table.add_row("", f"[red]{shown(detail['format'])}: {shown(detail['error'])}[/]")
    else:
        table.add_row("signature", "none")
    for key, value in report.fields.items():
        table.add_row(shown(key), shown(_field(value)))
    out.print(table)


def _verdict(value: bool | None, none: str = "unknown") -> str:
    if value is None:
        return f"[dim]{none}[/]"
    return "[green]yes[/]" if value else "[red]no[/]"


def _field(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return text if len(text) <= 300 else text[:297] + "..."
    return "" if value is None else str(value)
