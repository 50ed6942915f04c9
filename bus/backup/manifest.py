"""The manifest of a backup folder: every item with its SHA-256 and size, checked whole
before a restore writes anything.

``manifest.json`` lists the items (paths relative to the folder) and what the backup
knows of its source; ``manifest.json.sha256`` holds the digest of the manifest itself,
so a damaged manifest is named as such rather than read as a shorter backup.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from connectors.frames import read_chunks
from connectors.private import private_dir

FORMAT = "demat-backup-1"
MANIFEST, MANIFEST_DIGEST = "manifest.json", "manifest.json.sha256"
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup folder that cannot be restored (missing, damaged or foreign); the
    message names the file at fault."""


@dataclass
class Item:
    path: str  # relative, POSIX
    sha256: str
    size: int
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. an object's content type


def digest_of(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        for chunk in read_chunks(fh, CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class Writer:
    """Writes the items of a new backup under ``root`` and records them."""

    def __init__(self, root: Path) -> None:
        if root.exists() and any(root.iterdir()):
            raise BackupError(f"{root}: the backup folder must be new or empty")
        self.root = private_dir(root)
        self.items: list[Item] = []

    def target(self, rel: str) -> Path:
        path = self.root / safe_relative(rel)
        private_dir(path.parent)
        return path

    def write_stream(self, rel: str, chunks: Iterable[bytes], **meta: Any) -> Item:
        """Write ``chunks`` to ``rel``, hashing them on the way."""
        digest, size = hashlib.sha256(), 0
        with self.target(rel).open("wb") as fh:
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                fh.write(chunk)
        item = Item(rel, digest.hexdigest(), size, meta)
        self.items.append(item)
        return item

    def write_json(self, rel: str, value: Any) -> Item:
        data = json.dumps(value, indent=1, ensure_ascii=False, default=str).encode()
        return self.write_stream(rel, [data])

    def close(self, source: dict[str, Any]) -> Path:
        """Write the manifest (and its digest) last: a backup without one is unfinished."""
        body = {"format": FORMAT, "source": source,
                "items": [item.__dict__ for item in sorted(self.items, key=lambda i: i.path)]}
        data = json.dumps(body, indent=1, ensure_ascii=False, default=str).encode()
        (self.root / MANIFEST).write_bytes(data)
        (self.root / MANIFEST_DIGEST).write_text(hashlib.sha256(data).hexdigest() + "\n")
        return self.root / MANIFEST


@dataclass
class Backup:
    """A backup folder whose manifest and every item were checked."""

    root: Path
    source: dict[str, Any]
    items: dict[str, Item]

    def path(self, rel: str) -> Path:
        return self.root / safe_relative(rel)

    def under(self, prefix: str) -> Iterator[Item]:
        """The items whose path starts with ``prefix``, in path order."""
        return (self.items[p] for p in sorted(self.items) if p.startswith(prefix))

    def json(self, rel: str) -> Any:
        return json.loads(self.path(rel).read_bytes())

    def open(self, rel: str) -> IO[bytes]:
        return self.path(rel).open("rb")


def safe_relative(rel: str) -> PurePosixPath:
    """``rel`` as a path inside the folder (a backup naming ``..`` or ``/`` is refused)."""
    path = PurePosixPath(rel)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"manifest item {rel!r}: not a path inside the backup folder")
    return path


def open_backup(root: Path) -> Backup:
    """Read and check a backup: the manifest's digest, then every item's size and
    SHA-256, and no file the manifest does not list. Raises ``BackupError`` naming the
    first file at fault."""
    manifest = _manifest(root)
    items = {}
    for raw in manifest["items"]:
        item = Item(**raw)
        safe_relative(item.path)
        items[item.path] = item
    for item in items.values():
        _check_item(root, item)
    extra = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                   if p.is_file() and p.name not in (MANIFEST, MANIFEST_DIGEST)
                   and p.relative_to(root).as_posix() not in items)
    if extra:
        raise BackupError(f"{root / extra[0]}: file not listed in the manifest "
                          f"({len(extra)} such file(s))")
    return Backup(root, manifest["source"], items)


def _manifest(root: Path) -> dict[str, Any]:
    path, digest_path = root / MANIFEST, root / MANIFEST_DIGEST
    if not path.is_file() or not digest_path.is_file():
        raise BackupError(f"{path if not path.is_file() else digest_path}: missing "
                          "(not a demat backup, or an unfinished one)")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest_path.read_text().strip():
        raise BackupError(f"{path}: damaged (its SHA-256 is not the one in {digest_path.name})")
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise BackupError(f"{path}: not JSON ({exc})") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise BackupError(f"{path}: not a {FORMAT} manifest")
    return body


def _check_item(root: Path, item: Item) -> None:
    path = root / safe_relative(item.path)
    if not path.is_file():
        raise BackupError(f"{path}: missing (listed in the manifest)")
    sha, size = digest_of(path)
    if size != item.size:
        raise BackupError(f"{path}: damaged ({size} bytes, the manifest says {item.size})")
    if sha != item.sha256:
        raise BackupError(f"{path}: damaged (SHA-256 {sha}, the manifest says {item.sha256})")
