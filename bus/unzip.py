"""ZIP archives a producer sends (a payroll run), expanded within bounds, under the data
directory: member count, bytes per member and in all, compression ratio (a ZIP bomb
stops at the first bound it passes, sizes counted as they are written, not as the
archive declares them), names that stay in the folder, no links, no member twice."""

from __future__ import annotations

import stat
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ZipLimits:
    """Bounds of one expansion."""

    max_members: int = 10_000
    max_member_bytes: int = 256 * 1024 * 1024
    max_total_bytes: int = 4 * 1024**3
    max_ratio: int = 100  # expanded bytes per compressed byte, over the whole archive
    ratio_floor: int = 1024 * 1024  # archives expanding to less are never "bombs"


class ZipRefused(ValueError):
    """The archive cannot be expanded; ``member`` names the entry at fault, if any."""

    def __init__(self, message: str, member: str | None = None) -> None:
        super().__init__(f"{member}: {message}" if member else message)
        self.member = member


def extract_zip(source: Path, work_dir: Path, limits: ZipLimits = ZipLimits()
                ) -> tempfile.TemporaryDirectory:
    """Expand ``source`` into a new folder under ``work_dir`` (the caller cleans it up);
    ``ZipRefused`` (folder removed) at the first bound passed."""
    work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="demat-zip-", dir=work_dir)
    try:
        with zipfile.ZipFile(source) as zf:
            _expand(zf, Path(tmp.name), source.stat().st_size, limits)
    except BaseException:
        tmp.cleanup()
        raise
    return tmp


def _expand(zf: zipfile.ZipFile, root: Path, packed: int, limits: ZipLimits) -> None:
    members = zf.infolist()
    if len(members) > limits.max_members:
        raise ZipRefused(f"{len(members)} entries, more than {limits.max_members}")
    budget = min(limits.max_total_bytes, max(limits.ratio_floor, packed * limits.max_ratio))
    seen: set[str] = set()
    written = 0
    for info in members:
        target = _target(root, info, seen)
        if target is None:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with zf.open(info) as src, target.open("wb") as dst:
            written += _copy(src, dst, info.filename, limits.max_member_bytes,
                             budget - written, limits)


def _target(root: Path, info: zipfile.ZipInfo, seen: set[str]) -> Path | None:
    """Where ``info`` goes (``None`` for a folder entry), or ``ZipRefused``."""
    name = info.filename
    if info.flag_bits & 0x1:
        raise ZipRefused("encrypted entry", name)
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ZipRefused("symbolic link entry", name)
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
        raise ZipRefused("entry path leaves the archive folder", name)
    if "\x00" in name or any(ord(c) < 32 for c in name):
        raise ZipRefused("control character in the entry name", name)
    if info.is_dir():
        return None
    key = unicodedata.normalize("NFC", "/".join(parts)).casefold()
    if key in seen:
        raise ZipRefused("the archive holds this name twice (one would hide the other)", name)
    seen.add(key)
    return root.joinpath(*parts)


def _copy(src: IO[bytes], dst: IO[bytes], name: str, member_left: int, total_left: int,
          limits: ZipLimits) -> int:
    size = 0
    while chunk := src.read(COPY_CHUNK):
        size += len(chunk)
        if size > member_left:
            raise ZipRefused(f"this entry expands beyond {limits.max_member_bytes} bytes", name)
        if size > total_left:
            raise ZipRefused(f"the archive expands beyond {limits.max_total_bytes} bytes or "
                             f"{limits.max_ratio} times its size (a ZIP bomb?)", name)
        dst.write(chunk)
    return size

