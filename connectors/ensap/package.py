"""The ENSAP transfer package of a batch, as Pastell's ENSAP connector builds it:
``index.xml`` (the ``envoi-BP-Generique`` envelope) and the PDFs it names in a tar.gz,
OpenPGP-encrypted to ENSAP's public key, named ``<nom_fichier>.tar.gz.gpg``.

Files are streamed through temporary files (a lot holds thousands of pay slips), never
held whole in memory. OpenPGP is done by ``pysequoia`` (Sequoia-PGP); ENSAP's key is an
OpenPGP certificate (ASCII-armoured or binary).
"""

from __future__ import annotations

import hashlib
import re
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pysequoia

from connectors.frames import read_chunks

INDEX = "index.xml"
SUFFIX = ".tar.gz.gpg"
# Pastell's ArchiveGenerator checks the name against this (YYYYMMDDhhmmss); the ENSAP
# example envelope ends with 12 digits (DDMMYYhhmmss): both are taken.
ARCHIVE_NAME = re.compile(  # matched whole (fullmatch), ASCII
    r"ENVOI-PJ-BPG-(43|45)-[A-Za-z0-9_]{1,5}-[A-Za-z0-9_]{1,5}-[0-9]{6}-([0-9]{12}|[0-9]{14})")


class PackageError(ValueError):
    """A package that cannot be opened (wrong recipient, not OpenPGP, not a tar.gz)."""


def load_certificate(data: bytes) -> pysequoia.Cert:
    """ENSAP's OpenPGP public key; ``PackageError`` naming the problem if it is not one."""
    if b"BEGIN CERTIFICATE" in data:
        raise PackageError("ENSAP encrypts with OpenPGP: give its OpenPGP public key, "
                           "not an X.509 certificate")
    try:
        return pysequoia.Cert.from_bytes(data)
    except Exception as exc:  # pysequoia raises plain exceptions with Sequoia's words
        raise PackageError(f"not an OpenPGP public key: {exc}") from None


def write_targz(dest: Path, index_xml: bytes, pdfs: Iterable[tuple[str, Iterable[bytes]]]
                ) -> None:
    """The tar.gz of a lot at ``dest``: ``index.xml`` first, then each PDF (streamed)."""
    work = dest.parent
    with tarfile.open(dest, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, INDEX, [index_xml], work)
        for name, chunks in pdfs:
            if "/" in name or name in ("", INDEX):
                raise PackageError(f"pay slip file name {name!r} cannot go in the package")
            _add(tar, name, chunks, work)


def _add(tar: tarfile.TarFile, name: str, chunks: Iterable[bytes], work: Path) -> None:
    with tempfile.TemporaryFile(dir=work) as spool:
        for chunk in chunks:
            spool.write(chunk)
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = spool.tell(), int(time.time()), 0o644
        spool.seek(0)
        tar.addfile(info, spool)


def encrypt(cert: pysequoia.Cert, src: Path, dest: Path) -> None:
    """``src`` encrypted (binary OpenPGP message) for the holder of ``cert``."""
    pysequoia.encrypt_file(str(src), str(dest), recipients=[cert], armor=False)


def build_package(cert: pysequoia.Cert, folder: Path, index_xml: bytes,
                  pdfs: Iterable[tuple[str, Iterable[bytes]]], name: str) -> Path:
    """Write and encrypt the package ``<name>.tar.gz.gpg`` in ``folder``; its path."""
    if not ARCHIVE_NAME.fullmatch(name):
        raise PackageError(f"package name {name!r} is not ENVOI-PJ-BPG-<sstheme>-<emitter "
                           "name>-<emitter code>-<YYYYMM>-<timestamp>")
    plain = folder / f"{name}.tar.gz"
    write_targz(plain, index_xml, pdfs)
    sealed = folder / f"{name}{SUFFIX}"
    encrypt(cert, plain, sealed)
    plain.unlink()
    return sealed


@dataclass(frozen=True)
class Member:
    """One file of an opened package."""

    size: int
    sha256: str
    head: bytes  # first bytes (file type check)


def open_package(key: pysequoia.Tsk, sealed: Path, folder: Path
                 ) -> tuple[bytes, dict[str, Member]]:
    """Decrypt and read a package (what ENSAP does): ``index.xml`` and the other files."""
    plain = folder / "package.tar.gz"
    try:
        pysequoia.decrypt_file(str(sealed), str(plain), decryptor=key.decryptor())
    except Exception as exc:  # Sequoia's words: not OpenPGP, not for this key, corrupt
        raise PackageError(f"package does not decrypt with ENSAP's key: {exc}") from None
    try:
        with tarfile.open(plain, "r:gz") as tar:
            return _members(tar)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise PackageError(f"decrypted package is not a tar.gz: {exc}") from None


def _members(tar: tarfile.TarFile) -> tuple[bytes, dict[str, Member]]:
    index: bytes | None = None
    members: dict[str, Member] = {}
    for info in tar:
        fh = tar.extractfile(info) if info.isfile() else None
        if fh is None:
            continue
        if info.name == INDEX:
            index = fh.read()
            continue
        if info.name in members:
            raise PackageError(f"{info.name} appears twice in the package")
        digest, head = hashlib.sha256(), b""
        for chunk in read_chunks(fh):
            head = head or chunk[:8]
            digest.update(chunk)
        members[info.name] = Member(size=info.size, sha256=digest.hexdigest(), head=head)
    if index is None:
        raise PackageError(f"the package holds no {INDEX}")
    return index, members
