"""The object-store calls the SDK's ``prepare`` and the intake checks make, in memory."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bus.sniff import sniff
from schemas.envelope import FileRef, FileRole


@dataclass
class MemFiles:
    blobs: dict[str, bytes] = field(default_factory=dict)

    def put_bytes(self, tenant: str, data: bytes, *, name: str, role: FileRole,
                  **_: Any) -> FileRef:
        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return FileRef(sha256=digest, size=len(data), name=name, role=role,
                       media_type=sniff(data[:4096]))

    def stat_file(self, tenant: str, sha256: str) -> int | None:
        blob = self.blobs.get(sha256)
        return None if blob is None else len(blob)

    def iter_file(self, tenant: str, ref: FileRef) -> Iterator[bytes]:
        yield self.blobs[ref.sha256]
