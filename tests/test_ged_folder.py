"""Folder GED connector: deposit once, answer lookups."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.deposit import DepositFile
from connectors.ged.folder import FolderDeposit


def test_deposit_writes_files_metadata_then_receipt(tmp_path: Path) -> None:
    ged = FolderDeposit(tmp_path)
    assert ged.lookup_sync("216900910", "d1") is None
    receipt = ged.deposit_sync("216900910", "d1",
                          [DepositFile("a.txt", [b"he", b"llo"]), DepositFile("a.txt", [b"x"]),
                           DepositFile("../evil", [b"y"])], {"title": "t"})
    folder = tmp_path / "216900910" / "d1"
    assert (folder / "a.txt").read_bytes() == b"hello"
    assert (folder / "a-2.txt").read_bytes() == b"x"
    assert (folder / "evil").read_bytes() == b"y"
    assert json.loads((folder / "metadata.json").read_text()) == {"title": "t"}
    assert ged.lookup_sync("216900910", "d1") == receipt
    assert list(ged.deposited()) == [folder]
