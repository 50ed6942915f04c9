"""Files only their owner may read: 0600 files in 0700 folders, modes set at creation.

Everything the bus and its embedded stack keep under ``var/`` (keys, secrets, logs of
personal data, addresses) is made with these helpers or under ``PRIVATE_UMASK``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

PRIVATE_UMASK = 0o077  # new files 0600, new folders 0700
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents, each with mode 0700; return it."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=DIR_MODE)
    return path


def write_private(path: Path, data: bytes | str) -> None:
    """Write ``path`` atomically as a 0600 file (its folder made 0700 if missing)."""
    private_dir(path.parent)
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def create_private_once(path: Path, make: Callable[[], bytes]) -> bytes:
    """The bytes of ``path``, first created as a 0600 file holding ``make()``.

    Safe when processes race: the first link wins and every caller reads its content.
    """
    private_dir(path.parent)
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(make())
        try:
            os.link(tmp, path)  # atomic, fails if another process created it first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()


def open_private_append(path: Path) -> BinaryIO:
    """``path`` opened for appending in binary, created 0600 if missing (logs)."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    return os.fdopen(fd, "ab")


def tighten(path: Path) -> None:
    """Take group and others' rights off ``path`` (a file made before the bus made them
    private)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        path.chmod(mode & 0o700)


@contextlib.contextmanager
def private_umask() -> Iterator[None]:
    """Run the block (and the processes it starts) with the umask ``PRIVATE_UMASK``."""
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)
