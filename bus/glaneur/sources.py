"""Where a glaneur reads: a local folder, or a folder of an SFTP server (``asyncssh``,
the host key checked against the configured fingerprint). Both list a folder, read a
file or a whole sub-folder, write a file, and move an entry into another folder
(``-N`` added to its name when taken, as the incumbent does)."""

from __future__ import annotations

import asyncio
import posixpath
import shutil
from pathlib import Path
from typing import Protocol

import asyncssh

from bus.glaneur.config import GlaneurError, SftpServer


class Source(Protocol):
    async def entries(self, folder: str) -> list[tuple[str, bool]]: ...
    async def read(self, path: str) -> bytes: ...
    async def write(self, path: str, data: bytes) -> None: ...
    async def move(self, path: str, folder: str) -> str: ...
    async def close(self) -> None: ...


def free_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-N.ext`` with the first N not in ``taken``."""
    if name not in taken:
        return name
    stem, dot, ext = name.partition(".") if not name.startswith(".") else (name, "", "")
    n = 1
    while f"{stem}-{n}{dot}{ext}" in taken:
        n += 1
    return f"{stem}-{n}{dot}{ext}"


async def read_tree(source: Source, folder: str) -> dict[str, bytes]:
    """Every file under ``folder``, by its path relative to it."""
    found: dict[str, bytes] = {}
    for name, is_dir in await source.entries(folder):
        path = posixpath.join(folder, name)
        if is_dir:
            found |= {f"{name}/{k}": v for k, v in (await read_tree(source, path)).items()}
        else:
            found[name] = await source.read(path)
    return found


class LocalSource:
    """A folder of this machine."""

    async def entries(self, folder: str) -> list[tuple[str, bool]]:
        def scan() -> list[tuple[str, bool]]:
            return sorted((p.name, p.is_dir()) for p in Path(folder).iterdir()
                          if not p.name.startswith("."))
        return await asyncio.to_thread(scan)

    async def read(self, path: str) -> bytes:
        return await asyncio.to_thread(Path(path).read_bytes)

    async def write(self, path: str, data: bytes) -> None:
        await asyncio.to_thread(Path(path).write_bytes, data)

    async def move(self, path: str, folder: str) -> str:
        def move() -> str:
            target = Path(folder) / free_name(Path(path).name, {p.name for p in
                                                                  Path(folder).iterdir()})
            shutil.move(path, target)
            return str(target)
        return await asyncio.to_thread(move)

    async def close(self) -> None:
        return None


class SftpSource:
    """A folder of an SFTP server, on one connection per run."""

    def __init__(self, conn: asyncssh.SSHClientConnection, sftp: asyncssh.SFTPClient) -> None:
        self.conn, self.sftp = conn, sftp

    @classmethod
    async def connect(cls, server: SftpServer) -> SftpSource:
        """Log in; ``GlaneurError`` when the host key is not the one configured."""
        conn = await asyncssh.connect(server.host, server.port, username=server.login,
                                      password=server.password, known_hosts=None,
                                      client_keys=None)
        key = conn.get_server_host_key()
        found = key.get_fingerprint("sha256") if key is not None else ""
        if found != server.fingerprint:
            conn.close()
            raise GlaneurError("sftp.fingerprint", f"the server's host key is {found}, not "
                               f"{server.fingerprint}: refused")
        return cls(conn, await conn.start_sftp_client())

    async def entries(self, folder: str) -> list[tuple[str, bool]]:
        names = await self.sftp.readdir(folder)
        return sorted((n.filename, n.attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY)
                      for n in names if not n.filename.startswith("."))

    async def read(self, path: str) -> bytes:
        async with self.sftp.open(path, "rb") as remote:
            return await remote.read()

    async def write(self, path: str, data: bytes) -> None:
        async with self.sftp.open(path, "wb") as remote:
            await remote.write(data)

    async def move(self, path: str, folder: str) -> str:
        taken = {n.filename for n in await self.sftp.readdir(folder)}
        target = posixpath.join(folder, free_name(posixpath.basename(path), taken))
        await self.sftp.rename(path, target)
        return target

    async def close(self) -> None:
        self.sftp.exit()
        self.conn.close()
        await self.conn.wait_closed()


async def open_source(server: SftpServer | None) -> Source:
    return await SftpSource.connect(server) if server is not None else LocalSource()
