"""The manifest of a backup folder: every item's digest checked, the culprit named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.backup.manifest import BackupError, Writer, open_backup


def _made(root: Path) -> Path:
    writer = Writer(root)
    writer.write_stream("objects/main/files/a", [b"hello ", b"world"], key="files/a")
    writer.write_json("keys.json", {"tenants": {}})
    writer.close({"bucket": "demat"})
    return root


def test_a_sound_backup_opens_with_its_items(tmp_path: Path) -> None:
    backup = open_backup(_made(tmp_path / "b"))
    assert [i.path for i in backup.under("objects/")] == ["objects/main/files/a"]
    assert backup.items["objects/main/files/a"].meta == {"key": "files/a"}
    assert backup.json("keys.json") == {"tenants": {}}


def test_a_damaged_manifest_is_named(tmp_path: Path) -> None:
    root = _made(tmp_path / "b")
    (root / "manifest.json").write_text((root / "manifest.json").read_text().replace(
        "demat", "other"))
    with pytest.raises(BackupError, match=r"manifest\.json: damaged"):
        open_backup(root)


def test_an_item_outside_the_folder_is_refused(tmp_path: Path) -> None:
    writer = Writer(tmp_path / "b")
    with pytest.raises(BackupError, match="not a path inside"):
        writer.write_stream("../escape", [b"x"])


def test_a_used_folder_is_not_written_into(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    with pytest.raises(BackupError, match="must be new or empty"):
        Writer(tmp_path / "b")


def test_an_unfinished_backup_is_named(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=r"manifest\.json: missing"):
        open_backup(tmp_path)
