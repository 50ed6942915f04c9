"""Deposit into a folder tree: one folder per tenant, one per document.

Each deposit writes the files, then ``metadata.json``, then ``receipt.json``
last: a folder with a receipt is a finished deposit, so a retried step asks
the folder (``lookup``) before writing again.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.deposit import DepositFile, side_by_side
from connectors.errors import PermanentError, TransientError

RESERVED = ("metadata.json", "receipt.json")  # the folder's own files, beside the documents'


class FolderDeposit:
    """GED connector writing into ``root/<tenant>/<document id>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_options(cls, options: dict[str, Any], *, var_dir: Path) -> FolderDeposit:
        root = Path(options.get("path", "ged"))
        return cls(root if root.is_absolute() else var_dir / root)

    def folder(self, tenant: str, doc_id: str) -> Path:
        return self.root / tenant / doc_id

    async def lookup(self, tenant: str, doc_id: str) -> dict[str, Any] | None:
        """The receipt of an earlier finished deposit of this document, if any."""
        return await asyncio.to_thread(self.lookup_sync, tenant, doc_id)

    def lookup_sync(self, tenant: str, doc_id: str) -> dict[str, Any] | None:
        receipt = self.folder(tenant, doc_id) / "receipt.json"
        try:
            return json.loads(receipt.read_text())
        except FileNotFoundError:
            return None

    async def deposit(self, tenant: str, doc_id: str, files: list[DepositFile],
                      metadata: dict[str, Any]) -> dict[str, Any]:
        """Write files then metadata then the receipt; return the receipt."""
        return await asyncio.to_thread(self.deposit_sync, tenant, doc_id, files, metadata)

    def deposit_sync(self, tenant: str, doc_id: str, files: list[DepositFile],
                     metadata: dict[str, Any]) -> dict[str, Any]:
        folder = self.folder(tenant, doc_id)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            names = side_by_side((_safe_name(f.name) for f in files), RESERVED)
            for f, name in zip(files, names, strict=True):
                self._write(folder / name, f.chunks)
            _write_json(folder / "metadata.json", metadata)
            receipt = {
                "location": str(folder),
                "files": names,
                "deposited_at": datetime.now(UTC).isoformat(),
            }
            _write_json(folder / "receipt.json", receipt)
        except PermissionError as exc:
            raise PermanentError(f"GED folder {folder}: {exc}", partner="ged") from exc
        except OSError as exc:
            raise TransientError(f"GED folder {folder}: {exc}", partner="ged") from exc
        return receipt

    @staticmethod
    def _write(path: Path, chunks: Iterable[bytes]) -> None:
        # a temporary name no document can have (a file named "x.pdf.part" is kept)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        with tmp.open("wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)

    def deposited(self) -> Iterator[Path]:
        """Every finished deposit folder (for audits and tests)."""
        yield from (p.parent for p in self.root.glob("*/*/receipt.json"))


def _safe_name(name: str) -> str:
    cleaned = Path(name).name.replace("\x00", "")
    return f"file-{cleaned or 'unnamed'}" if cleaned in ("", ".", "..") else cleaned


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str))
    tmp.replace(path)
